//! Credits, quotas and plans in management: validation, the views with balances as of
//! now, operator adjustments, and account-level settings.

use serde::Serialize;

use super::{KeyManager, KeyView, ManageError};
use crate::metering::{Credits, Meter, MeterPolicy, QuotaPeriod, UsageLimits};
use crate::store::record::{AccountId, KeyId, KeyRecord, RateLimit};

/// Usage settings as management shows them, with balances as of now.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "admin", derive(utoipa::ToSchema))]
#[non_exhaustive]
pub struct UsageView {
    /// The plan, by name.
    pub plan: Option<String>,
    /// Credits in effect (the key's own, else its plan's), `remaining` as of now: the
    /// ledger's balance plus what this instance holds unspent.
    #[cfg_attr(feature = "admin", schema(value_type = Option<Object>))]
    pub credits: Option<Credits>,
    /// Quotas in effect, with what remains of each in its current period.
    pub quotas: Vec<QuotaView>,
}

/// One quota and what remains of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "admin", derive(utoipa::ToSchema))]
#[non_exhaustive]
pub struct QuotaView {
    /// Requests per period.
    pub limit: u64,
    /// The period.
    pub period: QuotaPeriod,
    /// Requests left in the current period.
    pub remaining: i64,
}

/// Whose settings.
#[derive(Clone, Copy)]
enum Owner<'a> {
    Key(&'a KeyId),
    Account(&'a AccountId),
}

impl Owner<'_> {
    fn credits(self) -> Meter {
        match self {
            Owner::Key(id) => Meter::KeyCredits(id.clone()),
            Owner::Account(id) => Meter::AccountCredits(id.clone()),
        }
    }
    fn quota(self, period: QuotaPeriod) -> Meter {
        match self {
            Owner::Key(id) => Meter::KeyQuota(id.clone(), period),
            Owner::Account(id) => Meter::AccountQuota(id.clone(), period),
        }
    }
}

/// The numbers of `limits` make sense: credits not negative, refills and quotas of at
/// least 1, quotas within a signed 64-bit count, at most one quota per period.
pub(crate) fn check_numbers(limits: &UsageLimits) -> Result<(), ManageError> {
    let bad = |m: &str| Err(ManageError::InvalidRequest(m.to_owned()));
    if let Some(c) = &limits.credits {
        if c.remaining < 0 {
            return bad("credits: remaining must be at least 0");
        }
        if c.refill.is_some_and(|r| r.amount == 0) {
            return bad("credits: refill.amount must be at least 1");
        }
    }
    for (i, q) in limits.quotas.iter().enumerate() {
        if q.limit == 0 {
            return bad("quotas: limit must be at least 1");
        }
        if q.limit > i64::MAX as u64 {
            return bad("quotas: limit must be at most 9223372036854775807");
        }
        if limits.quotas[..i].iter().any(|o| o.period == q.period) {
            return bad("quotas: at most one quota per period");
        }
    }
    Ok(())
}

impl KeyManager {
    /// Checks `limits` (of a key with `rate_limit`, if any): the plan exists (the stored
    /// plans are read first if they may have changed), the numbers make sense, at most
    /// one quota per period, and nothing widens the plan.
    pub(crate) async fn validate_usage(
        &self,
        limits: &UsageLimits,
        rate_limit: Option<&RateLimit>,
    ) -> Result<(), ManageError> {
        if limits.plan.is_some() {
            self.load_plans().await?;
        }
        let bad = |m: &str| Err(ManageError::InvalidRequest(m.to_owned()));
        let plan = match &limits.plan {
            Some(name) => match self.gate.plan(name) {
                Some(plan) => Some(plan),
                None => return bad("plan: no such plan"),
            },
            None => None,
        };
        check_numbers(limits)?;
        let Some(plan) = plan else { return Ok(()) };
        if let (Some(own), Some(theirs)) = (&limits.credits, &plan.credits) {
            let refill_wider = match (own.refill, theirs.refill) {
                (Some(o), Some(t)) => o.amount > t.amount,
                (Some(_), None) => true,
                (None, _) => false,
            };
            if own.remaining > theirs.remaining || refill_wider {
                return bad("credits: a key's own credits may only narrow its plan's");
            }
        }
        for q in &limits.quotas {
            if plan
                .quotas
                .iter()
                .any(|p| p.period == q.period && q.limit > p.limit)
            {
                return bad("quotas: a key's own quota may only narrow its plan's");
            }
        }
        if let (Some(own), Some(theirs)) = (rate_limit, &plan.rate_limit) {
            if own.per_second > theirs.per_second || own.burst > theirs.burst {
                return bad("rate_limit: a key's own rate limit may only narrow its plan's");
            }
        }
        Ok(())
    }

    /// `record` as a view, with its usage as of now.
    pub(crate) async fn view(&self, record: &KeyRecord) -> KeyView {
        let mut view = KeyView::from(record);
        view.usage = self
            .usage_view(Owner::Key(&record.id), &record.usage.own)
            .await;
        view.account_usage = match &record.usage.account {
            Some(account) => {
                self.usage_view(Owner::Account(&record.account_id), account)
                    .await
            }
            None => None,
        };
        view
    }

    async fn usage_view(&self, owner: Owner<'_>, limits: &UsageLimits) -> Option<UsageView> {
        if limits.is_empty() {
            return None;
        }
        let metering = self.gate.metering();
        let effective = metering.plans.effective(limits).unwrap_or_default();
        let mut credits = effective.credits;
        if let Some(c) = &mut credits {
            let policy = MeterPolicy::credits(c, metering.settings.offset);
            c.remaining = self
                .balance(&owner.credits(), &policy)
                .await
                .unwrap_or(c.remaining);
        }
        let mut quotas = Vec::new();
        for q in &effective.quotas {
            let policy = MeterPolicy::quota(q, metering.settings.offset);
            let remaining = self.balance(&owner.quota(q.period), &policy).await;
            quotas.push(QuotaView {
                limit: q.limit,
                period: q.period,
                remaining: remaining.unwrap_or(policy.initial),
            });
        }
        Some(UsageView {
            plan: limits.plan.clone(),
            credits,
            quotas,
        })
    }

    /// The ledger's balance plus what this instance holds unspent.
    async fn balance(&self, meter: &Meter, policy: &MeterPolicy) -> Option<i64> {
        let metering = self.gate.metering();
        let ledger = metering.ledger.as_ref()?;
        let now = self.now();
        let stored = ledger.balance(meter, policy, now).await.ok()?;
        let held = metering.cells.get(meter).map_or(0, |c| c.held_at(now));
        Some(stored.saturating_add(held))
    }

    /// Adds credits to (`delta > 0`) or spends credits from (`delta < 0`) key `id` of
    /// `account`, as an operator: exact whatever the instances hold. Returns the balance
    /// as of now. Fails with `InvalidRequest` when the key has no credits.
    pub async fn adjust_credits(
        &self,
        account: &AccountId,
        id: &KeyId,
        delta: i64,
    ) -> Result<i64, ManageError> {
        let record = self.record_in(account, id, None).await?;
        self.adjust(Owner::Key(&record.id), &record.usage.own, delta)
            .await
    }

    /// Sets the credits balance of key `id` of `account` as of now. Units that other
    /// instances hold unspent (at most one lease each) come back on top of it.
    pub async fn set_credits(
        &self,
        account: &AccountId,
        id: &KeyId,
        balance: i64,
    ) -> Result<(), ManageError> {
        let record = self.record_in(account, id, None).await?;
        self.set(Owner::Key(&record.id), &record.usage.own, balance)
            .await
    }

    /// Adds credits to, or spends credits from, `account`'s shared credits.
    pub async fn adjust_account_credits(
        &self,
        account: &AccountId,
        delta: i64,
    ) -> Result<i64, ManageError> {
        let limits = self.store.account_usage(account).await?.unwrap_or_default();
        self.adjust(Owner::Account(account), &limits, delta).await
    }

    /// The usage settings of `account` (credits, quotas and plan shared by all its keys),
    /// with balances as of now; `None` when it has none.
    pub async fn account_limits(
        &self,
        account: &AccountId,
    ) -> Result<Option<UsageView>, ManageError> {
        let limits = self.store.account_usage(account).await?.unwrap_or_default();
        Ok(self.usage_view(Owner::Account(account), &limits).await)
    }

    /// Sets the usage settings of `account`, shared by all its keys: for server-side
    /// code only (an account's own keys cannot, and the management API shows them
    /// read-only). Credits given here start (or restart) the account's balance at their
    /// `remaining`. Every key of the account is looked up again at its next request.
    pub async fn set_account_limits(
        &self,
        account: &AccountId,
        limits: UsageLimits,
    ) -> Result<(), ManageError> {
        self.validate_usage(&limits, None).await?;
        let _write = self.write.lock().await;
        self.store.set_account_usage(account, &limits).await?;
        if let Some(c) = &limits.credits {
            self.set(Owner::Account(account), &limits, c.remaining)
                .await?;
        }
        // Every key of the account carries these settings in its cached copy.
        self.gate.invalidate_all();
        tracing::info!(target: "keygate::audit", action = "set_account_usage", account_id = account.as_str(), "account usage settings changed");
        Ok(())
    }

    /// After a key's credits were set, or it moved to another plan, starts its balance
    /// at the `remaining` of the credits now in effect (its own, else its plan's).
    pub(crate) async fn start_credits(&self, record: &KeyRecord) -> Result<(), ManageError> {
        let limits = &record.usage.own;
        let effective = self
            .gate
            .metering()
            .plans
            .effective(limits)
            .unwrap_or_default();
        if let Some(c) = &effective.credits {
            self.set(Owner::Key(&record.id), limits, c.remaining)
                .await?;
        }
        Ok(())
    }

    fn credits_policy(&self, limits: &UsageLimits) -> Result<MeterPolicy, ManageError> {
        let metering = self.gate.metering();
        let effective = metering.plans.effective(limits).unwrap_or_default();
        let credits = effective.credits.ok_or_else(|| {
            ManageError::InvalidRequest("credits: this key or account has no credits".into())
        })?;
        Ok(MeterPolicy::credits(&credits, metering.settings.offset))
    }

    async fn adjust(
        &self,
        owner: Owner<'_>,
        limits: &UsageLimits,
        delta: i64,
    ) -> Result<i64, ManageError> {
        let policy = self.credits_policy(limits)?;
        let ledger = self.ledger()?;
        let meter = owner.credits();
        // What this instance holds goes back first, so that a spend applies to it too.
        self.gate.metering().settle_meter(&meter).await;
        let balance = ledger.adjust(&meter, &policy, delta, self.now()).await?;
        tracing::info!(target: "keygate::audit", action = "adjust_credits", meter = ?meter, delta, "credits adjusted");
        Ok(balance)
    }

    async fn set(
        &self,
        owner: Owner<'_>,
        limits: &UsageLimits,
        balance: i64,
    ) -> Result<(), ManageError> {
        let policy = self.credits_policy(limits)?;
        let ledger = self.ledger()?;
        let meter = owner.credits();
        // What this instance holds was taken from the old balance: give it back first,
        // so the new balance is exact here.
        self.gate.metering().settle_meter(&meter).await;
        ledger.set(&meter, &policy, balance, self.now()).await?;
        tracing::info!(target: "keygate::audit", action = "set_credits", meter = ?meter, balance, "credits set");
        Ok(())
    }

    fn ledger(&self) -> Result<std::sync::Arc<dyn crate::metering::CreditLedger>, ManageError> {
        self.gate.metering().ledger.clone().ok_or_else(|| {
            ManageError::InvalidRequest("credits: this deployment has no credit ledger".into())
        })
    }
}
