//! What a key, an account or a plan says about usage: credits with an optional refill,
//! and quotas per calendar period.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::period::{Edges, QuotaPeriod, RefillInterval, UtcOffset};

/// A refill: at each edge of `interval`, the balance is topped up to `amount`
/// (`remaining = min(remaining + amount, amount)`), so a negative balance left by
/// after-the-fact charges is paid off first. A refill never lowers a balance: credits an
/// operator added above `amount` stay until spent.
///
/// ```
/// use keygate::metering::{Refill, RefillInterval};
///
/// let daily: Refill = serde_json::from_str(r#"{"amount": 1000, "interval": "day"}"#).unwrap();
/// assert_eq!(daily, Refill::new(1000, RefillInterval::Day));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Refill {
    /// The balance a refill tops up to.
    pub amount: u64,
    /// When refills happen.
    pub interval: RefillInterval,
    /// For a duration interval, when the first period starts (default: the Unix epoch).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "unix_opt")]
    pub anchor: Option<SystemTime>,
}

impl Refill {
    /// A refill to `amount` at every edge of `interval`.
    pub const fn new(amount: u64, interval: RefillInterval) -> Self {
        Self {
            amount,
            interval,
            anchor: None,
        }
    }

    /// Anchors a duration interval at `at` instead of the Unix epoch.
    pub fn anchored(mut self, at: SystemTime) -> Self {
        self.anchor = Some(at);
        self
    }
}

/// Credits: a balance each accepted request spends from (its cost, 1 by default), with
/// an optional refill.
///
/// ```
/// use keygate::metering::Credits;
///
/// let credits: Credits = serde_json::from_str(
///     r#"{"remaining": 5000, "refill": {"amount": 5000, "interval": "day"}}"#,
/// ).unwrap();
/// assert_eq!(credits.remaining, 5000);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Credits {
    /// The balance: when set, the starting balance; when shown, the balance as of now.
    pub remaining: i64,
    /// The refill, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refill: Option<Refill>,
    /// The low-credit threshold: when the balance of record falls from above it to at
    /// or below it, one `credits.low` webhook is sent (feature `webhooks`), and no other
    /// until a refill or an operator's top-up raises the balance above it again. None
    /// by default. See [`crate::metering`] ("Low credits").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub low: Option<u64>,
}

impl Credits {
    /// `remaining` credits, never refilled.
    pub const fn new(remaining: i64) -> Self {
        Self {
            remaining,
            refill: None,
            low: None,
        }
    }

    /// With a low-credit threshold: `credits.low` is sent when the balance falls to
    /// `threshold` or below.
    ///
    /// ```
    /// use keygate::metering::Credits;
    ///
    /// let credits: Credits = serde_json::from_str(r#"{"remaining": 5000, "low": 500}"#).unwrap();
    /// assert_eq!(credits, Credits::new(5000).low(500));
    /// ```
    pub const fn low(mut self, threshold: u64) -> Self {
        self.low = Some(threshold);
        self
    }

    /// With a refill.
    pub const fn refill(mut self, refill: Refill) -> Self {
        self.refill = Some(refill);
        self
    }
}

/// A quota: `limit` requests per calendar `period`, reset to `limit` at each period's
/// start.
///
/// ```
/// use keygate::metering::{Quota, QuotaPeriod};
///
/// let q: Quota = serde_json::from_str(r#"{"limit": 10000, "period": "month"}"#).unwrap();
/// assert_eq!(q, Quota::new(10_000, QuotaPeriod::Month));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "admin", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Quota {
    /// Requests per period.
    pub limit: u64,
    /// The calendar period.
    pub period: QuotaPeriod,
}

impl Quota {
    /// `limit` requests per `period`.
    pub const fn new(limit: u64, period: QuotaPeriod) -> Self {
        Self { limit, period }
    }
}

/// The usage settings of a key or an account: a plan by name, credits and quotas. A
/// key's or account's own credits and quotas only narrow its plan's.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct UsageLimits {
    /// The plan, by name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<String>,
    /// Credits (on their own or narrowing the plan's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credits: Option<Credits>,
    /// Quotas, at most one per period (on their own or narrowing the plan's).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub quotas: Vec<Quota>,
}

impl UsageLimits {
    /// Nothing set.
    pub fn is_empty(&self) -> bool {
        self.plan.is_none() && self.credits.is_none() && self.quotas.is_empty()
    }
}

/// The usage settings that apply to a key: its own, and its account's.
///
/// A store keeps `own` with the key. `account` is the account's settings, which a store
/// that keeps them ([`crate::MemoryStore`], `PgStore`) fills in on every read; writes
/// ignore it (account settings change only through
/// [`crate::KeyManager::set_account_limits`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct KeyUsage {
    /// The key's own settings.
    pub own: UsageLimits,
    /// Its account's settings, as read with the key.
    pub account: Option<std::sync::Arc<UsageLimits>>,
}

impl KeyUsage {
    /// The key's own `settings`, no account settings.
    pub fn own(own: UsageLimits) -> Self {
        Self { own, account: None }
    }

    /// Whether neither the key nor its account has any setting.
    pub fn is_empty(&self) -> bool {
        self.own.is_empty() && self.account.as_ref().is_none_or(|a| a.is_empty())
    }
}

/// What a ledger needs to know about a meter to apply its refills: the balance it starts
/// from when the ledger holds nothing for it yet, and its refill.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct MeterPolicy {
    /// The balance of a meter the ledger has not seen yet.
    pub initial: i64,
    /// Its refill, if any.
    pub refill: Option<Refill>,
    /// The offset of calendar intervals.
    pub offset: UtcOffset,
    /// A quota: at each edge the balance is set to the refill's amount, whatever it was.
    pub resets: bool,
    /// Credits' low threshold ([`Credits::low`]): the ledger notes when the balance
    /// falls from above it to at or below it.
    pub low: Option<u64>,
}

impl MeterPolicy {
    /// A policy starting at `initial`, refilled by `refill`, calendar periods in `offset`.
    pub const fn new(initial: i64, refill: Option<Refill>, offset: UtcOffset) -> Self {
        Self {
            initial,
            refill,
            offset,
            resets: false,
            low: None,
        }
    }

    /// With the low-credit threshold `low` ([`Credits::low`]).
    #[must_use]
    pub const fn with_low(mut self, low: Option<u64>) -> Self {
        self.low = low;
        self
    }

    /// The policy of credits.
    pub fn credits(credits: &Credits, offset: UtcOffset) -> Self {
        Self::new(credits.remaining, credits.refill, offset).with_low(credits.low)
    }

    /// The policy of a quota: starts full, reset to its limit at each period's start.
    pub fn quota(quota: &Quota, offset: UtcOffset) -> Self {
        let limit = i64::try_from(quota.limit).unwrap_or(i64::MAX);
        let mut policy = Self::new(
            limit,
            Some(Refill::new(quota.limit, quota.period.interval())),
            offset,
        );
        policy.resets = true;
        policy
    }

    fn edges(&self) -> Option<Edges> {
        let refill = self.refill?;
        let anchor = refill
            .anchor
            .and_then(|a| a.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0));
        Some(Edges {
            interval: refill.interval,
            anchor,
            offset: self.offset,
        })
    }

    /// The index of the refill period holding `at`; 0 when nothing is refilled.
    pub fn period(&self, at: SystemTime) -> u64 {
        self.edges().map_or(0, |e| e.index(at))
    }

    /// The next refill after `at`, if any.
    pub fn next_refill(&self, at: SystemTime) -> Option<SystemTime> {
        self.edges().map(|e| e.next_after(at))
    }

    /// `balance` of period `from` carried to period `to`: topped up once per edge
    /// crossed, `min(balance + amount, amount)`, never lowered (or, for a quota, set to
    /// its limit).
    pub fn refilled(&self, balance: i64, from: u64, to: u64) -> i64 {
        let Some(refill) = self.refill else {
            return balance;
        };
        if to <= from {
            return balance;
        }
        let amount = i64::try_from(refill.amount).unwrap_or(i64::MAX);
        if self.resets {
            return amount;
        }
        if balance >= amount {
            return balance;
        }
        let edges = i64::try_from(to - from).unwrap_or(i64::MAX);
        balance
            .saturating_add(amount.saturating_mul(edges))
            .min(amount)
    }
}

mod unix_opt {
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(
        v: &Option<SystemTime>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match v.and_then(|t| t.duration_since(UNIX_EPOCH).ok()) {
            Some(d) => s.serialize_some(&d.as_secs()),
            None => s.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<SystemTime>, D::Error> {
        Ok(Option::<u64>::deserialize(d)?.map(|s| UNIX_EPOCH + Duration::from_secs(s)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refill_tops_up_to_its_amount_and_pays_a_debt_first() {
        let p = MeterPolicy::new(
            0,
            Some(Refill::new(100, RefillInterval::Day)),
            UtcOffset::UTC,
        );
        assert_eq!(p.refilled(30, 5, 6), 100);
        assert_eq!(p.refilled(-150, 5, 6), -50);
        assert_eq!(p.refilled(-150, 5, 7), 50);
        assert_eq!(p.refilled(30, 6, 6), 30);
        assert_eq!(p.refilled(250, 5, 6), 250);
        let q = MeterPolicy::quota(&Quota::new(10, QuotaPeriod::Day), UtcOffset::UTC);
        assert_eq!(q.refilled(250, 5, 6), 10);
        assert_eq!(q.refilled(3, 5, 5), 3);
    }
}

/// Settings of a gate's metering (see [`super::lease`] for the lease sizes).
#[derive(Clone, Debug)]
pub(crate) struct MeteringSettings {
    /// Units an instance leases at once, at first and after a meter was idle.
    pub(crate) lease: u64,
    /// The most a busy meter's lease grows to ; 0: 8 × `lease`.
    pub(crate) lease_max: u64,
    /// The parts of a fair share: a lease takes at most `ceil(balance / parts)`.
    pub(crate) fair_parts: u64,
    /// How long a request that found its cell dry waits for the lease in flight (the
    /// store timeout).
    pub(crate) wait: Duration,
    pub(crate) offset: UtcOffset,
}

impl Default for MeteringSettings {
    fn default() -> Self {
        Self {
            lease: 64,
            lease_max: 0,
            fair_parts: 4,
            wait: Duration::from_secs(2),
            offset: UtcOffset::UTC,
        }
    }
}
