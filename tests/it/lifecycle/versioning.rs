//! Compare-and-set on `KeyRecord::version`: stores refuse stale replaces, and the key
//! manager re-reads and re-applies its change when another writer got there first.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::SystemTime;

use async_trait::async_trait;
use keygate::key::KeyDigest;
use keygate::manage::KeyUpdate;
use keygate::manage::Revoked;
use keygate::store::{AccountId, KeyId, KeyRecord};
use keygate::{
    KeyManager, KeyStore, KeyStoreWrite, Keygate, ManageError, MemoryStore, NewKey, StoreError,
};

#[tokio::test]
async fn memory_store_bumps_the_version_on_replace_and_refuses_stale_records() {
    let store = Arc::new(MemoryStore::new());
    let (_gate, manager) = Keygate::managed(store.clone()).build();
    let created = manager
        .create("acct".into(), NewKey::named("k"))
        .await
        .unwrap();
    let read = store.get(&created.view.id).await.unwrap().unwrap();
    assert_eq!(read.version, 0, "a new record starts at version 0");

    let mut first = read.clone();
    first.name = "first".into();
    store.replace(first).await.unwrap();
    assert_eq!(store.get(&read.id).await.unwrap().unwrap().version, 1);

    let mut stale = read.clone();
    stale.name = "stale".into();
    assert!(matches!(
        store.replace(stale).await,
        Err(StoreError::VersionConflict)
    ));
    let stored = store.get(&read.id).await.unwrap().unwrap();
    assert_eq!(stored.name, "first", "a refused replace writes nothing");
    assert_eq!(stored.version, 1);
}

/// A store on which "another instance" changes the key between the manager's read and
/// its replace, once.
struct RacingStore {
    inner: MemoryStore,
    race: AtomicBool,
    change: fn(&mut KeyRecord),
}

#[async_trait]
impl KeyStore for RacingStore {
    async fn find_by_digest(&self, digest: &KeyDigest) -> Result<Option<KeyRecord>, StoreError> {
        self.inner.find_by_digest(digest).await
    }
}

#[async_trait]
impl KeyStoreWrite for RacingStore {
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
        if self.race.swap(false, Ordering::SeqCst) {
            let mut other = self.inner.get(&record.id).await?.expect("key exists");
            (self.change)(&mut other);
            self.inner.replace(other).await?;
        }
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

fn racing(change: fn(&mut KeyRecord)) -> (Arc<RacingStore>, KeyManager) {
    let store = Arc::new(RacingStore {
        inner: MemoryStore::new(),
        race: AtomicBool::new(false),
        change,
    });
    let (_gate, manager) = Keygate::managed(store.clone()).build();
    (store, manager)
}

#[tokio::test]
async fn update_racing_another_writer_keeps_both_changes() {
    let (store, manager) = racing(|r| {
        r.metadata.insert("team".into(), "payments".into());
    });
    let account = AccountId::from("acct");
    let created = manager
        .create(account.clone(), NewKey::named("before"))
        .await
        .unwrap();
    store.race.store(true, Ordering::SeqCst);
    let view = manager
        .update(
            &account,
            &created.view.id,
            KeyUpdate::default().name("after"),
        )
        .await
        .unwrap();
    assert!(!store.race.load(Ordering::SeqCst), "the race happened");
    assert_eq!(view.name, "after");
    let stored = store.get(&created.view.id).await.unwrap().unwrap();
    assert_eq!(stored.name, "after", "our change survived");
    assert_eq!(
        stored.metadata.get("team").and_then(|v| v.as_str()),
        Some("payments"),
        "the other writer's change survived"
    );
    assert_eq!(stored.version, 2);
}

#[tokio::test]
async fn revoke_racing_a_revoke_elsewhere_reports_already_revoked() {
    let (store, manager) = racing(|r| r.revoked_at = Some(SystemTime::now()));
    let account = AccountId::from("acct");
    let created = manager
        .create(account.clone(), NewKey::named("k"))
        .await
        .unwrap();
    store.race.store(true, Ordering::SeqCst);
    let outcome = manager.revoke(&account, &created.view.id).await.unwrap();
    assert_eq!(outcome, Revoked::Already);
    assert_eq!(
        store.get(&created.view.id).await.unwrap().unwrap().version,
        1
    );
}

#[tokio::test]
async fn roll_racing_a_disable_elsewhere_keeps_the_disable() {
    let (store, manager) = racing(|r| r.disabled = true);
    let account = AccountId::from("acct");
    let created = manager
        .create(account.clone(), NewKey::named("k"))
        .await
        .unwrap();
    store.race.store(true, Ordering::SeqCst);
    let rolled = manager
        .roll(&account, &created.view.id, None)
        .await
        .unwrap();
    let stored = store.get(&created.view.id).await.unwrap().unwrap();
    assert!(stored.disabled, "the concurrent disable survived the roll");
    assert_eq!(
        stored.digest,
        manager
            .keygate()
            .hasher()
            .digest(rolled.key.expose_secret()),
        "the roll's new secret is the stored one"
    );
}

/// A store on which every replace loses a race.
struct AlwaysStale(MemoryStore);

#[async_trait]
impl KeyStore for AlwaysStale {
    async fn find_by_digest(&self, digest: &KeyDigest) -> Result<Option<KeyRecord>, StoreError> {
        self.0.find_by_digest(digest).await
    }
}

#[async_trait]
impl KeyStoreWrite for AlwaysStale {
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
    async fn replace(&self, _: KeyRecord) -> Result<(), StoreError> {
        Err(StoreError::VersionConflict)
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
    async fn record_last_used(&self, id: &KeyId, at: SystemTime) -> Result<(), StoreError> {
        self.0.record_last_used(id, at).await
    }
}

#[tokio::test]
async fn endless_conflicts_end_in_a_retryable_store_error() {
    let store = Arc::new(AlwaysStale(MemoryStore::new()));
    let (_gate, manager) = Keygate::managed(store.clone()).build();
    let account = AccountId::from("acct");
    let created = manager
        .create(account.clone(), NewKey::named("k"))
        .await
        .unwrap();
    let err = manager
        .revoke(&account, &created.view.id)
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        ManageError::Store(StoreError::VersionConflict)
    ));
    assert_eq!(err.status(), http::StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test]
async fn a_metadata_merge_patch_racing_another_writer_keeps_both_members() {
    let (store, manager) = racing(|r| {
        r.metadata.insert("team".into(), "payments".into());
    });
    let account = AccountId::from("acct");
    let created = manager
        .create(account.clone(), NewKey::named("k"))
        .await
        .unwrap();
    store.race.store(true, Ordering::SeqCst);
    let mut patch = serde_json::Map::new();
    patch.insert("owner".into(), "ops".into());
    let view = manager
        .update(
            &account,
            &created.view.id,
            KeyUpdate::default().merge_metadata(patch),
        )
        .await
        .unwrap();
    assert!(!store.race.load(Ordering::SeqCst), "the race happened");
    let expected = serde_json::json!({"team": "payments", "owner": "ops"});
    assert_eq!(serde_json::Value::Object(view.metadata), expected);
    let stored = store.get(&created.view.id).await.unwrap().unwrap();
    assert_eq!(serde_json::Value::Object(stored.metadata), expected);
}
