//! The webhook outbox in PostgreSQL (table `webhook_outbox`, migration 8): events
//! written in the key change's transaction, taken for delivery under a lease with
//! `FOR UPDATE SKIP LOCKED`.

use std::time::SystemTime;

use async_trait::async_trait;
use deadpool_postgres::Transaction;
use tokio_postgres::Row;

use super::{pg_error, rows, PgStore};
use crate::store::record::{AccountId, KeyId, KeyRecord};
use crate::store::StoreError;
use crate::webhooks::WebhookEvent;
use crate::webhooks::{Claimed, EventQuery, EventRecord, EventStatus, Outbox, Outcome};

/// The columns of a listed event, in the order [`record`] reads them.
const LISTED: &str = "id, event_type, status, attempts, account_id, key_id, created_at, \
                      next_attempt_at, last_error, body";

/// Inserts one event; an expiry notice already queued is skipped by the unique index.
fn insert_sql(s: &str) -> String {
    format!(
        "INSERT INTO {s}.webhook_outbox (id, event_type, account_id, key_id, subject_at, \
         body, created_at, next_attempt_at, deadline) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $8) ON CONFLICT DO NOTHING"
    )
}

impl PgStore {
    fn quoted(&self) -> String {
        format!("\"{}\"", self.inner.schema)
    }

    /// Writes `events` as part of `tx`.
    pub(super) async fn write_events(
        &self,
        tx: &Transaction<'_>,
        events: &[WebhookEvent],
    ) -> Result<u64, StoreError> {
        if events.is_empty() {
            return Ok(0);
        }
        let stmt = tx
            .prepare_cached(&insert_sql(&self.quoted()))
            .await
            .map_err(pg_error)?;
        let mut written = 0;
        for e in events {
            written += tx
                .execute(
                    &stmt,
                    &[
                        &e.id,
                        &e.event_type.as_str(),
                        &e.account_id.as_str(),
                        &e.key_id.as_ref().map(KeyId::as_str),
                        &e.subject_at,
                        &e.body,
                        &e.created_at,
                        &e.deadline,
                    ],
                )
                .await
                .map_err(pg_error)?;
        }
        Ok(written)
    }
}

fn record(row: &Row) -> Result<EventRecord, StoreError> {
    let status: &str = row.get(2);
    let attempts: i32 = row.get(3);
    let body: &str = row.get(9);
    Ok(EventRecord {
        id: row.get(0),
        event_type: row.get(1),
        status: EventStatus::parse(status)
            .ok_or_else(|| StoreError::Conflict(format!("unknown event status {status:?}")))?,
        attempts: u32::try_from(attempts).unwrap_or(0),
        account_id: AccountId::new(row.get::<_, String>(4)),
        key_id: row.get::<_, Option<String>>(5).map(KeyId::new),
        created_at: row.get(6),
        next_attempt_at: row.get(7),
        last_error: row.get(8),
        payload: serde_json::from_str(body).unwrap_or_default(),
    })
}

#[async_trait]
impl Outbox for PgStore {
    async fn enqueue(&self, events: &[WebhookEvent]) -> Result<usize, StoreError> {
        self.timed(async {
            let mut client = self.client().await?;
            let tx = client.transaction().await.map_err(pg_error)?;
            let written = self.write_events(&tx, events).await?;
            tx.commit().await.map_err(pg_error)?;
            Ok(usize::try_from(written).unwrap_or(usize::MAX))
        })
        .await
    }

    async fn claim(
        &self,
        now: SystemTime,
        limit: usize,
        owner: &str,
        lease_until: SystemTime,
    ) -> Result<Vec<Claimed>, StoreError> {
        let s = self.quoted();
        let sql = format!(
            "WITH due AS (SELECT id FROM {s}.webhook_outbox WHERE status = 'pending' \
             AND next_attempt_at <= $1 AND (lease_until IS NULL OR lease_until <= $1) \
             ORDER BY next_attempt_at, seq LIMIT $2 FOR UPDATE SKIP LOCKED) \
             UPDATE {s}.webhook_outbox o SET lease_owner = $3, lease_until = $4 FROM due \
             WHERE o.id = due.id RETURNING o.id, o.body, o.attempts, o.deadline"
        );
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.timed(async {
            let client = self.client().await?;
            let stmt = client.prepare_cached(&sql).await.map_err(pg_error)?;
            let rows = client
                .query(&stmt, &[&now, &limit, &owner, &lease_until])
                .await
                .map_err(pg_error)?;
            Ok(rows
                .iter()
                .map(|r| Claimed {
                    id: r.get(0),
                    body: r.get(1),
                    attempts: u32::try_from(r.get::<_, i32>(2)).unwrap_or(0),
                    deadline: r.get(3),
                })
                .collect())
        })
        .await
    }

    async fn finish(
        &self,
        id: &str,
        owner: &str,
        outcome: Outcome,
        now: SystemTime,
    ) -> Result<(), StoreError> {
        let (status, next, error) = match outcome {
            Outcome::Delivered => ("delivered", now, None),
            Outcome::Retry { at, error } => ("pending", at, Some(error)),
            Outcome::Failed { error } => ("failed", now, Some(error)),
        };
        let finished = (status != "pending").then_some(now);
        let sql = format!(
            "UPDATE {}.webhook_outbox SET status = $3, next_attempt_at = $4, \
             last_error = $5, finished_at = $6, attempts = attempts + 1, \
             lease_owner = NULL, lease_until = NULL \
             WHERE id = $1 AND lease_owner = $2 AND status = 'pending'",
            self.quoted()
        );
        self.timed(async {
            let client = self.client().await?;
            let stmt = client.prepare_cached(&sql).await.map_err(pg_error)?;
            client
                .execute(&stmt, &[&id, &owner, &status, &next, &error, &finished])
                .await
                .map_err(pg_error)?;
            Ok(())
        })
        .await
    }

    async fn list(&self, query: &EventQuery) -> Result<Vec<EventRecord>, StoreError> {
        let s = self.quoted();
        let sql = format!(
            "SELECT {LISTED} FROM {s}.webhook_outbox WHERE status = $1 \
             AND ($2::text IS NULL OR account_id = $2) \
             AND ($3::text IS NULL OR seq > (SELECT seq FROM {s}.webhook_outbox WHERE id = $3)) \
             ORDER BY seq LIMIT $4"
        );
        let limit = i64::try_from(query.limit.clamp(1, 100)).unwrap_or(100);
        let account = query.account.as_ref().map(AccountId::as_str);
        self.timed(async {
            let client = self.client().await?;
            let stmt = client.prepare_cached(&sql).await.map_err(pg_error)?;
            client
                .query(
                    &stmt,
                    &[&query.status.as_str(), &account, &query.after, &limit],
                )
                .await
                .map_err(pg_error)?
                .iter()
                .map(record)
                .collect()
        })
        .await
    }

    async fn retry(
        &self,
        id: &str,
        account: Option<&AccountId>,
        now: SystemTime,
        deadline: SystemTime,
    ) -> Result<bool, StoreError> {
        let sql = format!(
            "UPDATE {}.webhook_outbox SET status = 'pending', next_attempt_at = $3, \
             deadline = $4, finished_at = NULL, lease_owner = NULL, lease_until = NULL \
             WHERE id = $1 AND status = 'failed' AND ($2::text IS NULL OR account_id = $2)",
            self.quoted()
        );
        let account = account.map(AccountId::as_str);
        self.timed(async {
            let client = self.client().await?;
            let stmt = client.prepare_cached(&sql).await.map_err(pg_error)?;
            let n = client
                .execute(&stmt, &[&id, &account, &now, &deadline])
                .await
                .map_err(pg_error)?;
            Ok(n == 1)
        })
        .await
    }

    async fn expiring(
        &self,
        now: SystemTime,
        until: SystemTime,
    ) -> Result<Vec<KeyRecord>, StoreError> {
        let s = self.quoted();
        let sql = format!(
            "SELECT {} FROM {s}.keys k WHERE k.revoked_at IS NULL \
             AND k.expires_at > $1 AND k.expires_at <= $2 AND NOT EXISTS ( \
             SELECT 1 FROM {s}.webhook_outbox o WHERE o.event_type = 'key.expiring' \
             AND o.key_id = k.id AND o.subject_at = k.expires_at) \
             ORDER BY k.expires_at LIMIT 1000",
            super::schema::key_columns(&s)
        );
        self.timed(async {
            let client = self.client().await?;
            let stmt = client.prepare_cached(&sql).await.map_err(pg_error)?;
            client
                .query(&stmt, &[&now, &until])
                .await
                .map_err(pg_error)?
                .iter()
                .map(rows::record)
                .collect()
        })
        .await
    }

    async fn trim(
        &self,
        before: SystemTime,
        failed_before: SystemTime,
        now: SystemTime,
    ) -> Result<u64, StoreError> {
        // An expiry notice stays until its expiry has passed, so it is never sent twice.
        let sql = format!(
            "DELETE FROM {}.webhook_outbox WHERE ((status = 'delivered' AND finished_at < $1) \
             OR (status = 'failed' AND finished_at < $2)) \
             AND (subject_at IS NULL OR subject_at < $3)",
            self.quoted()
        );
        self.timed(async {
            let client = self.client().await?;
            client
                .execute(&sql, &[&before, &failed_before, &now])
                .await
                .map_err(pg_error)
        })
        .await
    }
}
