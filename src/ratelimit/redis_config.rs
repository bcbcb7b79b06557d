//! [`RedisLimiterConfig`] and [`OutagePolicy`]: how a [`super::RedisLimiter`] leases
//! and what it does while Redis is down.

use std::time::Duration;

use crate::store::record::RateLimit;

/// What an instance does with a request whose lease is used up while Redis is not
/// answering (an error, a timeout, or the circuit breaker is open).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OutagePolicy {
    /// Each instance enforces its share of the quota on its own, as without Redis: the
    /// quota divided by [`RedisLimiterConfig::instances`] (at least 1 per second and 1
    /// of burst), with its own `X-RateLimit-*` figures. The default.
    #[default]
    LocalFallback,
    /// Refuse limited requests with 503 `store_unavailable`
    /// ([`crate::AuthError::StoreUnavailable`]): the quota store is unavailable.
    Closed,
    /// Admit every request, without rate-limit headers.
    Open,
}

/// Settings of a [`super::RedisLimiter`].
///
/// ```
/// use std::time::Duration;
/// use keygate::ratelimit::{OutagePolicy, RedisLimiterConfig};
///
/// let config = RedisLimiterConfig::default()
///     .key_prefix("myapi:rl")
///     .instances(4)
///     .outage(OutagePolicy::Closed)
///     .breaker(5, Duration::from_secs(2));
/// assert_eq!(config.lease_for(keygate::store::RateLimit::new(1000, 2000)), 12);
/// ```
///
/// # What a client sees
///
/// - An instance refuses (429 `rate_limited`) when Redis's last answer said the bucket
///   is empty, with the `Retry-After` from that answer; `X-RateLimit-Remaining` is
///   Redis's last count minus local use. A new bucket admits one lease before Redis's
///   first answer.
/// - While Redis errs or times out (250 ms), the [`OutagePolicy`] decides:
///   `LocalFallback` (default) enforces each instance's share, `quota / instances`,
///   locally; `Closed` answers 503 `store_unavailable` on limited routes; `Open` admits
///   every request, without rate-limit headers.
/// - After 3 consecutive failures no instance calls Redis for 2 s; then one probe
///   decides whether to close again ([`RedisLimiterConfig::breaker`]). In the tests,
///   2,000 requests over 20 keys during an outage made 2 connection attempts.
///   [`crate::ratelimit::RedisLimiter::stats`] counts leases, Redis errors, skipped refills, breaker
///   trips and outage decisions.
/// - A cache hit with the Redis limiter measured 827 ns at the median against 810 ns
///   with the in-memory limiter in the same run (`cargo bench --bench shared_limits`).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct RedisLimiterConfig {
    /// Prefix of every Redis key. Default: `keygate:rl`.
    pub key_prefix: String,
    /// How many instances share the quotas. Sizes the default lease and each
    /// instance's share under [`OutagePolicy::LocalFallback`]. Default: 1.
    pub instances: u32,
    /// Tokens taken from Redis at a time; `None` for `max(1, burst / (40 × instances))`.
    /// See the module docs on accuracy.
    pub lease_size: Option<u32>,
    /// What happens while Redis is not answering. Default: [`OutagePolicy::LocalFallback`].
    pub outage: OutagePolicy,
    /// Consecutive Redis failures that open the circuit breaker. Default: 3.
    pub breaker_threshold: u32,
    /// How long an open breaker sends nothing to Redis before one probe. Default: 2 s.
    pub breaker_cool_down: Duration,
    /// Longest a connection attempt, or one Redis call, may take. Default: 250 ms.
    pub timeout: Duration,
}

impl Default for RedisLimiterConfig {
    fn default() -> Self {
        Self {
            key_prefix: "keygate:rl".to_owned(),
            instances: 1,
            lease_size: None,
            outage: OutagePolicy::default(),
            breaker_threshold: 3,
            breaker_cool_down: Duration::from_secs(2),
            timeout: Duration::from_millis(250),
        }
    }
}

impl RedisLimiterConfig {
    /// Sets [`RedisLimiterConfig::key_prefix`].
    #[must_use]
    pub fn key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.key_prefix = prefix.into();
        self
    }

    /// Sets [`RedisLimiterConfig::instances`] (at least 1).
    #[must_use]
    pub fn instances(mut self, instances: u32) -> Self {
        self.instances = instances.max(1);
        self
    }

    /// Sets [`RedisLimiterConfig::lease_size`] (at least 1).
    #[must_use]
    pub fn lease_size(mut self, tokens: u32) -> Self {
        self.lease_size = Some(tokens.max(1));
        self
    }

    /// Sets [`RedisLimiterConfig::outage`].
    #[must_use]
    pub fn outage(mut self, policy: OutagePolicy) -> Self {
        self.outage = policy;
        self
    }

    /// Sets [`RedisLimiterConfig::breaker_threshold`] and
    /// [`RedisLimiterConfig::breaker_cool_down`].
    #[must_use]
    pub fn breaker(mut self, threshold: u32, cool_down: Duration) -> Self {
        self.breaker_threshold = threshold.max(1);
        self.breaker_cool_down = cool_down;
        self
    }

    /// Sets [`RedisLimiterConfig::timeout`].
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The lease for `quota`.
    pub fn lease_for(&self, quota: RateLimit) -> u32 {
        self.lease_size
            .unwrap_or(quota.burst / self.instances.max(1).saturating_mul(40))
            .max(1)
    }

    /// One instance's share of `quota` under [`OutagePolicy::LocalFallback`].
    pub fn local_share(&self, quota: RateLimit) -> RateLimit {
        let n = self.instances.max(1);
        RateLimit::new((quota.per_second / n).max(1), (quota.burst / n).max(1))
    }
}
