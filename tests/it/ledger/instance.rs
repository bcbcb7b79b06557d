//! One metered instance in a process of its own, for the cluster tests: this test
//! binary, started again on [`metered_instance`] with its settings in the environment.
//!
//! The instance serves a key through its own gate over its own `PgStore` pool, and the
//! store gives the key 1,000 credits (the record's credits as the management API would
//! set them); the balance of record is the schema's `meters` table. On `go` (a line on
//! stdin) it sends up to its number of requests, eight at a time, through the gate's
//! layer, each sender stopping at its first `usage_exceeded` without `Retry-After` (the
//! ledger had nothing left for this instance). It prints `admitted <n> waited <429s with
//! Retry-After> unavailable <503s>`, then `admitted_at` and `refused_at` with the Unix
//! times (ns) of its admissions and of its senders' final refusals, so the test can tell
//! which refusals came while credits remained elsewhere. Then on `flush` it returns its
//! leases and prints `flushed`; `idle` lets the lease agent return them as for any idle
//! meter.

use std::io::{BufRead, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::Arc;

use keygate::key::KeyDigest;
use keygate::metering::{CreditLedger, Credits};
use keygate::store::{KeyRecord, PgStore};
use keygate::{KeyStore, Keygate, StoreError};

use crate::common::pg::store_on;
use crate::common::{get, send, Echo};

pub(super) const GRANTED: i64 = 1_000;

/// `PgStore`, with every key it finds carrying `GRANTED` credits.
struct Credited(Arc<PgStore>);

#[async_trait::async_trait]
impl KeyStore for Credited {
    async fn find_by_digest(&self, digest: &KeyDigest) -> Result<Option<KeyRecord>, StoreError> {
        let mut record = self.0.find_by_digest(digest).await?;
        if let Some(r) = &mut record {
            r.usage.own.credits = Some(Credits::new(GRANTED));
        }
        Ok(record)
    }
    fn credit_ledger(&self) -> Option<Arc<dyn CreditLedger>> {
        self.0.credit_ledger()
    }
}

/// Not a test of its own: the body of one instance when run by the cluster tests (with
/// `KEYGATE_METERED_INSTANCE` set); nothing otherwise.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "one instance of the cluster tests, run by them in a process of its own"]
async fn metered_instance() {
    let Ok(settings) = std::env::var("KEYGATE_METERED_INSTANCE") else {
        return;
    };
    let [schema, key, requests, lease, lease_max]: [&str; 5] =
        settings.split(' ').collect::<Vec<_>>().try_into().unwrap();
    let requests: usize = requests.parse().unwrap();
    let store = Arc::new(store_on(schema, "metered_instance").await);
    let gate = Keygate::builder(Credited(store))
        .usage_lease(lease.parse().unwrap())
        .usage_lease_max(lease_max.parse().unwrap())
        .build();
    let service = tower::Layer::layer(&gate.layer(), Echo);
    let mut lines = std::io::stdin().lock().lines();
    assert_eq!(lines.next().unwrap().unwrap(), "go");
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let (mut service, key) = (service.clone(), key.to_owned());
            tokio::spawn(async move {
                let mut tally = Tally::default();
                for _ in (i..requests).step_by(8) {
                    let answer = send(&mut service, get("/", Some(&key))).await;
                    if answer.status == 200 {
                        tally.admitted_at.push(unix_ns());
                    } else if answer.status == 503 {
                        tally.unavailable += 1;
                        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
                    } else if answer.header("retry-after").is_some() {
                        // Refused while a lease was on its way: back off, as a client would.
                        tally.waited += 1;
                        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
                    } else {
                        // The ledger has nothing left for this instance.
                        tally.refused_at.push(unix_ns());
                        break;
                    }
                }
                tally
            })
        })
        .collect();
    let mut all = Tally::default();
    for task in tasks {
        let t = task.await.unwrap();
        all.admitted_at.extend(t.admitted_at);
        all.refused_at.extend(t.refused_at);
        all.waited += t.waited;
        all.unavailable += t.unavailable;
    }
    let list = |times: &[u128]| {
        let texts: Vec<String> = times.iter().map(u128::to_string).collect();
        texts.join(",")
    };
    println!(
        "admitted {} waited {} unavailable {}",
        all.admitted_at.len(),
        all.waited,
        all.unavailable
    );
    println!("admitted_at {}", list(&all.admitted_at));
    println!("refused_at {}", list(&all.refused_at));
    std::io::stdout().flush().unwrap();
    match lines.next().unwrap().unwrap().as_str() {
        "flush" => gate.return_leases().await,
        _ => {
            // Idle: the lease agent returns the units within 5 s; wait to be stopped.
            let _ = lines.next();
        }
    }
    println!("flushed");
    std::io::stdout().flush().unwrap();
}

/// What one instance's senders saw.
#[derive(Default)]
struct Tally {
    admitted_at: Vec<u128>,
    refused_at: Vec<u128>,
    waited: u64,
    unavailable: u64,
}

fn unix_ns() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

/// A running instance, killed on drop.
pub(super) struct Instance {
    child: Child,
    stdin: ChildStdin,
    stdout: std::io::Lines<std::io::BufReader<ChildStdout>>,
}

impl Instance {
    pub(super) fn start(
        schema: &str,
        key: &str,
        requests: usize,
        (lease, lease_max): (u64, u64),
    ) -> Self {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "ledger::instance::metered_instance"])
            .args(["--ignored", "--nocapture", "--test-threads=1"])
            .env(
                "KEYGATE_METERED_INSTANCE",
                format!("{schema} {key} {requests} {lease} {lease_max}"),
            )
            .env("RUST_LOG", "error")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("the test binary runs again as an instance");
        let stdin = child.stdin.take().unwrap();
        let stdout = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
        Self {
            child,
            stdin,
            stdout,
        }
    }

    pub(super) fn say(&mut self, line: &str) {
        writeln!(self.stdin, "{line}").unwrap();
        self.stdin.flush().unwrap();
    }

    /// Waits for the line starting with `prefix`; returns the rest of it.
    pub(super) fn wait_for(&mut self, prefix: &str) -> String {
        for line in self.stdout.by_ref() {
            let line = line.unwrap();
            // The test harness may print the test's name first on the same line.
            if let Some((_, rest)) = line.split_once(prefix) {
                return rest.trim().to_owned();
            }
        }
        panic!("the instance ended before printing {prefix:?}");
    }

    /// Kills the process at once, as a crash would: nothing is returned.
    pub(super) fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.kill();
    }
}
