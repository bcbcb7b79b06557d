//! [`PlanStore`] for [`PgStore`]: the `plans` table, one row per plan (its JSON). A
//! change commits with an entry in the change log that names no digest but *every* key
//! (`changes.everything`), and a notification that tells listeners to flush their whole
//! cache; a listener that replays the log across such an entry flushes too. A flushed
//! gate reads the plans again at its next miss.

use async_trait::async_trait;
use tokio_postgres::Transaction;

use super::schema::CHANGES_LOCK;
use super::{pg_error, PgStore};
use crate::metering::{Plan, PlanStore};
use crate::store::StoreError;

impl PgStore {
    /// Appends a change that concerns every key to the log and notifies listeners, as
    /// the last step of `tx` (see [`PgStore::publish`]).
    async fn publish_everything(&self, tx: &Transaction<'_>) -> Result<(), StoreError> {
        let s = format!("\"{}\"", self.inner.schema);
        tx.execute(
            "SELECT pg_advisory_xact_lock($1, hashtext($2))",
            &[&CHANGES_LOCK, &self.inner.schema],
        )
        .await
        .map_err(pg_error)?;
        let seq: i64 = tx
            .query_one(
                &format!(
                    "INSERT INTO {s}.changes (digests, everything) VALUES ('{{}}', true) \
                     RETURNING seq"
                ),
                &[],
            )
            .await
            .map_err(pg_error)?
            .get(0);
        let payload = format!("{seq}:*");
        tx.execute("SELECT pg_notify($1, $2)", &[&self.inner.channel, &payload])
            .await
            .map_err(pg_error)?;
        Ok(())
    }

    /// Runs `statement` with `params` and publishes a change of every key, in one
    /// transaction; the number of rows changed.
    async fn change_plans(
        &self,
        statement: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<u64, StoreError> {
        self.timed(async {
            let mut client = self.client().await?;
            let tx = client.transaction().await.map_err(pg_error)?;
            let changed = tx.execute(statement, params).await.map_err(pg_error)?;
            if changed > 0 {
                self.publish_everything(&tx).await?;
            }
            tx.commit().await.map_err(pg_error)?;
            Ok(changed)
        })
        .await
    }
}

#[async_trait]
impl PlanStore for PgStore {
    async fn plans(&self) -> Result<Vec<Plan>, StoreError> {
        let s = format!("\"{}\"", self.inner.schema);
        self.timed(async {
            let client = self.client().await?;
            let rows = client
                .query(
                    &format!("SELECT name, plan FROM {s}.plans ORDER BY name"),
                    &[],
                )
                .await
                .map_err(pg_error)?;
            rows.iter()
                .map(|row| {
                    let name: String = row.get(0);
                    serde_json::from_value(row.get(1)).map_err(|_| {
                        StoreError::unavailable(format!("unreadable plan {name:?} in the store"))
                    })
                })
                .collect()
        })
        .await
    }

    async fn put_plan(&self, plan: &Plan) -> Result<(), StoreError> {
        let s = format!("\"{}\"", self.inner.schema);
        let json = serde_json::to_value(plan)
            .map_err(|_| StoreError::unavailable("a plan that cannot be written as JSON"))?;
        self.change_plans(
            &format!(
                "INSERT INTO {s}.plans (name, plan) VALUES ($1, $2) \
                 ON CONFLICT (name) DO UPDATE SET plan = EXCLUDED.plan, updated_at = now()"
            ),
            &[&plan.name, &json],
        )
        .await
        .map(drop)
    }

    async fn remove_plan(&self, name: &str) -> Result<bool, StoreError> {
        let s = format!("\"{}\"", self.inner.schema);
        let removed = self
            .change_plans(&format!("DELETE FROM {s}.plans WHERE name = $1"), &[&name])
            .await?;
        Ok(removed > 0)
    }
}
