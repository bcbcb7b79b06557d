//! The builder's usage-limit settings: the ledger, default plans, lease sizes and the
//! calendar (see [`crate::metering`]).

use std::sync::Arc;

use super::KeygateBuilder;
use crate::metering::{CreditLedger, Plan, UtcOffset};

impl<M> KeygateBuilder<M> {
    /// Where balances of credits and quotas are kept (see [`crate::metering`]).
    /// Default: the store's own ledger ([`crate::KeyStore::credit_ledger`]: [`crate::MemoryStore`]
    /// and `PgStore` have one). A key with credits or quotas on a gate with no ledger is
    /// refused (`usage_exceeded`, fail closed).
    pub fn credit_ledger(mut self, ledger: impl CreditLedger) -> Self {
        self.ledger = Some(Arc::new(ledger));
        self
    }

    /// Adds a named plan (replacing one of the same name); keys and accounts refer to it
    /// by name. See [`Plan`] and [`crate::Keygate::set_plan`] to change it later.
    pub fn plan(mut self, plan: Plan) -> Self {
        self.plans.retain(|p| p.name != plan.name);
        self.plans.push(plan);
        self
    }

    /// How many units an instance first leases from the ledger, per meter. Default: 64.
    /// A busy meter's lease grows from it up to
    /// [`usage_lease_max`](Self::usage_lease_max), and an idle one shrinks back to it.
    pub fn usage_lease(mut self, units: u64) -> Self {
        self.metering.lease = units.max(1);
        self
    }

    /// The most a busy meter's lease grows to, per instance (see
    /// [`crate::metering`]): a lease doubles when its cell ran dry or asked again
    /// within 250 ms, and shrinks back to [`usage_lease`](Self::usage_lease) when the
    /// meter is idle. Default: 8 × `usage_lease`. A larger one takes the ledger less
    /// often; a smaller one strands less when an instance dies and leaves less in other
    /// instances' cells when one finds the ledger empty: one instance holds under
    /// 1.5 × this per meter.
    pub fn usage_lease_max(mut self, units: u64) -> Self {
        self.metering.lease_max = units.max(1);
        self
    }

    /// The offset of calendar days, weeks and months for refills and quotas. Default:
    /// UTC.
    pub fn calendar_offset(mut self, offset: UtcOffset) -> Self {
        self.metering.offset = offset;
        self
    }
}
