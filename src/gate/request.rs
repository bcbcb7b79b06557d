//! Checking a request's key: synchronous checks with no tower types, in the documented
//! order (see [`crate::layer`]), and the rendering of refusals ([`RenderRejection`]).
//!
//! Internally, `Verifier::start` does everything that needs no I/O: credentials, format
//! and checksum, the environment named by the prefix, and the cache. On a miss the layer
//! awaits the cache's shared lookup, then `Verifier::admit` runs the checks that need the
//! key: digest match, status, environment, IP, the route's scopes, read-only, and finally
//! the rate limit, so a refused request consumes no quota.
//!
//! A bearer that is not a keygate key goes, when a [credential
//! verifier](crate::credential) is configured, to `external.rs`: the verifier runs in
//! place of the lookup, and its principal takes the checks from the IP allowlist on.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use http::HeaderMap;

use super::refusal::Prerendered;
use crate::cache::entry::ResolvedKey;
use crate::cache::{Cached, KeyCache};
use crate::check::access::Rules;
use crate::check::credentials::{self, KeySource};
use crate::check::external;
use crate::client_ip::ClientIpResolver;
use crate::clock::Clock;
use crate::credential::BearerCredential;
use crate::error::AuthError;
use crate::identity::Identity;
use crate::key::digest::{KeyDigest, KeyHasher};
use crate::key::{Environment, KeyFormat};
use crate::ratelimit::{RateLimitStatus, RateLimits};
use crate::refusal::RenderRejection;
use crate::scope::{ScopeImplications, ScopeSet};
use crate::store::KeyStoreWrite;

/// Everything on the request path of one [`crate::Keygate`].
pub(crate) struct Verifier {
    pub(crate) id: u64,
    pub(crate) format: KeyFormat,
    pub(crate) hasher: KeyHasher,
    pub(crate) environment: Option<Environment>,
    /// Whether environment-neutral keys are accepted (always, when `environment` is
    /// `None`).
    pub(crate) accept_neutral: bool,
    pub(crate) realm: String,
    pub(crate) clock: Clock,
    pub(crate) cache: Arc<KeyCache>,
    pub(crate) limits: Arc<RateLimits>,
    pub(crate) implications: ScopeImplications,
    pub(crate) read_only_scopes: ScopeSet,
    pub(crate) ip_resolver: Arc<dyn ClientIpResolver>,
    pub(crate) renderer: Arc<dyn RenderRejection>,
    pub(crate) key_source: KeySource,
    pub(crate) writer: Option<Arc<dyn KeyStoreWrite>>,
    pub(crate) last_used_interval: Duration,
    pub(crate) prerendered: Prerendered,
    /// The credential hook, when a verifier is configured.
    pub(crate) credentials: Option<Arc<external::CredentialHook>>,
}

/// The first, synchronous step of checking a request.
pub(crate) enum Start {
    /// Refused without I/O.
    Refused(AuthError),
    /// No credentials, and the route allows anonymous callers.
    Anonymous,
    /// Already verified by an outer layer of the same gate: only this layer's route
    /// rules remain.
    Verified,
    /// Found in the cache, at this time.
    Cached(Arc<ResolvedKey>, KeyDigest, SystemTime),
    /// Needs a store lookup.
    Lookup(KeyDigest),
    /// Not a keygate key: for the credential verifier.
    Credential(BearerCredential),
}

/// The outcome of [`Verifier::admit`].
pub(crate) enum Admission {
    /// Every check passed; the identity is attached. Carries the rate-limit state to
    /// report, when limiting applies.
    Admitted(Option<RateLimitStatus>),
    /// Refused, with the rendered response.
    Refused(http::Response<bytes::Bytes>),
}

impl Verifier {
    /// Step one: everything that needs no I/O.
    pub(crate) fn start(
        &self,
        headers: &HeaderMap,
        extensions: &http::Extensions,
        rules: &Rules,
    ) -> Start {
        if extensions
            .get::<Identity>()
            .is_some_and(|identity| identity.0.gate == self.id)
        {
            return Start::Verified;
        }
        let token = match self.key_source.token(headers) {
            Ok(Some(token)) => token,
            Ok(None) if rules.anonymous => return Start::Anonymous,
            Ok(None) => return Start::Refused(AuthError::MissingCredentials),
            Err(e) => return Start::Refused(e),
        };
        let digest = match self.digest_of(token) {
            Ok(digest) => digest,
            Err(e) => {
                // A token that is not even RFC 6750's `b64token` is a malformed request.
                if let Err(malformed) = credentials::check_token68(token) {
                    return Start::Refused(malformed);
                }
                return match self.hand_off(token, headers) {
                    Some(credential) => Start::Credential(credential),
                    None => Start::Refused(e),
                };
            }
        };
        let now = self.clock.now();
        match self.cache.get(&digest, now) {
            Cached::Hit(key) => Start::Cached(key, digest, now),
            Cached::Unknown => Start::Refused(AuthError::InvalidKey),
            Cached::Miss => Start::Lookup(digest),
        }
    }

    /// Runs every check after the lookup on `req`. On success it attaches the identity;
    /// on refusal it renders the response. Both outcomes are audited.
    pub(crate) fn admit<B>(
        &self,
        key: Arc<ResolvedKey>,
        digest: &KeyDigest,
        req: &mut http::Request<B>,
        rules: &Rules,
        now: SystemTime,
    ) -> Admission {
        match self.authorize(&key, digest, req, rules, now) {
            Ok(status) => {
                self.audit_allowed(&key, req.headers(), req.extensions());
                self.touch(&key, now);
                req.extensions_mut().insert(Identity(key));
                Admission::Admitted(status)
            }
            Err((error, status)) => {
                self.audit_refused(&error, Some(&key), req.headers(), req.extensions());
                Admission::Refused(self.refusal(&error, status.as_ref(), rules))
            }
        }
    }

    /// For a request an outer layer of this gate already admitted: this layer's route
    /// rules only. No parsing, hashing, lookup or quota. `Some` is the refusal.
    pub(crate) fn admit_verified<B>(
        &self,
        req: &http::Request<B>,
        rules: &Rules,
    ) -> Option<http::Response<bytes::Bytes>> {
        let key = &req.extensions().get::<Identity>()?.0;
        let error = rules
            .check_scopes(&key.granted, req.method(), req.uri().path())
            .err()?;
        self.audit_refused(&error, Some(key), req.headers(), req.extensions());
        Some(self.refusal(&error, None, rules))
    }

    /// Audits and renders a refusal made before any key was found.
    pub(crate) fn refuse<B>(
        &self,
        error: &AuthError,
        req: &http::Request<B>,
        rules: &Rules,
    ) -> http::Response<bytes::Bytes> {
        self.audit_refused(error, None, req.headers(), req.extensions());
        self.refusal(error, None, rules)
    }

    /// Format and checksum, then the environment the prefix names (another
    /// environment's key, or an environment-neutral key where those are not accepted, is
    /// refused before any lookup, as junk is), then the digest.
    pub(crate) fn digest_of(&self, token: &str) -> Result<KeyDigest, AuthError> {
        let parsed = self
            .format
            .parse(token)
            .map_err(|_| AuthError::InvalidKey)?;
        match (self.environment, parsed.prefix().environment()) {
            (Some(expected), Some(key)) if key != expected => {
                return Err(AuthError::WrongEnvironment { key, expected });
            }
            (Some(_), None) if !self.accept_neutral => return Err(AuthError::InvalidKey),
            _ => {}
        }
        Ok(self.hasher.digest(parsed.expose_secret()))
    }

    pub(crate) fn ietf_headers(&self) -> bool {
        self.limits.config().ietf_headers
    }
}
