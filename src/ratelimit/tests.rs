//! Unit tests of the in-process limiter and its headers.

use super::*;
use std::time::Duration;

fn limits(quota: RateLimit) -> (RateLimits, crate::clock::ManualClock) {
    let (clock, manual) = Clock::manual(UNIX_EPOCH + Duration::from_secs(1_000));
    let config = RateLimitConfig {
        default_quota: Some(quota),
        ..RateLimitConfig::default()
    };
    (RateLimits::new(config, clock), manual)
}

fn bucket(limits: &RateLimits, id: &str) -> Bucket {
    limits
        .bucket(
            limits.config().default_quota,
            Namespace::Key,
            &Arc::from(id),
        )
        .expect("a quota is configured")
}

#[test]
fn burst_then_refusal_then_replenish() {
    let (limits, manual) = limits(RateLimit::new(2, 3));
    let bucket = bucket(&limits, "ak_1");
    let seen: Vec<u32> = (0..3)
        .map(|_| {
            limits
                .take(&bucket, Namespace::Key, &Arc::from("ak_1"), manual.now())
                .unwrap()
                .unwrap()
                .remaining
        })
        .collect();
    assert_eq!(seen, [2, 1, 0]);
    let (error, status) = limits
        .take(&bucket, Namespace::Key, &Arc::from("ak_1"), manual.now())
        .unwrap_err();
    assert!(matches!(
        error,
        AuthError::RateLimited { retry_after } if retry_after == Duration::from_millis(500)
    ));
    let status = status.unwrap();
    assert_eq!(status.remaining, 0);
    // Full again 1.5 s from now (three tokens at 0.5 s each).
    assert_eq!(status.reset_at, 1_002);
    assert_eq!(status.reset_after, 2);
    manual.advance(Duration::from_millis(500));
    let status = limits
        .take(&bucket, Namespace::Key, &Arc::from("ak_1"), manual.now())
        .unwrap()
        .unwrap();
    assert_eq!(status.remaining, 0);
}

#[test]
fn a_bucket_found_again_keeps_its_state() {
    let (limits, manual) = limits(RateLimit::new(1, 2));
    let first = bucket(&limits, "ak_1");
    limits
        .take(&first, Namespace::Key, &Arc::from("ak_1"), manual.now())
        .unwrap();
    // What a cache refresh does: resolve the key again while the old entry lives...
    let again = bucket(&limits, "ak_1");
    let status = limits
        .take(&again, Namespace::Key, &Arc::from("ak_1"), manual.now())
        .unwrap()
        .unwrap();
    assert_eq!(status.remaining, 0, "the second token of the same bucket");
    // ...or after it was dropped (an invalidation), as long as the bucket is not full.
    drop((first, again));
    limits.maintain();
    let after = bucket(&limits, "ak_1");
    assert!(limits
        .take(&after, Namespace::Key, &Arc::from("ak_1"), manual.now())
        .is_err());
    // Another key has a bucket of its own.
    let other = bucket(&limits, "ak_2");
    assert!(limits
        .take(&other, Namespace::Key, &Arc::from("ak_2"), manual.now())
        .is_ok());
}

#[test]
fn peek_reports_without_taking() {
    let (limits, manual) = limits(RateLimit::new(10, 5));
    let bucket = bucket(&limits, "ak_1");
    let fresh = limits.peek(&bucket, manual.now()).unwrap();
    assert_eq!((fresh.limit, fresh.remaining), (5, 5));
    for _ in 0..10 {
        assert_eq!(limits.peek(&bucket, manual.now()).unwrap().remaining, 5);
    }
    assert_eq!(
        limits
            .take(&bucket, Namespace::Key, &Arc::from("ak_1"), manual.now())
            .unwrap()
            .unwrap()
            .remaining,
        4
    );
    assert_eq!(limits.peek(&bucket, manual.now()).unwrap().remaining, 4);
}

#[test]
fn reported_limit_per_second_reports_the_rate() {
    let (clock, manual) = Clock::manual(UNIX_EPOCH + Duration::from_secs(1_706_123_455));
    let config = RateLimitConfig::default().reported_limit(ReportedLimit::PerSecond);
    let limits = RateLimits::new(config, clock);
    let bucket = bucket(&limits, "ak_1");
    let status = limits
        .take(&bucket, Namespace::Key, &Arc::from("ak_1"), manual.now())
        .unwrap()
        .unwrap();
    assert_eq!((status.limit, status.remaining), (1000, 999));
    assert_eq!(status.quota, RateLimit::DEFAULT);
    // The burst's extra 1000 stays available after Remaining reaches 0.
    for _ in 0..999 {
        limits
            .take(&bucket, Namespace::Key, &Arc::from("ak_1"), manual.now())
            .unwrap();
    }
    let status = limits
        .take(&bucket, Namespace::Key, &Arc::from("ak_1"), manual.now())
        .unwrap()
        .unwrap();
    assert_eq!(status.remaining, 0);
    for _ in 0..999 {
        assert!(limits
            .take(&bucket, Namespace::Key, &Arc::from("ak_1"), manual.now())
            .is_ok());
    }
    let (_, refused) = limits
        .take(&bucket, Namespace::Key, &Arc::from("ak_1"), manual.now())
        .unwrap_err();
    assert_eq!(refused.map(|s| (s.limit, s.remaining)), Some((1000, 0)));
}

#[test]
fn reported_forms_differ_only_in_limit_and_remaining() {
    let quota = RateLimit::new(1000, 2000);
    let status = RateLimitStatus::new(quota, 1999, 1_706_123_456, 2);
    assert_eq!((status.limit, status.remaining), (2000, 1999));
    let per_second = status.reported_as(ReportedLimit::PerSecond);
    assert_eq!((per_second.limit, per_second.remaining), (1000, 999));
    assert_eq!(
        (per_second.reset_at, per_second.reset_after),
        (1_706_123_456, 2)
    );
    assert_eq!(per_second.reported_as(ReportedLimit::Burst).limit, 2000);
    // A burst below the rate: Remaining never exceeds what the bucket holds.
    let small = RateLimitStatus::new(RateLimit::new(100, 10), 9, 0, 0);
    let reported = small.reported_as(ReportedLimit::PerSecond);
    assert_eq!((reported.limit, reported.remaining), (100, 9));
}

#[test]
fn number_headers_are_exact_for_small_and_large_values() {
    for n in [
        0,
        1,
        9,
        10,
        99,
        100,
        999,
        1000,
        4095,
        9999,
        10_000,
        1_700_000_001,
        u64::MAX,
    ] {
        assert_eq!(number(n), n.to_string().as_str());
    }
    for n in 0..10_000u64 {
        assert_eq!(number(n).to_str().unwrap(), n.to_string(), "{n}");
    }
}

#[test]
fn idle_state_is_dropped() {
    let (limits, manual) = limits(RateLimit::new(10, 10));
    let held = bucket(&limits, "ak_held");
    limits
        .take(&held, Namespace::Key, &Arc::from("ak_held"), manual.now())
        .unwrap();
    for i in 0..1000 {
        let bucket = bucket(&limits, &format!("ak_{i}"));
        limits
            .take(&bucket, Namespace::Key, &Arc::from("ak_1"), manual.now())
            .unwrap();
    }
    let cells = |limits: &RateLimits| -> usize { limits.tiers.iter().map(|t| t.len()).sum() };
    assert_eq!((limits.tracked(), cells(&limits)), (1001, 1001));
    // Not full yet: kept, although no entry holds them.
    limits.maintain();
    assert_eq!(cells(&limits), 1001);
    manual.advance(Duration::from_secs(2));
    assert_eq!(limits.tracked(), 0, "every bucket is full again");
    limits.maintain();
    // Dropped, except the one a cache entry still holds.
    assert_eq!(cells(&limits), 1);
    drop(held);
    limits.maintain();
    assert_eq!(cells(&limits), 0);
}

#[test]
fn reported_limit_reads_from_configuration_files() {
    let config: RateLimitConfig = toml::from_str("reported_limit = \"per_second\"").unwrap();
    assert_eq!(config.reported_limit, ReportedLimit::PerSecond);
    let config: RateLimitConfig = toml::from_str("").unwrap();
    assert_eq!(config.reported_limit, ReportedLimit::Burst);
    assert!(toml::from_str::<RateLimitConfig>("reported_limit = \"window\"").is_err());
}

#[test]
fn keys_accounts_and_subjects_with_equal_ids_have_separate_buckets() {
    let (limits, manual) = limits(RateLimit::new(1, 1));
    let id: Arc<str> = Arc::from("acct_1");
    let quota = limits.config().default_quota;
    for namespace in [Namespace::Key, Namespace::Account, Namespace::External] {
        let bucket = limits.bucket(quota, namespace, &id).unwrap();
        assert!(
            limits.take(&bucket, namespace, &id, manual.now()).is_ok(),
            "{namespace:?}: a full bucket of its own"
        );
        assert!(limits.take(&bucket, namespace, &id, manual.now()).is_err());
    }
}

#[cfg(feature = "redis")]
#[test]
fn redis_keys_keep_the_namespaces_apart() {
    use super::redis::redis_key;
    let q = RateLimit::new(5, 10);
    assert_eq!(redis_key("kg", q, Namespace::Key, "a"), "kg:5-10:key:a");
    assert_eq!(
        redis_key("kg", q, Namespace::Account, "a"),
        "kg:5-10:account:a"
    );
    assert_eq!(
        redis_key("kg", q, Namespace::External, "a"),
        "kg:5-10:external:a"
    );
    // An id cannot reach into another namespace: the namespace is not at the end.
    assert_ne!(
        redis_key("kg", q, Namespace::Key, "external:a"),
        redis_key("kg", q, Namespace::External, "a")
    );
}
