//! [`Listener`]: subscribes, checks the subscription with a heartbeat, reconnects, and
//! catches up on what it missed.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::{sleep, timeout, timeout_at, Instant};

use super::{Event, InvalidationChannel, InvalidationSink, Replay, Subscription};

/// Settings of a [`Listener`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ListenerConfig {
    /// How often a quiet subscription is probed. Default: 250 ms.
    pub heartbeat_interval: Duration,
    /// A subscription that shows no sign of life (an event or an answered probe) for
    /// this long is dead. Default: 750 ms, so that a connection that hangs is noticed
    /// within 1 s of its last answer.
    pub dead_after: Duration,
    /// Longest wait for a subscription to open or a replay to answer. Default: 2 s.
    pub connect_timeout: Duration,
    /// First pause between failed reconnects; it doubles up to
    /// [`max_reconnect_delay`](Self::max_reconnect_delay). Default: 50 ms.
    pub reconnect_delay: Duration,
    /// Longest pause between failed reconnects. Default: 1 s.
    pub max_reconnect_delay: Duration,
    /// While subscribed, the shortest time between two reads of the channel's log,
    /// which a notification naming a newer position prompts. Replays start from the
    /// last position read from the log, never from one a notification claimed; these
    /// reads keep that position recent. Default: 10 s.
    pub log_read_interval: Duration,
}

impl Default for ListenerConfig {
    fn default() -> Self {
        Self {
            heartbeat_interval: Duration::from_millis(250),
            dead_after: Duration::from_millis(750),
            connect_timeout: Duration::from_secs(2),
            reconnect_delay: Duration::from_millis(50),
            max_reconnect_delay: Duration::from_secs(1),
            log_read_interval: Duration::from_secs(10),
        }
    }
}

impl ListenerConfig {
    /// Sets [`heartbeat_interval`](Self::heartbeat_interval).
    #[must_use]
    pub fn heartbeat_interval(mut self, interval: Duration) -> Self {
        self.heartbeat_interval = interval;
        self
    }

    /// Sets [`dead_after`](Self::dead_after).
    #[must_use]
    pub fn dead_after(mut self, after: Duration) -> Self {
        self.dead_after = after;
        self
    }

    /// Sets [`connect_timeout`](Self::connect_timeout).
    #[must_use]
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Sets the first and the longest pause between failed reconnects.
    #[must_use]
    pub fn reconnect_delay(mut self, first: Duration, max: Duration) -> Self {
        self.reconnect_delay = first;
        self.max_reconnect_delay = max;
        self
    }

    /// Sets [`log_read_interval`](Self::log_read_interval).
    #[must_use]
    pub fn log_read_interval(mut self, interval: Duration) -> Self {
        self.log_read_interval = interval;
        self
    }
}

/// Where a [`Listener`] stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ListenerStatus {
    /// Opening the first subscription.
    Connecting,
    /// Subscribed and caught up: changes elsewhere arrive as they happen.
    Live,
    /// The subscription is down or catching up; the sink has been told
    /// [`set_degraded(true)`](InvalidationSink::set_degraded).
    Degraded,
}

/// Counters of a [`Listener`], for monitoring and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ListenerStats {
    /// Subscriptions opened and caught up, the first included.
    pub subscriptions: u64,
    /// Subscriptions found dead (closed, failed or silent past `dead_after`).
    pub deaths: u64,
    /// Digests invalidated as they were published.
    pub invalidated: u64,
    /// Digests invalidated by replays after reconnecting.
    pub replayed: u64,
    /// Times the whole cache was flushed.
    pub flushes: u64,
    /// Reads of the channel's log while subscribed, prompted by a notification that
    /// named a newer position (see [`ListenerConfig::log_read_interval`]). Their digests
    /// count in [`replayed`](Self::replayed).
    pub log_reads: u64,
    /// Notifications ignored because they could not be read ([`Event::Malformed`]):
    /// nonzero means something other than keygate sends on the channel.
    pub malformed: u64,
}

#[derive(Default)]
struct Counters {
    subscriptions: AtomicU64,
    deaths: AtomicU64,
    invalidated: AtomicU64,
    replayed: AtomicU64,
    flushes: AtomicU64,
    log_reads: AtomicU64,
    malformed: AtomicU64,
}

/// Feeds a sink from a channel until dropped. See the [module docs](super).
///
/// Dropping the listener stops it.
pub struct Listener {
    status: watch::Receiver<ListenerStatus>,
    counters: Arc<Counters>,
    task: JoinHandle<()>,
}

impl std::fmt::Debug for Listener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Listener")
            .field("status", &self.status())
            .field("stats", &self.stats())
            .finish()
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Listener {
    /// Starts listening on `channel` for `sink`, in a task on the current tokio runtime.
    ///
    /// # Panics
    /// Outside a tokio runtime.
    pub fn spawn(
        channel: Arc<dyn InvalidationChannel>,
        sink: Arc<dyn InvalidationSink>,
        config: ListenerConfig,
    ) -> Listener {
        let (tx, rx) = watch::channel(ListenerStatus::Connecting);
        let counters = Arc::new(Counters::default());
        let run = Run {
            channel,
            sink,
            config,
            status: tx,
            counters: counters.clone(),
            position: None,
            log_moved: false,
        };
        Listener {
            status: rx,
            counters,
            task: tokio::spawn(run.run()),
        }
    }

    /// Where the listener stands now.
    pub fn status(&self) -> ListenerStatus {
        *self.status.borrow()
    }

    /// Waits until the listener is in `status`. A state that lasts only an instant (a
    /// subscription that dies and is replaced at once) may be missed; watch the sink's
    /// [`InvalidationSink::set_degraded`] calls to see every transition.
    pub async fn wait_for(&self, status: ListenerStatus) {
        let mut rx = self.status.clone();
        // The sender lives as long as the task, which lives as long as `self`.
        let _ = rx.wait_for(|s| *s == status).await;
    }

    /// The counters so far.
    pub fn stats(&self) -> ListenerStats {
        let c = &self.counters;
        ListenerStats {
            subscriptions: c.subscriptions.load(Ordering::Relaxed),
            deaths: c.deaths.load(Ordering::Relaxed),
            invalidated: c.invalidated.load(Ordering::Relaxed),
            replayed: c.replayed.load(Ordering::Relaxed),
            flushes: c.flushes.load(Ordering::Relaxed),
            log_reads: c.log_reads.load(Ordering::Relaxed),
            malformed: c.malformed.load(Ordering::Relaxed),
        }
    }
}

struct Run {
    channel: Arc<dyn InvalidationChannel>,
    sink: Arc<dyn InvalidationSink>,
    config: ListenerConfig,
    status: watch::Sender<ListenerStatus>,
    counters: Arc<Counters>,
    /// The newest position read from the channel's log itself (a replay's answer):
    /// the next replay starts after it. Notifications never move it, so one that
    /// claims a position ahead of the log cannot make a replay skip a change.
    position: Option<u64>,
    /// A notification named a position after `position`: read the log soon.
    log_moved: bool,
}

impl Run {
    async fn run(mut self) {
        let mut delay = self.config.reconnect_delay;
        loop {
            match self.connect().await {
                Ok(sub) => {
                    self.status.send_replace(ListenerStatus::Live);
                    self.sink.set_degraded(false);
                    self.counters.subscriptions.fetch_add(1, Ordering::Relaxed);
                    let opened = Instant::now();
                    let why = self.listen(sub).await;
                    self.counters.deaths.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(target: "keygate", reason = why, "invalidation subscription lost; reconnecting");
                    self.degrade();
                    if opened.elapsed() < self.config.dead_after {
                        // Died young: back off rather than reconnect in a tight loop.
                        sleep(delay).await;
                        delay = (delay * 2).min(self.config.max_reconnect_delay);
                    } else {
                        delay = self.config.reconnect_delay;
                    }
                }
                Err(why) => {
                    self.degrade();
                    tracing::warn!(target: "keygate", reason = %why, retry_in = ?delay, "invalidation subscription failed");
                    sleep(delay).await;
                    delay = (delay * 2).min(self.config.max_reconnect_delay);
                }
            }
        }
    }

    fn degrade(&self) {
        let was = self.status.send_replace(ListenerStatus::Degraded);
        if was != ListenerStatus::Degraded {
            self.sink.set_degraded(true);
        }
    }

    /// Subscribes, then catches up on what happened while not subscribed.
    async fn connect(&mut self) -> Result<Box<dyn Subscription>, String> {
        let limit = self.config.connect_timeout;
        let sub = match timeout(limit, self.channel.subscribe()).await {
            Ok(Ok(sub)) => sub,
            Ok(Err(e)) => return Err(e.to_string()),
            Err(_) => return Err(format!("no subscription within {limit:?}")),
        };
        self.catch_up().await?;
        Ok(sub)
    }

    /// Reads the channel's log after [`Run::position`] and invalidates what it names;
    /// the log's answer becomes the new position. Called with a subscription open, so
    /// that whatever the log does not show yet is delivered by the subscription.
    async fn catch_up(&mut self) -> Result<(), String> {
        let asked = self.position;
        self.log_moved = false;
        match self.replay(asked).await? {
            // The first subscription has no position to replay from, and the sink may
            // have cached keys before it: start from a clean cache.
            Replay::Changes { position, .. } if asked.is_none() => {
                self.flush();
                self.position = Some(position);
            }
            Replay::Changes { digests, position } => {
                for digest in &digests {
                    self.sink.invalidate_digest(digest);
                }
                self.counters
                    .replayed
                    .fetch_add(digests.len() as u64, Ordering::Relaxed);
                self.position = Some(position.max(asked.unwrap_or(0)));
            }
            Replay::Unknown => {
                // Start again from where the log stands now, read before the flush:
                // every change up to there is covered by the flush.
                self.position = match self.replay(None).await {
                    Ok(Replay::Changes { position, .. }) => Some(position),
                    _ => None,
                };
                self.flush();
            }
        }
        Ok(())
    }

    async fn replay(&self, after: Option<u64>) -> Result<Replay, String> {
        let limit = self.config.connect_timeout;
        match timeout(limit, self.channel.replay(after)).await {
            Ok(Ok(replay)) => Ok(replay),
            Ok(Err(e)) => Err(format!("replay failed: {e}")),
            Err(_) => Err(format!("no replay within {limit:?}")),
        }
    }

    fn flush(&self) {
        self.sink.invalidate_all();
        self.counters.flushes.fetch_add(1, Ordering::Relaxed);
    }

    /// Delivers events until the subscription dies; returns why it did.
    async fn listen(&mut self, mut sub: Box<dyn Subscription>) -> &'static str {
        let beat = self.config.heartbeat_interval;
        let dead_after = self.config.dead_after;
        let mut alive_at = Instant::now();
        let mut probe_at = alive_at + beat;
        let mut read_log_at = alive_at + self.config.log_read_interval;
        loop {
            let mut deadline = probe_at.min(alive_at + dead_after);
            if self.log_moved {
                deadline = deadline.min(read_log_at);
            }
            match timeout_at(deadline, sub.next()).await {
                Ok(Ok(event)) => {
                    alive_at = Instant::now();
                    self.apply(event);
                }
                Ok(Err(_)) => return "subscription closed",
                Err(_) if self.log_moved && Instant::now() >= read_log_at => {
                    let started = Instant::now();
                    self.counters.log_reads.fetch_add(1, Ordering::Relaxed);
                    if let Err(why) = self.catch_up().await {
                        // The subscription still delivers; try again next interval.
                        self.log_moved = true;
                        tracing::warn!(target: "keygate", reason = %why, "invalidation log read failed");
                    }
                    read_log_at = Instant::now() + self.config.log_read_interval;
                    // Time spent reading the log was not spent watching the subscription.
                    alive_at += started.elapsed();
                }
                Err(_) if Instant::now() >= alive_at + dead_after => {
                    return "no sign of life within dead_after"
                }
                Err(_) => {
                    let left = (alive_at + dead_after).saturating_duration_since(Instant::now());
                    match timeout(left, sub.probe()).await {
                        Ok(Ok(())) => alive_at = Instant::now(),
                        Ok(Err(_)) => return "heartbeat failed",
                        Err(_) => return "no sign of life within dead_after",
                    }
                    probe_at = Instant::now() + beat;
                }
            }
        }
    }

    fn apply(&mut self, event: Event) {
        match event {
            Event::Changed { digests, position } => {
                for digest in &digests {
                    self.sink.invalidate_digest(digest);
                }
                self.counters
                    .invalidated
                    .fetch_add(digests.len() as u64, Ordering::Relaxed);
                // A claim, not a fact: it can only make the listener read the log
                // sooner. The replay position comes from the log alone.
                if position.is_some_and(|p| self.position.is_some_and(|at| p > at)) {
                    self.log_moved = true;
                }
            }
            Event::All => self.flush(),
            Event::Malformed => {
                self.counters.malformed.fetch_add(1, Ordering::Relaxed);
            }
            Event::Heartbeat => {}
        }
    }
}
