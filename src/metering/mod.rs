//! Usage limits: credits with refills, quotas per calendar period, and named plans,
//! exact across instances.
//!
//! # Meters
//!
//! A [`Meter`] is one balance of record: a key's or an account's credits, or a key's or
//! an account's quota for one calendar period. Each accepted request spends its cost
//! (1 unless a layer or route sets another) from every meter that applies to it, in the
//! order quotas, then credits (a key's own before its account's), all or nothing: a
//! request refused by one meter spends nothing from the others, and a request refused
//! earlier (IP, scopes, rate limit) spends nothing at all. A refusal is 429
//! `usage_exceeded` with `Retry-After` until the next refill or reset (none when there
//! is none).
//!
//! # Refills and periods
//!
//! Credits may carry a [`Refill`]: at each edge of its [`RefillInterval`] (a duration
//! anchored at the Unix epoch or at the refill's `anchor`, or a calendar day, week or
//! month), the balance is topped up to the refill's amount,
//! `remaining = min(remaining + amount, amount)`, so a debt left by after-the-fact
//! charges is paid off first; a refill never lowers a balance. A [`Quota`] is `limit`
//! requests per calendar day, week (from Monday) or month, reset to `limit` at each
//! period's start. Calendar periods are in UTC or a configured [`UtcOffset`]. Edges are
//! fixed points in time, not timers, so a refill happens once however many instances
//! run, and each edge has a period index that every instance computes alike.
//!
//! # The ledger, the cells and leases
//!
//! The balance of record lives in a [`CreditLedger`] ([`crate::MemoryStore`] in process,
//! `PgStore` durably). A request whose cell holds units never waits for it: each
//! instance holds, per meter, a *cell* of units leased from the ledger, and spends from
//! it with one atomic compare-and-swap and no lock. When a cell runs low, the instance
//! leases another batch: inline from a ledger in this process, in the background from
//! one across the network, in leases that grow while the meter is busy (up to
//! [`usage_lease_max`](crate::KeygateBuilder::usage_lease_max)) and take only a fair
//! share of a small balance. A request that finds its cell dry awaits the lease in
//! flight, like a cache miss awaits the store (bounded by the store timeout, failing
//! closed with 503 `store_unavailable`), and is refused (`usage_exceeded`) only when the
//! ledger has nothing left. Unspent units go back to the ledger on
//! [`crate::Keygate::return_leases`], within 5 s of a meter going idle, and when the
//! cell is no longer held by any cached key. The sum of what every instance admitted
//! therefore never exceeds what the ledger granted; what one instance may refuse while
//! others still hold credits, and what a crashed instance strands, are bounded by the
//! lease size (at most `(instances - 1) × 1.5 ×` the largest lease, and `1.5 ×` it;
//! the bounds and measured figures are in the lease agent's documentation and
//! BENCHMARKS.md).
//!
//! # Plans on every instance
//!
//! A [`Plan`] is kept in the store ([`PlanStore`]: [`crate::MemoryStore`], and `PgStore`'s
//! `plans` table) and changed through [`crate::KeyManager::set_plan`] and
//! [`crate::KeyManager::remove_plan`]. A change goes through the same invalidation as
//! any key change: `PgStore` writes it to its change log, every listening instance
//! flushes its cache, and each reads the plans again at its next cache miss (which
//! waits for them as it waits for the key, and fails closed when they cannot be read).
//! Every key on the plan then applies it from its next request, and units leased under
//! the old plan go back to the ledger. Plans set by the builder, the configuration file
//! or [`crate::Keygate::set_plan`] are this deployment's defaults: a stored plan of the
//! same name takes precedence, and a default applies where the store has none.
//!
//! # What responses report
//!
//! With [`crate::ratelimit::RateLimitConfig::ietf_headers`], every quota that applied to
//! an admitted request (or to one refused with `usage_exceeded`) is an item of the IETF
//! draft's `RateLimit-Policy` and `RateLimit` lists, after the per-second `"default"`
//! item: `"day";q=10000;w=86400` and `"day";r=9957;t=3600`, named `day`, `week`,
//! `month` for the key's own quotas and `account-day`, `account-week`,
//! `account-month` for its account's; `w` is the length of the current period (a
//! month's varies) and `t` the seconds until it ends. With
//! [`crate::ratelimit::QuotaHeaders`], headers of the deployment's choosing report the
//! quota with the least remaining. Credits are not reported: the draft's policy is a
//! quota `q` allocated per window `w` in registered units, and credits are a balance
//! (often without refill, spent at varying costs), closer to an account's money than to a
//! window's allowance.
//!
//! "Remaining" is what this instance knows: the balance the ledger reported at its last
//! reservation, plus what it returned since, plus what its cell holds, never below 0.
//! With one instance (or [`crate::MemoryStore`]) it is exact; across instances it is off,
//! either way, by at most the other instances' leases (up to
//! [`crate::KeygateBuilder::usage_lease_max`] each): the units they hold are not in the
//! ledger's balance, and what they reserved since this instance's last reservation is.
//! Computing it costs a few atomic loads, and only when those headers are on.
//!
//! # Low credits
//!
//! [`Credits::low`] sets a threshold; when a change of the balance of record (a
//! reservation, a charge) takes it from above the threshold to at or below it, the
//! ledger sends one `credits.low` webhook (feature `webhooks`), and no other until a
//! refill or an operator's top-up raises it above the threshold again. The test and the
//! state change are part of the ledger's one locked change of the meter, so with several
//! instances it is sent once: in PostgreSQL the statement that crosses writes the event
//! into the webhook outbox itself ([`crate::webhooks::WebhooksBuilder::postgres`]); in
//! process, the manager's in-memory webhooks queue it. The balance of record excludes
//! the units instances hold, so the notice can come early by up to one lease per
//! instance: a smaller [`crate::KeygateBuilder::usage_lease`] and
//! [`crate::KeygateBuilder::usage_lease_max`] make it closer.
//!
//! # Deleted keys
//!
//! Deleting a key ([`crate::KeyManager::delete`]) deletes its own meters in the ledger
//! with it; its account's stay. Erasing an account's usage counts
//! ([`crate::KeyManager::erase_account_usage`]) leaves the ledger alone.
mod cell;
mod lease;
mod ledger;
pub(crate) mod low;
mod period;
mod plan;
mod plan_store;
mod plans;
pub(crate) mod report;
mod resolve;
mod returns;
mod settings;
mod wait;

use std::fmt;
use std::time::SystemTime;

pub(crate) use cell::{Metering, Meters};
pub use ledger::{CreditLedger, MemoryLedger};
pub use period::{QuotaPeriod, RefillInterval, UtcOffset};
pub use plan::Plan;
pub(crate) use plan_store::MemoryPlans;
pub use plan_store::PlanStore;
pub(crate) use settings::MeteringSettings;
pub use settings::{Credits, KeyUsage, MeterPolicy, Quota, Refill, UsageLimits};
pub(crate) use wait::{DryCell, LeaseWait, Short, Waited};

use crate::store::record::{AccountId, KeyId};

/// One balance of record in a [`CreditLedger`].
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum Meter {
    /// A key's own credits.
    KeyCredits(KeyId),
    /// An account's credits, shared by all its keys.
    AccountCredits(AccountId),
    /// A key's quota for a period.
    KeyQuota(KeyId, QuotaPeriod),
    /// An account's quota for a period, shared by all its keys.
    AccountQuota(AccountId, QuotaPeriod),
}

impl Meter {
    /// A stable text naming the meter, for a ledger's storage key:
    /// `key:<id>:credits`, `account:<id>:credits`, `key:<id>:quota:<period>`,
    /// `account:<id>:quota:<period>`.
    ///
    /// ```
    /// use keygate::metering::{Meter, QuotaPeriod};
    ///
    /// assert_eq!(Meter::KeyQuota("ak_1".into(), QuotaPeriod::Day).storage_key(), "key:ak_1:quota:day");
    /// ```
    pub fn storage_key(&self) -> String {
        match self {
            Meter::KeyCredits(id) => format!("key:{id}:credits"),
            Meter::AccountCredits(id) => format!("account:{id}:credits"),
            Meter::KeyQuota(id, p) => format!("key:{id}:quota:{}", p.as_str()),
            Meter::AccountQuota(id, p) => format!("account:{id}:quota:{}", p.as_str()),
        }
    }

    /// The key whose own meter this is; `None` for an account's.
    pub fn key_id(&self) -> Option<&KeyId> {
        match self {
            Meter::KeyCredits(id) | Meter::KeyQuota(id, _) => Some(id),
            Meter::AccountCredits(_) | Meter::AccountQuota(..) => None,
        }
    }

    /// Whether this meter counts credits (rather than a quota's requests).
    pub fn is_credits(&self) -> bool {
        matches!(self, Meter::KeyCredits(_) | Meter::AccountCredits(_))
    }
}

impl fmt::Debug for Meter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.storage_key())
    }
}

/// What [`CreditLedger::reserve`] granted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reservation {
    /// Units granted: at most what was asked, and never more than the balance held.
    pub granted: u64,
    /// The period index the units belong to (see [`MeterPolicy::period`]).
    pub period: u64,
    /// When the next refill or reset happens, if ever.
    pub next_refill: Option<SystemTime>,
    /// The balance left in the ledger after the grant.
    pub balance: i64,
}
