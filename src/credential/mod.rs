//! Credentials beside API keys: a hook that verifies any bearer token keygate does not
//! recognise as one of its own keys, such as a JWT.
//!
//! keygate recognises its own keys by prefix (`sk_live_`, `sk_test_`, `tc_`, or the
//! [`crate::key::KeyFormat`] configured). With a [`CredentialVerifier`] set by
//! [`crate::KeygateBuilder::credential_verifier`], every other
//! `Authorization: Bearer` token is handed to it; it answers with a [`Principal`] (who the
//! token names) or a [`CredentialError`]. A principal then goes through the same checks
//! as a key, in the same order, with the same refusals: its IP allowlist, the layer's
//! scope rules, read-only scopes, and the rate limit, then it reaches the handler as an
//! [`crate::Identity`] whose [`crate::Identity::credential`] is
//! [`CredentialKind::External`]. Audit events and metrics name it like a key.
//!
//! | the verifier answers | the client gets |
//! |---|---|
//! | `Ok(principal)` | the key checks from the IP allowlist on, as for a key |
//! | [`CredentialError::Refused`] | 401 `invalid_token`, with the verifier's message |
//! | [`CredentialError::Unavailable`], a panic, or no answer within the store timeout | 503 `verifier_unavailable` (fail closed) |
//!
//! Without a verifier nothing changes: a bearer that is not a keygate key is 401
//! `invalid_api_key`. A token with one of keygate's prefixes is always treated as a key
//! and never reaches the verifier, and neither does a key sent in the
//! [`crate::KeygateBuilder::api_key_header`]. With a verifier, credentials may be up to
//! [`MAX_VERIFIED_CREDENTIAL_LEN`] bytes long (a signed JWT rarely fits in keygate's own
//! 512-byte limit); longer ones are 400 `invalid_request` before the verifier runs.
//!
//! **Rate limits.** A principal is limited by its subject, in a namespace of its own
//! (`external`, beside `key` and `account`), so a subject can never draw on the bucket of
//! the API key or the account whose id it happens to equal. Its quota is [`Principal::rate_limit`], or the deployment's
//! default. With [`crate::ratelimit::RateLimitKey::PerAccount`], it also draws on its account's
//! shared bucket, together with that account's API keys.
//!
//! **No caching.** keygate does not cache a verifier's answers: each request is verified
//! afresh (a JWT's signature check takes tens of microseconds), so nothing needs
//! invalidating when a token or its signing key changes.
//!
//! ```
//! use keygate::credential::{BearerCredential, CredentialError, Principal};
//! use keygate::{Keygate, MemoryStore};
//! use keygate::scope::ScopeSet;
//!
//! // A verifier for opaque session tokens kept by another service.
//! let gate = Keygate::builder(MemoryStore::new())
//!     .credential_verifier(|credential: BearerCredential| async move {
//!         match credential.expose_secret() {
//!             "session-of-ada" => Ok(Principal::new("ada".into(), "acct_1".into())
//!                 .scopes(ScopeSet::parse(["streams:write"]).unwrap())),
//!             _ => Err(CredentialError::refused("The session has ended; sign in again")),
//!         }
//!     })
//!     .build();
//! # let _ = gate;
//! ```
//!
//! With the `jwt` feature, [`jwt::JwtVerifier`] verifies signed JWTs against configured
//! public keys; with `jwks`, against the keys of the issuer's JWKS URL, fetched over
//! HTTPS and kept for the document's lifetime (`jwt::JwksSource`).

mod principal;

#[cfg(feature = "jwt")]
#[cfg_attr(docsrs, doc(cfg(feature = "jwt")))]
pub mod jwt;

pub use principal::Principal;

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::time::SystemTime;

use async_trait::async_trait;
use zeroize::Zeroizing;

/// Longest credential accepted when a [`CredentialVerifier`] is configured: 8 KiB.
pub const MAX_VERIFIED_CREDENTIAL_LEN: usize = 8 * 1024;

/// A bearer token that is not a keygate key, as handed to a [`CredentialVerifier`].
///
/// The token is zeroed when dropped and never shown by `Debug`.
pub struct BearerCredential {
    token: Zeroizing<String>,
    now: SystemTime,
}

impl BearerCredential {
    /// A credential presented at `now`. keygate makes these; tests of a verifier can too.
    pub fn new(token: impl Into<String>, now: SystemTime) -> Self {
        Self {
            token: Zeroizing::new(token.into()),
            now,
        }
    }

    /// The token, exactly as presented after `Bearer `. Never log it.
    pub fn expose_secret(&self) -> &str {
        &self.token
    }

    /// The time of the request on keygate's clock ([`crate::KeygateBuilder::clock`]):
    /// check expiry against this, so that tests on a manual clock control it.
    pub fn now(&self) -> SystemTime {
        self.now
    }
}

impl fmt::Debug for BearerCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BearerCredential")
            .field(
                "token",
                &format_args!("[redacted, {} bytes]", self.token.len()),
            )
            .field("now", &self.now)
            .finish()
    }
}

/// Why a [`CredentialVerifier`] did not produce a [`Principal`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CredentialError {
    /// The credential is not valid: answered with 401 `invalid_token` and this message.
    /// The message goes to the client: never put the token or other secrets in it.
    #[error("{0}")]
    Refused(Cow<'static, str>),
    /// The verifier could not decide (a key set it needs is unreachable, say): answered
    /// with 503 `verifier_unavailable`, failing closed. The text is logged, never sent.
    #[error("credential verifier unavailable: {0}")]
    Unavailable(String),
}

impl CredentialError {
    /// A refusal with `message` for the client.
    pub fn refused(message: impl Into<Cow<'static, str>>) -> Self {
        Self::Refused(message.into())
    }

    /// An infrastructure failure, described by `detail` for the log.
    pub fn unavailable(detail: impl Into<String>) -> Self {
        Self::Unavailable(detail.into())
    }
}

/// Verifies bearer tokens that are not keygate keys. Set one with
/// [`crate::KeygateBuilder::credential_verifier`].
///
/// Object-safe (`Arc<dyn CredentialVerifier>` works) and implemented for closures
/// `Fn(BearerCredential) -> impl Future<Output = Result<Principal, CredentialError>>`.
/// A verifier that panics or takes longer than the store timeout
/// ([`crate::KeygateBuilder::store_timeout`]) is answered with 503, like a failing store.
///
/// ```
/// use keygate::credential::{BearerCredential, CredentialError, CredentialVerifier, Principal};
///
/// struct Sessions;
///
/// #[async_trait::async_trait]
/// impl CredentialVerifier for Sessions {
///     async fn verify(&self, credential: BearerCredential) -> Result<Principal, CredentialError> {
///         if credential.expose_secret().starts_with("sess.") {
///             Ok(Principal::new("user_7".into(), "acct_1".into()))
///         } else {
///             Err(CredentialError::refused("Unknown session"))
///         }
///     }
/// }
/// let _ = keygate::Keygate::builder(keygate::MemoryStore::new())
///     .credential_verifier(Sessions)
///     .build();
/// ```
#[async_trait]
pub trait CredentialVerifier: Send + Sync + 'static {
    /// Who `credential` names, or why it is not accepted.
    async fn verify(&self, credential: BearerCredential) -> Result<Principal, CredentialError>;
}

#[async_trait]
impl<F, Fut> CredentialVerifier for F
where
    F: Fn(BearerCredential) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Principal, CredentialError>> + Send + 'static,
{
    async fn verify(&self, credential: BearerCredential) -> Result<Principal, CredentialError> {
        self(credential).await
    }
}

/// What kind of credential an [`crate::Identity`] was made from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CredentialKind {
    /// One of keygate's own API keys.
    ApiKey,
    /// A bearer token the configured [`CredentialVerifier`] accepted, such as a JWT.
    External,
}
