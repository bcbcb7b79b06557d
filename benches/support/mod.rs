//! What the request-path benches share: the inner services, the request every case
//! sends, the deployment under test, the floor stack, and polling a future that must be
//! ready at once.

// Each bench uses part of this module.
#![allow(dead_code)]

pub mod floor;
pub mod pairs;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderValue, AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE};
use http::{Request, Response};
use http_body_util::Full;
use keygate::client_ip::PeerAddr;
use keygate::gate::CacheConfig;
use keygate::key::KeyDigest;
use keygate::manage::ManagerConfig;
use keygate::ratelimit::RateLimitConfig;
use keygate::store::RateLimit;
use keygate::{Environment, Keygate, MemoryStore, NewKey};
use tower::Service;

/// The trivial inner service: a small fixed response.
pub fn inner(
) -> impl Service<Request<()>, Response = Response<Full<Bytes>>, Error = Infallible> + Clone {
    tower::service_fn(|_req: Request<()>| async {
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"ok"))))
    })
}

/// A realistic inner service: answers like a JSON handler, with `content-type` and
/// `content-length`, so the response's header map already exists.
pub fn inner_json(
) -> impl Service<Request<()>, Response = Response<Full<Bytes>>, Error = Infallible> + Clone {
    tower::service_fn(|_req: Request<()>| async {
        const BODY: &[u8] = br#"{"ok":true}"#;
        let mut res = Response::new(Full::new(Bytes::from_static(BODY)));
        let headers = res.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(CONTENT_LENGTH, HeaderValue::from(BODY.len()));
        Ok::<_, Infallible>(res)
    })
}

/// A quota no benchmark can exhaust: one token back every nanosecond, so the bucket is
/// full again before the next request. The burst is an ordinary size, so that the
/// `X-RateLimit-Remaining` values stay in keygate's table of static header values, as
/// they do with real quotas.
pub const HUGE_QUOTA: RateLimit = RateLimit::new(1_000_000_000, 4_000);

/// The scope the route requires and the key holds.
pub const SCOPE: &str = "charges:read";

/// A deployment with one valid key: scope `charges:read`, allowlist `127.0.0.0/8`, a
/// quota too large to trip, and a `KeyManager` attached (so last-used tracking runs,
/// as in a real server). Cache lifetimes are long so that no entry expires mid-run.
pub struct Setup {
    pub gate: Keygate,
    pub key: String,
    pub digest: KeyDigest,
}

/// Builds the [`Setup`]; the key is created on `rt`.
pub fn setup(rt: &tokio::runtime::Runtime) -> Setup {
    setup_full(rt, keygate::activity::UsageConfig::default(), None, None)
}

/// [`setup`] with these usage-counting settings.
pub fn setup_with(rt: &tokio::runtime::Runtime, usage: keygate::activity::UsageConfig) -> Setup {
    setup_full(rt, usage, None, None)
}

/// [`setup`] with a key that spends one of `credits` per request (usage limits on).
pub fn setup_credited(rt: &tokio::runtime::Runtime, credits: i64) -> Setup {
    setup_full(
        rt,
        keygate::activity::UsageConfig::default(),
        None,
        Some(credits),
    )
}

/// [`setup`] with the API log on (stored in memory), recording this fraction of
/// accepted requests (`Some(0.0)`: the log is on, accepted requests are not sampled).
/// The buffer holds every event a run records, so none is dropped.
pub fn setup_logged(rt: &tokio::runtime::Runtime, accepted: Option<f64>) -> Setup {
    setup_full(
        rt,
        keygate::activity::UsageConfig::default(),
        accepted,
        None,
    )
}

/// [`setup`] with these usage-counting and API-log settings, and the key's credits.
pub fn setup_full(
    rt: &tokio::runtime::Runtime,
    usage: keygate::activity::UsageConfig,
    accepted: Option<f64>,
    credits: Option<i64>,
) -> Setup {
    let store = Arc::new(MemoryStore::new());
    let mut builder = Keygate::managed(store.clone()).usage(usage);
    if let Some(rate) = accepted {
        builder = builder.api_log(
            keygate::activity::log::ApiLogConfig::new(store)
                .accepted_sample_rate(rate)
                .buffer(1 << 20),
        );
    }
    let (gate, manager) = builder
        .cache(
            CacheConfig::default()
                .positive_ttl(Duration::from_secs(3600))
                .negative_ttl(Duration::from_secs(3600)),
        )
        .rate_limits(RateLimitConfig::default().default_quota(Some(HUGE_QUOTA)))
        .manager_config(ManagerConfig::default().max_active_keys(None))
        .build();
    let mut new = NewKey::named("bench key")
        .scopes([SCOPE])
        .ips(["127.0.0.0/8"])
        .environment(Environment::Live);
    if let Some(credits) = credits {
        new = new.credits(keygate::metering::Credits::new(credits));
    }
    let created = rt
        .block_on(manager.create("acct_bench".into(), new))
        .expect("the bench key can be created");
    let key = created.key.expose_secret().to_owned();
    let digest = gate.hasher().digest(&key);
    Setup { gate, key, digest }
}

/// [`setup`] for a key with a daily quota too large to run out, and the quota headers
/// (the IETF items and `X-Quota-*`) on or off.
pub fn setup_quota(rt: &tokio::runtime::Runtime, headers: bool) -> Setup {
    let store = Arc::new(MemoryStore::new());
    let limits = RateLimitConfig::default()
        .default_quota(Some(HUGE_QUOTA))
        .ietf_headers(headers)
        .quota_headers(headers.then(keygate::ratelimit::QuotaHeaders::x_quota));
    let (gate, manager) = Keygate::managed(store)
        .cache(CacheConfig::default().positive_ttl(Duration::from_secs(3600)))
        .rate_limits(limits)
        .manager_config(ManagerConfig::default().max_active_keys(None))
        .build();
    let quota = keygate::metering::Quota::new(u64::MAX / 4, keygate::metering::QuotaPeriod::Day);
    let new = NewKey::named("bench key")
        .scopes([SCOPE])
        .ips(["127.0.0.0/8"])
        .environment(Environment::Live)
        .quota(quota);
    let created = rt
        .block_on(manager.create("acct_bench".into(), new))
        .expect("the bench key can be created");
    let key = created.key.expose_secret().to_owned();
    let digest = gate.hasher().digest(&key);
    Setup { gate, key, digest }
}

/// The floor stack for the same key and quota.
pub fn floor_for(key: &str) -> Arc<floor::Floor> {
    floor::Floor::new(
        key,
        u64::from(HUGE_QUOTA.per_second),
        u64::from(HUGE_QUOTA.burst),
    )
}

/// The same key with its last checksum character changed.
pub fn with_bad_checksum(key: &str) -> String {
    let mut bytes = key.as_bytes().to_vec();
    let last = bytes.last_mut().expect("keys are not empty");
    *last = if *last == b'A' { b'B' } else { b'A' };
    String::from_utf8(bytes).expect("ASCII")
}

/// A well-formed key (valid checksum) that no store holds.
pub fn unknown_key(gate: &Keygate) -> String {
    let format = gate.format();
    let prefix = format.prefix("sk_live_").expect("default format");
    format
        .generate(prefix)
        .expect("the prefix generates keys")
        .expose_secret()
        .to_owned()
}

/// The request every case sends: `GET /v1/whoami` with the key, from 127.0.0.1.
pub fn request(token: &str) -> Request<()> {
    let peer: SocketAddr = "127.0.0.1:40000".parse().expect("valid address");
    Request::builder()
        .uri("/v1/whoami")
        .header(AUTHORIZATION, format!("Bearer {token}"))
        .extension(PeerAddr(peer))
        .body(())
        .expect("valid request")
}

/// Polls a future that must be ready at once.
pub fn now<F: Future>(fut: F) -> F::Output {
    let mut fut = pin!(fut);
    let mut cx = Context::from_waker(futures_util::task::noop_waker_ref());
    match fut.as_mut().poll(&mut cx) {
        Poll::Ready(out) => out,
        Poll::Pending => panic!("the benchmarked future was not ready at once"),
    }
}
