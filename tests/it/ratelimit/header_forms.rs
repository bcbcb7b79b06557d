//! The rate-limit headers' two forms (the burst or the rate as the limit), the headers on refusals after
//! authentication, and the limiter state living with the key's cache entry: it must
//! survive refreshes and invalidations of an unchanged key. Time only moves through the
//! manual clock.

use crate::common::*;

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request};
use http_body_util::Full;
use keygate::client_ip::PeerAddr;
use keygate::gate::CacheConfig;
use keygate::ratelimit::{RateLimitConfig, ReportedLimit};
use keygate::store::RateLimit;
use keygate::NewKey;

/// The three legacy headers as numbers: (limit, remaining, reset).
fn legacy(a: &Answer) -> (u64, u64, u64) {
    let num = |name: &str| -> u64 {
        a.header(name)
            .unwrap_or_else(|| panic!("{name} missing on {}: {:?}", a.status, a.headers))
            .parse()
            .unwrap()
    };
    (
        num("x-ratelimit-limit"),
        num("x-ratelimit-remaining"),
        num("x-ratelimit-reset"),
    )
}

fn from_ip(mut req: Request<Full<Bytes>>, ip: &str) -> Request<Full<Bytes>> {
    let addr: SocketAddr = format!("{ip}:40000").parse().unwrap();
    req.extensions_mut().insert(PeerAddr(addr));
    req
}

fn limits(quota: RateLimit) -> RateLimitConfig {
    RateLimitConfig::default().default_quota(Some(quota))
}

#[tokio::test]
async fn per_second_form_reports_the_rate_and_counts_down_from_it() {
    let h = Harness::with(|b| {
        b.rate_limits(limits(RateLimit::new(10, 20)).reported_limit(ReportedLimit::PerSecond))
    });
    let (_, key) = h.key("acct_1", &[]).await;
    let mut svc = h.service();
    // 20 tokens: the first 10 requests count Remaining down from 10 to 0...
    for used in 1..=10u64 {
        let a = send(&mut svc, get("/", Some(&key))).await;
        assert_eq!(a.status, 200);
        let (limit, remaining, reset) = legacy(&a);
        assert_eq!((limit, remaining), (10, 10 - used));
        // Full again `used` tenths of a second from now, rounded up to the second.
        assert_eq!(reset, T0 + (used * 100).div_ceil(1000));
    }
    // ...the burst's extra 10 are still served at Remaining 0, then 429.
    for _ in 0..10 {
        let a = send(&mut svc, get("/", Some(&key))).await;
        assert_eq!(a.status, 200);
        assert_eq!(legacy(&a).1, 0);
    }
    let refused = send(&mut svc, get("/", Some(&key))).await;
    assert_eq!(refused.status, 429);
    assert_eq!(legacy(&refused), (10, 0, T0 + 2));
}

#[tokio::test]
async fn burst_form_stays_the_default() {
    let h = Harness::with(|b| b.rate_limits(limits(RateLimit::new(10, 20))));
    let (_, key) = h.key("acct_1", &[]).await;
    let a = send(&mut h.service(), get("/", Some(&key))).await;
    assert_eq!(legacy(&a), (20, 19, T0 + 1));
}

#[tokio::test]
async fn ietf_policy_follows_the_reported_form() {
    let h = Harness::with(|b| {
        b.rate_limits(
            limits(RateLimit::new(1000, 2000))
                .ietf_headers(true)
                .reported_limit(ReportedLimit::PerSecond),
        )
    });
    let (_, key) = h.key("acct_1", &[]).await;
    let a = send(&mut h.service(), get("/", Some(&key))).await;
    assert_eq!(a.header("ratelimit-policy"), Some("\"default\";q=1000;w=1"));
    assert_eq!(a.header("ratelimit"), Some("\"default\";r=999;t=1"));
}

#[tokio::test]
async fn refusals_after_authentication_carry_the_headers_without_taking_a_token() {
    let h = Harness::with(|b| b.rate_limits(limits(RateLimit::new(1, 3))));
    let (_, reader) = h.key("acct_1", &["read-only"]).await;
    let (_, fenced) = h
        .key_with("acct_2", NewKey::named("fenced").ips(["10.0.0.0/8"]))
        .await;
    let mut admin_only = tower::ServiceBuilder::new()
        .layer(h.gate.layer().require_any(["admin"]))
        .service_fn(echo);
    let mut open = h.service();

    // The reader spends one token first, so the refusals report a bucket that is not
    // full: 2 left, full again at T0 + 1.
    let a = send(&mut open, get("/", Some(&reader))).await;
    assert_eq!(legacy(&a), (3, 2, T0 + 1));
    for _ in 0..5 {
        let scope = send(&mut admin_only, get("/", Some(&reader))).await;
        assert_eq!(
            (scope.status.as_u16(), scope.code().as_str()),
            (403, "insufficient_scope")
        );
        assert_eq!(legacy(&scope), (3, 2, T0 + 1));
        let read_only = send(&mut open, request(Method::POST, "/", Some(&reader))).await;
        assert_eq!(read_only.status, 403);
        assert_eq!(legacy(&read_only), (3, 2, T0 + 1));
        let ip = send(&mut open, from_ip(get("/", Some(&fenced)), "192.168.1.1")).await;
        assert_eq!(
            (ip.status.as_u16(), ip.code().as_str()),
            (403, "ip_not_allowed")
        );
        // A full bucket is full again now.
        assert_eq!(legacy(&ip), (3, 3, T0));
    }
    // No token was taken by any refusal.
    let a = send(&mut open, get("/", Some(&reader))).await;
    assert_eq!(legacy(&a), (3, 1, T0 + 2));
    let a = send(&mut open, from_ip(get("/", Some(&fenced)), "10.1.2.3")).await;
    assert_eq!(legacy(&a), (3, 2, T0 + 1));
}

#[tokio::test]
async fn a_nested_layers_scope_refusal_carries_the_outer_layers_headers() {
    // The outer layer authenticates and takes the token; the inner one only checks its
    // scope, and its 403 passes back through the outer layer, which adds the headers.
    let h = Harness::with(|b| b.rate_limits(limits(RateLimit::new(1, 3))));
    let (_, reader) = h.key("acct_1", &["read-only"]).await;
    let mut nested = tower::ServiceBuilder::new()
        .layer(h.gate.layer())
        .layer(h.gate.layer().require_any(["admin"]))
        .service_fn(echo);
    let a = send(&mut nested, get("/", Some(&reader))).await;
    assert_eq!(
        (a.status.as_u16(), a.code().as_str()),
        (403, "insufficient_scope")
    );
    assert_eq!(legacy(&a), (3, 2, T0 + 1));
}

#[tokio::test]
async fn refusals_before_authentication_carry_no_rate_limit_headers() {
    let h = Harness::new();
    let (_, key) = h.key("acct_1", &[]).await;
    let mut svc = h.service();
    let mut typo = key.into_bytes();
    let last = typo.len() - 1;
    typo[last] = if typo[last] == b'A' { b'B' } else { b'A' };
    let typo = String::from_utf8(typo).unwrap();
    for a in [
        send(&mut svc, get("/", None)).await,
        send(&mut svc, get("/", Some(&typo))).await,
    ] {
        assert_eq!(a.status, 401);
        assert!(a.header("x-ratelimit-limit").is_none(), "{a:?}");
    }
}

#[tokio::test]
async fn the_quota_survives_cache_refreshes_and_invalidations_of_an_unchanged_key() {
    let h = Harness::with(|b| {
        b.rate_limits(limits(RateLimit::new(1, 4)))
            .cache(CacheConfig::default().positive_ttl(Duration::from_millis(100)))
    });
    let (_, key) = h.key("acct_1", &[]).await;
    let digest = h.gate.hasher().digest(&key);
    let mut svc = h.service();
    let lookups = h.gate.stats().store_lookups;
    assert_eq!(legacy(&send(&mut svc, get("/", Some(&key))).await).1, 3);

    // The entry expires and is fetched again (a refresh): same bucket.
    h.time.advance(Duration::from_millis(150));
    assert_eq!(legacy(&send(&mut svc, get("/", Some(&key))).await).1, 2);
    // The entry is invalidated and fetched again: same bucket.
    h.gate.invalidate_digest(&digest);
    assert_eq!(legacy(&send(&mut svc, get("/", Some(&key))).await).1, 1);
    // Invalidated, then maintenance runs before the key is used again: the bucket is
    // not full, so it is kept.
    h.gate.invalidate_digest(&digest);
    h.gate.run_maintenance();
    assert_eq!(legacy(&send(&mut svc, get("/", Some(&key))).await).1, 0);
    assert!(
        h.gate.stats().store_lookups >= lookups + 3,
        "each step above went to the store"
    );
    let refused = send(&mut svc, get("/", Some(&key))).await;
    assert_eq!(refused.status, 429);
}
