//! "Never over-spent" under concurrency: a deterministic interleaving of reservations
//! queued on one row, and a stress test of many instances reserving, charging and
//! releasing at once.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::pg_ledger::{credits, key, t};
use crate::common::pg::*;
use crate::common::services::*;
use keygate::metering::{CreditLedger, MeterPolicy, UtcOffset};
use keygate::store::PgStore;

/// Waits until `n` backends of application `app` wait on a lock.
async fn waiting_on_lock(app: &str, n: i64) {
    let admin = pg_admin().await;
    let waiting = || async {
        admin
            .query_one(
                "SELECT count(*) FROM pg_stat_activity \
                 WHERE application_name = $1 AND wait_event_type = 'Lock'",
                &[&app],
            )
            .await
            .unwrap()
            .get::<_, i64>(0)
            >= n
    };
    assert!(
        eventually(Duration::from_secs(20), waiting).await,
        "{n} reservations never queued on the row"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reservations_queued_on_one_row_are_granted_in_turn_never_past_the_balance() {
    let schema = schema_name("ledger_race");
    let app = unique("ledger_race");
    let a = store_on(&schema, &app).await;
    let b = store_on(&schema, &app).await;
    let (m, p) = (key("ak_1"), credits(10, 10));
    a.set(&m, &p, 10, t(0)).await.unwrap();
    // Hold the row, so that both reservations have read nothing when they queue.
    let mut holder = pg_admin().await;
    let tx = holder.transaction().await.unwrap();
    tx.execute(
        &format!("SELECT balance FROM \"{schema}\".meters FOR UPDATE"),
        &[],
    )
    .await
    .unwrap();
    let ra = tokio::spawn({
        let (m, p) = (m.clone(), p);
        async move { a.reserve(&m, &p, 7, t(1)).await.unwrap() }
    });
    let rb = tokio::spawn({
        let (m, p) = (m.clone(), p);
        async move { b.reserve(&m, &p, 7, t(1)).await.unwrap() }
    });
    waiting_on_lock(&app, 2).await;
    tx.commit().await.unwrap();
    let (ra, rb) = (ra.await.unwrap(), rb.await.unwrap());
    let mut granted = [ra.granted, rb.granted];
    granted.sort_unstable();
    assert_eq!(
        granted,
        [3, 7],
        "the second in line gets what the first left"
    );
    assert_eq!(ra.balance.min(rb.balance), 0);
    drop_schema(&schema).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_instances_reserving_charging_and_releasing_never_spend_more_than_granted() {
    const INSTANCES: usize = 8;
    const BALANCE: i64 = 1_000;
    let schema = schema_name("ledger_stress");
    let mut stores: Vec<Arc<PgStore>> = Vec::new();
    for i in 0..INSTANCES {
        stores.push(Arc::new(store_on(&schema, &format!("stress{i}")).await));
    }
    let m = key("ak_hot");
    let p = MeterPolicy::new(BALANCE, None, UtcOffset::UTC);
    let spent = Arc::new(AtomicU64::new(0));
    let charged = Arc::new(AtomicI64::new(0));
    let reservations = Arc::new(AtomicU64::new(0));
    let tasks: Vec<_> = stores
        .iter()
        .enumerate()
        .map(|(i, store)| {
            let (store, m, p) = (store.clone(), m.clone(), p);
            let (spent, charged, reservations) =
                (spent.clone(), charged.clone(), reservations.clone());
            tokio::spawn(async move {
                let mut n = 0u64;
                loop {
                    n += 1;
                    let want = 1 + (n * 7 + i as u64) % 9;
                    let r = store.reserve(&m, &p, want, t(0)).await.unwrap();
                    reservations.fetch_add(1, Ordering::Relaxed);
                    if r.granted == 0 {
                        return;
                    }
                    // Spend part of the lease, return the rest; now and then a handler
                    // charges 1 more, or refunds 1, after the fact.
                    let used = r.granted.div_ceil(2);
                    spent.fetch_add(used, Ordering::Relaxed);
                    store.release(&m, r.period, r.granted - used).await.unwrap();
                    let delta = match n % 5 {
                        0 => -1,
                        3 => 1,
                        _ => 0,
                    };
                    if delta != 0 {
                        store.adjust(&m, &p, delta, t(0)).await.unwrap();
                        charged.fetch_add(-delta, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let left = stores[0].balance(&m, &p, t(0)).await.unwrap();
    let spent = spent.load(Ordering::Relaxed) as i64;
    let charged = charged.load(Ordering::Relaxed);
    println!(
        "stress: {} reservations from {INSTANCES} instances, {spent} spent, {charged} charged \
         after the fact, {left} left",
        reservations.load(Ordering::Relaxed)
    );
    assert_eq!(
        spent + charged + left,
        BALANCE,
        "every credit accounted for"
    );
    assert!(left <= 0, "traffic stopped only when nothing was left");
    drop_schema(&schema).await;
}
