//! Which quota applies: per-key overrides, the deployment default, Tenuo's default,
//! disabled limits, per-account sharing.

use crate::common::*;
use crate::ratelimit::support::*;
use keygate::ratelimit::{RateLimitConfig, RateLimitKey};
use keygate::store::{AccountId, RateLimit};
use keygate::NewKey;
use std::time::Duration;

#[tokio::test]
async fn per_key_override_replaces_the_default_quota_for_that_key_only() {
    let h = Harness::new();
    let (_, limited) = h
        .key_with(
            "acct_1",
            NewKey::named("limited").rate_limit(RateLimit::new(1, 2)),
        )
        .await;
    let (_, normal) = h.key("acct_1", &[]).await;
    let mut svc = h.service();

    let a = send(&mut svc, get("/", Some(&limited))).await;
    assert_eq!(legacy(&a), (2, 1, T0 + 1));
    assert_eq!(send(&mut svc, get("/", Some(&limited))).await.status, 200);
    assert_rate_limited(&send(&mut svc, get("/", Some(&limited))).await, "1");

    // The other key of the same account still has the Tenuo default, untouched.
    let b = send(&mut svc, get("/", Some(&normal))).await;
    assert_eq!(b.status, 200);
    assert_eq!(legacy(&b), (2000, 1999, T0 + 1));
}

#[tokio::test]
async fn override_set_by_update_applies_on_the_next_request() {
    let h = Harness::new();
    let (id, key) = h.key("acct_1", &[]).await;
    let mut svc = h.service();
    assert_eq!(
        legacy(&send(&mut svc, get("/", Some(&key))).await).0,
        2000,
        "starts on the default"
    );
    h.manager
        .update(
            &AccountId::from("acct_1"),
            &id,
            keygate::manage::KeyUpdate::default().rate_limit(Some(RateLimit::new(1, 1))),
        )
        .await
        .unwrap();
    let a = send(&mut svc, get("/", Some(&key))).await;
    assert_eq!(legacy(&a), (1, 0, T0 + 1));
    assert_rate_limited(&send(&mut svc, get("/", Some(&key))).await, "1");
}

#[tokio::test]
async fn deployment_default_quota_applies_to_keys_without_an_override() {
    let h = with_default(RateLimit::new(5, 10));
    let (_, key) = h.key("acct_1", &[]).await;
    let (_, own) = h
        .key_with(
            "acct_1",
            NewKey::named("own").rate_limit(RateLimit::new(1, 3)),
        )
        .await;
    let mut svc = h.service();
    let a = send(&mut svc, get("/", Some(&key))).await;
    // 5/s: one token back in 200 ms.
    assert_eq!(legacy(&a), (10, 9, T0 + 1));
    for _ in 0..9 {
        assert_eq!(send(&mut svc, get("/", Some(&key))).await.status, 200);
    }
    let refused = send(&mut svc, get("/", Some(&key))).await;
    assert_rate_limited(&refused, "1");
    // 200 ms for the next token plus 9 × 200 ms: 2 s to full.
    assert_eq!(legacy(&refused), (10, 0, T0 + 2));

    assert_eq!(
        legacy(&send(&mut svc, get("/", Some(&own))).await),
        (3, 2, T0 + 1)
    );
}

#[tokio::test]
async fn tenuo_default_of_1000_per_second_burst_2000_applies_when_nothing_is_configured() {
    let h = Harness::new();
    let (_, key) = h.key("acct_1", &[]).await;
    let mut svc = h.service();
    let a = send(&mut svc, get("/", Some(&key))).await;
    assert_eq!(a.status, 200);
    assert_eq!(a.header("x-ratelimit-limit"), Some("2000"));
    assert_eq!(a.header("x-ratelimit-remaining"), Some("1999"));
    // One token returns in 1 ms: full again within the next whole second.
    let reset = (T0 + 1).to_string();
    assert_eq!(a.header("x-ratelimit-reset"), Some(reset.as_str()));
    assert!(a.header("ratelimit-policy").is_none());
    assert!(a.header("ratelimit").is_none());

    for _ in 0..1999 {
        assert_eq!(send(&mut svc, get("/", Some(&key))).await.status, 200);
    }
    let refused = send(&mut svc, get("/", Some(&key))).await;
    assert_rate_limited(&refused, "1");
    // 1 ms for the next token plus 1999 ms for the rest of the burst: 2 s.
    assert_eq!(legacy(&refused), (2000, 0, T0 + 2));
}

#[tokio::test]
async fn disabled_limits_send_no_headers_and_never_refuse() {
    let h = Harness::with(|b| b.rate_limits(RateLimitConfig::disabled()));
    let (_, key) = h.key("acct_1", &[]).await;
    let mut svc = h.service();
    for _ in 0..50 {
        let a = send(&mut svc, get("/", Some(&key))).await;
        assert_eq!(a.status, 200);
        assert!(a.header("x-ratelimit-limit").is_none());
    }
    assert_eq!(h.gate.stats().rate_limit_buckets, 0);
}

#[tokio::test]
async fn per_account_limit_is_shared_by_keys_of_one_account_and_not_across_accounts() {
    let h = Harness::with(|b| {
        b.rate_limits(
            RateLimitConfig::default()
                .default_quota(Some(RateLimit::new(1, 3)))
                .key(RateLimitKey::PerAccount),
        )
    });
    let (_, a1) = h.key("acct_a", &[]).await;
    let (_, a2) = h.key("acct_a", &[]).await;
    let (_, b1) = h.key("acct_b", &[]).await;
    let mut svc = h.service();

    let r = send(&mut svc, get("/", Some(&a1))).await;
    assert_eq!(legacy(&r), (3, 2, T0 + 1));
    let r = send(&mut svc, get("/", Some(&a2))).await;
    assert_eq!(legacy(&r), (3, 1, T0 + 2));
    let r = send(&mut svc, get("/", Some(&a1))).await;
    assert_eq!(legacy(&r), (3, 0, T0 + 3));
    let refused = send(&mut svc, get("/", Some(&a2))).await;
    assert_rate_limited(&refused, "1");
    assert_eq!(legacy(&refused), (3, 0, T0 + 3));

    // Another account has its own full bucket.
    let other = send(&mut svc, get("/", Some(&b1))).await;
    assert_eq!(other.status, 200);
    assert_eq!(legacy(&other), (3, 2, T0 + 1));

    // One replenished token serves either key of account A, once.
    h.time.advance(Duration::from_secs(1));
    assert_eq!(send(&mut svc, get("/", Some(&a2))).await.status, 200);
    assert_eq!(send(&mut svc, get("/", Some(&a1))).await.status, 429);
}

#[tokio::test]
async fn per_key_limit_gives_two_keys_of_one_account_separate_buckets() {
    let h = with_default(RateLimit::new(1, 1));
    let (_, a1) = h.key("acct_a", &[]).await;
    let (_, a2) = h.key("acct_a", &[]).await;
    let mut svc = h.service();
    assert_eq!(send(&mut svc, get("/", Some(&a1))).await.status, 200);
    assert_eq!(send(&mut svc, get("/", Some(&a1))).await.status, 429);
    assert_eq!(send(&mut svc, get("/", Some(&a2))).await.status, 200);
}
