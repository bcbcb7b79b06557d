//! Buffered `last_used_at` writes and change-log trimming, off the request path.

use std::sync::Weak;
use std::time::{Duration, SystemTime};

use tokio::time::{interval, Instant, MissedTickBehavior};

use super::{pg_error, PgStore, Shared};
use crate::store::record::KeyId;
use crate::store::StoreError;

impl PgStore {
    pub(super) fn buffer_last_used(&self, id: &KeyId, at: SystemTime) {
        let mut pending = self
            .inner
            .last_used
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let slot = pending.entry(id.clone()).or_insert(at);
        if *slot < at {
            *slot = at;
        }
    }

    /// Writes the buffered `last_used_at` times now, in one statement, and returns how
    /// many keys were written. The background task does this on its interval; call it
    /// before shutting down, or in tests. On failure the times stay buffered for the
    /// next flush.
    pub async fn flush_last_used(&self) -> Result<usize, StoreError> {
        let batch: Vec<(KeyId, SystemTime)> = {
            let mut pending = self
                .inner
                .last_used
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            pending.drain().collect()
        };
        if batch.is_empty() {
            return Ok(0);
        }
        let ids: Vec<&str> = batch.iter().map(|(id, _)| id.as_str()).collect();
        let times: Vec<SystemTime> = batch.iter().map(|(_, at)| *at).collect();
        let written = self
            .timed(async {
                let client = self.client().await?;
                let stmt = client
                    .prepare_cached(&self.inner.sql.touch)
                    .await
                    .map_err(pg_error)?;
                client
                    .execute(&stmt, &[&ids, &times])
                    .await
                    .map_err(pg_error)
            })
            .await;
        match written {
            Ok(_) => Ok(batch.len()),
            Err(e) => {
                for (id, at) in &batch {
                    self.buffer_last_used(id, *at);
                }
                Err(e)
            }
        }
    }

    /// Deletes change-log entries older than `older_than` and returns how many. A
    /// listener whose last seen entry was trimmed flushes its whole cache on reconnect.
    /// The background task does this with [`super::PgStoreBuilder::change_retention`].
    pub async fn trim_changes(&self, older_than: Duration) -> Result<u64, StoreError> {
        let millis = older_than.as_secs_f64() * 1000.0;
        self.timed(async {
            let client = self.client().await?;
            let row = client
                .query_one(&self.inner.sql.trim, &[&millis])
                .await
                .map_err(pg_error)?;
            Ok(u64::try_from(row.get::<_, i64>(0)).unwrap_or(0))
        })
        .await
    }
}

/// Flushes `last_used_at` every `flush` and trims the change log every `trim`, until
/// the store is dropped.
pub(super) fn spawn_background(store: Weak<Shared>, flush: Duration, trim: Duration) {
    tokio::spawn(async move {
        let mut ticks = interval(flush.max(Duration::from_millis(10)));
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut trim_at = Instant::now() + trim;
        loop {
            ticks.tick().await;
            let Some(inner) = store.upgrade() else {
                return;
            };
            let store = PgStore { inner };
            if let Err(error) = store.flush_last_used().await {
                tracing::warn!(target: "keygate", %error, "could not write last-used times; will retry");
            }
            if Instant::now() >= trim_at {
                trim_at = Instant::now() + trim;
                let retention = store.inner.change_retention;
                if let Err(error) = store.trim_changes(retention).await {
                    tracing::warn!(target: "keygate", %error, "could not trim the change log");
                }
            }
        }
    });
}
