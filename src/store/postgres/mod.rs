//! [`PgStore`]: keys in PostgreSQL, shared by every instance (feature `postgres`).
//!
//! # Tables
//!
//! [`PgStore::migrate`] creates them in the schema the store was built with:
//!
//! - `keys`: one row per key, with a `version` that every replace compares and bumps;
//! - `key_digests (digest bytea PRIMARY KEY, key_id, kind, valid_until)`: every digest
//!   that verifies a key, the current one and, during a roll's grace period, the previous
//!   one. A lookup is one probe of this one unique index, and the primary key makes a
//!   digest belong to at most one key;
//! - `accounts`: one row per account, locked by every key creation in it, so the cap on
//!   active keys holds however many instances create keys at once;
//! - `changes (seq bigserial, digests bytea[], at timestamptz)`: the change log;
//!   `change_log_state` remembers how far it has been trimmed;
//! - `webhook_outbox`: webhook events waiting for delivery, delivered or failed, each
//!   written in the transaction of the change it reports (feature `webhooks`);
//! - `schema_migrations`: the migrations applied.
//!
//! # Changes reach every instance
//!
//! Every write that affects verification (insert, replace of any kind, delete) appends
//! the affected digests to `changes` and sends them with `pg_notify` in the transaction
//! that makes the change: other instances hear of it exactly when it commits, never
//! before and never of a change that rolled back. [`PgStore::listen`] runs a
//! [`Listener`] on a dedicated connection that `LISTEN`s, checks itself with a heartbeat,
//! and after a reconnect replays from `changes` what it missed (see
//! [`crate::invalidation`]). Appends to the log are serialised by an advisory lock held
//! to the commit, so sequence numbers are in commit order and a replay by "after the
//! last one read from the log" misses nothing. Sequence numbers in notifications are
//! never trusted for replays (any role may `NOTIFY`): see [`crate::invalidation`]. The log is trimmed after
//! [`PgStoreBuilder::change_retention`] (1 hour); a listener that was away longer
//! flushes its whole cache instead.
//!
//! # Failures
//!
//! Connections are pooled (deadpool-postgres) and a broken one is replaced on its next
//! checkout, so a lost connection or a restarted server is survived without restarting
//! the instance. Meanwhile calls fail with [`StoreError::Unavailable`] (a 503 for
//! requests whose key is not cached), or [`StoreError::Timeout`] after
//! [`PgStoreBuilder::timeout`]. Errors carry the server's message and SQLSTATE, never
//! its detail lines, which can quote row values.
//!
//! Timestamps are stored to the microsecond, as PostgreSQL keeps them.

mod channel;
mod events;
mod last_used;
mod ledger;
mod ledger_sql;
#[cfg(feature = "webhooks")]
mod outbox;
mod plans;
mod rows;
mod schema;
mod usage;
mod usage_limits;
mod write;

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::NoTls;

pub use channel::PgChannel;

use super::{KeyStore, StoreError};
use crate::invalidation::{InvalidationSink, Listener, ListenerConfig};
use crate::key::digest::KeyDigest;
use crate::store::record::{KeyId, KeyRecord};
use schema::Sql;

/// Keys in PostgreSQL (feature `postgres`). Cheap to clone; clones share one pool.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use std::sync::Arc;
/// use keygate::store::PgStore;
/// use keygate::Keygate;
///
/// let store = PgStore::builder("postgres://app@db.internal/app")?
///     .schema("keygate")
///     .build()?;
/// store.migrate().await?;
/// let store = Arc::new(store);
/// let (gate, manager) = Keygate::managed(store.clone()).build();
/// // Hear of revocations and rolls made by other instances.
/// let _listener = store.listen(Arc::new(gate.clone()));
/// # Ok(()) }
/// ```
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
#[derive(Clone)]
pub struct PgStore {
    inner: Arc<Shared>,
}

struct Shared {
    pool: Pool,
    /// For the listener's dedicated connections.
    config: tokio_postgres::Config,
    schema: String,
    /// The `NOTIFY` channel of this schema's changes.
    channel: String,
    sql: Sql,
    /// The credit ledger's statements.
    ledger: ledger::LedgerSql,
    /// Seconds a `credits.low` event is tried for, when webhooks keep their events in
    /// this store; 0 when they do not (no event is written).
    low_credit_horizon: std::sync::atomic::AtomicU64,
    timeout: Duration,
    change_retention: Duration,
    /// `last_used_at` writes waiting for the next flush, newest per key.
    last_used: Mutex<HashMap<KeyId, SystemTime>>,
    /// How long usage buckets are kept, and when they were last trimmed.
    usage: usage::UsageState,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("schema", &self.inner.schema)
            .field("pool", &self.inner.pool.status())
            .finish_non_exhaustive()
    }
}

/// Builds a [`PgStore`]: see [`PgStore::builder`].
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
#[derive(Clone)]
#[must_use]
pub struct PgStoreBuilder {
    config: tokio_postgres::Config,
    schema: String,
    max_connections: usize,
    timeout: Duration,
    flush_interval: Duration,
    change_retention: Duration,
    trim_interval: Duration,
    usage_retention: crate::activity::UsageRetention,
}

impl std::fmt::Debug for PgStoreBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The connection settings may hold a password: show none of them.
        f.debug_struct("PgStoreBuilder")
            .field("schema", &self.schema)
            .field("max_connections", &self.max_connections)
            .finish_non_exhaustive()
    }
}

impl PgStoreBuilder {
    /// Starts from parsed connection settings.
    pub fn from_config(config: tokio_postgres::Config) -> Self {
        Self {
            config,
            schema: "keygate".to_owned(),
            max_connections: 16,
            timeout: Duration::from_secs(2),
            flush_interval: Duration::from_secs(1),
            change_retention: Duration::from_secs(3600),
            trim_interval: Duration::from_secs(300),
            usage_retention: Default::default(),
        }
    }

    /// The schema holding keygate's tables: 1 to 40 lowercase ASCII letters, digits and
    /// `_`, not starting with a digit or `pg_`. Default: `keygate`.
    pub fn schema(mut self, schema: impl Into<String>) -> Self {
        self.schema = schema.into();
        self
    }

    /// Most pooled connections. Default: 16.
    pub fn max_connections(mut self, max: usize) -> Self {
        self.max_connections = max.max(1);
        self
    }

    /// Longest wait to connect, for a pooled connection, or for any one call; past it
    /// the call fails with [`StoreError::Unavailable`]. Default: 2 s.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How often buffered `last_used_at` writes are flushed, in one statement per
    /// flush. Default: 1 s.
    pub fn last_used_flush_interval(mut self, interval: Duration) -> Self {
        self.flush_interval = interval;
        self
    }

    /// How long entries stay in the change log for replays. Default: 1 hour.
    pub fn change_retention(mut self, retention: Duration) -> Self {
        self.change_retention = retention;
        self
    }

    /// How often this instance trims the change log. Default: 5 minutes.
    pub fn trim_interval(mut self, interval: Duration) -> Self {
        self.trim_interval = interval;
        self
    }

    /// Builds the store and starts its background task (buffered `last_used_at`
    /// writes, change-log trimming). Connects lazily: a database that is down now makes
    /// calls fail until it is up, not this.
    ///
    /// Fails with [`StoreError::Conflict`] on an invalid schema name.
    ///
    /// # Panics
    /// Outside a tokio runtime.
    pub fn build(mut self) -> Result<PgStore, StoreError> {
        if !schema::valid_schema(&self.schema) {
            return Err(StoreError::Conflict(format!(
                "invalid schema name '{}': use 1 to 40 lowercase letters, digits and _",
                self.schema.chars().take(64).collect::<String>()
            )));
        }
        if self.config.get_application_name().is_none() {
            self.config.application_name("keygate");
        }
        if self.config.get_connect_timeout().is_none() {
            self.config.connect_timeout(self.timeout);
        }
        let manager = Manager::from_config(
            self.config.clone(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(self.max_connections)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(self.timeout))
            .create_timeout(Some(self.timeout))
            .recycle_timeout(Some(self.timeout))
            .build()
            .map_err(StoreError::unavailable)?;
        let inner = Arc::new(Shared {
            pool,
            config: self.config,
            channel: format!("{}.changes", self.schema),
            sql: Sql::new(&self.schema),
            ledger: ledger::LedgerSql::new(&self.schema),
            low_credit_horizon: std::sync::atomic::AtomicU64::new(0),
            schema: self.schema,
            timeout: self.timeout,
            change_retention: self.change_retention,
            last_used: Mutex::new(HashMap::new()),
            usage: usage::UsageState::new(self.usage_retention),
        });
        last_used::spawn_background(
            Arc::downgrade(&inner),
            self.flush_interval,
            self.trim_interval,
        );
        Ok(PgStore { inner })
    }
}

impl PgStore {
    /// Starts building a store from a connection URL
    /// (`postgres://user:password@host:port/database?application_name=...`).
    pub fn builder(url: &str) -> Result<PgStoreBuilder, StoreError> {
        let config: tokio_postgres::Config = url
            .parse()
            .map_err(|_| StoreError::unavailable("invalid postgres connection URL"))?;
        Ok(PgStoreBuilder::from_config(config))
    }

    /// The schema holding the tables.
    pub fn schema(&self) -> &str {
        &self.inner.schema
    }

    /// The `LISTEN/NOTIFY` channel of this store's changes, for a [`Listener`].
    pub fn channel(&self) -> PgChannel {
        PgChannel::new(self.clone())
    }

    /// Starts a [`Listener`] that keeps `sink` (normally a [`crate::Keygate`]) in step
    /// with changes made through any `PgStore` on this schema, with the default
    /// [`ListenerConfig`]. It stops when dropped.
    pub fn listen(&self, sink: Arc<dyn InvalidationSink>) -> Listener {
        self.listen_with(sink, ListenerConfig::default())
    }

    /// [`listen`](Self::listen) with explicit settings.
    pub fn listen_with(&self, sink: Arc<dyn InvalidationSink>, config: ListenerConfig) -> Listener {
        Listener::spawn(Arc::new(self.channel()), sink, config)
    }

    async fn client(&self) -> Result<deadpool_postgres::Client, StoreError> {
        self.inner.pool.get().await.map_err(|e| match e {
            deadpool_postgres::PoolError::Timeout(_) => StoreError::unavailable(format!(
                "no database connection within {:?}",
                self.inner.timeout
            )),
            deadpool_postgres::PoolError::Backend(e) => pg_error(e),
            other => StoreError::unavailable(other.to_string()),
        })
    }

    /// Runs `call` within the store's timeout.
    async fn timed<T>(
        &self,
        call: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        tokio::time::timeout(self.inner.timeout, call)
            .await
            .unwrap_or(Err(StoreError::unavailable(format!(
                "the database call timed out after {:?}",
                self.inner.timeout
            ))))
    }
}

/// A backend error, as [`StoreError::Unavailable`] or, for a unique violation,
/// [`StoreError::Conflict`]. Keeps the server's message and SQLSTATE but drops its detail
/// lines, which can quote row values such as a digest.
pub(super) fn pg_error(e: tokio_postgres::Error) -> StoreError {
    match e.as_db_error() {
        Some(db) if *db.code() == tokio_postgres::error::SqlState::UNIQUE_VIOLATION => {
            StoreError::Conflict(format!("duplicate {}", db.constraint().unwrap_or("key")))
        }
        Some(db) => StoreError::unavailable(format!(
            "{}: {} (SQLSTATE {})",
            db.severity(),
            db.message(),
            db.code().code()
        )),
        None => {
            let cause = std::error::Error::source(&e).map(ToString::to_string);
            StoreError::unavailable(match cause {
                Some(cause) => format!("{e}: {cause}"),
                None => e.to_string(),
            })
        }
    }
}

#[async_trait]
impl KeyStore for PgStore {
    async fn find_by_digest(&self, digest: &KeyDigest) -> Result<Option<KeyRecord>, StoreError> {
        self.timed(async {
            let client = self.client().await?;
            let stmt = client
                .prepare_cached(&self.inner.sql.find)
                .await
                .map_err(pg_error)?;
            let bytes: &[u8] = digest.as_bytes();
            let row = client.query_opt(&stmt, &[&bytes]).await.map_err(pg_error)?;
            row.as_ref().map(rows::record).transpose()
        })
        .await
    }

    fn usage_store(&self) -> Option<Arc<dyn crate::activity::UsageStore>> {
        Some(Arc::new(self.clone()))
    }

    /// The `meters` table: balances of credits and quotas, durable and shared by every
    /// instance on this schema (see [`crate::metering`]).
    fn credit_ledger(&self) -> Option<Arc<dyn crate::metering::CreditLedger>> {
        Some(Arc::new(self.clone()))
    }

    /// The `plans` table; a change tells every listening instance to flush its cache.
    fn plan_store(&self) -> Option<Arc<dyn crate::metering::PlanStore>> {
        Some(Arc::new(self.clone()))
    }
}
