//! The balance of record: the [`CreditLedger`] trait, and the in-process ledger.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::SystemTime;

use async_trait::async_trait;

use super::low::{self, LowCreditHook, LowCreditNotices, LowCredits};
use super::{Meter, MeterPolicy, Reservation};
use crate::store::StoreError;

/// Where balances are kept for good: one balance per [`Meter`], with the period index its
/// last refill brought it to. Instances lease units from it in small batches and return
/// what they did not spend (see [`crate::metering`]).
///
/// Refills are applied lazily by every call that takes a `policy` and a `now`: a meter
/// whose stored period is older than `policy.period(now)` is first carried forward with
/// [`MeterPolicy::refilled`]. A meter the ledger has never seen starts at
/// `policy.initial` in the current period. Since edges are fixed points in time, a refill
/// happens once however many instances call.
///
/// Implementations: [`crate::MemoryStore`] (in process; also reachable through
/// [`CreditLedger::local`], so the request path can lease from it without waiting), and
/// `PgStore` with the `postgres` feature (durable, one row per meter). Object-safe.
#[async_trait]
pub trait CreditLedger: Send + Sync + 'static {
    /// Applies the refills due by `now`, then takes `min(want, max(balance, 0))` units.
    async fn reserve(
        &self,
        meter: &Meter,
        policy: &MeterPolicy,
        want: u64,
        now: SystemTime,
    ) -> Result<Reservation, StoreError>;

    /// [`CreditLedger::reserve`] with a fair share: grants at most
    /// `max(1, ceil(balance / parts))` of the balance held (after refills), so that when
    /// the balance is small, no single instance takes it all while others starve. With
    /// `parts = 1` it is `reserve`. Leases from a ledger across the network use it (see
    /// [`crate::metering`]'s bounds). The default ignores `parts` and calls
    /// [`CreditLedger::reserve`]: a ledger that keeps that default gives up the fair
    /// share, not exactness.
    async fn reserve_fair(
        &self,
        meter: &Meter,
        policy: &MeterPolicy,
        want: u64,
        parts: u64,
        now: SystemTime,
    ) -> Result<Reservation, StoreError> {
        let _ = parts;
        self.reserve(meter, policy, want, now).await
    }

    /// Gives back `units` of a reservation made in `period`. Units of a period that has
    /// since ended are dropped (the refill at its end already topped the meter up).
    async fn release(&self, meter: &Meter, period: u64, units: u64) -> Result<(), StoreError>;

    /// After refills due by `now`, adds `delta`: a refund (> 0) or an after-the-fact
    /// charge (< 0), which may take the balance below zero. Returns the new balance.
    async fn adjust(
        &self,
        meter: &Meter,
        policy: &MeterPolicy,
        delta: i64,
        now: SystemTime,
    ) -> Result<i64, StoreError>;

    /// Sets the balance as of `now` (an operator's decision; the current period is
    /// stored with it).
    async fn set(
        &self,
        meter: &Meter,
        policy: &MeterPolicy,
        balance: i64,
        now: SystemTime,
    ) -> Result<(), StoreError>;

    /// The balance as of `now`, after the refills due (units leased by instances are not
    /// in it).
    async fn balance(
        &self,
        meter: &Meter,
        policy: &MeterPolicy,
        now: SystemTime,
    ) -> Result<i64, StoreError>;

    /// Forgets the meter (its key or account was deleted).
    async fn delete(&self, meter: &Meter) -> Result<(), StoreError>;

    /// The same ledger in this process, which answers without waiting: the request path
    /// then takes its leases inline. `None` (the default) for a ledger across the
    /// network, whose leases are taken in the background.
    fn local(&self) -> Option<&MemoryLedger> {
        None
    }
}

#[async_trait]
impl<L: CreditLedger + ?Sized> CreditLedger for std::sync::Arc<L> {
    async fn reserve(
        &self,
        meter: &Meter,
        policy: &MeterPolicy,
        want: u64,
        now: SystemTime,
    ) -> Result<Reservation, StoreError> {
        (**self).reserve(meter, policy, want, now).await
    }
    async fn reserve_fair(
        &self,
        meter: &Meter,
        policy: &MeterPolicy,
        want: u64,
        parts: u64,
        now: SystemTime,
    ) -> Result<Reservation, StoreError> {
        (**self).reserve_fair(meter, policy, want, parts, now).await
    }
    async fn release(&self, meter: &Meter, period: u64, units: u64) -> Result<(), StoreError> {
        (**self).release(meter, period, units).await
    }
    async fn adjust(
        &self,
        meter: &Meter,
        policy: &MeterPolicy,
        delta: i64,
        now: SystemTime,
    ) -> Result<i64, StoreError> {
        (**self).adjust(meter, policy, delta, now).await
    }
    async fn set(
        &self,
        meter: &Meter,
        policy: &MeterPolicy,
        balance: i64,
        now: SystemTime,
    ) -> Result<(), StoreError> {
        (**self).set(meter, policy, balance, now).await
    }
    async fn balance(
        &self,
        meter: &Meter,
        policy: &MeterPolicy,
        now: SystemTime,
    ) -> Result<i64, StoreError> {
        (**self).balance(meter, policy, now).await
    }
    async fn delete(&self, meter: &Meter) -> Result<(), StoreError> {
        (**self).delete(meter).await
    }
    fn local(&self) -> Option<&MemoryLedger> {
        (**self).local()
    }
}

/// Balance and period of one meter.
#[derive(Clone, Copy, Debug)]
struct Row {
    balance: i64,
    period: u64,
    /// `credits.low` was sent for the current dip below the threshold (see [`low`]).
    low_sent: bool,
}

/// The in-process ledger: every meter's balance behind one mutex, which only leases,
/// returns and management take (never a request that its cell can serve). Lost when the
/// process exits; [`crate::MemoryStore`] holds one.
#[derive(Debug, Default)]
pub struct MemoryLedger {
    rows: Mutex<HashMap<Meter, Row>>,
    /// Where low-credit crossings go (the in-process webhooks), if anywhere.
    low_credits: LowCreditNotices,
}

impl MemoryLedger {
    /// An empty ledger.
    pub fn new() -> Self {
        Self::default()
    }

    fn with_row<T>(
        &self,
        meter: &Meter,
        policy: &MeterPolicy,
        now: SystemTime,
        f: impl FnOnce(&mut Row) -> T,
    ) -> T {
        let period = policy.period(now);
        let mut rows = self.rows.lock().unwrap_or_else(|p| p.into_inner());
        let row = rows.entry(meter.clone()).or_insert(Row {
            balance: policy.initial,
            period,
            low_sent: low::set(policy.initial, policy.low),
        });
        if row.period < period {
            row.balance = policy.refilled(row.balance, row.period, period);
            row.period = period;
            low::raised(&mut row.low_sent, row.balance, policy.low);
        }
        f(row)
    }

    /// Sends low-credit crossings to `hook` (outside the ledger's lock).
    #[cfg_attr(not(feature = "webhooks"), allow(dead_code))]
    pub(crate) fn on_low_credits(&self, hook: LowCreditHook) {
        self.low_credits.set(hook);
    }

    fn crossed(
        &self,
        crossed: bool,
        meter: &Meter,
        policy: &MeterPolicy,
        balance: i64,
        now: SystemTime,
    ) {
        if let (true, Some(threshold)) = (crossed, policy.low) {
            self.low_credits.send(LowCredits {
                meter: meter.clone(),
                remaining: balance,
                threshold,
                at: now,
            });
        }
    }

    /// [`CreditLedger::reserve`], without waiting.
    pub fn reserve_now(
        &self,
        meter: &Meter,
        policy: &MeterPolicy,
        want: u64,
        now: SystemTime,
    ) -> Reservation {
        self.reserve_fair_now(meter, policy, want, 1, now)
    }

    /// [`CreditLedger::reserve_fair`], without waiting.
    pub fn reserve_fair_now(
        &self,
        meter: &Meter,
        policy: &MeterPolicy,
        want: u64,
        parts: u64,
        now: SystemTime,
    ) -> Reservation {
        let next_refill = policy.next_refill(now);
        let (r, crossed) = self.with_row(meter, policy, now, |row| {
            let available = u64::try_from(row.balance.max(0)).unwrap_or(0);
            let granted = want.min(fair_share(available, parts));
            row.balance -= i64::try_from(granted).unwrap_or(i64::MAX);
            let crossed = granted > 0 && low::spent(&mut row.low_sent, row.balance, policy.low);
            let r = Reservation {
                granted,
                period: row.period,
                next_refill,
                balance: row.balance,
            };
            (r, crossed)
        });
        self.crossed(crossed, meter, policy, r.balance, now);
        r
    }

    /// [`CreditLedger::release`], without waiting.
    pub fn release_now(&self, meter: &Meter, period: u64, units: u64) {
        let mut rows = self.rows.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(row) = rows.get_mut(meter) {
            if row.period == period {
                row.balance = row
                    .balance
                    .saturating_add(i64::try_from(units).unwrap_or(i64::MAX));
            }
        }
    }

    /// [`CreditLedger::adjust`], without waiting.
    pub fn adjust_now(
        &self,
        meter: &Meter,
        policy: &MeterPolicy,
        delta: i64,
        now: SystemTime,
    ) -> i64 {
        let (balance, crossed) = self.with_row(meter, policy, now, |row| {
            row.balance = row.balance.saturating_add(delta);
            let crossed = if delta < 0 {
                low::spent(&mut row.low_sent, row.balance, policy.low)
            } else {
                low::raised(&mut row.low_sent, row.balance, policy.low);
                false
            };
            (row.balance, crossed)
        });
        self.crossed(crossed, meter, policy, balance, now);
        balance
    }

    /// [`CreditLedger::set`], without waiting.
    pub fn set_now(&self, meter: &Meter, policy: &MeterPolicy, balance: i64, now: SystemTime) {
        self.with_row(meter, policy, now, |row| {
            row.balance = balance;
            row.low_sent = low::set(balance, policy.low);
        });
    }

    /// [`CreditLedger::balance`], without waiting.
    pub fn balance_now(&self, meter: &Meter, policy: &MeterPolicy, now: SystemTime) -> i64 {
        self.with_row(meter, policy, now, |row| row.balance)
    }

    /// [`CreditLedger::delete`], without waiting.
    pub fn delete_now(&self, meter: &Meter) {
        let mut rows = self.rows.lock().unwrap_or_else(|p| p.into_inner());
        rows.remove(meter);
    }

    /// Forgets every meter of key `id` (its credits and quotas), not its account's: the
    /// key was deleted.
    pub(crate) fn delete_key_meters(&self, id: &crate::store::record::KeyId) {
        let mut rows = self.rows.lock().unwrap_or_else(|p| p.into_inner());
        rows.retain(|meter, _| meter.key_id() != Some(id));
    }
}

/// What a fair reservation may take of `available` units: `max(1, ceil(available /
/// parts))`, and never more than `available`.
pub(crate) fn fair_share(available: u64, parts: u64) -> u64 {
    available.min(available.div_ceil(parts.max(1)).max(1))
}

#[async_trait]
impl CreditLedger for MemoryLedger {
    async fn reserve(
        &self,
        meter: &Meter,
        policy: &MeterPolicy,
        want: u64,
        now: SystemTime,
    ) -> Result<Reservation, StoreError> {
        Ok(self.reserve_now(meter, policy, want, now))
    }
    async fn reserve_fair(
        &self,
        meter: &Meter,
        policy: &MeterPolicy,
        want: u64,
        parts: u64,
        now: SystemTime,
    ) -> Result<Reservation, StoreError> {
        Ok(self.reserve_fair_now(meter, policy, want, parts, now))
    }
    async fn release(&self, meter: &Meter, period: u64, units: u64) -> Result<(), StoreError> {
        self.release_now(meter, period, units);
        Ok(())
    }
    async fn adjust(
        &self,
        meter: &Meter,
        policy: &MeterPolicy,
        delta: i64,
        now: SystemTime,
    ) -> Result<i64, StoreError> {
        Ok(self.adjust_now(meter, policy, delta, now))
    }
    async fn set(
        &self,
        meter: &Meter,
        policy: &MeterPolicy,
        balance: i64,
        now: SystemTime,
    ) -> Result<(), StoreError> {
        self.set_now(meter, policy, balance, now);
        Ok(())
    }
    async fn balance(
        &self,
        meter: &Meter,
        policy: &MeterPolicy,
        now: SystemTime,
    ) -> Result<i64, StoreError> {
        Ok(self.balance_now(meter, policy, now))
    }
    async fn delete(&self, meter: &Meter) -> Result<(), StoreError> {
        self.delete_now(meter);
        Ok(())
    }
    fn local(&self) -> Option<&MemoryLedger> {
        Some(self)
    }
}

#[cfg(test)]
mod tests;
