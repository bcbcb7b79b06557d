//! Rate limits shared through Redis (feature `redis`), against a real Redis: one quota
//! for several instances within the bounds `RedisLimiter` documents, per-account sharing
//! across instances, and the headers and 429 on the Redis path. Each test has its own
//! key prefix. Outages, the circuit breaker and recovery are in `outage.rs`; the
//! accuracy figures are measured by `benches/cluster.rs`.
//!
//! Keygate's clock is manual and frozen unless a test moves it: it drives the local
//! fallback and the breaker's cool-down. Redis's clock is real; the quotas here refill
//! at 1 token per second, which the bounds allow for.

use crate::common::redis_support::*;
use crate::common::*;

use std::sync::Arc;
use std::time::{Duration, Instant};

use keygate::clock::Clock;
use keygate::ratelimit::{RateLimitKey, RedisLimiter, RedisLimiterConfig};
use keygate::store::RateLimit;
use keygate::{Keygate, MemoryStore};

/// Tokens the Redis bucket of a 1-per-second quota can have regained since `started`:
/// Redis's clock is real, so the documented bounds allow for it.
fn refilled_since(started: Instant) -> u32 {
    started.elapsed().as_secs() as u32 + 1
}

/// Whether the instances together have leased at least `burst` tokens from Redis: the
/// bucket has been emptied, so a refusal now means the quota is spent, not that a refill
/// is still under way.
fn drained(limiters: &[RedisLimiter], burst: u32) -> bool {
    let leased: u64 = limiters.iter().map(|l| l.stats().tokens_leased).sum();
    leased >= u64::from(burst)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn four_instances_admit_one_shared_quota_within_the_lease_bound() {
    let url = shared_url();
    let prefix = unique_prefix("four-instances");
    let quota = RateLimit::new(1, 2000);
    let (clock, _time) = Clock::manual(t0());
    let store = Arc::new(MemoryStore::new());
    let (_, key) = create_key(&store, "acct_1").await;

    let limiters: Vec<RedisLimiter> = (0..4)
        .map(|_| RedisLimiter::new(&url, config(&prefix).instances(4)).unwrap())
        .collect();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for limiter in &limiters {
        let mut svc = instance(&store, &clock, per_key(quota), limiter);
        let (key, all) = (key.clone(), limiters.clone());
        // Each instance hammers the key until Redis's bucket is empty and 50 requests
        // in a row are refused; a refusal pauses it briefly, so that a refill under way
        // can land. The wait for that is bounded generously.
        tasks.push(tokio::spawn(async move {
            let (mut admitted, mut sent, mut refused_in_a_row) = (0u32, 0u32, 0);
            let deadline = Instant::now() + Duration::from_secs(60);
            while refused_in_a_row < 50 || !drained(&all, quota.burst) {
                assert!(Instant::now() < deadline, "still admitting: {admitted}");
                let a = send(&mut svc, get("/", Some(&key))).await;
                sent += 1;
                match a.status.as_u16() {
                    200 => {
                        admitted += 1;
                        refused_in_a_row = 0;
                        tokio::task::yield_now().await;
                    }
                    429 => {
                        // 1 s, or longer while this instance repays an advance.
                        assert!(header(&a, "retry-after").unwrap() >= 1);
                        refused_in_a_row += 1;
                        tokio::time::sleep(Duration::from_millis(2)).await;
                    }
                    other => panic!("unexpected {other}: {}", a.body),
                }
            }
            (admitted, sent)
        }));
    }
    let (mut per_instance, mut sent) = (Vec::new(), 0);
    for task in tasks {
        let (admitted, requests) = task.await.unwrap();
        per_instance.push(admitted);
        sent += requests;
    }
    let total: u32 = per_instance.iter().sum();
    let refills: u64 = limiters.iter().map(|l| l.stats().refills).sum();
    let lease = limiters[0].config().lease_for(quota);
    println!(
        "quota 2000: admitted {total} over 4 instances {per_instance:?}, lease {lease}, \
         {refills} Redis calls for {sent} requests"
    );
    // The bounds `RedisLimiter` documents for n instances and a lease of L: at most
    // n × L more than the quota (one advance each), at most n × 1.5 L fewer (leases
    // left unspent). Accuracy figures are measured by `benches/cluster.rs`.
    let (n, quota_now) = (4, 2000 + refilled_since(started));
    assert!(
        total <= quota_now + n * lease,
        "admitted {total}: more than the quota {quota_now} and one lease of {lease} per instance"
    );
    assert!(
        total + n * lease * 3 / 2 >= 2000,
        "admitted {total}: more than 1.5 leases of {lease} per instance short of 2000"
    );
    assert!(
        per_instance.iter().all(|&n| n > 0),
        "every instance took part: {per_instance:?}"
    );
    assert!(
        refills * 5 < u64::from(total),
        "{refills} Redis calls for {total} admissions: leases are not being used"
    );
    cleanup(&url, &prefix).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_of_one_account_on_two_instances_share_the_account_bucket() {
    let url = shared_url();
    let prefix = unique_prefix("per-account");
    let (clock, _time) = Clock::manual(t0());
    let store = Arc::new(MemoryStore::new());
    let (_, first) = create_key(&store, "acct_shared").await;
    let (_, second) = create_key(&store, "acct_shared").await;
    let (_, other) = create_key(&store, "acct_other").await;
    let limits = per_key(RateLimit::new(1, 200)).key(RateLimitKey::PerAccount);
    let a = RedisLimiter::new(&url, config(&prefix).instances(2)).unwrap();
    let b = RedisLimiter::new(&url, config(&prefix).instances(2)).unwrap();
    let mut on_a = instance(&store, &clock, limits.clone(), &a);
    let mut on_b = instance(&store, &clock, limits, &b);

    // Alternate between the instances until Redis's bucket is empty and neither admits
    // any more. A round with no admission pauses briefly, so that a refill under way can
    // land.
    let mut admitted = 0;
    let mut idle_rounds = 0;
    let started = Instant::now();
    let deadline = started + Duration::from_secs(60);
    let both = [a.clone(), b.clone()];
    while idle_rounds < 20 || !drained(&both, 200) {
        assert!(Instant::now() < deadline, "still admitting: {admitted}");
        let mut any = false;
        for (svc, key) in [(&mut on_a, &first), (&mut on_b, &second)] {
            if send(svc, get("/", Some(key))).await.status == 200 {
                admitted += 1;
                any = true;
            }
        }
        if any {
            idle_rounds = 0;
            tokio::task::yield_now().await;
        } else {
            idle_rounds += 1;
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
    // Each instance may be one lease (2 tokens) ahead when the bucket runs out, and
    // Redis refills one token a second of the run.
    let lease = a.config().lease_for(RateLimit::new(1, 200));
    let most = 200 + refilled_since(started) + 2 * lease;
    assert!(
        (200..=most).contains(&admitted),
        "two keys of one account on two instances got {admitted} of a shared 200"
    );
    let exists: i64 = command(
        &url,
        redis::cmd("EXISTS").arg(format!("{prefix}:1-200:account:acct_shared")),
    )
    .await;
    assert_eq!(
        exists, 1,
        "the account's bucket is in Redis, under the account id"
    );

    // Another account's key on the same instance has its own full bucket.
    let fresh = send(&mut on_a, get("/", Some(&other))).await;
    assert_eq!(fresh.status, 200);
    assert_eq!(header(&fresh, "x-ratelimit-limit"), Some(200));
    cleanup(&url, &prefix).await;
}

#[tokio::test]
async fn headers_count_down_from_redis_answers_then_429_with_retry_after() {
    let url = shared_url();
    let prefix = unique_prefix("headers");
    let (clock, _time) = Clock::manual(t0());
    let store = Arc::new(MemoryStore::new());
    let (_, key) = create_key(&store, "acct_1").await;
    let limiter = RedisLimiter::new(&url, config(&prefix).lease_size(1)).unwrap();
    let mut svc = instance(&store, &clock, per_key(RateLimit::new(1, 5)), &limiter);

    // Each answer: Redis's last count plus the unused lease; wait for each refill so
    // that every figure comes from a Redis answer.
    let mut seen = Vec::new();
    for i in 0..4 {
        let a = send(&mut svc, get("/", Some(&key))).await;
        assert_eq!(a.status, 200, "{}", a.body);
        assert_eq!(header(&a, "x-ratelimit-limit"), Some(5));
        let remaining = header(&a, "x-ratelimit-remaining").unwrap();
        // Reset: the bucket is full again one second per missing token later.
        assert_eq!(header(&a, "x-ratelimit-reset"), Some(T0 + 5 - remaining));
        seen.push(remaining);
        eventually("the refill", || limiter.stats().refills == i + 1).await;
    }
    assert_eq!(seen, [4, 3, 2, 1]);

    let last = send(&mut svc, get("/", Some(&key))).await;
    assert_eq!(last.status, 200);
    assert_eq!(header(&last, "x-ratelimit-remaining"), Some(0));

    let refused = send(&mut svc, get("/", Some(&key))).await;
    assert_eq!(refused.status, 429, "{}", refused.body);
    assert_eq!(refused.code(), "rate_limited");
    assert_eq!(refused.header("retry-after"), Some("1"));
    assert_eq!(header(&refused, "x-ratelimit-limit"), Some(5));
    assert_eq!(header(&refused, "x-ratelimit-remaining"), Some(0));
    assert_eq!(header(&refused, "x-ratelimit-reset"), Some(T0 + 5));
    assert_eq!(limiter.stats().tokens_leased, 5, "Redis granted the burst");
    cleanup(&url, &prefix).await;
}

#[tokio::test]
async fn a_bucket_drained_by_another_instance_refuses_with_the_wait_redis_gives() {
    let url = shared_url();
    let prefix = unique_prefix("drained");
    let (clock, _time) = Clock::manual(t0());
    let store = Arc::new(MemoryStore::new());
    let (id, key) = create_key(&store, "acct_1").await;
    // Another instance has used the whole bucket just now (Redis's own clock).
    let (secs, micros): (String, String) = command(&url, &redis::cmd("TIME")).await;
    let now_us = secs.parse::<u64>().unwrap() * 1_000_000 + micros.parse::<u64>().unwrap();
    let bucket = format!("{prefix}:1-3:key:{id}");
    let _: () = command(
        &url,
        redis::cmd("HSET")
            .arg(&bucket)
            .arg("t")
            .arg(0)
            .arg("ts")
            .arg(now_us),
    )
    .await;
    let limiter = RedisLimiter::new(&url, config(&prefix).lease_size(1)).unwrap();
    let mut svc = instance(&store, &clock, per_key(RateLimit::new(1, 3)), &limiter);

    // Before any answer, one request goes on an advance of at most one lease.
    let first = send(&mut svc, get("/", Some(&key))).await;
    assert_eq!(first.status, 200);
    eventually("Redis's answer", || limiter.stats().refills == 1).await;
    assert_eq!(
        limiter.stats().tokens_leased,
        0,
        "Redis had nothing to lease"
    );

    // Redis said: one token back in under a second; the advance is owed on top.
    let refused = send(&mut svc, get("/", Some(&key))).await;
    assert_eq!(refused.status, 429, "{}", refused.body);
    assert_eq!(refused.header("retry-after"), Some("2"));
    assert_eq!(header(&refused, "x-ratelimit-remaining"), Some(0));
    assert_eq!(limiter.stats().advances, 1);
    cleanup(&url, &prefix).await;
}

#[tokio::test]
async fn idle_shared_buckets_are_dropped_by_maintenance_once_full_again() {
    let url = shared_url();
    let prefix = unique_prefix("maintenance");
    let (clock, time) = Clock::manual(t0());
    let store = Arc::new(MemoryStore::new());
    let (_, key) = create_key(&store, "acct_1").await;
    let limiter = RedisLimiter::new(&url, config(&prefix)).unwrap();
    let gate = Keygate::builder(store.clone())
        .clock(clock)
        .rate_limits(per_key(RateLimit::new(1, 5)))
        .shared_rate_limits(limiter.clone())
        .build();
    let mut svc = tower::Layer::layer(&gate.layer(), Echo);
    assert_eq!(send(&mut svc, get("/", Some(&key))).await.status, 200);
    eventually("the lease", || limiter.stats().refills == 1).await;
    assert_eq!(limiter.stats().buckets, 1);

    // Five seconds refill the bucket in Redis; after one more it is idle here.
    time.advance(Duration::from_secs(5));
    gate.run_maintenance();
    assert_eq!(limiter.stats().buckets, 1, "not idle long enough");
    time.advance(Duration::from_secs(1));
    gate.run_maintenance();
    assert_eq!(limiter.stats().buckets, 0);
    assert_eq!(gate.stats().rate_limit_buckets, 0);
    assert_eq!(send(&mut svc, get("/", Some(&key))).await.status, 200);
    cleanup(&url, &prefix).await;
}

#[tokio::test]
async fn debug_output_never_shows_the_redis_url() {
    let limiter = RedisLimiter::new(
        "redis://user:hunter2@127.0.0.1:1/0",
        RedisLimiterConfig::default(),
    )
    .unwrap();
    let shown = format!("{limiter:?}");
    assert!(
        !shown.contains("hunter2") && !shown.contains("127.0.0.1"),
        "{shown}"
    );
    assert!(shown.contains("keygate:rl"));
}

#[test]
fn a_limiter_outside_a_tokio_runtime_is_an_error_not_a_panic() {
    let err =
        RedisLimiter::new("redis://127.0.0.1:6379", RedisLimiterConfig::default()).unwrap_err();
    assert!(err.to_string().contains("Tokio runtime"), "{err}");
}

#[test]
fn default_lease_keeps_four_instances_within_the_bound() {
    let config = RedisLimiterConfig::default().instances(4);
    assert_eq!(config.lease_for(RateLimit::new(1000, 2000)), 12);
    assert_eq!(config.lease_for(RateLimit::new(1, 10)), 1, "never below 1");
    assert_eq!(
        config
            .clone()
            .lease_size(50)
            .lease_for(RateLimit::new(1, 10)),
        50
    );
    assert_eq!(
        config.local_share(RateLimit::new(1000, 2000)),
        RateLimit::new(250, 500)
    );
    assert_eq!(
        config.local_share(RateLimit::new(1, 2)),
        RateLimit::new(1, 1)
    );
}
