//! Named plans: a rate limit, credits and quotas that many keys or accounts share.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use serde::{Deserialize, Serialize};

use super::{Credits, Quota, UsageLimits};
use crate::store::record::RateLimit;

/// A named plan, such as `free` or `pro`. A key or an account refers to it by name
/// ([`UsageLimits::plan`]); changing the plan changes every key on it. A key's own
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

/// The plans of a gate, by name; read when a key is cached, never on a cached request.
#[derive(Debug, Default)]
pub(crate) struct Plans {
    by_name: RwLock<HashMap<String, Arc<Plan>>>,
}

impl Plans {
    pub(crate) fn get(&self, name: &str) -> Option<Arc<Plan>> {
        self.read().get(name).cloned()
    }

    pub(crate) fn insert(&self, plan: Plan) {
        let mut plans = self.by_name.write().unwrap_or_else(|p| p.into_inner());
        plans.insert(plan.name.clone(), Arc::new(plan));
    }

    pub(crate) fn remove(&self, name: &str) -> Option<Arc<Plan>> {
        let mut plans = self.by_name.write().unwrap_or_else(|p| p.into_inner());
        plans.remove(name)
    }

    pub(crate) fn all(&self) -> Vec<Arc<Plan>> {
        let mut all: Vec<_> = self.read().values().cloned().collect();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        all
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, Arc<Plan>>> {
        self.by_name.read().unwrap_or_else(|p| p.into_inner())
    }

    /// `limits` over their plan: own credits, else the plan's; per period the lower
    /// quota. `Err` names a plan that does not exist.
    pub(crate) fn effective(&self, limits: &UsageLimits) -> Result<Effective, String> {
        let plan = match &limits.plan {
            Some(name) => Some(self.get(name).ok_or_else(|| name.clone())?),
            None => None,
        };
        let mut quotas: Vec<Quota> = plan.as_ref().map(|p| p.quotas.clone()).unwrap_or_default();
        for own in &limits.quotas {
            match quotas.iter_mut().find(|q| q.period == own.period) {
                Some(q) => q.limit = q.limit.min(own.limit),
                None => quotas.push(*own),
            }
        }
        quotas.sort_by_key(|q| q.period);
        Ok(Effective {
            rate_limit: plan.as_ref().and_then(|p| p.rate_limit),
            credits: limits.credits.or(plan.as_ref().and_then(|p| p.credits)),
            quotas,
        })
    }
}

/// Settings after their plan is applied.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Effective {
    pub(crate) rate_limit: Option<RateLimit>,
    pub(crate) credits: Option<Credits>,
    pub(crate) quotas: Vec<Quota>,
}
