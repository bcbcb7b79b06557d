//! [`MemoryStore`] as a [`CreditLedger`]: its [`MemoryLedger`].

use std::time::SystemTime;

use async_trait::async_trait;

use super::MemoryStore;
use crate::metering::{CreditLedger, MemoryLedger, Meter, MeterPolicy, Reservation};
use crate::store::StoreError;

#[async_trait]
impl CreditLedger for MemoryStore {
    async fn reserve(
        &self,
        meter: &Meter,
        policy: &MeterPolicy,
        want: u64,
        now: SystemTime,
    ) -> Result<Reservation, StoreError> {
        Ok(self.ledger.reserve_now(meter, policy, want, now))
    }
    async fn reserve_fair(
        &self,
        meter: &Meter,
        policy: &MeterPolicy,
        want: u64,
        parts: u64,
        now: SystemTime,
    ) -> Result<Reservation, StoreError> {
        Ok(self
            .ledger
            .reserve_fair_now(meter, policy, want, parts, now))
    }
    async fn release(&self, meter: &Meter, period: u64, units: u64) -> Result<(), StoreError> {
        self.ledger.release_now(meter, period, units);
        Ok(())
    }
    async fn adjust(
        &self,
        meter: &Meter,
        policy: &MeterPolicy,
        delta: i64,
        now: SystemTime,
    ) -> Result<i64, StoreError> {
        Ok(self.ledger.adjust_now(meter, policy, delta, now))
    }
    async fn set(
        &self,
        meter: &Meter,
        policy: &MeterPolicy,
        balance: i64,
        now: SystemTime,
    ) -> Result<(), StoreError> {
        self.ledger.set_now(meter, policy, balance, now);
        Ok(())
    }
    async fn balance(
        &self,
        meter: &Meter,
        policy: &MeterPolicy,
        now: SystemTime,
    ) -> Result<i64, StoreError> {
        Ok(self.ledger.balance_now(meter, policy, now))
    }
    async fn delete(&self, meter: &Meter) -> Result<(), StoreError> {
        self.ledger.delete_now(meter);
        Ok(())
    }
    fn local(&self) -> Option<&MemoryLedger> {
        Some(&self.ledger)
    }
}
