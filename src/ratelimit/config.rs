//! The deployment's rate-limit settings: the default quota, what a limit is counted
//! against, how it is reported, and how often idle buckets are dropped.

use std::time::Duration;

use super::{QuotaHeaders, ReportedLimit};
use crate::store::record::RateLimit;

/// What a limit is counted against. In configuration files: `"per_key"` or
/// `"per_account"`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RateLimitKey {
    /// Each key has its own bucket.
    #[default]
    PerKey,
    /// All keys of an account with the same quota share a bucket: a per-tenant
    /// limit.
    PerAccount,
}

/// Rate-limit settings for a deployment.
///
/// ```
/// use keygate::ratelimit::{RateLimitConfig, RateLimitKey};
/// use keygate::store::RateLimit;
///
/// let limits = RateLimitConfig::default()
///     .default_quota(Some(RateLimit::new(100, 200)))
///     .key(RateLimitKey::PerAccount);
/// assert_eq!(limits.key, RateLimitKey::PerAccount);
/// ```
///
/// It reads from configuration files: `default_quota = { per_second = 100, burst = 200 }`,
/// `key = "per_account"`, `reported_limit = "per_second"`, `maintenance_interval = "10s"`,
/// `quota_headers = { limit = "X-Quota-Limit", remaining = "X-Quota-Remaining", reset = "X-Quota-Reset" }`.
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
    /// What `X-RateLimit-Limit` reports: the burst (default) or the rate per second.
    pub reported_limit: ReportedLimit,
    /// How often idle limiter state is dropped.
    #[serde(with = "humantime_serde")]
    pub maintenance_interval: Duration,
    /// Report the quota per period with the least remaining in `X-…` headers of these
    /// names (off by default). With [`RateLimitConfig::ietf_headers`], every quota is
    /// reported in the IETF fields as well, whatever this says. See [`QuotaHeaders`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quota_headers: Option<QuotaHeaders>,
}

impl Default for RateLimitConfig {
    /// 1000 requests/s with a burst of 2000 per key ([`RateLimit::DEFAULT`]), legacy
    /// `X-RateLimit-*` headers only, reporting the burst, maintenance every 10 s.
    fn default() -> Self {
        Self {
            default_quota: Some(RateLimit::DEFAULT),
            key: RateLimitKey::PerKey,
            ietf_headers: false,
            reported_limit: ReportedLimit::Burst,
            maintenance_interval: Duration::from_secs(10),
            quota_headers: None,
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

    /// Sets [`RateLimitConfig::reported_limit`]. For
    /// `X-RateLimit-Limit: 1000` / `X-RateLimit-Remaining: 999` at 1000/s with a burst
    /// of 2000: `.reported_limit(ReportedLimit::PerSecond)`.
    #[must_use]
    pub fn reported_limit(mut self, form: ReportedLimit) -> Self {
        self.reported_limit = form;
        self
    }

    /// Sets [`RateLimitConfig::quota_headers`]: for `X-Quota-Limit`,
    /// `X-Quota-Remaining` and `X-Quota-Reset`, `.quota_headers(Some(QuotaHeaders::x_quota()))`.
    #[must_use]
    pub fn quota_headers(mut self, names: Option<QuotaHeaders>) -> Self {
        self.quota_headers = names;
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
