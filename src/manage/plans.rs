//! Plans kept in the store, changed through the manager, applied on every instance.

use crate::manage::validate::validate_rate_limit;
use crate::manage::{KeyManager, ManageError};
use crate::metering::{Plan, PlanStore, UsageLimits};
use crate::store::StoreError;

impl KeyManager {
    fn plan_store(&self) -> Result<std::sync::Arc<dyn PlanStore>, ManageError> {
        self.store.plan_store().ok_or_else(|| {
            ManageError::Store(StoreError::unavailable("this store does not keep plans"))
        })
    }

    /// Reads the stored plans into the gate if they may have changed.
    pub(crate) async fn load_plans(&self) -> Result<(), ManageError> {
        let metering = self.keygate().metering();
        metering
            .plans
            .load(metering.settings.wait)
            .await
            .map_err(|_| ManageError::Store(StoreError::unavailable("the plans could not be read")))
    }

    /// Adds or replaces a plan in the store, for server-side code only (no key can, and
    /// the management API does not show plans). Every key on it, on every instance,
    /// applies it from its next request: `PgStore` tells every listening instance to
    /// flush its cache, and each reads the plans again at its next miss; this manager's
    /// gate at once. Units leased under the old plan go back to the ledger. A stored
    /// plan takes precedence over a deployment default of the same name
    /// ([`crate::KeygateBuilder::plan`], the configuration file,
    /// [`crate::Keygate::set_plan`]).
    ///
    /// Fails with [`ManageError::InvalidRequest`] for an empty or overlong name, a rate
    /// limit below 1, negative credits, a refill of 0, a quota of 0 or beyond a signed
    /// 64-bit count, or two quotas of one period.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use keygate::metering::{Credits, Plan, Quota, QuotaPeriod};
    /// use keygate::{Keygate, MemoryStore};
    ///
    /// let (gate, manager) = Keygate::managed(MemoryStore::new()).build();
    /// let pro = Plan::new("pro").credits(Credits::new(5000)).quota(Quota::new(1000, QuotaPeriod::Day));
    /// manager.set_plan(pro.clone()).await.unwrap();
    /// assert_eq!(manager.plans().await.unwrap(), vec![pro]);
    /// # let _ = gate; }
    /// ```
    pub async fn set_plan(&self, plan: Plan) -> Result<(), ManageError> {
        validate_plan(&plan)?;
        let store = self.plan_store()?;
        let _write = self.write.lock().await;
        store.put_plan(&plan).await?;
        self.keygate().invalidate_all();
        Ok(())
    }

    /// Removes a plan from the store, on every instance as [`KeyManager::set_plan`]
    /// changes one. Keys that still refer to it fall back to a deployment default of
    /// that name, if there is one, or are refused (`usage_exceeded`, fail closed) until
    /// they move to another plan. `Ok(false)` when no such plan was stored.
    pub async fn remove_plan(&self, name: &str) -> Result<bool, ManageError> {
        let store = self.plan_store()?;
        let _write = self.write.lock().await;
        let removed = store.remove_plan(name).await?;
        if removed {
            self.keygate().invalidate_all();
        }
        Ok(removed)
    }

    /// Every plan kept in the store, by name (deployment defaults not included: see
    /// [`crate::Keygate::plans`] for every plan in effect).
    pub async fn plans(&self) -> Result<Vec<Plan>, ManageError> {
        let mut plans = self.plan_store()?.plans().await?;
        plans.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(plans)
    }
}

/// A plan's name and numbers make sense.
fn validate_plan(plan: &Plan) -> Result<(), ManageError> {
    let bad = |m: &str| Err(ManageError::InvalidRequest(m.to_owned()));
    let name = &plan.name;
    if name.is_empty() || name.len() > 64 || name.chars().any(|c| c.is_control()) {
        return bad("name: a plan's name is 1 to 64 characters, none a control character");
    }
    validate_rate_limit(plan.rate_limit.as_ref())?;
    let limits = UsageLimits {
        credits: plan.credits,
        quotas: plan.quotas.clone(),
        plan: None,
    };
    crate::manage::limits::check_numbers(&limits)
}
