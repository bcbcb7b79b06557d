//! `keygate import`: JSON lines of existing keys into a `PgStore`, through
//! `KeyManager::import`, so that they are checked exactly as the library checks an
//! import (the deployment's formats and environment, names, scopes, the active-key cap,
//! duplicates).

use std::io::BufRead;
use std::sync::Arc;
use std::time::SystemTime;

use keygate::config::KeygateConfig;
use keygate::key::{KeyDigest, KeyHasher};
use keygate::manage::ImportedKey;
use keygate::store::PgStore;
use keygate::store::{AccountId, KeyId};
use keygate::{Environment, Keygate};
use serde::Deserialize;

/// One line of the input.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    id: String,
    account_id: String,
    name: String,
    #[serde(default)]
    key: Option<String>,
    #[serde(default)]
    digest: Option<String>,
    #[serde(default)]
    prefix: Option<String>,
    #[serde(default)]
    environment: Option<Environment>,
    #[serde(default)]
    scopes: Vec<String>,
    #[serde(default)]
    created_at: Option<String>,
    #[serde(default)]
    expires_at: Option<String>,
}

/// The key to import from `line`, and its account. Errors never hold the key.
fn key_of(line: Line) -> Result<(AccountId, ImportedKey), String> {
    let id = KeyId::parse(&line.id).ok_or("id: 1-64 ASCII letters, digits or '_'")?;
    let key = match (line.key, &line.digest) {
        (Some(key), None) => ImportedKey::plaintext(line.name, key),
        (None, Some(hex)) => ImportedKey::sha256_digest(
            line.name,
            KeyDigest::from_hex(hex).ok_or("digest: expected 64 hex characters")?,
            line.prefix.unwrap_or_default(),
        ),
        _ => return Err("give exactly one of `key` and `digest`".into()),
    };
    let time = |field: &str, text: &str| {
        parse_rfc3339(text).ok_or(format!("{field}: expected an RFC 3339 time"))
    };
    let mut key = key.id(id).scopes(line.scopes);
    if let Some(env) = line.environment {
        key = key.environment(env);
    }
    if let Some(at) = line.created_at.as_deref() {
        key = key.created_at(time("created_at", at)?);
    }
    if let Some(at) = line.expires_at.as_deref() {
        key = key.expires_at(time("expires_at", at)?);
    }
    Ok((AccountId::new(line.account_id), key))
}

/// Imports every line; stops at the first bad one, naming its number (never its key).
/// `config` is the deployment's (its prefixes and formats, environment and management
/// settings); `hasher` digests plaintext keys.
pub(crate) fn run(
    url: &str,
    schema: &str,
    config: &KeygateConfig,
    hasher: KeyHasher,
    input: impl BufRead,
) -> Result<usize, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start a runtime: {e}"))?;
    runtime.block_on(async {
        let store = PgStore::builder(url)
            .and_then(|b| b.schema(schema).build())
            .map_err(|e| format!("--database-url: {e}"))?;
        store
            .migrate()
            .await
            .map_err(|e| format!("cannot migrate the database: {e}"))?;
        let (_gate, manager) = Keygate::managed(Arc::new(store))
            .config(config)
            .map_err(|e| format!("--config: {e}"))?
            .hasher(hasher)
            .build();
        let mut imported = 0;
        for (n, line) in input.lines().enumerate() {
            let n = n + 1;
            let line = line.map_err(|e| format!("line {n}: cannot read: {e}"))?;
            if line.trim().is_empty() {
                continue;
            }
            let parsed: Line = serde_json::from_str(&line)
                .map_err(|e| format!("line {n}: not a key object (column {})", e.column()))?;
            let (account, key) = key_of(parsed).map_err(|e| format!("line {n}: {e}"))?;
            manager
                .import(account, key)
                .await
                .map_err(|e| format!("line {n}: {e}"))?;
            imported += 1;
        }
        Ok(imported)
    })
}

/// An RFC 3339 time with its UTC offset, such as `2024-01-02T03:04:05+01:00`.
fn parse_rfc3339(text: &str) -> Option<SystemTime> {
    let parsed =
        time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()?;
    Some(parsed.into())
}
