//! The local cells: units leased from the ledger, spent with one compare-and-swap.
//!
//! A cell's count never goes below zero through a spend (a spend that does not fit
//! changes nothing), only through an after-the-fact charge, whose debt is settled with
//! the ledger at the next lease or return. Units move between a cell and the ledger only
//! with the cell's period written beside them, so units leased in a period that has
//! ended are dropped on return, as the refill at its end already topped the meter up.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use dashmap::DashMap;

use super::lease::{LeaseAgent, LeaseState};
use super::plans::Plans;
use super::settings::MeteringSettings;
use super::wait::Short;
use super::{CreditLedger, Meter, MeterPolicy};
use crate::clock::{Clock, Now};

/// One meter's local units on this instance.
pub(crate) struct MeterCell {
    pub(crate) meter: Meter,
    /// Units leased and not yet spent; below zero only after a charge.
    pub(super) leased: AtomicI64,
    /// A spend that leaves fewer units than this asks for a top-up: half the cell's
    /// current lease size with a ledger across the network (see [`super::lease`]),
    /// `i64::MIN` (never) with one in process. Beside `leased`, in the same cache line.
    pub(super) low_water: AtomicI64,
    /// Unix seconds when the lease's period ends (`u64::MAX`: never); 0 before the first
    /// lease, so the first spend takes one.
    pub(super) until: AtomicU64,
    /// A background lease or return is under way (ledgers across the network).
    pub(super) busy: AtomicBool,
    /// The ledger's balance as its last reservation left it, plus units returned since:
    /// with `leased`, what this instance knows remains (see [`super::report`]). Written
    /// only by leases and returns, read only when quota headers are on.
    pub(super) ledger_left: AtomicI64,
    cold: Mutex<Cold>,
    /// What the lease agent remembers (see [`super::lease`]).
    pub(super) lease: LeaseState,
}

/// What only leases and returns read.
#[derive(Clone, Copy, Debug)]
pub(super) struct Cold {
    pub(super) policy: MeterPolicy,
    /// The period the leased units belong to.
    pub(super) period: u64,
    pub(super) next_refill: Option<SystemTime>,
}

impl MeterCell {
    pub(crate) fn new(meter: Meter, policy: MeterPolicy, low_water: i64) -> Self {
        Self {
            meter,
            leased: AtomicI64::new(0),
            low_water: AtomicI64::new(low_water),
            until: AtomicU64::new(0),
            busy: AtomicBool::new(false),
            ledger_left: AtomicI64::new(policy.initial),
            lease: LeaseState::default(),
            cold: Mutex::new(Cold {
                policy,
                period: 0,
                next_refill: None,
            }),
        }
    }

    /// Spends `cost` if the lease is current and holds it. No lock.
    #[inline]
    pub(crate) fn try_spend(&self, cost: i64, now_secs: u64) -> bool {
        self.spend_left(cost, now_secs).is_some()
    }

    /// Spends `cost` if the lease is current and holds it, and tells the units left
    /// after it. One compare-and-swap, no lock.
    #[inline]
    pub(crate) fn spend_left(&self, cost: i64, now_secs: u64) -> Option<i64> {
        if now_secs >= self.until.load(Ordering::Acquire) {
            return None;
        }
        let mut held = self.leased.load(Ordering::Acquire);
        loop {
            if held < cost {
                return None;
            }
            match self.leased.compare_exchange_weak(
                held,
                held - cost,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return Some(held - cost),
                Err(now) => held = now,
            }
        }
    }

    /// Gives `units` back to the cell (an undo, or a refund); a negative `units` is a
    /// charge, which may leave the cell below zero.
    #[inline]
    pub(crate) fn add(&self, units: i64) {
        self.leased.fetch_add(units, Ordering::AcqRel);
    }

    /// Units held now.
    pub(crate) fn held(&self) -> i64 {
        self.leased.load(Ordering::Acquire)
    }

    /// Units held that still count at `now`: none once the lease's period has ended
    /// (they are dropped when returned), except a debt, which carries over.
    pub(crate) fn held_at(&self, now: SystemTime) -> i64 {
        let secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let held = self.held();
        if held > 0 && secs >= self.until.load(Ordering::Acquire) {
            0
        } else {
            held
        }
    }

    /// Drops the units held and ends the lease: the meter is gone from the ledger.
    pub(super) fn forget(&self) {
        self.until.store(0, Ordering::Release);
        self.leased.store(0, Ordering::Release);
    }

    pub(super) fn cold(&self) -> std::sync::MutexGuard<'_, Cold> {
        self.cold.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Notes what a reservation left in the ledger, for the quota headers.
    pub(super) fn note_ledger(&self, balance: i64) {
        self.ledger_left.store(balance, Ordering::Release);
    }

    /// Notes units returned to the ledger, for the quota headers.
    pub(super) fn note_returned(&self, units: i64) {
        self.ledger_left.fetch_add(units, Ordering::AcqRel);
    }

    pub(super) fn set_until(&self, next_refill: Option<SystemTime>) {
        let until = next_refill.map_or(u64::MAX, |t| {
            t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
        });
        self.until.store(until, Ordering::Release);
    }
}

/// The meters one cache entry spends from, in order: quotas, then credits.
pub(crate) struct Meters {
    pub(crate) cells: Box<[Arc<MeterCell>]>,
    /// The key refers to a plan that does not exist: every request is refused.
    pub(crate) refused: bool,
    pub(crate) metering: Arc<Metering>,
    /// The limit of each quota: `quota_limits[i]` is that of `cells[i]` (quotas come
    /// first), for the quota headers.
    pub(crate) quota_limits: Box<[u64]>,
}

impl Meters {
    /// Spends `cost` from every cell, all or nothing. [`Short::Refused`] carries how long
    /// until the refusing meter's next refill, if it has one; [`Short::Dry`]: nothing was
    /// spent, as a cell is dry and its lease is on its way (see [`super::wait`]).
    #[inline]
    pub(crate) fn spend(&self, cost: u64, now: Now) -> Result<(), Short> {
        match &*self.cells {
            // One meter, the common case: no loop, and nothing kept across a call.
            [cell] if !self.refused && cost > 0 => {
                let cost = i64::try_from(cost).unwrap_or(i64::MAX);
                match cell.spend_left(cost, now.unix_secs()) {
                    Some(left) => {
                        self.after_spend(cell, left, cost);
                        Ok(())
                    }
                    None => self.spend_short(0, cost, now),
                }
            }
            _ => self.spend_each(cost, now),
        }
    }

    /// [`Meters::spend`] for a refused plan, a free request, or several meters.
    #[inline(never)]
    fn spend_each(&self, cost: u64, now: Now) -> Result<(), Short> {
        if self.refused {
            return Err(Short::Refused(None));
        }
        if cost == 0 {
            return Ok(());
        }
        let cost = i64::try_from(cost).unwrap_or(i64::MAX);
        let secs = now.unix_secs();
        for (i, cell) in self.cells.iter().enumerate() {
            match cell.spend_left(cost, secs) {
                Some(left) => self.after_spend(cell, left, cost),
                None => return self.spend_short(i, cost, now),
            }
        }
        Ok(())
    }

    /// Below the low watermark: a top-up starts before the cell runs dry.
    #[inline]
    fn after_spend(&self, cell: &Arc<MeterCell>, left: i64, cost: i64) {
        if left < cell.low_water.load(Ordering::Relaxed) {
            self.ask_top_up(cell, cost);
        }
    }

    #[cold]
    #[inline(never)]
    fn ask_top_up(&self, cell: &Arc<MeterCell>, cost: i64) {
        self.metering.agent.ask(cell, cost.unsigned_abs());
    }

    /// The rest of [`Meters::spend`] from the first cell that could not cover `cost`
    /// (`from`): lease more for it, then go on with the others; on a refusal, gives back
    /// what the cells before it spent.
    #[cold]
    #[inline(never)]
    fn spend_short(&self, from: usize, cost: i64, now: Now) -> Result<(), Short> {
        let secs = now.unix_secs();
        for (i, cell) in self.cells.iter().enumerate().skip(from) {
            if i > from {
                if let Some(left) = cell.spend_left(cost, secs) {
                    self.after_spend(cell, left, cost);
                    continue;
                }
            }
            if let Err(wait) = self.metering.short(cell, cost, now.at) {
                for done in &self.cells[..i] {
                    done.add(cost);
                }
                return Err(wait);
            }
        }
        Ok(())
    }

    /// An after-the-fact charge (`units > 0`) or refund (`units < 0`) on every credits
    /// meter of the entry.
    pub(crate) fn charge(&self, units: i64) {
        for cell in self.cells.iter().filter(|c| c.meter.is_credits()) {
            cell.add(-units);
        }
    }

    /// Gives `units` back to every meter (a route that costs less than was spent).
    pub(crate) fn give_back(&self, units: u64) {
        let units = i64::try_from(units).unwrap_or(i64::MAX);
        for cell in self.cells.iter() {
            cell.add(units);
        }
    }

    /// Whether any meter counts credits.
    pub(crate) fn has_credits(&self) -> bool {
        self.cells.iter().any(|c| c.meter.is_credits())
    }
}

/// One gate's metering: its ledger and every cell it holds, by meter, so that a cell
/// outlives the cache entries that hold it (refresh, invalidation, plan change,
/// eviction) and its units are never dropped.
pub(crate) struct Metering {
    pub(crate) ledger: Option<Arc<dyn CreditLedger>>,
    pub(crate) cells: DashMap<Meter, Arc<MeterCell>>,
    pub(crate) settings: MeteringSettings,
    pub(crate) plans: Plans,
    pub(crate) clock: Clock,
    /// Leases from a ledger across the network, in the background.
    pub(crate) agent: LeaseAgent,
}

impl Metering {
    pub(crate) fn new(
        ledger: Option<Arc<dyn CreditLedger>>,
        settings: MeteringSettings,
        clock: Clock,
    ) -> Self {
        let remote = ledger.as_ref().is_some_and(|l| l.local().is_none());
        Self {
            agent: LeaseAgent::new(remote, &settings),
            ledger,
            cells: DashMap::new(),
            settings,
            plans: Plans::default(),
            clock,
        }
    }

    /// The cell of `meter`, created on first use; a changed `policy` replaces the old one
    /// and returns the units leased under it.
    pub(crate) fn cell(&self, meter: &Meter, policy: MeterPolicy) -> Arc<MeterCell> {
        if let Some(cell) = self.cells.get(meter) {
            let cell = cell.clone();
            let changed = {
                let mut cold = cell.cold();
                let changed = cold.policy != policy;
                cold.policy = policy;
                changed
            };
            if changed {
                // Lease again under the new policy at the next spend.
                cell.until.store(0, Ordering::Release);
            }
            return cell;
        }
        self.cells
            .entry(meter.clone())
            .or_insert_with(|| {
                Arc::new(MeterCell::new(meter.clone(), policy, self.agent.low_water))
            })
            .clone()
    }

    /// The cold path of a spend that the cell could not cover: lease more, then try
    /// again. With a ledger in this process the lease is taken inline; otherwise a
    /// background lease starts and this request awaits it ([`Short::Dry`], see
    /// [`super::wait`]) unless the ledger is known to be empty.
    #[cold]
    pub(crate) fn short(
        &self,
        cell: &Arc<MeterCell>,
        cost: i64,
        now: SystemTime,
    ) -> Result<(), Short> {
        let Some(ledger) = &self.ledger else {
            // Metered without a ledger: fail closed.
            return Err(Short::Refused(None));
        };
        let secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let Some(local) = ledger.local() else {
            return Err(self.short_remote(cell, cost.unsigned_abs(), now));
        };
        let mut cold = cell.cold();
        if cell.try_spend(cost, secs) {
            return Ok(());
        }
        let policy = cold.policy;
        let period = policy.period(now);
        let expired = secs >= cell.until.load(Ordering::Acquire);
        if expired || cell.held() < 0 {
            let units = cell.leased.swap(0, Ordering::AcqRel);
            if units > 0 {
                local.release_now(&cell.meter, cold.period, units.unsigned_abs());
            } else if units < 0 {
                local.adjust_now(&cell.meter, &policy, units, now);
            }
        }
        let _ = period;
        // A dry cell of a busy meter leases more each time (up to the most allowed), as
        // with a ledger across the network: the units stay this process's, which every
        // read of the balance counts (see `held_at`).
        let ms = now
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let size = self.agent.next_size(cell, true, ms);
        let want = size.max(cost.unsigned_abs());
        let r = local.reserve_now(&cell.meter, &policy, want, now);
        cold.period = r.period;
        cold.next_refill = r.next_refill;
        cell.add(i64::try_from(r.granted).unwrap_or(i64::MAX));
        cell.set_until(r.next_refill);
        cell.note_ledger(r.balance);
        if cell.try_spend(cost, secs) {
            Ok(())
        } else {
            Err(Short::Refused(
                r.next_refill
                    .map(|t| t.duration_since(now).unwrap_or(Duration::ZERO)),
            ))
        }
    }
}
