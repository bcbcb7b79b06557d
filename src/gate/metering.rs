//! The [`Keygate`] side of usage limits: plans, and returning leased units.

use std::sync::Arc;

use super::Keygate;
use crate::metering::{Metering, Plan};

impl Keygate {
    /// Returns every unit this instance leased and did not spend to the ledger, so that
    /// the ledger's balances account for every credit. Call it on shutdown; the next
    /// request leases again, so calling it at any time is safe.
    pub async fn return_leases(&self) {
        self.inner.metering.flush().await;
    }

    /// Returns the units of meters that no cached key holds any more (keys evicted,
    /// invalidated or deleted) and forgets their cells. [`Keygate::return_leases`] returns
    /// all of them.
    pub async fn return_unheld_usage(&self) {
        self.inner.cache.run_pending_tasks();
        self.inner.metering.return_unheld().await;
    }

    /// Adds or replaces a default plan of this instance, and applies it at once to every
    /// key on it in this process: every cached key is looked up again (the same flush as
    /// [`Keygate::invalidate_all`]). Units leased under the old plan go back to the
    /// ledger at the next request. A plan of the same name kept in the store takes
    /// precedence; to change a plan on every instance, use
    /// [`crate::KeyManager::set_plan`].
    pub fn set_plan(&self, plan: Plan) {
        self.inner.metering.plans.insert(plan);
        self.inner.cache.invalidate_all();
    }

    /// Removes a default plan of this instance; keys that still refer to it, with no
    /// stored plan of that name, are refused (`usage_exceeded`) until they move to
    /// another plan.
    pub fn remove_plan(&self, name: &str) -> Option<Plan> {
        let removed = self.inner.metering.plans.remove(name);
        self.inner.cache.invalidate_all();
        removed.map(|p| (*p).clone())
    }

    /// The plan named `name` in effect: the stored one as last read, else the default.
    pub fn plan(&self, name: &str) -> Option<Plan> {
        self.inner.metering.plans.get(name).map(|p| (*p).clone())
    }

    /// Every plan in effect (stored plans as last read, and defaults), by name.
    pub fn plans(&self) -> Vec<Plan> {
        self.inner
            .metering
            .plans
            .all()
            .iter()
            .map(|p| (**p).clone())
            .collect()
    }

    /// The gate's metering, for the manager.
    pub(crate) fn metering(&self) -> &Arc<Metering> {
        &self.inner.metering
    }
}
