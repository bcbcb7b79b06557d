//! PostgreSQL: `credits.low` written into the webhook outbox by the very statement that
//! crosses the threshold, once per crossing however many instances reserve, re-armed by
//! a refill or a top-up.

use std::sync::Arc;

use crate::common::pg::*;
use crate::common::services::pg_admin;
use keygate::metering::{CreditLedger, Credits, Meter, MeterPolicy};
use keygate::store::{AccountId, PgStore};
use keygate::webhooks::{WebhookSecret, Webhooks};
use keygate::{Keygate, NewKey};

use super::pg_ledger::{credits, t};

/// A store of `schema` whose webhooks keep their events in it (as each instance's
/// configuration would say).
async fn instance(schema: &str, app: &str) -> PgStore {
    let store = store_on(schema, app).await;
    let _webhooks = Webhooks::builder(
        "https://hooks.example.com/keygate",
        WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap(),
    )
    .postgres(store.clone())
    .build()
    .unwrap();
    store
}

/// The bodies of the `credits.low` rows of the outbox, oldest first.
async fn low_events(schema: &str) -> Vec<serde_json::Value> {
    pg_admin()
        .await
        .query(
            &format!(
                "SELECT body FROM \"{schema}\".webhook_outbox WHERE event_type = 'credits.low' \
                 ORDER BY seq"
            ),
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| serde_json::from_str(r.get::<_, &str>(0)).unwrap())
        .collect()
}

fn account(id: &str) -> Meter {
    Meter::AccountCredits(AccountId::from(id))
}

/// 100 credits, topped up to 100 every minute, low at 50.
fn policy() -> MeterPolicy {
    credits(100, 100).with_low(Some(50))
}

#[tokio::test]
async fn two_instances_interleaved_cross_once_and_a_refill_rearms() {
    let schema = schema_name("low");
    let a = instance(&schema, "low_a").await;
    let b = instance(&schema, "low_b").await;
    let (m, p) = (account("acct_1"), policy());
    assert_eq!(a.reserve(&m, &p, 30, t(0)).await.unwrap().balance, 70);
    assert!(low_events(&schema).await.is_empty());
    assert_eq!(b.reserve(&m, &p, 30, t(1)).await.unwrap().balance, 40);
    let events = low_events(&schema).await;
    assert_eq!(events.len(), 1, "b crossed: 70 -> 40");
    let data = &events[0]["data"];
    assert_eq!(events[0]["type"], "credits.low");
    assert_eq!(data["account_id"], "acct_1");
    assert_eq!(data["meter"], "account_credits");
    assert_eq!(data["key_id"], serde_json::Value::Null);
    assert_eq!(
        (data["remaining"].clone(), data["threshold"].clone()),
        (40.into(), 50.into())
    );
    assert_eq!(a.reserve(&m, &p, 30, t(2)).await.unwrap().balance, 10);
    a.release(&m, 0, 30).await.unwrap();
    assert_eq!(a.reserve(&m, &p, 30, t(3)).await.unwrap().balance, 10);
    assert_eq!(
        low_events(&schema).await.len(),
        1,
        "the same dip, whoever reserves, and returned units do not re-arm"
    );
    // The next minute: refilled to 100, above 50, re-armed.
    assert_eq!(b.reserve(&m, &p, 10, t(60)).await.unwrap().balance, 90);
    assert_eq!(low_events(&schema).await.len(), 1);
    assert_eq!(a.adjust(&m, &p, -45, t(61)).await.unwrap(), 45);
    assert_eq!(low_events(&schema).await.len(), 2, "a charge crosses too");
    // An operator's top-up above re-arms; a balance set at or below disarms silently.
    assert_eq!(a.adjust(&m, &p, 10, t(62)).await.unwrap(), 55);
    a.set(&m, &p, 20, t(63)).await.unwrap();
    b.reserve(&m, &p, 5, t(64)).await.unwrap();
    assert_eq!(low_events(&schema).await.len(), 2);
    drop_schema(&schema).await;
}

#[tokio::test]
async fn a_store_whose_webhooks_are_elsewhere_writes_no_event() {
    let schema = schema_name("low_off");
    let store = store_on(&schema, "low_off").await;
    let (m, p) = (account("acct_1"), policy());
    assert_eq!(store.reserve(&m, &p, 80, t(0)).await.unwrap().balance, 20);
    assert!(low_events(&schema).await.is_empty());
    drop_schema(&schema).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_concurrent_reservations_on_several_instances_cross_once() {
    let schema = schema_name("low_stress");
    let stores = [
        Arc::new(instance(&schema, "low_s1").await),
        Arc::new(instance(&schema, "low_s2").await),
    ];
    let (m, p) = (account("acct_1"), policy());
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let (store, m) = (stores[i % 2].clone(), m.clone());
            tokio::spawn(async move {
                let mut granted = 0;
                for _ in 0..20 {
                    granted += store.reserve(&m, &p, 1, t(5)).await.unwrap().granted;
                }
                granted
            })
        })
        .collect();
    let mut granted = 0;
    for task in tasks {
        granted += task.await.unwrap();
    }
    assert_eq!(granted, 100, "exactly the balance");
    let events = low_events(&schema).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["data"]["remaining"], 50);
    drop_schema(&schema).await;
}

#[tokio::test]
async fn a_keys_event_names_the_key_and_never_its_secret() {
    let schema = schema_name("low_key");
    let store = Arc::new(instance(&schema, "low_key").await);
    let webhooks = Webhooks::builder(
        "https://hooks.example.com/keygate",
        WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap(),
    )
    .postgres((*store).clone())
    .build()
    .unwrap();
    let (_gate, manager) = Keygate::managed(store.clone()).webhooks(webhooks).build();
    let created = manager
        .create(
            "acct_1".into(),
            NewKey::named("billing").credits(Credits::new(3).low(1)),
        )
        .await
        .unwrap();
    let key = created.key.expose_secret().to_owned();
    let account = AccountId::from("acct_1");
    // An operator's charge of 2 takes the balance of record from 3 to 1.
    assert_eq!(
        manager
            .adjust_credits(&account, &created.view.id, -2)
            .await
            .unwrap(),
        1
    );
    let events = low_events(&schema).await;
    assert_eq!(events.len(), 1, "{events:?}");
    let data = &events[0]["data"];
    assert_eq!(data["key_id"], created.view.id.as_str());
    assert_eq!(data["name"], "billing");
    assert_eq!(data["meter"], "key_credits");
    assert_eq!(data["remaining"], 1);
    assert!(!events[0].to_string().contains(&key));
    let listed = manager
        .webhooks()
        .unwrap()
        .events(
            &keygate::webhooks::EventQuery::default()
                .status(keygate::webhooks::EventStatus::Pending),
        )
        .await
        .unwrap();
    assert!(
        listed.iter().any(|e| e.event_type == "credits.low"),
        "listed like any event of the outbox"
    );
    drop_schema(&schema).await;
}
