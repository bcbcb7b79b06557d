//! [`PublishingStore`]: any writable store, publishing its changes on a channel.

use std::sync::Arc;
use std::time::SystemTime;

use async_trait::async_trait;

use super::InvalidationChannel;
use crate::key::digest::KeyDigest;
use crate::store::record::{AccountId, KeyId, KeyRecord};
use crate::store::{KeyStatusFilter, KeyStore, KeyStoreWrite, ListPosition, StoreError};

/// Longest wait for a publish before the write returns without it.
const PUBLISH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// Wraps a writable store so that every insert, replace and delete is published on an
/// [`InvalidationChannel`], for stores that cannot publish in their own transaction
/// (`PgStore` does that itself).
///
/// The digests are published after the write succeeds: the key's digests before and
/// after the change. A failed publish (or one that takes over 2 s) is logged and does
/// not fail the write, which has happened; other instances then see the change when their listener next reconnects,
/// or within their cache's positive lifetime.
pub struct PublishingStore<S> {
    store: S,
    channel: Arc<dyn InvalidationChannel>,
}

impl<S> PublishingStore<S> {
    /// Publishes `store`'s changes on `channel`.
    pub fn new(store: S, channel: Arc<dyn InvalidationChannel>) -> Self {
        Self { store, channel }
    }

    /// The wrapped store.
    pub fn inner(&self) -> &S {
        &self.store
    }

    async fn publish(&self, digests: Vec<KeyDigest>, id: &KeyId) {
        match tokio::time::timeout(PUBLISH_TIMEOUT, self.channel.publish(&digests)).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => {
                tracing::warn!(target: "keygate", key_id = %id, %error, "could not publish a key change to other instances");
            }
            Err(_) => {
                tracing::warn!(target: "keygate", key_id = %id, timeout = ?PUBLISH_TIMEOUT, "publishing a key change to other instances timed out");
            }
        }
    }
}

impl<S> std::fmt::Debug for PublishingStore<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PublishingStore").finish_non_exhaustive()
    }
}

#[async_trait]
impl<S: KeyStore> KeyStore for PublishingStore<S> {
    async fn find_by_digest(&self, digest: &KeyDigest) -> Result<Option<KeyRecord>, StoreError> {
        self.store.find_by_digest(digest).await
    }
    fn usage_store(&self) -> Option<std::sync::Arc<dyn crate::activity::UsageStore>> {
        self.store.usage_store()
    }
}

#[async_trait]
impl<S: KeyStoreWrite> KeyStoreWrite for PublishingStore<S> {
    async fn get(&self, id: &KeyId) -> Result<Option<KeyRecord>, StoreError> {
        self.store.get(id).await
    }

    async fn insert(
        &self,
        record: KeyRecord,
        max_active: Option<usize>,
        now: SystemTime,
    ) -> Result<(), StoreError> {
        let digests: Vec<KeyDigest> = record.digests().collect();
        let id = record.id.clone();
        self.store.insert(record, max_active, now).await?;
        // Another instance may hold a cached "no such key" for these digests.
        self.publish(digests, &id).await;
        Ok(())
    }

    async fn replace(&self, record: KeyRecord) -> Result<(), StoreError> {
        let before = self.store.get(&record.id).await?;
        let mut digests: Vec<KeyDigest> = record.digests().collect();
        for d in before.iter().flat_map(KeyRecord::digests) {
            if !digests.contains(&d) {
                digests.push(d);
            }
        }
        let id = record.id.clone();
        self.store.replace(record).await?;
        self.publish(digests, &id).await;
        Ok(())
    }

    async fn delete(&self, id: &KeyId) -> Result<KeyRecord, StoreError> {
        let deleted = self.store.delete(id).await?;
        // Every instance may hold the key, found, under any of its digests.
        self.publish(deleted.digests().collect(), id).await;
        Ok(deleted)
    }

    async fn list(
        &self,
        account: &AccountId,
        status: KeyStatusFilter,
        after: Option<&ListPosition>,
        limit: usize,
    ) -> Result<Vec<KeyRecord>, StoreError> {
        self.store.list(account, status, after, limit).await
    }

    async fn record_last_used(&self, id: &KeyId, at: SystemTime) -> Result<(), StoreError> {
        self.store.record_last_used(id, at).await
    }
}
