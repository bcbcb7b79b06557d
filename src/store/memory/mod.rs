mod index;
mod ledger;
mod lookup;
mod reads;
mod usage;

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use dashmap::DashMap;

use super::{KeyStatusFilter, KeyStoreWrite, ListPosition, StoreError};
use crate::key::digest::{DigestHasher, KeyDigest};
use crate::store::record::{AccountId, KeyId, KeyRecord};
use index::Index;
use usage::MemoryUsage;

/// The embedded store: keys in process memory, on dashmap.
///
/// Lookups by digest take no lock. Writes are serialised by one mutex, so every write is
/// all-or-nothing and the active-key cap cannot be raced past. Contents are lost when the
/// process exits; implement [`KeyStore`](super::KeyStore) over a database for durable keys.
///
/// **Bounded memory.** Keys that have ended (revoked, or expired) are not kept for ever:
///
/// - a revoked key is kept for a retention period after its revocation (default 30 days,
///   [`MemoryStore::revoked_retention`]), so it still answers `api_key_revoked` and shows
///   in management, then deleted;
/// - an account keeps at most 1,000 ended keys (default,
///   [`MemoryStore::max_ended_keys_per_account`]): beyond that, its longest-ended keys
///   are deleted first, whatever the retention.
///
/// Both run on each insert, at the `now` it is given; [`MemoryStore::purge`] runs the
/// first on demand. A deleted key answers as unknown (`invalid_api_key`) and management
/// answers 404 for it; an expired key deleted this way can no longer be given a new
/// expiry. With the manager's default cap of 50 active keys and 4 KiB of metadata, an
/// account that creates and revokes (or lets expire) keys in a loop holds at most about
/// 1,050 keys, roughly 5 MiB, however long it goes on.
///
/// **Usage counts** (see [`crate::activity`]): a gate over this store counts into it by
/// default, keeping minute buckets for 48 hours, hours for 30 days and days for 13
/// months ([`MemoryStore::usage_retention`]), and at most 250,000 buckets
/// ([`MemoryStore::max_usage_buckets`]), the oldest minutes going first.
///
/// It is also an [`crate::activity::log::ApiLogStore`]: given to
/// [`crate::activity::log::ApiLogConfig::new`], it keeps the API log's events, within the
/// log's retention and bound per account.
pub struct MemoryStore {
    records: DashMap<KeyId, KeyRecord>,
    by_digest: DashMap<KeyDigest, KeyId, DigestHasher>,
    index: Mutex<Index>,
    retention: Option<Duration>,
    max_ended: Option<usize>,
    /// Usage buckets (see [`crate::activity`]).
    usage: Arc<MemoryUsage>,
    /// The API log's events, when a gate stores its log here.
    api_events: crate::activity::log::EventBuffer,
    /// The balances of credits and quotas (see [`crate::metering`]).
    ledger: std::sync::Arc<crate::metering::MemoryLedger>,
    /// Accounts' usage settings, returned with each of their keys.
    accounts: DashMap<AccountId, std::sync::Arc<crate::metering::UsageLimits>>,
    plans: Arc<crate::metering::MemoryPlans>,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self {
            records: DashMap::default(),
            ledger: Default::default(),
            accounts: DashMap::default(),
            plans: Arc::default(),
            by_digest: DashMap::default(),
            index: Mutex::default(),
            retention: Some(Self::DEFAULT_REVOKED_RETENTION),
            max_ended: Some(Self::DEFAULT_MAX_ENDED_KEYS_PER_ACCOUNT),
            usage: Arc::new(MemoryUsage::new(
                crate::activity::UsageRetention::default(),
                Self::DEFAULT_MAX_USAGE_BUCKETS,
            )),
            api_events: Default::default(),
        }
    }
}

impl MemoryStore {
    /// How long revoked keys are kept by default: 30 days.
    pub const DEFAULT_REVOKED_RETENTION: Duration = Duration::from_secs(30 * 24 * 3600);
    /// Most ended (revoked or expired) keys an account keeps, by default.
    pub const DEFAULT_MAX_ENDED_KEYS_PER_ACCOUNT: usize = 1000;

    /// An empty store with the default retention and per-account bound.
    pub fn new() -> Self {
        Self::default()
    }

    /// How long a revoked key is kept after its revocation before it is deleted;
    /// `None` keeps revoked keys until the per-account bound deletes them.
    pub fn revoked_retention(mut self, retention: Option<Duration>) -> Self {
        self.retention = retention;
        self
    }

    /// Most ended keys (revoked, or expired) an account keeps; beyond it, an insert
    /// deletes the account's longest-ended keys. `None` for no bound.
    pub fn max_ended_keys_per_account(mut self, max: Option<usize>) -> Self {
        self.max_ended = max;
        self
    }

    /// Number of keys held, in any state.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether the store is empty.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Deletes the keys revoked longer than the retention before `now`; returns how
    /// many. Inserts do this too.
    pub fn purge(&self, now: SystemTime) -> usize {
        let mut index = self.index();
        self.purge_locked(&mut index, now)
    }

    fn purge_locked(&self, index: &mut Index, now: SystemTime) -> usize {
        let Some(retention) = self.retention else {
            return 0;
        };
        let mut purged = 0;
        while let Some((revoked_at, id)) = index.revoked.first().cloned() {
            if revoked_at
                .checked_add(retention)
                .is_some_and(|end| end > now)
            {
                break;
            }
            self.remove_locked(index, &id);
            purged += 1;
        }
        purged
    }

    /// Deletes `account`'s longest-ended keys beyond the bound.
    fn trim_ended_locked(&self, index: &mut Index, account: &AccountId, now: SystemTime) {
        let Some(max) = self.max_ended else {
            return;
        };
        let Some(keys) = index.accounts.get(account) else {
            return;
        };
        let count = keys.ended_count(now);
        if count <= max {
            return;
        }
        let doomed: Vec<KeyId> = keys
            .ended(now)
            .take(count - max)
            .map(|(_, id)| id.clone())
            .collect();
        for id in &doomed {
            self.remove_locked(index, id);
        }
    }

    fn remove_locked(&self, index: &mut Index, id: &KeyId) -> Option<KeyRecord> {
        let (_, record) = self.records.remove(id)?;
        for d in record.digests() {
            self.by_digest.remove_if(&d, |_, owner| owner == id);
        }
        if let Some(keys) = index.accounts.get_mut(&record.account_id) {
            keys.set(&record, false);
            if keys.listed.is_empty() {
                index.accounts.remove(&record.account_id);
            }
        }
        if let Some(t) = record.revoked_at {
            index.revoked.remove(&(t, id.clone()));
        }
        Some(record)
    }

    fn index(&self) -> std::sync::MutexGuard<'_, Index> {
        // A panic while holding the lock cannot leave the maps half-written (every write
        // checks first and mutates after), so a poisoned lock is safe to reuse.
        self.index
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn digest_taken_by_other(&self, digest: &KeyDigest, id: &KeyId) -> bool {
        self.by_digest
            .get(digest)
            .is_some_and(|owner| owner.value() != id)
    }
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore")
            .field("keys", &self.records.len())
            .field("revoked_retention", &self.retention)
            .field("max_ended_keys_per_account", &self.max_ended)
            .finish()
    }
}

#[async_trait]
impl KeyStoreWrite for MemoryStore {
    async fn get(&self, id: &KeyId) -> Result<Option<KeyRecord>, StoreError> {
        Ok(self.records.get(id).map(|r| self.read(&r)))
    }

    async fn find_by_start(&self, start: &str, limit: usize) -> Result<Vec<KeyRecord>, StoreError> {
        Ok(self
            .records
            .iter()
            .filter(|r| r.start == start)
            .take(limit)
            .map(|r| r.value().clone())
            .collect())
    }

    async fn insert(
        &self,
        record: KeyRecord,
        max_active: Option<usize>,
        now: SystemTime,
    ) -> Result<(), StoreError> {
        let mut index = self.index();
        self.purge_locked(&mut index, now);
        self.trim_ended_locked(&mut index, &record.account_id, now);
        if self.records.contains_key(&record.id) {
            return Err(StoreError::Conflict(format!("key id {} exists", record.id)));
        }
        if record.digests().any(|d| self.by_digest.contains_key(&d)) {
            return Err(StoreError::Conflict("digest already indexed".into()));
        }
        if let Some(limit) = max_active {
            let active = index.accounts.get(&record.account_id).map_or(0, |keys| {
                keys.listed
                    .iter()
                    .filter(|(_, id)| {
                        self.records
                            .get(id)
                            .is_some_and(|r| r.counts_towards_cap(now))
                    })
                    .count()
            });
            if active >= limit {
                return Err(StoreError::LimitReached { limit });
            }
        }
        index
            .accounts
            .entry(record.account_id.clone())
            .or_default()
            .set(&record, true);
        if let Some(t) = record.revoked_at {
            index.revoked.insert((t, record.id.clone()));
        }
        for d in record.digests() {
            self.by_digest.insert(d, record.id.clone());
        }
        let mut record = record;
        record.usage.account = None;
        self.records.insert(record.id.clone(), record);
        Ok(())
    }

    async fn replace(&self, record: KeyRecord) -> Result<(), StoreError> {
        let mut index = self.index();
        let Some(old) = self.records.get(&record.id).map(|r| r.value().clone()) else {
            return Err(StoreError::NotFound);
        };
        if old.version != record.version {
            return Err(StoreError::VersionConflict);
        }
        if old.account_id != record.account_id {
            return Err(StoreError::Conflict("a key cannot change account".into()));
        }
        if record
            .digests()
            .any(|d| self.digest_taken_by_other(&d, &record.id))
        {
            return Err(StoreError::Conflict("digest already indexed".into()));
        }
        for d in old.digests() {
            if !record.digests().any(|n| n == d) {
                self.by_digest.remove(&d);
            }
        }
        for d in record.digests() {
            self.by_digest.insert(d, record.id.clone());
        }
        let keys = index.accounts.entry(record.account_id.clone()).or_default();
        keys.set(&old, false);
        keys.set(&record, true);
        if old.revoked_at != record.revoked_at {
            if let Some(t) = old.revoked_at {
                index.revoked.remove(&(t, record.id.clone()));
            }
            if let Some(t) = record.revoked_at {
                index.revoked.insert((t, record.id.clone()));
            }
        }
        let mut record = record;
        record.version += 1;
        record.usage.account = None;
        self.records.insert(record.id.clone(), record);
        Ok(())
    }

    async fn delete(&self, id: &KeyId) -> Result<KeyRecord, StoreError> {
        let mut index = self.index();
        self.ledger.delete_key_meters(id); // Under the same lock; its account's meters stay.
        self.remove_locked(&mut index, id)
            .ok_or(StoreError::NotFound)
    }

    async fn list(
        &self,
        account: &AccountId,
        status: KeyStatusFilter,
        after: Option<&ListPosition>,
        limit: usize,
    ) -> Result<Vec<KeyRecord>, StoreError> {
        let index = self.index();
        let Some(keys) = index.accounts.get(account) else {
            return Ok(Vec::new());
        };
        let range = match after {
            Some(after) => keys.listed.range::<(SystemTime, KeyId), _>((
                std::ops::Bound::Excluded((after.created_at, after.id.clone())),
                std::ops::Bound::Unbounded,
            )),
            None => keys.listed.range::<(SystemTime, KeyId), _>(..),
        };
        // Under the write lock, so the page is one consistent snapshot.
        Ok(range
            .filter_map(|(_, id)| self.records.get(id).map(|r| self.read(&r)))
            .filter(|r| status.matches(r))
            .take(limit)
            .collect())
    }

    async fn record_last_used(&self, id: &KeyId, at: SystemTime) -> Result<(), StoreError> {
        match self.records.get_mut(id) {
            Some(mut r) => {
                if r.last_used_at.is_none_or(|t| t < at) {
                    r.last_used_at = Some(at);
                }
                Ok(())
            }
            None => Err(StoreError::NotFound),
        }
    }

    async fn account_usage(
        &self,
        account: &AccountId,
    ) -> Result<Option<crate::metering::UsageLimits>, StoreError> {
        Ok(self.accounts.get(account).map(|u| (**u).clone()))
    }

    async fn set_account_usage(
        &self,
        account: &AccountId,
        usage: &crate::metering::UsageLimits,
    ) -> Result<(), StoreError> {
        if usage.is_empty() {
            self.accounts.remove(account);
        } else {
            self.accounts
                .insert(account.clone(), std::sync::Arc::new(usage.clone()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
