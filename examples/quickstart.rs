use std::net::SocketAddr;

use axum::{routing::get, Json, Router};
use keygate::{Environment, Identity, Keygate, MemoryStore, NewKey};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // One store, given once: the gate checks keys, the manager makes them.
    let (gate, manager) = Keygate::managed(MemoryStore::new())
        .environment(Environment::Test)
        .build();

    // The plaintext is returned exactly once; only its SHA-256 digest is stored.
    let new_key = NewKey::named("quick start").scopes(["read-only"]);
    let created = manager.create("acct_1".into(), new_key).await?;
    println!("key: {}", created.key.expose_secret());

    // Every route under the layer needs a key: 401 without one, 200 with it.
    let app = Router::new()
        .route("/v1/whoami", get(|id: Identity| async move { Json(id) }))
        .layer(gate.layer());

    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    println!("listening on http://127.0.0.1:3000");
    // Connection info gives keygate the client IP, for keys with an IP allowlist.
    let app = app.into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, app).await?;
    Ok(())
}
