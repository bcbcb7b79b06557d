//! The checks that need the key, in the documented order.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::SystemTime;

use http::Method;

use super::access::Rules;
use crate::cache::entry::ResolvedKey;
use crate::error::AuthError;
use crate::gate::request::Verifier;
use crate::key::digest::KeyDigest;
use crate::ratelimit::RateLimitStatus;

/// A refusal, with the rate-limit state when the limiter was reached.
pub(super) type Refusal = (AuthError, Option<RateLimitStatus>);

impl Verifier {
    /// Digest match (constant time), then revoked, disabled, expired, rolled, environment.
    pub(crate) fn check_status(
        &self,
        key: &ResolvedKey,
        presented: &KeyDigest,
        now: SystemTime,
    ) -> Result<(), AuthError> {
        let record = &key.record;
        let current = record.digest.ct_eq(presented);
        let previous = record.previous.is_some_and(|p| p.digest.ct_eq(presented));
        if !current && !previous {
            return Err(AuthError::InvalidKey);
        }
        if record.revoked_at.is_some() {
            return Err(AuthError::RevokedKey);
        }
        if record.disabled {
            return Err(AuthError::DisabledKey);
        }
        if record.expires_at.is_some_and(|t| now >= t) {
            return Err(AuthError::ExpiredKey);
        }
        if !current && record.previous.is_some_and(|p| now >= p.until) {
            return Err(AuthError::RolledKey);
        }
        if let (Some(expected), Some(key_env)) = (self.environment, record.environment) {
            if expected != key_env {
                return Err(AuthError::WrongEnvironment {
                    key: key_env,
                    expected,
                });
            }
        }
        Ok(())
    }

    /// Every check after the lookup, in the documented order; the limiter only when all
    /// others pass. A refusal after the digest matched (IP, scopes, read-only) reports
    /// the key's rate-limit state without taking a token.
    pub(crate) fn authorize<B>(
        &self,
        key: &ResolvedKey,
        presented: &KeyDigest,
        req: &http::Request<B>,
        rules: &Rules,
        now: SystemTime,
    ) -> Result<Option<RateLimitStatus>, Refusal> {
        self.check_status(key, presented, now)
            .map_err(|e| (e, None))?;
        self.check_access(key, req, rules)
            .map_err(|e| (e, self.peek(key, now)))?;
        self.limit(key, now)
    }

    /// The key's IP allowlist, the route's scopes, then read-only: the checks keys and
    /// verified credentials share before the limiter.
    pub(crate) fn check_access<B>(
        &self,
        key: &ResolvedKey,
        req: &http::Request<B>,
        rules: &Rules,
    ) -> Result<(), AuthError> {
        if !key.record.ips.is_empty() {
            let ip: Option<IpAddr> = self.ip_resolver.client_ip(req.headers(), req.extensions());
            if !ip.is_some_and(|ip| key.record.ips.allows(ip)) {
                return Err(AuthError::IpNotAllowed);
            }
        }
        rules.check_scopes(&key.granted, req.method(), req.uri().path())?;
        // After the route's scopes, so that a read-only key on a route it lacks the scope
        // for hears which scope the route requires (Tenuo's wording), as any other key would.
        if key.read_only && !is_safe(req.method()) {
            return Err(AuthError::ReadOnlyKey);
        }
        Ok(())
    }

    /// Takes one token from the key's own bucket, then from its account's shared
    /// bucket (with `PerAccount` limits). Reports the bucket with fewer tokens left.
    #[inline]
    pub(crate) fn limit(
        &self,
        key: &ResolvedKey,
        now: SystemTime,
    ) -> Result<Option<RateLimitStatus>, Refusal> {
        let mut reported: Option<RateLimitStatus> = None;
        let record = &key.record;
        // A verified credential's subject is limited under `external:<subject>`, a
        // namespace no key id can name (shared limits find the bucket by this id).
        let external_id: Arc<str>;
        let key_id = if key.external {
            external_id = format!("external:{}", record.id).into();
            &external_id
        } else {
            record.id.shared()
        };
        let buckets = [
            (&key.limit, false, key_id),
            (&key.account_limit, true, record.account_id.shared()),
        ];
        for (bucket, account, id) in buckets {
            let Some(bucket) = bucket else { continue };
            let taken = self.limits.take(bucket, account, id, now);
            self.cache.metrics.rate_limit(taken.is_ok());
            if let Some(status) = taken? {
                if reported.is_none_or(|r| status.remaining < r.remaining) {
                    reported = Some(status);
                }
            }
        }
        Ok(reported)
    }

    /// The state [`Verifier::limit`] would report, without taking a token.
    pub(crate) fn peek(&self, key: &ResolvedKey, now: SystemTime) -> Option<RateLimitStatus> {
        [&key.limit, &key.account_limit]
            .into_iter()
            .flatten()
            .filter_map(|bucket| self.limits.peek(bucket, now))
            .min_by_key(|status| status.remaining)
    }
}

fn is_safe(method: &Method) -> bool {
    method == Method::GET || method == Method::HEAD || method == Method::OPTIONS
}
