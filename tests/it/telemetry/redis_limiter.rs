//! The Redis limiter's metrics: lease refills and Redis errors, under the names the
//! `telemetry` table documents. The recorder is the default of the test's thread only
//! (`metrics::set_default_local_recorder`); the limiter's refills run as tasks on the
//! test's current-thread runtime, so they record into it, and no other test does.
#![cfg(all(feature = "redis", feature = "metrics"))]

use crate::common::redis_support;
use std::sync::Arc;

use crate::common::*;
use keygate::clock::Clock;
use keygate::ratelimit::RedisLimiter;
use keygate::store::RateLimit;
use keygate::MemoryStore;
use metrics_util::debugging::{DebugValue, DebuggingRecorder};

fn counter(snapshot: &metrics_util::debugging::Snapshotter, name: &str) -> u64 {
    snapshot
        .snapshot()
        .into_vec()
        .into_iter()
        .filter(|(key, ..)| key.key().name() == name)
        .map(|(.., value)| match value {
            DebugValue::Counter(n) => n,
            _ => 0,
        })
        .sum()
}

#[tokio::test]
async fn lease_refills_and_redis_errors_are_counted() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let _local = metrics::set_default_local_recorder(&recorder);
    let store = Arc::new(MemoryStore::new());
    let (_, key) = redis_support::create_key(&store, "acct_metrics").await;
    let (clock, _time) = Clock::manual(t0());
    let quota = redis_support::per_key(RateLimit::new(1, 1_000));

    let prefix = redis_support::unique_prefix("metrics");
    let limiter =
        RedisLimiter::new(&redis_support::shared_url(), redis_support::config(&prefix)).unwrap();
    let mut svc = redis_support::instance(&store, &clock, quota.clone(), &limiter);
    assert_eq!(send(&mut svc, get("/", Some(&key))).await.status, 200);
    // A snapshot drains the counters it reports: add them up.
    let mut refills = 0;
    redis_support::eventually("a lease", || {
        refills += counter(&snapshotter, "keygate_ratelimit_lease_refills_total");
        refills >= 1
    })
    .await;
    assert!(
        refills <= limiter.stats().refills,
        "every counted refill happened"
    );

    // Nothing listens on port 1: every call fails and is counted.
    let down = RedisLimiter::new("redis://127.0.0.1:1", redis_support::config(&prefix)).unwrap();
    let mut svc = redis_support::instance(&store, &clock, quota, &down);
    let _ = send(&mut svc, get("/", Some(&key))).await;
    let mut errors = 0;
    redis_support::eventually("an error", || {
        errors += counter(&snapshotter, "keygate_ratelimit_redis_errors_total");
        errors >= 1
    })
    .await;
    assert!(
        errors <= down.stats().redis_errors,
        "every counted error happened"
    );
    redis_support::cleanup(&redis_support::shared_url(), &prefix).await;
}
