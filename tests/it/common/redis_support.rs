//! Real Redis servers for tests: the shared one (`KEYGATE_TEST_REDIS_URL`, default
//! `redis://127.0.0.1:6379`, or a private server started when that is unreachable; see
//! `services`), private servers a test may stop and restart, and a proxy that can cut
//! the connection and counts connection attempts.
//!
//! No test is ever skipped: without a reachable Redis and without a `redis-server`
//! binary, the harness panics with what to install or set.
#![allow(dead_code, unreachable_pub)]

use std::net::{SocketAddr, TcpListener as StdListener};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use keygate::clock::Clock;
use keygate::layer::KeygateService;
use keygate::ratelimit::{RateLimitConfig, RedisLimiter, RedisLimiterConfig};
use keygate::store::{AccountId, RateLimit};
use keygate::{Keygate, MemoryStore, NewKey};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;

use crate::common::{Answer, Echo};

const MISSING: &str = "no Redis for the tests: 127.0.0.1:6379 (or KEYGATE_TEST_REDIS_URL) is \
     unreachable and no `redis-server` binary was found on PATH. Install Redis (Debian: \
     `apt-get install redis-server`) or set KEYGATE_TEST_REDIS_URL to a reachable server";

/// Whether a Redis at `url` answers PING within a second.
pub fn reachable(url: &str) -> bool {
    let Ok(client) = redis::Client::open(url) else {
        return false;
    };
    let Ok(mut conn) = client.get_connection_with_timeout(Duration::from_secs(1)) else {
        return false;
    };
    redis::cmd("PING").query::<String>(&mut conn).is_ok()
}

/// The URL of the Redis shared by the tests of this process: the one
/// [`super::services::redis_url`] finds or starts.
pub fn shared_url() -> String {
    super::services::redis_url()
}

/// A key prefix no other test (in this process or another) uses.
pub fn unique_prefix(test: &str) -> String {
    super::services::unique(&format!("keygate-test:{test}"))
}

/// Deletes every key under `prefix`.
pub async fn cleanup(url: &str, prefix: &str) {
    let client = redis::Client::open(url).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}:*"))
        .query_async(&mut conn)
        .await
        .unwrap();
    if !keys.is_empty() {
        redis::cmd("DEL")
            .arg(keys)
            .query_async::<i64>(&mut conn)
            .await
            .unwrap();
    }
}

/// Runs one command on the Redis at `url`.
pub async fn command<T: redis::FromRedisValue>(url: &str, cmd: &redis::Cmd) -> T {
    let client = redis::Client::open(url).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    cmd.query_async(&mut conn).await.unwrap()
}

fn require_binary() {
    let found = Command::new("redis-server")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(found, "{MISSING}");
}

fn server_args(port: u16) -> Vec<String> {
    let dir = std::env::temp_dir();
    [
        "--port",
        &port.to_string(),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        dir.to_str().expect("a UTF-8 temp dir"),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

fn free_port() -> u16 {
    let listener = StdListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

fn wait_until_reachable(url: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !reachable(url) {
        assert!(
            Instant::now() < deadline,
            "redis-server at {url} did not answer"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A redis-server of this test's own, on a free port, that the test may stop and
/// start again on the same port. Stopped on drop.
pub struct PrivateRedis {
    pub port: u16,
    child: Option<Child>,
}

impl PrivateRedis {
    pub fn start() -> Self {
        require_binary();
        let mut server = Self {
            port: free_port(),
            child: None,
        };
        server.restart();
        server
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills the server (SIGKILL: no goodbye to its clients).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port (empty: nothing is persisted).
    pub fn restart(&mut self) {
        self.stop();
        let child = Command::new("redis-server")
            .args(server_args(self.port))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server");
        self.child = Some(child);
        wait_until_reachable(&self.url());
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A TCP proxy in front of a Redis that counts every connection made to it, and can
/// be cut: then it closes every open connection and each new one at once.
pub struct Proxy {
    pub addr: SocketAddr,
    up: Arc<AtomicBool>,
    accepted: Arc<AtomicUsize>,
    open: Arc<Mutex<Vec<AbortHandle>>>,
}

impl Proxy {
    pub async fn start(upstream: &str) -> Self {
        let upstream: SocketAddr = upstream
            .trim_start_matches("redis://")
            .trim_end_matches('/')
            .parse()
            .expect("a redis://host:port URL");
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let proxy = Self {
            addr: listener.local_addr().unwrap(),
            up: Arc::new(AtomicBool::new(true)),
            accepted: Arc::new(AtomicUsize::new(0)),
            open: Arc::default(),
        };
        let (up, accepted, open) = (proxy.up.clone(), proxy.accepted.clone(), proxy.open.clone());
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                accepted.fetch_add(1, Ordering::SeqCst);
                if !up.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let task = tokio::spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                open.lock().unwrap().push(task.abort_handle());
            }
        });
        proxy
    }

    pub fn url(&self) -> String {
        format!("redis://{}", self.addr)
    }

    /// Connections made to the proxy so far.
    pub fn connections(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    /// Closes every open connection and refuses new ones.
    pub fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        for task in self.open.lock().unwrap().drain(..) {
            task.abort();
        }
    }

    /// Forwards new connections again.
    pub fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

/// One instance: a keygate over the shared `store`, its buckets in Redis.
pub fn instance(
    store: &Arc<MemoryStore>,
    clock: &Clock,
    limits: RateLimitConfig,
    limiter: &RedisLimiter,
) -> KeygateService<Echo> {
    let gate = Keygate::builder(store.clone())
        .clock(clock.clone())
        .rate_limits(limits)
        .shared_rate_limits(limiter.clone())
        .build();
    tower::Layer::layer(&gate.layer(), Echo)
}

pub fn per_key(quota: RateLimit) -> RateLimitConfig {
    RateLimitConfig::default().default_quota(Some(quota))
}

/// Creates a key in `account`; returns (key id, plaintext).
pub async fn create_key(store: &Arc<MemoryStore>, account: &str) -> (String, String) {
    let (_, manager) = Keygate::managed(store.clone()).build();
    let created = manager
        .create(AccountId::from(account), NewKey::named("shared quota"))
        .await
        .expect("key created");
    (
        created.view.id.as_str().to_owned(),
        created.key.expose_secret().to_owned(),
    )
}

pub fn config(prefix: &str) -> RedisLimiterConfig {
    RedisLimiterConfig::default().key_prefix(prefix)
}

/// Polls `done` every 5 ms until it holds; fails after 10 s.
pub async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

pub fn header(a: &Answer, name: &str) -> Option<u64> {
    a.header(name).map(|v| v.parse().unwrap())
}
