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
//! Note that valgrind hides SHA-NI, so SHA-256 costs about ten times its native
//! instruction count here.

mod support;

use support::{inner, now, request};

use std::sync::Arc;
use std::time::Duration;

use http::Request;
use keygate::{
    CacheConfig, Environment, Keygate, ManagerConfig, MemoryStore, NewKey, RateLimit,
    RateLimitConfig,
};
use tower::Service;

const HUGE_QUOTA: RateLimit = RateLimit::new(1_000_000_000, 4_000);
const SCOPE: &str = "charges:read";

/// Sends `n` requests (built beforehand) through `svc`.
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
    let store = Arc::new(MemoryStore::new());
    let (gate, manager) = Keygate::managed(store)
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
    let layer = gate.layer().require_any([SCOPE]);
    let mut keygate = tower::Layer::layer(&layer, inner());
    // Warm every path once, outside the count difference.
    let mut bad = key.clone();
    let last = bad.pop().expect("not empty");
    bad.push(if last == 'A' { 'B' } else { 'A' });
    let unknown = gate
        .format()
        .generate(gate.format().prefix("sk_live_").expect("default"))
        .expect("the prefix generates keys")
        .expose_secret()
        .to_owned();
    for token in [&key, &bad, &unknown] {
        now(keygate.call(request(token))).expect("infallible");
    }
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
        "tower_http_bearer" => {
            #[allow(deprecated)]
            let mut bearer = tower::ServiceBuilder::new()
                .layer(tower_http::validate_request::ValidateRequestHeaderLayer::bearer(&key))
                .service(inner());
            run(&mut bearer, &key, n, &nothing)
        }
        "keygate_hot" => run(&mut keygate, &key, n, &nothing),
        "keygate_miss" => run(&mut keygate, &key, n, &|| gate.invalidate_digest(&digest)),
        "keygate_bad_checksum" => run(&mut keygate, &bad, n, &nothing),
        "keygate_unknown_key" => run(&mut keygate, &unknown, n, &nothing),
        other => panic!("unknown case {other}"),
    }
}
