//! What a response tells the client of its quotas (the quota headers, see
//! [`crate::ratelimit::QuotaHeaders`] and [`crate::ratelimit::RateLimitConfig::ietf_headers`]).
//!
//! # What "remaining" means
//!
//! A quota's balance of record is in the ledger, and each instance holds a lease of it
//! in its cell. What a response reports is what this instance knows: the balance the
//! ledger reported at this instance's last reservation (plus the units it returned
//! since), plus the units its cell still holds, never below 0 nor above the limit.
//! With one instance (or a ledger in this process) that is exact. With several it is
//! off, either way, by at most the other instances' leases
//! ([`crate::KeygateBuilder::usage_lease`] each, 1.5 leases while a top-up is in
//! flight): too low by the units they hold (not in the ledger's balance), too high by
//! what they reserved since this instance's last reservation. It is never the reason a
//! request is admitted: the cells are.
//!
//! Computing it takes a few atomic loads per quota and no lock, and only when quota
//! headers are on.

use std::time::{SystemTime, UNIX_EPOCH};

use std::sync::atomic::Ordering;

use super::cell::Meters;
use super::period::Edges;
use super::{Meter, QuotaPeriod};

/// The most quotas one request can meet: one per period, the key's and its account's.
const MAX_QUOTAS: usize = 6;

/// One quota as the response reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct QuotaState {
    /// The account's quota (shared by its keys) rather than the key's own.
    pub(crate) account: bool,
    pub(crate) period: QuotaPeriod,
    /// Requests per period.
    pub(crate) limit: u64,
    /// What this instance knows remains (see the module docs).
    pub(crate) remaining: u64,
    /// Seconds until the period ends and the quota resets (at least 1).
    pub(crate) reset_after: u64,
    /// When it resets, in Unix seconds.
    pub(crate) reset_at: u64,
    /// The length of the current period in seconds (a month's varies).
    pub(crate) window: u64,
}

impl QuotaState {
    /// The stable name of the quota's policy in the IETF fields: `day`, `week`, `month`
    /// for the key's own quotas, `account-day`, `account-week`, `account-month` for its
    /// account's.
    pub(crate) fn policy_name(&self) -> &'static str {
        match (self.account, self.period) {
            (false, QuotaPeriod::Day) => "day",
            (false, QuotaPeriod::Week) => "week",
            (false, QuotaPeriod::Month) => "month",
            (true, QuotaPeriod::Day) => "account-day",
            (true, QuotaPeriod::Week) => "account-week",
            (true, QuotaPeriod::Month) => "account-month",
        }
    }
}

/// The quotas that applied to one request, in the order they are spent (the key's,
/// then its account's; by period within each).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct QuotaReport {
    items: [Option<QuotaState>; MAX_QUOTAS],
}

impl QuotaReport {
    /// The quotas, in order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &QuotaState> {
        self.items.iter().flatten()
    }

    /// The quota with the least remaining; on a tie, the one that resets first, then
    /// the first in order.
    pub(crate) fn tightest(&self) -> Option<&QuotaState> {
        self.iter().min_by_key(|q| (q.remaining, q.reset_after))
    }
}

fn unix_secs(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

impl Meters {
    /// The quotas of this key as of `now`, `None` when it has none. For the response
    /// of an admitted request, or of one refused with `usage_exceeded`.
    pub(crate) fn quota_report(&self, now: SystemTime) -> Option<QuotaReport> {
        if self.quota_limits.is_empty() {
            return None;
        }
        let secs = unix_secs(now);
        let offset = self.metering.settings.offset;
        let mut report = QuotaReport::default();
        let quotas = self.cells.iter().zip(self.quota_limits.iter());
        for ((cell, &limit), slot) in quotas.zip(report.items.iter_mut()) {
            let (account, period) = match &cell.meter {
                Meter::KeyQuota(_, p) => (false, *p),
                Meter::AccountQuota(_, p) => (true, *p),
                _ => continue,
            };
            let edges = Edges {
                interval: period.interval(),
                anchor: 0,
                offset,
            };
            let index = edges.index(now);
            let start = unix_secs(edges.start_of(index));
            let end = unix_secs(edges.start_of(index.saturating_add(1)));
            let until = cell.until.load(Ordering::Acquire);
            let known = if until != 0 && secs >= until {
                // The period of the lease has ended: the quota has reset.
                i64::try_from(limit).unwrap_or(i64::MAX)
            } else {
                cell.ledger_left
                    .load(Ordering::Acquire)
                    .saturating_add(cell.held())
            };
            *slot = Some(QuotaState {
                account,
                period,
                limit,
                remaining: u64::try_from(known.max(0)).unwrap_or(0).min(limit),
                reset_after: end.saturating_sub(secs).max(1),
                reset_at: end,
                window: end.saturating_sub(start).max(1),
            });
        }
        Some(report)
    }
}
