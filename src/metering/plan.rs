//! Named plans: a rate limit, credits and quotas that many keys or accounts share.

use serde::{Deserialize, Serialize};

use super::{Credits, Quota};
use crate::store::record::RateLimit;

/// A named plan, such as `free` or `pro`. A key or an account refers to it by name
/// ([`super::UsageLimits::plan`]); changing the plan changes every key on it. A key's own
/// settings may only narrow its plan's.
///
/// ```
/// use keygate::metering::{Credits, Plan, Quota, QuotaPeriod, Refill, RefillInterval};
/// use keygate::store::RateLimit;
///
/// let pro = Plan::new("pro")
///     .rate_limit(RateLimit::new(50, 100))
///     .credits(Credits::new(5000).refill(Refill::new(5000, RefillInterval::Month)))
///     .quota(Quota::new(1000, QuotaPeriod::Day));
/// assert_eq!(pro.name, "pro");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Plan {
    /// The plan's name.
    pub name: String,
    /// The rate limit of keys on it that have none of their own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<RateLimit>,
    /// Credits: each key (or account) on the plan starts with `remaining`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credits: Option<Credits>,
    /// Quotas, at most one per period.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub quotas: Vec<Quota>,
}

impl Plan {
    /// A plan with this name and no limits.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            rate_limit: None,
            credits: None,
            quotas: Vec::new(),
        }
    }

    /// Sets the rate limit.
    pub fn rate_limit(mut self, limit: RateLimit) -> Self {
        self.rate_limit = Some(limit);
        self
    }

    /// Sets the credits.
    pub fn credits(mut self, credits: Credits) -> Self {
        self.credits = Some(credits);
        self
    }

    /// Also limits requests per period (replacing a quota of the same period).
    pub fn quota(mut self, quota: Quota) -> Self {
        self.quotas.retain(|q| q.period != quota.period);
        self.quotas.push(quota);
        self
    }
}

/// Settings after their plan is applied.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Effective {
    pub(crate) rate_limit: Option<RateLimit>,
    pub(crate) credits: Option<Credits>,
    pub(crate) quotas: Vec<Quota>,
}
