//! The cache-hit path with rate limits shared through Redis, side by side with the
//! in-memory limiter, in the same run.
//!
//! ```text
//! cargo bench --bench shared_limits
//! ```
//!
//! Needs a Redis at `KEYGATE_BENCH_REDIS_URL` (default `redis://127.0.0.1:6379`). Both
//! cases send the same request through the same layer configuration (the request of
//! `benches/verify.rs`); only where the buckets live differs. The quota refills at a
//! billion tokens per second, so the in-memory case is never refused. The Redis limiter
//! leases a quarter of the burst at a time: its refills run on a separate two-thread
//! runtime, while the measured future is polled directly on the bench thread, as in
//! `verify.rs`. A loop this tight (one key, a million requests a second on one
//! thread) can outrun a refill on a loaded machine, so both cases run in batches of
//! 200 requests and pause for 300 µs between batches, outside the timed section,
//! which lets refills land. The run ends
//! by printing the limiter's counters, and fails if more than 1% of the requests were
//! refused for want of a lease.

mod support;

use support::{inner, now, request};

use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use http::Request;
use keygate::gate::CacheConfig;
use keygate::gate::Managed;
use keygate::manage::ManagerConfig;
use keygate::ratelimit::{RateLimitConfig, RedisLimiter, RedisLimiterConfig};
use keygate::store::PgStore;
use keygate::store::RateLimit;
use keygate::{Environment, Keygate, KeygateBuilder, MemoryStore, NewKey};
use tower::Service;

const QUOTA: RateLimit = RateLimit::new(1_000_000_000, 4_000);
const SCOPE: &str = "charges:read";

/// A gate over an in-memory store with one key, configured by `shared`.
fn gate(
    rt: &tokio::runtime::Runtime,
    shared: impl FnOnce(KeygateBuilder<Managed>) -> KeygateBuilder<Managed>,
) -> (Keygate, String) {
    gate_over(rt, Arc::new(MemoryStore::new()), shared)
}

/// A gate over `store` with one key, configured by `shared`; returns it and the key.
fn gate_over<S: keygate::KeyStoreWrite>(
    rt: &tokio::runtime::Runtime,
    store: S,
    shared: impl FnOnce(KeygateBuilder<Managed>) -> KeygateBuilder<Managed>,
) -> (Keygate, String) {
    let builder = Keygate::managed(store)
        .cache(CacheConfig::default().positive_ttl(Duration::from_secs(3600)))
        .rate_limits(RateLimitConfig::default().default_quota(Some(QUOTA)))
        .manager_config(ManagerConfig::default().max_active_keys(None));
    let (gate, manager) = shared(builder).build();
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
    (gate, created.key.expose_secret().to_owned())
}

/// Requests per timed batch.
const BATCH: u32 = 200;

/// A request, after a pause at the start of each batch that lets refills land.
fn paced(token: &str, calls: &mut u32) -> Request<()> {
    *calls += 1;
    if calls.is_multiple_of(BATCH) {
        std::thread::sleep(Duration::from_micros(300));
    }
    request(token)
}

fn shared_limits(c: &mut Criterion) {
    let url = std::env::var("KEYGATE_BENCH_REDIS_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let _guard = rt.enter();
    let refills = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let prefix = format!("keygate-bench:{}", std::process::id());
    let limiter = {
        let _in_refills = refills.enter();
        RedisLimiter::new(
            &url,
            RedisLimiterConfig::default()
                .key_prefix(prefix)
                .lease_size(QUOTA.burst / 4),
        )
        .expect("a valid Redis URL")
    };

    let (memory_gate, memory_key) = gate(&rt, |b| b);
    let (redis_gate, redis_key) = gate(&rt, |b| b.shared_rate_limits(limiter.clone()));
    let mut memory = tower::Layer::layer(&memory_gate.layer().require_any([SCOPE]), inner());
    let mut redis = tower::Layer::layer(&redis_gate.layer().require_any([SCOPE]), inner());
    // The production shape: PgStore and the Redis limiter together.
    let database = std::env::var("KEYGATE_BENCH_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    let schema = format!("kgt_bench_{}", std::process::id());
    let store = PgStore::builder(&database)
        .and_then(|b| b.schema(schema.clone()).build())
        .expect("a valid database URL");
    rt.block_on(store.migrate())
        .expect("PostgreSQL answers: start one or set KEYGATE_BENCH_DATABASE_URL");
    let (pg_gate, pg_key) = gate_over(&rt, store, |b| b.shared_rate_limits(limiter.clone()));
    let pg_digest = pg_gate.hasher().digest(&pg_key);
    let mut pg = tower::Layer::layer(&pg_gate.layer().require_any([SCOPE]), inner());
    assert_eq!(
        rt.block_on(pg.call(request(&pg_key))).unwrap().status(),
        200
    );

    // Warm both: the cache entry, and the first lease from Redis.
    assert_eq!(
        now(memory.call(request(&memory_key))).unwrap().status(),
        200
    );
    assert_eq!(now(redis.call(request(&redis_key))).unwrap().status(), 200);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while limiter.stats().refills == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "no answer from the Redis at {url}: start one or set KEYGATE_BENCH_REDIS_URL"
        );
        std::thread::sleep(Duration::from_millis(5));
    }

    let mut group = c.benchmark_group("shared_limits");
    let mut calls = 0;
    group.bench_function("memory_limiter_hot", |b| {
        b.iter_batched(
            || paced(&memory_key, &mut calls),
            |req| {
                let res = now(memory.call(req)).expect("infallible");
                debug_assert_eq!(res.status(), 200);
                res
            },
            BatchSize::NumIterations(u64::from(BATCH)),
        )
    });
    group.bench_function("redis_limiter_hot", |b| {
        b.iter_batched(
            || paced(&redis_key, &mut calls),
            |req| {
                let res = now(redis.call(req)).expect("infallible");
                debug_assert_eq!(res.status(), 200);
                res
            },
            BatchSize::NumIterations(u64::from(BATCH)),
        )
    });
    group.bench_function("pg_redis_hot", |b| {
        b.iter_batched(
            || paced(&pg_key, &mut calls),
            |req| {
                let res = now(pg.call(req)).expect("infallible");
                debug_assert_eq!(res.status(), 200);
                res
            },
            BatchSize::NumIterations(u64::from(BATCH)),
        )
    });
    // A miss: one lookup by digest in PostgreSQL per request.
    group.bench_function("pg_miss", |b| {
        b.iter_batched(
            || {
                pg_gate.invalidate_digest(&pg_digest);
                request(&pg_key)
            },
            |req| {
                let res = rt.block_on(pg.call(req)).expect("infallible");
                debug_assert_eq!(res.status(), 200);
                res
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
    let _ = rt.block_on(async {
        let (client, conn) = tokio_postgres::connect(&database, tokio_postgres::NoTls).await?;
        tokio::spawn(conn);
        client
            .batch_execute(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
            .await
    });

    let stats = limiter.stats();
    eprintln!("redis limiter after the run: {stats:?}");
    assert!(
        stats.pending_refusals * 100 < stats.tokens_leased,
        "more than 1% of the requests outran the lease"
    );
    assert_eq!(stats.redis_errors, 0);
}

criterion_group!(benches, shared_limits);
criterion_main!(benches);
