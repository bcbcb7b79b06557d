//! What the groups share: a runtime, a one-poll executor, a valid key and a deployment
//! with a chosen set of features.

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use keygate::gate::CacheConfig;
use keygate::key::KeyFormat;
use keygate::manage::ManagerConfig;
use keygate::ratelimit::RateLimitConfig;
use keygate::store::RateLimit;
use keygate::{Environment, Keygate, MemoryStore, NewKey};

pub(crate) const HUGE_QUOTA: RateLimit = RateLimit::new(1_000_000_000, 4_000);
pub(crate) const SCOPE: &str = "charges:read";

pub(crate) fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

pub(crate) fn now<F: Future>(fut: F) -> F::Output {
    let mut fut = pin!(fut);
    let mut cx = Context::from_waker(futures_util::task::noop_waker_ref());
    match fut.as_mut().poll(&mut cx) {
        Poll::Ready(out) => out,
        Poll::Pending => panic!("the benchmarked future was not ready at once"),
    }
}

pub(crate) fn a_key() -> String {
    let format = KeyFormat::default();
    let prefix = format.prefix("sk_live_").expect("default format");
    format
        .generate(prefix)
        .expect("the prefix generates keys")
        .expose_secret()
        .to_owned()
}

/// Which features a [`deployment`] switches on.
#[derive(Clone, Copy)]
pub(crate) struct Deployment {
    pub(crate) manager: bool,
    pub(crate) ip: bool,
    pub(crate) scope: bool,
    pub(crate) limit: bool,
}

impl Deployment {
    pub(crate) const FULL: Self = Self {
        manager: true,
        ip: true,
        scope: true,
        limit: true,
    };
}

/// A gate and one valid key, configured as `features` says.
pub(crate) fn deployment(rt: &tokio::runtime::Runtime, features: Deployment) -> (Keygate, String) {
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
