//! The demo server: keygate on axum, in memory by default.
//!
//! ```text
//! cargo run --example server [-- --addr 127.0.0.1:3000 --env test|live --config keygate.toml]
//! cargo run --example server -- --database-url postgres://… --redis-url redis://…
//! ```
//!
//! Without a database it keeps keys in memory. With `--database-url` (or `DATABASE_URL`)
//! it keeps them in PostgreSQL (`PgStore`, migrated at start) and hears other
//! instances' changes over LISTEN/NOTIFY; with `--redis-url` (or `REDIS_URL`) rate limits
//! are shared through Redis. Several servers on different ports against one database and
//! one Redis form one cluster; each prints its own `admin key:` line.
//!
//! At start-up it creates one admin key and prints `admin key: <key>`, and prints
//! `console: <URL>`, a one-time link that signs the demo account in to the key console
//! at `/console` (valid for 30 minutes, once; the console's usage view charts the demo
//! account's calls to `/v1/whoami`). Then:
//!
//! ```text
//! curl -H "Authorization: Bearer $KEY" http://127.0.0.1:3000/v1/whoami
//! curl -X POST -H "Authorization: Bearer $KEY" -H 'content-type: application/json' \
//!      -d '{"name":"CI pipeline key","scopes":["read-only"]}' http://127.0.0.1:3000/v1/api-keys
//! curl -H "Authorization: Bearer $KEY" "http://127.0.0.1:3000/v1/api-keys/$ID/usage?granularity=minute"
//! curl -H "Authorization: Bearer $KEY" 'http://127.0.0.1:3000/v1/api-logs?outcome=rate_limited'
//! curl http://127.0.0.1:3000/metrics
//! curl http://127.0.0.1:3000/health   # 200, or 503 when the store, listener or Redis is down
//! ```
//!
//! With `--scanning-keys FILE` (a secret-scanning public-key document,
//! `{"public_keys":[…]}`), or a `[secret_scanning]` section in the configuration file, it
//! also serves GitHub's secret-scanning partner endpoint at `/v1/secret-scanning` (or the
//! section's `path`): a signed alert naming one of its keys revokes that key.
//! With `--webhook-url URL --webhook-secret whsec_…` (or a `[webhooks]` table in the
//! configuration file) every key change is sent as a signed webhook, and
//! `GET /v1/webhook-events?status=failed` lists the events that could not be delivered
//! (`POST /v1/webhook-events/{id}/retry` sends one again). With a database, events wait
//! in its outbox table; in memory, they are lost when the server stops.
//!
//! Keys created with `credits` or `quotas` (or a `plan` of the configuration file's
//! `[[plans]]`) are metered: in memory by the in-process ledger, with a database by its
//! `meters` table, shared by every instance (each leases `--usage-lease` units at a
//! time). At zero a request is refused with 429 `usage_exceeded` and `Retry-After` until
//! the next refill. On Ctrl-C or SIGTERM the server stops accepting, then returns the
//! units it leased and did not spend to the ledger before it exits.
//!
//! ```text
//! curl -X POST -H "Authorization: Bearer $KEY" -H 'content-type: application/json' \
//!      -d '{"name":"metered","scopes":["read-only"],"credits":{"remaining":100,"refill":{"amount":100,"interval":"month"}}}' \
//!      http://127.0.0.1:3000/v1/api-keys
//! ```

mod app;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use clap::Parser;
use keygate::activity::log::ApiLogConfig;
use keygate::admin::scanning::SecretScanning;
use std::time::Duration;

use keygate::config::KeygateConfig;
use keygate::console::{Console, Permission, SessionGrant};
use keygate::ratelimit::{RedisLimiter, RedisLimiterConfig};
use keygate::scope::ScopeSet;
use keygate::store::PgStore;
use keygate::webhooks::{WebhookSecret, Webhooks};
use keygate::{Environment, Keygate, MemoryStore, NewKey};

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
    /// Keep keys in this PostgreSQL database (cluster mode).
    #[arg(long, env = "DATABASE_URL")]
    database_url: Option<String>,
    /// The database schema keygate's tables live in.
    #[arg(long, default_value = "keygate")]
    schema: String,
    /// Share rate limits through this Redis (cluster mode).
    #[arg(long, env = "REDIS_URL")]
    redis_url: Option<String>,
    /// Prefix of the rate-limit keys in Redis.
    #[arg(long, default_value = "keygate:rl")]
    redis_prefix: String,
    /// The fraction of accepted requests the API log (`GET /v1/api-logs`, and the
    /// console's usage page) records, 0 to 1; refusals of recognised keys are always
    /// recorded. The demo records every one; the library records none unless told to.
    #[arg(long, default_value_t = 1.0)]
    api_log_sample_rate: f64,
    /// Send the console's cookie without `Secure`, to reach the demo over plain HTTP
    /// from another machine (browsers accept `Secure` cookies from localhost).
    #[arg(long)]
    console_plain_http: bool,
    /// How many instances share the rate limits (sizes the token leases and the local
    /// share used while Redis is down).
    #[arg(long, default_value_t = 1)]
    instances: u32,
    /// Serve the secret-scanning partner endpoint at /v1/secret-scanning, verifying
    /// alerts with the public keys of this document (`{"public_keys":[…]}`).
    #[arg(long)]
    scanning_keys: Option<PathBuf>,
    /// Send a signed webhook for every key event to this HTTPS URL.
    #[arg(long)]
    webhook_url: Option<String>,
    /// The webhooks' signing secret, `whsec_…` (better given in the environment).
    #[arg(long, env = "KEYGATE_WEBHOOK_SECRET", hide_env_values = true)]
    webhook_secret: Option<String>,
    /// Allow a plain `http://` webhook URL (local testing only).
    #[arg(long)]
    webhook_allow_http: bool,
    /// Units of credits or quota each instance leases from the ledger at once (64 by
    /// default): smaller is fairer between instances, larger makes fewer ledger calls.
    #[arg(long)]
    usage_lease: Option<u64>,
}

/// The `[webhooks]` table of the configuration file; the command line wins.
#[derive(Default, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
struct WebhookSettings {
    url: Option<String>,
    secret: Option<String>,
    allow_http: bool,
    #[serde(with = "humantime_serde")]
    expiry_notice: Option<std::time::Duration>,
}

fn load_config(path: Option<&PathBuf>) -> Result<(KeygateConfig, WebhookSettings), String> {
    let Some(path) = path else {
        return Ok(Default::default());
    };
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut table: toml::Table =
        toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let webhooks = match table.remove("webhooks") {
        Some(w) => w
            .try_into()
            .map_err(|e| format!("{} [webhooks]: {e}", path.display()))?,
        None => WebhookSettings::default(),
    };
    let config = table
        .try_into()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok((config, webhooks))
}

/// The webhooks the flags and the file ask for, if any.
fn webhooks(
    args: &Args,
    file: WebhookSettings,
    outbox: Option<&PgStore>,
    keys: Option<Arc<MemoryStore>>,
) -> Result<Option<Webhooks>, String> {
    let Some(url) = args.webhook_url.clone().or(file.url) else {
        return Ok(None);
    };
    let secret = args
        .webhook_secret
        .clone()
        .or(file.secret)
        .ok_or("--webhook-url needs --webhook-secret whsec_…")?;
    let secret = WebhookSecret::parse(&secret).map_err(|e| format!("--webhook-secret: {e}"))?;
    let mut b = Webhooks::builder(url, secret);
    if args.webhook_allow_http || file.allow_http {
        b = b.allow_plain_http();
    }
    if file.expiry_notice.is_some() {
        b = b.expiry_notice(file.expiry_notice);
    }
    b = match (outbox, keys) {
        (Some(store), _) => b.postgres(store.clone()),
        (None, Some(keys)) => b.expiring_keys_of(keys),
        (None, None) => b,
    };
    b.build()
        .map(Some)
        .map_err(|e| format!("--webhook-url: {e}"))
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
    let (mut config, webhook_file) = load_config(args.config.as_ref()).unwrap_or_else(|e| fail(e));
    if let Some(env) = args.env {
        config.environment = Some(env);
    }
    let env = *config.environment.get_or_insert(Environment::Test);
    let metrics = metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .unwrap_or_else(|e| fail(format!("cannot install the metrics recorder: {e}")));

    let shared_limits = args.redis_url.as_deref().map(|url| {
        let limits = RedisLimiterConfig::default()
            .key_prefix(args.redis_prefix.clone())
            .instances(args.instances.max(1));
        RedisLimiter::new(url, limits).unwrap_or_else(|e| fail(format!("--redis-url: {e}")))
    });
    let (gate, manager, invalidation, webhooks) = match &args.database_url {
        None => {
            let store = Arc::new(MemoryStore::new());
            let webhooks = webhooks(&args, webhook_file, None, Some(store.clone()))
                .unwrap_or_else(|e| fail(e));
            let mut b = Keygate::managed(store.clone())
                .api_log(ApiLogConfig::new(store).accepted_sample_rate(args.api_log_sample_rate))
                .config(&config)
                .unwrap_or_else(|e| fail(e.to_string()))
                .usage(usage());
            if let Some(units) = args.usage_lease {
                b = b.usage_lease(units);
            }
            if let Some(limits) = shared_limits {
                b = b.shared_rate_limits(limits);
            }
            if let Some(w) = &webhooks {
                b = b.webhooks(w.clone());
            }
            let (gate, manager) = b.build();
            (gate, manager, None, webhooks)
        }
        Some(url) => {
            let store = PgStore::builder(url)
                .and_then(|b| b.schema(args.schema.clone()).build())
                .unwrap_or_else(|e| fail(format!("--database-url: {e}")));
            store
                .migrate()
                .await
                .unwrap_or_else(|e| fail(format!("cannot migrate the database: {e}")));
            let webhooks =
                webhooks(&args, webhook_file, Some(&store), None).unwrap_or_else(|e| fail(e));
            let store = Arc::new(store);
            let mut b = Keygate::managed(store.clone())
                .api_log(
                    ApiLogConfig::new(store.clone()).accepted_sample_rate(args.api_log_sample_rate),
                )
                .config(&config)
                .unwrap_or_else(|e| fail(e.to_string()))
                .usage(usage());
            if let Some(units) = args.usage_lease {
                b = b.usage_lease(units);
            }
            if let Some(limits) = shared_limits {
                b = b.shared_rate_limits(limits);
            }
            if let Some(w) = &webhooks {
                b = b.webhooks(w.clone());
            }
            let (gate, manager) = b.build();
            let listener = Arc::new(store.listen(Arc::new(gate.clone())));
            (gate, manager, Some(listener), webhooks)
        }
    };
    let admin = manager
        .create(
            "acct_demo".into(),
            NewKey::named("demo admin key")
                .scopes(["admin"])
                .environment(env),
        )
        .await
        .expect("the demo admin key can be created");

    let mut scanning = config.secret_scanning.clone();
    if let Some(file) = &args.scanning_keys {
        scanning
            .get_or_insert_with(Default::default)
            .public_keys_file = Some(file.clone());
    }
    let scanning = scanning.map(|settings| {
        SecretScanning::from_config(manager.clone(), &settings)
            .unwrap_or_else(|e| fail(format!("secret scanning: {e}")))
            .router(&settings.path)
    });

    // Delivers until the server stops.
    let _delivery = webhooks.as_ref().map(Webhooks::start);

    let console = Console::builder(manager.clone())
        .mount_path("/console")
        .secure_cookies(!args.console_plain_http)
        .login_link_ttl(Duration::from_secs(30 * 60))
        .build();
    let login = console.session(
        SessionGrant::new("acct_demo".into(), Some(env))
            .user("demo")
            .permit(Permission::ALL)
            .grantable_scopes(
                ScopeSet::parse(["admin", "read-only", "authorizer"]).expect("valid scopes"),
            )
            .ttl(Duration::from_secs(8 * 3600)),
    );

    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .unwrap_or_else(|e| fail(format!("cannot listen on {addr}: {e}")));
    let local = listener.local_addr().expect("bound");
    println!("listening on http://{local} ({env} environment)");
    println!("console: http://{local}{}", login.expose_path());
    println!("admin key: {}", admin.key.expose_secret());
    let mut router = app::app(&gate, invalidation, manager, metrics, webhooks);
    if let Some(scanning) = scanning {
        router = router.merge(scanning);
    }
    axum::serve(
        listener,
        router
            .nest("/console", console.router())
            .into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(stopping())
    .await
    .expect("server error");
    // Leased units that were not spent go back to the ledger, where the other instances
    // (or this one, restarted) find them.
    gate.return_leases().await;
    eprintln!("stopped; unspent usage units returned to the ledger");
}

/// Resolves on Ctrl-C, or on SIGTERM where there are signals.
async fn stopping() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                term.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}

/// Usage counting flushed every 500 ms, so that another instance's `usage` answers
/// include a request within about half a second (this instance's own include it at once:
/// a read flushes its counts first).
fn usage() -> keygate::activity::UsageConfig {
    keygate::activity::UsageConfig::default().flush_interval(std::time::Duration::from_millis(500))
}
