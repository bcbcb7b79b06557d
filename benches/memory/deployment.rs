//! The measured deployment: a gate with a manager on a clock that stands still, its keys,
//! its requests, and junk tokens.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use bytes::Bytes;
use http::header::AUTHORIZATION;
use http::{Request, Response};
use http_body_util::Full;
use keygate::client_ip::PeerAddr;
use keygate::clock::Clock;
use keygate::gate::CacheConfig;
use keygate::manage::ManagerConfig;
use keygate::ratelimit::RateLimitConfig;
use keygate::{Environment, KeyManager, Keygate, MemoryStore, NewKey};
use tower::Service;

pub(crate) const SCOPE: &str = "charges:read";

pub(crate) fn peer() -> SocketAddr {
    "127.0.0.1:40000".parse().expect("valid address")
}

pub(crate) fn request(token: &str) -> Request<()> {
    Request::builder()
        .uri("/v1/whoami")
        .header(AUTHORIZATION, format!("Bearer {token}"))
        .extension(PeerAddr(peer()))
        .body(())
        .expect("valid request")
}

/// A small deterministic generator for junk keys (xorshift64*).
pub(crate) struct Junk(pub(crate) u64);

impl Junk {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A random token: a known prefix with a random base62 body of the right length
    /// (so a wrong checksum), or the wrong length, or an unknown prefix.
    pub(crate) fn token(&mut self, out: &mut String) {
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

pub(crate) struct Deployment {
    pub(crate) rt: tokio::runtime::Runtime,
    pub(crate) gate: Keygate,
    pub(crate) manager: KeyManager,
}

/// The default configuration (100,000 cache entries, 1000/s burst 2000 per key) with a
/// manager attached, on a clock that stands still.
pub(crate) fn deployment() -> Deployment {
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

pub(crate) fn create_keys(d: &Deployment, n: usize) -> Vec<String> {
    d.rt.block_on(async {
        let mut keys = Vec::with_capacity(n);
        for i in 0..n {
            let created = d
                .manager
                .create(
                    keygate::store::AccountId::new(format!("acct_{}", i % 100)),
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
pub(crate) fn settle(d: &Deployment) {
    d.rt.block_on(async {
        for _ in 0..64 {
            tokio::task::yield_now().await;
        }
    });
    d.gate.run_maintenance();
}

pub(crate) fn inner(
) -> impl Service<Request<()>, Response = Response<Full<Bytes>>, Error = Infallible> + Clone {
    tower::service_fn(|_req: Request<()>| async {
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"ok"))))
    })
}
