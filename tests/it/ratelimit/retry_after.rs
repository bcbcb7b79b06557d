//! The burst, 429 with `Retry-After` rounded up, replenishment and the headers at each step.

use crate::common::*;
use crate::ratelimit::support::*;
use keygate::store::RateLimit;
use std::time::Duration;

#[tokio::test]
async fn burst_is_served_then_refused_with_429_and_retry_after_rounded_up() {
    let h = with_default(RateLimit::new(1, 2));
    let (_, key) = h.key("acct_1", &[]).await;
    let mut svc = h.service();

    let first = send(&mut svc, get("/", Some(&key))).await;
    assert_eq!(first.status, 200);
    assert_eq!(legacy(&first), (2, 1, T0 + 1));

    let second = send(&mut svc, get("/", Some(&key))).await;
    assert_eq!(second.status, 200);
    assert_eq!(legacy(&second), (2, 0, T0 + 2));

    let third = send(&mut svc, get("/", Some(&key))).await;
    assert_rate_limited(&third, "1");
    // On the 429: nothing left, and the bucket is full again 1 s (next token) + 1 s.
    assert_eq!(legacy(&third), (2, 0, T0 + 2));
}

#[tokio::test]
async fn single_request_quota_gives_retry_after_of_one_second() {
    let h = with_default(RateLimit::new(1, 1));
    let (_, key) = h.key("acct_1", &[]).await;
    let mut svc = h.service();

    let first = send(&mut svc, get("/", Some(&key))).await;
    assert_eq!(first.status, 200);
    assert_eq!(legacy(&first), (1, 0, T0 + 1));

    let refused = send(&mut svc, get("/", Some(&key))).await;
    assert_rate_limited(&refused, "1");
    assert_eq!(legacy(&refused), (1, 0, T0 + 1));
}

#[tokio::test]
async fn fractional_wait_rounds_retry_after_up_never_to_zero() {
    let h = with_default(RateLimit::new(1, 1));
    let (_, key) = h.key("acct_1", &[]).await;
    let mut svc = h.service();
    assert_eq!(send(&mut svc, get("/", Some(&key))).await.status, 200);

    // 750 ms left: truncation would say 0; the answer must be 1.
    h.time.advance(Duration::from_millis(250));
    let refused = send(&mut svc, get("/", Some(&key))).await;
    assert_rate_limited(&refused, "1");
    assert_eq!(legacy(&refused), (1, 0, T0 + 1));

    // 1 ns left: still 1, never 0.
    h.time.advance(Duration::from_nanos(749_999_999));
    let refused = send(&mut svc, get("/", Some(&key))).await;
    assert_rate_limited(&refused, "1");

    h.time.advance(Duration::from_nanos(1));
    assert_eq!(send(&mut svc, get("/", Some(&key))).await.status, 200);
}

#[tokio::test]
async fn sub_second_token_interval_still_gives_retry_after_of_one() {
    // 4/s: the next token is 250 ms away.
    let h = with_default(RateLimit::new(4, 1));
    let (_, key) = h.key("acct_1", &[]).await;
    let mut svc = h.service();
    let ok = send(&mut svc, get("/", Some(&key))).await;
    assert_eq!(legacy(&ok), (1, 0, T0 + 1));
    let refused = send(&mut svc, get("/", Some(&key))).await;
    assert_rate_limited(&refused, "1");
    assert_eq!(legacy(&refused), (1, 0, T0 + 1));
}

#[tokio::test]
async fn quota_replenishes_as_the_clock_advances() {
    let h = with_default(RateLimit::new(1, 2));
    let (_, key) = h.key("acct_1", &[]).await;
    let mut svc = h.service();
    for _ in 0..2 {
        assert_eq!(send(&mut svc, get("/", Some(&key))).await.status, 200);
    }
    assert_eq!(send(&mut svc, get("/", Some(&key))).await.status, 429);

    // One second brings back one token.
    h.time.advance(Duration::from_secs(1));
    let one = send(&mut svc, get("/", Some(&key))).await;
    assert_eq!(one.status, 200);
    assert_eq!(legacy(&one), (2, 0, T0 + 3));
    let refused = send(&mut svc, get("/", Some(&key))).await;
    assert_rate_limited(&refused, "1");
    assert_eq!(legacy(&refused), (2, 0, T0 + 3));

    // Two more seconds fill the bucket: the whole burst is available again.
    h.time.advance(Duration::from_secs(2));
    let full = send(&mut svc, get("/", Some(&key))).await;
    assert_eq!(full.status, 200);
    assert_eq!(legacy(&full), (2, 1, T0 + 4));
    assert_eq!(send(&mut svc, get("/", Some(&key))).await.status, 200);
    assert_eq!(send(&mut svc, get("/", Some(&key))).await.status, 429);
}

#[tokio::test]
async fn header_values_are_correct_at_every_step_of_a_larger_burst() {
    let h = with_default(RateLimit::new(2, 5));
    let (_, key) = h.key("acct_1", &[]).await;
    let mut svc = h.service();
    // 2/s: each used token takes 500 ms to come back.
    for used in 1..=5u64 {
        let a = send(&mut svc, get("/", Some(&key))).await;
        assert_eq!(a.status, 200);
        let to_full_ms = used * 500;
        assert_eq!(legacy(&a), (5, 5 - used, T0 + to_full_ms.div_ceil(1000)));
    }
    let refused = send(&mut svc, get("/", Some(&key))).await;
    assert_rate_limited(&refused, "1");
    // 500 ms to the next token, plus 4 × 500 ms for the rest.
    assert_eq!(legacy(&refused), (5, 0, T0 + 3));

    h.time.advance(Duration::from_millis(1500));
    // At T0+1.5 s three tokens are back; one is used.
    let a = send(&mut svc, get("/", Some(&key))).await;
    assert_eq!(a.status, 200);
    assert_eq!(legacy(&a), (5, 2, T0 + 3));
}
