//! `JwtVerifier`'s keys: chosen by `kid`, read from PEM or a JWKS document (skipping
//! encryption, symmetric and unsupported keys), and replaced at run time.

use crate::common::jwt_support::gate::*;
use crate::common::jwt_support::*;
use crate::common::*;
use jsonwebtoken::Algorithm;
use keygate::credential::jwt::JwtVerifier;
use serde_json::json;

#[tokio::test]
async fn an_unknown_kid_is_refused_and_a_missing_one_needs_a_single_key() {
    let h = harness();
    let unknown = sign(Algorithm::RS256, RSA_PRIVATE, Some("rsa-9"), &valid("u"));
    assert_refused(
        &call(&h, &unknown).await,
        "The token's key id ('kid') names no key this service trusts",
    );
    let no_kid = sign(Algorithm::RS256, RSA_PRIVATE, None, &valid("u"));
    assert_refused(
        &call(&h, &no_kid).await,
        "The token names no key id ('kid'), and this service trusts several keys",
    );
    // With one key, a token without a kid uses it.
    let single = JwtVerifier::builder()
        .key(keygate::credential::jwt::JwtKey::rs256_pem(RSA_PUBLIC.as_bytes()).unwrap())
        .account_claim("org")
        .build()
        .unwrap();
    let h = Harness::with(|b| b.credential_verifier(single));
    assert_eq!(call(&h, &no_kid).await.status, 200);
}

#[tokio::test]
async fn keys_come_from_a_jwks_document_by_kid() {
    use keygate::credential::jwt::{JwtConfigError, JwtKey};
    // The RSA modulus and exponent of the test key, as a JWK.
    let (n, e) = rsa_components();
    let ed_x = ed_x();
    let jwks = json!({"keys": [
        {"kty": "RSA", "kid": "rsa-1", "use": "sig", "alg": "RS256", "n": n, "e": e},
        {"kty": "OKP", "crv": "Ed25519", "kid": "ed-1", "x": ed_x},
        {"kty": "RSA", "kid": "enc-1", "use": "enc", "n": n, "e": e},
        {"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"},
        {"kty": "RSA", "kid": "oaep", "alg": "RSA-OAEP", "n": n, "e": e},
        {"kty": "EC", "crv": "P-384", "kid": "p384", "x": "AA", "y": "AA"},
        {"kty": "whatever"}
    ]})
    .to_string();
    let keys = JwtKey::from_jwks(&jwks).unwrap();
    let kids: Vec<_> = keys
        .iter()
        .map(|k| k.key_id().unwrap().to_owned())
        .collect();
    assert_eq!(kids, ["rsa-1", "ed-1"]);
    let jwt = JwtVerifier::builder()
        .keys(keys)
        .account_claim("org")
        .build()
        .unwrap();
    let h = Harness::with(|b| b.credential_verifier(jwt));
    assert_eq!(call(&h, &rs256(&valid("u"))).await.status, 200);
    let ed = sign(Algorithm::EdDSA, ED_PRIVATE, Some("ed-1"), &valid("u"));
    assert_eq!(call(&h, &ed).await.status, 200);
    // The HMAC key of the set is never used, even when a token names it.
    let hs = sign(Algorithm::HS256, "secret", Some("hmac"), &valid("u"));
    assert_eq!(call(&h, &hs).await.code(), "invalid_token");

    assert!(matches!(
        JwtKey::from_jwks("[]"),
        Err(JwtConfigError::InvalidJwks(_))
    ));
    assert!(matches!(
        JwtKey::from_jwks("{\"keys\":[{\"kty\":\"oct\",\"k\":\"AA\"}]}"),
        Err(JwtConfigError::NoUsableJwk)
    ));
    assert!(matches!(
        JwtKey::rs256_pem(b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"),
        Err(JwtConfigError::InvalidPem { .. })
    ));
    assert!(matches!(
        JwtKey::rs256_pem(EC_PUBLIC.as_bytes()),
        Err(JwtConfigError::InvalidPem { .. })
    ));
    let twice = JwtVerifier::builder()
        .key(JwtKey::rs256_pem(RSA_PUBLIC.as_bytes()).unwrap().kid("a"))
        .key(JwtKey::es256_pem(EC_PUBLIC.as_bytes()).unwrap().kid("a"))
        .build();
    assert!(matches!(twice, Err(JwtConfigError::DuplicateKid(Some(_)))));
    assert!(matches!(
        JwtVerifier::builder().build(),
        Err(JwtConfigError::NoKeys)
    ));
}

#[tokio::test]
async fn replacing_the_keys_rotates_every_clone() {
    use keygate::credential::jwt::JwtKey;
    let jwt = verifier();
    let h = Harness::with(|b| b.credential_verifier(jwt.clone()));
    let token = rs256(&valid("u"));
    assert_eq!(call(&h, &token).await.status, 200);
    jwt.replace_keys(vec![JwtKey::es256_pem(EC_PUBLIC.as_bytes())
        .unwrap()
        .kid("ec-2")])
        .unwrap();
    assert_eq!(call(&h, &token).await.code(), "invalid_token");
    let ec = sign(Algorithm::ES256, EC_PRIVATE, Some("ec-2"), &valid("u"));
    assert_eq!(call(&h, &ec).await.status, 200);
    assert!(jwt.replace_keys(vec![]).is_err());
    assert_eq!(
        call(&h, &ec).await.status,
        200,
        "a refused replacement changes nothing"
    );
}

/// The test RSA key's modulus and exponent, base64url, read from its DER form.
fn rsa_components() -> (String, String) {
    use base64::Engine as _;
    let b64: String = RSA_PUBLIC
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap();
    // SubjectPublicKeyInfo of a 2048-bit key: the modulus is the 257 bytes (with a
    // leading zero) after `02 82 01 01`, then `02 03` and a 3-byte exponent.
    let at = der
        .windows(4)
        .position(|w| w == [0x02, 0x82, 0x01, 0x01])
        .unwrap()
        + 4;
    let n = &der[at + 1..at + 257];
    let e = &der[at + 257 + 2..at + 257 + 5];
    let url = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    (url.encode(n), url.encode(e))
}

/// The test Ed25519 key's public point, base64url: the last 32 bytes of its DER form.
fn ed_x() -> String {
    use base64::Engine as _;
    let b64: String = ED_PUBLIC
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&der[der.len() - 32..])
}
