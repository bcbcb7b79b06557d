//! Accounts' usage settings (credits, quotas, plan), kept on the account's row.

use super::rows::usage_json;
use super::{pg_error, PgStore};
use crate::key::digest::KeyDigest;
use crate::metering::UsageLimits;
use crate::store::record::AccountId;
use crate::store::StoreError;

impl PgStore {
    pub(super) async fn read_account_usage(
        &self,
        account: &AccountId,
    ) -> Result<Option<UsageLimits>, StoreError> {
        let s = format!("\"{}\"", self.inner.schema);
        let client = self.client().await?;
        let row = client
            .query_opt(
                &format!("SELECT usage FROM {s}.accounts WHERE id = $1"),
                &[&account.as_str()],
            )
            .await
            .map_err(pg_error)?;
        let Some(row) = row else { return Ok(None) };
        let json: Option<serde_json::Value> = row.try_get(0).map_err(pg_error)?;
        json.map(serde_json::from_value)
            .transpose()
            .map_err(|_| StoreError::unavailable(format!("unreadable usage of account {account}")))
    }

    pub(super) async fn write_account_usage(
        &self,
        account: &AccountId,
        usage: &UsageLimits,
    ) -> Result<(), StoreError> {
        let s = format!("\"{}\"", self.inner.schema);
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_error)?;
        tx.execute(
            &format!(
                "INSERT INTO {s}.accounts (id, usage) VALUES ($1, $2) \
                 ON CONFLICT (id) DO UPDATE SET usage = EXCLUDED.usage"
            ),
            &[&account.as_str(), &usage_json(usage)],
        )
        .await
        .map_err(pg_error)?;
        let digests: Vec<KeyDigest> = tx
            .query(
                &format!(
                    "SELECT d.digest FROM {s}.key_digests d JOIN {s}.keys k ON k.id = d.key_id \
                     WHERE k.account_id = $1"
                ),
                &[&account.as_str()],
            )
            .await
            .map_err(pg_error)?
            .iter()
            .filter_map(|r| super::rows::digest_from(r.get(0)))
            .collect();
        self.publish(&tx, &digests).await?;
        tx.commit().await.map_err(pg_error)
    }
}
