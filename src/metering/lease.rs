//! Leases from a ledger across the network (`PgStore`): taken and returned in the
//! background, so that a request never waits for the ledger once its key is cached.
//!
//! # How an instance holds units
//!
//! Each meter's cell holds units leased from the ledger. The [`LeaseAgent`] of a gate
//! (one task) keeps them topped up and gives them back:
//!
//! - **Low watermark.** A spend that leaves a cell below half a lease asks the agent for
//!   another lease, so a busy meter's cell is refilled before it runs dry. At most one
//!   lease or return per cell is in flight.
//! - **Lease size.** [`crate::KeygateBuilder::usage_lease`] units (64 by default), or the
//!   cost of the request when that is more.
//! - **Empty cell.** A request that finds its cell empty (first use after an idle
//!   return, a new period, traffic that outran the top-up) is refused at once with 429
//!   `usage_exceeded` and `Retry-After: 1` while the agent leases; a request never waits
//!   for the network. When the ledger itself has nothing left, the refusal carries the
//!   wait until the next refill (none without refills), and the agent asks the ledger
//!   again at most every [`EMPTY_RETRY`].
//! - **Idle return.** The agent looks at every cell once a second; a cell whose count
//!   has not changed for [`IDLE_TICKS`] looks returns its units to the ledger: within
//!   5 s of a meter's last request, its units are back in the ledger, where a read of the
//!   balance (or another instance) sees them.
//! - **Shutdown.** [`crate::Keygate::return_leases`] returns every unit; dropping the last
//!   handle of a gate starts a best-effort return on the runtime.
//!
//! # Bounds
//!
//! With `n` instances and a lease of `L` units, per meter:
//!
//! - **Never over-spent.** A unit is spent only from a cell, and a cell holds only units
//!   the ledger granted: the total admitted never exceeds the balance granted, whatever
//!   the number of instances. A return whose outcome is unknown (a timeout) is not
//!   retried and the units are not kept: they may be lost, never counted twice.
//! - **Refused while credits remain.** At most `(n - 1) × L` units can sit in other
//!   instances' cells while one instance finds the ledger empty; they come back within
//!   5 s of those instances going idle. Besides, each instance refuses the requests
//!   that arrive during one ledger round trip when a cell runs dry faster than the
//!   low-watermark top-up refills it.
//! - **A crash.** An instance that dies without returning its units strands at most
//!   what its cells held: one lease plus the half lease left below the watermark, so
//!   at most `1.5 × L` units per meter (`L` when it was idle-returned or freshly
//!   leased). They are gone from the ledger's balance for good.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::mpsc;

use super::cell::{MeterCell, Metering};
use super::Meter;

/// How often the agent looks for idle cells.
pub(crate) const TICK: Duration = Duration::from_secs(1);
/// Looks in a row at an unchanged count after which a cell is idle and its units go
/// back: with [`TICK`], within 3 s of its last spend (the bound promised is 5 s).
pub(crate) const IDLE_TICKS: u32 = 2;
/// How long after the ledger said "nothing left" the agent asks again for a meter
/// whose requests keep arriving (units other instances returned, an operator's top-up).
pub(crate) const EMPTY_RETRY: Duration = Duration::from_millis(250);

/// A request for a lease: the cell, and the cost of the request that found it short.
type Ask = (Arc<MeterCell>, u64);

/// The background side of leasing from a ledger across the network: one task per gate.
pub(crate) struct LeaseAgent {
    asks: mpsc::UnboundedSender<Ask>,
    inbox: Mutex<Option<mpsc::UnboundedReceiver<Ask>>>,
    /// A spend that leaves a cell below this asks for a top-up: half a lease with a
    /// ledger across the network, never with one in process (`i64::MIN`).
    pub(crate) low_water: i64,
}

/// What a cell remembers of its leases.
#[derive(Debug, Default)]
pub(crate) struct LeaseState {
    /// Unix ms of the last reservation that found the ledger empty; 0 when it was not.
    empty_at_ms: AtomicU64,
}

impl LeaseAgent {
    pub(crate) fn new(remote: bool, lease: u64) -> Self {
        let (asks, inbox) = mpsc::unbounded_channel();
        Self {
            asks,
            inbox: Mutex::new(Some(inbox)),
            low_water: if remote {
                i64::try_from(lease / 2).unwrap_or(i64::MAX).max(1)
            } else {
                i64::MIN
            },
        }
    }

    /// Asks for a top-up of `cell` in the background; nothing when one is under way.
    #[cold]
    pub(crate) fn ask(&self, cell: &Arc<MeterCell>, cost: u64) {
        if !cell.busy.load(Ordering::Acquire) {
            let _ = self.asks.send((cell.clone(), cost));
        }
    }
}

fn unix_ms(at: SystemTime) -> u64 {
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
    /// agent for a lease and refuses this request. `Retry-After` is 1 s while a lease
    /// may come, or the time to the next refill when the ledger had nothing left.
    #[cold]
    pub(crate) fn short_remote(
        &self,
        cell: &MeterCell,
        cost: u64,
        now: SystemTime,
    ) -> Option<Duration> {
        let empty_at = cell.lease.empty_at_ms.load(Ordering::Acquire);
        let retry_ms = u64::try_from(EMPTY_RETRY.as_millis()).unwrap_or(u64::MAX);
        let now_ms = unix_ms(now);
        if empty_at == 0 || now_ms >= empty_at.saturating_add(retry_ms) || cell.held() < 0 {
            if let Some(cell) = self.cells.get(&cell.meter) {
                self.agent.ask(cell.value(), cost);
            }
        }
        if empty_at == 0 {
            return Some(Duration::from_secs(1));
        }
        cell.cold().next_refill.map(|at| {
            let wait = at.duration_since(now).unwrap_or(Duration::ZERO);
            // Round up, never to 0 (RFC 6585).
            Duration::from_secs(wait.as_secs() + u64::from(wait.subsec_nanos() > 0))
                .max(Duration::from_secs(1))
        })
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
        let (policy, period) = {
            let cold = cell.cold();
            (cold.policy, cold.period)
        };
        if secs >= cell.until.load(Ordering::Acquire) || cell.held() < 0 {
            // Units of an ended period go back (the ledger drops them); a debt is charged.
            let units = cell.leased.swap(0, Ordering::AcqRel);
            self.give_back(cell, &policy, period, units, now).await;
        }
        let held = u64::try_from(cell.held().max(0)).unwrap_or(0);
        let want = self.settings.lease.max(cost).saturating_sub(held).max(1);
        match ledger.reserve(&cell.meter, &policy, want, now).await {
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
            }
            Err(error) => {
                tracing::warn!(target: "keygate", meter = ?cell.meter, %error, "leasing usage units failed; the meter's requests are refused until a lease succeeds");
            }
        }
        cell.busy.store(false, Ordering::Release);
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
            if entry.1 >= IDLE_TICKS && held != 0 {
                self.settle(&cell).await;
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

impl Drop for Metering {
    /// Starts returning every unit still held, on the current runtime if there is one
    /// (best effort: call [`crate::Keygate::return_leases`] before shutting down to wait
    /// for it).
    fn drop(&mut self) {
        let Some(ledger) = self.ledger.clone() else {
            return;
        };
        if ledger.local().is_some() {
            // In process: the ledger goes with the gate, or is shared and outlives it.
            for cell in self.cells.iter() {
                let units = cell.leased.swap(0, Ordering::AcqRel);
                let cold = cell.cold();
                if let Some(local) = ledger.local() {
                    if units > 0 {
                        local.release_now(&cell.meter, cold.period, units.unsigned_abs());
                    } else if units < 0 {
                        local.adjust_now(&cell.meter, &cold.policy, units, self.clock.now());
                    }
                }
            }
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let now = self.clock.now();
        let held: Vec<_> = self
            .cells
            .iter()
            .filter_map(|cell| {
                let units = cell.leased.swap(0, Ordering::AcqRel);
                let cold = cell.cold();
                (units != 0).then(|| (cell.meter.clone(), cold.policy, cold.period, units))
            })
            .collect();
        if held.is_empty() {
            return;
        }
        runtime.spawn(async move {
            for (meter, policy, period, units) in held {
                let _ = if units > 0 {
                    ledger.release(&meter, period, units.unsigned_abs()).await
                } else {
                    ledger.adjust(&meter, &policy, units, now).await.map(drop)
                };
            }
        });
    }
}

impl super::cell::Meters {
    /// On a cache miss, which already waits for the store: takes a first lease for
    /// every cell that holds nothing, so that a key's first request after it was
    /// (re)loaded is not refused for want of a lease. Bounded by `within`.
    pub(crate) async fn prime(&self, within: Duration) {
        let metering = &self.metering;
        if metering.agent.low_water == i64::MIN {
            return;
        }
        let leases = self.cells.iter().filter(|c| c.held() <= 0).map(|cell| {
            let cell = cell.clone();
            async move { metering.top_up(&cell, 1).await }
        });
        let _ = tokio::time::timeout(within, futures_util::future::join_all(leases)).await;
    }
}
