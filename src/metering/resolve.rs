//! What a cached key spends from: its meters, made once when the key is cached.

use std::sync::Arc;

use super::cell::{Metering, Meters};
use super::plan::Effective;
use super::{Meter, MeterPolicy};
use crate::store::record::{KeyRecord, RateLimit};

/// A key's meters and the rate limit its plans give it.
pub(crate) struct Resolved {
    pub(crate) meters: Option<Arc<Meters>>,
    pub(crate) plan_rate_limit: Option<RateLimit>,
}

impl Metering {
    /// The meters of `record` (its own, then its account's), `None` when nothing is
    /// metered. A plan that does not exist meters the key as refused (fail closed).
    pub(crate) fn resolve(self: &Arc<Self>, record: &KeyRecord) -> Resolved {
        let usage = &record.usage;
        if usage.is_empty() {
            return Resolved {
                meters: None,
                plan_rate_limit: None,
            };
        }
        let mut missing = None;
        let mut effective = |limits| match self.plans.effective(limits) {
            Ok(e) => e,
            Err(name) => {
                missing = Some(name);
                Effective::default()
            }
        };
        let own = effective(&usage.own);
        let account = usage
            .account
            .as_deref()
            .map(&mut effective)
            .unwrap_or_default();
        if let Some(plan) = &missing {
            tracing::warn!(key_id = %record.id, plan = %plan, "a key refers to a plan that does not exist; its requests are refused");
        }
        let offset = self.settings.offset;
        let mut cells = Vec::new();
        let quota_limits: Box<[u64]> = own
            .quotas
            .iter()
            .chain(&account.quotas)
            .map(|q| q.limit)
            .collect();
        for q in &own.quotas {
            let meter = Meter::KeyQuota(record.id.clone(), q.period);
            cells.push(self.cell(&meter, MeterPolicy::quota(q, offset)));
        }
        for q in &account.quotas {
            let meter = Meter::AccountQuota(record.account_id.clone(), q.period);
            cells.push(self.cell(&meter, MeterPolicy::quota(q, offset)));
        }
        if let Some(c) = &own.credits {
            let meter = Meter::KeyCredits(record.id.clone());
            cells.push(self.cell(&meter, MeterPolicy::credits(c, offset)));
        }
        if let Some(c) = &account.credits {
            let meter = Meter::AccountCredits(record.account_id.clone());
            cells.push(self.cell(&meter, MeterPolicy::credits(c, offset)));
        }
        let plan_rate_limit = own.rate_limit.or(account.rate_limit);
        if cells.is_empty() && missing.is_none() {
            return Resolved {
                meters: None,
                plan_rate_limit,
            };
        }
        Resolved {
            meters: Some(Arc::new(Meters {
                cells: cells.into_boxed_slice(),
                refused: missing.is_some(),
                metering: self.clone(),
                quota_limits,
            })),
            plan_rate_limit,
        }
    }
}

impl Metering {
    /// Forgets this instance's cells of key `id`'s own meters (it was deleted), with the
    /// units they hold: the ledger's rows of those meters went with the key, so nothing is
    /// returned. Its account's cells stay.
    pub(crate) fn forget_key(&self, id: &crate::store::record::KeyId) {
        self.cells.retain(|meter, cell| {
            let of_key = meter.key_id() == Some(id);
            if of_key {
                cell.forget();
            }
            !of_key
        });
    }
}
