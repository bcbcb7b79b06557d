//! A deleted key's own meters go with it; its account's stay. The account-usage erasure
//! leaves the ledger alone.

use std::sync::Arc;

use crate::common::*;
use keygate::clock::Clock;
use keygate::metering::{
    CreditLedger, Credits, Meter, MeterPolicy, Quota, QuotaPeriod, UsageLimits, UtcOffset,
};
use keygate::store::AccountId;
use keygate::{Keygate, MemoryStore, NewKey};

/// A policy whose initial balance no real meter has: a balance read that answers it
/// found no row for the meter.
fn unseen() -> MeterPolicy {
    MeterPolicy::new(-777, None, UtcOffset::UTC)
}

#[tokio::test]
async fn deleting_a_key_deletes_its_own_meters_and_keeps_its_accounts() {
    let store = Arc::new(MemoryStore::new());
    let (clock, _time) = Clock::manual(t0());
    let (gate, manager) = Keygate::managed(store.clone()).clock(clock).build();
    let account = AccountId::from("acct_1");
    manager
        .set_account_limits(&account, {
            let mut limits = UsageLimits::default();
            limits.credits = Some(Credits::new(50));
            limits
        })
        .await
        .unwrap();
    let created = manager
        .create(
            account.clone(),
            NewKey::named("k")
                .credits(Credits::new(10))
                .quota(Quota::new(100, QuotaPeriod::Day)),
        )
        .await
        .unwrap();
    let (id, key) = (created.view.id, created.key.expose_secret().to_owned());
    let mut svc = tower::Layer::layer(&gate.layer(), Echo);
    for _ in 0..3 {
        assert_eq!(send(&mut svc, get("/", Some(&key))).await.status, 200);
    }
    gate.return_leases().await;
    let now = t0();
    let own = [
        Meter::KeyCredits(id.clone()),
        Meter::KeyQuota(id.clone(), QuotaPeriod::Day),
    ];
    let shared = Meter::AccountCredits(account.clone());
    assert_eq!(store.balance(&own[0], &unseen(), now).await.unwrap(), 7);
    assert_eq!(store.balance(&own[1], &unseen(), now).await.unwrap(), 97);
    assert_eq!(store.balance(&shared, &unseen(), now).await.unwrap(), 47);

    manager.delete(&account, &id).await.unwrap();
    // This instance held nothing back that could be returned to (and re-create) them.
    gate.return_leases().await;
    for meter in &own {
        assert_eq!(
            store.balance(meter, &unseen(), now).await.unwrap(),
            -777,
            "{meter:?} is gone from the ledger"
        );
    }
    assert_eq!(
        store.balance(&shared, &unseen(), now).await.unwrap(),
        47,
        "the account's credits stay"
    );
    assert_eq!(
        manager
            .account_limits(&account)
            .await
            .unwrap()
            .unwrap()
            .credits
            .unwrap()
            .remaining,
        47
    );
}

#[tokio::test]
async fn erasing_an_accounts_usage_leaves_its_balances_alone() {
    let store = Arc::new(MemoryStore::new());
    let (clock, _time) = Clock::manual(t0());
    // Usage counting is on by default over a MemoryStore.
    let (gate, manager) = Keygate::managed(store.clone()).clock(clock).build();
    let account = AccountId::from("acct_1");
    let created = manager
        .create(
            account.clone(),
            NewKey::named("k").credits(Credits::new(10)),
        )
        .await
        .unwrap();
    let (id, key) = (created.view.id, created.key.expose_secret().to_owned());
    let mut svc = tower::Layer::layer(&gate.layer(), Echo);
    assert_eq!(send(&mut svc, get("/", Some(&key))).await.status, 200);
    manager.erase_account_usage(&account).await.unwrap();
    gate.return_leases().await;
    let meter = Meter::KeyCredits(id);
    assert_eq!(store.balance(&meter, &unseen(), t0()).await.unwrap(), 9);
}
