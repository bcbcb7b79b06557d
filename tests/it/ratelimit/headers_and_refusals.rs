//! The IETF draft headers, headers on every response, and no quota spent by refused requests.

use crate::common::*;
use crate::ratelimit::support::*;
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use keygate::ratelimit::{RateLimitConfig, RateLimitKey};
use keygate::store::RateLimit;
use keygate::{Environment, Keygate, NewKey};
use std::convert::Infallible;

#[tokio::test]
async fn ietf_draft_headers_are_sent_only_when_enabled() {
    let h = Harness::with(|b| {
        b.rate_limits(
            RateLimitConfig::default()
                .default_quota(Some(RateLimit::new(1, 2)))
                .ietf_headers(true),
        )
    });
    let (_, key) = h.key("acct_1", &[]).await;
    let mut svc = h.service();

    let a = send(&mut svc, get("/", Some(&key))).await;
    assert_eq!(a.status, 200);
    assert_eq!(a.header("ratelimit-policy"), Some("\"default\";q=2;w=2"));
    assert_eq!(a.header("ratelimit"), Some("\"default\";r=1;t=1"));
    assert_eq!(legacy(&a), (2, 1, T0 + 1), "legacy headers are still sent");

    let b = send(&mut svc, get("/", Some(&key))).await;
    assert_eq!(b.header("ratelimit"), Some("\"default\";r=0;t=2"));

    let refused = send(&mut svc, get("/", Some(&key))).await;
    assert_rate_limited(&refused, "1");
    assert_eq!(
        refused.header("ratelimit-policy"),
        Some("\"default\";q=2;w=2")
    );
    assert_eq!(refused.header("ratelimit"), Some("\"default\";r=0;t=2"));

    // The same quota without the option: no draft fields at all.
    let plain = with_default(RateLimit::new(1, 2));
    let (_, key) = plain.key("acct_1", &[]).await;
    let mut svc = plain.service();
    let a = send(&mut svc, get("/", Some(&key))).await;
    assert!(a.header("ratelimit-policy").is_none());
    assert!(a.header("ratelimit").is_none());
    send(&mut svc, get("/", Some(&key))).await;
    let refused = send(&mut svc, get("/", Some(&key))).await;
    assert_eq!(refused.status, 429);
    assert!(refused.header("ratelimit-policy").is_none());
    assert!(refused.header("ratelimit").is_none());
}

#[tokio::test]
async fn rate_limit_headers_are_on_every_response_to_an_authenticated_request() {
    let h = with_default(RateLimit::new(10, 10));
    let (_, key) = h.key("acct_1", &[]).await;
    // The inner service answers with whatever status the path names.
    let mut svc = tower::ServiceBuilder::new()
        .layer(h.gate.layer())
        .service_fn(|req: Request<Full<Bytes>>| async move {
            let status: u16 = req.uri().path()[1..].parse().unwrap_or(200);
            let mut res = Response::new(Full::new(Bytes::new()));
            *res.status_mut() = StatusCode::from_u16(status).unwrap();
            Ok::<_, Infallible>(res)
        });
    let cases = [
        (Method::GET, "/200", 200),
        (Method::POST, "/201", 201),
        (Method::DELETE, "/204", 204),
        (Method::GET, "/404", 404),
        (Method::PUT, "/409", 409),
        (Method::GET, "/500", 500),
    ];
    for (i, (method, path, status)) in cases.into_iter().enumerate() {
        let a = send(&mut svc, request(method, path, Some(&key))).await;
        assert_eq!(a.status, status);
        let used = i as u64 + 1;
        // 10/s: each used token takes 100 ms to come back.
        assert_eq!(
            legacy(&a),
            (10, 10 - used, T0 + (used * 100).div_ceil(1000)),
            "{path}"
        );
    }
    // Requests without a key carry no limiter state, and so no headers.
    let anon = send(&mut svc, get("/200", None)).await;
    assert_eq!(anon.status, 401);
    assert!(anon.header("x-ratelimit-limit").is_none());
}

#[tokio::test]
async fn requests_refused_for_scope_or_ip_consume_no_quota() {
    let h = with_default(RateLimit::new(1, 3));
    let (_, reader) = h.key("acct_1", &["read-only"]).await;
    let (_, fenced) = h
        .key_with("acct_1", NewKey::named("fenced").ips(["10.0.0.0/8"]))
        .await;
    let mut admin_only = tower::ServiceBuilder::new()
        .layer(h.gate.layer().require_any(["admin"]))
        .service_fn(echo);
    let mut open = h.service();

    for _ in 0..10 {
        // 403: scope required by the route.
        let a = send(&mut admin_only, get("/", Some(&reader))).await;
        assert_eq!(a.status, 403);
        assert_eq!(a.code(), "insufficient_scope");
        // 403: a read-only key on an unsafe method.
        let a = send(&mut open, request(Method::POST, "/", Some(&reader))).await;
        assert_eq!(a.status, 403);
        assert_eq!(a.code(), "insufficient_scope");
        // 403: not on the allowlist, or no known client IP at all.
        let a = send(&mut open, from_ip(get("/", Some(&fenced)), "192.168.1.1")).await;
        assert_eq!(a.status, 403);
        assert_eq!(a.code(), "ip_not_allowed");
        let a = send(&mut open, get("/", Some(&fenced))).await;
        assert_eq!(a.code(), "ip_not_allowed");
    }

    // Both keys still have their whole burst.
    let a = send(&mut open, get("/", Some(&reader))).await;
    assert_eq!(a.status, 200);
    assert_eq!(legacy(&a), (3, 2, T0 + 1));
    let a = send(&mut open, from_ip(get("/", Some(&fenced)), "10.1.2.3")).await;
    assert_eq!(a.status, 200);
    assert_eq!(legacy(&a), (3, 2, T0 + 1));
}

#[tokio::test]
async fn requests_refused_for_the_wrong_environment_consume_no_shared_account_quota() {
    // Keys are made on an unrestricted deployment, then used on a live-only one that
    // counts per account: the test key and the live key share account A's bucket.
    let h = Harness::new();
    let (_, test_key) = h
        .key_with(
            "acct_a",
            NewKey::named("test").environment(Environment::Test),
        )
        .await;
    let (_, live_key) = h
        .key_with(
            "acct_a",
            NewKey::named("live").environment(Environment::Live),
        )
        .await;
    let live = Keygate::builder(h.store.clone())
        .clock(h.clock.clone())
        .environment(Environment::Live)
        .rate_limits(
            RateLimitConfig::default()
                .default_quota(Some(RateLimit::new(1, 2)))
                .key(RateLimitKey::PerAccount),
        )
        .build();
    let mut svc = tower::ServiceBuilder::new()
        .layer(live.layer())
        .service_fn(echo);

    for _ in 0..5 {
        let a = send(&mut svc, get("/", Some(&test_key))).await;
        assert_eq!(a.status, 401);
        assert_eq!(a.code(), "wrong_environment");
        assert!(a.header("x-ratelimit-remaining").is_none());
        // Unknown and revoked-looking junk is refused before the limiter too.
        let a = send(&mut svc, get("/", Some("sk_live_notarealkey"))).await;
        assert_eq!(a.status, 401);
    }
    assert_eq!(
        live.stats().rate_limit_buckets,
        0,
        "no bucket was even created"
    );

    let a = send(&mut svc, get("/", Some(&live_key))).await;
    assert_eq!(a.status, 200);
    assert_eq!(legacy(&a), (2, 1, T0 + 1));
}
