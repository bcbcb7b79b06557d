//! `PgStore` keeps usage settings: a key's own (credits, quotas, plan) and its account's,
//! which every read of one of the account's keys returns.
#![cfg(feature = "postgres")]

use std::sync::Arc;

use crate::common::pg::*;
use keygate::metering::{Credits, Quota, QuotaPeriod, Refill, RefillInterval, UsageLimits};
use keygate::store::AccountId;
use keygate::{KeyStore, KeyStoreWrite};

#[tokio::test]
async fn usage_settings_of_keys_and_accounts_read_back_with_every_key() {
    let schema = schema_name("usage");
    let store = store_on(&schema, "usage").await;
    let mut r = record("ak_1", "acct", 1);
    r.usage.own.plan = Some("pro".into());
    r.usage.own.credits = Some(Credits::new(500).refill(Refill::new(500, RefillInterval::Month)));
    r.usage.own.quotas = vec![Quota::new(10, QuotaPeriod::Day)];
    store
        .insert(r.clone(), None, at(1_700_000_000))
        .await
        .unwrap();
    assert_eq!(store.get(&r.id).await.unwrap().unwrap().usage, r.usage);

    let account = AccountId::from("acct");
    assert_eq!(store.account_usage(&account).await.unwrap(), None);
    let mut shared = UsageLimits::default();
    shared.credits = Some(Credits::new(1000));
    store.set_account_usage(&account, &shared).await.unwrap();
    assert_eq!(
        store.account_usage(&account).await.unwrap(),
        Some(shared.clone())
    );
    let found = store.find_by_digest(&r.digest).await.unwrap().unwrap();
    assert_eq!(found.usage.own, r.usage.own);
    assert_eq!(found.usage.account, Some(Arc::new(shared)));

    // A replace keeps the key's own settings and never writes the account's.
    let mut changed = found.clone();
    changed.usage.own.quotas.clear();
    store.replace(changed).await.unwrap();
    let again = store.get(&r.id).await.unwrap().unwrap();
    assert!(again.usage.own.quotas.is_empty());
    assert!(again.usage.account.is_some());
    store
        .set_account_usage(&account, &UsageLimits::default())
        .await
        .unwrap();
    assert_eq!(store.get(&r.id).await.unwrap().unwrap().usage.account, None);
    drop_schema(&schema).await;
}
