//! Leases from a ledger across the network, deterministically: a `MemoryLedger` that
//! says it is not in process, and a paused tokio clock for the lease agent's ticks.
//! Units are returned when a meter goes idle, and carried over (never dropped) when the
//! cache entry holding them is invalidated, refreshed or evicted.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use keygate::key::KeyDigest;
use keygate::metering::{CreditLedger, Credits, MemoryLedger, Meter, MeterPolicy, Reservation};
use keygate::store::{KeyRecord, MemoryStore};
use keygate::{KeyManager, KeyStore, Keygate, NewKey, StoreError};

use crate::common::{get, send, Echo};

const GRANTED: i64 = 1_000;
const LEASE: u64 = 10;

/// A `MemoryLedger` that does not offer itself as in process: leases go through the agent.
#[derive(Clone, Default)]
struct Remote(Arc<MemoryLedger>);

#[async_trait::async_trait]
impl CreditLedger for Remote {
    async fn reserve(
        &self,
        m: &Meter,
        p: &MeterPolicy,
        want: u64,
        now: SystemTime,
    ) -> Result<Reservation, StoreError> {
        self.0.reserve(m, p, want, now).await
    }
    async fn release(&self, m: &Meter, period: u64, units: u64) -> Result<(), StoreError> {
        self.0.release(m, period, units).await
    }
    async fn adjust(
        &self,
        m: &Meter,
        p: &MeterPolicy,
        delta: i64,
        now: SystemTime,
    ) -> Result<i64, StoreError> {
        self.0.adjust(m, p, delta, now).await
    }
    async fn set(
        &self,
        m: &Meter,
        p: &MeterPolicy,
        balance: i64,
        now: SystemTime,
    ) -> Result<(), StoreError> {
        self.0.set(m, p, balance, now).await
    }
    async fn balance(
        &self,
        m: &Meter,
        p: &MeterPolicy,
        now: SystemTime,
    ) -> Result<i64, StoreError> {
        self.0.balance(m, p, now).await
    }
    async fn delete(&self, m: &Meter) -> Result<(), StoreError> {
        self.0.delete(m).await
    }
}

/// A `MemoryStore` whose keys carry `GRANTED` credits.
struct Credited(Arc<MemoryStore>);

#[async_trait::async_trait]
impl KeyStore for Credited {
    async fn find_by_digest(&self, digest: &KeyDigest) -> Result<Option<KeyRecord>, StoreError> {
        let mut record = self.0.find_by_digest(digest).await?;
        if let Some(r) = &mut record {
            r.usage.own.credits = Some(Credits::new(GRANTED));
        }
        Ok(record)
    }
}

struct Setup {
    gate: Keygate,
    ledger: Remote,
    meter: Meter,
    key: String,
}

async fn setup() -> Setup {
    let store = Arc::new(MemoryStore::new());
    let (_, manager): (Keygate, KeyManager) = Keygate::managed(store.clone()).build();
    let created = manager
        .create("acct_1".into(), NewKey::named("metered"))
        .await
        .unwrap();
    let ledger = Remote::default();
    let gate = Keygate::builder(Credited(store))
        .credit_ledger(ledger.clone())
        .usage_lease(LEASE)
        .build();
    Setup {
        gate,
        ledger,
        meter: Meter::KeyCredits(created.view.id),
        key: created.key.expose_secret().to_owned(),
    }
}

impl Setup {
    async fn balance(&self) -> i64 {
        let policy = MeterPolicy::new(GRANTED, None, keygate::metering::UtcOffset::UTC);
        self.ledger
            .balance(&self.meter, &policy, SystemTime::now())
            .await
            .unwrap()
    }
    async fn request(&self) -> u16 {
        let mut svc = tower::Layer::layer(&self.gate.layer(), Echo);
        send(&mut svc, get("/", Some(&self.key)))
            .await
            .status
            .as_u16()
    }
}

/// Lets the agent's spawned work run to completion (a paused clock never moves by itself).
async fn settle() {
    for _ in 0..50 {
        tokio::task::yield_now().await;
    }
}

#[tokio::test(start_paused = true)]
async fn the_first_request_is_admitted_on_a_lease_taken_during_the_lookup() {
    let s = setup().await;
    assert_eq!(s.request().await, 200);
    assert_eq!(s.balance().await, GRANTED - LEASE as i64, "one lease out");
    s.gate.return_leases().await;
    assert_eq!(s.balance().await, GRANTED - 1, "the unspent units are back");
}

#[tokio::test(start_paused = true)]
async fn an_idle_meter_returns_its_units_within_five_seconds() {
    let s = setup().await;
    for _ in 0..3 {
        assert_eq!(s.request().await, 200);
    }
    settle().await;
    assert_eq!(s.balance().await, GRANTED - LEASE as i64);
    for _ in 0..5 {
        tokio::time::advance(Duration::from_secs(1)).await;
        settle().await;
    }
    assert_eq!(
        s.balance().await,
        GRANTED - 3,
        "returned within 5 s of the last request"
    );
}

#[tokio::test(start_paused = true)]
async fn a_busy_meter_is_topped_up_before_it_runs_dry() {
    let s = setup().await;
    for _ in 0..(3 * LEASE) {
        assert_eq!(s.request().await, 200, "never refused for want of a lease");
        settle().await;
    }
    s.gate.return_leases().await;
    assert_eq!(s.balance().await, GRANTED - 3 * LEASE as i64);
}

#[tokio::test(start_paused = true)]
async fn units_survive_the_invalidation_refresh_and_eviction_of_the_cache_entry() {
    let s = setup().await;
    assert_eq!(s.request().await, 200);
    let out = s.balance().await;
    // Invalidation (as a revocation elsewhere or a plan change does): the next request
    // loads the key again and spends from the same cell, without a new lease.
    s.gate.invalidate_all();
    assert_eq!(s.request().await, 200);
    assert_eq!(s.balance().await, out, "the lease was carried over");
    // Refresh: the entry outlives its freshness and is loaded again.
    tokio::time::advance(Duration::from_secs(31)).await;
    assert_eq!(s.request().await, 200);
    // Eviction: the entry is gone; its cell's units go back, none is dropped.
    s.gate.invalidate_all();
    s.gate.return_leases().await;
    assert_eq!(s.balance().await, GRANTED - 3, "every unspent unit is back");
}
