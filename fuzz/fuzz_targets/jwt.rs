//! `JwtVerifier` on arbitrary bearer tokens: the token's shape and JOSE header, and
//! (on tokens this target signs itself with the trusted Ed25519 test key) the claims.
//!
//! The first byte picks the input's form:
//! - 0: the rest is the whole token, as a client would send it;
//! - 1: the rest is `header JSON` `\n` `claims JSON`, encoded and signed with the
//!   trusted key, so that header and claims reach every check after the signature;
//! - 2: the rest is the claims JSON, under the header `{"alg":"EdDSA","kid":"ed-1"}`.
//!
//! Invariants: no panic; a refusal is `Refused` (never `Unavailable`: nothing here is
//! infrastructure) and does not repeat the token's signature; an accepted token names
//! the subject and account its claims hold, was signed, is unexpired, and keeps its
//! claims as the principal's metadata.
#![no_main]

use std::sync::OnceLock;
use std::time::{Duration, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::{Algorithm, EncodingKey};
use keygate::credential::jwt::{JwtKey, JwtVerifier};
use keygate::credential::{BearerCredential, CredentialError, CredentialVerifier};
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value};

const ED_PRIVATE: &str = include_str!("../../tests/fixtures/jwt/ed_private.pem");
const ED_PUBLIC: &str = include_str!("../../tests/fixtures/jwt/ed_public.pem");
const RSA_PUBLIC: &str = include_str!("../../tests/fixtures/jwt/rsa_public.pem");
const NOW: u64 = 1_700_000_000;
const LEEWAY: u64 = 60;

struct Setup {
    verifier: JwtVerifier,
    signer: EncodingKey,
    runtime: tokio::runtime::Runtime,
}

fn setup() -> &'static Setup {
    static SETUP: OnceLock<Setup> = OnceLock::new();
    SETUP.get_or_init(|| Setup {
        verifier: JwtVerifier::builder()
            .key(
                JwtKey::ed25519_pem(ED_PUBLIC.as_bytes())
                    .unwrap()
                    .kid("ed-1"),
            )
            .key(
                JwtKey::rs256_pem(RSA_PUBLIC.as_bytes())
                    .unwrap()
                    .kid("rsa-1"),
            )
            .issuer("https://auth.test/")
            .audience("keygate-tests")
            .account_claim("org")
            .leeway(Duration::from_secs(LEEWAY))
            .build()
            .unwrap(),
        signer: EncodingKey::from_ed_pem(ED_PRIVATE.as_bytes()).unwrap(),
        runtime: tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap(),
    })
}

/// `header.claims.signature`, signed with the trusted Ed25519 key.
fn signed(setup: &Setup, header: &[u8], claims: &[u8]) -> String {
    let message = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(claims)
    );
    let signature =
        jsonwebtoken::crypto::sign(message.as_bytes(), &setup.signer, Algorithm::EdDSA).unwrap();
    format!("{message}.{signature}")
}

fuzz_target!(|data: &[u8]| {
    let Some((&form, rest)) = data.split_first() else {
        return;
    };
    let setup = setup();
    let (token, claims) = match form % 3 {
        0 => match std::str::from_utf8(rest) {
            Ok(token) => (token.to_owned(), None),
            Err(_) => return,
        },
        1 => {
            let split = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
            let claims = rest.get(split + 1..).unwrap_or_default();
            (signed(setup, &rest[..split], claims), Some(claims))
        }
        _ => (
            signed(setup, br#"{"alg":"EdDSA","kid":"ed-1"}"#, rest),
            Some(rest),
        ),
    };
    let now = UNIX_EPOCH + Duration::from_secs(NOW);
    let credential = BearerCredential::new(token.clone(), now);
    let verdict = setup.runtime.block_on(setup.verifier.verify(credential));
    match verdict {
        Err(CredentialError::Refused(message)) => {
            if claims.is_some() {
                let signature = token.rsplit('.').next().unwrap();
                assert!(!message.contains(signature), "{message}");
            }
        }
        Err(other) => panic!("a bad token is refused, not {other:?}"),
        Ok(principal) => {
            // Only tokens signed with the trusted key can be accepted.
            let claims = claims.expect("an unsigned token was accepted");
            let claims: Map<String, Value> =
                serde_json::from_slice(claims).expect("accepted claims are a JSON object");
            assert_eq!(principal.metadata, claims);
            let subject = claims["sub"].as_str().unwrap();
            assert!((1..=256).contains(&subject.len()));
            assert_eq!(principal.subject.as_str(), subject);
            assert_eq!(principal.account.as_str(), claims["org"].as_str().unwrap());
            let exp = claims["exp"].as_f64().unwrap();
            assert!(
                exp + LEEWAY as f64 > NOW as f64,
                "expired token accepted: {exp}"
            );
            for scope in principal.scopes.iter() {
                let named = [&claims.get("scope"), &claims.get("scp")]
                    .into_iter()
                    .flatten()
                    .any(|v| v.to_string().contains(scope.as_str()));
                assert!(named, "scope {} not in the claims", scope.as_str());
            }
        }
    }
});
