//! Leases from a ledger across the network, at their edges, deterministically: a ledger
//! in this process that says it is not, whose reservations the test lets through one at
//! a time (the synchronisation point), a manual clock for the lease sizes, and a paused
//! tokio clock for the agent's ticks and the store timeout.
//!
//! A request whose cell is dry awaits the lease in flight with every other such
//! request, and is admitted when it comes (never refused while a lease is on its way);
//! it fails closed when the lease fails or does not come within the store timeout.
//! Leases grow while a meter is busy, up to the most allowed, and shrink back when it
//! goes idle; a small balance is shared out between instances.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use keygate::clock::{Clock, ManualClock};
use keygate::key::KeyDigest;
use keygate::metering::{CreditLedger, Credits, MemoryLedger, Meter, MeterPolicy, Reservation};
use keygate::store::{KeyRecord, MemoryStore};
use keygate::{KeyManager, KeyStore, Keygate, NewKey, StoreError};
use tokio::sync::{mpsc, Semaphore};

use crate::common::{get, send, Echo};

/// A `MemoryLedger` across a pretend network: every reservation takes a permit (the
/// test hands them out), reports that it started, and is recorded.
#[derive(Clone)]
struct Gated {
    ledger: Arc<MemoryLedger>,
    permits: Arc<Semaphore>,
    started: mpsc::UnboundedSender<()>,
    /// Units asked for by each reservation, in order.
    wants: Arc<Mutex<Vec<u64>>>,
    /// Reservations fail (the ledger answers an error).
    failing: Arc<AtomicBool>,
}

#[async_trait::async_trait]
impl CreditLedger for Gated {
    async fn reserve(
        &self,
        m: &Meter,
        p: &MeterPolicy,
        want: u64,
        now: SystemTime,
    ) -> Result<Reservation, StoreError> {
        self.reserve_fair(m, p, want, 1, now).await
    }
    async fn reserve_fair(
        &self,
        m: &Meter,
        p: &MeterPolicy,
        want: u64,
        parts: u64,
        now: SystemTime,
    ) -> Result<Reservation, StoreError> {
        let _ = self.started.send(());
        self.permits.acquire().await.unwrap().forget();
        self.wants.lock().unwrap().push(want);
        if self.failing.load(Ordering::SeqCst) {
            return Err(StoreError::unavailable("the ledger is down"));
        }
        Ok(self.ledger.reserve_fair_now(m, p, want, parts, now))
    }
    async fn release(&self, m: &Meter, period: u64, units: u64) -> Result<(), StoreError> {
        self.ledger.release(m, period, units).await
    }
    async fn adjust(
        &self,
        m: &Meter,
        p: &MeterPolicy,
        delta: i64,
        now: SystemTime,
    ) -> Result<i64, StoreError> {
        self.ledger.adjust(m, p, delta, now).await
    }
    async fn set(
        &self,
        m: &Meter,
        p: &MeterPolicy,
        balance: i64,
        now: SystemTime,
    ) -> Result<(), StoreError> {
        self.ledger.set(m, p, balance, now).await
    }
    async fn balance(
        &self,
        m: &Meter,
        p: &MeterPolicy,
        now: SystemTime,
    ) -> Result<i64, StoreError> {
        self.ledger.balance(m, p, now).await
    }
    async fn delete(&self, m: &Meter) -> Result<(), StoreError> {
        self.ledger.delete(m).await
    }
}

/// A `MemoryStore` whose keys carry `credits` credits.
struct Credited(Arc<MemoryStore>, i64);

#[async_trait::async_trait]
impl KeyStore for Credited {
    async fn find_by_digest(&self, digest: &KeyDigest) -> Result<Option<KeyRecord>, StoreError> {
        let mut record = self.0.find_by_digest(digest).await?;
        if let Some(r) = &mut record {
            r.usage.own.credits = Some(Credits::new(self.1));
        }
        Ok(record)
    }
}

struct Setup {
    store: Arc<MemoryStore>,
    ledger: Gated,
    started: mpsc::UnboundedReceiver<()>,
    meter: Meter,
    key: String,
    credits: i64,
    time: ManualClock,
    clock: Clock,
}

const LEASE: u64 = 10;
const LEASE_MAX: u64 = 80;

async fn setup(credits: i64) -> Setup {
    let store = Arc::new(MemoryStore::new());
    let (_, manager): (Keygate, KeyManager) = Keygate::managed(store.clone()).build();
    let created = manager
        .create("acct_1".into(), NewKey::named("metered"))
        .await
        .unwrap();
    let (started_tx, started) = mpsc::unbounded_channel();
    let ledger = Gated {
        ledger: Arc::new(MemoryLedger::new()),
        permits: Arc::new(Semaphore::new(0)),
        started: started_tx,
        wants: Arc::default(),
        failing: Arc::default(),
    };
    let (clock, time) = Clock::manual(UNIX_EPOCH + Duration::from_secs(1_800_000_000));
    Setup {
        store,
        ledger,
        started,
        meter: Meter::KeyCredits(created.view.id),
        key: created.key.expose_secret().to_owned(),
        credits,
        time,
        clock,
    }
}

impl Setup {
    /// An instance: a gate of its own over the shared store and ledger.
    fn instance(&self, store_timeout: Duration) -> Keygate {
        Keygate::builder(Credited(self.store.clone(), self.credits))
            .credit_ledger(self.ledger.clone())
            .clock(self.clock.clone())
            .store_timeout(store_timeout)
            .usage_lease(LEASE)
            .usage_lease_max(LEASE_MAX)
            .build()
    }

    /// Lets `n` reservations through.
    fn allow(&self, n: usize) {
        self.ledger.permits.add_permits(n);
    }

    /// Waits until a reservation has started (and waits for its permit).
    async fn reservation_started(&mut self) {
        self.started.recv().await.unwrap();
    }

    async fn balance(&self) -> i64 {
        let policy = MeterPolicy::new(self.credits, None, keygate::metering::UtcOffset::UTC);
        self.ledger
            .balance(&self.meter, &policy, self.clock.now())
            .await
            .unwrap()
    }

    fn wants(&self) -> Vec<u64> {
        std::mem::take(&mut self.ledger.wants.lock().unwrap())
    }
}

async fn request(gate: &Keygate, key: &str) -> (u16, String) {
    let mut svc = tower::Layer::layer(&gate.layer(), Echo);
    let answer = send(&mut svc, get("/", Some(key))).await;
    let code = if answer.status == 200 {
        String::new()
    } else {
        answer.code()
    };
    (answer.status.as_u16(), code)
}

/// Lets every task run until it waits on something (a single-threaded runtime).
async fn settle() {
    for _ in 0..100 {
        tokio::task::yield_now().await;
    }
}

#[tokio::test]
async fn requests_that_find_the_cell_dry_await_one_shared_top_up_and_are_admitted() {
    let mut s = setup(1_000).await;
    let gate = s.instance(Duration::from_secs(600));
    // The first lease, taken during the lookup: 10 units.
    s.allow(1);
    assert_eq!(request(&gate, &s.key).await.0, 200);
    // Spend down to the low watermark (5): the top-up starts, and is held.
    for _ in 0..5 {
        assert_eq!(request(&gate, &s.key).await.0, 200);
    }
    s.reservation_started().await;
    for _ in 0..4 {
        assert_eq!(request(&gate, &s.key).await.0, 200);
    }
    // The cell is dry, its lease in flight: these requests wait for it.
    let waiting: Vec<_> = (0..6)
        .map(|_| {
            let (gate, key) = (gate.clone(), s.key.clone());
            tokio::spawn(async move { request(&gate, &key).await })
        })
        .collect();
    settle().await;
    assert!(
        waiting.iter().all(|w| !w.is_finished()),
        "no request is answered (nor refused) while the lease is on its way"
    );
    s.allow(1);
    for w in waiting {
        assert_eq!(
            w.await.unwrap().0,
            200,
            "admitted on the lease they awaited"
        );
    }
    let wants = s.wants();
    assert_eq!(
        wants.len(),
        2,
        "one lease for all the waiting requests: {wants:?}"
    );
    gate.return_leases().await;
    assert_eq!(s.balance().await, 1_000 - 16, "every unspent unit is back");
}

#[tokio::test(start_paused = true)]
async fn the_first_request_after_an_idle_return_is_admitted() {
    let s = setup(1_000).await;
    s.allow(usize::MAX >> 4);
    let gate = s.instance(Duration::from_secs(2));
    for _ in 0..3 {
        assert_eq!(request(&gate, &s.key).await.0, 200);
    }
    // Idle: within 5 s the agent returns the units.
    for _ in 0..5 {
        tokio::time::advance(Duration::from_secs(1)).await;
        settle().await;
    }
    assert_eq!(
        s.balance().await,
        1_000 - 3,
        "the idle meter's units are back"
    );
    // The cell is empty and the ledger is not: the request awaits a lease.
    assert_eq!(request(&gate, &s.key).await, (200, String::new()));
    gate.return_leases().await;
    assert_eq!(s.balance().await, 1_000 - 4);
}

#[tokio::test(start_paused = true)]
async fn a_lease_that_does_not_come_within_the_store_timeout_fails_closed() {
    let mut s = setup(1_000).await;
    let gate = s.instance(Duration::from_millis(200));
    s.allow(1);
    for _ in 0..6 {
        assert_eq!(request(&gate, &s.key).await.0, 200);
    }
    s.reservation_started().await;
    for _ in 0..4 {
        assert_eq!(request(&gate, &s.key).await.0, 200);
    }
    // The top-up hangs: the paused clock moves to the store timeout, and the request
    // is refused as a lookup that times out is.
    let started = tokio::time::Instant::now();
    assert_eq!(
        request(&gate, &s.key).await,
        (503, "store_unavailable".to_owned())
    );
    assert_eq!(started.elapsed(), Duration::from_millis(200));
    // Nothing was spent by the refused request: once the lease comes, the accounts add up.
    s.allow(1);
    settle().await;
    gate.return_leases().await;
    assert_eq!(s.balance().await, 1_000 - 10);
}

#[tokio::test]
async fn a_lease_that_fails_fails_the_waiting_requests_closed() {
    let mut s = setup(1_000).await;
    let gate = s.instance(Duration::from_secs(600));
    s.allow(1);
    for _ in 0..6 {
        assert_eq!(request(&gate, &s.key).await.0, 200);
    }
    s.reservation_started().await;
    for _ in 0..4 {
        assert_eq!(request(&gate, &s.key).await.0, 200);
    }
    let waiting = {
        let (gate, key) = (gate.clone(), s.key.clone());
        tokio::spawn(async move { request(&gate, &key).await })
    };
    settle().await;
    assert!(!waiting.is_finished());
    s.ledger.failing.store(true, Ordering::SeqCst);
    s.allow(1);
    assert_eq!(
        waiting.await.unwrap(),
        (503, "store_unavailable".to_owned())
    );
}

#[tokio::test(start_paused = true)]
async fn a_busy_meters_lease_grows_to_the_most_allowed_and_shrinks_back_when_idle() {
    let s = setup(100_000).await;
    s.allow(usize::MAX >> 4);
    let gate = s.instance(Duration::from_secs(2));
    // The manual clock stands still: every top-up comes "soon" after the last lease.
    for _ in 0..200 {
        assert_eq!(request(&gate, &s.key).await.0, 200);
        settle().await;
    }
    // Each top-up asks for the next lease size less what the cell still holds (just
    // under half the previous size): 10, then 20 - 4, 40 - 9, 80 - 19, then 80 - 39
    // at the most allowed.
    let wants = s.wants();
    assert_eq!(wants[..6], [10, 16, 31, 61, 41, 41], "{wants:?}");
    // Idle: the units go back and the lease shrinks to its first size.
    for _ in 0..5 {
        tokio::time::advance(Duration::from_secs(1)).await;
        settle().await;
    }
    assert_eq!(s.balance().await, 100_000 - 200);
    s.time.advance(Duration::from_secs(5));
    assert_eq!(request(&gate, &s.key).await.0, 200);
    assert_eq!(s.wants(), [10], "back to the first size after idling");
}

#[tokio::test(start_paused = true)]
async fn a_small_balance_is_shared_out_between_instances() {
    let s = setup(12).await;
    s.allow(usize::MAX >> 4);
    let (a, b) = (
        s.instance(Duration::from_secs(2)),
        s.instance(Duration::from_secs(2)),
    );
    // Each lease takes at most a quarter of the balance (rounded up), not a whole
    // lease of 10: 3 of 12 for the first instance, 3 of 9 for the second.
    assert_eq!(request(&a, &s.key).await.0, 200);
    assert_eq!(request(&b, &s.key).await.0, 200);
    assert_eq!(s.balance().await, 6, "two fair shares out");
    // Both instances drain the rest between them: 12 admitted, not one more.
    let mut admitted = 2;
    for _ in 0..20 {
        for gate in [&a, &b] {
            let (status, code) = request(gate, &s.key).await;
            match status {
                200 => admitted += 1,
                _ => assert_eq!(code, "usage_exceeded"),
            }
            settle().await;
        }
    }
    assert_eq!(admitted, 12);
    a.return_leases().await;
    b.return_leases().await;
    assert_eq!(s.balance().await, 0);
}
