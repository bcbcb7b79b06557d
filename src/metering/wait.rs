//! A request whose cell is dry awaits the lease in flight, as a cache miss awaits the
//! store: the first request after an idle return, after a new period begins, or when
//! traffic outran the top-up.
//!
//! Every request that finds a cell dry waits for the same lease (at most one lease or
//! return per cell is in flight, and each finishing one wakes every waiter), then spends
//! again from the start, all meters or none. The wait is bounded by the store timeout
//! ([`crate::KeygateBuilder::store_timeout`]); a lease that fails or does not come in
//! time fails the request closed (503 `store_unavailable`, as a miss does). A request
//! never waits while its cell holds units, nor when the ledger is known to be empty (it
//! is refused, `usage_exceeded`).

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::cell::{MeterCell, Metering};

/// Why a spend did not happen: refused (with the wait until the refusing meter's next
/// refill, if any), or a dry cell whose lease the request should await.
pub(crate) enum Short {
    Refused(Option<Duration>),
    Dry(DryCell),
}

/// A cell found dry, with a lease asked for.
pub(crate) struct DryCell {
    cell: Arc<MeterCell>,
    cost: u64,
    /// The cell's finished leases and returns when it was found dry.
    round: u64,
}

/// What awaiting a lease came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Waited {
    /// A lease or return finished: spend again.
    Finished,
    /// The lease failed: fail closed.
    Failed,
    /// No lease within the deadline: fail closed.
    TimedOut,
}

/// The wait for a dry cell's lease.
pub(crate) type LeaseWait = Pin<Box<dyn Future<Output = Waited> + Send + 'static>>;

impl DryCell {
    pub(super) fn new(cell: Arc<MeterCell>, cost: u64, round: u64) -> Self {
        Self { cell, cost, round }
    }

    /// The deadline of a request that finds a cell dry now.
    pub(crate) fn deadline(&self, metering: &Metering) -> Instant {
        Instant::now() + metering.settings.wait
    }

    /// Waits, until `deadline`, for a lease or return of the cell to finish after the
    /// one the request saw; asks for a lease again in case none is in flight.
    pub(crate) fn wait(self, metering: Arc<Metering>, deadline: Instant) -> LeaseWait {
        Box::pin(async move {
            let Self { cell, cost, round } = self;
            let state = &cell.lease;
            let done = state.done.notified();
            tokio::pin!(done);
            // Registered before looking, so a lease that finishes from here on wakes us.
            done.as_mut().enable();
            if state.rounds.load(Ordering::Acquire) == round {
                metering.agent.ask(&cell, cost);
                if tokio::time::timeout_at(deadline, done).await.is_err() {
                    return Waited::TimedOut;
                }
            }
            if state.failed.load(Ordering::Acquire) {
                Waited::Failed
            } else {
                Waited::Finished
            }
        })
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
