//! [`MemoryStore`] as a [`KeyStore`]: lookups by digest, and the ledger, plans and usage
//! store it offers to a gate over it.

use std::sync::Arc;

use async_trait::async_trait;

use super::MemoryStore;
use crate::key::digest::KeyDigest;
use crate::store::record::KeyRecord;
use crate::store::{KeyStore, StoreError};

#[async_trait]
impl KeyStore for MemoryStore {
    async fn find_by_digest(&self, digest: &KeyDigest) -> Result<Option<KeyRecord>, StoreError> {
        let Some(id) = self.by_digest.get(digest).map(|e| e.value().clone()) else {
            return Ok(None);
        };
        Ok(self.records.get(&id).map(|r| self.read(&r)))
    }

    fn credit_ledger(&self) -> Option<std::sync::Arc<dyn crate::metering::CreditLedger>> {
        Some(self.ledger.clone())
    }

    fn plan_store(&self) -> Option<Arc<dyn crate::metering::PlanStore>> {
        Some(self.plans.clone())
    }

    fn usage_store(&self) -> Option<Arc<dyn crate::activity::UsageStore>> {
        Some(self.usage.clone())
    }
}
