//! Four demo-server processes against one PostgreSQL and one Redis form one cluster: a key
//! created through one works on the others, a key revoked through one is refused by the
//! others within 1 s, a global quota is admitted within ±5% under load from all four, and
//! stopping Redis mid-run follows the outage policy (local fallback by default).
#![cfg(all(feature = "postgres", feature = "redis"))]


use crate::common::pg;
use crate::common::redis_support;
use crate::common::services;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{bearer, http};
use http::Method;
use serde_json::json;

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

    // A key revoked through B is refused by A, C and D within 1 s.
    let started = Instant::now();
    let revoked = http(
        servers[1].addr,
        Method::DELETE,
        &format!("/v1/api-keys/{id}"),
        &[("authorization", &bearer(&servers[1].admin_key))],
        "",
    )
    .await;
    assert_eq!(revoked.status, 204);
    let mut delays = Vec::new();
    for server in [&servers[0], &servers[2], &servers[3]] {
        while whoami(server, &key).await == 200 {
            assert!(started.elapsed() < Duration::from_secs(1), "{delays:?}");
            tokio::task::yield_now().await;
        }
        delays.push(started.elapsed());
    }
    println!("revocation seen by A, C, D after {delays:?}");

    // Propagation over 20 more revocations: when the last of A, C, D refuses the key.
    let mut samples = Vec::new();
    for i in 0..20 {
        let (id, key) = create(&servers[0], json!({"name": format!("p{i}")})).await;
        for server in &servers {
            assert_eq!(whoami(server, &key).await, 200);
        }
        let started = Instant::now();
        let path = format!("/v1/api-keys/{id}");
        let auth = bearer(&servers[1].admin_key);
        let revoked = http(
            servers[1].addr,
            Method::DELETE,
            &path,
            &[("authorization", &auth)],
            "",
        )
        .await;
        assert_eq!(revoked.status, 204);
        for server in [&servers[0], &servers[2], &servers[3]] {
            while whoami(server, &key).await == 200 {
                assert!(started.elapsed() < Duration::from_secs(1));
                tokio::task::yield_now().await;
            }
        }
        samples.push(started.elapsed());
    }
    samples.sort();
    println!(
        "propagation to all of A, C, D over 20 revocations: p50 {:?}, p99 (max) {:?}",
        samples[10], samples[19]
    );

    // One quota, 200 requests (refilling 1/s), under load from all four at once.
    let (_, limited) = create(
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
    let seconds = started.elapsed().as_secs_f64();
    let admitted: u32 = counts.iter().sum();
    let quota = 200.0 + seconds;
    let error = (f64::from(admitted) - quota) / quota;
    println!(
        "quota: {admitted} admitted of 600 ({counts:?}) in {seconds:.2} s; quota {quota:.0}, error {:+.1}%",
        error * 100.0
    );
    assert!(error.abs() <= 0.05, "{admitted} admitted, quota {quota:.0}");

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
