//! Per-key (or per-account) rate limits on governor, and the headers that report them.
//!
//! Limiter state is keyed only by an authenticated key id or account id, never by a
//! presented token, and is only touched after every other check has passed, so a
//! refused request consumes no quota. Keys that share a quota share one keyed governor
//! limiter (a *tier*); a per-key override gets its own tier. Idle state is dropped by
//! [`crate::Keygate::run_maintenance`], which also runs by itself every
//! [`RateLimitConfig::maintenance_interval`].
//!
//! With the `redis` feature, a [`RedisLimiter`] moves the buckets to Redis so that every
//! instance shares them (see its module docs); the tiers then only name the quotas, and
//! serve as each instance's local share during a Redis outage.

#[cfg(feature = "redis")]
mod breaker;
#[cfg(feature = "redis")]
mod lease;
#[cfg(feature = "redis")]
mod redis;
#[cfg(feature = "redis")]
mod redis_config;
#[cfg(feature = "redis")]
mod script;

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use dashmap::DashMap;
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DashMapStateStore;
use governor::{Quota, RateLimiter};

use crate::clock::{unix_seconds_ceil, Clock};
use crate::error::AuthError;
use crate::store::record::RateLimit;

#[cfg(feature = "redis")]
pub use self::breaker::BreakerState;
#[cfg(feature = "redis")]
pub use self::redis::{RedisLimiter, RedisLimiterStats};
#[cfg(feature = "redis")]
pub use self::redis_config::{OutagePolicy, RedisLimiterConfig};

/// A refused request, with the rate-limit state to report when there is one.
pub(crate) type Refusal = (AuthError, Option<RateLimitStatus>);

/// What a limit is counted against. In configuration files: `"per_key"` or
/// `"per_account"`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RateLimitKey {
    /// Each key has its own bucket.
    #[default]
    PerKey,
    /// All keys of an account with the same quota share a bucket (Tenuo's per-tenant
    /// limit).
    PerAccount,
}

/// Rate-limit settings for a deployment.
///
/// ```
/// use keygate::{RateLimit, RateLimitConfig, RateLimitKey};
///
/// let limits = RateLimitConfig::default()
///     .default_quota(Some(RateLimit::new(100, 200)))
///     .key(RateLimitKey::PerAccount);
/// assert_eq!(limits.key, RateLimitKey::PerAccount);
/// ```
///
/// It reads from configuration files: `default_quota = { per_second = 100, burst = 200 }`,
/// `key = "per_account"`, `maintenance_interval = "10s"`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct RateLimitConfig {
    /// The quota for keys without an override; `None` disables limiting for them.
    pub default_quota: Option<RateLimit>,
    /// Per key or per account.
    pub key: RateLimitKey,
    /// Also send the IETF draft's `RateLimit-Policy` and `RateLimit` fields.
    pub ietf_headers: bool,
    /// How often idle limiter state is dropped.
    #[serde(with = "humantime_serde")]
    pub maintenance_interval: Duration,
}

impl Default for RateLimitConfig {
    /// 1000 requests/s with a burst of 2000 per key (the Tenuo default), legacy
    /// `X-RateLimit-*` headers only, maintenance every 10 s.
    fn default() -> Self {
        Self {
            default_quota: Some(RateLimit::TENUO_DEFAULT),
            key: RateLimitKey::PerKey,
            ietf_headers: false,
            maintenance_interval: Duration::from_secs(10),
        }
    }
}

impl RateLimitConfig {
    /// Sets [`RateLimitConfig::default_quota`].
    #[must_use]
    pub fn default_quota(mut self, quota: Option<RateLimit>) -> Self {
        self.default_quota = quota;
        self
    }

    /// Sets [`RateLimitConfig::key`].
    #[must_use]
    pub fn key(mut self, key: RateLimitKey) -> Self {
        self.key = key;
        self
    }

    /// Sets [`RateLimitConfig::ietf_headers`].
    #[must_use]
    pub fn ietf_headers(mut self, on: bool) -> Self {
        self.ietf_headers = on;
        self
    }

    /// Sets [`RateLimitConfig::maintenance_interval`].
    #[must_use]
    pub fn maintenance_interval(mut self, every: Duration) -> Self {
        self.maintenance_interval = every;
        self
    }

    /// No limits at all.
    pub fn disabled() -> Self {
        Self {
            default_quota: None,
            ..Self::default()
        }
    }
}

pub(crate) type TierLimiter =
    RateLimiter<Arc<str>, DashMapStateStore<Arc<str>>, Clock, StateInformationMiddleware>;

/// One quota's limiter.
pub(crate) struct Tier {
    pub(crate) quota: RateLimit,
    limiter: TierLimiter,
    /// Time for one token to come back.
    interval: Duration,
}

/// The status to report when the bucket is full again at `full_at`.
fn status(
    quota: RateLimit,
    remaining: u32,
    full_at: SystemTime,
    now: SystemTime,
) -> RateLimitStatus {
    let reset_at = unix_seconds_ceil(full_at);
    let now_secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    RateLimitStatus {
        quota,
        remaining,
        reset_at,
        reset_after: reset_at.saturating_sub(now_secs),
    }
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
        let per_second = NonZeroU32::new(quota.per_second)?;
        let burst = NonZeroU32::new(quota.burst)?;
        let tier = self.tiers.entry(quota).or_insert_with(|| {
            let limiter = RateLimiter::dashmap_with_clock(
                Quota::per_second(per_second).allow_burst(burst),
                self.clock.clone(),
            )
            .with_middleware::<StateInformationMiddleware>();
            Arc::new(Tier {
                quota,
                limiter,
                interval: Duration::from_secs(1) / per_second.get(),
            })
        });
        Some(tier.clone())
    }

    /// Takes one request from the bucket of `key` (a key id, or with `account` an
    /// account id) in `tier`: in Redis when shared limits are configured, else here.
    /// `Ok(None)`: admitted with nothing to report.
    pub(crate) fn take(
        &self,
        tier: &Tier,
        account: bool,
        key: &Arc<str>,
        now: SystemTime,
    ) -> Result<Option<RateLimitStatus>, Refusal> {
        #[cfg(feature = "redis")]
        if let Some(shared) = &self.shared {
            self.maybe_maintain(now);
            return shared.take(tier.quota, account, key, &self.clock, now, |share| {
                self.take_local(self.tier_for(Some(share)).as_deref(), key, now)
            });
        }
        let _ = account;
        self.take_local(Some(tier), key, now)
    }

    fn take_local(
        &self,
        tier: Option<&Tier>,
        key: &Arc<str>,
        now: SystemTime,
    ) -> Result<Option<RateLimitStatus>, Refusal> {
        let Some(tier) = tier else { return Ok(None) };
        match self.check(tier, key, now) {
            Ok(status) => Ok(Some(status)),
            Err((retry_after, status)) => {
                Err((AuthError::RateLimited { retry_after }, Some(status)))
            }
        }
    }

    /// Takes one request from `key`'s bucket in `tier`, in this process.
    pub(crate) fn check(
        &self,
        tier: &Tier,
        key: &Arc<str>,
        now: SystemTime,
    ) -> Result<RateLimitStatus, (Duration, RateLimitStatus)> {
        self.maybe_maintain(now);
        let quota = tier.quota;
        match tier.limiter.check_key(key) {
            Ok(snapshot) => {
                let remaining = snapshot.remaining_burst_capacity();
                let to_full = tier.interval * quota.burst.saturating_sub(remaining);
                Ok(status(quota, remaining, now + to_full, now))
            }
            Err(not_until) => {
                let wait = not_until.wait_time_from(governor::clock::Clock::now(&self.clock));
                let to_full = wait + tier.interval * quota.burst.saturating_sub(1);
                Err((wait, status(quota, 0, now + to_full, now)))
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

    /// Drops the state of every bucket that is full again, and every idle tier nobody
    /// refers to.
    pub(crate) fn maintain(&self) {
        for tier in self.tiers.iter() {
            tier.limiter.retain_recent();
            tier.limiter.shrink_to_fit();
        }
        self.tiers
            .retain(|_, tier| !(tier.limiter.is_empty() && Arc::strong_count(tier) == 1));
        self.tiers.shrink_to_fit();
        #[cfg(feature = "redis")]
        if let Some(shared) = &self.shared {
            shared.maintain(self.clock.now());
        }
    }

    /// Number of buckets held, over all tiers (and shared buckets).
    pub(crate) fn tracked(&self) -> usize {
        let local: usize = self.tiers.iter().map(|t| t.limiter.len()).sum();
        #[cfg(feature = "redis")]
        if let Some(shared) = &self.shared {
            return local + shared.tracked();
        }
        local
    }
}

mod status;

#[cfg(test)]
use status::number;
pub use status::RateLimitStatus;

#[cfg(test)]
mod tests;
