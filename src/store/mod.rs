//! Where keys live: the [`KeyStore`] trait, its write half, and the in-memory store.
//!
//! keygate calls a store only on a cache miss: once per key per cache lifetime, with
//! concurrent misses for one key coalesced into a single call (see [`crate::Keygate`]).
//! A store never sees a plaintext key, only its [`KeyDigest`].
//!
//! # Writing a store
//!
//! A store answers one question: which key has this digest? [`KeyStore`] is
//! object-safe, so `Arc<dyn KeyStore>` works:
//!
//! ```
//! use std::collections::HashMap;
//! use keygate::key::KeyDigest;
//! use keygate::store::KeyRecord;
//! use keygate::{KeyStore, StoreError};
//!
//! struct MyStore {
//!     // Stands in for a table indexed by digest.
//!     rows: HashMap<[u8; 32], KeyRecord>,
//! }
//!
//! #[async_trait::async_trait]
//! impl KeyStore for MyStore {
//!     async fn find_by_digest(&self, digest: &KeyDigest) -> Result<Option<KeyRecord>, StoreError> {
//!         // Look the row up by the 32-byte SHA-256 digest (digest.as_bytes() or to_hex()).
//!         // Ok(None): no such key. Err(StoreError::unavailable(e)): could not answer.
//!         Ok(self.rows.get(digest.as_bytes()).cloned())
//!     }
//! }
//! ```
//!
//! - Return the record whose current digest, or previous digest during a roll's grace
//!   period, is `digest`. Return revoked, disabled and expired keys as they are: keygate
//!   checks their state on every request and answers with the precise code. A record that
//!   carries neither digest is treated as "not found".
//! - `Ok(None)` and `Err` mean different things: "no such key" is a 401, a failure is a
//!   503 `store_unavailable` (gRPC `UNAVAILABLE`). Never turn a failure into `Ok(None)`.
//! - Only [`KeyStoreWrite`] (get, insert, replace, delete, list, record_last_used) is
//!   needed for a [`crate::KeyManager`] and the admin API. A read-only store, such as a
//!   file or a replica, implements [`KeyStore`] alone.
//! - `replace` is compare-and-set: it writes only when the stored
//!   [`KeyRecord::version`] equals the record's, stores `version + 1`, and otherwise
//!   fails with [`StoreError::VersionConflict`], on which a `KeyManager` re-reads and
//!   retries.
//!
//! `examples/custom_store.rs` is a complete store over a file of hashed keys (one JSON
//! object per line) that a background task reloads when the file changes, invalidating
//! the keys that changed.
//!
//! # What the cache guarantees around a store
//!
//! - **Cheap checks first.** Prefix, length, charset and checksum are checked before the
//!   cache; junk and mistyped keys never reach the store.
//! - **One call per key per cache lifetime.** A found key is cached for `positive_ttl`
//!   (30 s, on keygate's clock); its expiry and grace deadline are checked on every
//!   request. The cache is bounded in entries and in bytes
//!   ([`crate::gate::CacheConfig::max_bytes`]). Concurrent misses for one digest share a single
//!   `find_by_digest` call; a client that gives up mid-lookup leaves nothing behind.
//! - **Negative caching.** "Not found" is cached for `negative_ttl` (5 s), so a flood of
//!   unknown but well-formed keys costs one call per key per 5 s. Creating a key through
//!   a `KeyManager` drops any cached "not found" for it.
//! - **Errors are never cached.** A failed call fails the requests waiting on it (503);
//!   the next request asks the store again. [`crate::gate::CacheConfig::serve_stale`] keeps
//!   recently verified keys working through an outage (never a key invalidated since).
//! - **Timeout and panics.** A call that takes longer than `store_timeout` (2 s) fails the
//!   request with 503 instead of holding it; a panic inside the store becomes a 503 for
//!   that request, and the service and the cache keep working.
//! - **Invalidation.** Changes made through this process's `KeyManager` apply at once.
//!   For changes made elsewhere, call `Keygate::invalidate(&record)`,
//!   `Keygate::invalidate_digest(&digest)` or `Keygate::invalidate_all()`, or run a
//!   [`crate::invalidation::Listener`]; otherwise they are seen within `positive_ttl` (or
//!   `negative_ttl` for a new key). An invalidation that races a lookup wins: once it
//!   returns, no request that starts afterwards is answered from a copy made before it
//!   (the cache's coherence protocol, written down in `src/cache/mod.rs`).

mod forward;
mod listing;
mod memory;
#[cfg(feature = "postgres")]
mod postgres;
pub(crate) mod record;
pub(crate) mod whole_number;

use std::time::SystemTime;

use async_trait::async_trait;

pub use listing::{KeyStatusFilter, ListPosition};
pub use memory::MemoryStore;
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub use postgres::{PgChannel, PgStore, PgStoreBuilder};
pub use record::{AccountId, GraceDigest, KeyId, KeyRecord, RateLimit};

use crate::key::digest::KeyDigest;

/// What a store reports when it cannot do what was asked. Requests that needed the
/// store fail closed with 503.
///
/// Only what a store itself reports: timeouts and panics around a store call are
/// keygate's own outcomes (logged, and answered with 503), not the store's.
/// The text of a backend error is logged but never sent to clients.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The backend failed.
    #[error("key store unavailable: {0}")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A write named a key that does not exist.
    #[error("no such key")]
    NotFound,
    /// A write would create a duplicate id or digest.
    #[error("conflict: {0}")]
    Conflict(String),
    /// A [`KeyStoreWrite::replace`] carried a [`KeyRecord::version`] that is no longer the
    /// stored one: another writer changed the key since it was read. Read it again,
    /// re-apply the change and retry; [`crate::KeyManager`] does so by itself.
    #[error("the key was changed concurrently; read it again and retry")]
    VersionConflict,
    /// The account already has its maximum number of active keys.
    #[error("the account already has {limit} active keys")]
    LimitReached {
        /// The cap that was reached.
        limit: usize,
    },
}

impl StoreError {
    /// Wraps a backend error.
    pub fn unavailable(err: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self::Unavailable(err.into())
    }
}

/// Looks keys up by digest. The read half every deployment needs.
///
/// Object-safe: `Arc<dyn KeyStore>` works. Implementations must be cheap to call
/// concurrently; keygate adds its own cache, timeout and panic isolation around them.
///
/// ```
/// use std::collections::HashMap;
/// use std::time::SystemTime;
/// use keygate::{KeyStore, Keygate, StoreError};
/// use keygate::key::{KeyDigest, KeyHasher};
/// use keygate::store::KeyRecord;
///
/// /// Keys hashed elsewhere, read once at start.
/// struct Fixed(HashMap<[u8; 32], KeyRecord>);
///
/// #[async_trait::async_trait]
/// impl KeyStore for Fixed {
///     async fn find_by_digest(&self, d: &KeyDigest) -> Result<Option<KeyRecord>, StoreError> {
///         Ok(self.0.get(d.as_bytes()).cloned())
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let format = keygate::key::KeyFormat::default();
/// let key = format.generate(format.prefix("tc_").unwrap()).unwrap();
/// let digest = KeyHasher::sha256().digest(key.expose_secret());
/// let record = KeyRecord::new("ak_1".into(), "acct_1".into(), digest, SystemTime::now());
/// let gate = Keygate::builder(Fixed(HashMap::from([(*digest.as_bytes(), record)]))).build();
/// assert!(gate.verify_key(key.expose_secret()).await.is_ok());
/// # }
/// ```
#[async_trait]
pub trait KeyStore: Send + Sync + 'static {
    /// The key whose current digest, or previous digest during a roll's grace period, is
    /// `digest`. `Ok(None)` means no such key; `Err` means the store could not answer.
    async fn find_by_digest(&self, digest: &KeyDigest) -> Result<Option<KeyRecord>, StoreError>;

    /// Where a gate over this store counts usage by default (see [`crate::activity`]):
    /// `None` (the default) for a store that keeps none.
    fn usage_store(&self) -> Option<std::sync::Arc<dyn crate::activity::UsageStore>> {
        None
    }

    /// The ledger of credits and quotas that lives beside these keys, if the store has
    /// one ([`MemoryStore`] and `PgStore` do): a gate over this store meters usage with
    /// it unless [`crate::KeygateBuilder::credit_ledger`] names another. Default: none.
    fn credit_ledger(&self) -> Option<std::sync::Arc<dyn crate::metering::CreditLedger>> {
        None
    }

    /// Where plans are kept for every instance, if the store keeps them
    /// ([`MemoryStore`] and `PgStore` do; see [`crate::metering::PlanStore`]).
    fn plan_store(&self) -> Option<std::sync::Arc<dyn crate::metering::PlanStore>> {
        None
    }
}

/// The write half of a store, used by [`crate::KeyManager`]. Separate so read-only
/// stores (a file of hashed keys, a replica) stay possible.
#[async_trait]
pub trait KeyStoreWrite: KeyStore {
    /// The key with this id, whatever its state.
    async fn get(&self, id: &KeyId) -> Result<Option<KeyRecord>, StoreError>;

    /// Adds a new key. Atomically refuses with [`StoreError::LimitReached`] when
    /// `max_active` is set and the account already has that many keys counting towards
    /// the cap at `now` (see [`KeyRecord::counts_towards_cap`]: disabled keys count), and with [`StoreError::Conflict`] on a duplicate
    /// id or digest. Nothing is written on failure.
    async fn insert(
        &self,
        record: KeyRecord,
        max_active: Option<usize>,
        now: SystemTime,
    ) -> Result<(), StoreError>;

    /// Replaces the key with `record.id`, re-indexing its digests, if its stored
    /// [`KeyRecord::version`] is still `record.version`; the stored copy then has version
    /// `record.version + 1`. Fails with [`StoreError::NotFound`] when there is no such key
    /// and with [`StoreError::VersionConflict`] when the versions differ; nothing is
    /// written on failure.
    async fn replace(&self, record: KeyRecord) -> Result<(), StoreError>;

    /// Deletes key `id` and every digest of it, whatever its state, and returns what was
    /// deleted. Fails with [`StoreError::NotFound`] when there is no such key; nothing is
    /// written on failure. Unlike a revoke, nothing of the key is kept: afterwards it is
    /// absent from [`get`](Self::get), [`list`](Self::list) and lookups.
    async fn delete(&self, id: &KeyId) -> Result<KeyRecord, StoreError>;

    /// Up to `limit` keys of `account` that match `status`, in listing order (creation
    /// time, then id: see [`ListPosition`]), starting after `after`.
    async fn list(
        &self,
        account: &AccountId,
        status: KeyStatusFilter,
        after: Option<&ListPosition>,
        limit: usize,
    ) -> Result<Vec<KeyRecord>, StoreError>;

    /// Sets only `last_used_at`, leaving every other field as it is.
    async fn record_last_used(&self, id: &KeyId, at: SystemTime) -> Result<(), StoreError>;

    /// Up to `limit` keys, of any account and state, whose [`KeyRecord::start`] (the hint
    /// the console shows) is `start`; for operators' search
    /// ([`crate::KeyManager::find_keys_by_hint`]). The default fails: a store that can
    /// search by hint says so by implementing it.
    async fn find_by_start(&self, start: &str, limit: usize) -> Result<Vec<KeyRecord>, StoreError> {
        let _ = (start, limit);
        Err(StoreError::unavailable(
            "this key store cannot search keys by hint",
        ))
    }

    /// The usage settings of `account` (see [`crate::metering`]), which a store that keeps
    /// them also returns with each of the account's keys
    /// ([`crate::metering::KeyUsage::account`]). Default: none.
    async fn account_usage(
        &self,
        account: &AccountId,
    ) -> Result<Option<crate::metering::UsageLimits>, StoreError> {
        let _ = account;
        Ok(None)
    }

    /// Sets (or, when empty, removes) the usage settings of `account`. Default: the store
    /// cannot keep them.
    async fn set_account_usage(
        &self,
        account: &AccountId,
        usage: &crate::metering::UsageLimits,
    ) -> Result<(), StoreError> {
        let _ = (account, usage);
        Err(StoreError::unavailable(
            "this store does not keep account usage settings",
        ))
    }

    /// [`insert`](Self::insert), also writing `events` to the store's webhook outbox in
    /// the same transaction. `Ok(true)` when it did; the default writes the key alone
    /// and answers `Ok(false)`, and the caller queues the events itself.
    #[cfg(feature = "webhooks")]
    #[cfg_attr(docsrs, doc(cfg(feature = "webhooks")))]
    async fn insert_with_events(
        &self,
        record: KeyRecord,
        max_active: Option<usize>,
        now: SystemTime,
        events: &[crate::webhooks::WebhookEvent],
    ) -> Result<bool, StoreError> {
        let _ = events;
        self.insert(record, max_active, now).await.map(|()| false)
    }

    /// [`replace`](Self::replace) with `events`, as for
    /// [`insert_with_events`](Self::insert_with_events).
    #[cfg(feature = "webhooks")]
    #[cfg_attr(docsrs, doc(cfg(feature = "webhooks")))]
    async fn replace_with_events(
        &self,
        record: KeyRecord,
        events: &[crate::webhooks::WebhookEvent],
    ) -> Result<bool, StoreError> {
        let _ = events;
        self.replace(record).await.map(|()| false)
    }

    /// [`delete`](Self::delete) with `events`, as for
    /// [`insert_with_events`](Self::insert_with_events).
    #[cfg(feature = "webhooks")]
    #[cfg_attr(docsrs, doc(cfg(feature = "webhooks")))]
    async fn delete_with_events(
        &self,
        id: &KeyId,
        events: &[crate::webhooks::WebhookEvent],
    ) -> Result<(KeyRecord, bool), StoreError> {
        let _ = events;
        self.delete(id).await.map(|r| (r, false))
    }
}

#[async_trait]
impl<S: KeyStoreWrite + ?Sized> KeyStoreWrite for std::sync::Arc<S> {
    async fn get(&self, id: &KeyId) -> Result<Option<KeyRecord>, StoreError> {
        (**self).get(id).await
    }
    async fn insert(
        &self,
        record: KeyRecord,
        max_active: Option<usize>,
        now: SystemTime,
    ) -> Result<(), StoreError> {
        (**self).insert(record, max_active, now).await
    }
    async fn replace(&self, record: KeyRecord) -> Result<(), StoreError> {
        (**self).replace(record).await
    }
    async fn delete(&self, id: &KeyId) -> Result<KeyRecord, StoreError> {
        (**self).delete(id).await
    }
    async fn list(
        &self,
        account: &AccountId,
        status: KeyStatusFilter,
        after: Option<&ListPosition>,
        limit: usize,
    ) -> Result<Vec<KeyRecord>, StoreError> {
        (**self).list(account, status, after, limit).await
    }
    async fn record_last_used(&self, id: &KeyId, at: SystemTime) -> Result<(), StoreError> {
        (**self).record_last_used(id, at).await
    }
    async fn find_by_start(&self, start: &str, limit: usize) -> Result<Vec<KeyRecord>, StoreError> {
        (**self).find_by_start(start, limit).await
    }
    async fn account_usage(
        &self,
        account: &AccountId,
    ) -> Result<Option<crate::metering::UsageLimits>, StoreError> {
        (**self).account_usage(account).await
    }
    async fn set_account_usage(
        &self,
        account: &AccountId,
        usage: &crate::metering::UsageLimits,
    ) -> Result<(), StoreError> {
        (**self).set_account_usage(account, usage).await
    }

    #[cfg(feature = "webhooks")]
    async fn insert_with_events(
        &self,
        record: KeyRecord,
        max_active: Option<usize>,
        now: SystemTime,
        events: &[crate::webhooks::WebhookEvent],
    ) -> Result<bool, StoreError> {
        (**self)
            .insert_with_events(record, max_active, now, events)
            .await
    }
    #[cfg(feature = "webhooks")]
    async fn replace_with_events(
        &self,
        record: KeyRecord,
        events: &[crate::webhooks::WebhookEvent],
    ) -> Result<bool, StoreError> {
        (**self).replace_with_events(record, events).await
    }
    #[cfg(feature = "webhooks")]
    async fn delete_with_events(
        &self,
        id: &KeyId,
        events: &[crate::webhooks::WebhookEvent],
    ) -> Result<(KeyRecord, bool), StoreError> {
        (**self).delete_with_events(id, events).await
    }
}
