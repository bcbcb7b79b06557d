//! Usage limits (provisional skeleton, replaced by the metering-core types on merge).
#![allow(missing_docs)]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;

use crate::store::record::{AccountId, KeyId};
use crate::store::StoreError;

/// A calendar period of a quota.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum QuotaPeriod {
    Day,
    Week,
    Month,
}

/// A balance of record.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Meter {
    KeyCredits(KeyId),
    AccountCredits(AccountId),
    KeyQuota(KeyId, QuotaPeriod),
    AccountQuota(AccountId, QuotaPeriod),
}

/// How a meter refills.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefillRule {
    TopUp(u64),
    Reset(u64),
}

/// What a ledger needs to know of a meter's settings.
#[derive(Clone, Debug)]
pub struct MeterPolicy {
    pub initial: i64,
    pub refill: Option<(RefillRule, Duration)>,
}

impl MeterPolicy {
    pub fn initial(&self) -> i64 {
        self.initial
    }
    pub fn rule(&self) -> Option<RefillRule> {
        self.refill.map(|r| r.0)
    }
    pub fn period(&self, now: SystemTime) -> u64 {
        match self.refill {
            None => 0,
            Some((_, every)) => {
                let since = now.duration_since(UNIX_EPOCH).unwrap_or_default();
                (since.as_nanos() / every.as_nanos().max(1)) as u64
            }
        }
    }
    pub fn next_refill(&self, now: SystemTime) -> Option<SystemTime> {
        let (_, every) = self.refill?;
        Some(UNIX_EPOCH + every * (u32::try_from(self.period(now) + 1).ok()?))
    }
}

/// What a reservation got.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reservation {
    pub granted: u64,
    pub period: u64,
    pub next_refill: Option<SystemTime>,
    pub balance: i64,
}

/// The balance of record.
#[async_trait]
pub trait CreditLedger: Send + Sync + 'static {
    async fn reserve(
        &self,
        meter: &Meter,
        policy: &MeterPolicy,
        want: u64,
        now: SystemTime,
    ) -> Result<Reservation, StoreError>;
    async fn release(&self, meter: &Meter, period: u64, units: u64) -> Result<(), StoreError>;
    async fn adjust(
        &self,
        meter: &Meter,
        policy: &MeterPolicy,
        delta: i64,
        now: SystemTime,
    ) -> Result<i64, StoreError>;
    async fn set(
        &self,
        meter: &Meter,
        policy: &MeterPolicy,
        balance: i64,
        now: SystemTime,
    ) -> Result<(), StoreError>;
    async fn balance(
        &self,
        meter: &Meter,
        policy: &MeterPolicy,
        now: SystemTime,
    ) -> Result<i64, StoreError>;
    async fn delete(&self, meter: &Meter) -> Result<(), StoreError>;
}
