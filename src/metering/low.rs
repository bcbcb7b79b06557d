//! Low credits: the state a ledger keeps per meter so that `credits.low` is sent once
//! per crossing of a meter's threshold ([`super::Credits::low`]).
//!
//! A meter is *armed* until a change that spends (a reservation, an after-the-fact
//! charge) leaves its balance of record at or below the threshold: that change sends
//! the notice and disarms it. It is armed again only when a refill, an operator's
//! top-up ([`crate::KeyManager::adjust_credits`] with a positive amount) or an
//! operator's new balance ([`crate::KeyManager::set_credits`]) leaves the balance above
//! the threshold; units that instances return from their leases do not re-arm it, so
//! an idle return followed by a new lease sends nothing. A balance an operator sets at
//! or below the threshold (a key created with fewer credits than its threshold, say)
//! disarms it without a notice: that was the operator's decision.
//!
//! The test and the state change happen in the ledger's one locked change of the row
//! (the in-process mutex; PostgreSQL's row lock, in the same statement), so however many
//! instances reserve at once, exactly one of them crosses.

use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use super::Meter;

/// One crossing of a low-credit threshold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct LowCredits {
    pub(crate) meter: Meter,
    /// The balance of record after the change (units leased by instances not in it).
    pub(crate) remaining: i64,
    pub(crate) threshold: u64,
    pub(crate) at: SystemTime,
}

/// What the in-process ledger calls on a crossing, outside its lock.
pub(crate) type LowCreditHook = Arc<dyn Fn(LowCredits) + Send + Sync>;

/// Whether `balance` is at or below `low`.
fn at_or_below(balance: i64, low: u64) -> bool {
    i64::try_from(low).map_or(true, |low| balance <= low)
}

/// After a change that spends: whether it crossed (and disarms `sent`).
pub(crate) fn spent(sent: &mut bool, balance: i64, low: Option<u64>) -> bool {
    match low {
        Some(low) if at_or_below(balance, low) && !*sent => {
            *sent = true;
            true
        }
        _ => false,
    }
}

/// After a refill or a top-up: armed again when above the threshold.
pub(crate) fn raised(sent: &mut bool, balance: i64, low: Option<u64>) {
    if low.is_none_or(|low| !at_or_below(balance, low)) {
        *sent = false;
    }
}

/// After an operator set the balance (or a meter starts): armed when above the
/// threshold, disarmed without a notice otherwise.
pub(crate) fn set(balance: i64, low: Option<u64>) -> bool {
    low.is_some_and(|low| at_or_below(balance, low))
}

/// The hook of an in-process ledger.
#[derive(Default)]
pub(crate) struct LowCreditNotices(RwLock<Option<LowCreditHook>>);

impl std::fmt::Debug for LowCreditNotices {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LowCreditNotices")
    }
}

impl LowCreditNotices {
    #[cfg_attr(not(feature = "webhooks"), allow(dead_code))]
    pub(crate) fn set(&self, hook: LowCreditHook) {
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = Some(hook);
    }

    pub(crate) fn send(&self, crossing: LowCredits) {
        let hook = self.0.read().unwrap_or_else(|p| p.into_inner()).clone();
        if let Some(hook) = hook {
            hook(crossing);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_crossing_is_sent_once_and_rearmed_only_above_the_threshold() {
        let mut sent = set(100, Some(10));
        assert!(!sent);
        assert!(!spent(&mut sent, 11, Some(10)));
        assert!(spent(&mut sent, 10, Some(10)));
        assert!(!spent(&mut sent, 3, Some(10)), "once per crossing");
        raised(&mut sent, 10, Some(10));
        assert!(!spent(&mut sent, 2, Some(10)), "not above: still disarmed");
        raised(&mut sent, 11, Some(10));
        assert!(
            spent(&mut sent, -4, Some(10)),
            "re-armed by a refill above it"
        );
        assert!(
            set(5, Some(10)),
            "set at or below: disarmed without a notice"
        );
        assert!(!spent(&mut false, 0, None), "no threshold, no notice");
    }
}
