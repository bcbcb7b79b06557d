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
//! Reservations and adjustments are `INSERT ... ON CONFLICT DO UPDATE` statements: a
//! meter used for the first time starts at its policy's initial balance, and concurrent
//! first uses cannot both start it. A release adds units back only while the row is
//! still in the reservation's period: units of a period that has ended are dropped (the
//! refill replaced them).

use std::time::SystemTime;

use async_trait::async_trait;

use super::{pg_error, PgStore};
use crate::metering::{CreditLedger, Meter, MeterPolicy, Reservation};
use crate::store::StoreError;

/// The ledger's statements, with the schema filled in.
pub(super) struct LedgerSql {
    reserve: String,
    adjust: String,
    set: String,
    release: String,
    balance: String,
    delete: String,
    /// Every meter of one key (`$1`): its credits and quotas, in the key's deletion.
    pub(super) delete_key_meters: String,
}

/// The balance of row `m` brought to the period in parameter `period`, with parameters
/// `top_up` (a credit top-up amount) and `reset` (a quota's limit), at most one not NULL.
fn refilled(period: &str, top_up: &str, reset: &str) -> String {
    format!(
        "(CASE WHEN m.period >= {period}::bigint THEN m.balance \
         WHEN {reset}::bigint IS NOT NULL THEN {reset}::bigint \
         WHEN {top_up}::bigint IS NOT NULL THEN GREATEST(m.balance, LEAST(m.balance::numeric \
         + ({period} - m.period)::numeric * {top_up}::bigint, {top_up}::bigint)::bigint) \
         ELSE m.balance END)"
    )
}

impl LedgerSql {
    pub(super) fn new(schema: &str) -> Self {
        let s = format!("\"{schema}\"");
        let key = "m.owner_kind = $1 AND m.owner_id = $2 AND m.meter = $3";
        let insert = format!(
            "INSERT INTO {s}.meters AS m (owner_kind, owner_id, meter, balance, period, granted) \
             VALUES ($1, $2, $3"
        );
        let conflict = "ON CONFLICT (owner_kind, owner_id, meter) DO UPDATE SET";
        // The upserts: $4 initial balance, $5 current period, $6 their operand, $7 top-up,
        // $8 reset.
        let r = refilled("$5", "$7", "$8");
        Self {
            // $6: units wanted.
            reserve: format!(
                "{insert}, $4::bigint - LEAST($6::bigint, GREATEST($4, 0)), $5::bigint, \
                 LEAST($6, GREATEST($4, 0))) \
                 {conflict} balance = {r} - LEAST($6, GREATEST({r}, 0)), \
                 granted = LEAST($6, GREATEST({r}, 0)), \
                 period = GREATEST(m.period, $5), updated_at = now() \
                 RETURNING m.balance, m.granted, m.period"
            ),
            // $6: units refunded (negative: charged).
            adjust: format!(
                "{insert}, $4::bigint + $6::bigint, $5::bigint, 0) {conflict} balance = {r} + $6, granted = 0, \
                 period = GREATEST(m.period, $5), updated_at = now() RETURNING m.balance"
            ),
            // $4: the new balance, as of period $5.
            set: format!(
                "{insert}, $4::bigint, $5::bigint, 0) {conflict} balance = $4, granted = 0, \
                 period = GREATEST(m.period, $5), updated_at = now()"
            ),
            // $4: the reservation's period, $5: units returned.
            release: format!(
                "UPDATE {s}.meters AS m SET balance = m.balance + $5::bigint, updated_at = now() \
                 WHERE {key} AND m.period = $4::bigint"
            ),
            // $4 current period, $5 top-up, $6 reset.
            balance: format!(
                "SELECT {} FROM {s}.meters m WHERE {key}",
                refilled("$4", "$5", "$6")
            ),
            delete: format!("DELETE FROM {s}.meters m WHERE {key}"),
            delete_key_meters: format!(
                "DELETE FROM {s}.meters WHERE owner_kind = 'key' AND owner_id = $1"
            ),
        }
    }
}

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
        }
    }
}

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn to_u64(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

impl PgStore {
    /// Runs one of the statements that take (key, initial, period, `n`, top-up, reset).
    async fn upsert(
        &self,
        sql: &str,
        meter: &Meter,
        terms: &Terms,
        n: i64,
    ) -> Result<Option<tokio_postgres::Row>, StoreError> {
        let (kind, owner, name) = row_key(meter);
        self.timed(async {
            let client = self.client().await?;
            let stmt = client.prepare_cached(sql).await.map_err(pg_error)?;
            client
                .query_opt(
                    &stmt,
                    &[
                        &kind,
                        &owner,
                        &name,
                        &terms.initial,
                        &terms.period,
                        &n,
                        &terms.top_up,
                        &terms.reset,
                    ],
                )
                .await
                .map_err(pg_error)
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
        let terms = Terms::new(policy, now);
        let row = self
            .upsert(&self.inner.ledger.reserve, meter, &terms, to_i64(want))
            .await?
            .ok_or_else(|| StoreError::unavailable("the reservation returned no row"))?;
        let period = to_u64(row.get(2));
        Ok(Reservation {
            balance: row.get(0),
            granted: to_u64(row.get(1)),
            period,
            next_refill: policy.next_refill(now),
        })
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
            .upsert(&self.inner.ledger.adjust, meter, &terms, delta)
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
        let period = Terms::new(policy, now).period;
        self.timed(async {
            let client = self.client().await?;
            let stmt = client
                .prepare_cached(&self.inner.ledger.set)
                .await
                .map_err(pg_error)?;
            client
                .execute(&stmt, &[&kind, &owner, &name, &balance, &period])
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
