//! The end-to-end cost of one request through keygate, side by side with no middleware
//! and with the cheapest possible bearer check.
//!
//! ```text
//! cargo bench --bench verify
//! ```
//!
//! Every case sends the same request (`GET /v1/whoami`, `Authorization: Bearer <key>`,
//! a `PeerAddr` extension) through the same trivial inner service. The response future
//! of each stack is ready at once (the store is in memory), so it is polled directly with
//! a no-op waker inside a current-thread tokio runtime's context: the figures are the
//! layer's, not a scheduler's. Requests are built outside the timed section
//! (`iter_batched`); their drop is inside it, the same for every case.

mod support;

use support::{inner, now, request};

use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use keygate::{
    CacheConfig, Environment, KeyDigest, Keygate, ManagerConfig, MemoryStore, NewKey, RateLimit,
    RateLimitConfig,
};
use tower::Service;

/// A quota no benchmark can exhaust: one token back every nanosecond, so the bucket is
/// full again before the next request. The burst is an ordinary size, so that the
/// `X-RateLimit-Remaining` values stay in keygate's table of prebuilt header values, as
/// they do with real quotas (a burst of billions would make every value a new one).
const HUGE_QUOTA: RateLimit = RateLimit::new(1_000_000_000, 4_000);

/// The scope the route requires and the key holds.
const SCOPE: &str = "charges:read";

/// A deployment with one valid key: scope `charges:read`, allowlist `127.0.0.0/8`, a
/// quota too large to trip, and a [`KeyManager`] attached (so last-used tracking runs,
/// as in a real server). Cache lifetimes are long so that no entry expires mid-run.
struct Setup {
    gate: Keygate,
    key: String,
    digest: KeyDigest,
}

fn setup(rt: &tokio::runtime::Runtime) -> Setup {
    let store = Arc::new(MemoryStore::new());
    let (gate, manager) = Keygate::managed(store.clone())
        .cache(
            CacheConfig::default()
                .positive_ttl(Duration::from_secs(3600))
                .negative_ttl(Duration::from_secs(3600)),
        )
        .rate_limits(RateLimitConfig::default().default_quota(Some(HUGE_QUOTA)))
        .manager_config(ManagerConfig::default().max_active_keys(None))
        .build();
    let created = rt
        .block_on(
            manager.create(
                "acct_bench".into(),
                NewKey::named("bench key")
                    .scopes([SCOPE])
                    .ips(["127.0.0.0/8"])
                    .environment(Environment::Live),
            ),
        )
        .expect("the bench key can be created");
    let key = created.key.expose_secret().to_owned();
    let digest = gate.hasher().digest(&key);
    Setup { gate, key, digest }
}

/// The same key with its last checksum character changed.
fn with_bad_checksum(key: &str) -> String {
    let mut bytes = key.as_bytes().to_vec();
    let last = bytes.last_mut().expect("keys are not empty");
    *last = if *last == b'A' { b'B' } else { b'A' };
    String::from_utf8(bytes).expect("ASCII")
}

/// A well-formed key (valid checksum) that no store holds.
fn unknown_key(gate: &Keygate) -> String {
    let format = gate.format();
    let prefix = format.prefix("sk_live_").expect("default format");
    format
        .generate(prefix)
        .expect("the prefix generates keys")
        .expose_secret()
        .to_owned()
}

fn verify(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    // The store lookup on a miss sets a tokio timeout, which needs a runtime context.
    let _guard = rt.enter();
    let Setup { gate, key, digest } = setup(&rt);
    let layer = gate.layer().require_any([SCOPE]);

    let mut group = c.benchmark_group("verify");

    let mut bare = inner();
    group.bench_function("bare", |b| {
        b.iter_batched(
            || request(&key),
            |req| now(bare.call(req)).expect("infallible"),
            BatchSize::SmallInput,
        )
    });

    // The same header value is the static token, so the request is byte for byte the
    // same as in every other case.
    #[allow(deprecated)]
    let mut bearer = tower::ServiceBuilder::new()
        .layer(tower_http::validate_request::ValidateRequestHeaderLayer::bearer(&key))
        .service(inner());
    group.bench_function("tower_http_bearer", |b| {
        b.iter_batched(
            || request(&key),
            |req| {
                let res = now(bearer.call(req)).expect("infallible");
                debug_assert_eq!(res.status(), 200);
                res
            },
            BatchSize::SmallInput,
        )
    });

    let mut keygate = tower::Layer::layer(&layer, inner());
    let res = now(keygate.call(request(&key))).expect("infallible");
    assert_eq!(res.status(), 200, "the bench key must be accepted");
    group.bench_function("keygate_hot", |b| {
        b.iter_batched(
            || request(&key),
            |req| {
                let res = now(keygate.call(req)).expect("infallible");
                debug_assert_eq!(res.status(), 200);
                res
            },
            BatchSize::SmallInput,
        )
    });

    // A miss reaches the store once.
    let lookups = gate.stats().store_lookups;
    gate.invalidate_digest(&digest);
    assert_eq!(now(keygate.call(request(&key))).unwrap().status(), 200);
    assert_eq!(
        gate.stats().store_lookups,
        lookups + 1,
        "a miss must reach the store"
    );
    // The invalidation must happen before each request, so setup runs per iteration;
    // its cost (and the timer's) stays outside the measurement.
    group.bench_function("keygate_miss", |b| {
        b.iter_batched(
            || {
                gate.invalidate_digest(&digest);
                request(&key)
            },
            |req| {
                let res = now(keygate.call(req)).expect("infallible");
                debug_assert_eq!(res.status(), 200);
                res
            },
            BatchSize::PerIteration,
        )
    });

    let bad = with_bad_checksum(&key);
    assert_eq!(now(keygate.call(request(&bad))).unwrap().status(), 401);
    group.bench_function("keygate_bad_checksum", |b| {
        b.iter_batched(
            || request(&bad),
            |req| now(keygate.call(req)).expect("infallible"),
            BatchSize::SmallInput,
        )
    });

    let unknown = unknown_key(&gate);
    // Warm the negative cache entry; after that the store is not asked again.
    assert_eq!(now(keygate.call(request(&unknown))).unwrap().status(), 401);
    let lookups = gate.stats().store_lookups;
    assert_eq!(now(keygate.call(request(&unknown))).unwrap().status(), 401);
    assert_eq!(
        gate.stats().store_lookups,
        lookups,
        "the unknown key must be cached"
    );
    group.bench_function("keygate_unknown_key", |b| {
        b.iter_batched(
            || request(&unknown),
            |req| now(keygate.call(req)).expect("infallible"),
            BatchSize::SmallInput,
        )
    });

    group.finish();
}

criterion_group!(benches, verify);
criterion_main!(benches);
