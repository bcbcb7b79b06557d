//! The cost of one usage flush of 10,000 keys' counts into PostgreSQL: 10,000 keys of
//! 1,000 accounts each make one request (accepted) in the same minute, then
//! [`keygate::Keygate::flush_usage`] writes them in one batched statement (10,000 key,
//! 1,000 account rows at each of minute, hour and day: 33,000 rows). Each round adds to
//! the rows the previous rounds wrote, as flushes of a running deployment do.
//!
//! ```text
//! cargo bench --bench usage_flush
//! ```
//!
//! Needs PostgreSQL at `KEYGATE_BENCH_DATABASE_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`); works in a schema of its own, dropped at
//! the end. Keys live in a `MemoryStore`, so that only the flush touches the database.
//! Prints the flush time's median and extremes over 10 rounds (2 without `--bench`).

use std::time::{Duration, Instant};

use keygate::activity::UsageConfig;
use keygate::manage::ManagerConfig;
use keygate::store::{AccountId, PgStore};
use keygate::{Keygate, MemoryStore, NewKey};
use tower::{Service, ServiceExt};

const KEYS: usize = 10_000;
const ACCOUNTS: usize = 1_000;

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let rounds = if full { 10 } else { 2 };
    let database = std::env::var("KEYGATE_BENCH_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    let schema = format!("kgt_bench_usage_{}", std::process::id());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let pg = PgStore::builder(&database)
            .expect("database URL")
            .schema(&schema)
            .timeout(Duration::from_secs(30))
            .build()
            .expect("store");
        pg.migrate().await.expect("migrate");
        let (gate, manager) = Keygate::managed(MemoryStore::new())
            .usage(
                UsageConfig::default()
                    .store(pg.clone())
                    .flush_interval(Duration::from_secs(3600)),
            )
            .manager_config(ManagerConfig::default().max_active_keys(None))
            .build();
        let mut keys = Vec::with_capacity(KEYS);
        for i in 0..KEYS {
            let account = format!("acct_{}", i % ACCOUNTS);
            let created = manager
                .create(AccountId::new(account), NewKey::named("bench"))
                .await
                .expect("key");
            keys.push(created.key.expose_secret().to_owned());
        }
        let mut svc = tower::Layer::layer(&gate.layer(), tower::service_fn(support_ok));
        let mut times = Vec::new();
        for _ in 0..rounds {
            for key in &keys {
                let req = http::Request::builder()
                    .header("authorization", format!("Bearer {key}"))
                    .body(())
                    .unwrap();
                let res = svc.ready().await.unwrap().call(req).await.unwrap();
                assert_eq!(res.status(), 200);
            }
            let started = Instant::now();
            gate.flush_usage().await.expect("flush");
            times.push(started.elapsed());
        }
        times.sort();
        println!(
            "usage flush of {KEYS} keys ({ACCOUNTS} accounts, {} rows) into PostgreSQL: \
             median {:.1} ms, min {:.1} ms, max {:.1} ms over {rounds} rounds",
            (KEYS + ACCOUNTS) * 3,
            times[times.len() / 2].as_secs_f64() * 1000.0,
            times[0].as_secs_f64() * 1000.0,
            times[times.len() - 1].as_secs_f64() * 1000.0,
        );
        let (client, conn) = tokio_postgres::connect(&database, tokio_postgres::NoTls)
            .await
            .expect("connect");
        tokio::spawn(conn);
        client
            .batch_execute(&format!("DROP SCHEMA \"{schema}\" CASCADE"))
            .await
            .expect("drop schema");
    });
}

async fn support_ok(
    _: http::Request<()>,
) -> Result<http::Response<String>, std::convert::Infallible> {
    Ok(http::Response::new(String::new()))
}
