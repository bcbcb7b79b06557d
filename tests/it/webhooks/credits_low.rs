//! `credits.low`: sent once per crossing of a key's or an account's low-credit
//! threshold, re-armed by a refill or a top-up, with the ledger and the webhooks in
//! process. (PostgreSQL: `ledger::low_credits`.)

use std::time::Duration;

use keygate::clock::Clock;
use keygate::metering::{Credits, Refill, RefillInterval, UsageLimits};
use keygate::store::AccountId;
use keygate::webhooks::{EventQuery, EventStatus, WebhookSecret, Webhooks};
use keygate::{KeyManager, Keygate, MemoryStore, NewKey};

use super::manual;
use crate::common::{get, send, Echo};

fn webhooks(clock: &Clock) -> Webhooks {
    Webhooks::builder(
        "https://hooks.example.com/keygate",
        WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap(),
    )
    .clock(clock.clone())
    .build()
    .unwrap()
}

/// A gate and manager over a memory store, leasing `lease` units at a time and never
/// more (a busy meter's lease grows only up to `usage_lease_max`), so that with 1 the
/// balance of record moves with every request.
fn setup(clock: &Clock, lease: u64) -> (Keygate, KeyManager) {
    Keygate::managed(std::sync::Arc::new(MemoryStore::new()))
        .clock(clock.clone())
        .usage_lease(lease)
        .usage_lease_max(lease)
        .webhooks(webhooks(clock))
        .build()
}

/// The payloads of the `credits.low` events queued so far.
async fn low_events(manager: &KeyManager) -> Vec<serde_json::Value> {
    let query = EventQuery::default().status(EventStatus::Pending);
    let mut query = query;
    query.limit = 100;
    manager
        .webhooks()
        .unwrap()
        .events(&query)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.event_type == "credits.low")
        .map(|e| e.payload)
        .collect()
}

async fn spend(gate: &Keygate, key: &str, n: usize) {
    let mut svc = tower::Layer::layer(&gate.layer(), Echo);
    for _ in 0..n {
        assert_eq!(send(&mut svc, get("/", Some(key))).await.status, 200);
    }
}

#[tokio::test]
async fn credits_low_is_sent_once_per_crossing_and_rearmed_by_a_refill() {
    let (clock, time) = manual();
    let (gate, manager) = setup(&clock, 1);
    let credits = Credits::new(5)
        .refill(Refill::new(5, RefillInterval::Day))
        .low(2);
    let created = manager
        .create("acct_1".into(), NewKey::named("billing").credits(credits))
        .await
        .unwrap();
    let key = created.key.expose_secret().to_owned();
    spend(&gate, &key, 2).await;
    assert!(
        low_events(&manager).await.is_empty(),
        "5 -> 3: above the threshold"
    );
    spend(&gate, &key, 1).await;
    let events = low_events(&manager).await;
    assert_eq!(events.len(), 1, "3 -> 2: at the threshold");
    let e = &events[0];
    assert_eq!(e["type"], "credits.low");
    assert_eq!(e["data"]["key_id"], created.view.id.as_str());
    assert_eq!(e["data"]["account_id"], "acct_1");
    assert_eq!(e["data"]["name"], "billing");
    assert_eq!(e["data"]["meter"], "key_credits");
    assert_eq!(e["data"]["remaining"], 2);
    assert_eq!(e["data"]["threshold"], 2);
    assert!(!e.to_string().contains(&key), "never the secret");
    spend(&gate, &key, 2).await;
    assert_eq!(low_events(&manager).await.len(), 1, "2 -> 0: the same dip");

    time.advance(Duration::from_secs(86_400));
    spend(&gate, &key, 2).await;
    assert_eq!(low_events(&manager).await.len(), 1, "refilled to 5, now 3");
    spend(&gate, &key, 1).await;
    assert_eq!(
        low_events(&manager).await.len(),
        2,
        "re-armed by the refill"
    );
}

#[tokio::test]
async fn an_operators_top_up_rearms_and_a_balance_set_low_sends_nothing() {
    let (clock, _time) = manual();
    let (gate, manager) = setup(&clock, 1);
    let account = AccountId::from("acct_1");
    let created = manager
        .create(
            account.clone(),
            NewKey::named("k").credits(Credits::new(3).low(1)),
        )
        .await
        .unwrap();
    let (id, key) = (created.view.id, created.key.expose_secret().to_owned());
    spend(&gate, &key, 2).await;
    assert_eq!(low_events(&manager).await.len(), 1, "3 -> 1");
    manager.adjust_credits(&account, &id, 1).await.unwrap();
    spend(&gate, &key, 1).await;
    assert_eq!(
        low_events(&manager).await.len(),
        2,
        "a top-up to 2, above 1, re-armed it: 2 -> 1 crosses again"
    );
    manager.set_credits(&account, &id, 1).await.unwrap();
    assert_eq!(
        low_events(&manager).await.len(),
        2,
        "set at the threshold: no notice"
    );
    spend(&gate, &key, 1).await;
    assert_eq!(
        low_events(&manager).await.len(),
        2,
        "and disarmed: 1 -> 0 sends nothing"
    );
    manager.adjust_credits(&account, &id, 5).await.unwrap();
    spend(&gate, &key, 3).await;
    assert_eq!(low_events(&manager).await.len(), 2, "5 -> 2");
    spend(&gate, &key, 1).await;
    assert_eq!(
        low_events(&manager).await.len(),
        3,
        "2 -> 1 after a top-up above"
    );
}

#[tokio::test]
async fn an_accounts_shared_credits_send_one_notice_for_all_its_keys() {
    let (clock, _time) = manual();
    let (gate, manager) = setup(&clock, 1);
    let account = AccountId::from("acct_1");
    let mut shared = UsageLimits::default();
    shared.credits = Some(Credits::new(4).low(1));
    manager.set_account_limits(&account, shared).await.unwrap();
    let a = manager
        .create(account.clone(), NewKey::named("a"))
        .await
        .unwrap();
    let b = manager
        .create(account.clone(), NewKey::named("b"))
        .await
        .unwrap();
    spend(&gate, a.key.expose_secret(), 2).await;
    spend(&gate, b.key.expose_secret(), 2).await;
    let events = low_events(&manager).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["data"]["meter"], "account_credits");
    assert_eq!(events[0]["data"]["account_id"], "acct_1");
    assert_eq!(events[0]["data"]["key_id"], serde_json::Value::Null);
    assert_eq!(events[0]["data"]["remaining"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_spenders_cross_the_threshold_once() {
    let (clock, _time) = manual();
    let (gate, manager) = setup(&clock, 1);
    let created = manager
        .create(
            "acct_1".into(),
            NewKey::named("k").credits(Credits::new(160).low(80)),
        )
        .await
        .unwrap();
    let key = created.key.expose_secret().to_owned();
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (gate, key) = (gate.clone(), key.clone());
            tokio::spawn(async move { spend(&gate, &key, 20).await })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let events = low_events(&manager).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["data"]["remaining"], 80);
    let view = manager
        .get(&"acct_1".into(), &created.view.id)
        .await
        .unwrap();
    assert_eq!(view.usage.unwrap().credits.unwrap().remaining, 0);
}
