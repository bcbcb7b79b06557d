//! The schema name, the SQL text built from it, and the embedded migrations.

use super::{pg_error, PgStore};
use crate::store::StoreError;

/// Advisory-lock class (first key) of migrations; the second key is the schema's hash.
pub(super) const MIGRATE_LOCK: i32 = 0x6b67_0001;
/// Advisory-lock class of change-log appends: taken last in a writing transaction and
/// held until it commits, so change sequence numbers are in commit order.
pub(super) const CHANGES_LOCK: i32 = 0x6b67_0002;

/// The versioned migrations, applied in order. Never edit one that has shipped: add one.
/// `{s}` is the quoted schema name.
const MIGRATIONS: &[(i32, &str, &str)] = &[
    (
        1,
        "keys, digests, accounts, change log",
        r#"
CREATE TABLE {s}.accounts (
    id text COLLATE "C" PRIMARY KEY
);
CREATE TABLE {s}.keys (
    id text COLLATE "C" PRIMARY KEY,
    account_id text COLLATE "C" NOT NULL REFERENCES {s}.accounts (id),
    name text NOT NULL,
    prefix text NOT NULL,
    key_start text NOT NULL,
    environment text CHECK (environment IN ('live', 'test')),
    scopes text[] NOT NULL,
    ips text[] NOT NULL,
    expires_at timestamptz,
    revoked_at timestamptz,
    disabled boolean NOT NULL,
    rate_per_second bigint,
    rate_burst bigint,
    metadata jsonb NOT NULL,
    digest bytea NOT NULL,
    previous_digest bytea,
    previous_until timestamptz,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    last_used_at timestamptz,
    version bigint NOT NULL DEFAULT 0
);
CREATE INDEX keys_by_account ON {s}.keys (account_id, id);
-- The one unique index a lookup uses: every digest that currently verifies a key.
CREATE TABLE {s}.key_digests (
    digest bytea PRIMARY KEY CHECK (length(digest) = 32),
    key_id text COLLATE "C" NOT NULL REFERENCES {s}.keys (id) ON DELETE CASCADE,
    kind text NOT NULL CHECK (kind IN ('current', 'previous')),
    valid_until timestamptz
);
CREATE INDEX key_digests_by_key ON {s}.key_digests (key_id);
CREATE TABLE {s}.changes (
    seq bigserial PRIMARY KEY,
    digests bytea[] NOT NULL,
    at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX changes_by_time ON {s}.changes (at);
CREATE TABLE {s}.change_log_state (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    trimmed_through bigint NOT NULL
);
INSERT INTO {s}.change_log_state (trimmed_through) VALUES (0);
"#,
    ),
    (
        2,
        "keys listed by creation time",
        r#"
CREATE INDEX keys_by_account_created ON {s}.keys (account_id, created_at, id);
"#,
    ),
    (
        3,
        "usage counters",
        r#"
CREATE TABLE {s}.usage_counts (
    subject_kind text NOT NULL CHECK (subject_kind IN ('key', 'account', 'deployment')),
    subject text COLLATE "C" NOT NULL,
    granularity text NOT NULL CHECK (granularity IN ('minute', 'hour', 'day')),
    start timestamptz NOT NULL,
    outcome text NOT NULL,
    account_id text COLLATE "C",
    n bigint NOT NULL CHECK (n >= 0),
    PRIMARY KEY (subject_kind, subject, granularity, start, outcome)
);
CREATE INDEX usage_counts_by_account ON {s}.usage_counts (account_id) WHERE account_id IS NOT NULL;
CREATE INDEX usage_counts_by_age ON {s}.usage_counts (granularity, start);
"#,
    ),
    (
        4,
        "the API log's events; keys found by hint",
        r#"
CREATE TABLE {s}.api_events (
    id bigserial PRIMARY KEY,
    time timestamptz NOT NULL,
    account_id text COLLATE "C" NOT NULL,
    key_id text COLLATE "C" NOT NULL,
    outcome text NOT NULL,
    method text NOT NULL,
    path text NOT NULL,
    client_ip inet,
    status smallint NOT NULL
);
CREATE INDEX api_events_by_account ON {s}.api_events (account_id, time DESC, id DESC);
CREATE INDEX api_events_by_time ON {s}.api_events (time);
CREATE INDEX keys_by_start ON {s}.keys (key_start);
"#,
    ),
    (
        5,
        "usage settings (credits, quotas, plan) of keys and accounts",
        r#"
ALTER TABLE {s}.keys ADD COLUMN usage jsonb;
ALTER TABLE {s}.accounts ADD COLUMN usage jsonb;
"#,
    ),
    (
        6,
        "meters: balances of record of credits and quotas",
        r#"
CREATE TABLE {s}.meters (
    owner_kind text NOT NULL CHECK (owner_kind IN ('key', 'account')),
    owner_id text COLLATE "C" NOT NULL,
    meter text COLLATE "C" NOT NULL,
    balance bigint NOT NULL,
    period bigint NOT NULL,
    granted bigint NOT NULL DEFAULT 0,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (owner_kind, owner_id, meter)
);
"#,
    ),
    (
        7,
        "the leak reported for a key",
        r#"
ALTER TABLE {s}.keys ADD COLUMN leak jsonb;
"#,
    ),
    (
        8,
        "webhook outbox",
        r#"
CREATE TABLE {s}.webhook_outbox (
    seq bigserial UNIQUE,
    id text COLLATE "C" PRIMARY KEY,
    event_type text NOT NULL,
    account_id text COLLATE "C" NOT NULL,
    key_id text COLLATE "C",
    subject_at timestamptz,
    body text NOT NULL,
    status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts integer NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL,
    next_attempt_at timestamptz NOT NULL,
    deadline timestamptz NOT NULL,
    lease_owner text,
    lease_until timestamptz,
    last_error text,
    finished_at timestamptz
);
CREATE INDEX webhook_outbox_due ON {s}.webhook_outbox (next_attempt_at, seq) WHERE status = 'pending';
CREATE INDEX webhook_outbox_by_status ON {s}.webhook_outbox (status, seq);
-- One expiry notice per key and expiry, however many instances scan.
CREATE UNIQUE INDEX webhook_outbox_expiring_once ON {s}.webhook_outbox (key_id, subject_at)
    WHERE event_type = 'key.expiring';
"#,
    ),
    (
        9,
        "plans shared by every instance; changes that concern every key",
        r#"
CREATE TABLE {s}.plans (
    name text COLLATE "C" PRIMARY KEY,
    plan jsonb NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE {s}.changes ADD COLUMN everything boolean NOT NULL DEFAULT false;
"#,
    ),
    (
        10,
        "meters: low-credit state",
        r#"
-- 0: armed; 1: credits.low sent for the current dip; 2: sent by the last change.
ALTER TABLE {s}.meters ADD COLUMN low_state smallint NOT NULL DEFAULT 0;
"#,
    ),
];

/// The newest migration version this build knows.
pub(super) fn latest_version() -> i32 {
    MIGRATIONS.last().map_or(0, |m| m.0)
}

/// Whether `name` can be a schema name: 1 to 40 lowercase ASCII letters, digits and `_`,
/// not starting with a digit or `pg_`.
pub(super) fn valid_schema(name: &str) -> bool {
    (1..=40).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        && !name.as_bytes()[0].is_ascii_digit()
        && !name.starts_with("pg_")
}

/// Every statement the store runs, with the schema filled in.
pub(super) struct Sql {
    pub(super) find: String,
    pub(super) get: String,
    pub(super) list: String,
    pub(super) upsert_account: String,
    pub(super) lock_account: String,
    pub(super) count_active: String,
    pub(super) insert_key: String,
    pub(super) insert_digest: String,
    pub(super) lock_key: String,
    pub(super) update_key: String,
    pub(super) drop_digests: String,
    pub(super) delete_key: String,
    pub(super) append_change: String,
    pub(super) replay: String,
    pub(super) position: String,
    pub(super) trim: String,
    pub(super) touch: String,
}

/// The columns of a key, in the order `rows::record` reads them; the account's usage
/// settings follow them (see [`key_columns`]).
pub(super) const COLUMNS: &str =
    "k.id, k.account_id, k.name, k.prefix, k.key_start, k.environment, \
     k.scopes, k.ips, k.expires_at, k.revoked_at, k.disabled, k.rate_per_second, \
     k.rate_burst, k.metadata, k.digest, k.previous_digest, k.previous_until, \
     k.created_at, k.updated_at, k.last_used_at, k.version, k.usage, k.leak";

/// What every query of whole keys selects: [`COLUMNS`], then the account's usage
/// settings. `s` is the quoted schema name; the keys table is aliased `k`.
pub(super) fn key_columns(s: &str) -> String {
    format!("{COLUMNS}, (SELECT a.usage FROM {s}.accounts a WHERE a.id = k.account_id)")
}

impl Sql {
    pub(super) fn new(schema: &str) -> Self {
        let s = format!("\"{schema}\"");
        let columns = key_columns(&s);
        Self {
            find: format!(
                "SELECT {columns} FROM {s}.key_digests d JOIN {s}.keys k ON k.id = d.key_id \
                 WHERE d.digest = $1"
            ),
            get: format!("SELECT {columns} FROM {s}.keys k WHERE k.id = $1"),
            // $2: status filter (NULL for all, true for revoked, false for not revoked);
            // $3, $4: the position to continue after, or NULLs.
            list: format!(
                "SELECT {columns} FROM {s}.keys k WHERE k.account_id = $1 \
                 AND ($2::boolean IS NULL OR (k.revoked_at IS NOT NULL) = $2) \
                 AND ($3::timestamptz IS NULL OR (k.created_at, k.id) > ($3, $4::text)) \
                 ORDER BY k.created_at, k.id LIMIT $5"
            ),
            upsert_account: format!(
                "INSERT INTO {s}.accounts (id) VALUES ($1) ON CONFLICT DO NOTHING"
            ),
            lock_account: format!("SELECT id FROM {s}.accounts WHERE id = $1 FOR UPDATE"),
            count_active: format!(
                "SELECT count(*) FROM {s}.keys WHERE account_id = $1 AND revoked_at IS NULL \
                 AND (expires_at IS NULL OR expires_at > $2)"
            ),
            insert_key: format!(
                "INSERT INTO {s}.keys (id, account_id, name, prefix, key_start, environment, \
                 scopes, ips, expires_at, revoked_at, disabled, rate_per_second, rate_burst, \
                 metadata, digest, previous_digest, previous_until, created_at, updated_at, \
                 last_used_at, version, usage, leak) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, \
                 $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23)"
            ),
            insert_digest: format!(
                "INSERT INTO {s}.key_digests (digest, key_id, kind, valid_until) \
                 VALUES ($1, $2, $3, $4)"
            ),
            lock_key: format!("SELECT account_id, version FROM {s}.keys WHERE id = $1 FOR UPDATE"),
            update_key: format!(
                "UPDATE {s}.keys SET name = $3, prefix = $4, key_start = $5, \
                 environment = $6, scopes = $7, ips = $8, expires_at = $9, revoked_at = $10, \
                 disabled = $11, rate_per_second = $12, rate_burst = $13, metadata = $14, \
                 digest = $15, previous_digest = $16, previous_until = $17, created_at = $18, \
                 updated_at = $19, last_used_at = GREATEST(last_used_at, $20), \
                 usage = $21, leak = $22, version = version + 1 WHERE id = $1 AND account_id = $2"
            ),
            drop_digests: format!("DELETE FROM {s}.key_digests WHERE key_id = $1 RETURNING digest"),
            delete_key: format!("DELETE FROM {s}.keys k WHERE k.id = $1 RETURNING {columns}"),
            append_change: format!("INSERT INTO {s}.changes (digests) VALUES ($1) RETURNING seq"),
            replay: format!(
                "SELECT st.trimmed_through, c.seq, c.digests, c.everything \
                 FROM {s}.change_log_state st \
                 LEFT JOIN {s}.changes c ON c.seq > $1 ORDER BY c.seq"
            ),
            position: format!(
                "SELECT GREATEST((SELECT max(seq) FROM {s}.changes), \
                 (SELECT trimmed_through FROM {s}.change_log_state))"
            ),
            trim: format!(
                "WITH gone AS (DELETE FROM {s}.changes \
                 WHERE at < clock_timestamp() - $1 * interval '1 millisecond' RETURNING seq) \
                 UPDATE {s}.change_log_state SET trimmed_through = \
                 GREATEST(trimmed_through, (SELECT max(seq) FROM gone)) \
                 RETURNING (SELECT count(*) FROM gone)"
            ),
            touch: format!(
                "UPDATE {s}.keys k SET last_used_at = GREATEST(k.last_used_at, v.at) \
                 FROM unnest($1::text[], $2::timestamptz[]) AS v(id, at) WHERE k.id = v.id"
            ),
        }
    }
}

impl PgStore {
    /// Creates the schema and its tables, or brings them up to date. Idempotent, and
    /// safe when several instances run it at once: they take turns on an advisory lock,
    /// and each migration is applied exactly once, in one transaction with the record of
    /// it in `<schema>.schema_migrations`.
    ///
    /// Fails with [`StoreError::Conflict`] when the database was migrated by a newer
    /// build than this one.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let schema = &self.inner.schema;
        let s = format!("\"{schema}\"");
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_error)?;
        tx.execute(
            "SELECT pg_advisory_xact_lock($1, hashtext($2))",
            &[&MIGRATE_LOCK, schema],
        )
        .await
        .map_err(pg_error)?;
        tx.batch_execute(&format!(
            "CREATE SCHEMA IF NOT EXISTS {s}; \
             CREATE TABLE IF NOT EXISTS {s}.schema_migrations ( \
                 version integer PRIMARY KEY, \
                 description text NOT NULL, \
                 applied_at timestamptz NOT NULL DEFAULT now())"
        ))
        .await
        .map_err(pg_error)?;
        let applied: Vec<i32> = tx
            .query(&format!("SELECT version FROM {s}.schema_migrations"), &[])
            .await
            .map_err(pg_error)?
            .iter()
            .map(|r| r.get(0))
            .collect();
        if let Some(newer) = applied.iter().find(|v| **v > latest_version()) {
            return Err(StoreError::Conflict(format!(
                "schema {schema} is at migration {newer}, newer than this build knows ({})",
                latest_version()
            )));
        }
        for (version, description, sql) in MIGRATIONS {
            if applied.contains(version) {
                continue;
            }
            tx.batch_execute(&sql.replace("{s}", &s))
                .await
                .map_err(pg_error)?;
            tx.execute(
                &format!(
                    "INSERT INTO {s}.schema_migrations (version, description) VALUES ($1, $2)"
                ),
                &[version, description],
            )
            .await
            .map_err(pg_error)?;
            tracing::info!(target: "keygate", schema = %schema, version, description, "applied migration");
        }
        tx.commit().await.map_err(pg_error)
    }
}
