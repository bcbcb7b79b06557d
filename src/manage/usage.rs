//! Reading and erasing usage counts (see [`crate::activity`]).

use std::collections::BTreeMap;
use std::time::SystemTime;

use crate::activity::{UsageBucket, UsageCounters, UsageQuery, UsageSubject};
use crate::manage::confine::Actor;
use crate::manage::{ActingManager, KeyManager, ManageError};
use crate::store::record::{AccountId, KeyId};
use crate::store::StoreError;

impl KeyManager {
    fn counters(&self) -> Result<&std::sync::Arc<UsageCounters>, ManageError> {
        self.keygate().usage_counters().ok_or_else(|| {
            ManageError::Store(StoreError::unavailable(
                "usage is not counted on this deployment",
            ))
        })
    }

    /// The usage of key `id` of `account`, one bucket per minute, hour or day of the
    /// query's range (empty buckets included, with no outcomes), oldest first. Counts
    /// this instance has not flushed yet are flushed first, so every request it has
    /// answered is in the answer; other instances' counts are in once they flush.
    ///
    /// Fails with [`ManageError::Usage`] (400) for a reversed range, one of more than
    /// 1,500 buckets or one that starts before the oldest bucket kept, and with
    /// [`ManageError::NotFound`] for a key not in `account`.
    pub async fn usage(
        &self,
        account: &AccountId,
        id: &KeyId,
        query: &UsageQuery,
    ) -> Result<Vec<UsageBucket>, ManageError> {
        self.usage_as(account, id, query, None).await
    }

    pub(crate) async fn usage_as(
        &self,
        account: &AccountId,
        id: &KeyId,
        query: &UsageQuery,
        actor: Option<&Actor<'_>>,
    ) -> Result<Vec<UsageBucket>, ManageError> {
        let counters = self.counters()?;
        let range = query.resolve(self.keygate().clock().now(), &counters.store.retention())?;
        self.record_in(account, id, actor).await?;
        self.read(counters, &UsageSubject::Key(id.clone()), query, range)
            .await
    }

    /// The usage of every key of `account` together, as [`KeyManager::usage`] answers a
    /// key's.
    pub async fn account_usage(
        &self,
        account: &AccountId,
        query: &UsageQuery,
    ) -> Result<Vec<UsageBucket>, ManageError> {
        let counters = self.counters()?;
        let range = query.resolve(self.keygate().clock().now(), &counters.store.retention())?;
        self.read(
            counters,
            &UsageSubject::Account(account.clone()),
            query,
            range,
        )
        .await
    }

    /// The refusals of this deployment that came before any key was recognised (no
    /// credentials, malformed ones, unknown keys, store outages), counted by outcome:
    /// for the operator, never shown to an account.
    pub async fn deployment_usage(
        &self,
        query: &UsageQuery,
    ) -> Result<Vec<UsageBucket>, ManageError> {
        let counters = self.counters()?;
        let range = query.resolve(self.keygate().clock().now(), &counters.store.retention())?;
        self.read(counters, &UsageSubject::Deployment, query, range)
            .await
    }

    /// Deletes every usage count of `account` and its keys (for a customer who leaves),
    /// after flushing this instance's, and returns how many stored buckets (rows) went. Requests made
    /// afterwards are counted again.
    ///
    /// It leaves the credit ledger alone: balances of credits and quotas (see
    /// [`crate::metering`]) are what the customer paid for or is owed, not a record of
    /// their activity, and erasing them would hand out a fresh quota or wipe a balance.
    /// A key's own meters go when the key is deleted ([`KeyManager::delete`]); an
    /// account's credits are set with [`KeyManager::set_account_limits`].
    pub async fn erase_account_usage(&self, account: &AccountId) -> Result<u64, ManageError> {
        let counters = self.counters()?;
        counters.flush().await?;
        Ok(counters.store.erase_account_usage(account).await?)
    }

    async fn read(
        &self,
        counters: &UsageCounters,
        subject: &UsageSubject,
        _query: &UsageQuery,
        range: crate::activity::UsageRange,
    ) -> Result<Vec<UsageBucket>, ManageError> {
        counters.flush().await?;
        let found = counters.store.usage(subject, &range).await?;
        let mut by_start: BTreeMap<SystemTime, UsageBucket> =
            found.into_iter().map(|b| (b.start, b)).collect();
        Ok(range
            .starts()
            .map(|start| {
                by_start
                    .remove(&start)
                    .unwrap_or_else(|| UsageBucket::new(start))
            })
            .collect())
    }
}

impl ActingManager<'_> {
    /// The usage of a key of the actor's account and environment: see
    /// [`KeyManager::usage`]. Any other key answers [`ManageError::NotFound`].
    pub async fn usage(
        &self,
        id: &KeyId,
        query: &UsageQuery,
    ) -> Result<Vec<UsageBucket>, ManageError> {
        let actor = self.acting()?;
        self.manager()
            .usage_as(self.identity().account_id(), id, query, Some(&actor))
            .await
    }
}
