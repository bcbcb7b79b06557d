//! Requests per second through the `keygate_hot` stack on a multi-threaded tokio runtime,
//! with 1 and then 2 worker threads.
//!
//! ```text
//! cargo bench --bench throughput
//! ```
//!
//! The stack is the one of `verify/keygate_hot`: a valid cached key, one required scope,
//! a CIDR allowlist that matches, a rate limit too large to trip, the identity attached,
//! over a trivial inner service. `TASKS` tasks each send `CALLS` requests (built inside
//! the loop, as a server would receive them) through their own clone of the service. One
//! run is made first with the single key every task shares (one cache entry and one
//! limiter bucket, the contended case), then with one key per task. `KEYGATE_CALLS=<n>`
//! changes the number of calls per task, `KEYGATE_RUNS=<n>` the number of runs (5): the
//! machine is noisy, so each figure is given as the spread of its runs. Each line also reports how many requests the
//! limiter refused: with a tolerance of 4 µs (one token per nanosecond, burst 4000), a
//! worker preempted between reading the clock and updating the shared bucket is, rarely,
//! refused.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::AUTHORIZATION;
use http::{Request, Response};
use http_body_util::Full;
use keygate::client_ip::PeerAddr;
use keygate::gate::CacheConfig;
use keygate::manage::ManagerConfig;
use keygate::ratelimit::RateLimitConfig;
use keygate::store::RateLimit;
use keygate::{Environment, Keygate, MemoryStore, NewKey};
use tower::Service;

const HUGE_QUOTA: RateLimit = RateLimit::new(1_000_000_000, 4_000);
const SCOPE: &str = "charges:read";
const TASKS: usize = 64;
const DEFAULT_CALLS: usize = 5_000;

/// The trivial inner service.
async fn handle(_req: Request<()>) -> Result<Response<Full<Bytes>>, Infallible> {
    Ok(Response::new(Full::new(Bytes::from_static(b"ok"))))
}

fn request(header: &str, peer: SocketAddr) -> Request<()> {
    Request::builder()
        .uri("/v1/whoami")
        .header(AUTHORIZATION, header)
        .extension(PeerAddr(peer))
        .body(())
        .expect("valid request")
}

/// A gate over an in-memory store holding `n` keys like the `keygate_hot` one.
async fn deployment(n: usize) -> (Keygate, Vec<String>) {
    let store = Arc::new(MemoryStore::new());
    let (gate, manager) = Keygate::managed(store.clone())
        .cache(CacheConfig::default().positive_ttl(Duration::from_secs(3600)))
        .rate_limits(RateLimitConfig::default().default_quota(Some(HUGE_QUOTA)))
        .manager_config(ManagerConfig::default().max_active_keys(None))
        .build();
    let mut keys = Vec::with_capacity(n);
    for i in 0..n {
        let created = manager
            .create(
                "acct_bench".into(),
                NewKey::named(format!("bench key {i}"))
                    .scopes([SCOPE])
                    .ips(["127.0.0.0/8"])
                    .environment(Environment::Live),
            )
            .await
            .expect("the bench key can be created");
        keys.push(format!("Bearer {}", created.key.expose_secret()));
    }
    (gate, keys)
}

/// Requests per second with `threads` workers and `keys` keys spread over the tasks,
/// and how many requests the limiter refused.
fn run(threads: usize, keys: usize, calls: usize) -> (f64, usize) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let (gate, headers) = deployment(keys).await;
        let svc = tower::Layer::layer(
            &gate.layer().require_any([SCOPE]),
            tower::service_fn(handle),
        );
        let peer: SocketAddr = "127.0.0.1:40000".parse().expect("valid address");
        // Warm the cache and the limiter for every key.
        for header in &headers {
            let res = svc
                .clone()
                .call(request(header, peer))
                .await
                .expect("infallible");
            assert_eq!(res.status(), 200, "the bench key must be accepted");
        }
        let started = Instant::now();
        let tasks: Vec<_> = (0..TASKS)
            .map(|t| {
                let mut svc = svc.clone();
                let header = headers[t % headers.len()].clone();
                tokio::spawn(async move {
                    let mut ok = 0usize;
                    for i in 0..calls {
                        let res = svc.call(request(&header, peer)).await.expect("infallible");
                        ok += usize::from(res.status() == 200);
                        if i % 256 == 255 {
                            // Let other tasks on this worker run, as a server would.
                            tokio::task::yield_now().await;
                        }
                    }
                    ok
                })
            })
            .collect();
        let mut ok = 0;
        for task in tasks {
            ok += task.await.expect("task finished");
        }
        let elapsed = started.elapsed();
        let total = TASKS * calls;
        // With one token back per nanosecond and a burst of 4000, the limiter's tolerance
        // is 4 µs: a worker preempted between reading the clock and updating the shared
        // bucket can, rarely, be refused. Those requests are counted and reported.
        assert_eq!(
            gate.stats().store_lookups,
            keys as u64,
            "no request missed the cache"
        );
        (total as f64 / elapsed.as_secs_f64(), total - ok)
    })
}

/// `min / median / max` of `values`.
fn spread(values: &mut [f64]) -> String {
    values.sort_by(f64::total_cmp);
    let median = values[values.len() / 2];
    format!(
        "min={:.0} median={:.0} max={:.0}",
        values[0],
        median,
        values[values.len() - 1]
    )
}

fn main() {
    // `cargo bench` passes `--bench`. Without it (`cargo test --all-targets`), run a
    // small smoke version.
    let full = std::env::args().any(|a| a == "--bench");
    let calls = std::env::var("KEYGATE_CALLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if full { DEFAULT_CALLS } else { 50 });
    let runs: usize = std::env::var("KEYGATE_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if full { 5 } else { 1 });
    println!(
        "keygate_hot stack, {TASKS} tasks x {calls} requests, {runs} runs, {} CPUs",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    for keys in [1, TASKS] {
        // Runs on 1 and 2 threads alternate, so that both see the same machine.
        let (mut ones, mut twos, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..runs {
            let (one, refused_one) = run(1, keys, calls);
            let (two, refused_two) = run(2, keys, calls);
            println!(
                "keys={keys} threads=1 requests_per_s={one:.0} refused={refused_one} \
                 threads=2 requests_per_s={two:.0} refused={refused_two} scaling_1_to_2={:.2}",
                two / one
            );
            ones.push(one);
            twos.push(two);
            ratios.push(two / one * 100.0);
        }
        println!("keys={keys} threads=1 requests_per_s {}", spread(&mut ones));
        println!("keys={keys} threads=2 requests_per_s {}", spread(&mut twos));
        println!(
            "keys={keys} scaling_1_to_2 x100 {} (each run's 2-thread rate over its 1-thread rate)",
            spread(&mut ratios)
        );
    }
}
