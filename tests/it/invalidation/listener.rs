//! The invalidation listener's protocol on a custom in-process channel, on tokio's paused
//! clock: events reach the sink, a silent subscription is found dead within
//! `dead_after`, every reconnect catches up by replay or by flushing everything, and
//! replays start from positions read from the log, never from notifications.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use keygate::invalidation::{
    ChannelError, Event, InvalidationChannel, InvalidationSink, Listener, ListenerConfig,
    ListenerStatus, Replay, Subscription,
};
use keygate::key::KeyDigest;
use tokio::sync::mpsc;
use tokio::time::Instant;

#[derive(Default)]
struct Recorder {
    digests: Mutex<Vec<KeyDigest>>,
    flushes: AtomicUsize,
    /// Every `set_degraded` call, with when it came.
    degraded: Mutex<Vec<(bool, Instant)>>,
}

impl InvalidationSink for Recorder {
    fn invalidate_digest(&self, digest: &KeyDigest) {
        self.digests.lock().unwrap().push(*digest);
    }
    fn invalidate_all(&self) {
        self.flushes.fetch_add(1, Ordering::SeqCst);
    }
    fn set_degraded(&self, degraded: bool) {
        self.degraded
            .lock()
            .unwrap()
            .push((degraded, Instant::now()));
    }
}

impl Recorder {
    fn digests(&self) -> Vec<KeyDigest> {
        self.digests.lock().unwrap().clone()
    }
    fn degraded(&self) -> Vec<bool> {
        self.degraded.lock().unwrap().iter().map(|d| d.0).collect()
    }
    /// Waits (on the paused clock) for the `n`th `set_degraded` call; returns when it came.
    async fn nth_degraded(&self, n: usize) -> Instant {
        loop {
            if let Some(d) = self.degraded.lock().unwrap().get(n - 1) {
                return d.1;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
}

/// A channel in this process whose subscriptions the test controls.
#[derive(Default)]
struct Wire {
    /// Sends events to the current subscription.
    current: Mutex<Option<mpsc::UnboundedSender<Event>>>,
    /// Probes go unanswered and no events flow: the connection hangs.
    silent: AtomicBool,
    /// Subscribe attempts still to refuse.
    refuse: AtomicUsize,
    subscribes: AtomicUsize,
    replay: Mutex<Option<Replay>>,
    replay_asked: Mutex<Vec<Option<u64>>>,
    /// When set, what a replay from `None` answers: the log's current position.
    position_now: Mutex<Option<u64>>,
}

struct WireSubscription {
    rx: mpsc::UnboundedReceiver<Event>,
    wire: Arc<Wire>,
}

#[async_trait]
impl Subscription for WireSubscription {
    async fn next(&mut self) -> Result<Event, ChannelError> {
        match self.rx.recv().await {
            Some(event) => Ok(event),
            None => Err(ChannelError::new("closed")),
        }
    }
    async fn probe(&mut self) -> Result<(), ChannelError> {
        if self.wire.silent.load(Ordering::SeqCst) {
            std::future::pending::<()>().await;
        }
        Ok(())
    }
}

struct WireChannel(Arc<Wire>);

#[async_trait]
impl InvalidationChannel for WireChannel {
    async fn publish(&self, digests: &[KeyDigest]) -> Result<(), ChannelError> {
        self.0.send(Event::Changed {
            digests: digests.to_vec(),
            position: None,
        });
        Ok(())
    }
    async fn subscribe(&self) -> Result<Box<dyn Subscription>, ChannelError> {
        self.0.subscribes.fetch_add(1, Ordering::SeqCst);
        if self
            .0
            .refuse
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(ChannelError::new("refused"));
        }
        let (tx, rx) = mpsc::unbounded_channel();
        *self.0.current.lock().unwrap() = Some(tx);
        Ok(Box::new(WireSubscription {
            rx,
            wire: self.0.clone(),
        }))
    }
    async fn replay(&self, after: Option<u64>) -> Result<Replay, ChannelError> {
        self.0.replay_asked.lock().unwrap().push(after);
        if let (None, Some(position)) = (after, *self.0.position_now.lock().unwrap()) {
            return Ok(Replay::Changes {
                digests: vec![],
                position,
            });
        }
        Ok(self
            .0
            .replay
            .lock()
            .unwrap()
            .clone()
            .unwrap_or(Replay::Unknown))
    }
}

impl Wire {
    fn send(&self, event: Event) {
        if let Some(tx) = &*self.current.lock().unwrap() {
            let _ = tx.send(event);
        }
    }
    /// Closes the current subscription's connection.
    fn close(&self) {
        self.current.lock().unwrap().take();
    }
}

fn digest(n: u8) -> KeyDigest {
    KeyDigest::from_bytes([n; 32])
}

fn start(replay: Option<Replay>) -> (Arc<Wire>, Arc<Recorder>, Listener) {
    let wire = Arc::new(Wire::default());
    *wire.replay.lock().unwrap() = replay;
    let sink = Arc::new(Recorder::default());
    let listener = Listener::spawn(
        Arc::new(WireChannel(wire.clone())),
        sink.clone(),
        ListenerConfig::default(),
    );
    (wire, sink, listener)
}

async fn settle() {
    tokio::time::sleep(Duration::from_millis(1)).await;
}

#[tokio::test(start_paused = true)]
async fn published_digests_reach_the_sink_and_all_flushes() {
    let (wire, sink, listener) = start(None);
    listener.wait_for(ListenerStatus::Live).await;
    assert_eq!(
        sink.flushes.load(Ordering::SeqCst),
        1,
        "no log: the first connect flushes"
    );
    wire.send(Event::Changed {
        digests: vec![digest(1), digest(2)],
        position: None,
    });
    wire.send(Event::All);
    settle().await;
    assert_eq!(sink.digests(), [digest(1), digest(2)]);
    assert_eq!(sink.flushes.load(Ordering::SeqCst), 2);
    assert_eq!(listener.stats().invalidated, 2);
}

#[tokio::test(start_paused = true)]
async fn a_quiet_but_healthy_subscription_stays_live() {
    let (wire, sink, listener) = start(None);
    listener.wait_for(ListenerStatus::Live).await;
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(
        listener.status(),
        ListenerStatus::Live,
        "answered probes keep it alive"
    );
    assert_eq!(wire.subscribes.load(Ordering::SeqCst), 1);
    assert_eq!(sink.degraded(), [false]);
}

#[tokio::test(start_paused = true)]
async fn a_silent_subscription_is_found_dead_within_a_second_and_replaced() {
    let (wire, sink, listener) = start(None);
    listener.wait_for(ListenerStatus::Live).await;
    tokio::time::sleep(Duration::from_millis(3_210)).await;
    wire.silent.store(true, Ordering::SeqCst);
    let silent_since = Instant::now();
    let noticed = sink.nth_degraded(2).await - silent_since;
    // Dead 750 ms after the last answered probe; probes go every 250 ms.
    assert!(
        noticed <= Duration::from_millis(750),
        "noticed after {noticed:?}"
    );
    assert!(
        noticed >= Duration::from_millis(500),
        "too early: {noticed:?}"
    );
    assert_eq!(
        sink.degraded()[..2],
        [false, true],
        "the sink hears it is degraded"
    );

    // Still silent: the next subscription dies the same way.
    let again = sink.nth_degraded(4).await;
    assert_eq!(sink.degraded()[..4], [false, true, false, true]);
    assert!(again - silent_since <= Duration::from_millis(1500));
    wire.silent.store(false, Ordering::SeqCst);
    sink.nth_degraded(5).await;
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(sink.degraded(), [false, true, false, true, false]);
    assert_eq!(listener.status(), ListenerStatus::Live);
    assert_eq!(
        sink.flushes.load(Ordering::SeqCst),
        3,
        "nothing tells what was missed: the cache is flushed after each reconnect"
    );
    assert_eq!(listener.stats().deaths, 2);
}

#[tokio::test(start_paused = true)]
async fn a_closed_subscription_is_noticed_at_once_and_missed_changes_are_replayed() {
    let (wire, sink, listener) = start(Some(Replay::Changes {
        digests: vec![],
        position: 7,
    }));
    listener.wait_for(ListenerStatus::Live).await;
    assert_eq!(
        sink.flushes.load(Ordering::SeqCst),
        1,
        "the first subscription starts from a clean cache"
    );
    wire.send(Event::Changed {
        digests: vec![digest(1)],
        position: Some(9),
    });
    settle().await;
    *wire.replay.lock().unwrap() = Some(Replay::Changes {
        digests: vec![digest(5), digest(6)],
        position: 12,
    });
    let closed_at = Instant::now();
    wire.close();
    let noticed = sink.nth_degraded(2).await - closed_at;
    assert_eq!(noticed, Duration::ZERO, "no heartbeat needed");
    sink.nth_degraded(3).await;
    assert_eq!(listener.status(), ListenerStatus::Live);
    assert_eq!(
        *wire.replay_asked.lock().unwrap(),
        [None, Some(7)],
        "the replay starts after the newest position read from the log, not one a \
         notification claimed"
    );
    assert_eq!(sink.digests(), [digest(1), digest(5), digest(6)]);
    assert_eq!(
        sink.flushes.load(Ordering::SeqCst),
        1,
        "a replay, not a flush"
    );
    assert_eq!(listener.stats().replayed, 2);
}

#[tokio::test(start_paused = true)]
async fn refused_subscriptions_are_retried_with_backoff_while_degraded() {
    let wire = Arc::new(Wire::default());
    wire.refuse.store(5, Ordering::SeqCst);
    let sink = Arc::new(Recorder::default());
    let listener = Listener::spawn(
        Arc::new(WireChannel(wire.clone())),
        sink.clone(),
        ListenerConfig::default()
            .reconnect_delay(Duration::from_millis(10), Duration::from_millis(40)),
    );
    let started = Instant::now();
    listener.wait_for(ListenerStatus::Live).await;
    assert_eq!(wire.subscribes.load(Ordering::SeqCst), 6);
    // 10 + 20 + 40 + 40 + 40 ms of pauses between the six attempts.
    assert_eq!(started.elapsed().as_millis(), 150);
    assert_eq!(
        sink.degraded(),
        [true, false],
        "degraded once, until the first success"
    );
}

/// Waits (on the paused clock) until `done` holds.
async fn until(done: impl Fn() -> bool) {
    while !done() {
        settle().await;
    }
}

#[tokio::test(start_paused = true)]
async fn a_notified_position_ahead_of_the_log_never_moves_the_replay_position() {
    let (wire, sink, listener) = start(Some(Replay::Changes {
        digests: vec![],
        position: 7,
    }));
    listener.wait_for(ListenerStatus::Live).await;
    // Anyone who can send on the channel claims a position far ahead of the log.
    wire.send(Event::Changed {
        digests: vec![],
        position: Some(9_000_000_000_000_000_000),
    });
    // It only makes the listener read the log, which still stands at 7.
    until(|| listener.stats().log_reads == 1).await;
    assert_eq!(*wire.replay_asked.lock().unwrap(), [None, Some(7)]);
    *wire.replay.lock().unwrap() = Some(Replay::Changes {
        digests: vec![digest(3)],
        position: 8,
    });
    wire.close();
    sink.nth_degraded(3).await;
    assert_eq!(
        *wire.replay_asked.lock().unwrap(),
        [None, Some(7), Some(7)],
        "the replay after the reconnect still starts at the log's position"
    );
    assert_eq!(
        sink.digests(),
        [digest(3)],
        "the change made while away is replayed"
    );
    assert_eq!(sink.flushes.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn notifications_make_the_listener_read_the_log_at_most_once_per_interval() {
    let (wire, sink, listener) = start(Some(Replay::Changes {
        digests: vec![],
        position: 7,
    }));
    listener.wait_for(ListenerStatus::Live).await;
    let live_at = Instant::now();
    *wire.replay.lock().unwrap() = Some(Replay::Changes {
        digests: vec![digest(1), digest(2)],
        position: 9,
    });
    for position in [8, 9] {
        wire.send(Event::Changed {
            digests: vec![digest(position as u8)],
            position: Some(position),
        });
    }
    until(|| listener.stats().log_reads == 1).await;
    assert!(
        Instant::now() - live_at >= ListenerConfig::default().log_read_interval,
        "one read for both notifications, once an interval has passed"
    );
    assert_eq!(*wire.replay_asked.lock().unwrap(), [None, Some(7)]);
    assert_eq!(
        sink.digests(),
        [digest(8), digest(9), digest(1), digest(2)],
        "what the log names is invalidated too"
    );
    // Caught up with the log: a reconnect replays after 9.
    wire.close();
    sink.nth_degraded(3).await;
    assert_eq!(*wire.replay_asked.lock().unwrap(), [None, Some(7), Some(9)]);
    assert_eq!(listener.stats().log_reads, 1);
    assert_eq!(sink.flushes.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn malformed_notifications_are_counted_and_change_nothing() {
    let (wire, sink, listener) = start(Some(Replay::Changes {
        digests: vec![],
        position: 7,
    }));
    listener.wait_for(ListenerStatus::Live).await;
    for _ in 0..3 {
        wire.send(Event::Malformed);
    }
    until(|| listener.stats().malformed == 3).await;
    tokio::time::sleep(ListenerConfig::default().log_read_interval * 2).await;
    let stats = listener.stats();
    assert_eq!(
        (stats.flushes, stats.log_reads, stats.invalidated),
        (1, 0, 0)
    );
    assert!(sink.digests().is_empty());
    assert_eq!(listener.status(), ListenerStatus::Live);
}

#[tokio::test(start_paused = true)]
async fn a_trimmed_log_flushes_once_then_replays_from_its_current_position() {
    let (wire, sink, listener) = start(Some(Replay::Changes {
        digests: vec![],
        position: 7,
    }));
    listener.wait_for(ListenerStatus::Live).await;
    // The log was trimmed past 7 while the listener was away; it now stands at 20.
    *wire.replay.lock().unwrap() = Some(Replay::Unknown);
    *wire.position_now.lock().unwrap() = Some(20);
    wire.close();
    sink.nth_degraded(3).await;
    assert_eq!(sink.flushes.load(Ordering::SeqCst), 2, "cannot tell: flush");
    assert_eq!(*wire.replay_asked.lock().unwrap(), [None, Some(7), None]);
    *wire.replay.lock().unwrap() = Some(Replay::Changes {
        digests: vec![digest(4)],
        position: 21,
    });
    wire.close();
    sink.nth_degraded(5).await;
    assert_eq!(
        *wire.replay_asked.lock().unwrap(),
        [None, Some(7), None, Some(20)],
        "the next replay starts where the log stood before the flush"
    );
    assert_eq!(sink.digests(), [digest(4)]);
    assert_eq!(
        sink.flushes.load(Ordering::SeqCst),
        2,
        "a replay, not a flush"
    );
}
