//! [`Keygate::health`]: the state of the store, the invalidation listener and the shared
//! rate limiter, in one [`Health`] value.

use serde::ser::{Serialize, SerializeStruct, Serializer};

use super::Keygate;
use crate::cache::StoreCall;
use crate::invalidation::{Listener, ListenerStatus};
use crate::key::digest::KeyDigest;

/// The digest the store probe looks up: all zero bytes, which no key's SHA-256 digest
/// is expected to be. Whether the store finds it or not does not matter: any answer
/// means the store is reachable.
const PROBE_DIGEST: KeyDigest = KeyDigest::from_bytes([0; 32]);

/// Whether the key store answered the probe of [`Keygate::health`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum StoreHealth {
    /// The store answered a lookup.
    Reachable,
    /// The lookup failed (an error or a panic in the store).
    Failing,
    /// The lookup did not answer within the gate's
    /// [`store_timeout`](crate::KeygateBuilder::store_timeout).
    TimedOut,
}

/// Where the invalidation [`Listener`] given to [`Keygate::health`] stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ListenerHealth {
    /// No listener was given: this instance hears no other instance's changes (a
    /// single instance needs none).
    NotConfigured,
    /// Opening the first subscription ([`ListenerStatus::Connecting`]).
    Connecting,
    /// Subscribed and caught up ([`ListenerStatus::Live`]).
    Subscribed,
    /// The subscription is down or catching up ([`ListenerStatus::Degraded`]): the
    /// cache trusts found keys for its degraded lifetime only.
    Reconnecting,
}

/// The state of the shared (Redis) rate limiter, from its circuit breaker
/// ([`crate::ratelimit::BreakerState`]).
///
/// The breaker moves on refills only, so it reflects the requests served so far: a
/// Redis that went away while no request needed a refill still shows [`Up`](Self::Up).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum SharedLimiterHealth {
    /// No shared limiter is configured: rate limits are kept in this process.
    NotConfigured,
    /// The breaker is closed: Redis answers.
    Up,
    /// The breaker is half-open: Redis failed, and one probe refill is under way.
    Probing,
    /// The breaker is open: Redis failed repeatedly, and the
    /// [`OutagePolicy`](crate::ratelimit::OutagePolicy) decides requests.
    Down,
}

/// The state of a gate's dependencies, from [`Keygate::health`].
///
/// It serializes (with serde) as one JSON object, for a health route:
///
/// ```json
/// {"healthy":true,"store":"reachable","listener":"subscribed","shared_limiter":"up"}
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Health {
    /// Whether the key store answered.
    pub store: StoreHealth,
    /// The invalidation listener, when one was given.
    pub listener: ListenerHealth,
    /// The shared rate limiter, when one is configured.
    pub shared_limiter: SharedLimiterHealth,
}

impl Health {
    /// Whether every configured component works: the store is reachable, the listener
    /// (if given) is subscribed, and the shared limiter's breaker (if configured) is
    /// closed. A component that is not configured does not count against it.
    ///
    /// A listener that is reconnecting or a shared limiter that is down leave requests
    /// served (with a shorter cache lifetime, under the outage policy), but not as
    /// configured, so they count as unhealthy. Note that they are shared by every
    /// instance: a load balancer that drops instances on this answer drops all of them
    /// during a Redis outage.
    pub fn is_healthy(&self) -> bool {
        self.store == StoreHealth::Reachable
            && matches!(
                self.listener,
                ListenerHealth::NotConfigured | ListenerHealth::Subscribed
            )
            && matches!(
                self.shared_limiter,
                SharedLimiterHealth::NotConfigured | SharedLimiterHealth::Up
            )
    }
}

impl Serialize for Health {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("Health", 4)?;
        s.serialize_field("healthy", &self.is_healthy())?;
        s.serialize_field("store", &self.store)?;
        s.serialize_field("listener", &self.listener)?;
        s.serialize_field("shared_limiter", &self.shared_limiter)?;
        s.end()
    }
}

impl Keygate {
    /// The state of the store, of `listener` and of the shared rate limiter, for a
    /// health route. Never panics, and takes at most the gate's
    /// [`store_timeout`](crate::KeygateBuilder::store_timeout).
    ///
    /// - The store is probed with one lookup of a digest no key has, straight to the
    ///   store (not through the cache, and not counted in [`Keygate::stats`]); a found
    ///   key or "no such key" both mean reachable. Each call makes one store call: rate
    ///   limit the route if that matters.
    /// - The listener is not held by the gate (it holds the gate, as its sink), so it is
    ///   passed here: the one from `PgStore::listen` or [`Listener::spawn`], or `None`
    ///   for an instance without one.
    /// - The shared limiter is the one given to
    ///   [`shared_rate_limits`](crate::KeygateBuilder::shared_rate_limits) (feature
    ///   `redis`), read from its circuit breaker without calling Redis.
    ///
    /// ```
    /// use keygate::gate::{ListenerHealth, StoreHealth};
    /// use keygate::{Keygate, MemoryStore};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let gate = Keygate::builder(MemoryStore::new()).build();
    /// let health = gate.health(None).await;
    /// assert!(health.is_healthy());
    /// assert_eq!(health.store, StoreHealth::Reachable);
    /// assert_eq!(health.listener, ListenerHealth::NotConfigured);
    /// let json = serde_json::to_value(health).unwrap();
    /// assert_eq!(json["healthy"], true);
    /// assert_eq!(json["store"], "reachable");
    /// # }
    /// ```
    pub async fn health(&self, listener: Option<&Listener>) -> Health {
        Health {
            store: self.probe_store().await,
            listener: match listener.map(Listener::status) {
                None => ListenerHealth::NotConfigured,
                Some(ListenerStatus::Connecting) => ListenerHealth::Connecting,
                Some(ListenerStatus::Live) => ListenerHealth::Subscribed,
                Some(ListenerStatus::Degraded) => ListenerHealth::Reconnecting,
            },
            shared_limiter: self.shared_limiter_health(),
        }
    }

    async fn probe_store(&self) -> StoreHealth {
        match self.inner.cache.call_store(&PROBE_DIGEST).await {
            StoreCall::Answered(_) => StoreHealth::Reachable,
            StoreCall::Failed(error) => {
                tracing::warn!(target: "keygate", %error, "health: key store lookup failed");
                StoreHealth::Failing
            }
            StoreCall::Panicked => {
                tracing::warn!(target: "keygate", "health: key store lookup panicked");
                StoreHealth::Failing
            }
            StoreCall::TimedOut => {
                tracing::warn!(target: "keygate", "health: key store lookup timed out (the store timeout)");
                StoreHealth::TimedOut
            }
        }
    }

    #[cfg(feature = "redis")]
    fn shared_limiter_health(&self) -> SharedLimiterHealth {
        use crate::ratelimit::BreakerState;
        match self.inner.limits.shared().map(|l| l.stats().breaker) {
            None => SharedLimiterHealth::NotConfigured,
            Some(BreakerState::Closed) => SharedLimiterHealth::Up,
            Some(BreakerState::HalfOpen) => SharedLimiterHealth::Probing,
            Some(BreakerState::Open) => SharedLimiterHealth::Down,
        }
    }

    #[cfg(not(feature = "redis"))]
    fn shared_limiter_health(&self) -> SharedLimiterHealth {
        SharedLimiterHealth::NotConfigured
    }
}
