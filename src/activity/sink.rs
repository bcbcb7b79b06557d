//! Where flushed counts go ([`UsageSink`]) and where they are read back ([`UsageStore`]).

use std::sync::Arc;

use async_trait::async_trait;

use super::{UsageBucket, UsageCount, UsageRange, UsageRetention, UsageSubject};
use crate::store::record::AccountId;
use crate::store::StoreError;

/// Receives the counts of each flush. Object-safe: `Arc<dyn UsageSink>` works.
///
/// `record` must *add* each count to what it holds for the same subject, minute and
/// outcome (several instances flush the same key), and be all-or-nothing: on `Err` the
/// flush keeps the counts and hands them over again with the next one.
///
/// ```
/// use async_trait::async_trait;
/// use keygate::activity::{UsageCount, UsageSink};
/// use keygate::StoreError;
///
/// struct Log;
///
/// #[async_trait]
/// impl UsageSink for Log {
///     async fn record(&self, counts: &[UsageCount]) -> Result<(), StoreError> {
///         for c in counts {
///             println!("{} {} {}: {}", c.subject.kind(), c.subject.id(), c.outcome, c.count);
///         }
///         Ok(())
///     }
/// }
/// ```
#[async_trait]
pub trait UsageSink: Send + Sync + 'static {
    /// Adds `counts` (per minute; at most one per subject, minute and outcome).
    async fn record(&self, counts: &[UsageCount]) -> Result<(), StoreError>;
}

/// A [`UsageSink`] that also answers reads and erasure: what [`crate::KeyManager`]'s
/// usage calls need. [`crate::MemoryStore`] and `PgStore` are both.
#[async_trait]
pub trait UsageStore: UsageSink {
    /// How long buckets of each granularity are kept.
    fn retention(&self) -> UsageRetention;

    /// The buckets of `subject` in `range` that hold any count, oldest first. Buckets
    /// with no requests may be left out.
    async fn usage(
        &self,
        subject: &UsageSubject,
        range: &UsageRange,
    ) -> Result<Vec<UsageBucket>, StoreError>;

    /// Deletes every count of `account` and its keys; returns how many buckets went.
    async fn erase_account_usage(&self, account: &AccountId) -> Result<u64, StoreError>;
}

#[async_trait]
impl<S: UsageSink + ?Sized> UsageSink for Arc<S> {
    async fn record(&self, counts: &[UsageCount]) -> Result<(), StoreError> {
        (**self).record(counts).await
    }
}

#[async_trait]
impl<S: UsageStore + ?Sized> UsageStore for Arc<S> {
    fn retention(&self) -> UsageRetention {
        (**self).retention()
    }
    async fn usage(
        &self,
        subject: &UsageSubject,
        range: &UsageRange,
    ) -> Result<Vec<UsageBucket>, StoreError> {
        (**self).usage(subject, range).await
    }
    async fn erase_account_usage(&self, account: &AccountId) -> Result<u64, StoreError> {
        (**self).erase_account_usage(account).await
    }
}
