//! JWKS over HTTPS: a `JwtVerifier` whose keys come from an issuer's JWKS URL. The
//! issuer runs in-process on loopback, over TLS with a certificate from a CA made by
//! the test; lifetimes run on a manual clock. `lifetime`: caching, rotation, removal,
//! unknown-kid storms; `outages`: a hanging issuer, oversized and invalid documents;
//! `transport`: TLS trust, plain http, configuration.

mod lifetime;
mod outages;
pub(crate) mod support;
mod transport;

use std::time::{SystemTime, UNIX_EPOCH};

use keygate::clock::{Clock, ManualClock};
use keygate::credential::jwt::{JwksSource, JwksSourceBuilder, JwtVerifier};
use keygate::credential::{BearerCredential, CredentialError, CredentialVerifier};
use support::tokens::{secs, SigningKey};
use support::{Issuer, TestCa};

const UNKNOWN_KID: &str = "The token's key id ('kid') names no key this service trusts";

/// A verifier on a manual clock, trusting `ca`, with a lifetime floor of 60 s and a
/// ceiling of 600 s, one fetch per 10 s at most, 300 s of stale use, and a timeout
/// long enough never to fire in these tests unless an issuer hangs.
pub struct Setup {
    pub verifier: JwtVerifier,
    pub clock: Clock,
    pub time: ManualClock,
}

pub fn source(issuer: &Issuer, ca: &TestCa) -> JwksSourceBuilder {
    JwksSource::builder(&issuer.url)
        .root_certificates_pem(ca.pem.clone())
        .timeout(secs(3600))
        .min_lifetime(secs(60))
        .max_lifetime(secs(600))
        .min_refetch_interval(secs(10))
        .stale_while_unreachable(secs(300))
}

impl Setup {
    pub fn new(source: JwksSourceBuilder) -> Self {
        let (clock, time) = Clock::manual(UNIX_EPOCH + secs(1_800_000_000));
        let verifier = JwtVerifier::builder()
            .jwks(source.build().unwrap())
            .build()
            .unwrap();
        Self {
            verifier,
            clock,
            time,
        }
    }

    pub fn now(&self) -> SystemTime {
        self.clock.now()
    }

    /// Verifies a token signed by `key` naming `kid`, made now.
    pub async fn verify(&self, key: SigningKey, kid: &str) -> Result<String, CredentialError> {
        let token = key.token(kid, "user_1", self.now());
        self.verify_token(token).await
    }

    pub async fn verify_token(&self, token: String) -> Result<String, CredentialError> {
        let credential = BearerCredential::new(token, self.now());
        let principal = self.verifier.verify(credential).await?;
        Ok(principal.subject.as_str().to_owned())
    }
}

pub fn refused(message: &str) -> Result<String, CredentialError> {
    Err(CredentialError::refused(message.to_owned()))
}

pub fn is_unavailable(result: &Result<String, CredentialError>) -> bool {
    matches!(result, Err(CredentialError::Unavailable(_)))
}

/// A `kid` nobody has issued.
pub fn random_kid() -> String {
    format!("kid-{:016x}", rand::random::<u64>())
}
