//! Two instances handling the same report at once, interleaved deterministically: both
//! read the key before either writes, so one write wins the compare-and-set and the
//! other, retried, finds the leak already handled.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::SystemTime;

use async_trait::async_trait;
use keygate::key::KeyDigest;
use keygate::leaks::{LeakChange, LeakOutcome, LeakPolicy, LeakReport};
use keygate::store::{AccountId, KeyId, KeyRecord, KeyStatusFilter, ListPosition};
use keygate::{KeyStore, KeyStoreWrite, Keygate, MemoryStore, NewKey, StoreError};
use tokio::sync::Barrier;

/// A shared store whose first two lookups wait for each other.
struct BothReadFirst {
    inner: MemoryStore,
    barrier: Barrier,
    armed: AtomicUsize,
    conflicts: AtomicUsize,
}

#[async_trait]
impl KeyStore for BothReadFirst {
    async fn find_by_digest(&self, digest: &KeyDigest) -> Result<Option<KeyRecord>, StoreError> {
        let found = self.inner.find_by_digest(digest).await;
        let armed = self
            .armed
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if armed {
            self.barrier.wait().await;
        }
        found
    }
}

#[async_trait]
impl KeyStoreWrite for BothReadFirst {
    async fn get(&self, id: &KeyId) -> Result<Option<KeyRecord>, StoreError> {
        self.inner.get(id).await
    }
    async fn insert(
        &self,
        r: KeyRecord,
        max: Option<usize>,
        now: SystemTime,
    ) -> Result<(), StoreError> {
        self.inner.insert(r, max, now).await
    }
    async fn replace(&self, record: KeyRecord) -> Result<(), StoreError> {
        let outcome = self.inner.replace(record).await;
        if matches!(outcome, Err(StoreError::VersionConflict)) {
            self.conflicts.fetch_add(1, Ordering::SeqCst);
        }
        outcome
    }
    async fn delete(&self, id: &KeyId) -> Result<KeyRecord, StoreError> {
        self.inner.delete(id).await
    }
    async fn list(
        &self,
        account: &AccountId,
        status: KeyStatusFilter,
        after: Option<&ListPosition>,
        limit: usize,
    ) -> Result<Vec<KeyRecord>, StoreError> {
        self.inner.list(account, status, after, limit).await
    }
    async fn record_last_used(&self, id: &KeyId, at: SystemTime) -> Result<(), StoreError> {
        self.inner.record_last_used(id, at).await
    }
}

#[tokio::test]
async fn when_two_instances_read_a_leaked_key_before_either_writes_it_is_handled_once() {
    let store = Arc::new(BothReadFirst {
        inner: MemoryStore::new(),
        barrier: Barrier::new(2),
        armed: AtomicUsize::new(0),
        conflicts: AtomicUsize::new(0),
    });
    let (_, manager_a) = Keygate::managed(store.clone()).build();
    let (gate_b, manager_b) = Keygate::managed(store.clone()).build();
    let created = manager_a
        .create("acct".into(), NewKey::named("k"))
        .await
        .unwrap();
    let key = created.key.expose_secret();
    let report = LeakReport::new("keygate_api_key", "https://example.com/x", "content");
    store.armed.store(2, Ordering::SeqCst);
    let (a, b) = tokio::join!(
        manager_a.report_leak(key, &report, LeakPolicy::Revoke),
        manager_b.report_leak(key, &report, LeakPolicy::Revoke),
    );
    let changes: Vec<LeakChange> = [a.unwrap(), b.unwrap()]
        .into_iter()
        .map(|o| match o {
            LeakOutcome::Found { change, .. } => change,
            other => panic!("{other:?}"),
        })
        .collect();
    assert!(
        changes.contains(&LeakChange::Revoked) && changes.contains(&LeakChange::Unchanged),
        "{changes:?}"
    );
    assert_eq!(
        store.conflicts.load(Ordering::SeqCst),
        1,
        "the loser's write conflicted once"
    );
    let record = store.get(&created.view.id).await.unwrap().unwrap();
    assert_eq!(record.version, 1);
    assert!(gate_b.verify_key(key).await.is_err());
}
