//! "Revoked (or deleted) means refused on the very next request", under every
//! interleaving of a store lookup with a revoke, a delete or a roll, and under concurrent
//! churn.
//!
//! The deterministic tests use a store that reads its answer, then parks inside
//! `find_by_digest` until the test releases it, so the pre-revoke answer is in hand while
//! the revoke completes. The stress test runs real threads.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::common::*;
use async_trait::async_trait;
use futures_util::FutureExt;
use keygate::gate::CacheConfig;
use keygate::key::KeyDigest;
use keygate::manage::KeyUpdate;
use keygate::ratelimit::RateLimitConfig;
use keygate::store::{AccountId, KeyId, KeyRecord};
use keygate::{KeyStore, KeyStoreWrite, Keygate, MemoryStore, NewKey, StoreError};
use tokio::sync::Notify;
use tower::ServiceExt;

/// A store whose lookups can park (after reading their answer), fail, or yield a few
/// times to widen race windows. Writes go straight through.
#[derive(Default)]
struct RacyStore {
    inner: MemoryStore,
    park_next: AtomicBool,
    parked: Notify,
    release: Notify,
    fail: AtomicBool,
    hang: AtomicBool,
    yields: AtomicUsize,
}

#[async_trait]
impl KeyStore for RacyStore {
    async fn find_by_digest(&self, digest: &KeyDigest) -> Result<Option<KeyRecord>, StoreError> {
        let answer = self.inner.find_by_digest(digest).await;
        for _ in 0..self.yields.load(Ordering::Relaxed) {
            tokio::task::yield_now().await;
        }
        if self.park_next.swap(false, Ordering::SeqCst) {
            self.parked.notify_one();
            self.release.notified().await;
        }
        if self.hang.load(Ordering::SeqCst) {
            std::future::pending::<()>().await;
        }
        if self.fail.load(Ordering::SeqCst) {
            return Err(StoreError::unavailable("injected"));
        }
        answer
    }
}

#[async_trait]
impl KeyStoreWrite for RacyStore {
    async fn get(&self, id: &KeyId) -> Result<Option<KeyRecord>, StoreError> {
        self.inner.get(id).await
    }
    async fn insert(
        &self,
        record: KeyRecord,
        max_active: Option<usize>,
        now: SystemTime,
    ) -> Result<(), StoreError> {
        self.inner.insert(record, max_active, now).await
    }
    async fn replace(&self, record: KeyRecord) -> Result<(), StoreError> {
        self.inner.replace(record).await
    }
    async fn delete(&self, id: &keygate::store::KeyId) -> Result<KeyRecord, StoreError> {
        self.inner.delete(id).await
    }
    async fn list(
        &self,
        account: &AccountId,
        status: keygate::store::KeyStatusFilter,
        after: Option<&keygate::store::ListPosition>,
        limit: usize,
    ) -> Result<Vec<KeyRecord>, StoreError> {
        self.inner.list(account, status, after, limit).await
    }
    async fn record_last_used(&self, id: &KeyId, at: SystemTime) -> Result<(), StoreError> {
        self.inner.record_last_used(id, at).await
    }
}

fn setup(cache: CacheConfig) -> (Arc<RacyStore>, Keygate, keygate::KeyManager) {
    let store = Arc::new(RacyStore::default());
    let (clock, _time) = keygate::clock::Clock::manual(t0());
    let (gate, manager) = Keygate::managed(store.clone())
        .clock(clock)
        .cache(cache)
        .rate_limits(RateLimitConfig::disabled())
        .build();
    (store, gate, manager)
}

fn account() -> AccountId {
    AccountId::from("acct_1")
}

async fn status(gate: &Keygate, key: &str) -> u16 {
    let mut svc = tower::ServiceBuilder::new()
        .layer(gate.layer())
        .service_fn(echo);
    send(&mut svc, get("/", Some(key))).await.status.as_u16()
}

#[tokio::test]
async fn a_request_started_after_revoke_returned_is_refused_while_an_older_lookup_is_parked() {
    let (store, gate, manager) = setup(CacheConfig::default());
    let created = manager.create(account(), NewKey::named("k")).await.unwrap();
    let key = created.key.expose_secret().to_owned();

    // R1 misses the cache; its lookup reads the live record and parks.
    store.park_next.store(true, Ordering::SeqCst);
    let r1 = tokio::spawn({
        let gate = gate.clone();
        let key = key.clone();
        async move { status(&gate, &key).await }
    });
    store.parked.notified().await;

    manager.revoke(&account(), &created.view.id).await.unwrap();
    // R2 starts after revoke() returned: refused, whatever R1's lookup does later.
    assert_eq!(status(&gate, &key).await, 401);
    store.release.notify_one();
    // R1 started before the revoke returned; either answer is allowed for it, but its
    // pre-revoke record must not reach the cache.
    let _ = r1.await.unwrap();
    assert_eq!(status(&gate, &key).await, 401);
}

#[tokio::test]
async fn a_parked_lookup_released_after_the_revoke_does_not_revive_the_key() {
    let (store, gate, manager) = setup(CacheConfig::default());
    let created = manager.create(account(), NewKey::named("k")).await.unwrap();
    let key = created.key.expose_secret().to_owned();
    store.park_next.store(true, Ordering::SeqCst);
    let r1 = tokio::spawn({
        let gate = gate.clone();
        let key = key.clone();
        async move { status(&gate, &key).await }
    });
    store.parked.notified().await;
    manager.revoke(&account(), &created.view.id).await.unwrap();
    store.release.notify_one();
    assert_eq!(r1.await.unwrap(), 401, "R1 retried after the invalidation");
    for _ in 0..3 {
        assert_eq!(status(&gate, &key).await, 401);
    }
}

#[tokio::test]
async fn a_roll_without_grace_refuses_the_old_secret_despite_a_parked_lookup() {
    let (store, gate, manager) = setup(CacheConfig::default());
    let created = manager.create(account(), NewKey::named("k")).await.unwrap();
    let old = created.key.expose_secret().to_owned();
    store.park_next.store(true, Ordering::SeqCst);
    let r1 = tokio::spawn({
        let gate = gate.clone();
        let old = old.clone();
        async move { status(&gate, &old).await }
    });
    store.parked.notified().await;
    let rolled = manager
        .roll(&account(), &created.view.id, None)
        .await
        .unwrap();
    assert_eq!(status(&gate, &old).await, 401);
    store.release.notify_one();
    let _ = r1.await.unwrap();
    assert_eq!(status(&gate, &old).await, 401);
    assert_eq!(status(&gate, rolled.key.expose_secret()).await, 200);
}

#[tokio::test]
async fn a_request_started_after_delete_returned_is_refused_and_a_parked_lookup_cannot_revive_it() {
    let (store, gate, manager) = setup(CacheConfig::default());
    let created = manager.create(account(), NewKey::named("k")).await.unwrap();
    let key = created.key.expose_secret().to_owned();
    // R1 misses the cache; its lookup reads the live record and parks.
    store.park_next.store(true, Ordering::SeqCst);
    let r1 = tokio::spawn({
        let gate = gate.clone();
        let key = key.clone();
        async move { status(&gate, &key).await }
    });
    store.parked.notified().await;

    manager.delete(&account(), &created.view.id).await.unwrap();
    // R2 starts after delete() returned: refused, whatever R1's lookup does later.
    assert_eq!(status(&gate, &key).await, 401);
    store.release.notify_one();
    assert_eq!(r1.await.unwrap(), 401, "R1 retried after the invalidation");
    for _ in 0..3 {
        assert_eq!(status(&gate, &key).await, 401);
    }
    assert!(store.inner.get(&created.view.id).await.unwrap().is_none());
}

#[tokio::test]
async fn a_cached_and_front_copied_key_is_refused_right_after_revoke() {
    let (_store, gate, manager) = setup(CacheConfig::default());
    let created = manager.create(account(), NewKey::named("k")).await.unwrap();
    let key = created.key.expose_secret().to_owned();
    // Cached in moka, then copied into this thread's front.
    for _ in 0..3 {
        assert_eq!(status(&gate, &key).await, 200);
    }
    manager.revoke(&account(), &created.view.id).await.unwrap();
    assert_eq!(status(&gate, &key).await, 401);
}

#[tokio::test]
async fn serve_stale_never_answers_with_a_copy_from_before_a_revoke() {
    let (store, gate, manager) =
        setup(CacheConfig::default().serve_stale(Some(Duration::from_secs(600))));
    let created = manager.create(account(), NewKey::named("k")).await.unwrap();
    let key = created.key.expose_secret().to_owned();
    assert_eq!(status(&gate, &key).await, 200);
    store.fail.store(true, Ordering::SeqCst);
    manager.revoke(&account(), &created.view.id).await.unwrap();
    // The store is down and a stale copy exists, but it predates the revoke.
    assert_eq!(status(&gate, &key).await, 503);
}

#[tokio::test]
async fn clients_that_give_up_mid_lookup_leave_no_lookup_behind() {
    let (store, gate, manager) = setup(CacheConfig::default());
    let created = manager.create(account(), NewKey::named("k")).await.unwrap();
    let key = created.key.expose_secret().to_owned();
    let svc = tower::ServiceBuilder::new()
        .layer(gate.layer())
        .service_fn(echo);
    store.hang.store(true, Ordering::SeqCst);
    // 2,000 requests: one real key (a shared lookup) and unknown well-formed keys (one
    // lookup each), each polled once, stuck in a store that never answers, then dropped.
    let format = gate.format().clone();
    let prefix = format.prefix("sk_test_").unwrap().clone();
    for i in 0..2_000 {
        let presented = if i % 2 == 0 {
            key.clone()
        } else {
            format.generate(&prefix).unwrap().expose_secret().to_owned()
        };
        let mut call = Box::pin(svc.clone().oneshot(get("/", Some(&presented))));
        assert!((&mut call).now_or_never().is_none());
    }
    assert_eq!(gate.stats().inflight_lookups, 0);
}

/// The stress test: six tasks hammer one key while it is updated, then revoked (or
/// rolled without grace); any 200 for a request that started after the change
/// returned is a violation.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_request_started_after_a_revoke_or_roll_is_admitted_under_concurrency() {
    const ROUNDS: usize = 150;
    const TASKS: usize = 6;
    let (store, gate, manager) = setup(CacheConfig::default());
    store.yields.store(3, Ordering::Relaxed);
    let svc = tower::ServiceBuilder::new()
        .layer(gate.layer())
        .service_fn(echo);
    let violations = Arc::new(AtomicU64::new(0));
    let total = Arc::new(AtomicU64::new(0));
    let after_change = Arc::new(AtomicU64::new(0));
    for round in 0..ROUNDS {
        let created = manager.create(account(), NewKey::named("k")).await.unwrap();
        let key: Arc<str> = created.key.expose_secret().into();
        let changed = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicU64::new(0));
        let mut tasks = Vec::new();
        for _ in 0..TASKS {
            let (svc, key, changed, stop, sent) = (
                svc.clone(),
                key.clone(),
                changed.clone(),
                stop.clone(),
                sent.clone(),
            );
            let (violations, total, after_change) =
                (violations.clone(), total.clone(), after_change.clone());
            tasks.push(tokio::spawn(async move {
                while !stop.load(Ordering::Acquire) {
                    let started_after = changed.load(Ordering::Acquire);
                    let answer = svc.clone().oneshot(get("/", Some(&key))).await.unwrap();
                    total.fetch_add(1, Ordering::Relaxed);
                    sent.fetch_add(1, Ordering::Relaxed);
                    if started_after {
                        after_change.fetch_add(1, Ordering::Relaxed);
                        if answer.status() == 200 {
                            violations.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            }));
        }
        wait_for(&sent, 60).await;
        // An update first: it invalidates, so lookups are in flight when the revoke lands.
        manager
            .update(&account(), &created.view.id, KeyUpdate::default().name("u"))
            .await
            .unwrap();
        if round % 2 == 0 {
            manager.revoke(&account(), &created.view.id).await.unwrap();
        } else {
            manager
                .roll(&account(), &created.view.id, None)
                .await
                .unwrap();
        }
        changed.store(true, Ordering::Release);
        let seen = sent.load(Ordering::Relaxed);
        wait_for(&sent, seen + 120).await;
        stop.store(true, Ordering::Release);
        for task in tasks {
            task.await.unwrap();
        }
        if round % 2 == 1 {
            // A rolled key stays active under its new secret: retire it, so the
            // account's cap on active keys is never reached.
            manager.revoke(&account(), &created.view.id).await.unwrap();
        }
    }
    let (total, after, bad) = (
        total.load(Ordering::Relaxed),
        after_change.load(Ordering::Relaxed),
        violations.load(Ordering::Relaxed),
    );
    println!("stress: {ROUNDS} rounds, {total} requests, {after} started after the change, {bad} violations");
    assert!(after >= (ROUNDS as u64) * 120);
    assert_eq!(
        bad, 0,
        "{bad} of {after} requests after the change were admitted"
    );
    assert_eq!(gate.stats().inflight_lookups, 0);
}

/// Yields until `counter` reaches `target`.
async fn wait_for(counter: &AtomicU64, target: u64) {
    while counter.load(Ordering::Relaxed) < target {
        tokio::task::yield_now().await;
    }
}
