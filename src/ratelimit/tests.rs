//! Unit tests of the in-process limiter and its headers.

use super::*;

fn limits(quota: RateLimit) -> (RateLimits, crate::ManualClock) {
    let (clock, manual) = Clock::manual(UNIX_EPOCH + Duration::from_secs(1_000));
    let config = RateLimitConfig {
        default_quota: Some(quota),
        ..RateLimitConfig::default()
    };
    (RateLimits::new(config, clock), manual)
}

#[test]
fn burst_then_refusal_then_replenish() {
    let (limits, manual) = limits(RateLimit::new(2, 3));
    let tier = limits.tier_for(limits.config().default_quota).unwrap();
    let key: Arc<str> = "ak_1".into();
    let seen: Vec<u32> = (0..3)
        .map(|_| limits.check(&tier, &key, manual.now()).unwrap().remaining)
        .collect();
    assert_eq!(seen, [2, 1, 0]);
    let (wait, status) = limits.check(&tier, &key, manual.now()).unwrap_err();
    assert_eq!(wait, Duration::from_millis(500));
    assert_eq!(status.remaining, 0);
    manual.advance(Duration::from_millis(500));
    assert_eq!(
        limits.check(&tier, &key, manual.now()).unwrap().remaining,
        0
    );
}

#[test]
fn number_headers_are_exact_for_small_and_large_values() {
    for n in [0, 1, 999, 4095, 4096, 1_700_000_001, u64::MAX] {
        assert_eq!(number(n), n.to_string().as_str());
        assert_eq!(number(n), n.to_string().as_str(), "cached value");
    }
}

#[test]
fn idle_state_is_dropped() {
    let (limits, manual) = limits(RateLimit::new(10, 10));
    let tier = limits.tier_for(limits.config().default_quota).unwrap();
    for i in 0..1000 {
        let key: Arc<str> = format!("ak_{i}").into();
        limits.check(&tier, &key, manual.now()).unwrap();
    }
    assert_eq!(limits.tracked(), 1000);
    manual.advance(Duration::from_secs(2));
    limits.maintain();
    assert_eq!(limits.tracked(), 0);
}
