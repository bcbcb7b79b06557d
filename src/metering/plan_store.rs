//! Plans kept in the store, so that every instance applies the same ones.

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;

use super::Plan;
use crate::store::StoreError;

/// Where a deployment keeps its [`Plan`]s, so that a change made on one instance
/// applies on every instance: [`crate::MemoryStore`] (in process) and `PgStore` (the
/// `plans` table) keep them, and a store offers this through
/// [`crate::KeyStore::plan_store`]. Plans are changed through
/// [`crate::KeyManager::set_plan`] and [`crate::KeyManager::remove_plan`].
///
/// A change must reach every instance's cache the way a key change does: `PgStore`
/// writes a change to its log that makes every listening instance flush its cache
/// ([`crate::invalidation::InvalidationSink::invalidate_all`]), and a flushed gate loads the plans
/// again at its next miss. Object-safe.
#[async_trait]
pub trait PlanStore: Send + Sync + 'static {
    /// Every stored plan.
    async fn plans(&self) -> Result<Vec<Plan>, StoreError>;

    /// Adds or replaces the plan named `plan.name`, and tells every instance.
    async fn put_plan(&self, plan: &Plan) -> Result<(), StoreError>;

    /// Removes the plan named `name`, and tells every instance; `Ok(false)` when there
    /// was none.
    async fn remove_plan(&self, name: &str) -> Result<bool, StoreError>;
}

/// The plans of a [`crate::MemoryStore`]. Gates in this process over the same store see
/// a change once their cache is flushed (the manager flushes its own gate's).
#[derive(Debug, Default)]
pub(crate) struct MemoryPlans {
    by_name: Mutex<BTreeMap<String, Plan>>,
}

impl MemoryPlans {
    fn map(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Plan>> {
        self.by_name.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait]
impl PlanStore for MemoryPlans {
    async fn plans(&self) -> Result<Vec<Plan>, StoreError> {
        Ok(self.map().values().cloned().collect())
    }
    async fn put_plan(&self, plan: &Plan) -> Result<(), StoreError> {
        self.map().insert(plan.name.clone(), plan.clone());
        Ok(())
    }
    async fn remove_plan(&self, name: &str) -> Result<bool, StoreError> {
        Ok(self.map().remove(name).is_some())
    }
}
