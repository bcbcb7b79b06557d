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

use std::alloc::{GlobalAlloc, Layout, System};
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicIsize, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant, UNIX_EPOCH};

use bytes::Bytes;
use http::header::AUTHORIZATION;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use keygate::{
    CacheConfig, Clock, Environment, KeyManager, Keygate, ManagerConfig, MemoryStore, NewKey,
    PeerAddr, RateLimitConfig,
};
use tower::Service;

/// Counts live bytes, allocation calls and the high-water mark, and can record the sizes
/// of the allocations made while [`RECORDING`] is set.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);
static PEAK: AtomicIsize = AtomicIsize::new(0);
static CALLS: AtomicUsize = AtomicUsize::new(0);
static RECORDING: AtomicBool = AtomicBool::new(false);
static RECORDED: [AtomicUsize; 32] = [const { AtomicUsize::new(0) }; 32];
static RECORDED_LEN: AtomicUsize = AtomicUsize::new(0);

impl Counting {
    fn grew(size: usize) {
        CALLS.fetch_add(1, Ordering::Relaxed);
        let live = LIVE.fetch_add(size as isize, Ordering::Relaxed) + size as isize;
        PEAK.fetch_max(live, Ordering::Relaxed);
        if RECORDING.load(Ordering::Relaxed) {
            let i = RECORDED_LEN.fetch_add(1, Ordering::Relaxed);
            if let Some(slot) = RECORDED.get(i) {
                slot.store(size, Ordering::Relaxed);
            }
        }
    }
}

// SAFETY: every call is forwarded unchanged to the system allocator; the counters are
// plain atomics and never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc(layout);
        if !p.is_null() {
            Self::grew(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc_zeroed(layout);
        if !p.is_null() {
            Self::grew(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout);
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = System.realloc(ptr, layout, new_size);
        if !p.is_null() {
            LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
            Self::grew(new_size);
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn live() -> isize {
    LIVE.load(Ordering::Relaxed)
}

fn reset_peak() {
    PEAK.store(live(), Ordering::Relaxed);
}

fn peak() -> isize {
    PEAK.load(Ordering::Relaxed)
}

fn mib(bytes: isize) -> String {
    format!("{:.2} MiB", bytes as f64 / (1024.0 * 1024.0))
}

fn now<F: Future>(fut: F) -> F::Output {
    let mut fut = pin!(fut);
    let mut cx = Context::from_waker(futures_util::task::noop_waker_ref());
    match fut.as_mut().poll(&mut cx) {
        Poll::Ready(out) => out,
        Poll::Pending => panic!("the measured future was not ready at once"),
    }
}

const SCOPE: &str = "charges:read";

fn peer() -> SocketAddr {
    "127.0.0.1:40000".parse().expect("valid address")
}

fn request(token: &str) -> Request<()> {
    Request::builder()
        .uri("/v1/whoami")
        .header(AUTHORIZATION, format!("Bearer {token}"))
        .extension(PeerAddr(peer()))
        .body(())
        .expect("valid request")
}

/// A small deterministic generator for junk keys (xorshift64*).
struct Junk(u64);

impl Junk {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A random token: a known prefix with a random base62 body of the right length
    /// (so a wrong checksum), or the wrong length, or an unknown prefix.
    fn token(&mut self, out: &mut String) {
        const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
        out.clear();
        let kind = self.next() % 4;
        let (prefix, len) = match kind {
            0 | 1 => ("sk_live_", 38),
            2 => ("sk_test_", 10 + (self.next() % 60) as usize),
            _ => ("xx_", 38),
        };
        out.push_str(prefix);
        for _ in 0..len {
            out.push(BASE62[(self.next() % 62) as usize] as char);
        }
    }
}

struct Deployment {
    rt: tokio::runtime::Runtime,
    gate: Keygate,
    manager: KeyManager,
}

/// The default configuration (100,000 cache entries, 1000/s burst 2000 per key) with a
/// manager attached, on a clock that stands still.
fn deployment() -> Deployment {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let (clock, _manual) = Clock::manual(UNIX_EPOCH + Duration::from_secs(1_700_000_000));
    let store = Arc::new(MemoryStore::new());
    let (gate, manager) = Keygate::managed(store.clone())
        .clock(clock)
        .cache(CacheConfig::default())
        .rate_limits(RateLimitConfig::default())
        .manager_config(ManagerConfig::default().max_active_keys(None))
        .build();
    Deployment { rt, gate, manager }
}

fn create_keys(d: &Deployment, n: usize) -> Vec<String> {
    d.rt.block_on(async {
        let mut keys = Vec::with_capacity(n);
        for i in 0..n {
            let created = d
                .manager
                .create(
                    keygate::AccountId::new(format!("acct_{}", i % 100)),
                    NewKey::named(format!("key {i}"))
                        .scopes([SCOPE])
                        .ips(["127.0.0.0/8"])
                        .environment(Environment::Live),
                )
                .await
                .expect("key created");
            keys.push(created.key.expose_secret().to_owned());
        }
        keys
    })
}

/// Lets spawned last-used writes finish, then applies pending cache work.
fn settle(d: &Deployment) {
    d.rt.block_on(async {
        for _ in 0..64 {
            tokio::task::yield_now().await;
        }
    });
    d.gate.run_maintenance();
}

fn inner() -> impl Service<Request<()>, Response = Response<Full<Bytes>>, Error = Infallible> + Clone
{
    tower::service_fn(|_req: Request<()>| async {
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"ok"))))
    })
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
        keygate::RateLimit::TENUO_DEFAULT,
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
