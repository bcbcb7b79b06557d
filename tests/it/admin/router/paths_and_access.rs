//! Base path, access per action, body limit and per-key quota of the configured router.

use crate::admin::router::support::*;
use crate::common::*;
use http::Method;
use keygate::admin::{self, Access, Action, RouterBuilder};
use keygate::store::RateLimit;
use keygate::NewKey;
use serde_json::{json, Value};

#[tokio::test]
async fn the_base_path_moves_every_route() {
    let s = Served::new(|b| b.base_path("/api/v3/credentials")).await;
    let a = s
        .admin(Method::POST, "/api/v3/credentials", json!({"name": "k"}))
        .await;
    assert_eq!(a.status, 201, "{}", a.body);
    let id = a.json()["id"].as_str().unwrap().to_owned();
    let one = format!("/api/v3/credentials/{id}");
    assert_eq!(s.admin(Method::GET, &one, Value::Null).await.status, 200);
    let roll = format!("{one}/roll");
    assert_eq!(s.admin(Method::POST, &roll, json!({})).await.status, 200);
    let listed = s
        .admin(Method::GET, "/api/v3/credentials", Value::Null)
        .await;
    assert_eq!(listed.json()["data"].as_array().unwrap().len(), 2);
    // Nothing is left at the default path.
    let a = s.admin(Method::GET, "/v1/api-keys", Value::Null).await;
    assert_eq!(a.status, 404);
}

#[test]
#[should_panic(expected = "base path")]
fn a_base_path_without_a_leading_slash_is_refused_at_build_time() {
    let h = Harness::new();
    let _ = admin::builder(h.manager.clone()).base_path("v1/keys");
}

#[tokio::test]
async fn access_is_set_per_action_and_actions_can_be_turned_off() {
    let s = Served::new(|b| {
        b.access(Action::List, Access::AnyKey)
            .access(Action::Create, Access::any_of(["keys:write"]))
            .access(Action::Delete, Access::Off)
            .access(Action::Roll, Access::Off)
    })
    .await;
    let (_, plain) = s.h.key("acct_1", &[]).await;
    let (_, writer) = s.h.key("acct_1", &["keys:write"]).await;
    // Any key of the account lists; only `keys:write` creates (the admin key too, as
    // `admin` grants every scope).
    let a = s.call(Method::GET, "/v1/api-keys", Some(&plain), "").await;
    assert_eq!(a.status, 200, "{}", a.body);
    let body = json!({"name": "k"}).to_string();
    let a = s
        .call(Method::POST, "/v1/api-keys", Some(&plain), &body)
        .await;
    assert_eq!(a.status, 403);
    assert_eq!(a.code(), "insufficient_scope");
    let challenge = a.header("www-authenticate").unwrap();
    assert!(challenge.contains("scope=\"keys:write\""), "{challenge}");
    let a = s
        .call(Method::POST, "/v1/api-keys", Some(&writer), &body)
        .await;
    assert_eq!(a.status, 201, "{}", a.body);
    let id = a.json()["id"].as_str().unwrap().to_owned();
    // `get` kept its default: `admin` or `read-only`.
    let one = format!("/v1/api-keys/{id}");
    let a = s.call(Method::GET, &one, Some(&writer), "").await;
    assert_eq!(a.code(), "insufficient_scope");
    // Delete is off: 405 naming what is allowed; roll is off: no route at all.
    let a = s.admin(Method::DELETE, &one, Value::Null).await;
    assert_eq!(a.status, 405);
    assert_eq!(a.code(), "method_not_allowed");
    assert_eq!(a.header("allow"), Some("GET, PATCH"));
    assert_eq!(a.header("content-type"), Some("application/json"));
    let a = s
        .admin(Method::POST, &format!("{one}/roll"), json!({}))
        .await;
    assert_eq!(a.status, 404);
    let view = s.admin(Method::GET, &one, Value::Null).await.json();
    assert_eq!(view["revoked_at"], Value::Null);
}

#[tokio::test]
async fn any_key_still_keeps_read_only_keys_to_reads() {
    let s = Served::new(RouterBuilder::any_key).await;
    let (_, reader) = s.h.key("acct_1", &["read-only"]).await;
    assert_eq!(
        s.call(Method::GET, "/v1/api-keys", Some(&reader), "")
            .await
            .status,
        200
    );
    let body = json!({"name": "k", "scopes": ["read-only"]}).to_string();
    let a = s
        .call(Method::POST, "/v1/api-keys", Some(&reader), &body)
        .await;
    assert_eq!(a.status, 403);
    assert_eq!(a.code(), "insufficient_scope");
}

#[tokio::test]
async fn a_body_over_the_configured_limit_is_413_and_creates_nothing() {
    let s = Served::new(|b| b.max_body_bytes(1024)).await;
    let body = json!({"name": "big", "metadata": {"blob": "x".repeat(2000)}});
    let a = s.admin(Method::POST, "/v1/api-keys", body).await;
    assert_eq!(a.status, 413, "{}", a.body);
    assert_eq!(a.code(), "body_too_large");
    assert!(a.body.contains("1024"));
    let listed = s
        .admin(Method::GET, "/v1/api-keys", Value::Null)
        .await
        .json();
    assert_eq!(listed["data"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn a_per_key_quota_is_enforced_on_the_management_routes() {
    let s = Served::new(RouterBuilder::any_key).await;
    let (_, key) =
        s.h.key_with(
            "acct_1",
            NewKey::named("slow").rate_limit(RateLimit::new(1, 1)),
        )
        .await;
    let first = s.call(Method::GET, "/v1/api-keys", Some(&key), "").await;
    assert_eq!(first.status, 200);
    let second = s.call(Method::GET, "/v1/api-keys", Some(&key), "").await;
    assert_eq!(second.status, 429);
    assert_eq!(second.code(), "rate_limited");
    assert_eq!(second.header("retry-after"), Some("1"));
}
