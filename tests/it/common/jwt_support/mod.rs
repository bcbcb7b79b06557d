//! Signing test JWTs with the test-only keys in `tests/fixtures/jwt/`, and a
//! [`JwtVerifier`] that trusts their public halves.
#![allow(dead_code, unreachable_pub)]

pub mod gate;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use keygate::credential::jwt::{JwtKey, JwtVerifier, JwtVerifierBuilder};
use serde_json::{json, Value};

pub const RSA_PRIVATE: &str = include_str!("../../../fixtures/jwt/rsa_private.pem");
pub const RSA_PUBLIC: &str = include_str!("../../../fixtures/jwt/rsa_public.pem");
pub const RSA_OTHER_PRIVATE: &str = include_str!("../../../fixtures/jwt/rsa_other_private.pem");
pub const EC_PRIVATE: &str = include_str!("../../../fixtures/jwt/ec_private.pem");
pub const EC_PUBLIC: &str = include_str!("../../../fixtures/jwt/ec_public.pem");
pub const ED_PRIVATE: &str = include_str!("../../../fixtures/jwt/ed_private.pem");
pub const ED_PUBLIC: &str = include_str!("../../../fixtures/jwt/ed_public.pem");

pub const ISSUER: &str = "https://auth.test/";
pub const AUDIENCE: &str = "keygate-tests";

/// A token signed with `alg` by `private_pem`, with `kid` in its header.
pub fn sign(alg: Algorithm, private_pem: &str, kid: Option<&str>, claims: &Value) -> String {
    let key = match alg {
        Algorithm::RS256 => EncodingKey::from_rsa_pem(private_pem.as_bytes()),
        Algorithm::ES256 => EncodingKey::from_ec_pem(private_pem.as_bytes()),
        Algorithm::EdDSA => EncodingKey::from_ed_pem(private_pem.as_bytes()),
        Algorithm::HS256 => Ok(EncodingKey::from_secret(private_pem.as_bytes())),
        other => panic!("no test key for {other:?}"),
    }
    .expect("test key parses");
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, claims, &key).expect("signed")
}

/// RS256 with the trusted RSA key, `kid` `rsa-1`.
pub fn rs256(claims: &Value) -> String {
    sign(Algorithm::RS256, RSA_PRIVATE, Some("rsa-1"), claims)
}

/// A token assembled by hand: any header, any claims, any signature text.
pub fn forged(header: &Value, claims: &Value, signature: &str) -> String {
    format!(
        "{}.{}.{signature}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    )
}

/// Claims for `sub` in organisation `org` with `scope`, valid from `now - 10` until
/// `exp`, from [`ISSUER`] for [`AUDIENCE`].
pub fn claims(sub: &str, org: &str, scope: &str, now: u64, exp: u64) -> Value {
    json!({
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": sub,
        "org": org,
        "scope": scope,
        "iat": now - 10,
        "nbf": now - 10,
        "exp": exp,
    })
}

/// Trusts the RSA (`rsa-1`), P-256 (`ec-1`) and Ed25519 (`ed-1`) test keys, from
/// [`ISSUER`] for [`AUDIENCE`], with the account in `org` and no leeway.
pub fn verifier_builder() -> JwtVerifierBuilder {
    JwtVerifier::builder()
        .key(
            JwtKey::rs256_pem(RSA_PUBLIC.as_bytes())
                .unwrap()
                .kid("rsa-1"),
        )
        .key(JwtKey::es256_pem(EC_PUBLIC.as_bytes()).unwrap().kid("ec-1"))
        .key(
            JwtKey::ed25519_pem(ED_PUBLIC.as_bytes())
                .unwrap()
                .kid("ed-1"),
        )
        .issuer(ISSUER)
        .audience(AUDIENCE)
        .account_claim("org")
        .leeway(std::time::Duration::ZERO)
}

pub fn verifier() -> JwtVerifier {
    verifier_builder().build().unwrap()
}
