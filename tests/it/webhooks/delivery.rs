//! Delivery from the in-process queue: signatures, retries with backoff, the horizon,
//! rotation, and a receiver that never answers.

use std::time::Duration;

use keygate::key::KeyHasher;
use keygate::manage::KeyUpdate;
use keygate::webhooks::{
    EventQuery, EventStatus, EventType, WebhookConfigError, WebhookEvent, WebhookSecret, Webhooks,
};
use keygate::{KeyStoreWrite, NewKey};

use super::*;
use crate::common::webhook_receiver::verify;

#[tokio::test]
async fn the_third_try_arrives_after_two_failures_signed_as_the_specification_says() {
    let ca = TestCa::new();
    let secret = WebhookSecret::generate();
    let (clock, time) = manual();
    let rx = receiver(
        &ca,
        &secret,
        &time,
        &[Answer::Status(500), Answer::Status(503)],
        Answer::Status(204),
    )
    .await;
    let webhooks = webhooks_to(&rx, &ca, &secret, &clock).build().unwrap();
    let (_store, _gate, manager) = memory_manager(&clock, webhooks.clone());
    let created = manager
        .create("acct_1".into(), NewKey::named("CI"))
        .await
        .unwrap();

    assert_eq!(webhooks.deliver_due().await.unwrap().retrying, 1);
    // The first retry is due 5 s later, not before.
    time.advance(secs(4));
    assert_eq!(webhooks.deliver_due().await.unwrap().attempts(), 0);
    time.advance(secs(1));
    assert_eq!(webhooks.deliver_due().await.unwrap().retrying, 1);
    // The second, 10 s after that.
    time.advance(secs(9));
    assert_eq!(webhooks.deliver_due().await.unwrap().attempts(), 0);
    time.advance(secs(1));
    assert_eq!(webhooks.deliver_due().await.unwrap().delivered, 1);
    time.advance(secs(3600));
    assert_eq!(webhooks.deliver_due().await.unwrap().attempts(), 0);

    let got = rx.deliveries();
    assert_eq!(got.len(), 3);
    for d in &got {
        assert_eq!(d.verified, Ok(()), "{d:?}");
        assert_eq!(d.id, got[0].id, "webhook-id is stable across tries");
        assert_eq!(d.body, got[0].body, "the body is the same on every try");
    }
    let stamps: Vec<u64> = got.iter().map(|d| d.timestamp.parse().unwrap()).collect();
    let t = crate::common::T0;
    assert_eq!(stamps, [t, t + 5, t + 15]);
    assert!(got[0].id.starts_with("msg_"));
    let body = payload(&got[0].body);
    assert_eq!(body["type"], "key.created");
    assert_eq!(body["timestamp"], "2023-11-14T22:13:20.000Z");
    assert_eq!(body["data"]["key_id"], created.view.id.as_str());
    assert_eq!(body["data"]["account_id"], "acct_1");
    assert_eq!(body["data"]["name"], "CI");
    assert!(webhooks
        .events(&EventQuery::default())
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn a_dead_receiver_is_tried_until_the_horizon_then_listed_as_failed_and_resent() {
    let ca = TestCa::new();
    let secret = WebhookSecret::generate();
    let (clock, time) = manual();
    let rx = receiver(
        &ca,
        &secret,
        &time,
        &[Answer::Status(500), Answer::Status(500)],
        Answer::Status(200),
    )
    .await;
    let webhooks = webhooks_to(&rx, &ca, &secret, &clock)
        .retry_horizon(secs(10))
        .build()
        .unwrap();
    let (_store, _gate, manager) = memory_manager(&clock, webhooks.clone());
    manager
        .create("acct_1".into(), NewKey::named("CI"))
        .await
        .unwrap();
    assert_eq!(webhooks.deliver_due().await.unwrap().retrying, 1);
    time.advance(secs(5));
    // The next try would be at 15 s, past the 10 s horizon: failed now.
    assert_eq!(webhooks.deliver_due().await.unwrap().failed, 1);
    time.advance(secs(3600));
    assert_eq!(webhooks.deliver_due().await.unwrap().attempts(), 0);

    let failed = webhooks.events(&EventQuery::default()).await.unwrap();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].status, EventStatus::Failed);
    assert_eq!(failed[0].attempts, 2);
    assert_eq!(
        failed[0].last_error.as_deref(),
        Some("answered 500 Internal Server Error")
    );
    assert_eq!(failed[0].payload["type"], "key.created");

    assert!(!webhooks.retry("msg_nope", None).await.unwrap());
    assert!(!webhooks
        .retry(&failed[0].id, Some(&"acct_2".into()))
        .await
        .unwrap());
    assert!(webhooks.retry(&failed[0].id, None).await.unwrap());
    assert_eq!(webhooks.deliver_due().await.unwrap().delivered, 1);
    let got = rx.deliveries();
    assert_eq!(got.len(), 3);
    assert_eq!(got[2].id, failed[0].id);
    let query = EventQuery::default().status(EventStatus::Delivered);
    assert_eq!(webhooks.events(&query).await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_rotated_secret_signs_alongside_the_new_one_until_its_end() {
    let ca = TestCa::new();
    let old = WebhookSecret::generate();
    let new = WebhookSecret::generate();
    let (clock, time) = manual();
    // This receiver still only knows the old secret.
    let rx = receiver(&ca, &old, &time, &[], Answer::Status(200)).await;
    let webhooks = webhooks_to(&rx, &ca, &new, &clock)
        .previous_secret(old.clone(), at(60))
        .build()
        .unwrap();
    let (_store, _gate, manager) = memory_manager(&clock, webhooks.clone());
    manager
        .create("acct_1".into(), NewKey::named("a"))
        .await
        .unwrap();
    assert_eq!(webhooks.deliver_due().await.unwrap().delivered, 1);
    time.advance(secs(60));
    manager
        .create("acct_1".into(), NewKey::named("b"))
        .await
        .unwrap();
    assert_eq!(webhooks.deliver_due().await.unwrap().delivered, 1);

    let got = rx.deliveries();
    assert_eq!(got[0].signature.split(' ').count(), 2);
    assert_eq!(got[0].verified, Ok(()));
    let new_text = new.expose_secret();
    let now = time.now();
    let check = |d: &crate::common::webhook_receiver::Delivery| {
        verify(
            &new_text,
            &d.id,
            &d.timestamp,
            &d.signature,
            d.body.as_bytes(),
            now,
        )
    };
    assert_eq!(check(&got[0]), Ok(()));
    // Past its end the old secret signs nothing.
    assert_eq!(got[1].signature.split(' ').count(), 1);
    assert!(got[1].verified.is_err());
    assert_eq!(check(&got[1]), Ok(()));
}

#[tokio::test]
async fn every_change_sends_its_event_and_none_carries_a_secret_or_digest() {
    let ca = TestCa::new();
    let secret = WebhookSecret::generate();
    let (clock, time) = manual();
    let rx = receiver(&ca, &secret, &time, &[], Answer::Status(200)).await;
    let webhooks = webhooks_to(&rx, &ca, &secret, &clock).build().unwrap();
    let (store, _gate, manager) = memory_manager(&clock, webhooks.clone());
    let account = "acct_1".into();
    let created = manager
        .create("acct_1".into(), NewKey::named("CI").scopes(["read"]))
        .await
        .unwrap();
    let id = created.view.id.clone();
    manager
        .update(&account, &id, KeyUpdate::default().name("CI (main)"))
        .await
        .unwrap();
    let rolled = manager.roll(&account, &id, Some(secs(60))).await.unwrap();
    manager.revoke(&account, &id).await.unwrap();
    manager.revoke(&account, &id).await.unwrap();
    let record = store.get(&id).await.unwrap().unwrap();
    let leak = WebhookEvent::key_leaked(
        &record,
        "https://github.com/o/r",
        "Content",
        "keygate",
        "revoked",
        time.now(),
    );
    let credits = WebhookEvent::credits_low(&record, 9, 10, time.now());
    assert_eq!(webhooks.enqueue([leak, credits]).await.unwrap(), 2);
    manager.delete(&account, &id).await.unwrap();
    while webhooks.deliver_due().await.unwrap().attempts() > 0 {}

    let got = rx.deliveries();
    let bodies: Vec<serde_json::Value> = got.iter().map(|d| payload(&d.body)).collect();
    let types: Vec<&str> = bodies.iter().map(|b| b["type"].as_str().unwrap()).collect();
    assert_eq!(
        types,
        [
            "key.created",
            "key.updated",
            "key.rolled",
            "key.revoked",
            "key.leaked",
            "credits.low",
            "key.deleted"
        ],
        "one event per change; the second revoke changed nothing"
    );
    assert_eq!(bodies[0]["data"]["scopes"], serde_json::json!(["read"]));
    assert_eq!(bodies[1]["data"]["changed"], serde_json::json!(["name"]));
    assert_eq!(bodies[2]["data"]["grace_until"], "2023-11-14T22:14:20.000Z");
    assert_eq!(bodies[4]["data"]["url"], "https://github.com/o/r");
    assert_eq!(bodies[5]["data"]["remaining"], 9);
    for b in &bodies {
        assert_eq!(b["data"]["key_id"], id.as_str());
        assert_eq!(b["data"]["account_id"], "acct_1");
    }
    let hasher = KeyHasher::sha256();
    for key in [&created.key, &rolled.key] {
        let plain = key.expose_secret();
        let digest = hasher.digest(plain);
        let forbidden = [
            plain.to_owned(),
            plain[plain.len() - 20..].to_owned(),
            digest.to_hex(),
            base64::Engine::encode(
                &base64::engine::general_purpose::STANDARD,
                digest.as_bytes(),
            ),
        ];
        for d in &got {
            for f in &forbidden {
                assert!(
                    !d.body.contains(f.as_str()),
                    "secret material in {}",
                    d.body
                );
            }
        }
    }
    assert!(got.iter().all(|d| d.verified.is_ok()));
}

#[tokio::test]
async fn a_receiver_that_never_answers_does_not_hold_up_management_calls() {
    let ca = TestCa::new();
    let secret = WebhookSecret::generate();
    let (clock, time) = manual();
    let rx = receiver(&ca, &secret, &time, &[], Answer::Hang).await;
    let webhooks = webhooks_to(&rx, &ca, &secret, &clock)
        .timeout(Duration::from_secs(3600))
        .build()
        .unwrap();
    let _task = webhooks.start();
    let (_store, _gate, manager) = memory_manager(&clock, webhooks.clone());
    manager
        .create("acct_1".into(), NewKey::named("first"))
        .await
        .unwrap();
    // The delivery task is now inside the first try, which never gets an answer.
    assert!(rx.wait_for(1, Duration::from_secs(30)).await);
    let account = "acct_1".into();
    for i in 0..20 {
        let c = manager
            .create("acct_1".into(), NewKey::named(format!("k{i}")))
            .await
            .unwrap();
        manager.revoke(&account, &c.view.id).await.unwrap();
    }
    // Every call returned while the receiver still had not answered a single try.
    let pending = webhooks
        .events(
            &EventQuery::default()
                .status(EventStatus::Pending)
                .limit(100),
        )
        .await
        .unwrap();
    assert_eq!(pending.len(), 41);
    assert!(
        rx.deliveries().len() <= 8,
        "at most one batch's concurrency in flight"
    );
}

#[test]
fn plain_http_and_user_information_are_refused_and_debug_shows_only_the_origin() {
    let secret = WebhookSecret::generate();
    let err = Webhooks::builder("http://hooks.example.com/x", secret.clone())
        .build()
        .unwrap_err();
    assert!(matches!(err, WebhookConfigError::PlainHttp));
    let err = Webhooks::builder("https://user:pw@hooks.example.com/x", secret.clone())
        .build()
        .unwrap_err();
    assert!(matches!(err, WebhookConfigError::InvalidUrl(_)));
    let ok = Webhooks::builder("http://127.0.0.1:9/hook?token=abc", secret.clone())
        .allow_plain_http()
        .build()
        .unwrap();
    let debug = format!("{ok:?}");
    assert!(debug.contains("http://127.0.0.1:9") && !debug.contains("token"));
    assert!(!debug.contains(&secret.expose_secret()[6..]));
    assert_eq!(
        EventType::parse("key.expiring"),
        Some(EventType::KeyExpiring)
    );
}
