//! The management HTTP API (feature `admin`) over real loopback TCP: each row
//! of the table, the Bytekit behaviours, malformed input, scopes, account isolation,
//! roll and immediate revocation.

use crate::common::*;

mod access;
mod input;
mod routes;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::Duration;

use http::Method;
use keygate::key::KeyHasher;
use keygate::manage::ManagerConfig;
use keygate::scope::ScopeSet;
use keygate::store::AccountId;
use keygate::{Environment, NewKey};
use serde_json::{json, Value};
use tower::ServiceExt;

/// Every field a key record must show.
const RECORD_FIELDS: [&str; 13] = [
    "id",
    "name",
    "prefix",
    "start",
    "environment",
    "scopes",
    "ips",
    "expires_at",
    "last_used_at",
    "created_at",
    "updated_at",
    "revoked_at",
    "rate_limit",
];

/// A harness with the management API served on loopback.
struct Api {
    h: Harness,
    addr: SocketAddr,
}

impl Api {
    async fn new() -> Self {
        Self::serving(Harness::new()).await
    }

    async fn serving(h: Harness) -> Self {
        let addr = serve(keygate::admin::router(h.manager.clone())).await;
        Self { h, addr }
    }

    async fn call(&self, method: Method, path: &str, key: Option<&str>, body: &str) -> Answer {
        let auth = key.map(bearer);
        let mut headers = Vec::new();
        if let Some(auth) = &auth {
            headers.push(("authorization", auth.as_str()));
        }
        if !body.is_empty() {
            headers.push(("content-type", "application/json"));
        }
        http(self.addr, method, path, &headers, body).await
    }

    async fn get(&self, path: &str, key: &str) -> Answer {
        self.call(Method::GET, path, Some(key), "").await
    }

    async fn post(&self, path: &str, key: &str, body: Value) -> Answer {
        self.call(Method::POST, path, Some(key), &body.to_string())
            .await
    }

    async fn patch(&self, path: &str, key: &str, body: Value) -> Answer {
        self.call(Method::PATCH, path, Some(key), &body.to_string())
            .await
    }

    async fn delete(&self, path: &str, key: &str) -> Answer {
        self.call(Method::DELETE, path, Some(key), "").await
    }

    /// Creates a key through the API; returns (id, plaintext, record).
    async fn create(&self, admin: &str, body: Value) -> (String, String, Value) {
        let a = self.post("/v1/api-keys", admin, body).await;
        assert_eq!(a.status, 201, "{}", a.body);
        let json = a.json();
        (
            json["id"].as_str().unwrap().to_owned(),
            json["key"].as_str().unwrap().to_owned(),
            json,
        )
    }
}

fn key_path(id: &str) -> String {
    format!("/v1/api-keys/{id}")
}

/// A 400 `invalid_request` whose message names `field`.
fn assert_invalid(a: &Answer, field: &str) {
    assert_eq!(a.status, 400, "{}", a.body);
    assert_eq!(a.code(), "invalid_request");
    let message = a.json()["error"]["message"].as_str().unwrap().to_owned();
    assert!(
        message.contains(field),
        "message should name '{field}': {message}"
    );
}

/// A 400 `invalid_request` for a field of the wrong JSON type: the message starts with
/// the field's path and says what was expected.
fn assert_bad_type(a: &Answer, field: &str) {
    assert_invalid(a, field);
    let message = a.json()["error"]["message"].as_str().unwrap().to_owned();
    assert!(message.starts_with(&format!("{field}: ")), "{message}");
    assert!(message.contains("expected"), "{message}");
}

fn assert_error(a: &Answer, status: u16, code: &str) {
    assert_eq!(a.status, status, "{}", a.body);
    assert_eq!(a.code(), code, "{}", a.body);
    assert_eq!(a.header("content-type"), Some("application/json"));
}

fn assert_record_shape(record: &Value) {
    for field in RECORD_FIELDS {
        assert!(record.get(field).is_some(), "missing '{field}' in {record}");
    }
    for field in ["digest", "hash", "secret", "previous"] {
        assert!(record.get(field).is_none(), "'{field}' must never be shown");
    }
}
