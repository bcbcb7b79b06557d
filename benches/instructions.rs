//! Instructions per request, counted by callgrind: repeatable whatever else the machine
//! is doing, unlike wall-clock time.
//!
//! ```text
//! cargo bench --bench instructions --no-run      # builds target/release/deps/instructions-*
//! scripts/instructions.sh                         # runs every case under callgrind
//! ```
//!
//! Each case runs twice under `valgrind --tool=callgrind`: once with 0 requests (setup
//! only) and once with `N`; the difference divided by `N`, minus the same figure for the
//! `requests` case (building and dropping the requests alone), is the cost of one
//! request through the stack. The cases send the same request through the same stacks as
//! `benches/verify.rs`. Run without arguments (as `cargo bench` does), it does nothing.
//! The script also counts atomic read-modify-write instructions (callgrind's "global
//! bus events", `--collect-bus=yes`: the `lock`-prefixed instructions on x86).
//! Note that valgrind hides SHA-NI, so SHA-256 costs about ten times its native
//! instruction count here. The `sha256` case hashes the bench key `N` times (the script
//! counts only the block function, `sha2::sha256::compress256`, with callgrind's
//! `--toggle-collect`), and `sha256-native N` times the same digest natively with an
//! `Instant` loop and prints nanoseconds per digest; the script substitutes the native
//! block function's instruction count (SHA-NI, counted in this binary's disassembly) for
//! the software one, so the ratio users feel is shown next to the one valgrind counts.

mod support;

use support::floor::FloorService;
use support::{
    floor_for, inner, inner_json, now, request, setup, setup_logged, unknown_key,
    with_bad_checksum, Setup, SCOPE,
};

use http::Request;
use tower::Service;

/// Sends `n` requests (built beforehand) through `svc`.
// Never inlined: every case pays the same loop, moves and calls around its service (the
// compiler otherwise inlines it into some cases and not others, which moved a case by
// about 35 instructions with no change to the service).
#[inline(never)]
fn run<S>(svc: &mut S, token: &str, n: usize, before_each: &dyn Fn())
where
    S: Service<Request<()>>,
    S::Error: std::fmt::Debug,
{
    let requests: Vec<Request<()>> = (0..n).map(|_| request(token)).collect();
    for req in requests {
        before_each();
        let res = now(svc.call(req)).expect("infallible");
        std::hint::black_box(res);
    }
}

fn main() {
    let mut args = std::env::args().skip(1).filter(|a| !a.starts_with("--"));
    let (Some(case), Some(n)) = (args.next(), args.next()) else {
        eprintln!("usage: instructions CASE N (see the module docs); nothing to do");
        return;
    };
    let n: usize = n.parse().expect("N is a number");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let _guard = rt.enter();
    let Setup { gate, key, digest } = setup(&rt);
    let layer = gate.layer().require_any([SCOPE]);
    let mut keygate = tower::Layer::layer(&layer, inner());
    let mut keygate_json = tower::Layer::layer(&layer, inner_json());
    let mut floor = FloorService::new(floor_for(&key), inner());
    // Warm every path once, outside the count difference.
    let bad = with_bad_checksum(&key);
    let unknown = unknown_key(&gate);
    now(floor.call(request(&key))).expect("infallible");
    now(keygate_json.call(request(&key))).expect("infallible");
    for token in [&key, &bad, &unknown] {
        now(keygate.call(request(token))).expect("infallible");
    }
    // The same stack with the API log on: accepted requests not sampled, or all of them
    // (each builds its event and queues it; the writer runs off the request path).
    let logged = |rate: f64| {
        let Setup { gate, key, .. } = setup_logged(&rt, Some(rate));
        let mut svc = tower::Layer::layer(&gate.layer().require_any([SCOPE]), inner());
        now(svc.call(request(&key))).expect("infallible");
        (svc, key, gate)
    };
    let nothing = || {};
    match case.as_str() {
        // Building and dropping the requests alone: subtracted from every other case.
        "requests" => {
            let requests: Vec<Request<()>> = (0..n).map(|_| request(&key)).collect();
            for req in requests {
                std::hint::black_box(req);
            }
        }
        "bare" => run(&mut inner(), &key, n, &nothing),
        "bare_json" => run(&mut inner_json(), &key, n, &nothing),
        "floor" => run(&mut floor, &key, n, &nothing),
        "keygate_hot_json" => run(&mut keygate_json, &key, n, &nothing),
        "tower_http_bearer" => {
            #[allow(deprecated)]
            let mut bearer = tower::ServiceBuilder::new()
                .layer(tower_http::validate_request::ValidateRequestHeaderLayer::bearer(&key))
                .service(inner());
            run(&mut bearer, &key, n, &nothing)
        }
        "keygate_hot" => run(&mut keygate, &key, n, &nothing),
        // The same with usage counting off: the difference is what counting adds.
        "keygate_hot_uncounted" => {
            let off = support::setup_with(&rt, keygate::activity::UsageConfig::off());
            let layer = off.gate.layer().require_any([SCOPE]);
            let mut uncounted = tower::Layer::layer(&layer, inner());
            now(uncounted.call(request(&off.key))).expect("infallible");
            run(&mut uncounted, &off.key, n, &nothing)
        }
        // A key with credits: each request spends one from its cell (usage limits on).
        "keygate_hot_credits" => {
            let credited = support::setup_credited(&rt, i64::MAX / 2);
            let layer = credited.gate.layer().require_any([SCOPE]);
            let mut svc = tower::Layer::layer(&layer, inner());
            now(svc.call(request(&credited.key))).expect("infallible");
            run(&mut svc, &credited.key, n, &nothing)
        }
        // A key with a daily quota, quota headers off, then on (the IETF items and
        // `X-Quota-*`): their difference is what reporting the quota costs.
        "keygate_hot_quota" | "keygate_hot_quota_headers" => {
            let quota = support::setup_quota(&rt, case == "keygate_hot_quota_headers");
            let layer = quota.gate.layer().require_any([SCOPE]);
            let mut svc = tower::Layer::layer(&layer, inner());
            now(svc.call(request(&quota.key))).expect("infallible");
            run(&mut svc, &quota.key, n, &nothing)
        }
        "keygate_hot_log_off" => {
            let (mut svc, key, _gate) = logged(0.0);
            run(&mut svc, &key, n, &nothing)
        }
        "keygate_hot_log_sampled" => {
            let (mut svc, key, _gate) = logged(1.0);
            run(&mut svc, &key, n, &nothing)
        }
        "keygate_hot_log_1pct" => {
            let (mut svc, key, _gate) = logged(0.01);
            run(&mut svc, &key, n, &nothing)
        }
        "keygate_miss" => run(&mut keygate, &key, n, &|| gate.invalidate_digest(&digest)),
        "keygate_bad_checksum" => run(&mut keygate, &bad, n, &nothing),
        "keygate_unknown_key" => run(&mut keygate, &unknown, n, &nothing),
        "sha256" => {
            let hasher = gate.hasher();
            for _ in 0..n {
                std::hint::black_box(hasher.digest(std::hint::black_box(&key)));
            }
        }
        "sha256-native" => {
            let hasher = gate.hasher();
            let mut best = f64::MAX;
            // The best of five rounds: the machine is shared, and interference only adds.
            for _ in 0..5 {
                let start = std::time::Instant::now();
                for _ in 0..n {
                    std::hint::black_box(hasher.digest(std::hint::black_box(&key)));
                }
                best = best.min(start.elapsed().as_nanos() as f64 / n as f64);
            }
            println!("{best:.1}");
        }
        other => panic!("unknown case {other}"),
    }
}
