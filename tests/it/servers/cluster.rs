//! Four demo-server processes against one PostgreSQL and one Redis form one cluster: a key
//! created through one works on the others, a key revoked through one is refused by the
//! others (waited for with a generous bound), a global quota is admitted within the
//! bounds `RedisLimiter` documents under load from all four, and stopping Redis mid-run
//! follows the outage policy (local fallback by default). Propagation latency and quota
//! accuracy are measured by `benches/cluster.rs`, not asserted here.
#![cfg(all(feature = "postgres", feature = "redis"))]

use crate::common::pg;
use crate::common::redis_support;
use crate::common::services;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use keygate::ratelimit::RedisLimiterConfig;
use keygate::store::RateLimit;

use crate::common::{bearer, http};
use http::Method;
use serde_json::json;

/// How long a change may take to reach every server before the test fails: generous,
/// since this only waits for something to happen (latency is measured by the bench).
const PROPAGATION_BOUND: Duration = Duration::from_secs(10);
/// How soon one instance's usage includes the requests another answered.
const USAGE_BOUND: Duration = Duration::from_secs(2);

/// A running demo server, killed on drop.
struct Server {
    child: Child,
    addr: SocketAddr,
    admin_key: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn example(name: &str) -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap();
    let path = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples")
        .join(name);
    assert!(path.exists(), "{} is built by `cargo test`", path.display());
    path
}

fn start(database: &str, schema: &str, redis: &str, prefix: &str) -> Server {
    let mut child = Command::new(example("server"))
        .args(["--addr", "127.0.0.1:0", "--instances", "4"])
        .args(["--database-url", database, "--schema", schema])
        .args(["--redis-url", redis, "--redis-prefix", prefix])
        .env("RUST_LOG", "error")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the demo server starts");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let (mut addr, mut admin_key) = (None, None);
    while admin_key.is_none() {
        let line = lines
            .next()
            .expect("the server prints its address and admin key")
            .unwrap();
        if let Some(rest) = line.strip_prefix("listening on http://") {
            addr = Some(rest.split_whitespace().next().unwrap().parse().unwrap());
        }
        if let Some(key) = line.strip_prefix("admin key: ") {
            admin_key = Some(key.to_owned());
        }
    }
    Server {
        child,
        addr: addr.unwrap(),
        admin_key: admin_key.unwrap(),
    }
}

async fn whoami(server: &Server, key: &str) -> u16 {
    http(
        server.addr,
        Method::GET,
        "/v1/whoami",
        &[("authorization", &bearer(key))],
        "",
    )
    .await
    .status
    .as_u16()
}

async fn create(server: &Server, body: serde_json::Value) -> (String, String) {
    let created = http(
        server.addr,
        Method::POST,
        "/v1/api-keys",
        &[
            ("authorization", &bearer(&server.admin_key)),
            ("content-type", "application/json"),
        ],
        &body.to_string(),
    )
    .await;
    assert_eq!(created.status, 201, "{created:?}");
    let v = created.json();
    (
        v["id"].as_str().unwrap().to_owned(),
        v["key"].as_str().unwrap().to_owned(),
    )
}

/// Starts four servers (in parallel: each migrates and connects on its own).
fn cluster(database: &str, schema: &str, redis: &str, prefix: &str) -> Vec<Server> {
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| s.spawn(|| start(database, schema, redis, prefix)))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_servers_share_keys_revocations_and_one_quota() {
    let database = services::postgres_url();
    let schema = pg::schema_name("cluster");
    let mut redis = redis_support::PrivateRedis::start();
    let prefix = redis_support::unique_prefix("cluster");
    let servers = cluster(&database, &schema, &redis.url(), &prefix);

    // A key created through A works on B, C and D.
    let (id, key) = create(&servers[0], json!({"name": "shared"})).await;
    for server in &servers[1..] {
        assert_eq!(whoami(server, &key).await, 200);
    }
    // A's usage of it holds the three requests B, C and D answered, within 2 s (each
    // flushes every 500 ms; a read on A flushes A's own first).
    let asked = Instant::now();
    loop {
        let usage = http(
            servers[0].addr,
            Method::GET,
            &format!("/v1/api-keys/{id}/usage"),
            &[("authorization", &bearer(&servers[0].admin_key))],
            "",
        )
        .await;
        assert_eq!(usage.status, 200, "{usage:?}");
        let accepted: u64 = usage.json()["data"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|b| b["outcomes"]["accepted"].as_u64())
            .sum();
        assert!(accepted <= 3, "{usage:?}");
        if accepted == 3 {
            break;
        }
        assert!(
            asked.elapsed() < USAGE_BOUND,
            "usage still short of the other instances' requests after {USAGE_BOUND:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    println!("usage summed over the cluster in {:?}", asked.elapsed());

    // A key revoked through B is refused by A, C and D.
    let revoked = http(
        servers[1].addr,
        Method::DELETE,
        &format!("/v1/api-keys/{id}"),
        &[("authorization", &bearer(&servers[1].admin_key))],
        "",
    )
    .await;
    assert_eq!(revoked.status, 204);
    let deadline = Instant::now() + PROPAGATION_BOUND;
    for server in [&servers[0], &servers[2], &servers[3]] {
        while whoami(server, &key).await == 200 {
            assert!(
                Instant::now() < deadline,
                "a revoked key still works after {PROPAGATION_BOUND:?}"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    // One quota, 200 requests (refilling 1/s), under load from all four at once.
    let quota = RateLimit::new(1, 200);
    let (limited_id, limited) = create(
        &servers[2],
        json!({"name": "quota", "rate_limit": {"per_second": 1, "burst": 200}}),
    )
    .await;
    let started = Instant::now();
    let counts = futures_util::future::join_all(servers.iter().map(|server| {
        let limited = limited.clone();
        async move {
            let mut admitted = 0u32;
            for _ in 0..150 {
                if whoami(server, &limited).await == 200 {
                    admitted += 1;
                }
            }
            admitted
        }
    }))
    .await;
    let mut admitted: u32 = counts.iter().sum();
    // Until Redis's bucket is empty (its last count under one token), more requests: a
    // refusal may only mean that a refill was still under way.
    let bucket = format!("{prefix}:1-200:key:{limited_id}");
    let deadline = Instant::now() + PROPAGATION_BOUND;
    loop {
        let left: Option<u64> =
            redis_support::command(&redis.url(), redis::cmd("HGET").arg(&bucket).arg("t")).await;
        if left.is_some_and(|millionths| millionths < 1_000_000) {
            break;
        }
        assert!(Instant::now() < deadline, "the bucket was never emptied");
        for server in &servers {
            if whoami(server, &limited).await == 200 {
                admitted += 1;
            }
        }
    }
    // The bounds `RedisLimiter` documents for n instances and a lease of L: at most
    // n × L more than the quota (plus what Redis refilled meanwhile, one token a
    // second), at most n × 1.5 L fewer (leases left unspent).
    let lease = RedisLimiterConfig::default().instances(4).lease_for(quota);
    let refilled = started.elapsed().as_secs() as u32 + 1;
    println!("quota 200 under load from four servers: {admitted} admitted ({counts:?})");
    assert!(
        admitted <= 200 + refilled + 4 * lease,
        "{admitted} admitted: more than one quota of 200 (+{refilled} refilled)"
    );
    assert!(
        admitted + 4 * lease * 3 / 2 >= 200,
        "{admitted} admitted: less than the quota of 200"
    );

    // Redis stops: each instance falls back to its local share (200 / 4 = 50 burst).
    redis.stop();
    let (_, fresh) = create(
        &servers[3],
        json!({"name": "outage", "rate_limit": {"per_second": 1, "burst": 200}}),
    )
    .await;
    let mut admitted = 0;
    for _ in 0..80 {
        if whoami(&servers[0], &fresh).await == 200 {
            admitted += 1;
        }
    }
    println!("Redis down: {admitted} of 80 admitted by one instance");
    assert!((45..=60).contains(&admitted), "{admitted}");
    drop(servers);
    pg::drop_schema(&schema).await;
}
