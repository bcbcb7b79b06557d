//! A custom [`KeyStore`]: a file of hashed keys, reloaded when it changes.
//!
//! ```text
//! cargo run --example custom_store [-- --addr 127.0.0.1:3002]
//! ```
//!
//! Many deployments provision keys out of band (a secrets pipeline, a config repo) and
//! only need the service to *check* them. This store reads a file with one JSON object
//! per line, each holding the SHA-256 digest of a key (never the key) and its fields:
//!
//! ```text
//! {"digest":"9f86d0…","id":"ak_ci","account_id":"acct_1","name":"CI","prefix":"sk_test_","scopes":["read-only"]}
//! ```
//!
//! A background task polls the file's modification time and swaps in a new map when it
//! changes, then drops keygate's cached entries for every key that changed, so an edit
//! (say `"revoked":true`) applies within one poll interval instead of one cache
//! lifetime. A file that does not parse is reported and ignored: the last good map stays.
//!
//! At start-up the example writes such a file with one admin key into a temporary
//! directory, prints its path, the address, and `admin key: <key>`. Then:
//!
//! ```text
//! curl -H "Authorization: Bearer $KEY" http://127.0.0.1:3002/v1/whoami
//! # edit the file: add "revoked":true to the line; within a second the key is refused.
//! ```
//!
//! The store implements only [`KeyStore`], the read half: with no `KeyStoreWrite` there is
//! no `KeyManager`, and keys are managed by editing the file.

use std::collections::HashMap;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use axum::routing::get;
use axum::{Json, Router};
use keygate::client_ip::IpAllowlist;
use keygate::key::{KeyDigest, KeyFormat, KeyHasher};
use keygate::scope::ScopeSet;
use keygate::store::{AccountId, KeyId, KeyRecord, RateLimit};
use keygate::{Environment, Identity, KeyStore, Keygate, StoreError};
use serde::{Deserialize, Serialize};

/// One line of the key file.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyLine {
    /// Lower-case hex SHA-256 of the whole key.
    digest: String,
    id: String,
    account_id: String,
    name: String,
    /// The key's prefix, such as `sk_test_`; it fixes the environment.
    prefix: String,
    /// The prefix and the first four secret characters, to recognise the key.
    #[serde(default)]
    start: String,
    #[serde(default)]
    scopes: Vec<String>,
    #[serde(default)]
    ips: Vec<String>,
    /// RFC 3339.
    #[serde(default)]
    expires_at: Option<String>,
    #[serde(default)]
    revoked: bool,
    #[serde(default)]
    disabled: bool,
    #[serde(default)]
    rate_limit: Option<RateLimit>,
}

type KeyMap = HashMap<KeyDigest, KeyRecord>;

/// A read-only [`KeyStore`] over a file of hashed keys.
struct FileKeyStore {
    path: PathBuf,
    format: KeyFormat,
    keys: RwLock<Arc<KeyMap>>,
}

impl FileKeyStore {
    /// Loads `path` once; call [`FileKeyStore::watch`] to follow changes.
    fn open(path: impl Into<PathBuf>, format: KeyFormat) -> Result<Self, String> {
        let path = path.into();
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let keys = parse(&text, &format, modified(&path))?;
        Ok(Self {
            path,
            format,
            keys: RwLock::new(Arc::new(keys)),
        })
    }

    fn snapshot(&self) -> Arc<KeyMap> {
        self.keys.read().expect("not poisoned").clone()
    }

    /// Polls the file every `every` and reloads it when its modification time or length
    /// changes. Changed keys are dropped from `gate`'s cache.
    fn watch(self: Arc<Self>, gate: Keygate, every: Duration) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut seen = stamp(&self.path).await;
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let now = stamp(&self.path).await;
                if now == seen {
                    continue;
                }
                seen = now;
                match self.reload().await {
                    Ok(changed) => {
                        for digest in &changed {
                            gate.invalidate_digest(digest);
                        }
                        tracing::info!(changed = changed.len(), "key file reloaded");
                    }
                    Err(error) => {
                        tracing::warn!(%error, "key file not reloaded; keeping the last good one")
                    }
                }
            }
        })
    }

    /// Re-reads the file and swaps the map in. Returns the digests whose record changed,
    /// appeared or disappeared.
    async fn reload(&self) -> Result<Vec<KeyDigest>, String> {
        let text = tokio::fs::read_to_string(&self.path)
            .await
            .map_err(|e| format!("cannot read {}: {e}", self.path.display()))?;
        let fresh = parse(&text, &self.format, modified(&self.path))?;
        let old = self.snapshot();
        let mut changed: Vec<KeyDigest> = fresh
            .iter()
            .filter(|(digest, record)| !old.get(*digest).is_some_and(|r| same(r, record)))
            .map(|(digest, _)| *digest)
            .collect();
        changed.extend(old.keys().filter(|d| !fresh.contains_key(*d)));
        *self.keys.write().expect("not poisoned") = Arc::new(fresh);
        Ok(changed)
    }
}

#[async_trait]
impl KeyStore for FileKeyStore {
    async fn find_by_digest(&self, digest: &KeyDigest) -> Result<Option<KeyRecord>, StoreError> {
        // A map lookup: nothing here can fail, so no `Err` ever; a networked store would
        // map its connection errors to `StoreError::unavailable`.
        Ok(self.snapshot().get(digest).cloned())
    }
}

/// Whether two loads of one line describe the same key (the load times differ).
fn same(a: &KeyRecord, b: &KeyRecord) -> bool {
    let mut b = b.clone();
    b.created_at = a.created_at;
    b.updated_at = a.updated_at;
    b.revoked_at = b.revoked_at.map(|_| a.revoked_at.unwrap_or(b.updated_at));
    *a == b
}

/// The file's modification time and length, to notice edits.
async fn stamp(path: &Path) -> Option<(SystemTime, u64)> {
    let meta = tokio::fs::metadata(path).await.ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

fn modified(path: &Path) -> SystemTime {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .unwrap_or_else(|_| SystemTime::now())
}

/// Parses the whole file or nothing. Blank lines and `#` comments are skipped. Errors
/// name the line number only.
fn parse(text: &str, format: &KeyFormat, loaded_at: SystemTime) -> Result<KeyMap, String> {
    let mut keys = KeyMap::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let at = |e: &dyn std::fmt::Display| format!("line {}: {e}", n + 1);
        let line: KeyLine = serde_json::from_str(line).map_err(|e| at(&e))?;
        let record = record(line, format, loaded_at).map_err(|e| at(&e))?;
        if keys.insert(record.digest, record).is_some() {
            return Err(at(&"the same digest appears twice"));
        }
    }
    Ok(keys)
}

fn record(line: KeyLine, format: &KeyFormat, loaded_at: SystemTime) -> Result<KeyRecord, String> {
    let digest =
        KeyDigest::from_hex(&line.digest).ok_or("digest: expected 64 hex characters of SHA-256")?;
    let prefix = format
        .prefix(&line.prefix)
        .ok_or_else(|| format!("prefix: '{}' is not an accepted prefix", line.prefix))?;
    let scopes = ScopeSet::parse(&line.scopes).map_err(|e| format!("scopes: {e}"))?;
    let ips = IpAllowlist::parse(&line.ips).map_err(|e| format!("ips: {e}"))?;
    let expires_at = line
        .expires_at
        .as_deref()
        .map(humantime::parse_rfc3339)
        .transpose()
        .map_err(|e| format!("expires_at: {e}"))?;
    if line.rate_limit.is_some_and(|l| !l.is_valid()) {
        return Err("rate_limit: both numbers must be at least 1".into());
    }
    let mut record = KeyRecord::new(
        KeyId::new(line.id),
        AccountId::new(line.account_id),
        digest,
        loaded_at,
    );
    record.name = line.name;
    record.prefix = prefix.as_str().to_owned();
    record.start = line.start;
    record.environment = prefix.environment();
    record.scopes = scopes;
    record.ips = ips;
    record.expires_at = expires_at;
    record.revoked_at = line.revoked.then_some(loaded_at);
    record.disabled = line.disabled;
    record.rate_limit = line.rate_limit;
    Ok(record)
}

/// What a provisioning tool would do: make a key, keep its digest, hand out the key once.
fn provision_admin_key(path: &Path, format: &KeyFormat) -> std::io::Result<String> {
    let prefix = format.prefix("sk_test_").expect("a default prefix");
    let key = format.generate(prefix).expect("the prefix generates keys");
    let line = KeyLine {
        digest: KeyHasher::sha256().digest(key.expose_secret()).to_hex(),
        id: "ak_file_admin".into(),
        account_id: "acct_demo".into(),
        name: "demo admin key".into(),
        prefix: prefix.as_str().to_owned(),
        start: key.start().to_owned(),
        scopes: vec!["admin".into()],
        ips: vec![],
        expires_at: None,
        revoked: false,
        disabled: false,
        rate_limit: None,
    };
    let mut file = std::fs::File::create(path)?;
    writeln!(file, "# keygate key file: one JSON object per line")?;
    writeln!(file, "{}", serde_json::to_string(&line)?)?;
    Ok(key.expose_secret().to_owned())
}

fn parse_args() -> Result<SocketAddr, String> {
    let mut addr: SocketAddr = "127.0.0.1:3002".parse().expect("valid");
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--addr" => {
                let v = args.next().ok_or("--addr needs a value")?;
                addr = v
                    .parse()
                    .map_err(|_| format!("--addr must be HOST:PORT, got '{v}'"))?;
            }
            "-h" | "--help" => return Err("usage: custom_store [--addr HOST:PORT]".into()),
            other => return Err(format!("unknown argument '{other}'; try --help")),
        }
    }
    Ok(addr)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,keygate=info".into()),
        )
        .init();

    let dir = std::env::temp_dir().join(format!("keygate-custom-store-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("keys.jsonl");
    let format = KeyFormat::default();
    let admin_key = provision_admin_key(&path, &format)?;

    let store = Arc::new(FileKeyStore::open(&path, format.clone())?);
    let gate = Keygate::builder(store.clone())
        .format(format)
        .environment(Environment::Test)
        .build();
    store.clone().watch(gate.clone(), Duration::from_secs(1));

    let app = Router::new()
        .route(
            "/v1/whoami",
            get(|id: Identity| async move { Json(id) }).route_layer(gate.layer()),
        )
        .route("/health", get(|| async { "ok" }));

    let listener = match tokio::net::TcpListener::bind(addr).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("cannot listen on {addr}: {e}");
            std::process::exit(1);
        }
    };
    let local = listener.local_addr()?;
    println!("listening on http://{local} (test environment)");
    println!("key file: {}", path.display());
    println!("admin key: {admin_key}");
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .await?;
    Ok(())
}
