//! Where the nanoseconds of one request go: each step of the check on its own.
//!
//! ```text
//! cargo bench --bench components
//! ```
//!
//! Groups:
//! - `key`: format, prefix and CRC32 checksum check ([`KeyFormat::parse`]);
//! - `hash`: SHA-256 and peppered HMAC-SHA-256 of a key ([`KeyHasher::digest`]);
//! - `header`: finding the one `Authorization` header and parsing `Bearer <token>`;
//! - `cache`: a moka hit configured as keygate's cache (same key, value, hasher and
//!   capacity), and [`Keygate::verify_key`] on a cached key (parse + hash + cache + status);
//! - `scope`: [`ScopeRequirement::is_met_by`] on scopes expanded by [`ScopeImplications`];
//! - `ip`: [`IpAllowlist::allows`];
//! - `limiter`: the rate-limit response headers (the limiter itself, one
//!   compare-and-swap on the key's own cell, is in `layer/full` against `layer/no_limiter`);
//! - `extensions`: inserting one `Arc` into a request's extensions, the cost of attaching
//!   the identity;
//! - `layer`: the whole hot path with one feature at a time switched off, so that the
//!   difference to `layer/full` is that feature's share.

use std::convert::Infallible;
use std::future::Future;
use std::hint::black_box;
use std::net::{IpAddr, SocketAddr};
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use http::header::AUTHORIZATION;
use http::{HeaderMap, Request, Response};
use http_body_util::Full;
use keygate::key::DigestHasher;
use keygate::ratelimit::RateLimitStatus;
use keygate::{
    CacheConfig, Environment, IpAllowlist, KeyDigest, KeyFormat, KeyHasher, Keygate, ManagerConfig,
    MemoryStore, NewKey, PeerAddr, RateLimit, RateLimitConfig, ScopeImplications, ScopeRequirement,
    ScopeSet,
};
use tower::Service;

const HUGE_QUOTA: RateLimit = RateLimit::new(1_000_000_000, 4_000);
const SCOPE: &str = "charges:read";

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

fn now<F: Future>(fut: F) -> F::Output {
    let mut fut = pin!(fut);
    let mut cx = Context::from_waker(futures_util::task::noop_waker_ref());
    match fut.as_mut().poll(&mut cx) {
        Poll::Ready(out) => out,
        Poll::Pending => panic!("the benchmarked future was not ready at once"),
    }
}

fn a_key() -> String {
    let format = KeyFormat::default();
    let prefix = format.prefix("sk_live_").expect("default format");
    format
        .generate(prefix)
        .expect("the prefix generates keys")
        .expose_secret()
        .to_owned()
}

fn key_parsing(c: &mut Criterion) {
    let format = KeyFormat::default();
    let key = a_key();
    let mut bad = key.clone().into_bytes();
    let last = bad.last_mut().expect("not empty");
    *last = if *last == b'A' { b'B' } else { b'A' };
    let bad = String::from_utf8(bad).expect("ASCII");
    let mut g = c.benchmark_group("key");
    g.bench_function("parse_valid", |b| {
        b.iter(|| format.parse(black_box(&key)).is_ok())
    });
    g.bench_function("parse_bad_checksum", |b| {
        b.iter(|| format.parse(black_box(&bad)).is_err())
    });
    g.bench_function("parse_unknown_prefix", |b| {
        b.iter(|| format.parse(black_box("xx_0123456789")).is_err())
    });
    g.finish();
}

fn hashing(c: &mut Criterion) {
    let key = a_key();
    let plain = KeyHasher::sha256();
    let peppered = KeyHasher::with_pepper(b"a server-side pepper of 32 bytes");
    let mut g = c.benchmark_group("hash");
    g.bench_function("sha256", |b| b.iter(|| plain.digest(black_box(&key))));
    g.bench_function("hmac_sha256_peppered", |b| {
        b.iter(|| peppered.digest(black_box(&key)))
    });
    g.finish();
}

fn header_parsing(c: &mut Criterion) {
    let key = a_key();
    let mut headers = HeaderMap::new();
    headers.insert(
        AUTHORIZATION,
        format!("Bearer {key}").parse().expect("valid header"),
    );
    headers.insert("accept", "application/json".parse().expect("valid header"));
    headers.insert("user-agent", "bench/1".parse().expect("valid header"));
    let mut g = c.benchmark_group("header");
    // What the layer does: the only Authorization value, as text, then the scheme and
    // the token68 check.
    g.bench_function("bearer_extract", |b| {
        b.iter(|| {
            let headers = black_box(&headers);
            let mut values = headers.get_all(AUTHORIZATION).iter();
            let first = values.next().expect("present");
            assert!(values.next().is_none());
            let text = first.to_str().expect("ASCII");
            keygate::verify::parse_bearer(text).expect("valid").len()
        })
    });
    g.finish();
}

fn cache_lookup(c: &mut Criterion) {
    // keygate's cache: moka's sync cache keyed by digest with the pass-through hasher,
    // values `Arc<_>`, a per-entry expiry, the default capacity.
    struct Ttl;
    impl moka::Expiry<KeyDigest, Arc<[u8; 256]>> for Ttl {
        fn expire_after_create(
            &self,
            _: &KeyDigest,
            _: &Arc<[u8; 256]>,
            _: std::time::Instant,
        ) -> Option<Duration> {
            Some(Duration::from_secs(30))
        }
    }
    let cache: moka::sync::Cache<KeyDigest, Arc<[u8; 256]>, DigestHasher> =
        moka::sync::Cache::builder()
            .max_capacity(CacheConfig::default().max_entries)
            .expire_after(Ttl)
            .build_with_hasher(DigestHasher);
    let hasher = KeyHasher::sha256();
    let digests: Vec<KeyDigest> = (0..10_000)
        .map(|i| hasher.digest(&format!("key {i}")))
        .collect();
    for d in &digests {
        cache.insert(*d, Arc::new([0; 256]));
    }
    cache.run_pending_tasks();
    let hit = digests[4_321];
    let miss = hasher.digest("not cached");

    let rt = runtime();
    let _guard = rt.enter();
    let (gate, key) = deployment(&rt, Deployment::FULL);
    assert!(now(gate.verify_key(&key)).is_ok());

    let mut g = c.benchmark_group("cache");
    g.bench_function("moka_hit", |b| {
        b.iter(|| cache.get(black_box(&hit)).is_some())
    });
    g.bench_function("moka_miss", |b| {
        b.iter(|| cache.get(black_box(&miss)).is_none())
    });
    g.bench_function("verify_key_cached", |b| {
        b.iter(|| now(gate.verify_key(black_box(&key))).is_ok())
    });
    g.finish();
}

fn scope_check(c: &mut Criterion) {
    let rules = ScopeImplications::new()
        .grants_all("admin")
        .write_implies_read();
    let one = rules.expand(&ScopeSet::parse([SCOPE]).expect("valid"));
    let many = rules.expand(
        &ScopeSet::parse([
            "a:write", "b:write", "c:write", "d:write", "e:write", "f:write", "g:write", "h:write",
        ])
        .expect("valid"),
    );
    let admin = rules.expand(&ScopeSet::parse(["admin"]).expect("valid"));
    let require = ScopeRequirement::any_of([SCOPE]);
    let require_all = ScopeRequirement::all_of(["a:read", "e:write", "h:read"]);
    let mut g = c.benchmark_group("scope");
    g.bench_function("any_of_one_granted", |b| {
        b.iter(|| black_box(&require).is_met_by(black_box(&one)))
    });
    g.bench_function("all_of_three_in_sixteen", |b| {
        b.iter(|| black_box(&require_all).is_met_by(black_box(&many)))
    });
    g.bench_function("admin_grants_all", |b| {
        b.iter(|| black_box(&require).is_met_by(black_box(&admin)))
    });
    g.finish();
}

fn ip_check(c: &mut Criterion) {
    let one = IpAllowlist::parse(["127.0.0.0/8"]).expect("valid");
    let ten = IpAllowlist::parse([
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "2001:db8::/32",
        "203.0.113.7",
        "198.51.100.0/24",
        "fd00::/8",
        "100.64.0.0/10",
        "169.254.0.0/16",
        "127.0.0.0/8",
    ])
    .expect("valid");
    let v4: IpAddr = "127.0.0.1".parse().expect("valid");
    let mapped: IpAddr = "::ffff:127.0.0.1".parse().expect("valid");
    let mut g = c.benchmark_group("ip");
    g.bench_function("v4_one_cidr", |b| {
        b.iter(|| black_box(&one).allows(black_box(v4)))
    });
    g.bench_function("v4_last_of_ten", |b| {
        b.iter(|| black_box(&ten).allows(black_box(v4)))
    });
    g.bench_function("v4_mapped_v6_one_cidr", |b| {
        b.iter(|| black_box(&one).allows(black_box(mapped)))
    });
    g.finish();
}

fn limiter_check(c: &mut Criterion) {
    let status = RateLimitStatus::new(RateLimit::TENUO_DEFAULT, 1999, 1_700_000_001, 1);
    let mut g = c.benchmark_group("limiter");
    g.bench_function("write_headers_legacy", |b| {
        b.iter_batched(
            HeaderMap::new,
            |mut headers| {
                status.write_headers(&mut headers, false);
                headers
            },
            BatchSize::SmallInput,
        )
    });
    g.bench_function("write_headers_legacy_and_ietf", |b| {
        b.iter_batched(
            HeaderMap::new,
            |mut headers| {
                status.write_headers(&mut headers, true);
                headers
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

fn extensions(c: &mut Criterion) {
    #[derive(Clone)]
    struct Attached(#[allow(dead_code)] Arc<u64>);
    let value = Arc::new(7u64);
    let peer: SocketAddr = "127.0.0.1:40000".parse().expect("valid");
    let mut g = c.benchmark_group("extensions");
    g.bench_function("insert_arc_into_existing_map", |b| {
        b.iter_batched(
            || {
                let mut ext = http::Extensions::new();
                ext.insert(PeerAddr(peer));
                ext
            },
            |mut ext| {
                ext.insert(Attached(value.clone()));
                ext
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

/// Which features a [`deployment`] switches on.
#[derive(Clone, Copy)]
struct Deployment {
    manager: bool,
    ip: bool,
    scope: bool,
    limit: bool,
}

impl Deployment {
    const FULL: Self = Self {
        manager: true,
        ip: true,
        scope: true,
        limit: true,
    };
}

/// A gate and one valid key, configured as `features` says.
fn deployment(rt: &tokio::runtime::Runtime, features: Deployment) -> (Keygate, String) {
    let store = Arc::new(MemoryStore::new());
    let limits = if features.limit {
        RateLimitConfig::default().default_quota(Some(HUGE_QUOTA))
    } else {
        RateLimitConfig::disabled()
    };
    let cache = CacheConfig::default().positive_ttl(Duration::from_secs(3600));
    // Keys are created through a manager (the only public way); a separate, read-only
    // gate over the same store keeps last-used tracking off the measured one unless
    // asked for.
    let (managed_gate, manager) = Keygate::managed(store.clone())
        .cache(cache.clone())
        .rate_limits(limits.clone())
        .manager_config(ManagerConfig::default().max_active_keys(None))
        .build();
    let gate = if features.manager {
        managed_gate
    } else {
        Keygate::builder(store.clone())
            .cache(cache)
            .rate_limits(limits)
            .build()
    };
    let mut new = NewKey::named("bench key")
        .scopes([SCOPE])
        .environment(Environment::Live);
    if features.ip {
        new = new.ips(["127.0.0.0/8"]);
    }
    let created = rt
        .block_on(manager.create("acct_bench".into(), new))
        .expect("the bench key can be created");
    (gate, created.key.expose_secret().to_owned())
}

fn layer_variants(c: &mut Criterion) {
    let rt = runtime();
    let _guard = rt.enter();
    let inner = tower::service_fn(|_req: Request<()>| async {
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"ok"))))
    });
    let peer: SocketAddr = "127.0.0.1:40000".parse().expect("valid");
    let variants = [
        ("full", Deployment::FULL),
        (
            "no_limiter",
            Deployment {
                limit: false,
                ..Deployment::FULL
            },
        ),
        (
            "no_ip_allowlist",
            Deployment {
                ip: false,
                ..Deployment::FULL
            },
        ),
        (
            "no_scope_requirement",
            Deployment {
                scope: false,
                ..Deployment::FULL
            },
        ),
        (
            "no_last_used_tracking",
            Deployment {
                manager: false,
                ..Deployment::FULL
            },
        ),
        (
            "minimal",
            Deployment {
                manager: false,
                ip: false,
                scope: false,
                limit: false,
            },
        ),
    ];
    let mut g = c.benchmark_group("layer");
    for (name, features) in variants {
        let (gate, key) = deployment(&rt, features);
        let layer = if features.scope {
            gate.layer().require_any([SCOPE])
        } else {
            gate.layer()
        };
        let mut svc = tower::Layer::layer(&layer, inner);
        let request = || {
            Request::builder()
                .uri("/v1/whoami")
                .header(AUTHORIZATION, format!("Bearer {key}"))
                .extension(PeerAddr(peer))
                .body(())
                .expect("valid request")
        };
        assert_eq!(now(svc.call(request())).expect("infallible").status(), 200);
        g.bench_function(name, |b| {
            b.iter_batched(
                request,
                |req| now(svc.call(req)).expect("infallible"),
                BatchSize::SmallInput,
            )
        });
    }
    g.finish();
}

criterion_group!(
    benches,
    key_parsing,
    hashing,
    header_parsing,
    cache_lookup,
    scope_check,
    ip_check,
    limiter_check,
    extensions,
    layer_variants
);
criterion_main!(benches);
