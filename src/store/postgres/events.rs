//! The API log in PostgreSQL ([`crate::activity::log`]): the `api_events` table, one
//! batched insert per flush, and the key search by hint.

use std::net::IpAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;

use super::{pg_error, rows, PgStore};
use crate::activity::log::{ApiEvent, ApiLogLimits, ApiLogStore, EventFilter};
use crate::store::record::{AccountId, KeyId, KeyRecord};
use crate::store::StoreError;

/// The latest time a query passes to PostgreSQL: the start of the year 10000. A cursor
/// past it is a position after every event.
const LATEST: Duration = Duration::from_secs(253_402_300_800);

fn clamp(at: SystemTime) -> SystemTime {
    at.min(UNIX_EPOCH + LATEST)
}

const EVENT_COLUMNS: &str =
    "id, time, account_id, key_id, outcome, method, path, client_ip, status";

impl PgStore {
    fn events_sql(&self, sql: &str) -> String {
        sql.replace("{s}", &format!("\"{}\"", self.schema()))
    }

    /// Keys whose hint is `start`, any account (the `keys_by_start` index).
    pub(super) async fn keys_by_start(
        &self,
        start: &str,
        limit: usize,
    ) -> Result<Vec<KeyRecord>, StoreError> {
        let sql = self.events_sql(&format!(
            "SELECT {} FROM {{s}}.keys k WHERE k.key_start = $1 ORDER BY k.created_at, k.id LIMIT $2",
            super::schema::key_columns("{s}")
        ));
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.timed(async {
            let client = self.client().await?;
            let stmt = client.prepare_cached(&sql).await.map_err(pg_error)?;
            let rows = client
                .query(&stmt, &[&start, &limit])
                .await
                .map_err(pg_error)?;
            rows.iter().map(rows::record).collect()
        })
        .await
    }
}

fn event(row: &tokio_postgres::Row) -> Result<ApiEvent, StoreError> {
    let bad = |what: &str| StoreError::unavailable(format!("api_events: unreadable {what}"));
    let id: i64 = row.try_get(0).map_err(|_| bad("id"))?;
    let time: SystemTime = row.try_get(1).map_err(|_| bad("time"))?;
    let account: &str = row.try_get(2).map_err(|_| bad("account_id"))?;
    let key: &str = row.try_get(3).map_err(|_| bad("key_id"))?;
    let outcome: &str = row.try_get(4).map_err(|_| bad("outcome"))?;
    let method: &str = row.try_get(5).map_err(|_| bad("method"))?;
    let path: &str = row.try_get(6).map_err(|_| bad("path"))?;
    let ip: Option<IpAddr> = row.try_get(7).map_err(|_| bad("client_ip"))?;
    let status: i16 = row.try_get(8).map_err(|_| bad("status"))?;
    Ok(ApiEvent::new(
        time,
        KeyId::new(key),
        AccountId::new(account),
        outcome,
        method,
        path,
        ip,
        u16::try_from(status).unwrap_or(0),
    )
    .with_seq(u64::try_from(id).unwrap_or(0)))
}

#[async_trait]
impl ApiLogStore for PgStore {
    async fn append_events(
        &self,
        events: &[ApiEvent],
        limits: &ApiLogLimits,
        now: SystemTime,
    ) -> Result<(), StoreError> {
        if events.is_empty() {
            return Ok(());
        }
        let times: Vec<SystemTime> = events.iter().map(|e| e.time).collect();
        let accounts: Vec<&str> = events.iter().map(|e| e.account_id.as_str()).collect();
        let keys: Vec<&str> = events.iter().map(|e| e.key_id.as_str()).collect();
        let outcomes: Vec<&str> = events.iter().map(|e| e.outcome.as_str()).collect();
        let methods: Vec<&str> = events.iter().map(|e| e.method.as_str()).collect();
        let paths: Vec<&str> = events.iter().map(|e| e.path.as_str()).collect();
        let ips: Vec<Option<IpAddr>> = events.iter().map(|e| e.client_ip).collect();
        let statuses: Vec<i16> = events
            .iter()
            .map(|e| i16::try_from(e.status).unwrap_or(i16::MAX))
            .collect();
        let mut touched: Vec<&str> = accounts.clone();
        touched.sort_unstable();
        touched.dedup();
        let max = i64::try_from(limits.max_events_per_account).unwrap_or(i64::MAX);
        let cutoff = clamp(now.checked_sub(limits.retention).unwrap_or(UNIX_EPOCH));
        let insert = self.events_sql(
            "INSERT INTO {s}.api_events \
             (time, account_id, key_id, outcome, method, path, client_ip, status) \
             SELECT * FROM unnest($1::timestamptz[], $2::text[], $3::text[], $4::text[], \
             $5::text[], $6::text[], $7::inet[], $8::int2[])",
        );
        // Per touched account: everything at or after its (max + 1)-th newest event, and
        // everything past the retention.
        let trim = self.events_sql(
            "DELETE FROM {s}.api_events e USING ( \
                 SELECT a.account_id, c.time, c.id FROM unnest($1::text[]) AS a(account_id) \
                 CROSS JOIN LATERAL (SELECT x.time, x.id FROM {s}.api_events x \
                     WHERE x.account_id = a.account_id ORDER BY x.time DESC, x.id DESC \
                     OFFSET $2 LIMIT 1) c \
             ) cut WHERE e.account_id = cut.account_id AND (e.time, e.id) <= (cut.time, cut.id)",
        );
        let expire = self.events_sql(
            "DELETE FROM {s}.api_events WHERE account_id = ANY($1::text[]) AND time < $2",
        );
        self.timed(async {
            let mut client = self.client().await?;
            let tx = client.transaction().await.map_err(pg_error)?;
            let insert = tx.prepare_cached(&insert).await.map_err(pg_error)?;
            tx.execute(
                &insert,
                &[
                    &times, &accounts, &keys, &outcomes, &methods, &paths, &ips, &statuses,
                ],
            )
            .await
            .map_err(pg_error)?;
            let trim = tx.prepare_cached(&trim).await.map_err(pg_error)?;
            tx.execute(&trim, &[&touched, &max])
                .await
                .map_err(pg_error)?;
            let expire = tx.prepare_cached(&expire).await.map_err(pg_error)?;
            tx.execute(&expire, &[&touched, &cutoff])
                .await
                .map_err(pg_error)?;
            tx.commit().await.map_err(pg_error)
        })
        .await
    }

    async fn prune_events(&self, before: SystemTime) -> Result<u64, StoreError> {
        let sql = self.events_sql("DELETE FROM {s}.api_events WHERE time < $1");
        let before = clamp(before);
        self.timed(async {
            let client = self.client().await?;
            client.execute(&sql, &[&before]).await.map_err(pg_error)
        })
        .await
    }

    async fn query_events(&self, filter: &EventFilter) -> Result<Vec<ApiEvent>, StoreError> {
        let sql = self.events_sql(&format!(
            "SELECT {EVENT_COLUMNS} FROM {{s}}.api_events WHERE account_id = $1 \
             AND ($2::text IS NULL OR key_id = $2) AND ($3::text IS NULL OR outcome = $3) \
             AND ($4::timestamptz IS NULL OR time >= $4) \
             AND ($5::timestamptz IS NULL OR time < $5) \
             AND ($6::timestamptz IS NULL OR (time, id) < ($6, $7::bigint)) \
             ORDER BY time DESC, id DESC LIMIT $8"
        ));
        let key = filter.key_id.as_ref().map(KeyId::as_str);
        let outcome = filter.outcome.as_deref();
        let from = filter.from.map(clamp);
        let to = filter.to.map(clamp);
        let (after, after_seq) = match filter.after {
            Some(p) if p.time > UNIX_EPOCH + LATEST => (Some(clamp(p.time)), Some(i64::MAX)),
            Some(p) => (Some(p.time), Some(i64::try_from(p.seq).unwrap_or(i64::MAX))),
            None => (None, None),
        };
        let limit = i64::try_from(filter.limit).unwrap_or(i64::MAX);
        self.timed(async {
            let client = self.client().await?;
            let stmt = client.prepare_cached(&sql).await.map_err(pg_error)?;
            let rows = client
                .query(
                    &stmt,
                    &[
                        &filter.account_id.as_str(),
                        &key,
                        &outcome,
                        &from,
                        &to,
                        &after,
                        &after_seq,
                        &limit,
                    ],
                )
                .await
                .map_err(pg_error)?;
            rows.iter().map(event).collect()
        })
        .await
    }

    async fn erase_account_events(&self, account: &AccountId) -> Result<u64, StoreError> {
        let sql = self.events_sql("DELETE FROM {s}.api_events WHERE account_id = $1");
        self.timed(async {
            let client = self.client().await?;
            client
                .execute(&sql, &[&account.as_str()])
                .await
                .map_err(pg_error)
        })
        .await
    }
}
