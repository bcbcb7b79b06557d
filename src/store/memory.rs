use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::time::SystemTime;

use async_trait::async_trait;
use dashmap::DashMap;

use super::{KeyStore, KeyStoreWrite, StoreError};
use crate::key::digest::{DigestHasher, KeyDigest};
use crate::store::record::{AccountId, KeyId, KeyRecord};

/// The embedded store: keys in process memory, on dashmap.
///
/// Lookups by digest take no lock. Writes are serialised by one mutex, so every write is
/// all-or-nothing and the active-key cap cannot be raced past. Contents are lost when the
/// process exits; implement [`KeyStore`] over a database for durable keys.
#[derive(Default)]
pub struct MemoryStore {
    records: DashMap<KeyId, KeyRecord>,
    by_digest: DashMap<KeyDigest, KeyId, DigestHasher>,
    by_account: Mutex<BTreeMap<AccountId, BTreeSet<KeyId>>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of keys held, in any state.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether the store is empty.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    fn accounts(&self) -> std::sync::MutexGuard<'_, BTreeMap<AccountId, BTreeSet<KeyId>>> {
        // A panic while holding the lock cannot leave the maps half-written (every write
        // checks first and mutates after), so a poisoned lock is safe to reuse.
        self.by_account
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
            .finish()
    }
}

#[async_trait]
impl KeyStore for MemoryStore {
    async fn find_by_digest(&self, digest: &KeyDigest) -> Result<Option<KeyRecord>, StoreError> {
        let Some(id) = self.by_digest.get(digest).map(|e| e.value().clone()) else {
            return Ok(None);
        };
        Ok(self.records.get(&id).map(|r| r.value().clone()))
    }
}

#[async_trait]
impl KeyStoreWrite for MemoryStore {
    async fn get(&self, id: &KeyId) -> Result<Option<KeyRecord>, StoreError> {
        Ok(self.records.get(id).map(|r| r.value().clone()))
    }

    async fn insert(
        &self,
        record: KeyRecord,
        max_active: Option<usize>,
        now: SystemTime,
    ) -> Result<(), StoreError> {
        let mut accounts = self.accounts();
        if self.records.contains_key(&record.id) {
            return Err(StoreError::Conflict(format!("key id {} exists", record.id)));
        }
        if record.digests().any(|d| self.by_digest.contains_key(&d)) {
            return Err(StoreError::Conflict("digest already indexed".into()));
        }
        if let Some(limit) = max_active {
            let active = accounts.get(&record.account_id).map_or(0, |ids| {
                ids.iter()
                    .filter(|id| self.records.get(*id).is_some_and(|r| r.is_active(now)))
                    .count()
            });
            if active >= limit {
                return Err(StoreError::LimitReached { limit });
            }
        }
        accounts
            .entry(record.account_id.clone())
            .or_default()
            .insert(record.id.clone());
        for d in record.digests() {
            self.by_digest.insert(d, record.id.clone());
        }
        self.records.insert(record.id.clone(), record);
        Ok(())
    }

    async fn replace(&self, record: KeyRecord) -> Result<(), StoreError> {
        let _accounts = self.accounts();
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
        let mut record = record;
        record.version += 1;
        self.records.insert(record.id.clone(), record);
        Ok(())
    }

    async fn list(
        &self,
        account: &AccountId,
        after: Option<&KeyId>,
        limit: usize,
    ) -> Result<Vec<KeyRecord>, StoreError> {
        let ids: Vec<KeyId> = {
            let accounts = self.accounts();
            let Some(ids) = accounts.get(account) else {
                return Ok(Vec::new());
            };
            let range = match after {
                Some(after) => ids.range::<KeyId, _>((
                    std::ops::Bound::Excluded(after),
                    std::ops::Bound::Unbounded,
                )),
                None => ids.range::<KeyId, _>(..),
            };
            range.take(limit).cloned().collect()
        };
        Ok(ids
            .iter()
            .filter_map(|id| self.records.get(id).map(|r| r.value().clone()))
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
}
