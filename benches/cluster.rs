//! Four keygate instances over one PostgreSQL schema and one Redis, set up as the demo
//! server runs them (`--database-url`, `--redis-url`, `--instances 4`), in one process:
//! how long a revocation made through one instance takes to be refused by the other
//! three (PostgreSQL LISTEN/NOTIFY), and how closely the four keep one shared quota
//! (Redis leases). The integration tests only check that both happen, within the bounds
//! `RedisLimiter` documents; the figures are measured and printed here.
//!
//! ```text
//! cargo bench --bench cluster
//! ```
//!
//! Needs PostgreSQL at `KEYGATE_BENCH_DATABASE_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`) and Redis at `KEYGATE_BENCH_REDIS_URL`
//! (default `redis://127.0.0.1:6379`). Prints the propagation delay's percentiles over
//! 100 revocations, and the admitted count against a quota of 2000 over 10 runs.
//! Without `--bench` (as under `cargo test --benches`) it takes 3 samples and 1 run.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use keygate::invalidation::{Listener, ListenerStatus};
use keygate::ratelimit::{RedisLimiter, RedisLimiterConfig};
use keygate::store::PgStore;
use keygate::store::{AccountId, RateLimit};
use keygate::{AuthError, KeyManager, Keygate, NewKey};
use tower::{Service, ServiceExt};

const INSTANCES: usize = 4;
const QUOTA: RateLimit = RateLimit::new(1, 2000);

/// One instance: its own pool, cache, listener and limiter.
struct Instance {
    gate: Keygate,
    manager: KeyManager,
    limiter: RedisLimiter,
    listener: Listener,
}

async fn instance(database: &str, schema: &str, redis: &str, prefix: &str) -> Instance {
    let store = PgStore::builder(database)
        .and_then(|b| b.schema(schema.to_owned()).build())
        .expect("a valid database URL");
    store
        .migrate()
        .await
        .expect("PostgreSQL answers: start one or set KEYGATE_BENCH_DATABASE_URL");
    let store = Arc::new(store);
    let limiter = RedisLimiter::new(
        redis,
        RedisLimiterConfig::default()
            .key_prefix(prefix.to_owned())
            .instances(INSTANCES as u32),
    )
    .expect("a valid Redis URL");
    let (gate, manager) = Keygate::managed(store.clone())
        .shared_rate_limits(limiter.clone())
        .build();
    let listener = store.listen(Arc::new(gate.clone()));
    tokio::time::timeout(
        Duration::from_secs(10),
        listener.wait_for(ListenerStatus::Live),
    )
    .await
    .expect("the listener connects");
    Instance {
        gate,
        manager,
        limiter,
        listener,
    }
}

/// Waits until every listener has applied `n` published digests.
async fn applied(cluster: &[Instance], n: u64) {
    while cluster.iter().any(|i| i.listener.stats().invalidated < n) {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// Revokes through instance 1 and times until instances 0, 2 and 3 refuse the key.
async fn propagation(cluster: &[Instance], samples: u64) {
    let account = AccountId::new("acct_propagation");
    let mut last_of_three = Vec::new();
    for i in 0..samples {
        let created = cluster[0]
            .manager
            .create(account.clone(), NewKey::named(format!("p{i}")))
            .await
            .expect("created");
        let key = created.key.expose_secret().to_owned();
        // The creation's notification first, so that it drops no entry cached below.
        applied(cluster, 2 * i + 1).await;
        for instance in cluster {
            assert!(instance.gate.verify_key(&key).await.is_ok(), "cached");
        }
        let started = Instant::now();
        cluster[1]
            .manager
            .revoke(&account, &created.view.id)
            .await
            .expect("revoked");
        for instance in [&cluster[0], &cluster[2], &cluster[3]] {
            while !matches!(
                instance.gate.verify_key(&key).await,
                Err(AuthError::RevokedKey)
            ) {
                assert!(started.elapsed() < Duration::from_secs(10), "never refused");
                tokio::task::yield_now().await;
            }
        }
        last_of_three.push(started.elapsed());
        applied(cluster, 2 * i + 2).await;
    }
    last_of_three.sort();
    println!(
        "revocation through one instance refused by the other three (LISTEN/NOTIFY, {} \
         samples): p50 {:?}, p90 {:?}, p99 {:?}, max {:?}",
        last_of_three.len(),
        percentile(&last_of_three, 0.5),
        percentile(&last_of_three, 0.9),
        percentile(&last_of_three, 0.99),
        last_of_three.last().expect("a sample")
    );
}

/// Sends requests with `key` through `instance` until the cluster has leased `burst`
/// tokens for this run and 50 requests in a row are refused; returns the admissions.
async fn hammer(instance: &Instance, cluster: &[Instance], key: &str, leased_before: u64) -> u32 {
    let mut svc = tower::Layer::layer(&instance.gate.layer(), support::inner());
    let drained = || {
        let leased: u64 = cluster
            .iter()
            .map(|i| i.limiter.stats().tokens_leased)
            .sum();
        leased - leased_before >= u64::from(QUOTA.burst)
    };
    let (mut admitted, mut refused_in_a_row) = (0u32, 0u32);
    while refused_in_a_row < 50 || !drained() {
        let answer = svc
            .ready()
            .await
            .expect("ready")
            .call(support::request(key))
            .await
            .expect("an answer");
        if answer.status() == 200 {
            admitted += 1;
            refused_in_a_row = 0;
            tokio::task::yield_now().await;
        } else {
            assert_eq!(answer.status(), 429);
            refused_in_a_row += 1;
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
    admitted
}

/// Four instances spend one key's quota together, `runs` times with a fresh key.
async fn accuracy(cluster: &[Instance], runs: u32) {
    let account = AccountId::new("acct_quota");
    let lease = cluster[0].limiter.config().lease_for(QUOTA);
    let mut errors = Vec::new();
    for run in 0..runs {
        let created = cluster[0]
            .manager
            .create(
                account.clone(),
                NewKey::named(format!("q{run}")).rate_limit(QUOTA),
            )
            .await
            .expect("created");
        let key = created.key.expose_secret().to_owned();
        let leased_before: u64 = cluster
            .iter()
            .map(|i| i.limiter.stats().tokens_leased)
            .sum();
        let started = Instant::now();
        let counts = futures_util::future::join_all(
            cluster
                .iter()
                .map(|instance| hammer(instance, cluster, &key, leased_before)),
        )
        .await;
        let seconds = started.elapsed().as_secs_f64();
        let admitted: u32 = counts.iter().sum();
        // Redis refills one token a second while the run lasts.
        let quota = f64::from(QUOTA.burst) + seconds;
        let error = (f64::from(admitted) - quota) / quota * 100.0;
        println!(
            "quota run {run}: {admitted} admitted by {counts:?} in {seconds:.2} s; quota \
             {quota:.0} (lease {lease}), error {error:+.2}%"
        );
        errors.push(error);
    }
    errors.sort_by(f64::total_cmp);
    println!(
        "shared quota of {} over {INSTANCES} instances, {runs} runs: error from {:+.2}% to {:+.2}%",
        QUOTA.burst,
        errors.first().expect("a run"),
        errors.last().expect("a run")
    );
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let (samples, runs) = if full { (100, 10) } else { (3, 1) };
    let database = std::env::var("KEYGATE_BENCH_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    let redis = std::env::var("KEYGATE_BENCH_REDIS_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    let id = std::process::id();
    let schema = format!("kgt_bench_cluster_{id}");
    let prefix = format!("keygate-bench-cluster:{id}");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let mut cluster = Vec::new();
        for _ in 0..INSTANCES {
            cluster.push(instance(&database, &schema, &redis, &prefix).await);
        }
        propagation(&cluster, samples).await;
        accuracy(&cluster, runs).await;
        drop(cluster);
        let (client, connection) = tokio_postgres::connect(&database, tokio_postgres::NoTls)
            .await
            .expect("connect to drop the schema");
        tokio::spawn(connection);
        client
            .batch_execute(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
            .await
            .expect("drop the bench schema");
    });
}
