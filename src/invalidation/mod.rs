//! Keeping the caches of several instances in step: every change that affects
//! verification is published, and every instance drops the cache entries it names.
//!
//! Three pieces, each a small object-safe trait so that a custom store can bring its
//! own transport:
//!
//! - an [`InvalidationSink`] receives invalidations. [`crate::Keygate`] is one.
//! - an [`InvalidationChannel`] publishes the digests that changed and opens
//!   [`Subscription`]s. keygate ships `PgChannel` (Postgres `LISTEN/NOTIFY`, feature
//!   `postgres`, for `PgStore`) and `RedisChannel` (Redis pub/sub, feature `redis`,
//!   for any store).
//! - a [`Listener`] connects the two and keeps the subscription honest: a quiet
//!   subscription is probed through its own connection every
//!   [`ListenerConfig::heartbeat_interval`] (250 ms), and one that has shown no sign of
//!   life (an event or an answered probe) for [`ListenerConfig::dead_after`] (750 ms) is
//!   dropped and opened again. A subscription whose connection closes is noticed at once.
//!
//! # Running several instances
//!
//! Instances behind a load balancer share one store, and each keeps its own cache. Two
//! things make that safe: a store every instance writes to, and a channel on which every
//! change that affects verification reaches every other instance's cache. With
//! PostgreSQL, `PgStore` (feature `postgres`) is both: its writes append the changed
//! digests to a `changes` table and send them with `pg_notify` in the same transaction,
//! and `PgStore::listen` runs a [`Listener`] on a dedicated connection (not through
//! PgBouncer in transaction mode).
//!
//! ```no_run
//! # #[cfg(feature = "postgres")]
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use keygate::store::PgStore;
//! use keygate::Keygate;
//!
//! let store = PgStore::builder("postgres://app@db.internal/app")?.schema("keygate").build()?;
//! store.migrate().await?; // idempotent; concurrent instances take turns on a lock
//! let store = Arc::new(store);
//! let (gate, manager) = Keygate::managed(store.clone()).build();
//! let _listener = store.listen(Arc::new(gate.clone())); // hear other instances' changes
//! # let _ = manager;
//! # Ok(()) }
//! ```
//!
//! For any other store, wrap it in a [`PublishingStore`] with a `RedisChannel` (feature
//! `redis`) and run a [`Listener`] on the same channel; a custom transport implements
//! [`InvalidationChannel`]. Rate limits are shared separately, through a
//! [`RedisLimiter`](crate::ratelimit) (feature `redis`).
//!
//! The demo server (`examples/server/`) forms such a cluster when given
//! `--database-url` and `--redis-url` (or `DATABASE_URL` and `REDIS_URL`): several
//! servers on different ports against one database and one Redis are one deployment,
//! each printing its own `admin key:` line. Measured across four processes, a key created
//! or revoked through one instance was known to, or refused by, every other within p50
//! 9.4 ms (at most 13.9 ms of 20); the shared quota held within +2.4% (measured 0.0% to
//! +0.6% with four instances).
//!
//! # What is guaranteed
//!
//! Notifications sent while a subscriber is disconnected are lost, on Postgres and Redis
//! alike. So after every reconnect the listener asks the channel to
//! [`replay`](InvalidationChannel::replay) what it missed. A channel that keeps a log
//! (Postgres: the `changes` table, by sequence number) returns the missed digests; one
//! that cannot tell (Redis, or a log trimmed past the listener's position) answers
//! [`Replay::Unknown`], and the listener calls [`InvalidationSink::invalidate_all`].
//! Either way no change is missed for longer than the outage plus one heartbeat. The
//! first subscription has nothing to replay from, so it flushes the sink's cache too:
//! keys cached before the listener started are read again.
//!
//! The log decides what a replay reads, never a notification. A replay starts from the
//! last position the listener read from the log itself; a notification that names a
//! newer position only makes the listener read the log sooner (at most every
//! [`ListenerConfig::log_read_interval`]), and one the channel cannot read is ignored and
//! counted ([`ListenerStats::malformed`]). So a notification forged by anyone who can
//! send on the channel (on Postgres, any role) can make an instance look again, never
//! skip a change.
//!
//! From the moment a subscription is found dead until it is back and caught up, the sink
//! is told [`set_degraded(true)`](InvalidationSink::set_degraded), so that it can trust
//! its cache for a shorter time meanwhile.
//!
//! ```no_run
//! # #[cfg(feature = "redis")]
//! # async fn demo(gate: keygate::Keygate) -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use keygate::invalidation::{Listener, ListenerConfig, RedisChannel};
//!
//! let channel = RedisChannel::open("redis://127.0.0.1:6379", "keygate:changes").await?;
//! let listener = Listener::spawn(Arc::new(channel), Arc::new(gate), ListenerConfig::default());
//! # drop(listener); Ok(()) }
//! ```

mod listener;
mod publishing;
#[cfg(feature = "redis")]
mod redis;
mod sink;

use async_trait::async_trait;

use crate::key::digest::KeyDigest;

pub use listener::{Listener, ListenerConfig, ListenerStats, ListenerStatus};
pub use publishing::PublishingStore;
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use redis::RedisChannel;

/// What receives invalidations: normally a [`crate::Keygate`].
///
/// Object-safe: a listener holds an `Arc<dyn InvalidationSink>`. Calls come from the
/// listener's task and must not block.
pub trait InvalidationSink: Send + Sync + 'static {
    /// The key with this digest changed: forget anything cached about it.
    fn invalidate_digest(&self, digest: &KeyDigest);

    /// Some keys may have changed, unknown which: forget everything cached.
    fn invalidate_all(&self);

    /// The subscription is down (`true`) or back and caught up (`false`). While degraded,
    /// changes made elsewhere are not heard of, so a cache should trust its entries for a
    /// short time only. The default does nothing.
    fn set_degraded(&self, degraded: bool) {
        let _ = degraded;
    }
}

impl<S: InvalidationSink + ?Sized> InvalidationSink for std::sync::Arc<S> {
    fn invalidate_digest(&self, digest: &KeyDigest) {
        (**self).invalidate_digest(digest);
    }
    fn invalidate_all(&self) {
        (**self).invalidate_all();
    }
    fn set_degraded(&self, degraded: bool) {
        (**self).set_degraded(degraded);
    }
}

/// A channel failure: the subscription or the publish did not work.
///
/// Carries a description of the transport's failure, never key material.
#[derive(Debug, thiserror::Error)]
#[error("invalidation channel: {0}")]
pub struct ChannelError(#[source] Box<dyn std::error::Error + Send + Sync>);

impl ChannelError {
    /// Wraps a transport error.
    pub fn new(err: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self(err.into())
    }
}

/// What a [`Subscription`] delivers.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// These digests changed. `position` is the change's place in the channel's log, if
    /// it keeps one.
    Changed {
        /// The digests to forget.
        digests: Vec<KeyDigest>,
        /// The change's sequence number in the channel's log, as the notification
        /// claims it. Anyone able to send on the channel can claim any number, so the
        /// listener never replays from it: a position after the last one it read from
        /// the log only makes it read the log sooner.
        position: Option<u64>,
    },
    /// Unknown changes: forget everything.
    All,
    /// A notification the channel could not read. The listener ignores it and counts it
    /// in [`ListenerStats::malformed`]: a channel that keeps a log delivers this rather
    /// than guessing, since its replays do not depend on notifications.
    Malformed,
    /// The answer to [`Subscription::probe`]: the subscription is alive.
    Heartbeat,
}

/// What [`InvalidationChannel::replay`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Replay {
    /// Every change after the given position: these digests, up to `position`.
    Changes {
        /// The digests changed since.
        digests: Vec<KeyDigest>,
        /// The newest position now known.
        position: u64,
    },
    /// The channel cannot tell what was missed: flush everything.
    Unknown,
}

/// One live subscription of an [`InvalidationChannel`].
#[async_trait]
pub trait Subscription: Send {
    /// The next event. `Err` means the subscription is dead; the listener opens a new
    /// one. Must be cancel-safe: the listener drops a pending call to send a probe.
    async fn next(&mut self) -> Result<Event, ChannelError>;

    /// Sends a heartbeat through the subscription's own connection and waits for its
    /// answer. `Ok` is a sign of life; `Err` means the subscription is dead. An
    /// implementation may also deliver the heartbeat as [`Event::Heartbeat`].
    async fn probe(&mut self) -> Result<(), ChannelError>;
}

/// A transport for invalidations: publishes changed digests, and opens subscriptions.
#[async_trait]
pub trait InvalidationChannel: Send + Sync + 'static {
    /// Tells every subscriber that these digests changed.
    async fn publish(&self, digests: &[KeyDigest]) -> Result<(), ChannelError>;

    /// Opens a subscription. Events published after this returns are delivered.
    async fn subscribe(&self) -> Result<Box<dyn Subscription>, ChannelError>;

    /// The changes after `after`, a position this method answered before (`None` on the
    /// first subscription: then only the current position is wanted, as a starting
    /// point). Positions claimed by notifications are never passed here.
    /// The default cannot tell, and answers [`Replay::Unknown`].
    async fn replay(&self, after: Option<u64>) -> Result<Replay, ChannelError> {
        let _ = after;
        Ok(Replay::Unknown)
    }
}
