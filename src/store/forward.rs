//! `Arc<S>` is a [`KeyStore`] when `S` is: every call goes to `S`.

use std::sync::Arc;

use async_trait::async_trait;

use super::{KeyStore, StoreError};
use crate::key::digest::KeyDigest;
use crate::store::record::KeyRecord;

#[async_trait]
impl<S: KeyStore + ?Sized> KeyStore for Arc<S> {
    async fn find_by_digest(&self, digest: &KeyDigest) -> Result<Option<KeyRecord>, StoreError> {
        (**self).find_by_digest(digest).await
    }
    fn usage_store(&self) -> Option<Arc<dyn crate::activity::UsageStore>> {
        (**self).usage_store()
    }
    fn credit_ledger(&self) -> Option<Arc<dyn crate::metering::CreditLedger>> {
        (**self).credit_ledger()
    }
    fn plan_store(&self) -> Option<Arc<dyn crate::metering::PlanStore>> {
        (**self).plan_store()
    }
}
