//! `Keygate::health`: the store (probed with one lookup, bounded by the store timeout),
//! the invalidation listener and the shared rate limiter, in one serializable value.

use std::time::Duration;

use keygate::gate::{ListenerHealth, SharedLimiterHealth, StoreHealth};
use keygate::{Keygate, MemoryStore};

use crate::common::*;

#[tokio::test]
async fn a_gate_over_a_memory_store_is_healthy_and_serializes_every_component() {
    let gate = Keygate::builder(MemoryStore::new()).build();
    let health = gate.health(None).await;
    assert_eq!(health.store, StoreHealth::Reachable);
    assert_eq!(health.listener, ListenerHealth::NotConfigured);
    assert_eq!(health.shared_limiter, SharedLimiterHealth::NotConfigured);
    assert!(health.is_healthy());
    assert_eq!(
        serde_json::to_value(health).unwrap(),
        serde_json::json!({
            "healthy": true,
            "store": "reachable",
            "listener": "not_configured",
            "shared_limiter": "not_configured",
        })
    );
}

#[tokio::test]
async fn a_failing_store_is_reported_unhealthy_until_it_answers_again() {
    let h = Harness::new();
    h.store.set_fault(Fault::Error);
    let health = h.gate.health(None).await;
    assert_eq!(health.store, StoreHealth::Failing);
    assert!(!health.is_healthy());
    assert_eq!(serde_json::to_value(health).unwrap()["healthy"], false);
    assert_eq!(h.store.lookups(), 1, "one probe, straight to the store");

    h.store.set_fault(Fault::None);
    assert!(h.gate.health(None).await.is_healthy());
}

#[tokio::test]
async fn a_panicking_store_is_reported_failing_without_panicking_the_caller() {
    let h = Harness::new();
    h.store.set_fault(Fault::Panic);
    let health = h.gate.health(None).await;
    assert_eq!(health.store, StoreHealth::Failing);
    assert!(!health.is_healthy());
}

#[tokio::test(start_paused = true)]
async fn a_hanging_store_is_reported_timed_out_after_the_store_timeout() {
    let timeout = Duration::from_millis(500);
    let h = Harness::with(|b| b.store_timeout(timeout));
    h.store.set_fault(Fault::Hang);
    let started = tokio::time::Instant::now();
    let health = h.gate.health(None).await;
    assert_eq!(health.store, StoreHealth::TimedOut);
    assert!(!health.is_healthy());
    assert_eq!(started.elapsed(), timeout, "bounded by the store timeout");
}

#[tokio::test]
async fn the_probe_is_not_a_cached_lookup_and_leaves_the_stats_alone() {
    let h = Harness::new();
    let before = h.gate.stats();
    for _ in 0..3 {
        assert!(h.gate.health(None).await.is_healthy());
    }
    assert_eq!(h.store.lookups(), 3, "every call probes the store");
    assert_eq!(h.gate.stats(), before);
}

#[cfg(feature = "redis")]
#[tokio::test]
async fn a_shared_limiter_whose_redis_is_unreachable_is_reported_down_once_its_breaker_opens() {
    use std::sync::Arc;

    use keygate::clock::Clock;
    use keygate::ratelimit::{BreakerState, RedisLimiter};
    use keygate::store::RateLimit;

    use crate::common::redis_support::{self, create_key, per_key, unique_prefix};

    let proxy = redis_support::Proxy::start(&redis_support::shared_url()).await;
    proxy.cut();
    let limiter = RedisLimiter::new(
        &proxy.url(),
        redis_support::config(&unique_prefix("health"))
            // The manual clock never reaches the cool-down's end: the breaker stays open.
            .breaker(1, Duration::from_secs(60)),
    )
    .unwrap();
    let store = Arc::new(MemoryStore::new());
    let (_, key) = create_key(&store, "acct_health").await;
    let (clock, _time) = Clock::manual(t0());
    let gate = Keygate::builder(store.clone())
        .clock(clock)
        .rate_limits(per_key(RateLimit::new(100, 100)))
        .shared_rate_limits(limiter.clone())
        .build();

    // No refill has been tried yet: the breaker is closed.
    let health = gate.health(None).await;
    assert_eq!(health.shared_limiter, SharedLimiterHealth::Up);
    assert!(health.is_healthy());

    // Requests make the refills that fail; the first failure opens the breaker.
    let mut svc = tower::Layer::layer(&gate.layer(), Echo);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while limiter.stats().breaker != BreakerState::Open {
        assert!(
            std::time::Instant::now() < deadline,
            "the breaker never opened"
        );
        let _ = send(&mut svc, get("/", Some(&key))).await;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    let health = gate.health(None).await;
    assert_eq!(health.store, StoreHealth::Reachable);
    assert_eq!(health.shared_limiter, SharedLimiterHealth::Down);
    assert!(!health.is_healthy());
    assert_eq!(
        serde_json::to_value(health).unwrap()["shared_limiter"],
        "down"
    );
}

#[cfg(feature = "postgres")]
#[tokio::test]
async fn a_subscribed_postgres_listener_and_its_store_are_reported_healthy() {
    use std::sync::Arc;

    use keygate::invalidation::ListenerStatus;

    use crate::common::pg::{drop_schema, schema_name, store_on};
    use crate::common::propagation::within;

    let schema = schema_name("health");
    let store = Arc::new(store_on(&schema, "health").await);
    let (gate, _manager) = Keygate::managed(store.clone()).build();
    let listener = store.listen(Arc::new(gate.clone()));
    within(&listener, ListenerStatus::Live).await;

    let health = gate.health(Some(&listener)).await;
    assert_eq!(health.store, StoreHealth::Reachable);
    assert_eq!(health.listener, ListenerHealth::Subscribed);
    assert!(health.is_healthy());
    assert_eq!(
        serde_json::to_value(health).unwrap()["listener"],
        "subscribed"
    );

    drop(listener);
    drop_schema(&schema).await;
}
