//! `keygate import`: JSON lines of existing keys into a `PgStore`.

use std::io::BufRead;
use std::time::SystemTime;

use keygate::key::{KeyDigest, KeyFormat, KeyHasher};
use keygate::scope::ScopeSet;
use keygate::store::PgStore;
use keygate::store::{AccountId, KeyId, KeyRecord};
use keygate::{Environment, KeyStoreWrite};
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

fn record(line: Line, hasher: &KeyHasher, now: SystemTime) -> Result<KeyRecord, String> {
    let id = KeyId::parse(&line.id).ok_or("id: 1-64 ASCII letters, digits or '_'")?;
    let (digest, start) = match (&line.key, &line.digest) {
        (Some(key), None) => {
            let start: String = key
                .chars()
                .take(line.prefix.as_deref().map_or(0, str::len) + 4)
                .collect();
            (hasher.digest(key), start)
        }
        (None, Some(hex)) => (
            KeyDigest::from_hex(hex).ok_or("digest: expected 64 hex characters")?,
            line.prefix.clone().unwrap_or_default(),
        ),
        _ => return Err("give exactly one of `key` and `digest`".into()),
    };
    let environment = environment(&line, &KeyFormat::default())?;
    let time = |field: &str, text: &Option<String>| -> Result<Option<SystemTime>, String> {
        text.as_deref()
            .map(|t| parse_rfc3339(t).ok_or(format!("{field}: expected an RFC 3339 time")))
            .transpose()
    };
    let created = time("created_at", &line.created_at)?.unwrap_or(now);
    let mut record = KeyRecord::new(id, AccountId::new(line.account_id), digest, created);
    record.name = line.name;
    record.prefix = line.prefix.unwrap_or_default();
    record.start = start;
    record.environment = environment;
    record.scopes = ScopeSet::parse(&line.scopes).map_err(|e| format!("scopes: {e}"))?;
    record.expires_at = time("expires_at", &line.expires_at)?;
    Ok(record)
}

/// The key's environment: its prefix's when the prefix (the plaintext's, or the one given
/// with a digest) is one of keygate's, where a different `environment` is an error;
/// otherwise the line's.
fn environment(line: &Line, format: &KeyFormat) -> Result<Option<Environment>, String> {
    let text = line.key.as_deref().or(line.prefix.as_deref()).unwrap_or("");
    let Some(prefix) = format.matching_prefix(text) else {
        return Ok(line.environment);
    };
    match (prefix.environment(), line.environment) {
        (from_prefix, Some(given)) if from_prefix != Some(given) => Err(format!(
            "environment: the prefix '{}' is for {} keys, not {given} keys",
            prefix.as_str(),
            from_prefix.map_or("environment-neutral".into(), |e| e.to_string())
        )),
        (from_prefix, _) => Ok(from_prefix),
    }
}

/// Imports every line; stops at the first bad one, naming its number (never its key).
pub(crate) fn run(
    url: &str,
    schema: &str,
    hasher: &KeyHasher,
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
        let mut imported = 0;
        for (n, line) in input.lines().enumerate() {
            let n = n + 1;
            let line = line.map_err(|e| format!("line {n}: cannot read: {e}"))?;
            if line.trim().is_empty() {
                continue;
            }
            let parsed: Line = serde_json::from_str(&line)
                .map_err(|e| format!("line {n}: not a key object (column {})", e.column()))?;
            let record =
                record(parsed, hasher, SystemTime::now()).map_err(|e| format!("line {n}: {e}"))?;
            store
                .insert(record, None, SystemTime::now())
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
