//! Per-key (or per-account) rate limits, and the headers that report them.
//!
//! Limiter state is keyed only by an authenticated key id, account id or verified
//! credential's subject, never by a presented token, and is only touched after every
//! other check has passed, so a refused request consumes no quota. The three kinds of
//! id live in separate namespaces in every limiter (the in-process tiers, Redis and
//! its local fallback), so that no id one tenant chooses (an imported key's id, an
//! account id, a token's subject) can name another tenant's bucket. Keys that share a quota share one *tier*; a
//! per-key override gets its own tier. Each bucket is a GCRA cell that
//! the key's cache entry holds, so a cached request updates its own cell with one
//! compare-and-swap, using the time the request already read, and no keyed map. The
//! tier hands the same cell back when the key is found again, so a refreshed or
//! invalidated entry keeps its quota. Cells that no entry holds and whose bucket is
//! full again are dropped by [`crate::Keygate::run_maintenance`], which also runs by
//! itself every [`RateLimitConfig::maintenance_interval`] when keys are looked up.
//!
//! The buckets run on the wall clock (nanoseconds since the Unix epoch), which the
//! request reads once for every check. A clock stepped back makes buckets stricter
//! until it catches up; one stepped forward refills them.
//!
//! With the `redis` feature, a [`RedisLimiter`] moves the buckets to Redis so that every
//! instance shares them (see its docs and [`RedisLimiterConfig`]); the tiers then only
//! name the quotas, and serve as each instance's local share during a Redis outage.
//!
//! # Quotas and headers
//!
//! Per key by default ([`RateLimitKey::PerAccount`] for a per-tenant limit), 1000
//! requests per second with a burst of 2000 unless configured, and overridable per key
//! (`"rate_limit": {"per_second": N, "burst": M}`). Every response to an authenticated
//! request carries `X-RateLimit-Limit`, `X-RateLimit-Remaining` and `X-RateLimit-Reset`
//! (Unix seconds), and with [`RateLimitConfig::ietf_headers`] the draft's
//! `RateLimit-Policy` and `RateLimit`; so do the 403 refusals that come after the key
//! was recognised (IP, scope, read-only), which report the bucket without taking from
//! it. `X-RateLimit-Limit` is the burst, or the rate:
//!
//! ```
//! use keygate::ratelimit::{RateLimitConfig, ReportedLimit};
//!
//! let limits = RateLimitConfig::default().reported_limit(ReportedLimit::PerSecond);
//! assert_eq!(limits.reported_limit, ReportedLimit::PerSecond);
//! ```
//!
//! # Why a GCRA cell and not governor
//!
//! The limiter was governor's keyed limiter, and the cell decides exactly as governor's
//! GCRA does. It replaced it because it is cheaper on every request: measured with
//! callgrind, a check costs 65 instructions against 164 for governor's direct limiter and
//! about 490 for its keyed one (a SipHash of the key id, a dashmap shard lock, its own
//! clock read), and each cached key holds 16 bytes less. A keyed map is not needed
//! because the key's cache entry already holds its cell. A property test
//! (`ratelimit/governor_oracle.rs`) feeds the same quotas and arrival times to governor,
//! on its fake clock, and to the cell, and asserts the same admit/refuse decisions and
//! the same waits, to the nanosecond. `BENCHMARKS.md` has the measurements.

#[cfg(feature = "redis")]
mod breaker;
mod config;
#[cfg(feature = "redis")]
mod lease;
mod quota_headers;
#[cfg(feature = "redis")]
mod redis;
#[cfg(feature = "redis")]
mod redis_config;
#[cfg(feature = "redis")]
mod script;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use dashmap::DashMap;

use crate::clock::{Clock, Now};
use crate::error::AuthError;
use crate::store::record::RateLimit;

#[cfg(feature = "redis")]
pub use self::breaker::BreakerState;
pub use self::config::{RateLimitConfig, RateLimitKey};
pub(crate) use self::quota_headers::QuotaFields;
pub use self::quota_headers::QuotaHeaders;
#[cfg(feature = "redis")]
pub use self::redis::{RedisLimiter, RedisLimiterStats};
#[cfg(feature = "redis")]
pub use self::redis_config::{OutagePolicy, RedisLimiterConfig};

/// Whose bucket an id names. Buckets of different namespaces are always distinct, even
/// when their ids are equal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Namespace {
    /// A stored API key, by key id.
    Key,
    /// An account's shared bucket (`PerAccount` limits), by account id.
    Account,
    /// A verified credential's principal, by subject.
    External,
}

impl Namespace {
    /// The namespace's name in Redis keys.
    #[cfg(feature = "redis")]
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Namespace::Key => "key",
            Namespace::Account => "account",
            Namespace::External => "external",
        }
    }
}

/// A refused request, with the rate-limit state to report when there is one.
pub(crate) type Refusal = (AuthError, Option<RateLimitStatus>);

/// The status to report when the bucket is full again at `full_at`.
#[cfg(feature = "redis")]
fn status(
    quota: RateLimit,
    remaining: u32,
    full_at: SystemTime,
    now: SystemTime,
) -> RateLimitStatus {
    let reset_at = crate::clock::unix_seconds_ceil(full_at);
    let now_secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    RateLimitStatus::new(
        quota,
        remaining,
        reset_at,
        reset_at.saturating_sub(now_secs),
    )
}

/// Every tier of a deployment.
pub(crate) struct RateLimits {
    config: RateLimitConfig,
    clock: Clock,
    tiers: DashMap<RateLimit, Arc<Tier>>,
    last_maintenance: AtomicU64,
    /// Buckets shared through Redis, when configured.
    #[cfg(feature = "redis")]
    shared: Option<RedisLimiter>,
}

impl RateLimits {
    pub(crate) fn new(config: RateLimitConfig, clock: Clock) -> Self {
        Self {
            config,
            clock,
            tiers: DashMap::new(),
            last_maintenance: AtomicU64::new(0),
            #[cfg(feature = "redis")]
            shared: None,
        }
    }

    /// The limiter sharing the buckets through Redis, when configured.
    #[cfg(feature = "redis")]
    pub(crate) fn shared(&self) -> Option<&RedisLimiter> {
        self.shared.as_ref()
    }

    /// Keeps the buckets in Redis, shared by every instance.
    #[cfg(feature = "redis")]
    pub(crate) fn with_shared(mut self, shared: Option<RedisLimiter>) -> Self {
        self.shared = shared;
        self
    }

    pub(crate) fn config(&self) -> &RateLimitConfig {
        &self.config
    }

    /// The tier for `quota`, or `None` when there is no quota (unlimited).
    pub(crate) fn tier_for(&self, quota: Option<RateLimit>) -> Option<Arc<Tier>> {
        let quota = quota?;
        if let Some(tier) = self.tiers.get(&quota) {
            return Some(tier.clone());
        }
        let tier = Tier::new(quota)?;
        Some(self.tiers.entry(quota).or_insert(Arc::new(tier)).clone())
    }

    /// The bucket of `id` in `namespace` under `quota`, for a cache entry to hold: the
    /// same cell every time, as long as it is in use or not yet full again. Runs the
    /// periodic maintenance, since only here can the state grow.
    pub(crate) fn bucket(
        &self,
        quota: Option<RateLimit>,
        namespace: Namespace,
        id: &Arc<str>,
    ) -> Option<Bucket> {
        self.maybe_maintain(self.clock.now());
        let tier = self.tier_for(quota)?;
        let cell = tier.cell(namespace, id);
        Some(Bucket { tier, cell })
    }

    /// Takes one request from `bucket`, the bucket of `id` in `namespace`: in Redis when
    /// shared limits are configured, else here. `Ok(None)`: admitted with nothing to
    /// report.
    #[inline]
    pub(crate) fn take(
        &self,
        bucket: &Bucket,
        namespace: Namespace,
        id: &Arc<str>,
        now: impl Into<Now>,
    ) -> Result<Option<RateLimitStatus>, Refusal> {
        let now = now.into();
        #[cfg(feature = "redis")]
        if let Some(shared) = &self.shared {
            let quota = bucket.tier.quota;
            let taken = shared.take(quota, namespace, id, &self.clock, now.at, |share| {
                let local = self.bucket(Some(share), namespace, id);
                local.map_or(Ok(None), |local| Self::take_local(&local, now))
            });
            return self.reported(taken);
        }
        let _ = (namespace, id);
        self.reported(Self::take_local(bucket, now))
    }

    /// `taken`'s status in the configured [`ReportedLimit`] form.
    #[inline]
    fn reported(
        &self,
        taken: Result<Option<RateLimitStatus>, Refusal>,
    ) -> Result<Option<RateLimitStatus>, Refusal> {
        let form = self.config.reported_limit;
        if form == ReportedLimit::Burst {
            // Statuses are made in this form: nothing to convert.
            return taken;
        }
        match taken {
            Ok(status) => Ok(status.map(|s| s.reported_as(form))),
            Err((error, status)) => Err((error, status.map(|s| s.reported_as(form)))),
        }
    }

    /// The state of `bucket` at `now` without taking a token, for a refusal that came
    /// before the limiter. `None` with shared limits: the instance does not know the
    /// shared bucket's state without spending from it.
    pub(crate) fn peek(&self, bucket: &Bucket, now: SystemTime) -> Option<RateLimitStatus> {
        #[cfg(feature = "redis")]
        if self.shared.is_some() {
            return None;
        }
        Some(
            bucket
                .peek(unix_nanos(now))
                .reported_as(self.config.reported_limit),
        )
    }

    #[inline]
    fn take_local(bucket: &Bucket, now: Now) -> Result<Option<RateLimitStatus>, Refusal> {
        match bucket.take(now.unix_nanos) {
            Ok(status) => Ok(Some(status)),
            Err((retry_after, status)) => {
                Err((AuthError::RateLimited { retry_after }, Some(status)))
            }
        }
    }

    fn maybe_maintain(&self, now: SystemTime) {
        let now = now
            .duration_since(UNIX_EPOCH)
            .map_or(1, |d| d.as_secs().max(1));
        let last = self.last_maintenance.load(Ordering::Relaxed);
        if last == 0 {
            // First use: start the interval now.
            let _ = self.last_maintenance.compare_exchange(
                0,
                now,
                Ordering::Relaxed,
                Ordering::Relaxed,
            );
            return;
        }
        if now.saturating_sub(last) < self.config.maintenance_interval.as_secs()
            || self
                .last_maintenance
                .compare_exchange(last, now, Ordering::AcqRel, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        self.maintain();
    }

    /// Drops the state of every bucket that no cache entry holds and that is full again,
    /// and every idle tier nobody refers to.
    pub(crate) fn maintain(&self) {
        let now = unix_nanos(self.clock.now());
        for tier in self.tiers.iter() {
            tier.retain_recent(now);
        }
        self.tiers
            .retain(|_, tier| !(tier.len() == 0 && Arc::strong_count(tier) == 1));
        self.tiers.shrink_to_fit();
        #[cfg(feature = "redis")]
        if let Some(shared) = &self.shared {
            shared.maintain(self.clock.now());
        }
    }

    /// Number of buckets that hold state (are not full again), over all tiers, plus
    /// the shared buckets held.
    pub(crate) fn tracked(&self) -> usize {
        let now = unix_nanos(self.clock.now());
        let local: usize = self.tiers.iter().map(|t| t.with_state(now)).sum();
        #[cfg(feature = "redis")]
        if let Some(shared) = &self.shared {
            return local + shared.tracked();
        }
        local
    }
}

mod status;
mod tier;

pub(crate) use tier::{unix_nanos, Bucket, Tier};

#[cfg(test)]
use status::number;
pub use status::{RateLimitStatus, ReportedLimit};

#[cfg(test)]
mod governor_oracle;
#[cfg(test)]
mod tests;
