//! Unit tests of the coherence protocol: each rule of the module docs, with a store that
//! parks inside `find_by_digest` until the test releases it, so every interleaving is
//! chosen by the test, not by the scheduler.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use futures_util::FutureExt;
use tokio::sync::Notify;

use super::entry::ResolvedKey;
use super::{CacheConfig, Cached, KeyCache};
use crate::clock::{Clock, ManualClock};
use crate::error::AuthError;
use crate::key::digest::{KeyDigest, KeyHasher};
use crate::scope::{ScopeImplications, ScopeSet};
use crate::store::record::KeyRecord;
use crate::store::{KeyStore, KeyStoreWrite, MemoryStore, StoreError};

/// A store whose next lookup reads its answer, then parks until released; it can also
/// be told to fail or to hang.
#[derive(Default)]
struct ParkingStore {
    inner: MemoryStore,
    park_next: AtomicBool,
    parked: Notify,
    release: Notify,
    fail: AtomicBool,
    hang: AtomicBool,
    calls: AtomicUsize,
}

#[async_trait]
impl KeyStore for ParkingStore {
    async fn find_by_digest(&self, digest: &KeyDigest) -> Result<Option<KeyRecord>, StoreError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        // Read first: the answer predates whatever happens while parked.
        let answer = self.inner.find_by_digest(digest).await;
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

struct Fixture {
    store: Arc<ParkingStore>,
    cache: Arc<KeyCache>,
    time: ManualClock,
    digest: KeyDigest,
    record: KeyRecord,
}

fn t0() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_700_000_000)
}

async fn fixture(config: CacheConfig) -> Fixture {
    let store = Arc::new(ParkingStore::default());
    let (clock, time) = Clock::manual(t0());
    let digest = KeyHasher::sha256().digest("sk_test_coherence");
    let record = KeyRecord::new("ak_1".into(), "acct_1".into(), digest, t0());
    store
        .inner
        .insert(record.clone(), None, t0())
        .await
        .unwrap();
    let resolve_clock = clock.clone();
    let ttl = config.positive_ttl;
    let resolve = Box::new(
        move |record: KeyRecord, _: &KeyDigest, epoch: u64| ResolvedKey {
            granted: ScopeImplications::new().expand(&record.scopes),
            record,
            read_only: false,
            limit: None,
            account_limit: None,
            usage: Default::default(),
            last_used_written: Default::default(),
            fresh_until: resolve_clock.now() + ttl,
            verified_at: resolve_clock.now(),
            epoch,
            gate: 7,
            external: false,
        },
    );
    let cache = Arc::new(KeyCache::new(
        7,
        store.clone(),
        resolve,
        clock,
        &config,
        Duration::from_secs(2),
        Arc::new(crate::telemetry::Metrics::new()),
    ));
    Fixture {
        store,
        cache,
        time,
        digest,
        record,
    }
}

impl Fixture {
    /// Writes the revoked record to the store, then invalidates: what the manager does.
    async fn revoke(&self) {
        let mut revoked = self.record.clone();
        revoked.revoked_at = Some(t0());
        self.store.inner.replace(revoked).await.unwrap();
        self.cache.invalidate(&self.digest);
    }

    fn now(&self) -> SystemTime {
        self.time.now()
    }

    async fn load(&self) -> Result<Option<Arc<ResolvedKey>>, AuthError> {
        self.cache.load(self.digest).await
    }
}

fn is_revoked(answer: &Result<Option<Arc<ResolvedKey>>, AuthError>) -> bool {
    matches!(answer, Ok(Some(key)) if key.record.revoked_at.is_some())
}

#[tokio::test]
async fn a_store_answer_that_raced_an_invalidation_is_never_used() {
    let f = fixture(CacheConfig::default()).await;
    f.store.park_next.store(true, Ordering::SeqCst);
    let cache = f.cache.clone();
    let digest = f.digest;
    let racing = tokio::spawn(async move { cache.load(digest).await });
    f.store.parked.notified().await;
    // The lookup holds the pre-revoke record; the revoke completes meanwhile.
    f.revoke().await;
    f.store.release.notify_one();
    let answer = racing.await.unwrap();
    assert!(is_revoked(&answer), "the racing request looked up again");
    assert_eq!(f.store.calls.load(Ordering::SeqCst), 2);
    // Nothing stale is left for later requests either.
    match f.cache.get(&f.digest, f.now()) {
        Cached::Hit(key) => assert!(key.record.revoked_at.is_some()),
        _ => panic!("the re-read revoked record is cached"),
    }
}

#[tokio::test]
async fn a_copy_from_before_an_invalidation_is_a_miss_even_if_it_lands_afterwards() {
    let f = fixture(CacheConfig::default()).await;
    let before = f.load().await.unwrap().unwrap();
    f.revoke().await;
    // The racing insert the protocol must survive: the old copy lands after the
    // invalidation removed everything.
    f.cache.positive.insert(f.digest, before);
    assert!(matches!(f.cache.get(&f.digest, f.now()), Cached::Miss));
    assert!(is_revoked(&f.load().await));
}

#[tokio::test]
async fn the_per_thread_front_keeps_the_epoch_of_the_copy_it_holds() {
    let f = fixture(CacheConfig::default()).await;
    f.load().await.unwrap();
    // The first hit copies into this thread's front, the second is answered by it.
    assert!(matches!(f.cache.get(&f.digest, f.now()), Cached::Hit(_)));
    assert!(matches!(f.cache.get(&f.digest, f.now()), Cached::Hit(_)));
    f.revoke().await;
    assert!(matches!(f.cache.get(&f.digest, f.now()), Cached::Miss));
    assert!(is_revoked(&f.load().await));
}

#[tokio::test]
async fn requests_that_joined_a_lookup_before_an_invalidation_look_up_again() {
    let f = fixture(CacheConfig::default()).await;
    f.store.park_next.store(true, Ordering::SeqCst);
    let first = tokio::spawn({
        let cache = f.cache.clone();
        let digest = f.digest;
        async move { cache.load(digest).await }
    });
    f.store.parked.notified().await;
    // A second request joins the same lookup (it is polled once, so it is waiting).
    let mut joined = Box::pin(f.cache.load(f.digest));
    assert!((&mut joined).now_or_never().is_none());
    assert_eq!(f.cache.inflight(), 1);
    f.revoke().await;
    assert_eq!(f.cache.inflight(), 0, "invalidation drops the lookup");
    f.store.release.notify_one();
    assert!(is_revoked(&first.await.unwrap()));
    assert!(is_revoked(&joined.await));
}

#[tokio::test]
async fn serve_stale_never_revives_an_invalidated_key() {
    let f = fixture(CacheConfig::default().serve_stale(Some(Duration::from_secs(600)))).await;
    assert!(f.load().await.unwrap().is_some());
    // Outage: the fresh copy is gone, so the stale copy answers.
    f.store.fail.store(true, Ordering::SeqCst);
    f.cache.positive.invalidate(&f.digest);
    assert!(f.load().await.unwrap().is_some(), "stale copy served");
    // A revoke during the outage reaches the cache even though the store is down.
    f.cache.invalidate(&f.digest);
    assert!(matches!(f.load().await, Err(AuthError::StoreUnavailable)));
}

#[tokio::test]
async fn serve_stale_ignores_a_copy_invalidated_while_its_lookup_was_parked() {
    let f = fixture(CacheConfig::default().serve_stale(Some(Duration::from_secs(600)))).await;
    f.load().await.unwrap();
    f.cache.positive.invalidate(&f.digest);
    f.store.park_next.store(true, Ordering::SeqCst);
    f.store.fail.store(true, Ordering::SeqCst);
    let racing = tokio::spawn({
        let cache = f.cache.clone();
        let digest = f.digest;
        async move { cache.load(digest).await }
    });
    f.store.parked.notified().await;
    f.cache.invalidate(&f.digest);
    f.store.release.notify_one();
    assert!(matches!(
        racing.await.unwrap(),
        Err(AuthError::StoreUnavailable)
    ));
}

#[tokio::test]
async fn abandoned_lookups_leave_nothing_in_flight() {
    let f = fixture(CacheConfig::default()).await;
    f.store.hang.store(true, Ordering::SeqCst);
    let mut pending = Vec::new();
    for _ in 0..1_000 {
        let mut lookup = Box::pin(f.cache.load(f.digest));
        assert!((&mut lookup).now_or_never().is_none());
        pending.push(lookup);
    }
    assert_eq!(f.cache.inflight(), 1, "one shared lookup");
    drop(pending);
    assert_eq!(f.cache.inflight(), 0);

    // Distinct digests, each abandoned: still nothing left.
    for i in 0..1_000 {
        let digest = KeyHasher::sha256().digest(&format!("unknown {i}"));
        let mut lookup = Box::pin(f.cache.load(digest));
        assert!((&mut lookup).now_or_never().is_none());
    }
    assert_eq!(f.cache.inflight(), 0);
}

#[tokio::test]
async fn invalidate_all_drops_every_copy() {
    let f = fixture(CacheConfig::default()).await;
    f.load().await.unwrap();
    let unknown = KeyHasher::sha256().digest("unknown");
    assert!(f.cache.load(unknown).await.unwrap().is_none());
    assert!(matches!(f.cache.get(&unknown, f.now()), Cached::Unknown));
    f.cache.invalidate_all();
    assert!(matches!(f.cache.get(&f.digest, f.now()), Cached::Miss));
    assert!(matches!(f.cache.get(&unknown, f.now()), Cached::Miss));
}

#[tokio::test]
async fn a_negative_answer_is_dropped_by_an_invalidation() {
    let f = fixture(CacheConfig::default()).await;
    let digest = KeyHasher::sha256().digest("created later");
    assert!(f.cache.load(digest).await.unwrap().is_none());
    let mut record = KeyRecord::new("ak_2".into(), "acct_1".into(), digest, t0());
    record.scopes = ScopeSet::new();
    f.store.inner.insert(record, None, t0()).await.unwrap();
    f.cache.invalidate(&digest);
    assert!(f.cache.load(digest).await.unwrap().is_some());
}

#[tokio::test]
async fn the_byte_budget_bounds_the_cache() {
    let f = fixture(
        CacheConfig::default()
            .max_bytes(64 * 1024)
            .max_entries(1_000),
    )
    .await;
    for i in 0..500u32 {
        let digest = KeyHasher::sha256().digest(&format!("key {i}"));
        let mut record = KeyRecord::new(
            crate::store::record::KeyId::new(format!("ak_b{i}")),
            "acct".into(),
            digest,
            t0(),
        );
        let mut metadata = serde_json::Map::new();
        metadata.insert("blob".into(), "x".repeat(4_000).into());
        record.metadata = metadata;
        f.store.inner.insert(record, None, t0()).await.unwrap();
        f.cache.load(digest).await.unwrap();
    }
    f.cache.run_pending_tasks();
    assert!(
        f.cache.weighted_bytes() <= 64 * 1024,
        "{}",
        f.cache.weighted_bytes()
    );
    assert!(f.cache.entries() < 10, "{} entries", f.cache.entries());
}

#[tokio::test]
async fn expired_copies_are_misses_on_the_cache_clock() {
    let f = fixture(CacheConfig::default().positive_ttl(Duration::from_secs(30))).await;
    f.load().await.unwrap();
    assert!(matches!(f.cache.get(&f.digest, f.now()), Cached::Hit(_)));
    f.time.advance(Duration::from_secs(31));
    assert!(matches!(f.cache.get(&f.digest, f.now()), Cached::Miss));
}

#[tokio::test]
async fn while_degraded_copies_are_trusted_for_the_degraded_ttl_only() {
    let f = fixture(
        CacheConfig::default()
            .positive_ttl(Duration::from_secs(30))
            .degraded_ttl(Duration::from_secs(1)),
    )
    .await;
    f.load().await.unwrap();
    f.cache.set_degraded(true);
    assert!(matches!(f.cache.get(&f.digest, f.now()), Cached::Hit(_)));
    f.time.advance(Duration::from_secs(2));
    assert!(matches!(f.cache.get(&f.digest, f.now()), Cached::Miss));
    // The store is asked again, and its fresh answer is trusted for another second.
    f.load().await.unwrap();
    assert_eq!(f.store.calls.load(Ordering::SeqCst), 2);
    assert!(matches!(f.cache.get(&f.digest, f.now()), Cached::Hit(_)));
    f.cache.set_degraded(false);
    f.time.advance(Duration::from_secs(10));
    assert!(matches!(f.cache.get(&f.digest, f.now()), Cached::Hit(_)));
}
