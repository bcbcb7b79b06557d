//! Leases from a ledger across the network (`PgStore`): taken and returned in the
//! background, so that a request never waits for the ledger while its cell holds units.
//!
//! # How an instance holds units
//!
//! Each meter's cell holds units leased from the ledger. The [`LeaseAgent`] of a gate
//! (one task) keeps them topped up and gives them back:
//!
//! - **Lease size.** The first lease of a meter is
//!   [`usage_lease`](crate::KeygateBuilder::usage_lease) units (`L`, 64 by default), or
//!   the request's cost when that is more. A lease taken when the cell ran dry, or
//!   within [`GROW_WITHIN`] (250 ms) of the meter's previous lease, is twice the last
//!   one, up to [`usage_lease_max`](crate::KeygateBuilder::usage_lease_max) (`M`,
//!   8 × `L` by default); a meter that goes idle starts again at `L`. So a busy meter
//!   takes the ledger less often, and an idle one holds little.
//! - **Low watermark.** A spend that leaves a cell below half its current lease asks the
//!   agent for another, so a busy meter's cell is refilled before it runs dry; the
//!   watermark grows and shrinks with the lease. At most one lease or return per cell is
//!   in flight.
//! - **Fair share.** A lease takes at most `max(1, ceil(B / 4))` of the ledger's balance
//!   `B` ([`CreditLedger::reserve_fair`](super::CreditLedger::reserve_fair)): while the
//!   balance is large this is the whole lease, and as it runs low each instance gets a
//!   share of what is left instead of one instance taking it all while the others
//!   starve.
//! - **Dry cell.** A request that finds its cell dry (first use after an idle return, a
//!   new period, traffic that outran the top-up) awaits the lease in flight, with every
//!   other request that found it dry, and is then admitted or refused on what came (see
//!   [`super::wait`]). It waits at most the store timeout; a lease that fails or does
//!   not come in time fails it closed (503 `store_unavailable`), as a cache miss does.
//!   Only when the ledger itself has nothing left is a request refused, with 429
//!   `usage_exceeded` and the wait until the next refill as `Retry-After` (none without
//!   refills); the agent then asks the ledger again at most every [`EMPTY_RETRY`], for
//!   units other instances return. A cell that holds units never waits.
//! - **Idle return.** The agent looks at every cell once a second; a cell whose count
//!   has not changed for [`IDLE_TICKS`] looks returns its units to the ledger: within
//!   5 s of a meter's last request, its units are back in the ledger, where a read of the
//!   balance (or another instance) sees them.
//! - **Shutdown.** [`crate::Keygate::return_leases`] returns every unit; dropping the last
//!   handle of a gate starts a best-effort return on the runtime.
//!
//! # Bounds
//!
//! With `n` instances, per meter:
//!
//! - **Never over-spent.** A unit is spent only from a cell, and a cell holds only units
//!   the ledger granted: the total admitted never exceeds the balance granted, whatever
//!   the number of instances. A return whose outcome is unknown (a timeout) is not
//!   retried and the units are not kept: they may be lost, never counted twice.
//! - **Never refused while a lease is on its way.** A request is refused for want of
//!   units only after its own instance's lease found the ledger empty.
//! - **Refused while credits remain.** At that moment the credits that remain are in
//!   other instances' cells. Each holds at most its low watermark (under half its lease,
//!   so under `M / 2`) plus its last grant (at most `M`, and at most `ceil(B / 4)` of the
//!   balance `B` it was taken from): in all at most `(n - 1) × 1.5 × M` credits, which
//!   those instances spend, or return within 5 s of going idle. Measured with four
//!   processes hammering one key of 1,000 credits (`L` = 16, `M` = 64, bound 288): no
//!   credit remained elsewhere when the first instance was refused, in each of 20 runs
//!   (at most 56 with an earlier build; see BENCHMARKS.md).
//! - **A crash.** An instance that dies without returning its units strands at most what
//!   its cell held: under `1.5 × M` units per meter (its watermark plus one lease;
//!   `L` when the meter was quiet). They are gone from the ledger's balance for good.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::{mpsc, Notify};

use super::cell::{MeterCell, Metering};
use super::settings::MeteringSettings;
use super::wait::Short;
use super::Meter;

/// How often the agent looks for idle cells.
pub(crate) const TICK: Duration = Duration::from_secs(1);
/// Looks in a row at an unchanged count after which a cell is idle and its units go
/// back: with [`TICK`], within 3 s of its last spend (the bound promised is 5 s).
pub(crate) const IDLE_TICKS: u32 = 2;
/// How long after the ledger said "nothing left" the agent asks again for a meter
/// whose requests keep arriving (units other instances returned, an operator's top-up).
pub(crate) const EMPTY_RETRY: Duration = Duration::from_millis(250);
/// A cell asked for a lease again within this time of its last one (or found dry) is
/// busy: its next lease is twice as large, up to the most allowed.
pub(crate) const GROW_WITHIN: Duration = Duration::from_millis(250);

/// A request for a lease: the cell, and the cost of the request that found it short.
type Ask = (Arc<MeterCell>, u64);

/// The background side of leasing from a ledger across the network: one task per gate.
pub(crate) struct LeaseAgent {
    asks: mpsc::UnboundedSender<Ask>,
    inbox: Mutex<Option<mpsc::UnboundedReceiver<Ask>>>,
    /// The low watermark of a cell at the first lease size: half a lease with a ledger
    /// across the network, never with one in process (`i64::MIN`).
    pub(crate) low_water: i64,
    /// The first lease size, and the most a lease grows to.
    base: u64,
    max: u64,
}

/// What a cell remembers of its leases.
#[derive(Debug, Default)]
pub(crate) struct LeaseState {
    /// Unix ms of the last reservation that found the ledger empty; 0 when it was not.
    pub(super) empty_at_ms: AtomicU64,
    /// The current lease size; 0 until the first lease (then the base size).
    pub(super) size: AtomicU64,
    /// Unix ms of the last lease; 0 before the first and after an idle return.
    leased_at_ms: AtomicU64,
    /// The last lease failed (the ledger did not answer, or answered an error).
    pub(super) failed: AtomicBool,
    /// Leases and returns finished so far: a request that found the cell dry waits
    /// for this to move.
    pub(super) rounds: AtomicU64,
    /// Woken when a lease or return finishes.
    pub(super) done: Notify,
}

impl LeaseState {
    /// A lease (or return) finished: wakes the requests that wait for it.
    pub(super) fn finish(&self, failed: bool) {
        self.failed.store(failed, Ordering::Release);
        self.rounds.fetch_add(1, Ordering::AcqRel);
        self.done.notify_waiters();
    }
}

impl LeaseAgent {
    pub(crate) fn new(remote: bool, settings: &MeteringSettings) -> Self {
        let (asks, inbox) = mpsc::unbounded_channel();
        let base = settings.lease.max(1);
        Self {
            asks,
            inbox: Mutex::new(Some(inbox)),
            low_water: if remote { watermark(base) } else { i64::MIN },
            base,
            max: match settings.lease_max {
                0 => base.saturating_mul(8),
                max => max.max(base),
            },
        }
    }

    /// The size of the next lease of `cell`: doubled (up to the most allowed) when the
    /// cell ran dry or asks again within [`GROW_WITHIN`] of its last lease, else
    /// unchanged; the base size for the first lease and after an idle return.
    pub(super) fn next_size(&self, cell: &MeterCell, dry: bool, now_ms: u64) -> u64 {
        let state = &cell.lease;
        let size = state.size.load(Ordering::Acquire).max(self.base);
        let last = state.leased_at_ms.load(Ordering::Acquire);
        let within = u64::try_from(GROW_WITHIN.as_millis()).unwrap_or(u64::MAX);
        let busy = last != 0 && (dry || now_ms.saturating_sub(last) < within);
        let size = if busy {
            size.saturating_mul(2).min(self.max)
        } else {
            size
        };
        state.size.store(size, Ordering::Release);
        state.leased_at_ms.store(now_ms.max(1), Ordering::Release);
        if self.low_water != i64::MIN {
            // Across the network only: an in-process ledger is leased from inline, never
            // topped up in the background.
            cell.low_water.store(watermark(size), Ordering::Release);
        }
        size
    }

    /// An idle cell's lease shrinks back to the base size.
    fn shrink(&self, cell: &MeterCell) {
        cell.lease.size.store(self.base, Ordering::Release);
        cell.lease.leased_at_ms.store(0, Ordering::Release);
        cell.low_water
            .store(watermark(self.base), Ordering::Release);
    }

    /// Asks for a top-up of `cell` in the background; nothing when one is under way.
    #[cold]
    pub(crate) fn ask(&self, cell: &Arc<MeterCell>, cost: u64) {
        if !cell.busy.load(Ordering::Acquire) {
            let _ = self.asks.send((cell.clone(), cost));
        }
    }
}

/// The low watermark of a lease of `size` units: half of it, at least 1.
fn watermark(size: u64) -> i64 {
    i64::try_from(size / 2).unwrap_or(i64::MAX).max(1)
}

pub(super) fn unix_ms(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl Metering {
    /// Starts the lease agent's task when the ledger is across the network. Needs a
    /// tokio runtime; the task ends when the gate is dropped.
    pub(crate) fn start_leasing(self: &Arc<Self>) {
        let remote = self.ledger.as_ref().is_some_and(|l| l.local().is_none());
        let inbox = self
            .agent
            .inbox
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        let (true, Some(inbox)) = (remote, inbox) else {
            return;
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(run(Arc::downgrade(self), inbox));
            }
            Err(_) => tracing::error!(
                target: "keygate",
                "a gate metering usage with a ledger across the network was built outside a \
                 tokio runtime: no leases will be taken and metered keys are refused"
            ),
        }
    }

    /// A spend the cell could not cover, with a ledger across the network: asks the
    /// agent for a lease. While the ledger is not known to be empty the request awaits
    /// that lease ([`Short::Dry`]); otherwise it is refused, with the time to the next
    /// refill when there is one.
    #[cold]
    pub(crate) fn short_remote(&self, cell: &Arc<MeterCell>, cost: u64, now: SystemTime) -> Short {
        // Read before anything else: a lease that finishes after this is awaited.
        let round = cell.lease.rounds.load(Ordering::Acquire);
        let empty_at = cell.lease.empty_at_ms.load(Ordering::Acquire);
        let retry_ms = u64::try_from(EMPTY_RETRY.as_millis()).unwrap_or(u64::MAX);
        let now_ms = unix_ms(now);
        if empty_at == 0 || now_ms >= empty_at.saturating_add(retry_ms) || cell.held() < 0 {
            self.agent.ask(cell, cost);
        }
        if empty_at == 0 {
            return Short::Dry(super::wait::DryCell::new(cell.clone(), cost, round));
        }
        Short::Refused(cell.cold().next_refill.map(|at| {
            let wait = at.duration_since(now).unwrap_or(Duration::ZERO);
            // Round up, never to 0 (RFC 6585).
            Duration::from_secs(wait.as_secs() + u64::from(wait.subsec_nanos() > 0))
                .max(Duration::from_secs(1))
        }))
    }

    /// Leases units for `cell` (at least `cost`), first settling what it holds from a
    /// period that has ended or a debt. One at a time per cell.
    pub(crate) async fn top_up(&self, cell: &MeterCell, cost: u64) {
        let Some(ledger) = &self.ledger else { return };
        if cell.busy.swap(true, Ordering::AcqRel) {
            return;
        }
        let now = self.clock.now();
        let secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let current = secs < cell.until.load(Ordering::Acquire);
        let need = i64::try_from(cost)
            .unwrap_or(i64::MAX)
            .max(cell.low_water.load(Ordering::Acquire));
        if current && cell.held() >= need {
            // Asked twice (a spend and a waiting request): the first lease served both.
            cell.busy.store(false, Ordering::Release);
            return;
        }
        let (policy, period) = {
            let cold = cell.cold();
            (cold.policy, cold.period)
        };
        if secs >= cell.until.load(Ordering::Acquire) || cell.held() < 0 {
            // Units of an ended period go back (the ledger drops them); a debt is charged.
            let units = cell.leased.swap(0, Ordering::AcqRel);
            self.give_back(cell, &policy, period, units, now).await;
        }
        let held = cell.held().max(0);
        let dry = held < i64::try_from(cost).unwrap_or(i64::MAX);
        let size = self.agent.next_size(cell, dry, unix_ms(now));
        let held = u64::try_from(held).unwrap_or(0);
        let want = size.max(cost).saturating_sub(held).max(1);
        let parts = self.settings.fair_parts;
        let failed = match ledger
            .reserve_fair(&cell.meter, &policy, want, parts, now)
            .await
        {
            Ok(r) => {
                {
                    let mut cold = cell.cold();
                    cold.period = r.period;
                    cold.next_refill = r.next_refill;
                }
                let empty = r.granted < want && r.balance <= 0;
                cell.lease.empty_at_ms.store(
                    if empty { unix_ms(now).max(1) } else { 0 },
                    Ordering::Release,
                );
                cell.set_until(r.next_refill);
                cell.note_ledger(r.balance);
                cell.add(i64::try_from(r.granted).unwrap_or(i64::MAX));
                false
            }
            Err(error) => {
                tracing::warn!(target: "keygate", meter = ?cell.meter, %error, "leasing usage units failed; the meter's requests are refused until a lease succeeds");
                true
            }
        };
        cell.busy.store(false, Ordering::Release);
        cell.lease.finish(failed);
    }

    /// Returns `units` of `period` to the ledger (`units < 0`: charges the debt). On a
    /// failure, whose outcome is unknown, the units are neither kept nor retried: they
    /// may be lost, never counted twice.
    pub(crate) async fn give_back(
        &self,
        cell: &MeterCell,
        policy: &super::MeterPolicy,
        period: u64,
        units: i64,
        now: SystemTime,
    ) {
        let Some(ledger) = &self.ledger else { return };
        let returned = if units > 0 {
            ledger
                .release(&cell.meter, period, units.unsigned_abs())
                .await
        } else if units < 0 {
            ledger
                .adjust(&cell.meter, policy, units, now)
                .await
                .map(drop)
        } else {
            Ok(())
        };
        if let Err(error) = returned {
            tracing::warn!(target: "keygate", meter = ?cell.meter, units, %error, "returning leased usage units failed; they are not returned");
        }
    }

    /// One look at every cell: those unchanged for [`IDLE_TICKS`] looks return their
    /// units; those no cache entry holds any more are forgotten once empty.
    async fn return_idle(&self, seen: &mut HashMap<Meter, (i64, u32)>) {
        let cells: Vec<Arc<MeterCell>> = self.cells.iter().map(|c| c.value().clone()).collect();
        seen.retain(|m, _| self.cells.contains_key(m));
        for cell in cells {
            let held = cell.held();
            let entry = seen.entry(cell.meter.clone()).or_insert((held, 0));
            if entry.0 == held {
                entry.1 += 1;
            } else {
                *entry = (held, 0);
            }
            if entry.1 >= IDLE_TICKS {
                if held != 0 {
                    self.settle(&cell).await;
                }
                self.agent.shrink(&cell);
                seen.remove(&cell.meter);
            }
            self.cells.remove_if(&cell.meter, |_, c| {
                Arc::strong_count(c) <= 2 && c.held() == 0 && !c.busy.load(Ordering::Acquire)
            });
        }
    }
}

/// The agent's task: leases asked for, and a look for idle cells every [`TICK`].
async fn run(metering: Weak<Metering>, mut inbox: mpsc::UnboundedReceiver<Ask>) {
    let mut ticks = tokio::time::interval(TICK);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut seen = HashMap::new();
    loop {
        tokio::select! {
            ask = inbox.recv() => {
                let (Some((cell, cost)), Some(m)) = (ask, metering.upgrade()) else { return };
                tokio::spawn(async move { m.top_up(&cell, cost).await });
            }
            _ = ticks.tick() => {
                let Some(m) = metering.upgrade() else { return };
                m.return_idle(&mut seen).await;
            }
        }
    }
}
