//! PostgreSQL: a deleted key's own rows of the `meters` table go in the delete's
//! transaction; its account's stay.

use std::sync::Arc;

use crate::common::pg::*;
use crate::common::services::pg_admin;
use crate::common::{get, send, Echo};
use keygate::metering::{Credits, Quota, QuotaPeriod, UsageLimits};
use keygate::store::AccountId;
use keygate::{Keygate, NewKey};

/// The `(owner_kind, owner_id, meter)` of every row of the schema's `meters` table.
async fn meter_rows(schema: &str) -> Vec<(String, String, String)> {
    pg_admin()
        .await
        .query(
            &format!(
                "SELECT owner_kind, owner_id, meter FROM \"{schema}\".meters ORDER BY 1, 2, 3"
            ),
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect()
}

#[tokio::test]
async fn deleting_a_key_deletes_its_meter_rows_in_the_same_transaction() {
    let schema = schema_name("meters_del");
    let store = Arc::new(store_on(&schema, "meters_del").await);
    let (gate, manager) = Keygate::managed(store.clone()).build();
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
    let other = manager
        .create(
            account.clone(),
            NewKey::named("other").credits(Credits::new(5)),
        )
        .await
        .unwrap();
    let (id, key) = (created.view.id, created.key.expose_secret().to_owned());
    let mut svc = tower::Layer::layer(&gate.layer(), Echo);
    assert_eq!(send(&mut svc, get("/", Some(&key))).await.status, 200);
    gate.return_leases().await;
    let k = |m: &str| ("key".to_owned(), id.to_string(), m.to_owned());
    let o = (
        "key".to_owned(),
        other.view.id.to_string(),
        "credits".to_owned(),
    );
    let a = (
        "account".to_owned(),
        "acct_1".to_owned(),
        "credits".to_owned(),
    );
    let mut before = vec![a.clone(), k("credits"), k("quota:day"), o.clone()];
    before.sort();
    assert_eq!(meter_rows(&schema).await, before);

    manager.delete(&account, &id).await.unwrap();
    gate.return_leases().await;
    assert_eq!(
        meter_rows(&schema).await,
        vec![a, o],
        "the key's rows are gone; its account's and the other key's stay"
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
        49
    );
    drop_schema(&schema).await;
}
