//! Rate limits shared through Redis while Redis is down: the three outage policies,
//! the circuit breaker that limits connection attempts, and recovery once Redis is
//! back. Each test has its own Redis (killed and restarted) or its own key prefix behind
//! a proxy that cuts the connection.
//!
//! Keygate's clock is manual: it drives the local fallback and the breaker's cool-down.

use crate::common::redis_support::*;
use crate::common::*;

use std::sync::Arc;
use std::time::{Duration, Instant};

use keygate::clock::{Clock, ManualClock};
use keygate::layer::KeygateService;
use keygate::ratelimit::{BreakerState, OutagePolicy, RedisLimiter, RedisLimiterConfig};
use keygate::store::RateLimit;
use keygate::MemoryStore;

/// A private Redis, one instance on it (4 configured, quota 1/s burst 400: a lease of
/// 2, a local share of 100), two requests, then Redis is killed. Returns the answers
/// after the kill: until the first failed refill was seen, then 300 more.
struct Outage {
    server: PrivateRedis,
    limiter: RedisLimiter,
    svc: KeygateService<Echo>,
    key: String,
    time: ManualClock,
    after_kill: Vec<Answer>,
}

async fn outage(policy: OutagePolicy) -> Outage {
    let mut server = PrivateRedis::start();
    let (clock, time) = Clock::manual(t0());
    let store = Arc::new(MemoryStore::new());
    let (_, key) = create_key(&store, "acct_1").await;
    let limiter = RedisLimiter::new(
        &server.url(),
        RedisLimiterConfig::default()
            .instances(4)
            .outage(policy)
            .breaker(3, Duration::from_secs(10)),
    )
    .unwrap();
    let mut svc = instance(&store, &clock, per_key(RateLimit::new(1, 400)), &limiter);
    assert_eq!(send(&mut svc, get("/", Some(&key))).await.status, 200);
    eventually("a lease", || limiter.stats().refills == 1).await;
    assert_eq!(send(&mut svc, get("/", Some(&key))).await.status, 200);
    server.stop();
    let mut after_kill = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while limiter.stats().redis_errors == 0 {
        assert!(Instant::now() < deadline, "no refill failed after the kill");
        after_kill.push(send(&mut svc, get("/", Some(&key))).await);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    for _ in 0..300 {
        after_kill.push(send(&mut svc, get("/", Some(&key))).await);
        tokio::task::yield_now().await;
    }
    Outage {
        server,
        limiter,
        svc,
        key,
        time,
        after_kill,
    }
}

fn admitted(answers: &[Answer]) -> usize {
    answers.iter().filter(|a| a.status == 200).count()
}

#[tokio::test]
async fn local_fallback_enforces_the_instance_share_while_redis_is_down_then_recovers() {
    let mut o = outage(OutagePolicy::LocalFallback).await;
    // The unused lease and one advance (at most 3 leases of 2), then the local share.
    let n = admitted(&o.after_kill);
    assert!((100..=106).contains(&n), "admitted {n} during the outage");
    let last = o.after_kill.last().unwrap();
    assert_eq!(last.status, 429, "{}", last.body);
    assert_eq!(last.header("retry-after"), Some("1"));
    assert_eq!(
        header(last, "x-ratelimit-limit"),
        Some(100),
        "the local share"
    );
    let stats = o.limiter.stats();
    assert!(stats.outage_decisions >= 200, "{stats:?}");
    // Every refused refill counts towards the breaker; it opens after three.
    let deadline = Instant::now() + Duration::from_secs(10);
    while o.limiter.stats().breaker != BreakerState::Open {
        assert!(Instant::now() < deadline, "{:?}", o.limiter.stats());
        send(&mut o.svc, get("/", Some(&o.key))).await;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    // Redis comes back (empty). After the cool-down, a probe closes the breaker and
    // the bucket is Redis's again.
    o.server.restart();
    o.time.advance(Duration::from_secs(10));
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let a = send(&mut o.svc, get("/", Some(&o.key))).await;
        if a.status == 200 && header(&a, "x-ratelimit-limit") == Some(400) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no recovery: {:?}",
            o.limiter.stats()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(o.limiter.stats().breaker, BreakerState::Closed);
}

#[tokio::test]
async fn closed_policy_refuses_with_503_while_redis_is_down() {
    let o = outage(OutagePolicy::Closed).await;
    assert!(
        admitted(&o.after_kill) <= 6,
        "only the lease and one advance"
    );
    let last = o.after_kill.last().unwrap();
    assert_eq!(last.status, 503, "{}", last.body);
    assert_eq!(last.code(), "store_unavailable");
    assert!(last.header("x-ratelimit-limit").is_none());
    let refused = o.after_kill.iter().filter(|a| a.status == 503).count();
    assert!(refused >= 294, "{refused} refusals");
}

#[tokio::test]
async fn open_policy_admits_every_request_while_redis_is_down() {
    let o = outage(OutagePolicy::Open).await;
    assert_eq!(admitted(&o.after_kill), o.after_kill.len());
    let unlimited = o
        .after_kill
        .iter()
        .filter(|a| a.header("x-ratelimit-limit").is_none())
        .count();
    assert!(unlimited >= 294, "decided by the policy, without headers");
}

#[tokio::test]
async fn breaker_limits_connection_attempts_while_redis_is_unreachable() {
    let url = shared_url();
    let prefix = unique_prefix("breaker");
    let proxy = Proxy::start(&url).await;
    let (clock, time) = Clock::manual(t0());
    let store = Arc::new(MemoryStore::new());
    let mut keys = Vec::new();
    for i in 0..20 {
        keys.push(create_key(&store, &format!("acct_{i}")).await.1);
    }
    let cool_down = Duration::from_secs(30);
    let limiter = RedisLimiter::new(
        &proxy.url(),
        config(&prefix)
            .breaker(3, cool_down)
            .timeout(Duration::from_millis(200)),
    )
    .unwrap();
    let mut svc = instance(&store, &clock, per_key(RateLimit::new(1, 1000)), &limiter);
    for key in &keys {
        assert_eq!(send(&mut svc, get("/", Some(key))).await.status, 200);
    }
    eventually("20 leases", || limiter.stats().refills >= 20).await;
    assert_eq!(proxy.connections(), 1, "one multiplexed connection");

    proxy.cut();
    for _ in 0..100 {
        for key in &keys {
            // The local share (the whole quota with one instance) admits them all.
            assert_eq!(send(&mut svc, get("/", Some(key))).await.status, 200);
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let stats = limiter.stats();
    let attempts = proxy.connections() - 1;
    println!("2000 requests over 20 buckets during the outage: {attempts} connection attempts, {stats:?}");
    assert_eq!(stats.breaker, BreakerState::Open);
    assert!(attempts <= 4, "{attempts} connection attempts");
    assert!(stats.refills_skipped >= 1000, "{stats:?}");

    // After the cool-down: one probe (which may retry once), which fails: open again.
    time.advance(cool_down);
    send(&mut svc, get("/", Some(&keys[0]))).await;
    eventually("the probe", || limiter.stats().breaker_trips == 2).await;
    let probe_attempts = proxy.connections() - 1 - attempts;
    assert!((1..=2).contains(&probe_attempts), "{probe_attempts}");

    // Redis reachable again: the next probe closes the breaker and leases resume.
    proxy.restore();
    time.advance(cool_down);
    let refills = limiter.stats().refills;
    let deadline = Instant::now() + Duration::from_secs(10);
    while limiter.stats().breaker != BreakerState::Closed || limiter.stats().refills == refills {
        assert!(Instant::now() < deadline, "{:?}", limiter.stats());
        send(&mut svc, get("/", Some(&keys[0]))).await;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    cleanup(&url, &prefix).await;
}
