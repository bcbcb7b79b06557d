//! The management HTTP API (`keygate::admin`), called in-process with an admin key on
//! each route with an arbitrary query string and body: key creation, listing (limits,
//! statuses, cursors, pages), get, update (metadata merge patches included), delete and
//! roll. Each run gets a fresh store; the runtime is made once per process.
//!
//! Input: the first byte picks the request, the rest is `query` `\n` `body`.
//! - bits 0-2: the route: 0 create, 1 list, 2 get, 3 update, 4 delete, 5 roll,
//!   6 list by `POST` body too, 7 `PUT` on a key (405);
//! - bit 3: the router with offset paging and hard deletes, instead of the defaults;
//! - bit 4: the key id in the path is the query's bytes (percent-encoded, not empty), not
//!   a real key;
//! - bit 5: no `Content-Type` header.
//!
//! Invariants: no panic and no 5xx; every refusal is JSON `{"error":{"code","message"}}`
//! with a JSON content type; every success body that has one is JSON; no answer repeats
//! a key's plaintext except the one a create or roll has just minted; a refused create,
//! update, delete or roll changes nothing.
#![no_main]

use std::sync::OnceLock;

use axum::body::Body;
use http::{Method, Request, StatusCode, Uri};
use http_body_util::BodyExt as _;
use keygate::admin::{self, DeleteMode, Pagination};
use keygate::manage::ListQuery;
use keygate::store::{AccountId, KeyId};
use keygate::{KeyManager, KeyView, Keygate, MemoryStore, NewKey};
use libfuzzer_sys::fuzz_target;
use serde_json::{json, Value};
use tower::ServiceExt as _;

const BASE: &str = "/v1/api-keys";

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap()
    })
}

/// Percent-encodes every byte but the unreserved ones (and, for a query, `&`, `=`, `%`
/// and `+`, so the fuzzer controls the form encoding).
fn encode(bytes: &[u8], query: bool) -> String {
    let mut out = String::with_capacity(bytes.len() * 3);
    for &b in bytes {
        let keep = b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'_' | b'.' | b'~')
            || (query && matches!(b, b'&' | b'=' | b'%' | b'+'));
        if keep {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A key's view as JSON, without `last_used_at` (the request's own key use may set it).
fn snapshot(view: &KeyView) -> Value {
    let mut value = serde_json::to_value(view).unwrap();
    value.as_object_mut().unwrap().remove("last_used_at");
    value
}

/// The account's active keys, and the target key whatever its status, as the manager
/// sees them.
async fn state(manager: &KeyManager, account: &AccountId, target: &KeyId) -> Vec<Value> {
    let page = manager
        .list(account, &ListQuery::new().limit(100))
        .await
        .unwrap();
    let mut keys: Vec<Value> = page.data.iter().map(snapshot).collect();
    keys.push(match manager.get(account, target).await {
        Ok(view) => snapshot(&view),
        Err(e) => Value::String(e.to_string()),
    });
    keys
}

async fn one_request(selector: u8, query: &[u8], body: &[u8]) {
    let (_gate, manager) = Keygate::managed(MemoryStore::new()).build();
    let account = AccountId::from("acct_fuzz");
    let admin = manager
        .create(account.clone(), NewKey::named("admin").scopes(["admin"]))
        .await
        .unwrap();
    let mut metadata = serde_json::Map::new();
    metadata.insert("team".into(), json!({ "name": "core", "tags": ["a", "b"] }));
    metadata.insert("tier".into(), json!("gold"));
    let target = manager
        .create(
            account.clone(),
            NewKey::named("target")
                .scopes(["streams:read", "streams:write"])
                .metadata(metadata),
        )
        .await
        .unwrap();
    for n in 0..3 {
        manager
            .create(account.clone(), NewKey::named(format!("other {n}")))
            .await
            .unwrap();
    }
    let app = if selector & 0x08 == 0 {
        admin::router(manager.clone())
    } else {
        admin::builder(manager.clone())
            .pagination(Pagination::offset().default_limit(2))
            .delete(DeleteMode::Delete)
            .build()
    };

    let (id, query) = if selector & 0x10 == 0 {
        (target.view.id.as_str().to_owned(), encode(query, true))
    } else if query.is_empty() {
        // `/v1/api-keys/` is no route of the router: the application's fallback answers.
        return;
    } else {
        (encode(query, false), String::new())
    };
    let key = format!("{BASE}/{id}");
    let (method, path) = match selector & 0x07 {
        0 => (Method::POST, BASE.to_owned()),
        1 => (Method::GET, BASE.to_owned()),
        2 => (Method::GET, key),
        3 => (Method::PATCH, key),
        4 => (Method::DELETE, key),
        5 => (Method::POST, format!("{key}/roll")),
        6 => (Method::POST, format!("{BASE}?{query}")),
        _ => (Method::PUT, key),
    };
    let uri = if query.is_empty() || path.contains('?') {
        path
    } else {
        format!("{path}?{query}")
    };
    let uri: Uri = uri.parse().expect("an encoded URI parses");
    let mut request = Request::builder()
        .method(method.clone())
        .uri(uri.clone())
        .header(
            "authorization",
            format!("Bearer {}", admin.key.expose_secret()),
        );
    if selector & 0x20 == 0 {
        request = request.header("content-type", "application/json");
    }
    let request = request.body(Body::from(body.to_vec())).unwrap();

    let before = state(&manager, &account, &target.view.id).await;
    let response = app.oneshot(request).await.unwrap();
    let status = response.status();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let text = String::from_utf8_lossy(&bytes);

    assert!(
        !status.is_server_error(),
        "{method} {uri} answered {status}: {text}"
    );
    for secret in [admin.key.expose_secret(), target.key.expose_secret()] {
        assert!(
            !text.contains(secret),
            "{method} {uri} repeated a plaintext"
        );
    }
    if status.is_client_error() {
        assert!(
            content_type.starts_with("application/json"),
            "{method} {uri} answered {status} as '{content_type}'"
        );
        let json: Value = serde_json::from_slice(&bytes)
            .unwrap_or_else(|e| panic!("{method} {uri} {status}: not JSON ({e}): {text}"));
        let error = &json["error"];
        assert!(
            error["code"].as_str().is_some_and(|c| !c.is_empty()) && error["message"].is_string(),
            "{method} {uri} {status}: not the error shape: {text}"
        );
        // A refusal leaves every key as it was.
        let after = state(&manager, &account, &target.view.id).await;
        assert_eq!(after, before, "{method} {uri} {status}: {text}");
    } else if status != StatusCode::NO_CONTENT {
        assert!(status.is_success(), "{method} {uri} answered {status}");
        let _: Value = serde_json::from_slice(&bytes)
            .unwrap_or_else(|e| panic!("{method} {uri} {status}: not JSON ({e}): {text}"));
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let split = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
    let body = rest.get(split + 1..).unwrap_or_default();
    runtime().block_on(one_request(selector, &rest[..split], body));
});
