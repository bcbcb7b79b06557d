//! `JwtVerifier` behind keygate's layer: RS256, ES256 and EdDSA tokens are accepted from
//! trusted keys only, by `kid`; time, issuer and audience are checked on keygate's clock;
//! algorithm confusion, `alg: none` and garbage are refused with 401 `invalid_token`,
//! never a panic.

mod common;
mod jwt_support;

use std::time::Duration;

use common::*;
use jsonwebtoken::Algorithm;
use jwt_support::*;
use keygate::credential::jwt::JwtVerifier;
use keygate::credential::{BearerCredential, CredentialError, CredentialVerifier};
use serde_json::json;

fn harness() -> Harness {
    Harness::with(|b| b.credential_verifier(verifier()))
}

/// Claims valid for an hour from the harness's start.
fn valid(sub: &str) -> serde_json::Value {
    claims(sub, "org_1", "streams:read streams:write", T0, T0 + 3600)
}

async fn call(h: &Harness, token: &str) -> Answer {
    send(&mut h.service(), get("/v1/streams", Some(token))).await
}

/// Asserts a 401 `invalid_token` whose message is `message`.
fn assert_refused(answer: &Answer, message: &str) {
    assert_eq!(answer.status, 401, "{}", answer.body);
    assert_eq!(answer.code(), "invalid_token", "{}", answer.body);
    assert_eq!(answer.json()["error"]["message"], message);
    let challenge = answer.header("www-authenticate").unwrap();
    assert!(
        challenge.starts_with("Bearer realm=\"api\", error=\"invalid_token\""),
        "{challenge}"
    );
}

#[tokio::test]
async fn rs256_es256_and_eddsa_tokens_from_trusted_keys_are_admitted() {
    let h = harness();
    let tokens = [
        rs256(&valid("user_rs")),
        sign(
            Algorithm::ES256,
            EC_PRIVATE,
            Some("ec-1"),
            &valid("user_es"),
        ),
        sign(
            Algorithm::EdDSA,
            ED_PRIVATE,
            Some("ed-1"),
            &valid("user_ed"),
        ),
    ];
    for (token, sub) in tokens.iter().zip(["user_rs", "user_es", "user_ed"]) {
        let answer = call(&h, token).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        let identity = answer.json();
        assert_eq!(identity["id"], sub);
        assert_eq!(identity["account_id"], "org_1");
        assert_eq!(identity["scopes"], json!(["streams:read", "streams:write"]));
    }
    assert_eq!(h.store.lookups(), 0, "a JWT never reaches the key store");
}

#[tokio::test]
async fn the_identity_is_external_and_carries_the_claims() {
    let h = harness();
    let token = rs256(&valid("user_1"));
    let app = axum::Router::new()
        .route(
            "/",
            axum::routing::get(|id: keygate::Identity| async move {
                assert_eq!(
                    id.credential(),
                    keygate::credential::CredentialKind::External
                );
                assert_eq!(id.metadata()["iss"], ISSUER);
                id.metadata()["org"].as_str().unwrap().to_owned()
            }),
        )
        .layer(h.gate.layer());
    let mut svc = app;
    let answer = send(&mut svc, get("/", Some(&token))).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.body, "org_1");
}

#[tokio::test]
async fn a_token_signed_by_another_key_is_refused() {
    let h = harness();
    let token = sign(
        Algorithm::RS256,
        RSA_OTHER_PRIVATE,
        Some("rsa-1"),
        &valid("mallory"),
    );
    assert_refused(
        &call(&h, &token).await,
        "The token's signature is not valid",
    );
    // The payload of a valid token under another token's signature.
    let good = rs256(&valid("user_1"));
    let other = rs256(&valid("admin"));
    let mut spliced: Vec<&str> = other.split('.').collect();
    spliced[2] = good.split('.').nth(2).unwrap();
    assert_refused(
        &call(&h, &spliced.join(".")).await,
        "The token's signature is not valid",
    );
}

#[tokio::test]
async fn expiry_is_checked_on_keygates_clock() {
    let h = harness();
    let token = rs256(&claims("user_1", "org_1", "", T0, T0 + 60));
    assert_eq!(call(&h, &token).await.status, 200);
    h.time.advance(Duration::from_secs(59));
    assert_eq!(call(&h, &token).await.status, 200);
    h.time.advance(Duration::from_secs(1));
    assert_refused(&call(&h, &token).await, "The token has expired");
}

#[tokio::test]
async fn leeway_tolerates_skew_on_exp_and_nbf() {
    let h = Harness::with(|b| {
        b.credential_verifier(
            verifier_builder()
                .leeway(Duration::from_secs(30))
                .build()
                .unwrap(),
        )
    });
    let expired_20s_ago = rs256(&claims("user_1", "org_1", "", T0 - 100, T0 - 20));
    assert_eq!(call(&h, &expired_20s_ago).await.status, 200);
    let mut early = claims("user_1", "org_1", "", T0, T0 + 600);
    early["nbf"] = json!(T0 + 20);
    assert_eq!(call(&h, &rs256(&early)).await.status, 200);
    let expired_30s_ago = rs256(&claims("user_1", "org_1", "", T0 - 100, T0 - 30));
    assert_refused(&call(&h, &expired_30s_ago).await, "The token has expired");
}

#[tokio::test]
async fn a_token_not_valid_yet_is_refused_until_its_nbf() {
    let h = harness();
    let mut c = valid("user_1");
    c["nbf"] = json!(T0 + 100);
    let token = rs256(&c);
    assert_refused(
        &call(&h, &token).await,
        "The token is not valid yet ('nbf' claim)",
    );
    h.time.advance(Duration::from_secs(100));
    assert_eq!(call(&h, &token).await.status, 200);
}

#[tokio::test]
async fn a_token_without_exp_is_refused() {
    let h = harness();
    let mut c = valid("user_1");
    c.as_object_mut().unwrap().remove("exp");
    assert_refused(
        &call(&h, &rs256(&c)).await,
        "The token has no expiry ('exp' claim)",
    );
}

#[tokio::test]
async fn wrong_or_missing_issuer_and_audience_are_refused() {
    let h = harness();
    let cases = [
        (
            "iss",
            Some(json!("https://evil.test/")),
            "The token's issuer ('iss') is not accepted",
        ),
        ("iss", None, "The token has no issuer ('iss' claim)"),
        (
            "aud",
            Some(json!("another-api")),
            "The token's audience ('aud') is not accepted",
        ),
        (
            "aud",
            Some(json!(["x", "y"])),
            "The token's audience ('aud') is not accepted",
        ),
        ("aud", None, "The token has no audience ('aud' claim)"),
    ];
    for (claim, value, message) in cases {
        let mut c = valid("user_1");
        match value {
            Some(v) => c[claim] = v,
            None => {
                c.as_object_mut().unwrap().remove(claim);
            }
        }
        assert_refused(&call(&h, &rs256(&c)).await, message);
    }
    let mut many = valid("user_1");
    many["aud"] = json!(["another-api", AUDIENCE]);
    assert_eq!(call(&h, &rs256(&many)).await.status, 200);
}

#[tokio::test]
async fn alg_none_is_refused() {
    let h = harness();
    let c = valid("admin");
    for header in [
        json!({"alg": "none", "typ": "JWT"}),
        json!({"alg": "none", "kid": "rsa-1"}),
        json!({"alg": "None", "kid": "rsa-1"}),
    ] {
        // With an empty signature (the RFC 7519 §6 form) and with a made-up one.
        let empty = forged(&header, &c, "");
        assert_refused(
            &call(&h, &empty).await,
            "The bearer token is not a valid JWT",
        );
        let padded = forged(&header, &c, "c2ln");
        let answer = call(&h, &padded).await;
        assert_eq!(answer.code(), "invalid_token", "{}", answer.body);
    }
}

#[tokio::test]
async fn hs256_signed_with_the_rsa_public_key_is_refused() {
    let h = harness();
    // The classic confusion: the public key, which attackers know, as an HMAC secret.
    let token = sign(Algorithm::HS256, RSA_PUBLIC, Some("rsa-1"), &valid("admin"));
    assert_refused(
        &call(&h, &token).await,
        "The token's signing algorithm is not accepted",
    );
    // An ES256 header on the RSA key's kid, and an RS256 one on the EC key's.
    let es_on_rsa = sign(Algorithm::ES256, EC_PRIVATE, Some("rsa-1"), &valid("admin"));
    assert_refused(
        &call(&h, &es_on_rsa).await,
        "The token's signing algorithm is not accepted",
    );
    let rs_on_ec = sign(Algorithm::RS256, RSA_PRIVATE, Some("ec-1"), &valid("admin"));
    assert_refused(
        &call(&h, &rs_on_ec).await,
        "The token's signing algorithm is not accepted",
    );
}

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
async fn garbage_and_hostile_tokens_are_refused_without_a_panic() {
    let h = harness();
    let good = rs256(&valid("u"));
    let parts: Vec<&str> = good.split('.').collect();
    let big_header = forged(
        &json!({"alg": "RS256", "kid": "k".repeat(4000)}),
        &valid("u"),
        "c2ln",
    );
    let deep = forged(
        &serde_json::from_str::<serde_json::Value>(&format!(
            "{}1{}",
            "[".repeat(100),
            "]".repeat(100)
        ))
        .unwrap(),
        &valid("u"),
        "c2ln",
    );
    let garbage = [
        "a".to_owned(),
        "a.b".to_owned(),
        "a.b.c".to_owned(),
        "a.b.c.d".to_owned(),
        "..".to_owned(),
        format!("{}.{}", parts[0], parts[1]),
        format!("{}.{}.{}.{}", parts[0], parts[1], parts[2], parts[2]),
        format!("{}..{}", parts[0], parts[2]),
        format!("{}.{}.", parts[0], parts[1]),
        format!("{}.{}.{}", parts[0], "!!!!", parts[2]).replace('!', "~"),
        forged(&json!(["alg", "RS256"]), &valid("u"), "c2ln"),
        forged(&json!({"alg": 256}), &valid("u"), "c2ln"),
        forged(&json!({"alg": "RS256", "kid": 1}), &valid("u"), "c2ln"),
        forged(
            &json!({"alg": "RS256", "kid": "rsa-1", "crit": ["exp"]}),
            &valid("u"),
            "c2ln",
        ),
        forged(
            &json!({"alg": "RS256", "kid": "rsa-1"}),
            &json!("not an object"),
            parts[2],
        ),
        big_header,
        deep,
        format!("{}.{}.{}", parts[0], "A".repeat(6000), parts[2]),
        "=".repeat(10),
        "A".repeat(8 * 1024 - 7),
    ];
    for token in &garbage {
        let answer = call(&h, token).await;
        assert!(
            answer.status == 401 && answer.code() == "invalid_token"
                || answer.status == 400 && answer.code() == "invalid_request",
            "{token:.60}: {} {}",
            answer.status,
            answer.body
        );
    }
    // Over the 8 KiB limit: 400 before the verifier runs.
    let huge = format!("{}.{}.{}", parts[0], "A".repeat(9000), parts[2]);
    let answer = call(&h, &huge).await;
    assert_eq!(
        (answer.status.as_u16(), answer.code().as_str()),
        (400, "invalid_request")
    );
}

#[tokio::test]
async fn no_message_or_log_repeats_the_token() {
    let h = harness();
    let token = sign(
        Algorithm::RS256,
        RSA_OTHER_PRIVATE,
        Some("rsa-1"),
        &valid("u"),
    );
    let answer = call(&h, &token).await;
    let signature = token.split('.').nth(2).unwrap();
    assert!(!answer.body.contains(signature));
    assert!(!format!("{:?}", answer.headers).contains(signature));
    let credential = BearerCredential::new(token.clone(), t0());
    assert!(!format!("{credential:?}").contains(signature));
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

#[tokio::test]
async fn the_verifier_can_be_called_directly() {
    let jwt = verifier();
    let principal = jwt
        .verify(BearerCredential::new(rs256(&valid("u")), t0()))
        .await
        .unwrap();
    assert_eq!(principal.subject.as_str(), "u");
    assert_eq!(principal.account.as_str(), "org_1");
    let late = t0() + Duration::from_secs(3600);
    assert_eq!(
        jwt.verify(BearerCredential::new(rs256(&valid("u")), late))
            .await,
        Err(CredentialError::refused("The token has expired"))
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
