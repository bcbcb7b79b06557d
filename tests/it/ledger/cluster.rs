//! Credits shared by four instances, each a process of its own over one PostgreSQL
//! schema, hammering one key with 1,000 credits: never more than 1,000 admitted; no
//! request refused while its instance's lease was on its way (a dry cell awaits it);
//! when the first instance finds the ledger empty, the credits still held elsewhere stay
//! within the documented bound (`(instances - 1) × 1.5 × the largest lease`); and once
//! the leases are back, admitted + remaining = granted. Then one instance is killed
//! holding a lease: the credits it strands stay within the documented bound of one
//! instance (`1.5 × the largest lease`).

use std::time::{Duration, Instant};

use super::instance::{Instance, GRANTED};
use crate::common::pg::*;
use keygate::metering::{CreditLedger, Meter, MeterPolicy, UtcOffset};
use keygate::store::{AccountId, KeyId, PgStore};
use keygate::{Keygate, NewKey};

const INSTANCES: usize = 4;
/// The first lease, and the most a busy meter's lease grows to.
const LEASE: (u64, u64) = (16, 64);
/// What one instance may hold of a meter (the documented bound): its low watermark
/// (half its lease) plus one lease.
const HELD_AT_MOST: i64 = LEASE.1 as i64 * 3 / 2;
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

/// What the instances saw, together.
#[derive(Debug, Default)]
struct Tallies {
    counts: Vec<i64>,
    admitted_at: Vec<u128>,
    refused_at: Vec<u128>,
    waited: i64,
    unavailable: i64,
}

impl Tallies {
    fn admitted(&self) -> i64 {
        self.counts.iter().sum()
    }

    /// Final refusals after which some credit was still admitted somewhere: refused
    /// while credits remained.
    fn refused_while_credits_remained(&self) -> usize {
        let last = self.admitted_at.iter().max().copied().unwrap_or(0);
        self.refused_at.iter().filter(|&&t| t < last).count()
    }

    /// Credits admitted after the first refusal: what was still held (in other
    /// instances' cells or the ledger) when one instance first found the ledger empty.
    fn remained_at_first_refusal(&self) -> i64 {
        let Some(first) = self.refused_at.iter().min() else {
            return 0;
        };
        self.admitted_at.iter().filter(|&&t| t > *first).count() as i64
    }
}

fn times(line: &str) -> impl Iterator<Item = u128> + '_ {
    line.split(',')
        .filter(|t| !t.is_empty())
        .map(|t| t.parse().unwrap())
}

fn tally(instances: &mut [Instance]) -> Tallies {
    let mut all = Tallies::default();
    for i in instances.iter_mut() {
        let line = i.wait_for("admitted ");
        let words: Vec<&str> = line.split(' ').collect();
        all.counts.push(words[0].parse().unwrap());
        all.waited += words[2].parse::<i64>().unwrap();
        all.unavailable += words[4].parse::<i64>().unwrap();
        all.admitted_at.extend(times(&i.wait_for("admitted_at")));
        all.refused_at.extend(times(&i.wait_for("refused_at")));
    }
    all
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
        let t = tally(&mut instances);
        let admitted = t.admitted();
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
        let remained = t.remained_at_first_refusal();
        println!(
            "run {run}: admitted {admitted} of {GRANTED} ({:?}); refused while a lease was on \
             its way {}, fail-closed 503 {}; final refusals {} of which while credits remained \
             {}; credits still held when the first instance found the ledger empty {remained}; \
             left {left}; admitted + left {} ({:?} after traffic stopped)",
            t.counts,
            t.waited,
            t.unavailable,
            t.refused_at.len(),
            t.refused_while_credits_remained(),
            admitted + left,
            stopped.elapsed()
        );
        assert!(admitted <= GRANTED, "{admitted} admitted: over-spent");
        let bound = (INSTANCES as i64 - 1) * HELD_AT_MOST;
        assert!(
            admitted >= GRANTED - bound,
            "{admitted} admitted: more than {bound} credits refused while they remained"
        );
        assert!(
            remained <= bound,
            "{remained} credits held elsewhere when the ledger was first found empty: over {bound}"
        );
        assert_eq!(
            t.waited, 0,
            "no request refused while its lease was on its way"
        );
        assert_eq!(admitted + left, GRANTED, "every credit accounted for");
        drop(instances);
        drop_schema(&schema).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_instance_strands_at_most_what_one_instance_may_hold() {
    // Few requests each: every instance holds part of its first lease when it stops.
    // Then many: the busy instances' leases have grown towards the most allowed.
    for requests in [5, 150] {
        let schema = schema_name("metered_crash");
        let (store, id, key) = key_on(&schema).await;
        let mut instances: Vec<Instance> = (0..INSTANCES)
            .map(|_| Instance::start(&schema, &key, requests, LEASE))
            .collect();
        for i in &mut instances {
            i.say("go");
        }
        let t = tally(&mut instances);
        let (admitted, counts) = (t.admitted(), &t.counts);
        instances[0].kill();
        for i in &mut instances[1..] {
            i.say("flush");
            i.wait_for("flushed");
        }
        let left = balance(&store, &id).await;
        let stranded = GRANTED - admitted - left;
        println!(
            "killed one of {INSTANCES} after {requests} requests each: admitted {admitted} \
             ({counts:?}), {left} left, {stranded} stranded (bound {HELD_AT_MOST})"
        );
        assert!(
            (0..=HELD_AT_MOST).contains(&stranded),
            "{stranded} credits stranded by the killed instance: more than the bound of \
             {HELD_AT_MOST}"
        );
        if requests == 5 {
            assert!(stranded > 0, "the killed instance held part of its lease");
        }
        drop(instances);
        drop_schema(&schema).await;
    }
}
