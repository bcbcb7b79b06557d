//! [`UsageCounters`]: a gate's cells, flushed off the request path into its sink.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use dashmap::DashMap;
use tokio::sync::oneshot;

use super::cell::UsageCell;
use super::{Outcome, UsageConfig, UsageCount, UsageSink, UsageStore, UsageSubject};
use crate::clock::{Clock, Now};
use crate::store::record::{AccountId, KeyId, KeyRecord};
use crate::store::StoreError;

/// One count's identity: subject, its account, minute and outcome.
type Row = (UsageSubject, Option<AccountId>, SystemTime, Outcome);

/// Every count of one gate not yet in its sink.
pub(crate) struct UsageCounters {
    /// The cells of keys held by cache entries or not flushed yet.
    cells: DashMap<KeyId, Arc<UsageCell>>,
    /// Refusals before any key was recognised.
    deployment: UsageCell,
    clock: Clock,
    pub(crate) store: Arc<dyn UsageStore>,
    /// Counts a failed flush kept for the next one.
    pending: Mutex<HashMap<Row, u64>>,
    max_pending: usize,
    /// One flush at a time, so that a flush that returns has written everything counted
    /// before it began.
    flushing: tokio::sync::Mutex<()>,
    interval: Duration,
    started: AtomicBool,
    /// The background task's stop signal, until the task starts.
    stop: Mutex<Option<oneshot::Receiver<()>>>,
}

/// What the gate holds: the counters, and the background flusher's stop signal, which
/// dropping the gate sends (the flusher then flushes one last time).
pub(crate) struct UsageHandle {
    pub(crate) counters: Arc<UsageCounters>,
    _stop: oneshot::Sender<()>,
}

impl Drop for UsageHandle {
    fn drop(&mut self) {
        // Never started (no key was looked up in a runtime): flush what refusals counted.
        if !self.counters.started.load(Ordering::Acquire) {
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                let counters = self.counters.clone();
                runtime.spawn(async move { counters.flush_logged().await });
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl UsageCounters {
    pub(crate) fn handle(
        config: &UsageConfig,
        store: Arc<dyn UsageStore>,
        clock: Clock,
    ) -> UsageHandle {
        let (tx, rx) = oneshot::channel();
        let counters = Arc::new(UsageCounters {
            cells: DashMap::new(),
            deployment: UsageCell::new(None),
            clock,
            store,
            pending: Mutex::default(),
            max_pending: config.max_pending,
            flushing: tokio::sync::Mutex::new(()),
            interval: config.flush_interval,
            started: AtomicBool::new(false),
            stop: Mutex::new(Some(rx)),
        });
        UsageHandle {
            counters,
            _stop: tx,
        }
    }

    /// The cell of `record`'s key, for its cache entry: the same one for every entry of
    /// the key until a flush drops it unused. On a cache miss only.
    pub(crate) fn cell(self: &Arc<Self>, record: &KeyRecord) -> Arc<UsageCell> {
        self.start();
        self.cells
            .entry(record.id.clone())
            .or_insert_with(|| {
                Arc::new(UsageCell::new(Some((
                    record.id.clone(),
                    record.account_id.clone(),
                ))))
            })
            .clone()
    }

    /// Counts a refusal that came before any key was recognised.
    pub(crate) fn count_deployment(self: &Arc<Self>, outcome: Outcome, now: Now) {
        self.start();
        self.deployment.add(outcome, now);
    }

    /// Starts the background flusher, once, when a runtime is at hand.
    fn start(self: &Arc<Self>) {
        if self.started.load(Ordering::Relaxed) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let Some(stop) = lock(&self.stop).take() else {
            return;
        };
        self.started.store(true, Ordering::Release);
        let counters = self.clone();
        runtime.spawn(async move {
            let mut tick = tokio::time::interval(counters.interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            let mut stop = stop;
            loop {
                tokio::select! {
                    _ = tick.tick() => counters.flush_logged().await,
                    _ = &mut stop => break,
                }
            }
            counters.flush_logged().await;
        });
    }

    async fn flush_logged(&self) {
        if let Err(error) = self.flush().await {
            tracing::warn!(target: "keygate", %error, "could not flush usage counts; keeping them for the next flush");
        }
    }

    /// Writes every count made before this call into the sink, in one call. On failure
    /// the counts are kept (up to the bound) for the next flush.
    pub(crate) async fn flush(&self) -> Result<(), StoreError> {
        let _one = self.flushing.lock().await;
        let now = self.clock.now();
        let mut rows = std::mem::take(&mut *lock(&self.pending));
        self.drain_into(now, &mut rows);
        if rows.is_empty() {
            return Ok(());
        }
        let mut counts: Vec<UsageCount> = rows
            .iter()
            .map(|((subject, account, minute, outcome), n)| UsageCount {
                subject: subject.clone(),
                account: account.clone(),
                minute: *minute,
                outcome: *outcome,
                count: *n,
            })
            .collect();
        // One order for every instance, so concurrent batched upserts take row locks in
        // the same order.
        counts.sort_by(|a, b| {
            (&a.subject, a.minute, a.outcome).cmp(&(&b.subject, b.minute, b.outcome))
        });
        // Should this future be dropped mid-write, the counts go back to pending.
        let mut keep = KeepOnDrop {
            counters: self,
            rows: Some(rows),
        };
        match self.store.record(&counts).await {
            Ok(()) => {
                keep.rows = None;
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    fn drain_into(&self, now: SystemTime, rows: &mut HashMap<Row, u64>) {
        self.deployment.drain(now, |minute, outcome, n| {
            *rows
                .entry((UsageSubject::Deployment, None, minute, outcome))
                .or_default() += n;
        });
        // Drained under each shard's lock: a cell only the map holds can gain no count
        // after it is drained, so dropping it loses none.
        self.cells.retain(|_, cell| {
            if let Some((key, account)) = &cell.owner {
                cell.drain(now, |minute, outcome, n| {
                    let of = Some(account.clone());
                    *rows
                        .entry((UsageSubject::Key(key.clone()), of.clone(), minute, outcome))
                        .or_default() += n;
                    *rows
                        .entry((UsageSubject::Account(account.clone()), of, minute, outcome))
                        .or_default() += n;
                });
            }
            Arc::strong_count(cell) > 1
        });
    }

    /// Puts counts a flush could not write back for the next one; beyond the bound, the
    /// oldest minutes go (and are logged).
    fn keep(&self, rows: HashMap<Row, u64>) {
        let mut pending = lock(&self.pending);
        for (row, n) in rows {
            *pending.entry(row).or_default() += n;
        }
        if pending.len() > self.max_pending {
            let mut minutes: Vec<SystemTime> = pending.keys().map(|r| r.2).collect();
            minutes.sort_unstable();
            let cut = minutes[pending.len() - self.max_pending];
            let before = pending.len();
            pending.retain(|r, _| r.2 >= cut);
            tracing::error!(target: "keygate", dropped = before - pending.len(), "usage sink unavailable for too long: dropping the oldest unflushed counts");
        }
    }

    /// Keys with a cell (held by a cache entry, or counted since the last flush).
    pub(crate) fn cells(&self) -> usize {
        self.cells.len()
    }
}

struct KeepOnDrop<'a> {
    counters: &'a UsageCounters,
    rows: Option<HashMap<Row, u64>>,
}

impl Drop for KeepOnDrop<'_> {
    fn drop(&mut self) {
        if let Some(rows) = self.rows.take() {
            self.counters.keep(rows);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::UNIX_EPOCH;

    use super::*;
    use crate::activity::{Granularity, UsageQuery};
    use crate::key::digest::KeyDigest;
    use crate::store::{KeyStore, MemoryStore};

    fn setup() -> (UsageHandle, Arc<dyn UsageStore>, KeyRecord, Clock) {
        let store = MemoryStore::new().usage_store().unwrap();
        let (clock, _) = Clock::manual(UNIX_EPOCH + Duration::from_secs(1_800_000_000));
        let handle = UsageCounters::handle(&UsageConfig::default(), store.clone(), clock.clone());
        let record = KeyRecord::new(
            "ak_1".into(),
            "acct_1".into(),
            KeyDigest::from_bytes([1; 32]),
            clock.now(),
        );
        (handle, store, record, clock)
    }

    async fn accepted(store: &Arc<dyn UsageStore>, clock: &Clock) -> u64 {
        let range = UsageQuery::new(Granularity::Minute)
            .resolve(clock.now(), &store.retention())
            .unwrap();
        let buckets = store
            .usage(&UsageSubject::Key("ak_1".into()), &range)
            .await
            .unwrap();
        buckets.iter().map(|b| b.get(Outcome::Accepted)).sum()
    }

    /// Each step of the interleaving in order: a count on a cell an entry still holds,
    /// the entry's drop, a flush that drains and drops the cell, a new entry's new cell.
    #[tokio::test]
    async fn a_cell_is_dropped_only_drained_and_unheld_and_its_successor_counts_on() {
        let (handle, store, record, clock) = setup();
        let counters = &handle.counters;
        let held = counters.cell(&record);
        held.add(Outcome::Accepted, clock.read());
        counters.flush().await.unwrap();
        assert_eq!(counters.cells(), 1, "held by an entry: kept");
        held.add(Outcome::Accepted, clock.read());
        drop(held);
        assert_eq!(counters.cells(), 1, "unheld but not drained: kept");
        counters.flush().await.unwrap();
        assert_eq!(counters.cells(), 0, "drained and unheld: dropped");
        let next = counters.cell(&record);
        next.add(Outcome::Accepted, clock.read());
        // The same cell for every entry of the key while one holds it.
        assert!(Arc::ptr_eq(&next, &counters.cell(&record)));
        counters.flush().await.unwrap();
        assert_eq!(accepted(&store, &clock).await, 3);
    }
}
