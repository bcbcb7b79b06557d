//! The management HTTP API (issue 5, feature `admin`) over real loopback TCP: each row
//! of the table, the Bytekit behaviours, malformed input, scopes, account isolation,
//! roll and immediate revocation.

mod common;
use common::*;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::Duration;

use http::Method;
use keygate::{AccountId, Environment, KeyHasher, ManagerConfig, NewKey, ScopeSet};
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

// ---------------------------------------------------------------------------------------
// POST /v1/api-keys

#[tokio::test]
async fn post_creates_a_key_and_returns_201_with_the_plaintext_once() {
    let api = Api::new().await;
    let (_, admin) = api.h.key("acct_1", &["admin"]).await;
    let a = api
        .post(
            "/v1/api-keys",
            &admin,
            json!({
                "name": "CI pipeline key",
                "scopes": ["charges:read"],
                "ips": ["203.0.113.0/24"],
                "expires_at": "2030-01-01T00:00:00Z",
                "rate_limit": {"per_second": 5, "burst": 10},
                "metadata": {"team": "ci"},
                "environment": "live"
            }),
        )
        .await;
    assert_eq!(a.status, 201, "{}", a.body);
    assert_eq!(a.header("content-type"), Some("application/json"));
    let body = a.json();
    assert_record_shape(&body);
    let key = body["key"].as_str().unwrap().to_owned();
    assert!(key.starts_with("sk_live_"));
    assert!(key.starts_with(body["start"].as_str().unwrap()));
    assert_eq!(body["name"], "CI pipeline key");
    assert_eq!(body["prefix"], "sk_live_");
    assert_eq!(body["environment"], "live");
    assert_eq!(body["scopes"], json!(["charges:read"]));
    assert_eq!(body["ips"], json!(["203.0.113.0/24"]));
    assert_eq!(body["expires_at"], "2030-01-01T00:00:00.000Z");
    assert_eq!(body["rate_limit"], json!({"per_second": 5, "burst": 10}));
    assert_eq!(body["metadata"], json!({"team": "ci"}));
    assert_eq!(body["last_used_at"], Value::Null);
    assert_eq!(body["revoked_at"], Value::Null);
    assert_eq!(body["created_at"], "2023-11-14T22:13:20.000Z");
    assert_eq!(body["updated_at"], "2023-11-14T22:13:20.000Z");

    let digest = KeyHasher::sha256().digest(&key).to_hex();
    assert!(!a.body.contains(&digest));

    // The key works, and nothing shows it again.
    let who = api.h.gate.verify_key(&key).await.unwrap();
    assert_eq!(who.key_id().as_str(), body["id"].as_str().unwrap());
    assert_eq!(who.account_id(), &AccountId::from("acct_1"));
    let id = body["id"].as_str().unwrap();
    let secret = &key["sk_live_".len()..];
    for path in [key_path(id), "/v1/api-keys".to_owned()] {
        let a = api.get(&path, &admin).await;
        assert_eq!(a.status, 200);
        assert!(!a.body.contains(secret), "plaintext shown again by {path}");
        assert!(!a.body.contains(&digest), "digest shown by {path}");
    }
}

#[tokio::test]
async fn post_without_optional_fields_gives_defaults_and_a_null_rate_limit() {
    let api = Api::new().await;
    let (_, admin) = api.h.key("acct_1", &["admin"]).await;
    let (_, key, body) = api.create(&admin, json!({"name": "minimal"})).await;
    assert_record_shape(&body);
    assert_eq!(body["rate_limit"], Value::Null);
    assert_eq!(body["scopes"], json!([]));
    assert_eq!(body["ips"], json!([]));
    assert_eq!(body["expires_at"], Value::Null);
    assert!(api.h.gate.verify_key(&key).await.is_ok());
}

// ---------------------------------------------------------------------------------------
// GET /v1/api-keys

#[tokio::test]
async fn get_list_returns_data_and_next_cursor_without_plaintext() {
    let api = Api::new().await;
    let (admin_id, admin) = api.h.key("acct_1", &["admin"]).await;
    let mut created = vec![admin_id.as_str().to_owned()];
    let mut secrets = Vec::new();
    for i in 0..24 {
        api.h.time.advance(Duration::from_millis(1));
        let (id, key, _) = api.create(&admin, json!({"name": format!("k{i}")})).await;
        created.push(id);
        secrets.push(key);
    }

    let mut seen = Vec::new();
    let mut path = "/v1/api-keys?limit=10".to_owned();
    let mut pages = 0;
    loop {
        let a = api.get(&path, &admin).await;
        assert_eq!(a.status, 200, "{}", a.body);
        let body = a.json();
        let keys: HashSet<&str> = body
            .as_object()
            .unwrap()
            .keys()
            .map(|k| k.as_str())
            .collect();
        assert_eq!(keys, HashSet::from(["data", "next_cursor"]));
        for record in body["data"].as_array().unwrap() {
            assert_record_shape(record);
            assert!(record.get("key").is_none(), "no plaintext in a list");
            seen.push(record["id"].as_str().unwrap().to_owned());
        }
        for secret in &secrets {
            assert!(!a.body.contains(&secret[3..]));
        }
        pages += 1;
        match body["next_cursor"].as_str() {
            Some(cursor) => path = format!("/v1/api-keys?limit=10&cursor={cursor}"),
            None => {
                assert_eq!(body["next_cursor"], Value::Null);
                break;
            }
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, created, "every key once, oldest first");

    // Without a limit: the default page of 25 holds all of them.
    let all = api.get("/v1/api-keys", &admin).await.json();
    assert_eq!(all["data"].as_array().unwrap().len(), 25);
    assert_eq!(all["next_cursor"], Value::Null);
}

#[tokio::test]
async fn get_list_with_a_bad_limit_or_cursor_is_400_naming_the_parameter() {
    let api = Api::new().await;
    let (_, admin) = api.h.key("acct_1", &["admin"]).await;
    for query in ["limit=abc", "limit=0", "limit=101", "limit=-1", "limit="] {
        let a = api.get(&format!("/v1/api-keys?{query}"), &admin).await;
        assert_invalid(&a, "limit");
    }
    let a = api.get("/v1/api-keys?cursor=%2E%2E%2Fetc", &admin).await;
    assert_invalid(&a, "cursor");
    assert_eq!(api.get("/v1/api-keys?limit=100", &admin).await.status, 200);
}

// ---------------------------------------------------------------------------------------
// GET /v1/api-keys/{id}

#[tokio::test]
async fn get_one_returns_200_or_404_not_found() {
    let api = Api::new().await;
    let (_, admin) = api.h.key("acct_1", &["admin"]).await;
    let (id, _, created) = api.create(&admin, json!({"name": "one"})).await;
    let a = api.get(&key_path(&id), &admin).await;
    assert_eq!(a.status, 200);
    let body = a.json();
    assert_record_shape(&body);
    assert!(body.get("key").is_none());
    let mut without_key = created.clone();
    without_key.as_object_mut().unwrap().remove("key");
    assert_eq!(body, without_key, "the same record, minus the plaintext");

    for missing in ["ak_0000000000000000000000", "no-such-id!", "x"] {
        let a = api.get(&key_path(missing), &admin).await;
        assert_error(&a, 404, "not_found");
    }
}

// ---------------------------------------------------------------------------------------
// PATCH /v1/api-keys/{id}

#[tokio::test]
async fn patch_updates_the_named_fields_and_returns_200_or_404() {
    let api = Api::new().await;
    let (_, admin) = api.h.key("acct_1", &["admin"]).await;
    let (id, _, _) = api
        .create(
            &admin,
            json!({
                "name": "before",
                "scopes": ["a"],
                "expires_at": "2030-01-01T00:00:00Z",
                "rate_limit": {"per_second": 1, "burst": 1}
            }),
        )
        .await;
    api.h.time.advance(Duration::from_secs(1));
    let a = api
        .patch(
            &key_path(&id),
            &admin,
            json!({
                "name": "after",
                "scopes": ["b", "c"],
                "ips": ["10.0.0.1", "2001:db8::/32"],
                "metadata": {"k": "v"},
                "rate_limit": {"per_second": 7, "burst": 9}
            }),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    let body = a.json();
    assert_record_shape(&body);
    assert_eq!(body["name"], "after");
    assert_eq!(body["scopes"], json!(["b", "c"]));
    assert_eq!(body["ips"], json!(["10.0.0.1", "2001:db8::/32"]));
    assert_eq!(body["metadata"], json!({"k": "v"}));
    assert_eq!(body["rate_limit"], json!({"per_second": 7, "burst": 9}));
    assert_eq!(body["expires_at"], "2030-01-01T00:00:00.000Z", "untouched");
    assert_eq!(body["updated_at"], "2023-11-14T22:13:21.000Z");
    assert_eq!(body["created_at"], "2023-11-14T22:13:20.000Z");
    assert_eq!(api.get(&key_path(&id), &admin).await.json(), body);

    // `null` returns a field to its default.
    let body = api
        .patch(
            &key_path(&id),
            &admin,
            json!({"expires_at": null, "rate_limit": null}),
        )
        .await
        .json();
    assert_eq!(body["expires_at"], Value::Null);
    assert_eq!(body["rate_limit"], Value::Null);
    assert_eq!(body["name"], "after");

    let a = api
        .patch(&key_path("ak_missing"), &admin, json!({"name": "x"}))
        .await;
    assert_error(&a, 404, "not_found");
}

// ---------------------------------------------------------------------------------------
// DELETE /v1/api-keys/{id}

#[tokio::test]
async fn delete_is_204_twice_and_404_for_a_key_that_never_existed() {
    let api = Api::new().await;
    let (_, admin) = api.h.key("acct_1", &["admin"]).await;
    let (id, key, _) = api.create(&admin, json!({"name": "doomed"})).await;

    let first = api.delete(&key_path(&id), &admin).await;
    assert_eq!(first.status, 204);
    assert_eq!(first.body, "");
    let second = api.delete(&key_path(&id), &admin).await;
    assert_eq!(second.status, 204, "already revoked is still 204");

    let record = api.get(&key_path(&id), &admin).await.json();
    assert_eq!(record["revoked_at"], "2023-11-14T22:13:20.000Z");
    assert!(api.h.gate.verify_key(&key).await.is_err());

    let a = api.delete(&key_path("ak_neverexisted"), &admin).await;
    assert_error(&a, 404, "not_found");
}

#[tokio::test]
async fn a_key_deleted_through_the_api_is_refused_on_its_very_next_request() {
    let api = Api::new().await;
    let (_, admin) = api.h.key("acct_1", &["admin"]).await;
    let (id, second, _) = api
        .create(&admin, json!({"name": "second admin", "scopes": ["admin"]}))
        .await;
    // The second key is used, so it is cached.
    for _ in 0..3 {
        assert_eq!(api.get("/v1/api-keys", &second).await.status, 200);
    }
    let lookups = api.h.store.lookups();

    assert_eq!(api.delete(&key_path(&id), &admin).await.status, 204);
    let a = api.get("/v1/api-keys", &second).await;
    assert_error(&a, 401, "revoked_api_key");
    assert_eq!(api.h.store.lookups(), lookups + 1);
}

// ---------------------------------------------------------------------------------------
// POST /v1/api-keys/{id}/roll

#[tokio::test]
async fn roll_with_grace_seconds_returns_a_new_plaintext_and_keeps_the_old_one_until_then() {
    let api = Api::new().await;
    let (_, admin) = api.h.key("acct_1", &["admin"]).await;
    let (id, old, _) = api
        .create(&admin, json!({"name": "rolling", "scopes": ["admin"]}))
        .await;
    assert_eq!(api.get("/v1/api-keys", &old).await.status, 200);

    let a = api
        .post(
            &format!("/v1/api-keys/{id}/roll"),
            &admin,
            json!({"grace_seconds": 60}),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    let body = a.json();
    assert_record_shape(&body);
    assert_eq!(body["id"], id.as_str(), "the id survives the roll");
    let new = body["key"].as_str().unwrap().to_owned();
    assert_ne!(new, old);
    assert!(new.starts_with(body["start"].as_str().unwrap()));
    assert!(!a.body.contains(&old[3..]));

    assert_eq!(api.get("/v1/api-keys", &old).await.status, 200);
    assert_eq!(api.get("/v1/api-keys", &new).await.status, 200);
    api.h.time.advance(Duration::from_secs(59));
    assert_eq!(api.get("/v1/api-keys", &old).await.status, 200);
    api.h.time.advance(Duration::from_secs(1));
    assert_error(&api.get("/v1/api-keys", &old).await, 401, "expired_api_key");
    assert_eq!(api.get("/v1/api-keys", &new).await.status, 200);

    // The plaintext is not shown again.
    let shown = api.get(&key_path(&id), &admin).await;
    assert!(shown.json().get("key").is_none());
    assert!(!shown.body.contains(&new[3..]));
}

#[tokio::test]
async fn roll_without_a_body_ends_the_old_secret_at_once() {
    let api = Api::new().await;
    let (_, admin) = api.h.key("acct_1", &["admin"]).await;
    let (id, old, _) = api
        .create(&admin, json!({"name": "rolling", "scopes": ["read-only"]}))
        .await;
    assert_eq!(api.get("/v1/api-keys", &old).await.status, 200);
    let a = api
        .call(
            Method::POST,
            &format!("/v1/api-keys/{id}/roll"),
            Some(&admin),
            "",
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    let new = a.json()["key"].as_str().unwrap().to_owned();
    assert_error(&api.get("/v1/api-keys", &old).await, 401, "invalid_api_key");
    assert_eq!(api.get("/v1/api-keys", &new).await.status, 200);

    let a = api
        .post("/v1/api-keys/ak_nothere/roll", &admin, json!({}))
        .await;
    assert_error(&a, 404, "not_found");
    let a = api
        .post(
            &format!("/v1/api-keys/{id}/roll"),
            &admin,
            json!({"grace_seconds": 31 * 24 * 3600}),
        )
        .await;
    assert_invalid(&a, "grace_seconds");
    let a = api
        .post(
            &format!("/v1/api-keys/{id}/roll"),
            &admin,
            json!({"grace_seconds": -1}),
        )
        .await;
    assert_bad_type(&a, "grace_seconds");
    let a = api
        .post(
            &format!("/v1/api-keys/{id}/roll"),
            &admin,
            json!({"grace": 10}),
        )
        .await;
    assert_invalid(&a, "grace");

    // Rolling a revoked key is a conflict.
    assert_eq!(api.delete(&key_path(&id), &admin).await.status, 204);
    let a = api
        .post(&format!("/v1/api-keys/{id}/roll"), &admin, json!({}))
        .await;
    assert_error(&a, 409, "api_key_revoked");
}

// ---------------------------------------------------------------------------------------
// Bytekit: the active-key cap

#[tokio::test]
async fn the_51st_key_is_409_api_key_limit_reached_and_revoked_keys_do_not_count() {
    let api = Api::new().await;
    // The admin key is itself the account's first active key.
    let (_, admin) = api.h.key("acct_1", &["admin"]).await;
    let mut ids = Vec::new();
    for i in 0..49 {
        let (id, _, _) = api.create(&admin, json!({"name": format!("k{i}")})).await;
        ids.push(id);
    }
    let a = api
        .post("/v1/api-keys", &admin, json!({"name": "51st"}))
        .await;
    assert_error(&a, 409, "api_key_limit_reached");
    assert!(a.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("50"));

    assert_eq!(api.delete(&key_path(&ids[0]), &admin).await.status, 204);
    assert_eq!(
        api.post("/v1/api-keys", &admin, json!({"name": "replacement"}))
            .await
            .status,
        201
    );
    let a = api
        .post("/v1/api-keys", &admin, json!({"name": "52nd"}))
        .await;
    assert_error(&a, 409, "api_key_limit_reached");

    // Revoked keys are not counted, and not listed by default (the status filter).
    let mut listed = 0;
    let mut path = "/v1/api-keys?limit=100".to_owned();
    loop {
        let body = api.get(&path, &admin).await.json();
        listed += body["data"].as_array().unwrap().len();
        match body["next_cursor"].as_str() {
            Some(c) => path = format!("/v1/api-keys?limit=100&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(listed, 50);
}

// ---------------------------------------------------------------------------------------
// Malformed input

#[tokio::test]
async fn malformed_create_bodies_are_400_invalid_request_naming_the_field() {
    let api = Api::new().await;
    let (_, admin) = api.h.key("acct_1", &["admin"]).await;
    let raw = |body: &'static str| {
        let api = &api;
        let admin = admin.clone();
        async move {
            api.call(Method::POST, "/v1/api-keys", Some(&admin), body)
                .await
        }
    };
    assert_invalid(&raw("{\"name\": ").await, "body");
    assert_invalid(&raw("not json").await, "body");
    assert_invalid(&raw("").await, "body");
    assert_invalid(&raw("[]").await, "body");
    assert_bad_type(&raw("{\"name\": 5}").await, "name");
    assert_bad_type(
        &raw("{\"name\": \"x\", \"rate_limit\": {\"per_second\": \"fast\", \"burst\": 1}}").await,
        "rate_limit.per_second",
    );
    assert_invalid(&raw("{}").await, "name");
    assert_invalid(
        &raw("{\"name\": \"k\", \"colour\": \"red\"}").await,
        "colour",
    );
    assert_invalid(
        &raw("{\"name\": \"k\", \"digest\": \"00\"}").await,
        "digest",
    );

    let cases = [
        (json!({"name": ""}), "name"),
        (json!({"name": "x".repeat(51)}), "name"),
        (json!({"name": "k", "ips": ["10.0.0.0/33"]}), "ips"),
        (json!({"name": "k", "ips": ["not-an-ip"]}), "ips"),
        (json!({"name": "k", "scopes": ["bad scope"]}), "scopes"),
        (json!({"name": "k", "expires_at": "tomorrow"}), "expires_at"),
        (
            json!({"name": "k", "expires_at": "2000-01-01T00:00:00Z"}),
            "expires_at",
        ),
        (
            json!({"name": "k", "rate_limit": {"per_second": 0, "burst": 1}}),
            "rate_limit",
        ),
        (
            json!({"name": "k", "rate_limit": {"per_second": 1, "burst": 1, "x": 1}}),
            "x",
        ),
        (json!({"name": "k", "environment": "staging"}), "staging"),
        (json!({"name": "k", "prefix": "zz_"}), "prefix"),
    ];
    for (body, field) in cases {
        let a = api.post("/v1/api-keys", &admin, body.clone()).await;
        assert_invalid(&a, field);
    }
    // Exactly 50 characters is fine; nothing above was created.
    api.create(&admin, json!({"name": "x".repeat(50)})).await;
    let listed = api.get("/v1/api-keys", &admin).await.json();
    assert_eq!(listed["data"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn malformed_patch_bodies_are_400_and_change_nothing() {
    let api = Api::new().await;
    let (_, admin) = api.h.key("acct_1", &["admin"]).await;
    let (id, _, before) = api.create(&admin, json!({"name": "stable"})).await;
    let path = key_path(&id);
    let cases = [
        (json!({"name": "x".repeat(51)}), "name"),
        (json!({"ips": ["1.2.3.4/99"]}), "ips"),
        (json!({"scopes": ["no spaces allowed"]}), "scopes"),
        (json!({"nickname": "x"}), "nickname"),
        (json!({"rate_limit": {"per_second": 1}}), "burst"),
    ];
    for (body, field) in cases {
        assert_invalid(&api.patch(&path, &admin, body).await, field);
    }
    let a = api
        .call(Method::PATCH, &path, Some(&admin), "{\"name\":")
        .await;
    assert_invalid(&a, "body");
    assert_bad_type(
        &api.patch(&path, &admin, json!({"expires_at": 12})).await,
        "expires_at",
    );
    let after = api.get(&path, &admin).await.json();
    assert_eq!(after["name"], before["name"]);
    assert_eq!(after["updated_at"], before["updated_at"]);
}

#[tokio::test]
async fn unknown_scopes_are_400_when_the_deployment_restricts_scopes() {
    let h = Harness::with(|b| {
        b.manager_config(
            ManagerConfig::default()
                .allowed_scopes(Some(ScopeSet::parse(["admin", "charges:read"]).unwrap())),
        )
    });
    let manager = h.manager.clone();
    let addr = serve(keygate::admin::router(manager)).await;
    let api = Api { h, addr };
    let (_, admin) = api.h.key("acct_1", &["admin"]).await;
    let a = api
        .post(
            "/v1/api-keys",
            &admin,
            json!({"name": "k", "scopes": ["charges:read", "charges:refund"]}),
        )
        .await;
    assert_invalid(&a, "scopes");
    assert!(a.body.contains("charges:refund"));
    api.create(&admin, json!({"name": "k", "scopes": ["charges:read"]}))
        .await;
}

// ---------------------------------------------------------------------------------------
// Scopes of the caller

#[tokio::test]
async fn a_read_only_key_can_read_but_not_write() {
    let api = Api::new().await;
    let (_, admin) = api.h.key("acct_1", &["admin"]).await;
    let (id, _, _) = api.create(&admin, json!({"name": "target"})).await;
    let (_, reader) = api.h.key("acct_1", &["read-only"]).await;

    assert_eq!(api.get("/v1/api-keys", &reader).await.status, 200);
    assert_eq!(api.get(&key_path(&id), &reader).await.status, 200);

    let refused = [
        api.post(
            "/v1/api-keys",
            &reader,
            json!({"name": "k", "scopes": ["read-only"]}),
        )
        .await,
        api.patch(&key_path(&id), &reader, json!({"name": "renamed"}))
            .await,
        api.delete(&key_path(&id), &reader).await,
        api.post(&format!("/v1/api-keys/{id}/roll"), &reader, json!({}))
            .await,
    ];
    for a in &refused {
        assert_error(a, 403, "insufficient_scope");
    }
    let record = api.get(&key_path(&id), &admin).await.json();
    assert_eq!(record["name"], "target");
    assert_eq!(record["revoked_at"], Value::Null);
}

#[tokio::test]
async fn keys_without_admin_or_read_only_and_requests_without_keys_are_refused() {
    let api = Api::new().await;
    let (_, admin) = api.h.key("acct_1", &["admin"]).await;
    let (id, _, _) = api.create(&admin, json!({"name": "target"})).await;
    let (_, other) = api.h.key("acct_1", &["charges:read", "keys:write"]).await;
    for path in ["/v1/api-keys".to_owned(), key_path(&id)] {
        let a = api.get(&path, &other).await;
        assert_error(&a, 403, "insufficient_scope");
        let challenge = a.header("www-authenticate").unwrap();
        assert!(
            challenge.contains("scope=\"admin read-only\""),
            "{challenge}"
        );
        let a = api.call(Method::GET, &path, None, "").await;
        assert_error(&a, 401, "unauthorized");
    }
    let a = api.post("/v1/api-keys", &other, json!({"name": "k"})).await;
    assert_error(&a, 403, "insufficient_scope");
}

#[tokio::test]
async fn an_admin_key_can_create_admin_keys_over_http() {
    let api = Api::new().await;
    let (_, admin) = api.h.key("acct_1", &["admin"]).await;
    let (_, minted, body) = api
        .create(&admin, json!({"name": "deputy", "scopes": ["admin"]}))
        .await;
    assert_eq!(body["scopes"], json!(["admin"]));
    // The new admin key can itself manage keys.
    let (_, _, grandchild) = api.create(&minted, json!({"name": "grandchild"})).await;
    assert_eq!(grandchild["name"], "grandchild");
}

#[tokio::test]
async fn a_test_admin_key_cannot_create_a_live_key_over_http() {
    let api = Api::new().await;
    let (_, admin) = api
        .h
        .key_with(
            "acct_1",
            NewKey::named("test admin")
                .scopes(["admin"])
                .environment(Environment::Test),
        )
        .await;
    for body in [
        json!({"name": "live", "environment": "live"}),
        json!({"name": "live", "prefix": "sk_live_"}),
    ] {
        let a = api.post("/v1/api-keys", &admin, body).await;
        assert_error(&a, 403, "insufficient_scope");
    }
    let (_, key, body) = api.create(&admin, json!({"name": "test"})).await;
    assert_eq!(body["environment"], "test");
    assert!(key.starts_with("sk_test_"));
}

// ---------------------------------------------------------------------------------------
// Account boundary

#[tokio::test]
async fn a_key_sees_and_changes_only_its_own_accounts_keys() {
    let api = Api::new().await;
    let (_, admin_a) = api.h.key("acct_a", &["admin"]).await;
    let (_, admin_b) = api.h.key("acct_b", &["admin"]).await;
    let (b_id, b_key, _) = api
        .create(
            &admin_b,
            json!({"name": "b's key", "scopes": ["read-only"]}),
        )
        .await;

    assert_error(&api.get(&key_path(&b_id), &admin_a).await, 404, "not_found");
    assert_error(
        &api.patch(&key_path(&b_id), &admin_a, json!({"name": "pwned"}))
            .await,
        404,
        "not_found",
    );
    assert_error(
        &api.delete(&key_path(&b_id), &admin_a).await,
        404,
        "not_found",
    );
    assert_error(
        &api.post(&format!("/v1/api-keys/{b_id}/roll"), &admin_a, json!({}))
            .await,
        404,
        "not_found",
    );

    let listed = api.get("/v1/api-keys", &admin_a).await.json();
    let data = listed["data"].as_array().unwrap();
    assert_eq!(data.len(), 1);
    assert_ne!(data[0]["id"], b_id.as_str());

    // Untouched: B still sees its key as it was, and the key still works.
    let record = api.get(&key_path(&b_id), &admin_b).await.json();
    assert_eq!(record["name"], "b's key");
    assert_eq!(record["revoked_at"], Value::Null);
    assert_eq!(api.get("/v1/api-keys", &b_key).await.status, 200);
}

// ---------------------------------------------------------------------------------------
// The layer in front of the API

#[tokio::test]
async fn api_responses_carry_rate_limit_headers_and_honour_ip_allowlists() {
    let api = Api::new().await;
    let (_, admin) = api.h.key("acct_1", &["admin"]).await;
    let a = api.get("/v1/api-keys", &admin).await;
    assert_eq!(a.header("x-ratelimit-limit"), Some("2000"));
    assert_eq!(a.header("x-ratelimit-remaining"), Some("1999"));

    // Served with connect info: the loopback peer is the client IP.
    let (_, local, _) = api
        .create(
            &admin,
            json!({"name": "local", "scopes": ["admin"], "ips": ["127.0.0.1"]}),
        )
        .await;
    assert_eq!(api.get("/v1/api-keys", &local).await.status, 200);
    let (_, remote, _) = api
        .create(
            &admin,
            json!({"name": "remote", "scopes": ["admin"], "ips": ["10.0.0.0/8"]}),
        )
        .await;
    assert_error(
        &api.get("/v1/api-keys", &remote).await,
        403,
        "ip_not_allowed",
    );
}

#[tokio::test]
async fn the_router_works_in_process_with_oneshot() {
    let h = Harness::new();
    let (_, admin) = h.key("acct_1", &["admin"]).await;
    let app = keygate::admin::router(h.manager.clone());
    let req = http::Request::builder()
        .method(Method::POST)
        .uri("/v1/api-keys")
        .header("authorization", bearer(&admin))
        .header("content-type", "application/json")
        .body(axum::body::Body::from(r#"{"name":"in process"}"#))
        .unwrap();
    let res = app.clone().oneshot(req).await.unwrap();
    assert_eq!(res.status(), 201);
    let bytes = axum::body::to_bytes(res.into_body(), 1 << 16)
        .await
        .unwrap();
    let body: Value = serde_json::from_slice(&bytes).unwrap();
    let id = body["id"].as_str().unwrap();

    let req = http::Request::builder()
        .method(Method::DELETE)
        .uri(key_path(id))
        .header("authorization", bearer(&admin))
        .body(axum::body::Body::empty())
        .unwrap();
    assert_eq!(app.oneshot(req).await.unwrap().status(), 204);
}
