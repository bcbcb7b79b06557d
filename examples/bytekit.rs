//! Bytekit's self-serve key management, `/v1/account/api-keys`, by
//! configuration alone: any key of the account manages keys; the plaintext `key` is
//! shown once, on creation; `created_at`; lists without plaintext; `PATCH` renames;
//! `DELETE` revokes, idempotently, with 204; at most 50 active keys, the 51st answering
//! 409 `api_key_limit_reached`; `sk_test_` keys refused by production and `sk_live_`
//! keys by staging, with 401.
//!
//! ```text
//! cargo run --example bytekit [-- --staging]
//! curl -H "Authorization: Bearer $KEY" http://127.0.0.1:3003/v1/account/api-keys
//! ```
//!
//! It serves production (`sk_live_` keys) on port 3003, or staging (`sk_test_` keys)
//! on 3004 with `--staging`, and prints a first key. `deployment` and `app` are all of
//! Bytekit's own code (the conformance test `tests/it/seeds/bytekit.rs` drives them).

use keygate::admin::{self, KeyFields};
use keygate::{Environment, KeyManager, KeyStoreWrite, Keygate};

/// One Bytekit environment, over its own store: production serves `Live` keys, staging
/// `Test` keys, and each refuses the other's before any lookup. The default manager
/// settings cap an account at 50 active keys.
pub fn deployment(store: impl KeyStoreWrite, environment: Environment) -> (Keygate, KeyManager) {
    Keygate::managed(store).environment(environment).build()
}

/// `/v1/account/api-keys`, managed by any key of the account, showing each key's id,
/// name and `created_at` (the plaintext `key` too, once).
pub fn app(manager: KeyManager) -> axum::Router {
    admin::builder(manager)
        .base_path("/v1/account/api-keys")
        .any_key()
        .fields(KeyFields::default().only(["id", "name", "created_at"]))
        .build()
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (environment, addr) = match std::env::args().nth(1).as_deref() {
        Some("--staging") => (Environment::Test, "127.0.0.1:3004"),
        Some(other) => return Err(format!("unknown argument '{other}'; try --staging").into()),
        None => (Environment::Live, "127.0.0.1:3003"),
    };
    let (_gate, manager) = deployment(keygate::MemoryStore::new(), environment);
    let first = manager
        .create("acct_1".into(), keygate::NewKey::named("First key"))
        .await?;
    println!("first key: {}", first.key.expose_secret());
    let listener = tokio::net::TcpListener::bind(addr).await?;
    println!("listening on http://{addr}/v1/account/api-keys");
    let app = app(manager).into_make_service_with_connect_info::<std::net::SocketAddr>();
    axum::serve(listener, app).await?;
    Ok(())
}
