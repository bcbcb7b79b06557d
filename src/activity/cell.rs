//! A key's counters: what its cache entry holds, and the one atomic add of a request.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::outcome::OUTCOME_SLOTS;
use super::types::unix_secs;
use super::Outcome;
use crate::clock::Now;
use crate::store::record::{AccountId, KeyId};

/// Minutes a cell tells apart: a request adds to the slot of its minute modulo this, and
/// a flush drains every slot. A slot's minute is the one of `[m - 2, m + 1]` (`m` the
/// flush's minute) with its remainder, so counts keep their exact minute as long as
/// flushes are less than two minutes apart.
pub(crate) const MINUTES: usize = 4;

/// Counts per minute slot and outcome for one key (or the deployment). 256 bytes.
pub(crate) struct UsageCell {
    /// The key and its account; `None` for the deployment's cell.
    pub(super) owner: Option<(KeyId, AccountId)>,
    slots: [[AtomicU32; OUTCOME_SLOTS]; MINUTES],
}

impl UsageCell {
    pub(crate) fn new(owner: Option<(KeyId, AccountId)>) -> Self {
        Self {
            owner,
            slots: [const { [const { AtomicU32::new(0) }; OUTCOME_SLOTS] }; MINUTES],
        }
    }

    /// Counts one request of `outcome` at `now`: one uncontended atomic add.
    #[inline]
    pub(crate) fn add(&self, outcome: Outcome, now: Now) {
        let slot = (now.unix_nanos / 60_000_000_000) as usize % MINUTES;
        self.slots[slot][outcome.slot()].fetch_add(1, Ordering::Relaxed);
    }

    /// Takes every count, as of a flush at `now`: `f(minute, outcome, count)` for each.
    pub(super) fn drain(&self, now: SystemTime, mut f: impl FnMut(SystemTime, Outcome, u64)) {
        let m = unix_secs(now) / 60;
        let ring = MINUTES as u64;
        for (slot, counts) in self.slots.iter().enumerate() {
            // The minute of [m - 2, m + 1] whose remainder is `slot`.
            let back = ((m + 1) % ring + ring - slot as u64) % ring;
            let minute = (m + 1).saturating_sub(back);
            for outcome in Outcome::ALL {
                let n = counts[outcome.slot()].swap(0, Ordering::Relaxed);
                if n > 0 {
                    f(
                        UNIX_EPOCH + Duration::from_secs(minute * 60),
                        outcome,
                        u64::from(n),
                    );
                }
            }
        }
    }
}

/// The counters a key's cache entry holds: the same cell for every entry of the key
/// (refreshed, replaced or evicted ones included), owned by the gate's counters until a
/// flush has taken its counts and no entry holds it any more. Empty when counting is
/// off and for verified credentials that are not keys.
#[derive(Default)]
pub(crate) struct KeyUsage(Option<Arc<UsageCell>>);

impl KeyUsage {
    pub(crate) fn new(cell: Option<Arc<UsageCell>>) -> Self {
        Self(cell)
    }

    /// Counts one request of `outcome` at `now` for this key.
    #[inline]
    pub(crate) fn count(&self, outcome: Outcome, now: Now) {
        if let Some(cell) = &self.0 {
            cell.add(outcome, now);
        }
    }

    /// Whether counting is on for this key.
    pub(crate) fn is_counted(&self) -> bool {
        self.0.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flush_gives_each_slot_its_minute_from_two_before_to_one_after() {
        let cell = UsageCell::new(None);
        let t = |min: u64| UNIX_EPOCH + Duration::from_secs(1_800_000_000 / 60 * 60 + min * 60);
        for (min, n) in [(0, 1), (1, 2), (2, 3), (3, 4)] {
            for _ in 0..n {
                cell.add(Outcome::Accepted, (t(min) + Duration::from_secs(59)).into());
            }
        }
        let mut seen = Vec::new();
        cell.drain(t(2), |minute, o, n| seen.push((minute, o, n)));
        seen.sort();
        let want: Vec<_> = (0..4).map(|i| (t(i), Outcome::Accepted, i + 1)).collect();
        assert_eq!(seen, want);
        let mut again = 0;
        cell.drain(t(2), |_, _, n| again += n);
        assert_eq!(again, 0, "drained");
    }
}
