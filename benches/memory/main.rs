//! Heap use, measured with a counting global allocator.
//!
//! ```text
//! cargo bench --bench memory
//! ```
//!
//! Prints:
//! - (a) heap bytes per cached active key, limiter state included;
//! - (b) heap growth after a flood of random junk keys, and the store calls it caused;
//! - (c) heap growth after a flood of well-formed but unknown keys (bounded by the
//!   negative cache's capacity, `CacheConfig::max_negative_entries`);
//! - (d) heap allocations per request on the cache-hit path, and their sizes.
//!
//! Bytes are the sizes requested from the allocator (no allocator overhead). The flood
//! size defaults to 1,000,000 and can be set with `KEYGATE_FLOOD=<n>`. Time comes from a
//! manual clock that never moves, so no limiter state ages out during the run.

mod allocator;
mod deployment;

use allocator::*;
use deployment::*;

use std::future::Future;
use std::pin::pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use http::StatusCode;
use keygate::gate::CacheConfig;
use keygate::ratelimit::RateLimitConfig;
use keygate::{Environment, Keygate, MemoryStore, NewKey};
use tower::Service;

fn now<F: Future>(fut: F) -> F::Output {
    let mut fut = pin!(fut);
    let mut cx = Context::from_waker(futures_util::task::noop_waker_ref());
    match fut.as_mut().poll(&mut cx) {
        Poll::Ready(out) => out,
        Poll::Pending => panic!("the measured future was not ready at once"),
    }
}

fn per_key(keys_n: usize) {
    let d = deployment();
    let _guard = d.rt.enter();
    let keys = create_keys(&d, keys_n + 1);
    let mut svc = tower::Layer::layer(&d.gate.layer().require_any([SCOPE]), inner());
    // The first key warms one-time structures (the limiter tier, moka's internals).
    assert_eq!(now(svc.call(request(&keys[0]))).unwrap().status(), 200);
    settle(&d);
    let before = live();
    for key in &keys[1..] {
        // The request is built and dropped within the loop, so it adds nothing.
        assert_eq!(
            now(svc.call(request(key))).unwrap().status(),
            StatusCode::OK
        );
    }
    settle(&d);
    let after = live();
    let stats = d.gate.stats();
    println!(
        "(a) cached active keys: {keys_n} keys authenticated once each: heap +{} = {} bytes per key \
         (cache entries {}, rate-limit buckets {})",
        mib(after - before),
        (after - before) / keys_n as isize,
        stats.cached_entries,
        stats.rate_limit_buckets,
    );
}

fn junk_flood(n: usize) {
    let d = deployment();
    let _guard = d.rt.enter();
    let keys = create_keys(&d, 1);
    let mut svc = tower::Layer::layer(&d.gate.layer().require_any([SCOPE]), inner());
    assert_eq!(now(svc.call(request(&keys[0]))).unwrap().status(), 200);
    let mut junk = Junk(0x9e37_79b9_7f4a_7c15);
    let mut token = String::with_capacity(128);
    // Warm the refusal paths.
    for _ in 0..1000 {
        junk.token(&mut token);
        let _ = now(svc.call(request(&token)));
    }
    settle(&d);
    let stats_before = d.gate.stats();
    let before = live();
    reset_peak();
    let started = Instant::now();
    for _ in 0..n {
        junk.token(&mut token);
        let status = now(svc.call(request(&token))).unwrap().status();
        assert!(status == 401 || status == 400, "junk was accepted");
    }
    let elapsed = started.elapsed();
    settle(&d);
    let after = live();
    let stats = d.gate.stats();
    println!(
        "(b) {n} junk keys: heap growth {} bytes, peak +{} bytes during the flood, store calls {}, \
         keys cached {} -> {}, unknown keys cached {} -> {} ({:.0} requests/s)",
        after - before,
        peak() - before,
        stats.store_lookups - stats_before.store_lookups,
        stats_before.cached_entries,
        stats.cached_entries,
        stats_before.cached_unknown,
        stats.cached_unknown,
        n as f64 / elapsed.as_secs_f64(),
    );
}

fn unknown_flood(n: usize) {
    let d = deployment();
    let _guard = d.rt.enter();
    let keys = create_keys(&d, 1);
    let mut svc = tower::Layer::layer(&d.gate.layer().require_any([SCOPE]), inner());
    assert_eq!(now(svc.call(request(&keys[0]))).unwrap().status(), 200);
    let format = d.gate.format().clone();
    let prefix = format.prefix("sk_live_").expect("default format").clone();
    let capacity = CacheConfig::default().max_negative_entries;
    let unknown = |svc: &mut keygate::layer::KeygateService<_>| {
        let key = format.generate(&prefix).expect("the prefix generates keys");
        let status = now(svc.call(request(key.expose_secret())))
            .unwrap()
            .status();
        assert_eq!(status, 401, "an unknown key was accepted");
    };
    for _ in 0..1000 {
        unknown(&mut svc);
    }
    settle(&d);
    let stats_before = d.gate.stats();
    let before = live();
    reset_peak();
    let started = Instant::now();
    let checkpoints = 4;
    for part in 1..=checkpoints {
        for _ in 0..n / checkpoints {
            unknown(&mut svc);
        }
        settle(&d);
        println!(
            "    after {:>9} unknown keys: heap +{}, unknown keys cached {}",
            part * (n / checkpoints),
            mib(live() - before),
            d.gate.stats().cached_unknown,
        );
    }
    let elapsed = started.elapsed();
    let after = live();
    let stats = d.gate.stats();
    println!(
        "(c) {n} well-formed unknown keys: heap growth {} (peak +{}) = {} bytes per cached unknown \
         key; negative cache capacity {capacity}, unknown keys cached {} -> {}, keys cached {} -> {}, \
         store calls {} ({:.0} requests/s)",
        mib(after - before),
        mib(peak() - before),
        (after - before) / (stats.cached_unknown.max(1) as isize - stats_before.cached_unknown as isize).max(1),
        stats_before.cached_unknown,
        stats.cached_unknown,
        stats_before.cached_entries,
        stats.cached_entries,
        stats.store_lookups - stats_before.store_lookups,
        n as f64 / elapsed.as_secs_f64(),
    );
}

/// Allocation calls (and their sizes) made while `f` runs.
fn allocations<T>(f: impl FnOnce() -> T) -> (usize, Vec<usize>, T) {
    RECORDED_LEN.store(0, Ordering::Relaxed);
    let calls = CALLS.load(Ordering::Relaxed);
    RECORDING.store(true, Ordering::Relaxed);
    let out = f();
    RECORDING.store(false, Ordering::Relaxed);
    let made = CALLS.load(Ordering::Relaxed) - calls;
    let len = RECORDED_LEN.load(Ordering::Relaxed).min(RECORDED.len());
    let sizes = RECORDED[..len]
        .iter()
        .map(|s| s.load(Ordering::Relaxed))
        .collect();
    (made, sizes, out)
}

fn hot_path_allocations() {
    let with_limits = deployment();
    let _guard = with_limits.rt.enter();
    let key = create_keys(&with_limits, 1).remove(0);
    let mut keygate = tower::Layer::layer(&with_limits.gate.layer().require_any([SCOPE]), inner());
    let mut bare = inner();
    for _ in 0..10 {
        assert_eq!(now(keygate.call(request(&key))).unwrap().status(), 200);
    }
    settle(&with_limits);

    // The same deployment with rate limiting off, to tell the limiter's share apart.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let store = Arc::new(MemoryStore::new());
    let (unlimited, manager) = Keygate::managed(store)
        .rate_limits(RateLimitConfig::disabled())
        .build();
    let unlimited_key = rt
        .block_on(
            manager.create(
                "acct".into(),
                NewKey::named("k")
                    .scopes([SCOPE])
                    .ips(["127.0.0.0/8"])
                    .environment(Environment::Live),
            ),
        )
        .expect("created")
        .key
        .expose_secret()
        .to_owned();
    let mut keygate_unlimited =
        tower::Layer::layer(&unlimited.layer().require_any([SCOPE]), inner());
    for _ in 0..10 {
        assert_eq!(
            now(keygate_unlimited.call(request(&unlimited_key)))
                .unwrap()
                .status(),
            200
        );
    }

    let cases: [(&str, &mut dyn FnMut() -> StatusCode); 3] = [
        ("bare inner service", &mut || {
            let req = request(&key);
            let (n, sizes, res) = allocations(|| now(bare.call(req)).unwrap());
            report(n, &sizes);
            res.status()
        }),
        ("keygate hot, rate limit on", &mut || {
            let req = request(&key);
            let (n, sizes, res) = allocations(|| now(keygate.call(req)).unwrap());
            report(n, &sizes);
            res.status()
        }),
        ("keygate hot, rate limit off", &mut || {
            let req = request(&unlimited_key);
            let (n, sizes, res) = allocations(|| now(keygate_unlimited.call(req)).unwrap());
            report(n, &sizes);
            res.status()
        }),
    ];
    fn report(n: usize, sizes: &[usize]) {
        print!("{n} allocation calls, sizes {sizes:?}");
    }
    println!("(d) allocations per request (request built beforehand; response dropped after):");
    for (name, case) in cases {
        print!("    {name}: ");
        let status = case();
        println!(" -> {status}");
    }
    // Opaque values, so that the compiler cannot fold the header values away.
    let status = std::hint::black_box(keygate::ratelimit::RateLimitStatus::new(
        keygate::store::RateLimit::DEFAULT,
        1999,
        1_700_000_001,
        1,
    ));
    let mut headers = http::HeaderMap::new();
    let (n, sizes, ()) = allocations(|| status.write_headers(&mut headers, false));
    println!(
        "    of which RateLimitStatus::write_headers into an empty response HeaderMap: \
         {n} allocation calls, sizes {sizes:?}"
    );
    let mut headers = http::HeaderMap::new();
    headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    let (n, sizes, ()) = allocations(|| status.write_headers(&mut headers, false));
    println!(
        "    RateLimitStatus::write_headers into a HeaderMap that already holds content-type: \
         {n} allocation calls, sizes {sizes:?}"
    );
}

fn main() {
    // `cargo bench` passes `--bench`. Without it (`cargo test --all-targets`), run a
    // small smoke version so that CI checks the assertions without the floods.
    let full = std::env::args().any(|a| a == "--bench");
    let flood = std::env::var("KEYGATE_FLOOD")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if full { 1_000_000 } else { 20_000 });
    hot_path_allocations();
    per_key(if full { 10_000 } else { 100 });
    junk_flood(flood);
    unknown_flood(flood);
}
