//! The recorder: requests push events into a bounded channel without waiting; a
//! background task writes them in batches.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use dashmap::DashMap;
use tokio::sync::{mpsc, oneshot};

use super::{ApiEvent, ApiLogConfig, ApiLogLimits, ApiLogStore};
use crate::clock::Clock;
use crate::store::record::AccountId;

/// How often the background task prunes events past their retention, at most.
const PRUNE_EVERY: Duration = Duration::from_secs(60);

enum Message {
    Event(ApiEvent),
    Flush(oneshot::Sender<()>),
}

/// The API log of a [`crate::Keygate`]: [`crate::Keygate::api_log`]. Cheap to clone.
#[derive(Clone)]
pub struct ApiLog {
    inner: Arc<Recorder>,
}

struct Recorder {
    sender: mpsc::Sender<Message>,
    /// Taken by the first use inside a runtime, which starts the writer.
    receiver: Mutex<Option<mpsc::Receiver<Message>>>,
    started: AtomicBool,
    accepted_per_million: u64,
    accepted_seen: AtomicU64,
    per_account_per_minute: u32,
    shared: Arc<Shared>,
    clock: Clock,
    flush_interval: Duration,
    max_batch: usize,
}

/// What the recorder and its writer task share.
struct Shared {
    store: Arc<dyn ApiLogStore>,
    limits: ApiLogLimits,
    /// Per account: the minute (since the epoch) and the events recorded in it.
    minutes: DashMap<AccountId, (u64, u32)>,
    recorded: AtomicU64,
    dropped_full: AtomicU64,
    dropped_bound: AtomicU64,
    written: AtomicU64,
    lost: AtomicU64,
}

/// Counters of an [`ApiLog`], from [`ApiLog::stats`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ApiLogStats {
    /// Events accepted into the buffer.
    pub recorded: u64,
    /// Events dropped because the buffer was full.
    pub dropped_buffer_full: u64,
    /// Events dropped because their account had recorded its maximum this minute.
    pub dropped_over_bound: u64,
    /// Events the store has stored.
    pub written: u64,
    /// Events lost because the store failed to write their batch.
    pub lost_to_store_errors: u64,
}

impl std::fmt::Debug for ApiLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiLog")
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl ApiLog {
    pub(crate) fn new(config: ApiLogConfig, clock: Clock) -> Self {
        let (sender, receiver) = mpsc::channel(config.buffer);
        Self {
            inner: Arc::new(Recorder {
                sender,
                receiver: Mutex::new(Some(receiver)),
                started: AtomicBool::new(false),
                accepted_per_million: config.accepted_per_million,
                accepted_seen: AtomicU64::new(0),
                per_account_per_minute: config.per_account_per_minute,
                shared: Arc::new(Shared {
                    store: config.store,
                    limits: config.limits,
                    minutes: DashMap::new(),
                    recorded: AtomicU64::new(0),
                    dropped_full: AtomicU64::new(0),
                    dropped_bound: AtomicU64::new(0),
                    written: AtomicU64::new(0),
                    lost: AtomicU64::new(0),
                }),
                clock,
                flush_interval: config.flush_interval,
                max_batch: config.max_batch,
            }),
        }
    }

    /// Where the events are stored.
    pub fn store(&self) -> &Arc<dyn ApiLogStore> {
        &self.inner.shared.store
    }

    /// The retention and per-account bound of the store.
    pub fn limits(&self) -> ApiLogLimits {
        self.inner.shared.limits
    }

    /// Writes every event recorded before this call, and waits until the store has them.
    pub async fn flush(&self) {
        self.inner.start();
        let (ack, done) = oneshot::channel();
        if self.inner.sender.send(Message::Flush(ack)).await.is_ok() {
            let _ = done.await;
        }
    }

    /// Counters: recorded, dropped (buffer full, over the per-minute bound), written, lost.
    pub fn stats(&self) -> ApiLogStats {
        let s = &self.inner.shared;
        ApiLogStats {
            recorded: s.recorded.load(Ordering::Relaxed),
            dropped_buffer_full: s.dropped_full.load(Ordering::Relaxed),
            dropped_over_bound: s.dropped_bound.load(Ordering::Relaxed),
            written: s.written.load(Ordering::Relaxed),
            lost_to_store_errors: s.lost.load(Ordering::Relaxed),
        }
    }

    /// Whether accepted requests are sampled at all: the hit path's one branch.
    #[inline]
    pub(crate) fn samples_accepted(&self) -> bool {
        self.inner.accepted_per_million != 0
    }

    /// Whether this accepted request is one to record: by a counter, so that a rate of
    /// `n` per million records exactly `n` of every million, evenly spread.
    pub(crate) fn sample_accepted(&self) -> bool {
        let rate = self.inner.accepted_per_million;
        let n = self.inner.accepted_seen.fetch_add(1, Ordering::Relaxed) % 1_000_000;
        (n + 1) * rate / 1_000_000 != n * rate / 1_000_000
    }

    /// The gate's clock.
    pub(crate) fn now(&self) -> SystemTime {
        self.inner.clock.now()
    }

    /// Queues `event` for the writer, unless its account is over its bound this minute or
    /// the buffer is full (then it is dropped and counted). Never waits.
    pub(crate) fn record(&self, event: ApiEvent) {
        let r = &*self.inner;
        let s = &*r.shared;
        let minute = event
            .time
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() / 60);
        let admitted = {
            let mut slot = s
                .minutes
                .entry(event.account_id.clone())
                .or_insert((minute, 0));
            if slot.0 != minute {
                *slot = (minute, 0);
            }
            let admitted = slot.1 < r.per_account_per_minute;
            if admitted {
                slot.1 += 1;
            }
            admitted
        };
        if !admitted {
            s.dropped_bound.fetch_add(1, Ordering::Relaxed);
            return;
        }
        r.start();
        match r.sender.try_send(Message::Event(event)) {
            Ok(()) => s.recorded.fetch_add(1, Ordering::Relaxed),
            Err(_) => s.dropped_full.fetch_add(1, Ordering::Relaxed),
        };
    }
}

impl Recorder {
    /// Starts the writer on the current runtime, once.
    fn start(&self) {
        if self.started.load(Ordering::Acquire) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let Some(receiver) = self.receiver.lock().expect("not poisoned").take() else {
            return;
        };
        self.started.store(true, Ordering::Release);
        let writer = Writer {
            shared: self.shared.clone(),
            clock: self.clock.clone(),
            flush_interval: self.flush_interval,
            max_batch: self.max_batch,
            last_prune: None,
        };
        runtime.spawn(writer.run(receiver));
    }
}

/// The background task: batches events and writes them.
struct Writer {
    shared: Arc<Shared>,
    clock: Clock,
    flush_interval: Duration,
    max_batch: usize,
    last_prune: Option<SystemTime>,
}

impl Writer {
    async fn run(mut self, mut receiver: mpsc::Receiver<Message>) {
        let mut batch: Vec<ApiEvent> = Vec::new();
        let mut deadline = tokio::time::Instant::now();
        loop {
            let message = if batch.is_empty() {
                receiver.recv().await
            } else {
                match tokio::time::timeout_at(deadline, receiver.recv()).await {
                    Ok(message) => message,
                    Err(_) => {
                        self.write(&mut batch).await;
                        continue;
                    }
                }
            };
            match message {
                // Every sender is gone: write what remains and stop.
                None => {
                    self.write(&mut batch).await;
                    return;
                }
                Some(Message::Event(event)) => {
                    if batch.is_empty() {
                        deadline = tokio::time::Instant::now() + self.flush_interval;
                    }
                    batch.push(event);
                    if batch.len() >= self.max_batch {
                        self.write(&mut batch).await;
                    }
                }
                Some(Message::Flush(ack)) => {
                    self.write(&mut batch).await;
                    let _ = ack.send(());
                }
            }
        }
    }

    async fn write(&mut self, batch: &mut Vec<ApiEvent>) {
        let s = &*self.shared;
        let now = self.clock.now();
        if !batch.is_empty() {
            let count = batch.len() as u64;
            match s.store.append_events(batch, &s.limits, now).await {
                Ok(()) => s.written.fetch_add(count, Ordering::Relaxed),
                Err(error) => {
                    tracing::warn!(target: "keygate", %error, events = count, "could not write API log events");
                    s.lost.fetch_add(count, Ordering::Relaxed)
                }
            };
            batch.clear();
        }
        let minute = now
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() / 60);
        s.minutes.retain(|_, (m, _)| *m >= minute);
        let due = self
            .last_prune
            .is_none_or(|last| now.duration_since(last).unwrap_or_default() >= PRUNE_EVERY);
        if due {
            self.last_prune = Some(now);
            let before = now.checked_sub(s.limits.retention).unwrap_or(UNIX_EPOCH);
            if let Err(error) = s.store.prune_events(before).await {
                tracing::warn!(target: "keygate", %error, "could not prune API log events");
            }
        }
    }
}
