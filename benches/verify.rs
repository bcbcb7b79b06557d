//! The end-to-end cost of one request through keygate, side by side with no middleware
//! and with the cheapest possible bearer check.
//!
//! ```text
//! cargo bench --bench verify
//! ```
//!
//! Every case sends the same request (`GET /v1/whoami`, `Authorization: Bearer <key>`,
//! a `PeerAddr` extension) through the same trivial inner service, except the `*_json`
//! cases, whose inner service answers like a JSON handler (`content-type`,
//! `content-length`). `floor` is a hand-written stack that does exactly the work of
//! `keygate_hot` with the cheapest code (see `support/floor.rs`). The response future
//! of each stack is ready at once (the store is in memory), so it is polled directly with
//! a no-op waker inside a current-thread tokio runtime's context: the figures are the
//! layer's, not a scheduler's. Requests are built outside the timed section
//! (`iter_batched`); their drop is inside it, the same for every case.
//!
//! `floor` and `keygate_hot` are measured in interleaved pairs (`support/pairs.rs`):
//! each sample of one also times the other in alternating chunks of 64 requests, and the group ends by
//! printing the median of the pairs' hot/floor ratios (also written to
//! `target/criterion/verify/hot_over_floor.txt`). Their own estimates are criterion's as
//! usual; for those two ids the responses are dropped outside the timed loop.

mod support;

use support::floor::FloorService;
use support::pairs::{timed_pair, Pairs};
use support::{
    floor_for, inner, inner_json, now, request, setup, unknown_key, with_bad_checksum, Setup, SCOPE,
};

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use tower::Service;

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

    let mut floor = FloorService::new(floor_for(&key), inner());
    assert_eq!(now(floor.call(request(&key))).unwrap().status(), 200);
    let mut keygate = tower::Layer::layer(&layer, inner());
    let res = now(keygate.call(request(&key))).expect("infallible");
    assert_eq!(res.status(), 200, "the bench key must be accepted");

    // Interleaved: every sample of either id times the other on as many requests, in
    // alternating chunks.
    let pairs = Pairs::default();
    {
        let mut floor_1 = |req| now(floor.call(req)).expect("infallible");
        let mut hot_1 = |req| now(keygate.call(req)).expect("infallible");
        let mut make = || request(&key);
        group.bench_function("floor", |b| {
            b.iter_custom(|iters| {
                let (f, h) = timed_pair(iters, &mut make, &mut floor_1, &mut hot_1);
                pairs.push(f, h);
                f
            })
        });
        group.bench_function("keygate_hot", |b| {
            b.iter_custom(|iters| {
                let (h, f) = timed_pair(iters, &mut make, &mut hot_1, &mut floor_1);
                pairs.push(f, h);
                h
            })
        });
    }
    if let Some(summary) = pairs.summary() {
        println!("verify (interleaved floor/keygate_hot pairs): {summary}");
        let dir = std::path::Path::new("target/criterion/verify");
        if std::fs::create_dir_all(dir).is_ok() {
            let _ = std::fs::write(dir.join("hot_over_floor.txt"), format!("{summary}\n"));
        }
    }

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

    let mut bare_json = inner_json();
    group.bench_function("bare_json", |b| {
        b.iter_batched(
            || request(&key),
            |req| now(bare_json.call(req)).expect("infallible"),
            BatchSize::SmallInput,
        )
    });

    let mut keygate_json = tower::Layer::layer(&layer, inner_json());
    assert_eq!(now(keygate_json.call(request(&key))).unwrap().status(), 200);
    group.bench_function("keygate_hot_json", |b| {
        b.iter_batched(
            || request(&key),
            |req| {
                let res = now(keygate_json.call(req)).expect("infallible");
                debug_assert_eq!(res.status(), 200);
                res
            },
            BatchSize::SmallInput,
        )
    });

    group.finish();
}

criterion_group!(benches, verify);
criterion_main!(benches);
