//! The demo server: keygate on axum with the in-memory store.
//!
//! ```text
//! cargo run --example server [-- --addr 127.0.0.1:3000 --env test|live]
//! ```
//!
//! At start-up it creates one admin key and prints `admin key: <key>`. Then:
//!
//! ```text
//! curl -H "Authorization: Bearer $KEY" http://127.0.0.1:3000/v1/whoami
//! curl -X POST -H "Authorization: Bearer $KEY" -H 'content-type: application/json' \
//!      -d '{"name":"CI pipeline key","scopes":["read-only"]}' http://127.0.0.1:3000/v1/api-keys
//! ```

use std::net::SocketAddr;

use axum::routing::get;
use axum::{Json, Router};
use keygate::{Environment, Identity, KeyManager, Keygate, MemoryStore, NewKey};
use serde_json::{json, Value};

struct Args {
    addr: SocketAddr,
    env: Environment,
}

fn parse_args() -> Result<Args, String> {
    let port = std::env::var("PORT").ok();
    let mut addr: SocketAddr = match port {
        Some(p) => format!("127.0.0.1:{p}")
            .parse()
            .map_err(|_| format!("PORT must be a port number, got '{p}'"))?,
        None => "127.0.0.1:3000".parse().expect("valid"),
    };
    let mut env = Environment::Test;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--addr" => {
                let v = value("--addr")?;
                addr = v
                    .parse()
                    .map_err(|_| format!("--addr must be HOST:PORT, got '{v}'"))?;
            }
            "--env" => env = value("--env")?.parse()?,
            "-h" | "--help" => return Err(
                "usage: server [--addr HOST:PORT] [--env test|live]  (PORT env also sets the port)"
                    .into(),
            ),
            other => return Err(format!("unknown argument '{other}'; try --help")),
        }
    }
    Ok(Args { addr, env })
}

async fn whoami(identity: Identity) -> Json<Identity> {
    Json(identity)
}

async fn health() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

fn app(gate: &Keygate, manager: KeyManager) -> Router {
    let need = |scopes: &[&str]| gate.layer().require_any(scopes.iter().copied());
    // The Tenuo Cloud scope table.
    let tenuo = Router::new()
        .route(
            "/v1/keys",
            get(|id: Identity| async move {
                Json(json!({ "object": "list", "data": [], "account_id": id.account_id() }))
            })
            .route_layer(need(&["admin", "read-only"]))
            .merge(
                axum::routing::post(|| async {
                    (
                        axum::http::StatusCode::CREATED,
                        Json(json!({ "object": "key", "created": true })),
                    )
                })
                .route_layer(need(&["admin"])),
            ),
        )
        .route(
            "/v1/revocations/srl",
            get(|| async { Json(json!({ "object": "srl", "revoked": [] })) })
                .route_layer(need(&["authorizer", "admin"])),
        )
        .route(
            "/v1/revocations",
            axum::routing::post(|| async {
                (
                    axum::http::StatusCode::CREATED,
                    Json(json!({ "object": "revocation", "created": true })),
                )
            })
            .route_layer(need(&["admin"])),
        )
        .route("/v1/whoami", get(whoami).route_layer(gate.layer()));
    Router::new()
        .route("/health", get(health))
        .merge(tenuo)
        .merge(keygate::admin::router(manager))
}

#[tokio::main]
async fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,keygate=info".into()),
        )
        .init();

    let (gate, manager) = Keygate::managed(MemoryStore::new())
        .environment(args.env)
        .build();
    let admin = manager
        .create(
            "acct_demo".into(),
            NewKey::named("demo admin key")
                .scopes(["admin"])
                .environment(args.env),
        )
        .await
        .expect("the demo admin key can be created");

    let listener = match tokio::net::TcpListener::bind(args.addr).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("cannot listen on {}: {e}", args.addr);
            std::process::exit(1);
        }
    };
    let local = listener.local_addr().expect("bound");
    println!("listening on http://{local} ({} environment)", args.env);
    println!("admin key: {}", admin.key.expose_secret());
    axum::serve(
        listener,
        app(&gate, manager).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .await
    .expect("server error");
}
