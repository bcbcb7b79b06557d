//! The request path the layer drives: the checks of [`crate::check`] in the documented
//! order (see [`crate::layer`]), with no tower types.
//!
//! [`Keygate::start`] does everything that needs no I/O: credentials, format and
//! checksum, the environment named by the prefix, and the cache. On a miss the layer
//! awaits the cache's shared lookup ([`Keygate::lookup`]), then [`Keygate::admit`] runs
//! the checks that need the key: status, access (IP, the route's scopes, read-only),
//! and finally the rate limit, so a refused request consumes no quota.
//!
//! A bearer that is not a keygate key goes, when a [credential
//! verifier](crate::credential) is configured, to the verifier in place of the lookup,
//! and its principal takes the checks from access on ([`Keygate::admit_credential`]).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use http::HeaderMap;

use super::lease_wait::AwaitingLease;
use super::{Keygate, PendingEvent};
use crate::activity::Outcome;
use crate::cache::entry::ResolvedKey;
use crate::cache::Cached;
use crate::check::access::{self, ScopeRules};
use crate::check::external::CredentialFuture;
use crate::check::limit::{self, Refused};
use crate::check::{credentials, status, usage};
use crate::clock::Now;
use crate::credential::BearerCredential;
use crate::error::AuthError;
use crate::identity::Identity;
use crate::key::digest::KeyDigest;
use crate::metering::DryCell;
use crate::ratelimit::{QuotaFields, RateLimitStatus};
use crate::refusal::RefusalAnswer;

/// The store lookup of a cache miss, shared by every request for the same key.
pub(crate) type LookupFuture =
    Pin<Box<dyn Future<Output = Result<Option<Arc<ResolvedKey>>, AuthError>> + Send + 'static>>;

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
    Cached(Arc<ResolvedKey>, KeyDigest, Now),
    /// Needs a store lookup.
    Lookup(KeyDigest),
    /// Not a keygate key: for the credential verifier.
    Credential(BearerCredential),
}

/// The outcome of [`Keygate::admit`].
pub(crate) enum Admission {
    /// Every check passed; the identity is attached. Carries the rate-limit state to
    /// report, when limiting applies, and the quotas to report, when quota headers are
    /// on.
    Admitted(
        Option<RateLimitStatus>,
        Option<Box<PendingEvent>>,
        Option<Box<QuotaFields>>,
    ),
    /// Refused, with the rendered response.
    Refused(http::Response<bytes::Bytes>),
    /// Every check passed but a meter's cell is dry: await its lease, then
    /// [`Keygate::resume`].
    AwaitLease(Box<AwaitingLease>),
}

impl Keygate {
    /// Steps 1 to 3 as far as they go without I/O: credentials, format, the cache.
    pub(crate) fn start(
        &self,
        headers: &HeaderMap,
        extensions: &http::Extensions,
        anonymous: bool,
    ) -> Start {
        let v = &*self.inner;
        if extensions
            .get::<Identity>()
            .is_some_and(|identity| identity.0.gate == v.id)
        {
            return Start::Verified;
        }
        let token = match v.key_source.token(headers) {
            Ok(Some(token)) => token,
            Ok(None) if anonymous => return Start::Anonymous,
            Ok(None) => return Start::Refused(AuthError::MissingCredentials),
            Err(e) => return Start::Refused(e),
        };
        let digest = match v.keys.digest_of(token) {
            Ok(digest) => digest,
            Err(e) => {
                // A token that is not even RFC 6750's `b64token` is a malformed request.
                let token = match credentials::check_token68(token) {
                    Ok(token) => token,
                    Err(malformed) => return Start::Refused(malformed),
                };
                let handed = v
                    .credentials
                    .as_ref()
                    .and_then(|hook| hook.hand_off(&v.keys.format, &v.clock, token, headers));
                return match handed {
                    Some(credential) => Start::Credential(credential),
                    None => Start::Refused(e),
                };
            }
        };
        let now = v.clock.read();
        match v.cache.get(&digest, now.at) {
            Cached::Hit(key) => Start::Cached(key, digest, now),
            Cached::Unknown => Start::Refused(AuthError::InvalidKey),
            Cached::Miss => Start::Lookup(digest),
        }
    }

    /// Step 3 on a miss: the cache's one shared store lookup for `digest`, after the
    /// stored plans when they must be read again (see [`crate::metering`]).
    pub(crate) fn lookup(&self, digest: KeyDigest) -> LookupFuture {
        if !self.inner.metering.plans.stale() {
            return Box::pin(self.inner.cache.load(digest));
        }
        let gate = self.clone();
        Box::pin(async move {
            let metering = &gate.inner.metering;
            metering.plans.load(metering.settings.wait).await?;
            gate.inner.cache.load(digest).await
        })
    }

    /// Step 3 for a credential that is not a keygate key: the credential verifier.
    pub(crate) fn verify_credential(&self, credential: BearerCredential) -> CredentialFuture {
        self.inner
            .credentials
            .as_ref()
            .expect("start hands off only with a verifier configured")
            .verify(credential)
    }

    /// Finishes a request after the store answered: [`Keygate::admit`] for a found key,
    /// the refusal otherwise.
    pub(crate) fn admit_found<B>(
        &self,
        found: Result<Option<Arc<ResolvedKey>>, AuthError>,
        digest: &KeyDigest,
        req: &mut http::Request<B>,
        scopes: &ScopeRules,
        answer: &RefusalAnswer,
    ) -> Admission {
        match found.and_then(|k| k.ok_or(AuthError::InvalidKey)) {
            Ok(key) => {
                let now = self.inner.clock.read();
                self.admit(key, digest, req, scopes, answer, now)
            }
            Err(error) => Admission::Refused(self.refuse(&error, req, answer)),
        }
    }

    /// Runs every check after the lookup on `req`. On success it attaches the identity;
    /// on refusal it renders the response. Both outcomes are audited.
    pub(crate) fn admit<B>(
        &self,
        key: Arc<ResolvedKey>,
        digest: &KeyDigest,
        req: &mut http::Request<B>,
        scopes: &ScopeRules,
        answer: &RefusalAnswer,
        now: Now,
    ) -> Admission {
        let v = &*self.inner;
        let checked = status::check(&key, digest, now.at, v.keys.environment)
            .map_err(|e| (e, None))
            .and_then(|()| self.access_then_limit(&key, req, scopes, now));
        self.conclude(key, checked, req, answer, now, scopes.cost.unwrap_or(1))
    }

    /// Finishes a request carrying a verified credential, or the verifier's refusal: the
    /// same checks as a key's after its status (access, rate limit), the same audit
    /// events and the same rendering.
    pub(crate) fn admit_credential<B>(
        &self,
        verified: Result<Arc<ResolvedKey>, AuthError>,
        req: &mut http::Request<B>,
        scopes: &ScopeRules,
        answer: &RefusalAnswer,
    ) -> Admission {
        let key = match verified {
            Ok(key) => key,
            Err(error) => return Admission::Refused(self.refuse(&error, req, answer)),
        };
        let now = self.inner.clock.read();
        let checked = self.access_then_limit(&key, req, scopes, now);
        self.conclude(key, checked, req, answer, now, scopes.cost.unwrap_or(1))
    }

    /// For a request an outer layer of this gate already admitted: this layer's route
    /// rules only. No parsing, hashing, lookup or quota. `Some` is the refusal.
    pub(crate) fn admit_verified<B>(
        &self,
        req: &mut http::Request<B>,
        scopes: &ScopeRules,
        answer: &RefusalAnswer,
    ) -> Option<http::Response<bytes::Bytes>> {
        let identity = req.extensions().get::<Identity>()?;
        let (key, spent) = (&identity.0, identity.1);
        let checked = scopes
            .check(&key.granted, req.method(), req.uri())
            .and_then(|()| self.respend(key, spent, scopes));
        let error = match checked {
            Ok(()) => {
                if let (Some(cost), true) = (scopes.cost, key.metering.is_some()) {
                    if let Some(identity) = req.extensions_mut().get_mut::<Identity>() {
                        identity.1 = usage::Spent(cost);
                    }
                }
                return None;
            }
            Err(error) => error,
        };
        let key = &req.extensions().get::<Identity>()?.0;
        self.audit_refused(&error, Some(key), req.headers(), req.extensions());
        let response = self.render(&error, None, answer);
        self.log_refusal(key, req, &error, response.status());
        Some(response)
    }

    /// For an inner layer with its own cost: spends or refunds the difference from what
    /// the outer layer spent.
    fn respend(
        &self,
        key: &ResolvedKey,
        spent: usage::Spent,
        scopes: &ScopeRules,
    ) -> Result<(), AuthError> {
        match scopes.cost {
            Some(cost) if key.metering.is_some() => {
                usage::respend(key, spent.0, cost, self.inner.clock.read())
            }
            _ => Ok(()),
        }
    }

    /// Audits and renders a refusal made before any key was found.
    pub(crate) fn refuse<B>(
        &self,
        error: &AuthError,
        req: &http::Request<B>,
        answer: &RefusalAnswer,
    ) -> http::Response<bytes::Bytes> {
        self.count_deployment(Outcome::of(error));
        self.audit_refused(error, None, req.headers(), req.extensions());
        self.render(error, None, answer)
    }

    /// Counts a refusal no key is answerable for, when counting is on.
    fn count_deployment(&self, outcome: Outcome) {
        if let Some(usage) = &self.inner.usage {
            usage
                .counters
                .count_deployment(outcome, self.inner.clock.read());
        }
    }

    /// Whether the rate-limit headers use the IETF draft's names.
    pub(crate) fn ietf_headers(&self) -> bool {
        self.inner.limits.config().ietf_headers
    }

    /// Steps 5 and 6: access, then the limiter only when access passed. A refusal of
    /// access reports the key's rate-limit state without taking a token.
    #[inline]
    fn access_then_limit<B>(
        &self,
        key: &ResolvedKey,
        req: &http::Request<B>,
        scopes: &ScopeRules,
        now: Now,
    ) -> Result<(Option<RateLimitStatus>, Option<DryCell>), Refused> {
        let v = &*self.inner;
        access::check(&*v.ip_resolver, key, req, scopes)
            .map_err(|e| (e, limit::peek(&v.limits, key, now.at)))?;
        let status = limit::take(&v.limits, &v.cache.metrics, key, now)?;
        let mut dry = None;
        if key.metering.is_some() {
            dry = usage::spend(key, scopes.cost.unwrap_or(1), now).map_err(|e| (e, status))?;
        }
        Ok((status, dry))
    }

    /// Attaches the identity of an admitted request, or renders its refusal; audits both.
    /// A request whose meter's cell is dry awaits its lease first.
    pub(super) fn conclude<B>(
        &self,
        key: Arc<ResolvedKey>,
        checked: Result<(Option<RateLimitStatus>, Option<DryCell>), Refused>,
        req: &mut http::Request<B>,
        answer: &RefusalAnswer,
        now: Now,
        cost: u64,
    ) -> Admission {
        match checked {
            Ok((status, Some(dry))) => {
                Admission::AwaitLease(Box::new(AwaitingLease::new(key, status, dry, cost)))
            }
            Ok((status, None)) => {
                key.usage.count(Outcome::Accepted, now);
                self.audit_allowed(&key, req.headers(), req.extensions());
                if !key.external {
                    self.touch(&key, now);
                }
                let event = self.sample_accepted(&key, req);
                // Nothing metered, nothing to spend or report.
                let (spent, quotas) = if key.metering.is_some() {
                    (usage::Spent(cost), self.quota_fields(&key, now.at))
                } else {
                    (usage::Spent(0), None)
                };
                req.extensions_mut().insert(Identity(key, spent));
                Admission::Admitted(status, event, quotas)
            }
            Err((error, status)) => {
                let outcome = Outcome::of(&error);
                if outcome.is_per_key() {
                    key.usage.count(outcome, now);
                } else {
                    self.count_deployment(outcome);
                }
                self.audit_refused(&error, Some(&key), req.headers(), req.extensions());
                // A refusal for usage reports the quotas as it left them.
                let quotas = match error {
                    AuthError::UsageExceeded { .. } => self.quota_fields(&key, now.at),
                    _ => None,
                };
                let response =
                    self.render_reporting(&error, status.as_ref(), quotas.as_deref(), answer);
                self.log_refusal(&key, req, &error, response.status());
                Admission::Refused(response)
            }
        }
    }
}
