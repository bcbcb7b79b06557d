//! Plans kept in PostgreSQL: two gates (instances) over one schema, each with its own
//! pool and listener. A plan changed through one instance's manager applies to the keys
//! already cached on the other, once its listener has flushed its cache (the
//! synchronisation point: the sink is told to flush).

use std::sync::Arc;

use keygate::invalidation::{InvalidationSink, ListenerStatus};
use keygate::key::KeyDigest;
use keygate::metering::{Credits, Plan, Quota, QuotaPeriod};
use keygate::store::AccountId;
use keygate::{Keygate, ManageError, NewKey};
use tokio::sync::mpsc;

use crate::common::pg::*;
use crate::common::propagation::within;
use crate::common::{get, send, Echo};

/// Forwards to a gate and reports every flush of its whole cache.
struct Flushes {
    gate: Keygate,
    flushed: mpsc::UnboundedSender<()>,
}

impl InvalidationSink for Flushes {
    fn invalidate_digest(&self, digest: &KeyDigest) {
        self.gate.invalidate_digest(digest);
    }
    fn invalidate_all(&self) {
        self.gate.invalidate_all();
        let _ = self.flushed.send(());
    }
}

async fn status(gate: &Keygate, key: &str) -> u16 {
    let mut svc = tower::Layer::layer(&gate.layer(), Echo);
    send(&mut svc, get("/", Some(key))).await.status.as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plan_changed_on_one_instance_applies_to_cached_keys_on_another() {
    let schema = schema_name("shared_plans");
    let (store_a, store_b) = (
        store_on(&schema, "plans_a").await,
        store_on(&schema, "plans_b").await,
    );
    let (_gate_a, manager) = Keygate::managed(store_a.clone()).build();
    let gate_b = Keygate::builder(store_b.clone()).build();
    let (tx, mut flushed) = mpsc::unbounded_channel();
    let listener = store_b.listen(Arc::new(Flushes {
        gate: gate_b.clone(),
        flushed: tx,
    }));
    within(&listener, ListenerStatus::Live).await;
    flushed.recv().await.unwrap(); // The first subscription starts from a clean cache.

    manager
        .set_plan(Plan::new("free").credits(Credits::new(2)))
        .await
        .unwrap();
    flushed.recv().await.unwrap();
    let key = manager
        .create(AccountId::new("acct_1"), NewKey::named("k").plan("free"))
        .await
        .unwrap()
        .key;
    let key = key.expose_secret();
    // Instance B reads the stored plan at its first miss: 2 credits.
    assert_eq!(status(&gate_b, key).await, 200);
    assert_eq!(status(&gate_b, key).await, 200);
    assert_eq!(
        status(&gate_b, key).await,
        429,
        "the plan's 2 credits are spent"
    );

    // Changed through instance A: a daily quota of 3 instead of credits.
    manager
        .set_plan(Plan::new("free").quota(Quota::new(3, QuotaPeriod::Day)))
        .await
        .unwrap();
    flushed.recv().await.unwrap();
    for _ in 0..3 {
        assert_eq!(status(&gate_b, key).await, 200, "the new plan on B");
    }
    assert_eq!(status(&gate_b, key).await, 429, "the quota of 3 is spent");
    assert_eq!(manager.plans().await.unwrap().len(), 1);
    assert_eq!(
        gate_b.plan("free").unwrap().quotas,
        [Quota::new(3, QuotaPeriod::Day)]
    );

    // Removed: B refuses keys on it (fail closed), the plan being nowhere.
    assert!(manager.remove_plan("free").await.unwrap());
    flushed.recv().await.unwrap();
    assert_eq!(status(&gate_b, key).await, 429);
    assert!(gate_b.plan("free").is_none());
    gate_b.return_leases().await;
    drop(listener);
    drop_schema(&schema).await;
}

#[tokio::test]
async fn a_plan_with_a_bad_name_or_numbers_is_refused_and_nothing_is_stored() {
    let (_, manager) = Keygate::managed(keygate::MemoryStore::new()).build();
    for bad in [
        Plan::new(""),
        Plan::new("x".repeat(65)),
        Plan::new("a\nb"),
        Plan::new("neg").credits(Credits::new(-1)),
        Plan::new("zero").quota(Quota::new(0, QuotaPeriod::Day)),
    ] {
        assert!(
            matches!(
                manager.set_plan(bad).await,
                Err(ManageError::InvalidRequest(_))
            ),
            "refused"
        );
    }
    assert!(manager.plans().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_stored_plan_takes_precedence_over_the_default_of_its_name_until_removed() {
    let (gate, manager) = Keygate::managed(keygate::MemoryStore::new())
        .plan(Plan::new("free").credits(Credits::new(1)))
        .build();
    let key = manager
        .create(AccountId::new("acct_1"), NewKey::named("k").plan("free"))
        .await
        .unwrap()
        .key;
    let key = key.expose_secret();
    assert_eq!(status(&gate, key).await, 200);
    assert_eq!(status(&gate, key).await, 429, "the default's one credit");
    // Stored: a daily quota of 2 instead, applied to the cached key at once.
    manager
        .set_plan(Plan::new("free").quota(Quota::new(2, QuotaPeriod::Day)))
        .await
        .unwrap();
    assert_eq!(status(&gate, key).await, 200);
    assert_eq!(status(&gate, key).await, 200);
    assert_eq!(
        status(&gate, key).await,
        429,
        "the stored plan's quota of 2"
    );
    assert_eq!(gate.plans().len(), 1, "one plan in effect under that name");
    // Removed from the store: the default applies again (its credit is spent).
    assert!(manager.remove_plan("free").await.unwrap());
    assert!(!manager.remove_plan("free").await.unwrap());
    assert_eq!(status(&gate, key).await, 429);
    assert_eq!(gate.plan("free").unwrap().credits, Some(Credits::new(1)));
}

/// A `MemoryStore` whose plans cannot be read.
struct PlansDown(Arc<keygate::MemoryStore>);

struct Unreadable;

#[async_trait::async_trait]
impl keygate::metering::PlanStore for Unreadable {
    async fn plans(&self) -> Result<Vec<Plan>, keygate::StoreError> {
        Err(keygate::StoreError::unavailable("the plans table is gone"))
    }
    async fn put_plan(&self, _: &Plan) -> Result<(), keygate::StoreError> {
        Err(keygate::StoreError::unavailable("the plans table is gone"))
    }
    async fn remove_plan(&self, _: &str) -> Result<bool, keygate::StoreError> {
        Err(keygate::StoreError::unavailable("the plans table is gone"))
    }
}

#[async_trait::async_trait]
impl keygate::KeyStore for PlansDown {
    async fn find_by_digest(
        &self,
        digest: &KeyDigest,
    ) -> Result<Option<keygate::store::KeyRecord>, keygate::StoreError> {
        self.0.find_by_digest(digest).await
    }
    fn credit_ledger(&self) -> Option<Arc<dyn keygate::metering::CreditLedger>> {
        self.0.credit_ledger()
    }
    fn plan_store(&self) -> Option<Arc<dyn keygate::metering::PlanStore>> {
        Some(Arc::new(Unreadable))
    }
}

#[tokio::test]
async fn a_miss_fails_closed_when_the_stored_plans_cannot_be_read() {
    let store = Arc::new(keygate::MemoryStore::new());
    let (_, manager) = Keygate::managed(store.clone()).build();
    let key = manager
        .create(AccountId::new("acct_1"), NewKey::named("k"))
        .await
        .unwrap()
        .key;
    let gate = Keygate::builder(PlansDown(store)).build();
    let mut svc = tower::Layer::layer(&gate.layer(), Echo);
    let answer = send(&mut svc, get("/", Some(key.expose_secret()))).await;
    assert_eq!(
        (answer.status.as_u16(), answer.code().as_str()),
        (503, "store_unavailable")
    );
}
