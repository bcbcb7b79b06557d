//! The plans of a gate, by name: the deployment's defaults (builder, configuration file,
//! [`crate::Keygate::set_plan`]) and the plans kept in the store ([`PlanStore`]), which
//! take precedence over a default of the same name. Read when a key is cached, never on
//! a cached request.
//!
//! The stored plans are loaded on the first cache miss, and again on the first miss
//! after any flush of the whole cache ([`crate::Keygate::invalidate_all`], which the
//! invalidation listener calls when a plan changed on another instance): the miss,
//! which already waits for the store, waits for the plans too, bounded by the store
//! timeout, and fails closed (503 `store_unavailable`) when they cannot be read.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock, RwLock};
use std::time::Duration;

use super::plan::Effective;
use super::{Plan, PlanStore, Quota, UsageLimits};
use crate::error::AuthError;

type ByName = HashMap<String, Arc<Plan>>;

#[derive(Default)]
pub(crate) struct Plans {
    /// The deployment's defaults.
    defaults: RwLock<ByName>,
    /// The plans kept in the store, as last loaded.
    stored: RwLock<ByName>,
    source: OnceLock<Arc<dyn PlanStore>>,
    /// The stored plans must be loaded (again) before a key is resolved.
    stale: AtomicBool,
    /// One load at a time.
    loading: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Plans {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plans")
            .field("defaults", &read(&self.defaults).len())
            .field("stored", &read(&self.stored).len())
            .finish_non_exhaustive()
    }
}

fn read(map: &RwLock<ByName>) -> std::sync::RwLockReadGuard<'_, ByName> {
    map.read().unwrap_or_else(|p| p.into_inner())
}

fn write(map: &RwLock<ByName>) -> std::sync::RwLockWriteGuard<'_, ByName> {
    map.write().unwrap_or_else(|p| p.into_inner())
}

impl Plans {
    /// Keeps plans in `source` too; they are loaded at the first miss.
    pub(crate) fn stored_in(&self, source: Arc<dyn PlanStore>) {
        if self.source.set(source).is_ok() {
            self.stale.store(true, Ordering::Release);
        }
    }

    /// The stored plans may have changed: load them again at the next miss.
    pub(crate) fn mark_stale(&self) {
        if self.source.get().is_some() {
            self.stale.store(true, Ordering::Release);
        }
    }

    /// Whether a miss must load the stored plans first.
    pub(crate) fn stale(&self) -> bool {
        self.stale.load(Ordering::Acquire)
    }

    /// Loads the stored plans if they are stale, within `timeout`; one load at a time.
    pub(crate) async fn load(&self, timeout: Duration) -> Result<(), AuthError> {
        let Some(source) = self.source.get() else {
            return Ok(());
        };
        let _one = self.loading.lock().await;
        // Cleared before reading, so a change heard of meanwhile marks them again.
        if !self.stale.swap(false, Ordering::AcqRel) {
            return Ok(());
        }
        match tokio::time::timeout(timeout, source.plans()).await {
            Ok(Ok(plans)) => {
                *write(&self.stored) = plans
                    .into_iter()
                    .map(|p| (p.name.clone(), Arc::new(p)))
                    .collect();
                Ok(())
            }
            failed => {
                self.stale.store(true, Ordering::Release);
                match failed {
                    Ok(Err(error)) => {
                        tracing::error!(target: "keygate", %error, "reading the stored plans failed; refusing the request")
                    }
                    _ => {
                        tracing::error!(target: "keygate", ?timeout, "reading the stored plans timed out; refusing the request")
                    }
                }
                Err(AuthError::StoreUnavailable)
            }
        }
    }

    /// The plan named `name`: the stored one, else the default.
    pub(crate) fn get(&self, name: &str) -> Option<Arc<Plan>> {
        let stored = read(&self.stored).get(name).cloned();
        stored.or_else(|| read(&self.defaults).get(name).cloned())
    }

    /// Adds or replaces a default.
    pub(crate) fn insert(&self, plan: Plan) {
        write(&self.defaults).insert(plan.name.clone(), Arc::new(plan));
    }

    /// Removes a default.
    pub(crate) fn remove(&self, name: &str) -> Option<Arc<Plan>> {
        write(&self.defaults).remove(name)
    }

    /// Every plan in effect, by name.
    pub(crate) fn all(&self) -> Vec<Arc<Plan>> {
        let mut all = read(&self.defaults).clone();
        all.extend(
            read(&self.stored)
                .iter()
                .map(|(k, v)| (k.clone(), v.clone())),
        );
        let mut all: Vec<_> = all.into_values().collect();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        all
    }

    /// `limits` over their plan: own credits, else the plan's; per period the lower
    /// quota. `Err` names a plan that does not exist.
    pub(crate) fn effective(&self, limits: &UsageLimits) -> Result<Effective, String> {
        let plan = match &limits.plan {
            Some(name) => Some(self.get(name).ok_or_else(|| name.clone())?),
            None => None,
        };
        let mut quotas: Vec<Quota> = plan.as_ref().map(|p| p.quotas.clone()).unwrap_or_default();
        for own in &limits.quotas {
            match quotas.iter_mut().find(|q| q.period == own.period) {
                Some(q) => q.limit = q.limit.min(own.limit),
                None => quotas.push(*own),
            }
        }
        quotas.sort_by_key(|q| q.period);
        Ok(Effective {
            rate_limit: plan.as_ref().and_then(|p| p.rate_limit),
            credits: limits.credits.or(plan.as_ref().and_then(|p| p.credits)),
            quotas,
        })
    }
}
