//! Between [`KeyRecord`] and table rows.

use std::time::SystemTime;

use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

use crate::client_ip::IpAllowlist;
use crate::key::digest::KeyDigest;
use crate::key::Environment;
use crate::leaks::KeyLeak;
use crate::scope::ScopeSet;
use crate::store::record::{AccountId, GraceDigest, KeyId, KeyRecord, RateLimit};
use crate::store::StoreError;

/// A row that this build cannot read: a failure, never "no such key". The message names
/// the key and the column, never a value.
fn corrupt(id: &str, what: &str) -> StoreError {
    StoreError::unavailable(format!("unreadable row for key {id}: {what}"))
}

pub(super) fn digest_from(bytes: &[u8]) -> Option<KeyDigest> {
    <[u8; 32]>::try_from(bytes).ok().map(KeyDigest::from_bytes)
}

/// Usage settings stored as JSON in column `i`, if any.
pub(super) fn usage_from(row: &Row, i: usize) -> Result<Option<crate::metering::UsageLimits>, ()> {
    let json: Option<serde_json::Value> = row.try_get(i).map_err(drop)?;
    json.map(serde_json::from_value).transpose().map_err(drop)
}

/// Usage settings as stored: `NULL` when empty.
pub(super) fn usage_json(usage: &crate::metering::UsageLimits) -> Option<serde_json::Value> {
    (!usage.is_empty()).then(|| serde_json::to_value(usage).unwrap_or_default())
}

/// Reads a row of `schema::COLUMNS`.
pub(super) fn record(row: &Row) -> Result<KeyRecord, StoreError> {
    let id: String = row.try_get(0).map_err(|_| corrupt("?", "id"))?;
    let bad = |what: &str| corrupt(&id, what);
    let environment = match row
        .try_get::<_, Option<&str>>(5)
        .map_err(|_| bad("environment"))?
    {
        None => None,
        Some(text) => Some(
            text.parse::<Environment>()
                .map_err(|_| bad("environment"))?,
        ),
    };
    let scopes: Vec<String> = row.try_get(6).map_err(|_| bad("scopes"))?;
    let ips: Vec<String> = row.try_get(7).map_err(|_| bad("ips"))?;
    let rate: (Option<i64>, Option<i64>) = (
        row.try_get(11).map_err(|_| bad("rate_per_second"))?,
        row.try_get(12).map_err(|_| bad("rate_burst"))?,
    );
    let rate_limit = match rate {
        (Some(per_second), Some(burst)) => Some(RateLimit::new(
            u32::try_from(per_second).map_err(|_| bad("rate_per_second"))?,
            u32::try_from(burst).map_err(|_| bad("rate_burst"))?,
        )),
        (None, None) => None,
        _ => return Err(bad("rate limit")),
    };
    let metadata = match row
        .try_get::<_, serde_json::Value>(13)
        .map_err(|_| bad("metadata"))?
    {
        serde_json::Value::Object(map) => map,
        _ => return Err(bad("metadata")),
    };
    let digest =
        digest_from(row.try_get(14).map_err(|_| bad("digest"))?).ok_or_else(|| bad("digest"))?;
    let previous = match (
        row.try_get::<_, Option<&[u8]>>(15)
            .map_err(|_| bad("previous_digest"))?,
        row.try_get::<_, Option<SystemTime>>(16)
            .map_err(|_| bad("previous_until"))?,
    ) {
        (Some(d), Some(until)) => Some(GraceDigest {
            digest: digest_from(d).ok_or_else(|| bad("previous_digest"))?,
            until,
        }),
        (None, None) => None,
        _ => return Err(bad("previous digest")),
    };
    let version: i64 = row.try_get(20).map_err(|_| bad("version"))?;
    let leak = match row
        .try_get::<_, Option<serde_json::Value>>(22)
        .map_err(|_| bad("leak"))?
    {
        None => None,
        Some(value) => Some(leak_from(value).ok_or_else(|| bad("leak"))?),
    };
    Ok(KeyRecord {
        account_id: AccountId::new(row.try_get::<_, &str>(1).map_err(|_| bad("account_id"))?),
        name: row.try_get(2).map_err(|_| bad("name"))?,
        prefix: row.try_get(3).map_err(|_| bad("prefix"))?,
        start: row.try_get(4).map_err(|_| bad("key_start"))?,
        environment,
        scopes: ScopeSet::parse(&scopes).map_err(|_| bad("scopes"))?,
        ips: IpAllowlist::parse(&ips).map_err(|_| bad("ips"))?,
        expires_at: row.try_get(8).map_err(|_| bad("expires_at"))?,
        revoked_at: row.try_get(9).map_err(|_| bad("revoked_at"))?,
        disabled: row.try_get(10).map_err(|_| bad("disabled"))?,
        rate_limit,
        metadata,
        usage: crate::metering::KeyUsage {
            own: usage_from(row, 21)
                .map_err(|_| bad("usage"))?
                .unwrap_or_default(),
            account: usage_from(row, 23)
                .map_err(|_| bad("account usage"))?
                .map(std::sync::Arc::new),
        },
        digest,
        previous,
        created_at: row.try_get(17).map_err(|_| bad("created_at"))?,
        updated_at: row.try_get(18).map_err(|_| bad("updated_at"))?,
        last_used_at: row.try_get(19).map_err(|_| bad("last_used_at"))?,
        version: u64::try_from(version).map_err(|_| bad("version"))?,
        leak,
        id: KeyId::new(id),
    })
}

/// A record's values as statement parameters, in `insert_key`/`update_key` order
/// (`$1` to `$21`).
pub(super) struct Params {
    id: String,
    account_id: String,
    name: String,
    prefix: String,
    start: String,
    environment: Option<&'static str>,
    scopes: Vec<String>,
    ips: Vec<String>,
    expires_at: Option<SystemTime>,
    revoked_at: Option<SystemTime>,
    disabled: bool,
    rate_per_second: Option<i64>,
    rate_burst: Option<i64>,
    metadata: serde_json::Value,
    digest: Vec<u8>,
    previous_digest: Option<Vec<u8>>,
    previous_until: Option<SystemTime>,
    created_at: SystemTime,
    updated_at: SystemTime,
    last_used_at: Option<SystemTime>,
    version: i64,
    usage: Option<serde_json::Value>,
    leak: Option<serde_json::Value>,
}

impl Params {
    pub(super) fn new(r: &KeyRecord) -> Result<Self, StoreError> {
        Ok(Self {
            id: r.id.as_str().to_owned(),
            account_id: r.account_id.as_str().to_owned(),
            name: r.name.clone(),
            prefix: r.prefix.clone(),
            start: r.start.clone(),
            environment: r.environment.map(Environment::as_str),
            scopes: r.scopes.iter().map(|s| s.as_str().to_owned()).collect(),
            ips: r.ips.entries().iter().map(ToString::to_string).collect(),
            expires_at: r.expires_at,
            revoked_at: r.revoked_at,
            disabled: r.disabled,
            rate_per_second: r.rate_limit.map(|l| i64::from(l.per_second)),
            rate_burst: r.rate_limit.map(|l| i64::from(l.burst)),
            metadata: serde_json::Value::Object(r.metadata.clone()),
            digest: r.digest.as_bytes().to_vec(),
            previous_digest: r.previous.map(|p| p.digest.as_bytes().to_vec()),
            previous_until: r.previous.map(|p| p.until),
            created_at: r.created_at,
            updated_at: r.updated_at,
            last_used_at: r.last_used_at,
            version: i64::try_from(r.version)
                .map_err(|_| StoreError::Conflict("version out of range".into()))?,
            usage: usage_json(&r.usage.own),
            leak: r.leak.as_ref().map(leak_to),
        })
    }

    /// The parameters of `update_key` (`$1` to `$22`): all but the version, then the
    /// usage settings and the leak.
    pub(super) fn for_update(&self) -> Vec<&(dyn ToSql + Sync)> {
        let mut params = self.all()[..20].to_vec();
        params.push(&self.usage);
        params.push(&self.leak);
        params
    }

    pub(super) fn all(&self) -> [&(dyn ToSql + Sync); 23] {
        [
            &self.id,
            &self.account_id,
            &self.name,
            &self.prefix,
            &self.start,
            &self.environment,
            &self.scopes,
            &self.ips,
            &self.expires_at,
            &self.revoked_at,
            &self.disabled,
            &self.rate_per_second,
            &self.rate_burst,
            &self.metadata,
            &self.digest,
            &self.previous_digest,
            &self.previous_until,
            &self.created_at,
            &self.updated_at,
            &self.last_used_at,
            &self.version,
            &self.usage,
            &self.leak,
        ]
    }

    pub(super) fn version(&self) -> i64 {
        self.version
    }
}

/// A [`KeyLeak`] as the `leak` column keeps it.
fn leak_to(leak: &KeyLeak) -> serde_json::Value {
    serde_json::json!({
        "detected_at": crate::manage::rfc3339(leak.detected_at),
        "token_type": leak.token_type,
        "url": leak.url,
        "source": leak.source,
    })
}

/// The `leak` column read back, or `None` when it is not one.
fn leak_from(value: serde_json::Value) -> Option<KeyLeak> {
    let text = |name: &str| value.get(name)?.as_str().map(str::to_owned);
    let at = humantime::parse_rfc3339(&text("detected_at")?).ok()?;
    Some(KeyLeak::new(
        at,
        text("token_type")?,
        text("url")?,
        text("source")?,
    ))
}
