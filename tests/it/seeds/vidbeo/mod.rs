//! Conformance with the Vidbeo seed (`shared/seeds/002_*.txt`): its whole documented
//! `/v2/keys` API, driven over loopback HTTP against `examples/vidbeo.rs`: every field
//! of its response format, the envelope of each example response, `value` shown once,
//! `permissions`, `ips`, `limit` and `cursor` with `links.next`, and `DELETE`.
//!
//! The seed gives no status codes and no error bodies. The tests hold keygate's: 201 on
//! creation, 200 otherwise, and refusals as `"success": false` with
//! `errors: [{"code", "message"}]` and the usual statuses.

use std::sync::Arc;

use keygate::store::AccountId;
use keygate::{KeyManager, MemoryStore, NewKey};
use serde_json::{json, Value};

use crate::seeds::client::{field_names, is_rfc3339_millis, Client};

mod reads;
mod writes;

#[allow(dead_code)]
#[path = "../../../../examples/vidbeo.rs"]
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
