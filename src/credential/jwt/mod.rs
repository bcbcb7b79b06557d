//! [`JwtVerifier`]: a [`CredentialVerifier`] for signed JWTs (feature `jwt`).
//!
//! It checks, in this order, and refuses with 401 `invalid_token` and a message saying
//! which check failed:
//!
//! 1. the token is three base64url segments, and its header a JSON object with no `crit`
//!    parameter (no extension is understood);
//! 2. the key: the configured key whose `kid` the header names, or the only key when
//!    the header names none;
//! 3. the algorithm: exactly the key's own (RS256, ES256 or EdDSA). `alg: none`, and
//!    HS256 "signed" with an RSA public key as the HMAC secret, never match a key;
//! 4. the signature, with the `jsonwebtoken` crate (RustCrypto backends);
//! 5. `iss` and `aud`, when configured (then the token must carry them);
//! 6. `exp` (required) and `nbf` against the request time on keygate's clock, with a
//!    leeway (60 s by default) either way;
//! 7. the subject and account claims (`sub` for both by default), strings of 1 to 256
//!    bytes;
//! 8. with [`JwtVerifierBuilder::environment_claim`], that claim, `"live"` or `"test"`.
//!
//! The principal expires with the token (`exp`, without the leeway), and acts in the
//! environment of [`JwtVerifierBuilder::environment`] or
//! [`JwtVerifierBuilder::environment_claim`] (none by default). Key management confines
//! it by both, as it confines an API key: see [`crate::credential::Principal`].
//!
//! Scopes come from `scope` (space-separated) or, failing that, `scp` (an array or a
//! space-separated string), or from the claim named by [`JwtVerifierBuilder::scope_claim`].
//! Scope names keygate cannot hold are left out, which can only narrow what the token
//! grants. Every claim is kept as the identity's [`crate::Identity::metadata`].
//!
//! ```
//! use std::time::Duration;
//! use keygate::credential::jwt::{JwtKey, JwtVerifier};
//! use keygate::{Keygate, MemoryStore};
//!
//! let jwks = r#"{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"2024-06",
//!                "x":"8OOLKldapI6Ti63boo2whYFkQOvfWuiPS0hTlPsnTpc"}]}"#;
//! let jwt = JwtVerifier::builder()
//!     .keys(JwtKey::from_jwks(jwks)?)
//!     .issuer("https://auth.example.com/")
//!     .audience("streams-api")
//!     .account_claim("organization_id")
//!     .leeway(Duration::from_secs(30))
//!     .build()?;
//! let gate = Keygate::builder(MemoryStore::new())
//!     .credential_verifier(jwt.clone())
//!     .build();
//! # let _ = gate;
//! # Ok::<(), keygate::credential::jwt::JwtConfigError>(())
//! ```
//!
//! The verifier is cheap to clone; [`JwtVerifier::replace_keys`] on any clone rotates
//! the keys of all of them (after fetching a provider's new JWKS, say).
//!
//! With the `jwks` feature, [`JwtVerifierBuilder::jwks`] takes the keys from the
//! issuer's JWKS URL instead: a `JwksSource` fetches it over HTTPS (rustls), within a
//! timeout and a size limit, keeps it for its `Cache-Control` lifetime between a floor
//! and a ceiling, fetches again (at most once per interval) when a token names an
//! unknown `kid`, uses the keys held for a bounded time while the issuer is
//! unreachable, and then fails closed with 503 `verifier_unavailable`. A key removed
//! from the document stops verifying at the next refresh.

mod claims;
mod environment;
#[cfg(feature = "jwks")]
mod jwks;
mod key_set;
mod keys;

#[cfg(feature = "jwks")]
#[cfg_attr(docsrs, doc(cfg(feature = "jwks")))]
pub use jwks::{JwksConfigError, JwksSource, JwksSourceBuilder};
pub use keys::{JwtAlgorithm, JwtConfigError, JwtKey};

use std::fmt;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::Validation;
use serde_json::{Map, Value};

use super::{BearerCredential, CredentialError, CredentialVerifier, Principal};
use crate::client_ip::IpAllowlist;
use crate::store::record::RateLimit;
use claims::ClaimNames;
use environment::EnvironmentSource;
use key_set::KeySet;
use keys::KeyChoice;

/// Verifies signed JWTs against configured public keys: see [the module docs](self).
#[derive(Clone)]
pub struct JwtVerifier {
    inner: Arc<Config>,
}

struct Config {
    keys: KeySet,
    issuers: Vec<String>,
    audiences: Vec<String>,
    leeway: Duration,
    claims: ClaimNames,
    ips: IpAllowlist,
    rate_limit: Option<RateLimit>,
    environment: EnvironmentSource,
}

/// Builds a [`JwtVerifier`]; from [`JwtVerifier::builder`].
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until `build` is called"]
pub struct JwtVerifierBuilder {
    keys: Vec<JwtKey>,
    #[cfg(feature = "jwks")]
    jwks: Option<JwksSource>,
    issuers: Vec<String>,
    audiences: Vec<String>,
    leeway: Duration,
    claims: ClaimNames,
    ips: IpAllowlist,
    rate_limit: Option<RateLimit>,
    environment: EnvironmentSource,
}

impl JwtVerifier {
    /// Starts a verifier with no keys, no issuer or audience check, a leeway of 60 s,
    /// and `sub` as both subject and account.
    pub fn builder() -> JwtVerifierBuilder {
        JwtVerifierBuilder {
            keys: Vec::new(),
            #[cfg(feature = "jwks")]
            jwks: None,
            issuers: Vec::new(),
            audiences: Vec::new(),
            leeway: Duration::from_secs(60),
            claims: ClaimNames::default(),
            ips: IpAllowlist::any(),
            rate_limit: None,
            environment: EnvironmentSource::None,
        }
    }

    /// Replaces the trusted keys, for this verifier and every clone of it. Tokens being
    /// checked finish with the keys they started with. Refused for a verifier whose
    /// keys come from a JWKS URL.
    pub fn replace_keys(&self, keys: Vec<JwtKey>) -> Result<(), JwtConfigError> {
        #[allow(irrefutable_let_patterns)]
        let KeySet::Fixed(held) = &self.inner.keys
        else {
            return Err(JwtConfigError::KeysFromJwks);
        };
        let keys = checked_keys(keys)?;
        *held.write().unwrap_or_else(|e| e.into_inner()) = keys;
        Ok(())
    }

    /// Checks `token` as of `credential.now()`: the claims and the expiry on success.
    async fn check(
        &self,
        credential: &BearerCredential,
    ) -> Result<(Map<String, Value>, std::time::SystemTime), CredentialError> {
        let token = credential.expose_secret();
        let header = Header::parse(token).ok_or_else(not_a_jwt)?;
        let keys = self
            .inner
            .keys
            .current(header.kid.as_deref(), credential.now())
            .await?;
        let key = match keys::choose(&keys, header.kid.as_deref()) {
            KeyChoice::Key(key) => key,
            KeyChoice::UnknownKid => {
                return Err(CredentialError::refused(
                    "The token's key id ('kid') names no key this service trusts",
                ))
            }
            KeyChoice::NoKid => {
                return Err(CredentialError::refused(
                    "The token names no key id ('kid'), and this service trusts several keys",
                ))
            }
        };
        if header.alg != key.algorithm.as_str() {
            return Err(CredentialError::refused(
                "The token's signing algorithm is not accepted",
            ));
        }
        let validation = self.validation(key.algorithm);
        let data = jsonwebtoken::decode::<Map<String, Value>>(token, &key.decoding, &validation)
            .map_err(|e| match e.kind() {
                ErrorKind::InvalidSignature => {
                    CredentialError::refused("The token's signature is not valid")
                }
                ErrorKind::InvalidIssuer => {
                    CredentialError::refused("The token's issuer ('iss') is not accepted")
                }
                ErrorKind::InvalidAudience => {
                    CredentialError::refused("The token's audience ('aud') is not accepted")
                }
                ErrorKind::MissingRequiredClaim(c) if c == "iss" => {
                    CredentialError::refused("The token has no issuer ('iss' claim)")
                }
                ErrorKind::MissingRequiredClaim(c) if c == "aud" => {
                    CredentialError::refused("The token has no audience ('aud' claim)")
                }
                _ => not_a_jwt(),
            })?;
        let expires_at = claims::check_time(&data.claims, credential.now(), self.inner.leeway)?;
        Ok((data.claims, expires_at))
    }

    /// The library's checks: the one algorithm, and `iss`/`aud` when configured. Time
    /// is checked by keygate, on keygate's clock.
    fn validation(&self, algorithm: JwtAlgorithm) -> Validation {
        let config = &self.inner;
        let mut v = Validation::new(algorithm.to_jsonwebtoken());
        v.validate_exp = false;
        v.validate_nbf = false;
        v.required_spec_claims.clear();
        if !config.issuers.is_empty() {
            v.set_issuer(&config.issuers);
            v.required_spec_claims.insert("iss".into());
        }
        if config.audiences.is_empty() {
            v.validate_aud = false;
        } else {
            v.set_audience(&config.audiences);
            v.required_spec_claims.insert("aud".into());
        }
        v
    }
}

fn not_a_jwt() -> CredentialError {
    CredentialError::refused("The bearer token is not a valid JWT")
}

#[async_trait]
impl CredentialVerifier for JwtVerifier {
    async fn verify(&self, credential: BearerCredential) -> Result<Principal, CredentialError> {
        let (claims, expires_at) = self.check(&credential).await?;
        let environment = self.inner.environment.of(&claims)?;
        let mut principal = claims::principal(claims, &self.inner.claims)?;
        principal.ips = self.inner.ips.clone();
        principal.rate_limit = self.inner.rate_limit;
        principal.expires_at = Some(expires_at);
        principal.environment = environment;
        Ok(principal)
    }
}

impl fmt::Debug for JwtVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.inner;
        f.debug_struct("JwtVerifier")
            .field("keys", &c.keys)
            .field("issuers", &c.issuers)
            .field("audiences", &c.audiences)
            .field("leeway", &c.leeway)
            .finish_non_exhaustive()
    }
}

/// The parts of a JOSE header keygate reads.
struct Header {
    alg: String,
    kid: Option<String>,
}

impl Header {
    /// The header of a token shaped like a JWS compact serialization, or `None`.
    fn parse(token: &str) -> Option<Header> {
        let mut parts = token.split('.');
        let (header, payload, signature) = (parts.next()?, parts.next()?, parts.next()?);
        let base64url = |s: &str| {
            s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        };
        let shaped = parts.next().is_none()
            && !header.is_empty()
            && !signature.is_empty()
            && [header, payload, signature].into_iter().all(base64url);
        if !shaped {
            return None;
        }
        let json = URL_SAFE_NO_PAD.decode(header).ok()?;
        let Value::Object(fields) = serde_json::from_slice(&json).ok()? else {
            return None;
        };
        if fields.contains_key("crit") {
            return None;
        }
        let alg = fields.get("alg")?.as_str()?.to_owned();
        let kid = match fields.get("kid") {
            None => None,
            Some(Value::String(kid)) => Some(kid.clone()),
            Some(_) => return None,
        };
        Some(Header { alg, kid })
    }
}

fn checked_keys(keys: Vec<JwtKey>) -> Result<Arc<[JwtKey]>, JwtConfigError> {
    if keys.is_empty() {
        return Err(JwtConfigError::NoKeys);
    }
    keys::check_unique(&keys)?;
    Ok(keys.into())
}

impl JwtVerifierBuilder {
    /// Also trusts `key`.
    pub fn key(mut self, key: JwtKey) -> Self {
        self.keys.push(key);
        self
    }

    /// Also trusts `keys`, such as those of [`JwtKey::from_jwks`].
    pub fn keys(mut self, keys: impl IntoIterator<Item = JwtKey>) -> Self {
        self.keys.extend(keys);
        self
    }

    /// Also accepts tokens from `issuer`. Once one is given, `iss` is required and must
    /// be one of them. Default: not checked.
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuers.push(issuer.into());
        self
    }

    /// Also accepts tokens for `audience`. Once one is given, `aud` is required and must
    /// name one of them. Default: not checked (a token with an `aud` is accepted).
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audiences.push(audience.into());
        self
    }

    /// Clock skew tolerated on `exp` and `nbf`. Default: 60 s.
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// The claim naming the subject: the identity's key id. Default: `sub`.
    pub fn subject_claim(mut self, name: impl Into<String>) -> Self {
        self.claims.subject = name.into();
        self
    }

    /// The claim naming the account. Default: `sub`.
    pub fn account_claim(mut self, name: impl Into<String>) -> Self {
        self.claims.account = name.into();
        self
    }

    /// The claim holding the scopes, as a space-separated string or an array of
    /// strings. Default: `scope`, else `scp`.
    pub fn scope_claim(mut self, name: impl Into<String>) -> Self {
        self.claims.scopes = Some(name.into());
        self
    }

    /// Addresses every token may be used from. Default: any.
    pub fn allowed_ips(mut self, ips: IpAllowlist) -> Self {
        self.ips = ips;
        self
    }

    /// The quota of every token's subject. Default: the deployment's default quota.
    pub fn rate_limit(mut self, quota: RateLimit) -> Self {
        self.rate_limit = Some(quota);
        self
    }

    /// The verifier. Refuses no keys at all, two keys with the same `kid` (or two
    /// without one), and configured keys together with a JWKS URL.
    pub fn build(self) -> Result<JwtVerifier, JwtConfigError> {
        #[cfg(feature = "jwks")]
        let keys = match self.jwks {
            Some(_) if !self.keys.is_empty() => return Err(JwtConfigError::KeysFromJwks),
            Some(source) => KeySet::Jwks(source),
            None => KeySet::Fixed(RwLock::new(checked_keys(self.keys)?)),
        };
        #[cfg(not(feature = "jwks"))]
        let keys = KeySet::Fixed(RwLock::new(checked_keys(self.keys)?));
        Ok(JwtVerifier {
            inner: Arc::new(Config {
                keys,
                issuers: self.issuers,
                audiences: self.audiences,
                leeway: self.leeway,
                claims: self.claims,
                ips: self.ips,
                rate_limit: self.rate_limit,
                environment: self.environment,
            }),
        })
    }
}
