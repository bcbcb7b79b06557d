//! The write half: each change in one transaction with its change-log entry and notify.

use std::time::SystemTime;

use async_trait::async_trait;
use deadpool_postgres::Transaction;

use super::rows::{self, digest_from, Params};
use super::schema::CHANGES_LOCK;
use super::{pg_error, PgStore};
use crate::key::digest::KeyDigest;
use crate::store::record::{AccountId, KeyId, KeyRecord};
use crate::store::{KeyStatusFilter, KeyStoreWrite, ListPosition, StoreError};

/// Webhook events written in a change's transaction (none without the feature).
#[cfg(feature = "webhooks")]
type Events<'a> = &'a [crate::webhooks::WebhookEvent];
#[cfg(not(feature = "webhooks"))]
type Events<'a> = &'a [std::convert::Infallible];

/// Longest notify payload sent with the digests in it; longer ones send only the
/// sequence number, and listeners then flush their whole cache.
const MAX_PAYLOAD: usize = 7000;

impl PgStore {
    /// Appends `digests` to the change log and notifies listeners, as the last step of
    /// `tx`. The advisory lock is held until `tx` ends, so appends commit in `seq` order.
    pub(super) async fn publish(
        &self,
        tx: &Transaction<'_>,
        digests: &[KeyDigest],
    ) -> Result<(), StoreError> {
        let sql = &self.inner.sql;
        tx.execute(
            "SELECT pg_advisory_xact_lock($1, hashtext($2))",
            &[&CHANGES_LOCK, &self.inner.schema],
        )
        .await
        .map_err(pg_error)?;
        let bytes: Vec<&[u8]> = digests.iter().map(|d| &d.as_bytes()[..]).collect();
        let append = tx
            .prepare_cached(&sql.append_change)
            .await
            .map_err(pg_error)?;
        let seq: i64 = tx
            .query_one(&append, &[&bytes])
            .await
            .map_err(pg_error)?
            .get(0);
        let hex: Vec<String> = digests.iter().map(KeyDigest::to_hex).collect();
        let hex = hex.join(",");
        let payload = if hex.len() <= MAX_PAYLOAD {
            format!("{seq}:{hex}")
        } else {
            format!("{seq}:*")
        };
        tx.execute("SELECT pg_notify($1, $2)", &[&self.inner.channel, &payload])
            .await
            .map_err(pg_error)?;
        Ok(())
    }

    async fn insert_events(
        &self,
        record: KeyRecord,
        max_active: Option<usize>,
        now: SystemTime,
        events: Events<'_>,
    ) -> Result<(), StoreError> {
        let params = Params::new(&record)?;
        self.timed(async {
            let mut client = self.client().await?;
            let tx = client.transaction().await.map_err(pg_error)?;
            let sql = &self.inner.sql;
            let account = record.account_id.as_str();
            tx.execute(&sql.upsert_account, &[&account])
                .await
                .map_err(pg_error)?;
            // Every creator in this account waits here for the others to commit, so
            // the count below cannot be raced past.
            tx.execute(&sql.lock_account, &[&account])
                .await
                .map_err(pg_error)?;
            if let Some(limit) = max_active {
                let active: i64 = tx
                    .query_one(&sql.count_active, &[&account, &now])
                    .await
                    .map_err(pg_error)?
                    .get(0);
                if usize::try_from(active).unwrap_or(usize::MAX) >= limit {
                    return Err(StoreError::LimitReached { limit });
                }
            }
            let insert = tx.prepare_cached(&sql.insert_key).await.map_err(pg_error)?;
            tx.execute(&insert, &params.all()).await.map_err(pg_error)?;
            self.insert_digests(&tx, &record).await?;
            let digests: Vec<KeyDigest> = record.digests().collect();
            // Other instances may hold a cached "no such key" for these digests.
            self.write_events(&tx, events).await?;
            self.publish(&tx, &digests).await?;
            tx.commit().await.map_err(pg_error)
        })
        .await
    }

    async fn replace_events(
        &self,
        record: KeyRecord,
        events: Events<'_>,
    ) -> Result<(), StoreError> {
        let params = Params::new(&record)?;
        self.timed(async {
            let mut client = self.client().await?;
            let tx = client.transaction().await.map_err(pg_error)?;
            let sql = &self.inner.sql;
            let id = record.id.as_str();
            let Some(current) = tx
                .query_opt(&sql.lock_key, &[&id])
                .await
                .map_err(pg_error)?
            else {
                return Err(StoreError::NotFound);
            };
            if current.get::<_, &str>(0) != record.account_id.as_str() {
                return Err(StoreError::Conflict("a key cannot change account".into()));
            }
            if current.get::<_, i64>(1) != params.version() {
                return Err(StoreError::VersionConflict);
            }
            let update = tx.prepare_cached(&sql.update_key).await.map_err(pg_error)?;
            tx.execute(&update, &params.for_update())
                .await
                .map_err(pg_error)?;
            let mut digests: Vec<KeyDigest> = tx
                .query(&sql.drop_digests, &[&id])
                .await
                .map_err(pg_error)?
                .iter()
                .filter_map(|r| digest_from(r.get(0)))
                .collect();
            self.insert_digests(&tx, &record).await?;
            for d in record.digests() {
                if !digests.contains(&d) {
                    digests.push(d);
                }
            }
            self.write_events(&tx, events).await?;
            self.publish(&tx, &digests).await?;
            tx.commit().await.map_err(pg_error)
        })
        .await
    }

    async fn delete_events(&self, id: &KeyId, events: Events<'_>) -> Result<KeyRecord, StoreError> {
        self.timed(async {
            let mut client = self.client().await?;
            let tx = client.transaction().await.map_err(pg_error)?;
            let sql = &self.inner.sql;
            let mut digests: Vec<KeyDigest> = tx
                .query(&sql.drop_digests, &[&id.as_str()])
                .await
                .map_err(pg_error)?
                .iter()
                .filter_map(|r| digest_from(r.get(0)))
                .collect();
            let Some(row) = tx
                .query_opt(&sql.delete_key, &[&id.as_str()])
                .await
                .map_err(pg_error)?
            else {
                return Err(StoreError::NotFound);
            };
            let deleted = rows::record(&row)?;
            // The key's own meters (credits, quotas) go in the same transaction; its
            // account's stay.
            let meters = tx
                .prepare_cached(&self.inner.ledger.delete_key_meters)
                .await
                .map_err(pg_error)?;
            tx.execute(&meters, &[&id.as_str()])
                .await
                .map_err(pg_error)?;
            for d in deleted.digests() {
                if !digests.contains(&d) {
                    digests.push(d);
                }
            }
            self.write_events(&tx, events).await?;
            self.publish(&tx, &digests).await?;
            tx.commit().await.map_err(pg_error)?;
            Ok(deleted)
        })
        .await
    }

    #[cfg(not(feature = "webhooks"))]
    #[allow(clippy::unused_async)]
    async fn write_events(&self, _: &Transaction<'_>, _: Events<'_>) -> Result<(), StoreError> {
        Ok(())
    }

    async fn insert_digests(
        &self,
        tx: &Transaction<'_>,
        record: &KeyRecord,
    ) -> Result<(), StoreError> {
        let stmt = tx
            .prepare_cached(&self.inner.sql.insert_digest)
            .await
            .map_err(pg_error)?;
        let id = record.id.as_str();
        let current: &[u8] = record.digest.as_bytes();
        tx.execute(&stmt, &[&current, &id, &"current", &None::<SystemTime>])
            .await
            .map_err(pg_error)?;
        if let Some(prev) = &record.previous {
            let bytes: &[u8] = prev.digest.as_bytes();
            tx.execute(&stmt, &[&bytes, &id, &"previous", &Some(prev.until)])
                .await
                .map_err(pg_error)?;
        }
        Ok(())
    }
}

#[async_trait]
impl KeyStoreWrite for PgStore {
    async fn find_by_start(&self, start: &str, limit: usize) -> Result<Vec<KeyRecord>, StoreError> {
        self.keys_by_start(start, limit).await
    }

    async fn get(&self, id: &KeyId) -> Result<Option<KeyRecord>, StoreError> {
        self.timed(async {
            let client = self.client().await?;
            let stmt = client
                .prepare_cached(&self.inner.sql.get)
                .await
                .map_err(pg_error)?;
            let row = client
                .query_opt(&stmt, &[&id.as_str()])
                .await
                .map_err(pg_error)?;
            row.as_ref().map(rows::record).transpose()
        })
        .await
    }

    async fn insert(
        &self,
        record: KeyRecord,
        max_active: Option<usize>,
        now: SystemTime,
    ) -> Result<(), StoreError> {
        self.insert_events(record, max_active, now, &[]).await
    }

    async fn replace(&self, record: KeyRecord) -> Result<(), StoreError> {
        self.replace_events(record, &[]).await
    }

    /// Deletes the key and its digests in one transaction that also appends them to the
    /// change log and notifies every listener.
    async fn delete(&self, id: &KeyId) -> Result<KeyRecord, StoreError> {
        self.delete_events(id, &[]).await
    }

    #[cfg(feature = "webhooks")]
    async fn insert_with_events(
        &self,
        record: KeyRecord,
        max_active: Option<usize>,
        now: SystemTime,
        events: &[crate::webhooks::WebhookEvent],
    ) -> Result<bool, StoreError> {
        self.insert_events(record, max_active, now, events)
            .await
            .map(|()| true)
    }

    #[cfg(feature = "webhooks")]
    async fn replace_with_events(
        &self,
        record: KeyRecord,
        events: &[crate::webhooks::WebhookEvent],
    ) -> Result<bool, StoreError> {
        self.replace_events(record, events).await.map(|()| true)
    }

    #[cfg(feature = "webhooks")]
    async fn delete_with_events(
        &self,
        id: &KeyId,
        events: &[crate::webhooks::WebhookEvent],
    ) -> Result<(KeyRecord, bool), StoreError> {
        self.delete_events(id, events).await.map(|r| (r, true))
    }

    async fn list(
        &self,
        account: &AccountId,
        status: KeyStatusFilter,
        after: Option<&ListPosition>,
        limit: usize,
    ) -> Result<Vec<KeyRecord>, StoreError> {
        let revoked = match status {
            KeyStatusFilter::Active => Some(false),
            KeyStatusFilter::Revoked => Some(true),
            _ => None,
        };
        let created = after.map(|p| p.created_at);
        let id = after.map(|p| p.id.as_str());
        self.timed(async {
            let client = self.client().await?;
            let stmt = client
                .prepare_cached(&self.inner.sql.list)
                .await
                .map_err(pg_error)?;
            let limit = i64::try_from(limit).unwrap_or(i64::MAX);
            client
                .query(&stmt, &[&account.as_str(), &revoked, &created, &id, &limit])
                .await
                .map_err(pg_error)?
                .iter()
                .map(rows::record)
                .collect()
        })
        .await
    }

    /// Buffers the write and returns at once; a background task writes every buffered
    /// time in one statement per [`super::PgStoreBuilder::last_used_flush_interval`].
    /// Never fails: a write for a key that no longer exists is dropped at the flush.
    async fn record_last_used(&self, id: &KeyId, at: SystemTime) -> Result<(), StoreError> {
        self.buffer_last_used(id, at);
        Ok(())
    }

    async fn account_usage(
        &self,
        account: &AccountId,
    ) -> Result<Option<crate::metering::UsageLimits>, StoreError> {
        self.timed(self.read_account_usage(account)).await
    }

    /// Writes the settings and, in the same transaction, publishes every digest of the
    /// account's keys, so every instance looks them up again.
    async fn set_account_usage(
        &self,
        account: &AccountId,
        usage: &crate::metering::UsageLimits,
    ) -> Result<(), StoreError> {
        self.timed(self.write_account_usage(account, usage)).await
    }
}
