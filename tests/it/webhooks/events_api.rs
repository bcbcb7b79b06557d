//! The failed-events API over HTTP: listing by status, confined to the caller's
//! account, and re-sending.

use http::{Method, StatusCode};
use keygate::webhooks::{EventsRouter, WebhookSecret};
use keygate::NewKey;

use super::*;
use crate::common::{get, request, send};

#[tokio::test]
async fn failed_events_are_listed_and_resent_over_http() {
    let ca = TestCa::new();
    let secret = WebhookSecret::generate();
    let (clock, time) = manual();
    let script = [Answer::Status(500); 4];
    let rx = receiver(&ca, &secret, &time, &script, Answer::Status(200)).await;
    let webhooks = webhooks_to(&rx, &ca, &secret, &clock)
        .retry_horizon(secs(10))
        .build()
        .unwrap();
    let (_store, _gate, manager) = memory_manager(&clock, webhooks.clone());
    let ops = manager
        .create("acct_1".into(), NewKey::named("ops").scopes(["admin"]))
        .await
        .unwrap();
    let other = manager
        .create("acct_2".into(), NewKey::named("other").scopes(["admin"]))
        .await
        .unwrap();
    assert_eq!(webhooks.deliver_due().await.unwrap().retrying, 2);
    time.advance(secs(5));
    assert_eq!(webhooks.deliver_due().await.unwrap().failed, 2);

    let mut app = EventsRouter::new(webhooks.clone(), &manager).build();
    let key = ops.key.expose_secret();
    let listed = send(&mut app, get("/v1/webhook-events", Some(key))).await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.body);
    let body = listed.json();
    let data = body["data"].as_array().unwrap();
    assert_eq!(data.len(), 1, "only the caller's account: {body}");
    assert_eq!(data[0]["status"], "failed");
    assert_eq!(data[0]["type"], "key.created");
    assert_eq!(data[0]["attempts"], 2);
    assert_eq!(data[0]["payload"]["data"]["key_id"], ops.view.id.as_str());
    assert!(body["next_cursor"].is_null());
    let id = data[0]["id"].as_str().unwrap().to_owned();

    let bad = send(&mut app, get("/v1/webhook-events?status=lost", Some(key))).await;
    assert_eq!(
        (bad.status, bad.code().as_str()),
        (StatusCode::BAD_REQUEST, "invalid_request")
    );
    let anonymous = send(&mut app, get("/v1/webhook-events", None)).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    let reader = manager
        .create("acct_1".into(), NewKey::named("reader").scopes(["read"]))
        .await
        .unwrap();
    let denied = send(
        &mut app,
        get("/v1/webhook-events", Some(reader.key.expose_secret())),
    )
    .await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN);

    // Another account's event is not found, and stays failed.
    let theirs = webhooks
        .events(&keygate::webhooks::EventQuery::default().account("acct_2".into()))
        .await
        .unwrap();
    let path = format!("/v1/webhook-events/{}/retry", theirs[0].id);
    let refused = send(&mut app, request(Method::POST, &path, Some(key))).await;
    assert_eq!(
        (refused.status, refused.code().as_str()),
        (StatusCode::NOT_FOUND, "not_found")
    );
    let path = format!("/v1/webhook-events/{id}/retry");
    let resent = send(&mut app, request(Method::POST, &path, Some(key))).await;
    assert_eq!(resent.status, StatusCode::ACCEPTED, "{}", resent.body);
    let again = send(&mut app, request(Method::POST, &path, Some(key))).await;
    assert_eq!(
        again.status,
        StatusCode::NOT_FOUND,
        "it is no longer failed"
    );
    let listed = send(&mut app, get("/v1/webhook-events", Some(key))).await;
    assert_eq!(listed.json()["data"], serde_json::json!([]));
    // The re-sent event and reader's key.created are due; the receiver now accepts.
    assert_eq!(webhooks.deliver_due().await.unwrap().delivered, 2);
    let delivered = send(
        &mut app,
        get("/v1/webhook-events?status=delivered&limit=1", Some(key)),
    )
    .await;
    let body = delivered.json();
    assert_eq!(body["data"].as_array().unwrap().len(), 1);
    assert!(body["next_cursor"].is_string());
    let other_key = other.key.expose_secret();
    let theirs = send(&mut app, get("/v1/webhook-events", Some(other_key))).await;
    assert_eq!(theirs.json()["data"].as_array().unwrap().len(), 1);
}

#[test]
fn the_openapi_document_describes_both_routes() {
    let doc = serde_json::to_value(EventsRouter::openapi()).unwrap();
    assert!(doc["paths"]["/v1/webhook-events"]["get"].is_object());
    assert!(doc["paths"]["/v1/webhook-events/{id}/retry"]["post"].is_object());
}
