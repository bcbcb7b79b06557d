//! Credits shared by four instances, each a process of its own over one PostgreSQL
//! schema, hammering one key with 1,000 credits: never more than 1,000 admitted, at
//! least 1,000 minus the documented bound (`instances × lease`: units left in other
//! instances' cells when one finds the ledger empty), and once the leases are back,
//! admitted + remaining = granted. Then one instance is killed holding a lease: the
//! credits it strands stay within one lease.

use std::time::{Duration, Instant};

use super::instance::{Instance, GRANTED};
use crate::common::pg::*;
use keygate::metering::{CreditLedger, Meter, MeterPolicy, UtcOffset};
use keygate::store::{AccountId, KeyId, PgStore};
use keygate::{Keygate, NewKey};

const INSTANCES: usize = 4;
const LEASE: u64 = 16;
/// At most this many from each instance, which stops once the ledger is empty.
const REQUESTS: usize = 4_000;

async fn key_on(schema: &str) -> (PgStore, KeyId, String) {
    let store = store_on(schema, "cluster_setup").await;
    let (_, manager) = Keygate::managed(store.clone()).build();
    let created = manager
        .create(AccountId::new("acct_cluster"), NewKey::named("metered"))
        .await
        .unwrap();
    (
        store,
        created.view.id,
        created.key.expose_secret().to_owned(),
    )
}

async fn balance(store: &PgStore, id: &KeyId) -> i64 {
    let policy = MeterPolicy::new(GRANTED, None, UtcOffset::UTC);
    store
        .balance(
            &Meter::KeyCredits(id.clone()),
            &policy,
            std::time::SystemTime::now(),
        )
        .await
        .unwrap()
}

fn start_all(schema: &str, key: &str) -> Vec<Instance> {
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..INSTANCES)
            .map(|_| s.spawn(|| Instance::start(schema, key, REQUESTS, LEASE)))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

/// Each instance's admitted count, and the refusals while a lease was coming in all.
fn tally(instances: &mut [Instance]) -> (Vec<i64>, i64) {
    let mut waited = 0;
    let counts = instances
        .iter_mut()
        .map(|i| {
            let line = i.wait_for("admitted ");
            let (admitted, w) = line.split_once(" waited ").unwrap();
            waited += w.parse::<i64>().unwrap();
            admitted.parse().unwrap()
        })
        .collect();
    (counts, waited)
}

/// How many runs of the hammering test (`KEYGATE_CLUSTER_RUNS`, default 2).
fn runs() -> usize {
    std::env::var("KEYGATE_CLUSTER_RUNS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(2)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_processes_never_admit_more_than_the_credits_and_return_every_unused_one() {
    for run in 0..runs() {
        let schema = schema_name("metered_cluster");
        let (store, id, key) = key_on(&schema).await;
        let mut instances = start_all(&schema, &key);
        for i in &mut instances {
            i.say("go");
        }
        let (counts, waited) = tally(&mut instances);
        let admitted: i64 = counts.iter().sum();
        // Traffic has stopped: the lease agents return what is left within 5 s.
        let stopped = Instant::now();
        for i in &mut instances {
            i.say("idle");
        }
        let mut left = balance(&store, &id).await;
        while admitted + left != GRANTED && stopped.elapsed() < Duration::from_secs(10) {
            tokio::time::sleep(Duration::from_millis(50)).await;
            left = balance(&store, &id).await;
        }
        println!(
            "run {run}: admitted {admitted} of {GRANTED} ({counts:?}), {waited} refused while \
             a lease was on its way, {left} back in the ledger {:?} after traffic stopped",
            stopped.elapsed()
        );
        assert!(admitted <= GRANTED, "{admitted} admitted: over-spent");
        let bound = INSTANCES as i64 * LEASE as i64;
        assert!(
            admitted >= GRANTED - bound,
            "{admitted} admitted: more than {bound} credits refused while they remained"
        );
        assert_eq!(admitted + left, GRANTED, "every credit accounted for");
        drop(instances);
        drop_schema(&schema).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_instance_strands_at_most_its_one_lease() {
    let schema = schema_name("metered_crash");
    let (store, id, key) = key_on(&schema).await;
    // Few requests each: all of them hold part of a lease when they stop.
    let mut instances: Vec<Instance> = (0..INSTANCES)
        .map(|_| Instance::start(&schema, &key, 5, LEASE))
        .collect();
    for i in &mut instances {
        i.say("go");
    }
    let (counts, _) = tally(&mut instances);
    let admitted: i64 = counts.iter().sum();
    instances[0].kill();
    for i in &mut instances[1..] {
        i.say("flush");
        i.wait_for("flushed");
    }
    let left = balance(&store, &id).await;
    let stranded = GRANTED - admitted - left;
    println!("killed one of {INSTANCES}: admitted {admitted} ({counts:?}), {left} left, {stranded} stranded");
    assert!(
        (0..=LEASE as i64).contains(&stranded),
        "{stranded} credits stranded by the killed instance: more than its lease of {LEASE}"
    );
    assert!(stranded > 0, "the killed instance held part of a lease");
    drop(instances);
    drop_schema(&schema).await;
}
