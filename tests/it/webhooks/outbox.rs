//! The outbox in PostgreSQL: events written in the change's transaction, several
//! instances delivering from one schema, and expiry notices sent once.

use std::collections::HashMap;
use std::time::Duration;

use keygate::key::KeyHasher;
use keygate::manage::{KeyUpdate, ManagerConfig};
use keygate::store::PgStore;
use keygate::webhooks::{EventQuery, EventStatus, WebhookSecret, Webhooks};
use keygate::{ManageError, NewKey};

use super::*;
use crate::common::pg::{drop_schema, schema_name, store_on};
use crate::common::services::pg_admin;

async fn count(schema: &str, filter: &str) -> i64 {
    pg_admin()
        .await
        .query_one(
            &format!("SELECT count(*) FROM \"{schema}\".webhook_outbox WHERE {filter}"),
            &[],
        )
        .await
        .unwrap()
        .get(0)
}

/// An instance: its own pool on `schema`, its webhooks and its manager.
async fn instance(
    schema: &str,
    name: &str,
    rx: &Receiver,
    ca: &TestCa,
    secret: &WebhookSecret,
    clock: &Clock,
) -> (Webhooks, KeyManager) {
    let store: PgStore = store_on(schema, name).await;
    let webhooks = webhooks_to(rx, ca, secret, clock)
        .postgres(store.clone())
        .poll_interval(Duration::from_millis(20))
        .build()
        .unwrap();
    let (_gate, manager) = Keygate::managed(store)
        .clock(clock.clone())
        .manager_config(ManagerConfig::default().max_active_keys(None))
        .webhooks(webhooks.clone())
        .build();
    (webhooks, manager)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_deliver_each_of_200_events_exactly_once() {
    let schema = schema_name("webhooks_two");
    let ca = TestCa::new();
    let secret = WebhookSecret::generate();
    let clock = Clock::system();
    let text = secret.expose_secret();
    let rx = Receiver::start(&ca, &[&text], SystemTime::now, &[], Answer::Status(200)).await;
    let (w1, m1) = instance(&schema, "webhooks_a", &rx, &ca, &secret, &clock).await;
    let (w2, m2) = instance(&schema, "webhooks_b", &rx, &ca, &secret, &clock).await;
    let _t1 = w1.start();
    let _t2 = w2.start();
    // Ten writers (five per instance), each creating twenty keys in an account of its own.
    let mut writers = Vec::new();
    for w in 0..10 {
        let m = if w % 2 == 0 { m1.clone() } else { m2.clone() };
        writers.push(tokio::spawn(async move {
            for i in 0..20 {
                m.create(
                    keygate::store::AccountId::new(format!("acct_{w}")),
                    NewKey::named(format!("k{i}")),
                )
                .await
                .unwrap();
            }
        }));
    }
    for w in writers {
        w.await.unwrap();
    }
    assert!(rx.wait_for(200, Duration::from_secs(60)).await);
    // Every row is marked delivered: no instance can try any of them again.
    assert!(
        crate::common::services::eventually(Duration::from_secs(30), || async {
            count(&schema, "status <> 'delivered'").await == 0
        })
        .await
    );
    assert_eq!(
        count(&schema, "status = 'delivered' AND attempts = 1").await,
        200
    );
    let got = rx.deliveries();
    let mut per_id: HashMap<&str, usize> = HashMap::new();
    for d in &got {
        *per_id.entry(d.id.as_str()).or_default() += 1;
        assert_eq!(d.verified, Ok(()));
    }
    assert_eq!(per_id.len(), 200);
    assert!(per_id.values().all(|n| *n == 1), "an event arrived twice");
    assert_eq!(got.len(), 200);
    drop_schema(&schema).await;
}

#[tokio::test]
async fn the_event_is_written_in_the_change_transaction_and_holds_no_secret() {
    let schema = schema_name("webhooks_tx");
    let ca = TestCa::new();
    let secret = WebhookSecret::generate();
    let (clock, time) = manual();
    let rx = receiver(&ca, &secret, &time, &[], Answer::Status(200)).await;
    let store = store_on(&schema, "webhooks_tx").await;
    let webhooks = webhooks_to(&rx, &ca, &secret, &clock)
        .postgres(store.clone())
        .build()
        .unwrap();
    let (_gate, manager) = Keygate::managed(store)
        .clock(clock.clone())
        .manager_config(ManagerConfig::default().max_active_keys(Some(1)))
        .webhooks(webhooks.clone())
        .build();
    let account = "acct_1".into();
    let created = manager
        .create("acct_1".into(), NewKey::named("CI"))
        .await
        .unwrap();
    // Written with the key, before any delivery task ran.
    assert_eq!(count(&schema, "event_type = 'key.created'").await, 1);
    // A change that is refused writes no event.
    let refused = manager.create("acct_1".into(), NewKey::named("two")).await;
    assert!(matches!(refused, Err(ManageError::LimitReached { .. })));
    let id = created.view.id.clone();
    let refused = manager
        .update(&account, &id, KeyUpdate::default().name(""))
        .await;
    assert!(refused.is_err());
    assert_eq!(count(&schema, "true").await, 1);
    let rolled = manager.roll(&account, &id, Some(secs(60))).await.unwrap();
    manager.revoke(&account, &id).await.unwrap();
    manager.delete(&account, &id).await.unwrap();
    assert_eq!(count(&schema, "true").await, 4);
    while webhooks.deliver_due().await.unwrap().attempts() > 0 {}
    assert_eq!(rx.deliveries().len(), 4);

    let hasher = KeyHasher::sha256();
    let rows = pg_admin()
        .await
        .query(
            &format!("SELECT row_to_json(o)::text FROM \"{schema}\".webhook_outbox o"),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(rows.len(), 4);
    for key in [&created.key, &rolled.key] {
        let plain = key.expose_secret();
        let digest = hasher.digest(plain);
        let hex = digest.to_hex();
        let b64 = base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            digest.as_bytes(),
        );
        let forbidden = [
            plain,
            &plain[plain.len() - 20..],
            hex.as_str(),
            b64.as_str(),
        ];
        for row in &rows {
            let text: String = row.get(0);
            assert!(!text.contains(&secret.expose_secret()[6..]));
            for f in forbidden {
                assert!(
                    !text.contains(f),
                    "secret material in an outbox row: {text}"
                );
            }
        }
        for d in rx.deliveries() {
            for f in forbidden {
                assert!(!d.body.contains(f));
            }
        }
    }
    drop_schema(&schema).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_expiring_is_queued_once_per_key_and_expiry_across_instances() {
    let schema = schema_name("webhooks_exp");
    let ca = TestCa::new();
    let secret = WebhookSecret::generate();
    let (clock, time) = manual();
    let rx = receiver(&ca, &secret, &time, &[], Answer::Status(200)).await;
    let (w1, m1) = instance(&schema, "webhooks_e1", &rx, &ca, &secret, &clock).await;
    let (w2, _m2) = instance(&schema, "webhooks_e2", &rx, &ca, &secret, &clock).await;
    let account = "acct_1".into();
    let soon = m1
        .create(
            "acct_1".into(),
            NewKey::named("soon").expires_at(at(3 * 86_400)),
        )
        .await
        .unwrap();
    m1.create(
        "acct_1".into(),
        NewKey::named("later").expires_at(at(30 * 86_400)),
    )
    .await
    .unwrap();
    // Both instances scan at once, twenty times over: one notice.
    for _ in 0..20 {
        let (a, b) = tokio::join!(w1.queue_expiry_notices(), w2.queue_expiry_notices());
        assert!(a.unwrap() + b.unwrap() <= 1);
    }
    assert_eq!(count(&schema, "event_type = 'key.expiring'").await, 1);
    while w2.deliver_due().await.unwrap().attempts() > 0 {}
    let expiring: Vec<_> = rx
        .deliveries()
        .into_iter()
        .map(|d| payload(&d.body))
        .filter(|b| b["type"] == "key.expiring")
        .collect();
    assert_eq!(expiring.len(), 1);
    assert_eq!(expiring[0]["data"]["key_id"], soon.view.id.as_str());
    assert_eq!(
        expiring[0]["data"]["expires_at"],
        "2023-11-17T22:13:20.000Z"
    );
    // A new expiry is a new notice; a scan after delivery sends nothing again.
    assert_eq!(w1.queue_expiry_notices().await.unwrap(), 0);
    m1.update(
        &account,
        &soon.view.id,
        KeyUpdate::default().expires_at(Some(at(4 * 86_400))),
    )
    .await
    .unwrap();
    let (a, b) = tokio::join!(w1.queue_expiry_notices(), w2.queue_expiry_notices());
    assert_eq!(a.unwrap() + b.unwrap(), 1);
    // The far one is announced when it comes within the notice.
    time.advance(secs(24 * 86_400));
    let (a, b) = tokio::join!(w1.queue_expiry_notices(), w2.queue_expiry_notices());
    assert_eq!(a.unwrap() + b.unwrap(), 1);
    assert_eq!(count(&schema, "event_type = 'key.expiring'").await, 3);
    let failed = w1
        .events(&EventQuery::default().status(EventStatus::Failed))
        .await;
    assert!(failed.unwrap().is_empty());
    drop_schema(&schema).await;
}

#[tokio::test]
async fn an_event_under_one_instances_lease_is_not_tried_by_another_until_it_ends() {
    let schema = schema_name("webhooks_lease");
    let ca = TestCa::new();
    let secret = WebhookSecret::generate();
    let (clock, time) = manual();
    // The first try never gets an answer: its instance is stuck, as if it had crashed.
    let rx = receiver(&ca, &secret, &time, &[Answer::Hang], Answer::Status(200)).await;
    let build = |store: PgStore| {
        webhooks_to(&rx, &ca, &secret, &clock)
            .postgres(store)
            .timeout(secs(3600))
            .build()
            .unwrap()
    };
    let w1 = build(store_on(&schema, "webhooks_l1").await);
    let w2 = build(store_on(&schema, "webhooks_l2").await);
    let (_gate, manager) = Keygate::managed(store_on(&schema, "webhooks_l0").await)
        .clock(clock.clone())
        .webhooks(w1.clone())
        .build();
    manager
        .create("acct_1".into(), NewKey::named("CI"))
        .await
        .unwrap();
    let stuck = tokio::spawn({
        let w1 = w1.clone();
        async move { w1.deliver_due().await }
    });
    assert!(rx.wait_for(1, Duration::from_secs(30)).await);
    // Mid-try: the other instance skips the leased row.
    assert_eq!(w2.deliver_due().await.unwrap().attempts(), 0);
    time.advance(secs(3600 + 29));
    assert_eq!(w2.deliver_due().await.unwrap().attempts(), 0);
    // The lease (timeout + 30 s) has ended: the other instance takes the event over.
    time.advance(secs(1));
    assert_eq!(w2.deliver_due().await.unwrap().delivered, 1);
    stuck.abort();
    assert_eq!(
        count(&schema, "status = 'delivered' AND attempts = 1").await,
        1
    );
    let got = rx.deliveries();
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].id, got[1].id);
    assert!(got.iter().all(|d| d.verified.is_ok()));
    drop_schema(&schema).await;
}
