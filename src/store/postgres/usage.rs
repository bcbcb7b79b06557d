//! [`PgStore`]'s usage counts: the `usage_counts` table, one batched upsert per flush
//! that adds to what every instance wrote before.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;

use super::{pg_error, PgStore, PgStoreBuilder};
use crate::activity::{
    Granularity, Outcome, UsageBucket, UsageCount, UsageRange, UsageRetention, UsageSink,
    UsageStore, UsageSubject,
};
use crate::store::record::AccountId;
use crate::store::StoreError;

/// How often old buckets are deleted, at most.
const TRIM_EVERY: Duration = Duration::from_secs(600);

/// The usage settings and state of one store.
pub(super) struct UsageState {
    retention: UsageRetention,
    /// The newest minute of the flush that last deleted old buckets.
    trimmed: Mutex<Option<SystemTime>>,
}

impl UsageState {
    pub(super) fn new(retention: UsageRetention) -> Self {
        Self {
            retention,
            trimmed: Mutex::new(None),
        }
    }
}

impl PgStoreBuilder {
    /// How long usage buckets are kept per granularity (see [`UsageRetention`]): older
    /// ones are deleted by the flushes, at most every 10 minutes. Default: minutes for
    /// 48 hours, hours for 30 days, days for 13 months.
    pub fn usage_retention(mut self, retention: UsageRetention) -> Self {
        self.usage_retention = retention;
        self
    }
}

/// One row's key: subject kind, subject, granularity, start, outcome.
type RowKey = (&'static str, String, &'static str, SystemTime, &'static str);

impl PgStore {
    fn usage_sql(&self, statement: &str) -> String {
        statement.replace("{s}", &format!("\"{}\"", self.inner.schema))
    }

    /// Deletes buckets past their retention, at most every [`TRIM_EVERY`] of counted
    /// time (`newest`, the newest minute flushed).
    async fn trim_usage(&self, newest: SystemTime) -> Result<(), StoreError> {
        {
            let mut last = self
                .inner
                .usage
                .trimmed
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if last.is_some_and(|t| newest < t + TRIM_EVERY) {
                return Ok(());
            }
            *last = Some(newest);
        }
        let retention = self.inner.usage.retention;
        let granularities: Vec<&str> = Granularity::ALL.iter().map(|g| g.as_str()).collect();
        let before: Vec<SystemTime> = Granularity::ALL
            .iter()
            .map(|g| g.floor(newest.checked_sub(retention.of(*g)).unwrap_or(newest)))
            .collect();
        let sql = self.usage_sql(
            "DELETE FROM {s}.usage_counts u USING unnest($1::text[], $2::timestamptz[]) \
             AS t(granularity, before) WHERE u.granularity = t.granularity AND u.start < t.before",
        );
        self.timed(async {
            let client = self.client().await?;
            client
                .execute(&sql, &[&granularities, &before])
                .await
                .map_err(pg_error)
        })
        .await
        .map(|_| ())
    }
}

#[async_trait]
impl UsageSink for PgStore {
    /// One statement: every count added to its minute, hour and day rows.
    async fn record(&self, counts: &[UsageCount]) -> Result<(), StoreError> {
        if counts.is_empty() {
            return Ok(());
        }
        // Merged per row, since one statement may not touch a row twice, and sorted, so
        // that instances flushing at once lock rows in the same order.
        let mut rows: BTreeMap<RowKey, (Option<&AccountId>, i64)> = BTreeMap::new();
        let mut newest = SystemTime::UNIX_EPOCH;
        for c in counts {
            newest = newest.max(c.minute);
            let n = i64::try_from(c.count).unwrap_or(i64::MAX);
            for g in Granularity::ALL {
                let key = (
                    c.subject.kind(),
                    c.subject.id().to_owned(),
                    g.as_str(),
                    g.floor(c.minute),
                    c.outcome.code(),
                );
                let row = rows.entry(key).or_insert((c.account.as_ref(), 0));
                row.1 = row.1.saturating_add(n);
            }
        }
        let mut kinds = Vec::with_capacity(rows.len());
        let mut subjects = Vec::with_capacity(rows.len());
        let mut grains = Vec::with_capacity(rows.len());
        let mut starts = Vec::with_capacity(rows.len());
        let mut outcomes = Vec::with_capacity(rows.len());
        let mut accounts = Vec::with_capacity(rows.len());
        let mut ns = Vec::with_capacity(rows.len());
        for ((kind, subject, g, start, outcome), (account, n)) in &rows {
            kinds.push(*kind);
            subjects.push(subject.as_str());
            grains.push(*g);
            starts.push(*start);
            outcomes.push(*outcome);
            accounts.push(account.map(AccountId::as_str));
            ns.push(*n);
        }
        let sql = self.usage_sql(
            "INSERT INTO {s}.usage_counts AS u \
             (subject_kind, subject, granularity, start, outcome, account_id, n) \
             SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], \
             $5::text[], $6::text[], $7::int8[]) \
             ON CONFLICT (subject_kind, subject, granularity, start, outcome) \
             DO UPDATE SET n = u.n + excluded.n",
        );
        self.timed(async {
            let client = self.client().await?;
            let stmt = client.prepare_cached(&sql).await.map_err(pg_error)?;
            client
                .execute(
                    &stmt,
                    &[
                        &kinds, &subjects, &grains, &starts, &outcomes, &accounts, &ns,
                    ],
                )
                .await
                .map_err(pg_error)
        })
        .await?;
        if let Err(error) = self.trim_usage(newest).await {
            tracing::warn!(target: "keygate", %error, "could not delete expired usage buckets");
        }
        Ok(())
    }
}

#[async_trait]
impl UsageStore for PgStore {
    fn retention(&self) -> UsageRetention {
        self.inner.usage.retention
    }

    async fn usage(
        &self,
        subject: &UsageSubject,
        range: &UsageRange,
    ) -> Result<Vec<UsageBucket>, StoreError> {
        let sql = self.usage_sql(
            "SELECT start, outcome, n FROM {s}.usage_counts WHERE subject_kind = $1 \
             AND subject = $2 AND granularity = $3 AND start >= $4 AND start < $5 \
             ORDER BY start",
        );
        let rows = self
            .timed(async {
                let client = self.client().await?;
                let stmt = client.prepare_cached(&sql).await.map_err(pg_error)?;
                client
                    .query(
                        &stmt,
                        &[
                            &subject.kind(),
                            &subject.id(),
                            &range.granularity.as_str(),
                            &range.from,
                            &range.to,
                        ],
                    )
                    .await
                    .map_err(pg_error)
            })
            .await?;
        let mut buckets: Vec<UsageBucket> = Vec::new();
        for row in rows {
            let start: SystemTime = row.try_get(0).map_err(pg_error)?;
            let code: &str = row.try_get(1).map_err(pg_error)?;
            let n: i64 = row.try_get(2).map_err(pg_error)?;
            // An outcome a newer version counts is left out rather than failing the read.
            let Some(outcome) = Outcome::from_code(code) else {
                continue;
            };
            if buckets.last().is_none_or(|b| b.start != start) {
                buckets.push(UsageBucket::new(start));
            }
            if let Some(bucket) = buckets.last_mut() {
                bucket
                    .outcomes
                    .insert(outcome, u64::try_from(n).unwrap_or(0));
            }
        }
        Ok(buckets)
    }

    async fn erase_account_usage(&self, account: &AccountId) -> Result<u64, StoreError> {
        let sql = self.usage_sql("DELETE FROM {s}.usage_counts WHERE account_id = $1");
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
