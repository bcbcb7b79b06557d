//! The issuer's signing keys (the test-only keys in `tests/fixtures/jwt/`), their JWK
//! form written here from RFC 7517/7518/8037, and tokens signed with them.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

const ED_PRIVATE: &str = include_str!("../../../fixtures/jwt/ed_private.pem");
const ED_PUBLIC: &str = include_str!("../../../fixtures/jwt/ed_public.pem");
const EC_PRIVATE: &str = include_str!("../../../fixtures/jwt/ec_private.pem");
const EC_PUBLIC: &str = include_str!("../../../fixtures/jwt/ec_public.pem");

/// One of the issuer's signing keys.
#[derive(Clone, Copy, Debug)]
pub enum SigningKey {
    Ed25519,
    P256,
}

/// The DER of a PEM document's one block.
fn der(pem: &str) -> Vec<u8> {
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    STANDARD.decode(body).unwrap()
}

impl SigningKey {
    /// The public key as a JWK named `kid`. The raw key is the end of the
    /// SubjectPublicKeyInfo: 32 bytes for Ed25519 (RFC 8037), an uncompressed point
    /// `04 || x || y` for P-256 (RFC 7518 §6.2).
    pub fn jwk(self, kid: &str) -> Value {
        match self {
            SigningKey::Ed25519 => {
                let spki = der(ED_PUBLIC);
                let x = &spki[spki.len() - 32..];
                json!({"kty": "OKP", "crv": "Ed25519", "use": "sig", "alg": "EdDSA",
                       "kid": kid, "x": URL_SAFE_NO_PAD.encode(x)})
            }
            SigningKey::P256 => {
                let spki = der(EC_PUBLIC);
                let point = &spki[spki.len() - 65..];
                assert_eq!(point[0], 4, "an uncompressed point");
                json!({"kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": kid,
                       "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
                       "y": URL_SAFE_NO_PAD.encode(&point[33..])})
            }
        }
    }

    /// A token for `sub` naming `kid`, valid for an hour from `now`.
    pub fn token(self, kid: &str, sub: &str, now: SystemTime) -> String {
        let (alg, key) = match self {
            SigningKey::Ed25519 => (
                Algorithm::EdDSA,
                EncodingKey::from_ed_pem(ED_PRIVATE.as_bytes()),
            ),
            SigningKey::P256 => (
                Algorithm::ES256,
                EncodingKey::from_ec_pem(EC_PRIVATE.as_bytes()),
            ),
        };
        let mut header = Header::new(alg);
        header.kid = Some(kid.to_owned());
        let iat = now.duration_since(UNIX_EPOCH).unwrap().as_secs();
        let claims = json!({"sub": sub, "iat": iat, "exp": iat + 3600});
        jsonwebtoken::encode(&header, &claims, &key.unwrap()).unwrap()
    }
}

/// A JWKS document of `keys`.
pub fn jwks(keys: &[(SigningKey, &str)]) -> Value {
    json!({"keys": keys.iter().map(|(key, kid)| key.jwk(kid)).collect::<Vec<_>>()})
}

/// `secs` seconds.
pub fn secs(secs: u64) -> Duration {
    Duration::from_secs(secs)
}
