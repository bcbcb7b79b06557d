//! Vidbeo's documented `/v2/keys` API on keygate's configurable management
//! router: the `{"success","result","links","errors"}` envelope, `type: "api"`,
//! `permissions` (`[]` read-write, `["fetch"]` read-only), `ips`, `created_by`,
//! `created_time`, `updated_by`, `updated_time`, the `value` shown once on creation,
//! `limit` (25 by default) and `cursor` with the next page in `links.next`, and a
//! `DELETE` that deletes. keygate's `POST /v2/keys/{id}/roll` stays served, an extension
//! Vidbeo does not document.
//!
//! ```text
//! cargo run --example vidbeo [-- --addr 127.0.0.1:3002]
//! curl -H "Authorization: Bearer $KEY" http://127.0.0.1:3002/v2/keys
//! ```
//!
//! Vidbeo's first key comes from its dashboard; here `main` creates it and prints
//! `first key: <key>`. `deployment` and `app` are the whole of Vidbeo's own code (the
//! conformance test `tests/it/seeds/vidbeo/` drives them).

use http::StatusCode;
use keygate::admin::{self, DeleteMode, KeyFields, Reply};
use keygate::scope::ScopeSet;
use keygate::{KeyManager, KeyStoreWrite, Keygate};
use serde_json::{json, Value};

/// Vidbeo's deployment: `fetch` makes a key read-only. Keys hold no other scope, so a
/// key may give no other permission (403 `insufficient_scope`).
pub fn deployment(store: impl KeyStoreWrite) -> (Keygate, KeyManager) {
    let fetch = ScopeSet::parse(["fetch"]).expect("a valid scope");
    Keygate::managed(store).read_only_scopes(fetch).build()
}

/// Vidbeo's `/v2/keys` API, managed by any key of the account, 25 keys a page.
pub fn app(manager: KeyManager) -> axum::Router {
    let fields = KeyFields::default()
        .only(["id", "name", "scopes", "ips", "created_at", "updated_at"])
        .rename("scopes", "permissions")
        .rename("created_at", "created_time")
        .rename("updated_at", "updated_time")
        .rename("key", "value")
        .constant("type", "api")
        .required(["type", "permissions", "ips"])
        .record_actors("created_by", "updated_by");
    admin::builder(manager)
        .base_path("/v2/keys")
        .any_key()
        .fields(fields)
        .delete(DeleteMode::Delete)
        .envelope(envelope)
        .build()
}

/// Every answer, refusals included, in Vidbeo's envelope.
fn envelope(reply: Reply<'_>) -> (StatusCode, Value) {
    let (status, result, links, errors) = match reply {
        Reply::Key { status, key } => (status, key, Value::Null, vec![]),
        Reply::Page { keys, next, .. } => {
            let links = next.map_or(json!({}), |next| json!({ "next": next.url }));
            (StatusCode::OK, keys.into(), links, vec![])
        }
        Reply::Error(error) => (error.status, Value::Null, Value::Null, vec![json!(error)]),
        _ => (StatusCode::OK, json!({}), Value::Null, vec![]),
    };
    let success = status.is_success();
    let body = json!({ "success": success, "result": result, "links": links, "errors": errors });
    (status, body)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = match std::env::args().nth(1).as_deref() {
        Some("--addr") => std::env::args().nth(2).ok_or("--addr needs HOST:PORT")?,
        Some(other) => return Err(format!("unknown argument '{other}'").into()),
        None => "127.0.0.1:3002".to_owned(),
    };
    let (_gate, manager) = deployment(keygate::MemoryStore::new());
    let first = manager
        .create("acct_1".into(), keygate::NewKey::named("Dashboard key"))
        .await?;
    println!("first key: {}", first.key.expose_secret());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("listening on http://{addr}/v2/keys");
    let app = app(manager).into_make_service_with_connect_info::<std::net::SocketAddr>();
    axum::serve(listener, app).await?;
    Ok(())
}
