//! Conformance with the Vidbeo seed (`shared/seeds/002_*.txt`): its whole documented
//! `/v2/keys` API, driven over loopback HTTP against `examples/vidbeo.rs`: every field
//! of its response format, the envelope of each example response, `value` shown once,
//! `permissions`, `ips`, `limit` and `cursor` with `links.next`, and `DELETE`.
//!
//! The seed gives no status codes and no error bodies. The tests hold keygate's: 201 on
//! creation, 200 otherwise, and refusals as `"success": false` with
//! `errors: [{"code", "message"}]` and the usual statuses.

use std::sync::Arc;

use http::Method;
use keygate::{AccountId, KeyManager, MemoryStore, NewKey};
use serde_json::{json, Value};

use crate::client::{field_names, is_rfc3339_millis, Client};

#[allow(dead_code)]
#[path = "../../examples/vidbeo.rs"]
mod example;

/// The seed's "Response format" table, plus `type`'s constant value.
const KEY_FIELDS: [&str; 9] = [
    "created_by",
    "created_time",
    "id",
    "ips",
    "name",
    "permissions",
    "type",
    "updated_by",
    "updated_time",
];

/// The Vidbeo example served, with the account's first key (from "the dashboard").
struct Vidbeo {
    client: Client,
    manager: KeyManager,
    /// The dashboard's read-write key, and its id.
    first: String,
    first_id: String,
}

impl Vidbeo {
    async fn new() -> Self {
        let (_gate, manager) = example::deployment(Arc::new(MemoryStore::new()));
        let first = manager
            .create(AccountId::from("acct_1"), NewKey::named("Dashboard key"))
            .await
            .unwrap();
        Self {
            client: Client::serving(example::app(manager.clone())).await,
            manager,
            first: first.key.expose_secret().to_owned(),
            first_id: first.view.id.as_str().to_owned(),
        }
    }

    /// POST /v2/keys as the first key; returns the `result`.
    async fn create(&self, body: Value) -> Value {
        let a = self.client.post("/v2/keys", &self.first, body).await;
        assert_eq!(a.status, 201, "{}", a.body);
        a.json()["result"].clone()
    }
}

/// The envelope of a successful answer: `success`, `result`, `links`, `errors` and
/// nothing else; returns the result.
fn ok(a: &crate::common::Answer, links: Value) -> Value {
    assert!(a.status.is_success(), "{} {}", a.status, a.body);
    assert_eq!(a.header("content-type"), Some("application/json"));
    let body = a.json();
    assert_eq!(field_names(&body), ["errors", "links", "result", "success"]);
    assert_eq!(body["success"], true);
    assert_eq!(body["errors"], json!([]));
    assert_eq!(body["links"], links);
    body["result"].clone()
}

/// A refusal in Vidbeo's envelope with this status and error code.
fn refused(a: &crate::common::Answer, status: u16, code: &str) -> String {
    assert_eq!(a.status, status, "{}", a.body);
    assert_eq!(a.header("content-type"), Some("application/json"));
    let body = a.json();
    assert_eq!(field_names(&body), ["errors", "links", "result", "success"]);
    assert_eq!(body["success"], false);
    assert_eq!(body["result"], Value::Null);
    assert_eq!(body["links"], Value::Null);
    let errors = body["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{}", a.body);
    assert_eq!(field_names(&errors[0]), ["code", "message"]);
    assert_eq!(errors[0]["code"], code, "{}", a.body);
    errors[0]["message"].as_str().unwrap().to_owned()
}

fn assert_key_format(key: &Value) {
    let mut expected: Vec<&str> = KEY_FIELDS.to_vec();
    if key.get("value").is_some() {
        expected.push("value");
        expected.sort();
    }
    assert_eq!(field_names(key), expected, "{key}");
    assert_eq!(key["type"], "api");
    assert!(key["id"].as_str().is_some_and(|id| !id.is_empty()));
    assert!(is_rfc3339_millis(key["created_time"].as_str().unwrap()));
    assert!(is_rfc3339_millis(key["updated_time"].as_str().unwrap()));
}

#[tokio::test]
async fn post_keys_creates_a_key_and_reveals_its_value_this_once() {
    let v = Vidbeo::new().await;
    // The seed's example request, verbatim.
    let body = r#"{"type":"api", "name": "Example", "permissions": [], "ips": ["1.2.3.4"]}"#;
    let a = v
        .client
        .call(Method::POST, "/v2/keys", Some(&v.first), body)
        .await;
    assert_eq!(a.status, 201, "{}", a.body);
    let key = ok(&a, Value::Null);
    assert_key_format(&key);
    assert_eq!(key["name"], "Example");
    assert_eq!(key["permissions"], json!([]));
    assert_eq!(key["ips"], json!(["1.2.3.4"]));
    assert_eq!(key["created_by"], v.first_id.as_str());
    assert_eq!(key["updated_by"], v.first_id.as_str());
    assert_eq!(key["created_time"], key["updated_time"]);
    let value = key["value"].as_str().unwrap().to_owned();
    let id = key["id"].as_str().unwrap();

    // The value is a working key (here refused only for its IP allowlist).
    let a = v.client.get("/v2/keys", &value).await;
    refused(&a, 403, "ip_not_allowed");

    // Never revealed again: not by GET /keys/:id, not by GET /keys.
    for path in [format!("/v2/keys/{id}"), "/v2/keys".to_owned()] {
        let a = v.client.get(&path, &v.first).await;
        assert_eq!(a.status, 200);
        assert!(!a.body.contains(&value[8..]), "value shown again by {path}");
        assert!(!a.body.contains("\"value\""), "{}", a.body);
    }
}

#[tokio::test]
async fn get_keys_lists_every_key_of_the_account_with_links_empty() {
    let v = Vidbeo::new().await;
    let created = v
        .create(json!({"type": "api", "name": "Example key", "permissions": [], "ips": []}))
        .await;
    let a = v.client.get("/v2/keys", &v.first).await;
    let keys = ok(&a, json!({}));
    let keys = keys.as_array().unwrap();
    assert_eq!(keys.len(), 2);
    for key in keys {
        assert_key_format(key);
        assert!(key.get("value").is_none());
    }
    // The dashboard's key was created by no key: `created_by` is not known.
    assert_eq!(keys[0]["id"], v.first_id.as_str());
    assert_eq!(keys[0]["created_by"], Value::Null);
    let mut shown = created.clone();
    shown.as_object_mut().unwrap().remove("value");
    assert_eq!(keys[1], shown);

    // Keys of another account are not listed.
    v.manager
        .create(AccountId::from("acct_2"), NewKey::named("elsewhere"))
        .await
        .unwrap();
    let a = v.client.get("/v2/keys", &v.first).await;
    assert_eq!(ok(&a, json!({})).as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn limit_defaults_to_25_and_the_next_page_is_the_links_next_url() {
    let v = Vidbeo::new().await;
    for i in 0..29 {
        v.create(json!({"type": "api", "name": format!("k{i}"), "permissions": [], "ips": []}))
            .await;
    }
    // 30 keys: 25, then 5.
    let a = v.client.get("/v2/keys", &v.first).await;
    let body = a.json();
    let first_page = ok(&a, body["links"].clone());
    assert_eq!(first_page.as_array().unwrap().len(), 25);
    let next = body["links"]["next"].as_str().unwrap().to_owned();
    assert!(next.starts_with("/v2/keys?"), "{next}");
    assert!(next.contains("cursor="), "{next}");
    assert_eq!(field_names(&body["links"]), ["next"]);

    let a = v.client.get(&next, &v.first).await;
    let second_page = ok(&a, json!({}));
    assert_eq!(second_page.as_array().unwrap().len(), 5);
    let mut ids: Vec<&str> = first_page
        .as_array()
        .unwrap()
        .iter()
        .chain(second_page.as_array().unwrap())
        .map(|k| k["id"].as_str().unwrap())
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 30, "every key once");

    // `limit` and `cursor` by hand; an empty cursor is the first page.
    let a = v.client.get("/v2/keys?limit=10&cursor=", &v.first).await;
    let body = a.json();
    assert_eq!(ok(&a, body["links"].clone()).as_array().unwrap().len(), 10);
    assert!(body["links"]["next"].as_str().unwrap().contains("limit=10"));
    for bad in ["limit=0", "limit=abc", "limit=101", "cursor=nonsense!"] {
        let a = v.client.get(&format!("/v2/keys?{bad}"), &v.first).await;
        let message = refused(&a, 400, "invalid_request");
        assert!(
            message.starts_with(&bad[..bad.find('=').unwrap()]),
            "{message}"
        );
    }
}

#[tokio::test]
async fn get_keys_id_returns_one_key_with_links_null_or_404() {
    let v = Vidbeo::new().await;
    let created = v
        .create(json!({"type": "api", "name": "Example key", "permissions": ["fetch"], "ips": []}))
        .await;
    let id = created["id"].as_str().unwrap();
    let a = v.client.get(&format!("/v2/keys/{id}"), &v.first).await;
    assert_eq!(a.status, 200);
    let key = ok(&a, Value::Null);
    assert_key_format(&key);
    assert_eq!(key["permissions"], json!(["fetch"]));
    assert!(key.get("value").is_none());

    let a = v
        .client
        .get("/v2/keys/abcde12345abcde12345a", &v.first)
        .await;
    refused(&a, 404, "not_found");
}

#[tokio::test]
async fn patch_keys_id_updates_the_attributes_given_and_records_who() {
    let v = Vidbeo::new().await;
    let created = v
        .create(json!({"type": "api", "name": "Example", "permissions": [], "ips": []}))
        .await;
    let id = created["id"].as_str().unwrap();
    let path = format!("/v2/keys/{id}");
    // Another read-write key makes the change.
    let other = v
        .create(json!({"type": "api", "name": "Other", "permissions": [], "ips": []}))
        .await;
    let other_key = other["value"].as_str().unwrap();

    // The seed's example request, verbatim.
    let a = v
        .client
        .call(
            Method::PATCH,
            &path,
            Some(other_key),
            r#"{"name":"New name"}"#,
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    let key = ok(&a, Value::Null);
    assert_key_format(&key);
    assert_eq!(key["name"], "New name");
    assert_eq!(key["created_by"], v.first_id.as_str(), "the creator stays");
    assert_eq!(key["updated_by"], other["id"]);
    assert_eq!(key["created_time"], created["created_time"]);
    assert_eq!(v.client.get(&path, &v.first).await.json()["result"], key);

    // Several attributes at once.
    let a = v
        .client
        .patch(
            &path,
            &v.first,
            json!({"permissions": ["fetch"], "ips": ["10.0.0.0/8"]}),
        )
        .await;
    let key = ok(&a, Value::Null);
    assert_eq!(key["permissions"], json!(["fetch"]));
    assert_eq!(key["ips"], json!(["10.0.0.0/8"]));
    assert_eq!(key["name"], "New name");
    assert_eq!(key["updated_by"], v.first_id.as_str());

    for (body, field) in [
        (json!({"name": ""}), "name"),
        (json!({"name": "x".repeat(51)}), "name"),
        (json!({"type": "user"}), "type"),
        (json!({"ips": ["999.1.1.1"]}), "ips"),
        (json!({"created_by": "me"}), "created_by"),
        (json!({"scopes": []}), "scopes"),
    ] {
        let message = refused(
            &v.client.patch(&path, &v.first, body).await,
            400,
            "invalid_request",
        );
        assert!(message.starts_with(field), "{message}");
    }
    let a = v
        .client
        .patch("/v2/keys/nosuchkey", &v.first, json!({"name": "x"}))
        .await;
    refused(&a, 404, "not_found");
}

#[tokio::test]
async fn post_keys_requires_type_name_permissions_and_ips() {
    let v = Vidbeo::new().await;
    let full = json!({"type": "api", "name": "Example", "permissions": [], "ips": []});
    // The seed's "Required parameters" table lists all four (its prose calls an empty
    // `ips` "the default"; the test follows the table).
    for field in ["type", "name", "permissions", "ips"] {
        let mut body = full.clone();
        body.as_object_mut().unwrap().remove(field);
        let a = v.client.post("/v2/keys", &v.first, body).await;
        let message = refused(&a, 400, "invalid_request");
        assert!(message.starts_with(field), "{message}");
    }
    let cases = [
        // "we currently only support \"api\""
        (json!({"type": "user"}), "type"),
        // "The name of the key (1-50 characters)"
        (json!({"name": ""}), "name"),
        (json!({"name": "x".repeat(51)}), "name"),
        (json!({"ips": ["not-an-ip"]}), "ips"),
        (json!({"permissions": "fetch"}), "permissions"),
        (json!({"value": "sk_live_chosen"}), "value"),
        (json!({"colour": "red"}), "colour"),
    ];
    for (change, field) in cases {
        let mut body = full.clone();
        body.as_object_mut()
            .unwrap()
            .extend(change.as_object().unwrap().clone());
        let a = v.client.post("/v2/keys", &v.first, body).await;
        let message = refused(&a, 400, "invalid_request");
        assert!(message.starts_with(field), "{message}");
    }
    // Exactly 50 characters is fine.
    let mut body = full.clone();
    body["name"] = json!("x".repeat(50));
    v.create(body).await;
    // "[] for read/write or [\"fetch\"] for read-only": no key holds any other
    // permission, so none can give one.
    let mut body = full.clone();
    body["permissions"] = json!(["upload"]);
    let a = v.client.post("/v2/keys", &v.first, body).await;
    refused(&a, 403, "insufficient_scope");
    let a = v.client.get("/v2/keys", &v.first).await;
    assert_eq!(
        ok(&a, json!({})).as_array().unwrap().len(),
        2,
        "nothing else made"
    );
}

#[tokio::test]
async fn fetch_permission_is_read_only_and_empty_permissions_read_write() {
    let v = Vidbeo::new().await;
    let reader = v
        .create(json!({"type": "api", "name": "reader", "permissions": ["fetch"], "ips": []}))
        .await;
    let reader_key = reader["value"].as_str().unwrap();
    let writer = v
        .create(json!({"type": "api", "name": "writer", "permissions": [], "ips": []}))
        .await;
    let writer_key = writer["value"].as_str().unwrap();
    let id = writer["id"].as_str().unwrap();

    // Read-only: reads, never writes.
    assert_eq!(v.client.get("/v2/keys", reader_key).await.status, 200);
    let path = format!("/v2/keys/{id}");
    assert_eq!(v.client.get(&path, reader_key).await.status, 200);
    let body = json!({"type": "api", "name": "k", "permissions": ["fetch"], "ips": []});
    let writes = [
        v.client.post("/v2/keys", reader_key, body.clone()).await,
        v.client
            .patch(&path, reader_key, json!({"name": "x"}))
            .await,
        v.client.delete(&path, reader_key).await,
    ];
    for a in &writes {
        refused(a, 403, "insufficient_scope");
    }
    // Read-write: "API keys are not scoped to a particular user" and any key manages.
    let a = v.client.post("/v2/keys", writer_key, body).await;
    assert_eq!(a.status, 201, "{}", a.body);
    assert_eq!(ok(&a, Value::Null)["created_by"], id);
}

#[tokio::test]
async fn ips_limit_where_a_key_is_accepted_from() {
    let v = Vidbeo::new().await;
    let local = v
        .create(json!({"type": "api", "name": "local", "permissions": [], "ips": ["127.0.0.1"]}))
        .await;
    let remote = v
        .create(json!({"type": "api", "name": "remote", "permissions": [], "ips": ["1.2.3.4"]}))
        .await;
    let anywhere = v
        .create(json!({"type": "api", "name": "any", "permissions": [], "ips": []}))
        .await;
    let key = |k: &Value| k["value"].as_str().unwrap().to_owned();
    assert_eq!(v.client.get("/v2/keys", &key(&local)).await.status, 200);
    assert_eq!(v.client.get("/v2/keys", &key(&anywhere)).await.status, 200);
    refused(
        &v.client.get("/v2/keys", &key(&remote)).await,
        403,
        "ip_not_allowed",
    );
}

#[tokio::test]
async fn refusals_of_the_layer_come_in_the_envelope_too() {
    let v = Vidbeo::new().await;
    let a = v.client.call(Method::GET, "/v2/keys", None, "").await;
    refused(&a, 401, "unauthorized");
    assert_eq!(a.header("www-authenticate"), Some("Bearer realm=\"api\""));
    let a = v.client.get("/v2/keys", "sk_live_not-a-real-key").await;
    refused(&a, 401, "invalid_api_key");
    let a = v
        .client
        .call(Method::PUT, "/v2/keys", Some(&v.first), "")
        .await;
    refused(&a, 405, "method_not_allowed");
    assert_eq!(a.header("allow"), Some("GET, POST"));
}
