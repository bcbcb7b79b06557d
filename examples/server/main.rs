//! The demo server: keygate on axum, in memory by default.
//!
//! ```text
//! cargo run --example server [-- --addr 127.0.0.1:3000 --env test|live --config keygate.toml]
//! ```
//!
//! At start-up it creates one admin key and prints `admin key: <key>`. Then:
//!
//! ```text
//! curl -H "Authorization: Bearer $KEY" http://127.0.0.1:3000/v1/whoami
//! curl -X POST -H "Authorization: Bearer $KEY" -H 'content-type: application/json' \
//!      -d '{"name":"CI pipeline key","scopes":["read-only"]}' http://127.0.0.1:3000/v1/api-keys
//! curl http://127.0.0.1:3000/metrics
//! ```

mod app;

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;
use keygate::{Environment, Keygate, KeygateConfig, MemoryStore, NewKey};

/// keygate's demo server.
#[derive(Parser)]
#[command(name = "server")]
struct Args {
    /// Address to listen on (the `PORT` variable sets just the port).
    #[arg(long)]
    addr: Option<SocketAddr>,
    /// The environment of the deployment and of the printed admin key.
    #[arg(long)]
    env: Option<Environment>,
    /// A keygate configuration file (TOML), such as examples/keygate.toml.
    #[arg(long)]
    config: Option<PathBuf>,
}

fn load_config(path: Option<&PathBuf>) -> Result<KeygateConfig, String> {
    let Some(path) = path else {
        return Ok(KeygateConfig::default());
    };
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,keygate=info".into()),
        )
        .init();
    let fail = |message: String| -> ! {
        eprintln!("{message}");
        std::process::exit(2)
    };
    let addr = match (args.addr, std::env::var("PORT").ok()) {
        (Some(addr), _) => addr,
        (None, Some(port)) => format!("127.0.0.1:{port}")
            .parse()
            .unwrap_or_else(|_| fail(format!("PORT must be a port number, got '{port}'"))),
        (None, None) => "127.0.0.1:3000".parse().expect("valid"),
    };
    let mut config = load_config(args.config.as_ref()).unwrap_or_else(|e| fail(e));
    if let Some(env) = args.env {
        config.environment = Some(env);
    }
    let env = *config.environment.get_or_insert(Environment::Test);
    let metrics = metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .unwrap_or_else(|e| fail(format!("cannot install the metrics recorder: {e}")));

    let (gate, manager) = Keygate::managed(MemoryStore::new())
        .config(&config)
        .unwrap_or_else(|e| fail(e.to_string()))
        .build();
    let admin = manager
        .create(
            "acct_demo".into(),
            NewKey::named("demo admin key")
                .scopes(["admin"])
                .environment(env),
        )
        .await
        .expect("the demo admin key can be created");

    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .unwrap_or_else(|e| fail(format!("cannot listen on {addr}: {e}")));
    let local = listener.local_addr().expect("bound");
    println!("listening on http://{local} ({env} environment)");
    println!("admin key: {}", admin.key.expose_secret());
    axum::serve(
        listener,
        app::app(&gate, manager, metrics).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .await
    .expect("server error");
}
