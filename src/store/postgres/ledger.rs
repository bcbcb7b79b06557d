//! [`CreditLedger`] for [`PgStore`]: the balance of record of every meter, one row each in
//! `meters`, changed only by single statements that lock the row they change.
//!
//! A row holds the balance and the *period index* it belongs to. Every statement that
//! reads a balance first brings it to the caller's current period, in the same
//! statement: for each refill boundary passed since the row's period, a credit top-up
//! (`min(balance + amount, amount)`, so a debt left by after-the-fact charges is paid off
//! first; a top-up never lowers a balance) or a quota reset (`limit`). The period only ever moves forward
//! (`GREATEST(period, $now)`), so however many instances run, and whatever their clocks
//! say, each boundary refills a meter once.
//!
//! A reservation takes `LEAST(want, balance, GREATEST(1, ceil(balance / parts)))`: with
//! `parts > 1` (leases, [`CreditLedger::reserve_fair`]) a small balance is shared out
//! rather than taken whole by one instance.
//!
//! Reservations and adjustments are `INSERT ... ON CONFLICT DO UPDATE` statements: a
//! meter used for the first time starts at its policy's initial balance, and concurrent
//! first uses cannot both start it. A release adds units back only while the row is
//! still in the reservation's period: units of a period that has ended are dropped (the
//! refill replaced them).

use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use rand::distr::{Alphanumeric, SampleString};

pub(super) use super::ledger_sql::LedgerSql;
use super::{pg_error, PgStore};
use crate::metering::{CreditLedger, Meter, MeterPolicy, Reservation};
use crate::store::StoreError;

/// A meter's row key: owner kind, owner id, meter name (`credits`, `quota:<period>`).
fn row_key(meter: &Meter) -> (&'static str, &str, String) {
    match meter {
        Meter::KeyCredits(id) => ("key", id.as_str(), "credits".to_owned()),
        Meter::AccountCredits(id) => ("account", id.as_str(), "credits".to_owned()),
        Meter::KeyQuota(id, period) => ("key", id.as_str(), format!("quota:{}", period.as_str())),
        Meter::AccountQuota(id, period) => {
            ("account", id.as_str(), format!("quota:{}", period.as_str()))
        }
    }
}

/// What the statements need of a policy at `now`.
struct Terms {
    initial: i64,
    period: i64,
    top_up: Option<i64>,
    reset: Option<i64>,
    low: Option<i64>,
}

impl Terms {
    fn new(policy: &MeterPolicy, now: SystemTime) -> Self {
        let amount = policy.refill.map(|r| to_i64(r.amount));
        let (top_up, reset) = if policy.resets {
            (None, amount)
        } else {
            (amount, None)
        };
        Self {
            initial: policy.initial,
            period: to_i64(policy.period(now)),
            top_up,
            reset,
            low: policy.low.map(to_i64),
        }
    }
}

/// What a statement that may cross a low-credit threshold needs to write its event.
struct Notice {
    id: String,
    timestamp: String,
    now: SystemTime,
    /// `None`: no event is written (this store keeps no webhooks, or none take it).
    deadline: Option<SystemTime>,
}

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn to_u64(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

impl PgStore {
    /// A reservation of `want` units with a fair share of `parts` (1: none).
    async fn reserve_parts(
        &self,
        meter: &Meter,
        policy: &MeterPolicy,
        want: u64,
        parts: u64,
        now: SystemTime,
    ) -> Result<Reservation, StoreError> {
        let terms = Terms::new(policy, now);
        let parts = Some(to_i64(parts.max(1)));
        let row = self
            .upsert(
                &self.inner.ledger.reserve,
                meter,
                &terms,
                to_i64(want),
                parts,
                now,
            )
            .await?
            .ok_or_else(|| StoreError::unavailable("the reservation returned no row"))?;
        Ok(Reservation {
            balance: row.get(0),
            granted: to_u64(row.get(1)),
            period: to_u64(row.get(2)),
            next_refill: policy.next_refill(now),
        })
    }

    /// The event parameters of a statement at `now`: an event is written only when
    /// webhooks keep their events in this store and take `credits.low`.
    fn notice(&self, terms: &Terms, now: SystemTime) -> Notice {
        let horizon = self.inner.low_credit_horizon.load(Ordering::Acquire);
        if horizon == 0 || terms.low.is_none() {
            return Notice {
                id: String::new(),
                timestamp: String::new(),
                now,
                deadline: None,
            };
        }
        Notice {
            id: format!("msg_{}", Alphanumeric.sample_string(&mut rand::rng(), 24)),
            timestamp: crate::manage::rfc3339(now),
            now,
            deadline: Some(now + Duration::from_secs(horizon)),
        }
    }

    /// Sends `credits.low` of meters this store keeps through its webhook outbox, kept
    /// `horizon` for delivery (set by `WebhooksBuilder::postgres`).
    #[cfg_attr(not(feature = "webhooks"), allow(dead_code))]
    pub(crate) fn send_low_credits(&self, horizon: Duration) {
        let secs = horizon.as_secs().max(1);
        self.inner.low_credit_horizon.store(secs, Ordering::Release);
    }

    /// Runs one of the statements that take (key, initial, period, `n`, top-up, reset,
    /// low) and the parameters of a `credits.low` event; the reservation also takes the
    /// parts of its fair share (`parts`).
    async fn upsert(
        &self,
        sql: &str,
        meter: &Meter,
        terms: &Terms,
        n: i64,
        parts: Option<i64>,
        now: SystemTime,
    ) -> Result<Option<tokio_postgres::Row>, StoreError> {
        let notice = self.notice(terms, now);
        let (kind, owner, name) = row_key(meter);
        self.timed(async {
            let client = self.client().await?;
            let stmt = client.prepare_cached(sql).await.map_err(pg_error)?;
            let mut params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = vec![
                &kind,
                &owner,
                &name,
                &terms.initial,
                &terms.period,
                &n,
                &terms.top_up,
                &terms.reset,
                &terms.low,
                &notice.id,
                &notice.timestamp,
                &notice.now,
                &notice.deadline,
            ];
            if let Some(parts) = &parts {
                params.push(parts);
            }
            client.query_opt(&stmt, &params).await.map_err(pg_error)
        })
        .await
    }
}

#[async_trait]
impl CreditLedger for PgStore {
    async fn reserve(
        &self,
        meter: &Meter,
        policy: &MeterPolicy,
        want: u64,
        now: SystemTime,
    ) -> Result<Reservation, StoreError> {
        self.reserve_parts(meter, policy, want, 1, now).await
    }

    async fn reserve_fair(
        &self,
        meter: &Meter,
        policy: &MeterPolicy,
        want: u64,
        parts: u64,
        now: SystemTime,
    ) -> Result<Reservation, StoreError> {
        self.reserve_parts(meter, policy, want, parts, now).await
    }

    async fn release(&self, meter: &Meter, period: u64, units: u64) -> Result<(), StoreError> {
        if units == 0 {
            return Ok(());
        }
        let (kind, owner, name) = row_key(meter);
        let (period, units) = (to_i64(period), to_i64(units));
        self.timed(async {
            let client = self.client().await?;
            let stmt = client
                .prepare_cached(&self.inner.ledger.release)
                .await
                .map_err(pg_error)?;
            client
                .execute(&stmt, &[&kind, &owner, &name, &period, &units])
                .await
                .map_err(pg_error)?;
            Ok(())
        })
        .await
    }

    async fn adjust(
        &self,
        meter: &Meter,
        policy: &MeterPolicy,
        delta: i64,
        now: SystemTime,
    ) -> Result<i64, StoreError> {
        let terms = Terms::new(policy, now);
        let row = self
            .upsert(&self.inner.ledger.adjust, meter, &terms, delta, None, now)
            .await?
            .ok_or_else(|| StoreError::unavailable("the adjustment returned no row"))?;
        Ok(row.get(0))
    }

    async fn set(
        &self,
        meter: &Meter,
        policy: &MeterPolicy,
        balance: i64,
        now: SystemTime,
    ) -> Result<(), StoreError> {
        let (kind, owner, name) = row_key(meter);
        let terms = Terms::new(policy, now);
        let (period, low) = (terms.period, terms.low);
        self.timed(async {
            let client = self.client().await?;
            let stmt = client
                .prepare_cached(&self.inner.ledger.set)
                .await
                .map_err(pg_error)?;
            client
                .execute(&stmt, &[&kind, &owner, &name, &balance, &period, &low])
                .await
                .map_err(pg_error)?;
            Ok(())
        })
        .await
    }

    async fn balance(
        &self,
        meter: &Meter,
        policy: &MeterPolicy,
        now: SystemTime,
    ) -> Result<i64, StoreError> {
        let (kind, owner, name) = row_key(meter);
        let terms = Terms::new(policy, now);
        let row = self
            .timed(async {
                let client = self.client().await?;
                let stmt = client
                    .prepare_cached(&self.inner.ledger.balance)
                    .await
                    .map_err(pg_error)?;
                client
                    .query_opt(
                        &stmt,
                        &[
                            &kind,
                            &owner,
                            &name,
                            &terms.period,
                            &terms.top_up,
                            &terms.reset,
                        ],
                    )
                    .await
                    .map_err(pg_error)
            })
            .await?;
        Ok(row.map_or(terms.initial, |r| r.get(0)))
    }

    async fn delete(&self, meter: &Meter) -> Result<(), StoreError> {
        let (kind, owner, name) = row_key(meter);
        self.timed(async {
            let client = self.client().await?;
            let stmt = client
                .prepare_cached(&self.inner.ledger.delete)
                .await
                .map_err(pg_error)?;
            client
                .execute(&stmt, &[&kind, &owner, &name])
                .await
                .map_err(pg_error)?;
            Ok(())
        })
        .await
    }
}
