//! Last-used coalescing: at most one write per interval, never awaited by requests.

use crate::common::*;
use crate::lifecycle::support::*;
use async_trait::async_trait;
use keygate::key::KeyDigest;
use keygate::manage::KeyUpdate;
use keygate::store::{AccountId, KeyId, KeyRecord};
use keygate::KeyStoreWrite;
use keygate::{KeyStore, Keygate, MemoryStore, NewKey, StoreError};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

// ---------------------------------------------------------------------------------------
// Last used

#[tokio::test]
async fn last_used_is_written_at_most_once_per_interval_per_key() {
    let h = Harness::with(|b| b.last_used_interval(Duration::from_secs(60)));
    let account = acct("acct_1");
    let (id, key) = h.key("acct_1", &[]).await;
    let (other_id, other) = h.key("acct_1", &[]).await;
    let mut svc = h.service();

    for _ in 0..50 {
        assert_eq!(send(&mut svc, get("/", Some(&key))).await.status, 200);
    }
    settle().await;
    assert_eq!(h.store.last_used_writes(), 1);
    assert_eq!(
        h.manager.get(&account, &id).await.unwrap().last_used_at,
        Some(rfc3339(t0()))
    );

    // Within the interval: no more writes.
    h.time.advance(Duration::from_secs(59));
    for _ in 0..50 {
        send(&mut svc, get("/", Some(&key))).await;
    }
    settle().await;
    assert_eq!(h.store.last_used_writes(), 1);

    // Past it: exactly one more.
    h.time.advance(Duration::from_secs(1));
    for _ in 0..50 {
        send(&mut svc, get("/", Some(&key))).await;
    }
    settle().await;
    assert_eq!(h.store.last_used_writes(), 2);
    assert_eq!(
        h.manager.get(&account, &id).await.unwrap().last_used_at,
        Some(rfc3339(t0() + Duration::from_secs(60)))
    );

    // Each key coalesces on its own.
    for _ in 0..10 {
        send(&mut svc, get("/", Some(&other))).await;
    }
    settle().await;
    assert_eq!(h.store.last_used_writes(), 3);
    assert!(h
        .manager
        .get(&account, &other_id)
        .await
        .unwrap()
        .last_used_at
        .is_some());

    // Refused requests are not uses.
    h.time.advance(Duration::from_secs(120));
    let mut scoped = tower::ServiceBuilder::new()
        .layer(h.gate.layer().require_any(["admin"]))
        .service_fn(echo);
    for _ in 0..5 {
        assert_eq!(send(&mut scoped, get("/", Some(&key))).await.status, 403);
    }
    settle().await;
    assert_eq!(h.store.last_used_writes(), 3);
}

#[tokio::test]
async fn last_used_is_not_written_more_often_after_the_cached_entry_is_reloaded() {
    let h = Harness::with(|b| b.last_used_interval(Duration::from_secs(60)));
    let (id, key) = h.key("acct_1", &[]).await;
    let mut svc = h.service();
    send(&mut svc, get("/", Some(&key))).await;
    settle().await;
    assert_eq!(h.store.last_used_writes(), 1);
    // An unrelated change drops the cache entry; the reloaded record remembers the write.
    h.manager
        .update(&acct("acct_1"), &id, KeyUpdate::default().name("renamed"))
        .await
        .unwrap();
    h.time.advance(Duration::from_secs(10));
    for _ in 0..10 {
        send(&mut svc, get("/", Some(&key))).await;
    }
    settle().await;
    assert_eq!(h.store.lookups(), 2);
    assert_eq!(h.store.last_used_writes(), 1);
}

/// A store whose `last_used_at` writes never finish.
#[derive(Default)]
struct StuckWrites(MemoryStore);

#[async_trait]
impl KeyStore for StuckWrites {
    async fn find_by_digest(&self, digest: &KeyDigest) -> Result<Option<KeyRecord>, StoreError> {
        self.0.find_by_digest(digest).await
    }
}

#[async_trait]
impl KeyStoreWrite for StuckWrites {
    async fn get(&self, id: &KeyId) -> Result<Option<KeyRecord>, StoreError> {
        self.0.get(id).await
    }
    async fn insert(
        &self,
        record: KeyRecord,
        max_active: Option<usize>,
        now: SystemTime,
    ) -> Result<(), StoreError> {
        self.0.insert(record, max_active, now).await
    }
    async fn replace(&self, record: KeyRecord) -> Result<(), StoreError> {
        self.0.replace(record).await
    }
    async fn delete(&self, id: &keygate::store::KeyId) -> Result<KeyRecord, StoreError> {
        self.0.delete(id).await
    }
    async fn list(
        &self,
        account: &AccountId,
        status: keygate::store::KeyStatusFilter,
        after: Option<&keygate::store::ListPosition>,
        limit: usize,
    ) -> Result<Vec<KeyRecord>, StoreError> {
        self.0.list(account, status, after, limit).await
    }
    async fn record_last_used(&self, _: &KeyId, _: SystemTime) -> Result<(), StoreError> {
        std::future::pending().await
    }
}

#[tokio::test(start_paused = true)]
async fn authenticating_requests_never_wait_for_the_last_used_write() {
    let store = Arc::new(StuckWrites::default());
    let (clock, time) = keygate::clock::Clock::manual(t0());
    let (gate, manager) = Keygate::managed(store.clone())
        .clock(clock)
        .last_used_interval(Duration::from_secs(1))
        .build();
    let created = manager
        .create(acct("acct_1"), NewKey::named("k"))
        .await
        .unwrap();
    let mut svc = tower::ServiceBuilder::new()
        .layer(gate.layer())
        .service_fn(echo);
    for _ in 0..5 {
        // With the write on the request path this would never finish; the paused tokio
        // clock makes the timeout fire at once if it does not.
        let answer = tokio::time::timeout(
            Duration::from_secs(60),
            send(&mut svc, get("/", Some(created.key.expose_secret()))),
        )
        .await
        .expect("the request did not wait for the last-used write");
        assert_eq!(answer.status, 200);
        time.advance(Duration::from_secs(2));
    }
}

/// RFC 3339 with milliseconds, UTC: the management API's form of a time.
fn rfc3339(at: std::time::SystemTime) -> String {
    humantime::format_rfc3339_millis(at).to_string()
}
