//! Per-key rate limiting (issue 4): the burst, 429 with `Retry-After`, replenishment,
//! overrides, per-account sharing, the headers at each step, no quota spent by refused
//! requests, and bounded limiter state. Time only moves through the manual clock.

mod common;
use common::*;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use keygate::{
    AccountId, CacheConfig, Environment, KeyId, KeyRecord, KeyStoreWrite, Keygate, MemoryStore,
    NewKey, PeerAddr, RateLimit, RateLimitConfig, RateLimitKey,
};
use tower::{Service, ServiceExt};

/// A harness whose deployment default quota is `quota`, per key.
fn with_default(quota: RateLimit) -> Harness {
    Harness::with(|b| b.rate_limits(RateLimitConfig::default().default_quota(Some(quota))))
}

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

fn assert_rate_limited(a: &Answer, retry_after: &str) {
    assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS, "{}", a.body);
    assert_eq!(a.code(), "rate_limited");
    assert!(a.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("retry"));
    assert_eq!(a.header("content-type"), Some("application/json"));
    assert_eq!(a.header("retry-after"), Some(retry_after));
    assert!(
        a.header("www-authenticate").is_none(),
        "a 429 is not an authentication challenge"
    );
}

fn from_ip(mut req: Request<Full<Bytes>>, ip: &str) -> Request<Full<Bytes>> {
    let addr: SocketAddr = format!("{ip}:40000").parse().unwrap();
    req.extensions_mut().insert(PeerAddr(addr));
    req
}

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
            keygate::KeyUpdate::default().rate_limit(Some(RateLimit::new(1, 1))),
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

#[tokio::test]
async fn limiter_state_follows_the_key_id_across_a_roll_with_grace() {
    let h = Harness::new();
    let (id, old) = h
        .key_with(
            "acct_1",
            NewKey::named("rolled").rate_limit(RateLimit::new(1, 3)),
        )
        .await;
    let mut svc = h.service();
    assert_eq!(legacy(&send(&mut svc, get("/", Some(&old))).await).1, 2);

    let rolled = h
        .manager
        .roll(
            &AccountId::from("acct_1"),
            &id,
            Some(Duration::from_secs(3600)),
        )
        .await
        .unwrap();
    let new = rolled.key.expose_secret().to_owned();
    assert_ne!(new, old);

    // Old and new secrets draw from one bucket: the key id's.
    assert_eq!(legacy(&send(&mut svc, get("/", Some(&new))).await).1, 1);
    assert_eq!(legacy(&send(&mut svc, get("/", Some(&old))).await).1, 0);
    assert_rate_limited(&send(&mut svc, get("/", Some(&new))).await, "1");
    assert_rate_limited(&send(&mut svc, get("/", Some(&old))).await, "1");
    assert_eq!(h.gate.stats().rate_limit_buckets, 1);
}

/// One bare request through `svc`; returns `X-RateLimit-Remaining`.
async fn remaining_after<S>(svc: &mut S, authorization: &str) -> String
where
    S: Service<
        Request<Full<Bytes>>,
        Response = Response<keygate::layer::ResponseBody<Full<Bytes>>>,
    >,
    S::Error: std::fmt::Debug,
{
    let req = Request::builder()
        .header("authorization", authorization)
        .body(Full::new(Bytes::new()))
        .unwrap();
    let res = svc.ready().await.unwrap().call(req).await.unwrap();
    assert_eq!(res.status(), 200);
    res.headers()["x-ratelimit-remaining"]
        .to_str()
        .unwrap()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limiter_state_for_100_000_keys_is_dropped_once_they_are_idle() {
    const KEYS: usize = 100_000;
    const TASKS: usize = 4;
    // Records go straight into a store (no manager, so no last-used writes), the cache
    // is small, and the inner service does nothing: the work is the limiter's.
    let store = Arc::new(MemoryStore::new());
    let (clock, time) = keygate::Clock::manual(t0());
    let gate = Keygate::builder(store.clone())
        .clock(clock)
        .cache(CacheConfig::default().max_entries(1024))
        .build();
    let prefix = gate.format().prefix("tc_").unwrap().clone();
    let mut keys = Vec::with_capacity(KEYS);
    for i in 0..KEYS {
        let key = gate.format().generate(&prefix).unwrap();
        let mut record = KeyRecord::new(
            KeyId::new(format!("ak_{i:06}")),
            AccountId::from("acct_bulk"),
            gate.hasher().digest(key.expose_secret()),
            t0(),
        );
        record.name = "bulk".into();
        record.prefix = "tc_".into();
        record.start = key.start().to_owned();
        store.insert(record, None, t0()).await.unwrap();
        keys.push(format!("Bearer {}", key.expose_secret()));
    }
    let svc = tower::ServiceBuilder::new().layer(gate.layer()).service_fn(
        |_: Request<Full<Bytes>>| async {
            Ok::<_, Infallible>(Response::new(Full::new(Bytes::new())))
        },
    );
    let keys = Arc::new(keys);
    let tasks: Vec<_> = (0..TASKS)
        .map(|t| {
            let (keys, mut svc) = (keys.clone(), svc.clone());
            tokio::spawn(async move {
                for header in keys.iter().skip(t).step_by(TASKS) {
                    assert_eq!(remaining_after(&mut svc, header).await, "1999");
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(gate.stats().rate_limit_buckets, KEYS);

    // Every bucket refills within 1 ms; once idle, the state is dropped.
    time.advance(Duration::from_secs(2));
    gate.run_maintenance();
    assert_eq!(gate.stats().rate_limit_buckets, 0);

    // It is rebuilt on demand: a returning key starts from a full bucket.
    let mut svc = svc;
    assert_eq!(remaining_after(&mut svc, &keys[0]).await, "1999");
    assert_eq!(gate.stats().rate_limit_buckets, 1);
}

#[tokio::test]
async fn idle_limiter_state_is_dropped_by_periodic_maintenance_without_being_asked() {
    let h = Harness::new();
    let mut svc = h.service();
    let mut keys = Vec::new();
    for i in 0..200 {
        let (_, key) = h.key(&format!("acct_{i}"), &[]).await;
        assert_eq!(send(&mut svc, get("/", Some(&key))).await.status, 200);
        keys.push(key);
    }
    assert_eq!(h.gate.stats().rate_limit_buckets, 200);

    // Past the default 10 s maintenance interval, the next request triggers a sweep.
    h.time.advance(Duration::from_secs(11));
    assert_eq!(send(&mut svc, get("/", Some(&keys[0]))).await.status, 200);
    assert_eq!(h.gate.stats().rate_limit_buckets, 1);
}

#[tokio::test]
async fn a_key_that_is_still_limited_keeps_its_state_through_maintenance() {
    let h = with_default(RateLimit::new(1, 3));
    let (_, busy) = h.key("acct_1", &[]).await;
    let (_, idle) = h.key("acct_2", &[]).await;
    let mut svc = h.service();
    send(&mut svc, get("/", Some(&idle))).await;
    for _ in 0..3 {
        send(&mut svc, get("/", Some(&busy))).await;
    }
    h.time.advance(Duration::from_millis(2500));
    h.gate.run_maintenance();
    // `idle` (full since T0+1 s) was dropped; `busy` (full only at T0+3 s) was kept.
    assert_eq!(h.gate.stats().rate_limit_buckets, 1);
    // 2.5 tokens are back, one is used: 1 left. A fresh bucket would report 2.
    let a = send(&mut svc, get("/", Some(&busy))).await;
    assert_eq!(a.status, 200);
    assert_eq!(a.header("x-ratelimit-remaining"), Some("1"));
}
