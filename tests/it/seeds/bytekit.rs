//! Conformance with the Bytekit seed (`shared/seeds/003_*.txt`), driven over loopback
//! HTTP against `examples/bytekit.rs`: bearer keys prefixed by environment, staging and
//! production keys refused by the other side with 401, SHA-256 at rest, the plaintext
//! `key` once, list, rename, idempotent revoke with 204, and 50 active keys per account.
//!
//! The seed says a list returns "only the id, name, and metadata"; its one example key
//! shows `id`, `name`, `key` and `created_at`. The example shows exactly those, with
//! `created_at` as the metadata.

use std::sync::Arc;

use http::Method;
use keygate::key::KeyHasher;
use keygate::store::AccountId;
use keygate::{Environment, KeyManager, KeyStoreWrite, NewKey};
use serde_json::{json, Value};

use crate::common::{Answer, FaultyStore};
use crate::seeds::client::{field_names, is_rfc3339_millis, Client};

#[allow(dead_code)]
#[path = "../../../examples/bytekit.rs"]
mod example;

const PATH: &str = "/v1/account/api-keys";

/// Production and staging, each over its own store, each with a first key of `acct_1`.
struct Bytekit {
    store: Arc<FaultyStore>,
    production: Client,
    staging: Client,
    manager: KeyManager,
    /// A production key of `acct_1`, with no scopes at all.
    live: String,
    /// A staging key of `acct_1`.
    test: String,
}

impl Bytekit {
    async fn new() -> Self {
        let store = Arc::new(FaultyStore::default());
        let (_, manager) = example::deployment(store.clone(), Environment::Live);
        let (_, staging) = example::deployment(FaultyStore::default(), Environment::Test);
        let first = |m: KeyManager| async move {
            let created = m
                .create(AccountId::from("acct_1"), NewKey::named("First key"))
                .await
                .unwrap();
            created.key.expose_secret().to_owned()
        };
        let live = first(manager.clone()).await;
        let test = first(staging.clone()).await;
        Self {
            store,
            production: Client::serving(example::app(manager.clone())).await,
            staging: Client::serving(example::app(staging)).await,
            manager,
            live,
            test,
        }
    }

    /// Creates a production key through the API; returns the body.
    async fn create(&self, name: &str) -> Value {
        let a = self
            .production
            .post(PATH, &self.live, json!({ "name": name }))
            .await;
        assert_eq!(a.status, 201, "{}", a.body);
        a.json()
    }
}

fn key_path(id: &str) -> String {
    format!("{PATH}/{id}")
}

fn assert_error(a: &Answer, status: u16, code: &str) {
    assert_eq!(a.status, status, "{}", a.body);
    assert_eq!(a.code(), code, "{}", a.body);
}

#[tokio::test]
async fn create_returns_id_name_created_at_and_the_plaintext_key_exactly_once() {
    let b = Bytekit::new().await;
    // The seed's example request, verbatim.
    let a = b
        .production
        .call(
            Method::POST,
            PATH,
            Some(&b.live),
            r#"{"name": "CI pipeline key"}"#,
        )
        .await;
    assert_eq!(a.status, 201, "{}", a.body);
    assert_eq!(a.header("content-type"), Some("application/json"));
    let body = a.json();
    assert_eq!(field_names(&body), ["created_at", "id", "key", "name"]);
    assert!(body["id"].as_str().unwrap().starts_with("ak_"));
    assert_eq!(body["name"], "CI pipeline key");
    assert!(is_rfc3339_millis(body["created_at"].as_str().unwrap()));
    let key = body["key"].as_str().unwrap().to_owned();
    assert!(key.starts_with("sk_live_"), "{key}");

    // "The key is stored as a SHA-256 hash on the server."
    let id = keygate::store::KeyId::parse(body["id"].as_str().unwrap()).unwrap();
    let record = b.store.inner.get(&id).await.unwrap().unwrap();
    assert_eq!(record.digest, KeyHasher::sha256().digest(&key));

    // The key works, and is never shown again: the list omits it.
    let a = b.production.get(PATH, &key).await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert!(!a.body.contains(&key["sk_live_".len()..]));
    let a = b.production.get(&key_path(&id.to_string()), &b.live).await;
    assert!(a.json().get("key").is_none());
    assert!(!a.body.contains(&key["sk_live_".len()..]));
}

#[tokio::test]
async fn list_returns_id_name_and_metadata_without_the_plaintext() {
    let b = Bytekit::new().await;
    let mut keys = vec![b.live.clone()];
    for name in ["one", "two"] {
        keys.push(b.create(name).await["key"].as_str().unwrap().to_owned());
    }
    let a = b.production.get(PATH, &b.live).await;
    assert_eq!(a.status, 200);
    let body = a.json();
    let data = body["data"].as_array().unwrap();
    assert_eq!(data.len(), 3);
    let names: Vec<&str> = data.iter().map(|k| k["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["First key", "one", "two"]);
    for key in data {
        assert_eq!(field_names(key), ["created_at", "id", "name"]);
    }
    for key in &keys {
        assert!(!a.body.contains(&key["sk_live_".len()..]));
    }
}

#[tokio::test]
async fn any_key_of_the_account_manages_keys() {
    let b = Bytekit::new().await;
    // The first key has no scopes: any key of the account manages keys.
    let made = b.create("made by a plain key").await;
    let child = made["key"].as_str().unwrap();
    // And the key it made can in turn create, rename and revoke.
    let a = b
        .production
        .post(PATH, child, json!({"name": "grandchild"}))
        .await;
    assert_eq!(a.status, 201, "{}", a.body);
    let id = a.json()["id"].as_str().unwrap().to_owned();
    let a = b
        .production
        .patch(&key_path(&id), child, json!({"name": "renamed"}))
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(b.production.delete(&key_path(&id), child).await.status, 204);

    // Only within its account.
    let other = b
        .manager
        .create(AccountId::from("acct_2"), NewKey::named("theirs"))
        .await
        .unwrap();
    let theirs = key_path(other.view.id.as_str());
    assert_error(&b.production.get(&theirs, child).await, 404, "not_found");
    let a = b.production.delete(&theirs, child).await;
    assert_error(&a, 404, "not_found");
}

#[tokio::test]
async fn patch_renames_a_key() {
    let b = Bytekit::new().await;
    let created = b.create("CI pipeline key").await;
    let id = created["id"].as_str().unwrap();
    // The seed's example request, verbatim.
    let a = b
        .production
        .call(
            Method::PATCH,
            &key_path(id),
            Some(&b.live),
            r#"{"name": "Renamed key"}"#,
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    let body = a.json();
    assert_eq!(field_names(&body), ["created_at", "id", "name"]);
    assert_eq!(body["name"], "Renamed key");
    assert_eq!(body["created_at"], created["created_at"]);
    // The renamed key still works.
    let key = created["key"].as_str().unwrap();
    assert_eq!(b.production.get(PATH, key).await.status, 200);

    for (body, field) in [
        (json!({"name": ""}), "name"),
        (json!({"name": 7}), "name"),
        (json!({"key": "sk_live_mine"}), "key"),
        (json!({"scopes": ["admin"]}), "scopes"),
    ] {
        let a = b.production.patch(&key_path(id), &b.live, body).await;
        assert_error(&a, 400, "invalid_request");
        let message = a.json()["error"]["message"].as_str().unwrap().to_owned();
        assert!(message.starts_with(field), "{message}");
    }
}

#[tokio::test]
async fn delete_revokes_and_is_idempotent_with_204() {
    let b = Bytekit::new().await;
    let created = b.create("doomed").await;
    let id = created["id"].as_str().unwrap();
    let key = created["key"].as_str().unwrap();
    assert_eq!(b.production.get(PATH, key).await.status, 200);

    // The seed's example request.
    let a = b
        .production
        .call(Method::DELETE, &key_path(id), Some(&b.live), "")
        .await;
    assert_eq!(a.status, 204);
    assert_eq!(a.body, "");
    assert_error(&b.production.get(PATH, key).await, 401, "revoked_api_key");
    // "revoking an already-revoked key returns 204 No Content."
    let again = b.production.delete(&key_path(id), &b.live).await;
    assert_eq!(again.status, 204);
    assert_eq!(again.body, "");
    let a = b
        .production
        .delete(&key_path("ak_neverexisted"), &b.live)
        .await;
    assert_error(&a, 404, "not_found");
}

#[tokio::test]
async fn the_51st_active_key_is_409_api_key_limit_reached_and_revoked_keys_do_not_count() {
    let b = Bytekit::new().await;
    // The first key is the account's first of 50 active keys.
    let mut ids = Vec::new();
    for i in 0..49 {
        ids.push(
            b.create(&format!("k{i}")).await["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    let a = b
        .production
        .post(PATH, &b.live, json!({"name": "51st"}))
        .await;
    assert_error(&a, 409, "api_key_limit_reached");
    // "Revoke an existing key before creating a new one."
    assert_eq!(
        b.production
            .delete(&key_path(&ids[0]), &b.live)
            .await
            .status,
        204
    );
    b.create("replacement").await;
    let a = b
        .production
        .post(PATH, &b.live, json!({"name": "52nd"}))
        .await;
    assert_error(&a, 409, "api_key_limit_reached");
}

#[tokio::test]
async fn staging_and_production_keys_are_refused_by_the_other_with_401() {
    let b = Bytekit::new().await;
    assert!(b.live.starts_with("sk_live_"));
    assert!(b.test.starts_with("sk_test_"));
    assert_eq!(b.production.get(PATH, &b.live).await.status, 200);
    assert_eq!(b.staging.get(PATH, &b.test).await.status, 200);
    // "Never use a staging key against the production endpoint or vice versa."
    let a = b.production.get(PATH, &b.test).await;
    assert_error(&a, 401, "wrong_environment");
    let a = b.staging.get(PATH, &b.live).await;
    assert_error(&a, 401, "wrong_environment");
    // Keys created on staging are staging keys.
    let a = b.staging.post(PATH, &b.test, json!({"name": "s"})).await;
    assert_eq!(a.status, 201, "{}", a.body);
    assert!(a.json()["key"].as_str().unwrap().starts_with("sk_test_"));
    // Requests without the Authorization header are refused.
    let a = b.production.call(Method::GET, PATH, None, "").await;
    assert_error(&a, 401, "unauthorized");
}
