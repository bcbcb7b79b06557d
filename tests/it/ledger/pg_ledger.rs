//! `PgStore` as a credit ledger: reservations, refills at period boundaries, releases,
//! after-the-fact charges, operator settings, and failing closed.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::common::pg::*;
use keygate::metering::{
    CreditLedger, Meter, MeterPolicy, Quota, QuotaPeriod, Refill, RefillInterval, UtcOffset,
};
use keygate::store::{AccountId, KeyId, PgStoreBuilder};
use keygate::StoreError;

pub(super) const MINUTE: Duration = Duration::from_secs(60);

/// `secs` seconds into the Unix epoch: period index `secs / 60` for a one-minute refill.
pub(super) fn t(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

/// Credits starting at `initial`, topped up to `amount` every minute.
pub(super) fn credits(initial: i64, amount: u64) -> MeterPolicy {
    MeterPolicy::new(
        initial,
        Some(Refill::new(amount, RefillInterval::Every(MINUTE))),
        UtcOffset::UTC,
    )
}

pub(super) fn key(id: &str) -> Meter {
    Meter::KeyCredits(KeyId::new(id))
}

#[tokio::test]
async fn a_reservation_grants_what_remains_and_never_takes_the_balance_below_zero() {
    let schema = schema_name("ledger");
    let store = store_on(&schema, "ledger").await;
    let m = key("ak_1");
    let p = MeterPolicy::new(10, None, UtcOffset::UTC);
    let r = store.reserve(&m, &p, 4, t(0)).await.unwrap();
    assert_eq!((r.granted, r.balance, r.next_refill), (4, 6, None));
    let r = store.reserve(&m, &p, 8, t(0)).await.unwrap();
    assert_eq!((r.granted, r.balance), (6, 0));
    let r = store.reserve(&m, &p, 1, t(10_000)).await.unwrap();
    assert_eq!(
        (r.granted, r.balance),
        (0, 0),
        "no refill without a refill policy"
    );
    assert_eq!(store.balance(&m, &p, t(10_000)).await.unwrap(), 0);
    drop_schema(&schema).await;
}

#[tokio::test]
async fn a_refill_tops_up_once_per_boundary_however_many_instances_ask() {
    let schema = schema_name("ledger");
    let a = store_on(&schema, "ledger_a").await;
    let b = store_on(&schema, "ledger_b").await;
    let (m, p) = (key("ak_1"), credits(10, 10));
    assert_eq!(a.reserve(&m, &p, 10, t(0)).await.unwrap().granted, 10);
    assert_eq!(b.reserve(&m, &p, 1, t(59)).await.unwrap().granted, 0);
    // Both instances cross the boundary at 60 s: one top-up between them.
    let ra = a.reserve(&m, &p, 3, t(60)).await.unwrap();
    let rb = b.reserve(&m, &p, 3, t(61)).await.unwrap();
    assert_eq!((ra.granted, rb.granted, rb.balance), (3, 3, 4));
    assert_eq!((ra.period, ra.next_refill), (1, Some(t(120))));
    // An instance whose clock lags behind does not refill again.
    assert_eq!(a.reserve(&m, &p, 0, t(59)).await.unwrap().balance, 4);
    drop_schema(&schema).await;
}

#[tokio::test]
async fn a_top_up_pays_off_a_debt_first_and_never_exceeds_the_amount() {
    let schema = schema_name("ledger");
    let store = store_on(&schema, "ledger").await;
    let (m, p) = (key("ak_1"), credits(10, 10));
    // A handler charged 25 after the fact: the balance is -15.
    assert_eq!(store.adjust(&m, &p, -25, t(0)).await.unwrap(), -15);
    assert_eq!(store.reserve(&m, &p, 1, t(30)).await.unwrap().granted, 0);
    // One boundary: -15 + 10 = -5, still nothing admitted.
    let r = store.reserve(&m, &p, 1, t(60)).await.unwrap();
    assert_eq!((r.granted, r.balance), (0, -5));
    // Two more: -5 + 10 = 5, then min(5 + 10, 10) = 10.
    assert_eq!(store.balance(&m, &p, t(120)).await.unwrap(), 5);
    assert_eq!(store.balance(&m, &p, t(180)).await.unwrap(), 10);
    assert_eq!(store.balance(&m, &p, t(6_000_000)).await.unwrap(), 10);
    // A refund is added as it is, and a top-up never lowers a balance above its amount.
    assert_eq!(store.adjust(&m, &p, 7, t(180)).await.unwrap(), 17);
    assert_eq!(store.balance(&m, &p, t(600)).await.unwrap(), 17);
    drop_schema(&schema).await;
}

#[tokio::test]
async fn a_quota_resets_to_its_limit_at_each_period_start() {
    let schema = schema_name("ledger");
    let store = store_on(&schema, "ledger").await;
    let m = Meter::AccountQuota(AccountId::new("acct_1"), QuotaPeriod::Day);
    let p = MeterPolicy::quota(&Quota::new(3, QuotaPeriod::Day), UtcOffset::UTC);
    let day = 86_400;
    assert_eq!(
        store.reserve(&m, &p, 5, t(day - 1)).await.unwrap().granted,
        3
    );
    store.adjust(&m, &p, -2, t(day - 1)).await.unwrap();
    assert_eq!(store.balance(&m, &p, t(day - 1)).await.unwrap(), -2);
    let r = store.reserve(&m, &p, 5, t(day)).await.unwrap();
    assert_eq!((r.granted, r.next_refill), (3, Some(t(2 * day))));
    drop_schema(&schema).await;
}

#[tokio::test]
async fn released_units_return_within_their_period_and_are_dropped_after_it() {
    let schema = schema_name("ledger");
    let store = store_on(&schema, "ledger").await;
    let (m, p) = (key("ak_1"), credits(10, 10));
    let r = store.reserve(&m, &p, 6, t(0)).await.unwrap();
    store.release(&m, r.period, 2).await.unwrap();
    assert_eq!(store.balance(&m, &p, t(1)).await.unwrap(), 6);
    let r = store.reserve(&m, &p, 6, t(1)).await.unwrap();
    assert_eq!(r.balance, 0);
    // The next period starts (refilled to 10) before the lease comes back.
    assert_eq!(store.reserve(&m, &p, 0, t(60)).await.unwrap().balance, 10);
    store.release(&m, r.period, 6).await.unwrap();
    assert_eq!(store.balance(&m, &p, t(61)).await.unwrap(), 10);
    drop_schema(&schema).await;
}

#[tokio::test]
async fn an_operator_setting_is_the_balance_as_of_now_and_no_refill_undoes_it() {
    let schema = schema_name("ledger");
    let store = store_on(&schema, "ledger").await;
    let (m, p) = (key("ak_1"), credits(10, 10));
    store.reserve(&m, &p, 10, t(0)).await.unwrap();
    // Unused for three periods, then blocked by an operator: the refills due before
    // the setting are not applied on top of it.
    store.set(&m, &p, 0, t(200)).await.unwrap();
    assert_eq!(store.balance(&m, &p, t(200)).await.unwrap(), 0);
    assert_eq!(store.reserve(&m, &p, 1, t(239)).await.unwrap().granted, 0);
    assert_eq!(store.balance(&m, &p, t(240)).await.unwrap(), 10);
    // Other meters of the same owner are separate rows; a deleted meter starts over.
    let account = Meter::AccountCredits(AccountId::new("ak_1"));
    assert_eq!(store.balance(&account, &p, t(240)).await.unwrap(), 10);
    store.delete(&m).await.unwrap();
    assert_eq!(store.balance(&m, &credits(3, 3), t(240)).await.unwrap(), 3);
    drop_schema(&schema).await;
}

#[tokio::test]
async fn an_unreachable_database_fails_every_ledger_call_closed() {
    let mut config = keygate_test_config();
    config.port(1);
    let store = PgStoreBuilder::from_config(config)
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let (m, p) = (key("ak_1"), credits(10, 10));
    let unavailable = |e: StoreError| matches!(e, StoreError::Unavailable(_));
    assert!(unavailable(
        store.reserve(&m, &p, 1, t(0)).await.unwrap_err()
    ));
    assert!(unavailable(store.release(&m, 0, 1).await.unwrap_err()));
    assert!(unavailable(
        store.adjust(&m, &p, 1, t(0)).await.unwrap_err()
    ));
    assert!(unavailable(store.balance(&m, &p, t(0)).await.unwrap_err()));
}

fn keygate_test_config() -> tokio_postgres::Config {
    crate::common::services::pg_config()
}
