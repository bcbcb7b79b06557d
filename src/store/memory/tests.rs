//! Unit tests of `MemoryStore`: retention, the per-account bound, compare-and-set.
use super::*;
use crate::client_ip::IpAllowlist;
use crate::scope::ScopeSet;
use crate::store::KeyStore;
use std::time::UNIX_EPOCH;

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_700_000_000 + secs)
}

fn record(id: &str, account: &str) -> KeyRecord {
    KeyRecord {
        id: KeyId::from(id),
        account_id: AccountId::from(account),
        name: "k".into(),
        prefix: "tc_".into(),
        start: "tc_abcd".into(),
        environment: None,
        scopes: ScopeSet::new(),
        ips: IpAllowlist::any(),
        expires_at: None,
        revoked_at: None,
        disabled: false,
        rate_limit: None,
        metadata: Default::default(),
        usage: Default::default(),
        digest: crate::key::KeyHasher::sha256().digest(id),
        previous: None,
        created_at: at(0),
        updated_at: at(0),
        last_used_at: None,
        version: 0,
        leak: None,
    }
}

async fn revoke(store: &MemoryStore, id: &str, when: SystemTime) {
    let mut r = store.get(&KeyId::from(id)).await.unwrap().unwrap();
    r.revoked_at = Some(when);
    store.replace(r).await.unwrap();
}

#[tokio::test]
async fn revoked_keys_are_purged_after_the_retention() {
    let store = MemoryStore::new().revoked_retention(Some(Duration::from_secs(100)));
    store
        .insert(record("ak_1", "a"), None, at(0))
        .await
        .unwrap();
    store
        .insert(record("ak_2", "a"), None, at(0))
        .await
        .unwrap();
    revoke(&store, "ak_1", at(10)).await;
    assert_eq!(store.purge(at(109)), 0);
    assert_eq!(store.len(), 2);
    assert_eq!(store.purge(at(110)), 1);
    assert_eq!(store.len(), 1);
    assert!(store.get(&KeyId::from("ak_1")).await.unwrap().is_none());
    let digest = record("ak_1", "a").digest;
    assert!(store.find_by_digest(&digest).await.unwrap().is_none());
    let listed = store
        .list(&AccountId::from("a"), KeyStatusFilter::All, None, 10)
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);
    // An insert purges too.
    revoke(&store, "ak_2", at(200)).await;
    store
        .insert(record("ak_3", "b"), None, at(300))
        .await
        .unwrap();
    assert_eq!(store.len(), 1);
}

#[tokio::test]
async fn an_account_keeps_a_bounded_number_of_ended_keys() {
    let store = MemoryStore::new()
        .revoked_retention(None)
        .max_ended_keys_per_account(Some(3));
    for i in 0..10 {
        let id = format!("ak_{i:02}");
        let mut r = record(&id, "a");
        if i % 2 == 1 {
            // Odd keys expire at i seconds; even ones are revoked at i seconds.
            r.expires_at = Some(at(i));
        }
        store.insert(r, None, at(i)).await.unwrap();
        if i % 2 == 0 {
            revoke(&store, &id, at(i)).await;
        }
    }
    // Another account's keys are untouched by a's bound.
    store
        .insert(record("ak_b", "b"), None, at(0))
        .await
        .unwrap();
    store
        .insert(record("ak_z", "a"), None, at(20))
        .await
        .unwrap();
    let kept: Vec<String> = store
        .list(&AccountId::from("a"), KeyStatusFilter::All, None, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.id.to_string())
        .collect();
    // The three most recently ended (7, 8, 9) and the new key.
    assert_eq!(kept, ["ak_07", "ak_08", "ak_09", "ak_z"]);
    assert_eq!(store.len(), 5);
}

#[tokio::test]
async fn delete_removes_every_trace_of_a_key_in_any_state() {
    let store = MemoryStore::new();
    let mut rolled = record("ak_1", "a");
    rolled.previous = Some(crate::store::GraceDigest {
        digest: crate::key::KeyHasher::sha256().digest("old"),
        until: at(1000),
    });
    store.insert(rolled.clone(), None, at(0)).await.unwrap();
    store
        .insert(record("ak_2", "a"), None, at(0))
        .await
        .unwrap();
    revoke(&store, "ak_2", at(5)).await;

    let deleted = store.delete(&KeyId::from("ak_1")).await.unwrap();
    assert_eq!(deleted.id, rolled.id);
    for d in rolled.digests() {
        assert!(store.find_by_digest(&d).await.unwrap().is_none());
    }
    store.delete(&KeyId::from("ak_2")).await.unwrap();
    assert!(store.is_empty());
    let listed = store
        .list(&AccountId::from("a"), KeyStatusFilter::All, None, 10)
        .await
        .unwrap();
    assert!(listed.is_empty());
    assert!(matches!(
        store.delete(&KeyId::from("ak_1")).await,
        Err(StoreError::NotFound)
    ));
    // Nothing of the revoked key is left for the retention to trip over.
    assert_eq!(store.purge(at(100_000_000)), 0);
    // Its digest is free for a new key.
    store
        .insert(record("ak_1", "a"), None, at(6))
        .await
        .unwrap();
}

#[tokio::test]
async fn list_filters_by_status_in_creation_order_then_id() {
    let store = MemoryStore::new();
    // Inserted out of order: creation times 3, 1, 1, 2.
    for (id, created) in [("ak_d", 3), ("ak_b", 1), ("ak_a", 1), ("ak_c", 2)] {
        let mut r = record(id, "a");
        r.created_at = at(created);
        store.insert(r, None, at(created)).await.unwrap();
    }
    revoke(&store, "ak_b", at(4)).await;
    let ids = |v: Vec<KeyRecord>| v.into_iter().map(|r| r.id.to_string()).collect::<Vec<_>>();
    let list = |status, after: Option<ListPosition>, limit| {
        let store = &store;
        async move {
            ids(store
                .list(&AccountId::from("a"), status, after.as_ref(), limit)
                .await
                .unwrap())
        }
    };
    assert_eq!(
        list(KeyStatusFilter::All, None, 10).await,
        ["ak_a", "ak_b", "ak_c", "ak_d"]
    );
    assert_eq!(
        list(KeyStatusFilter::Active, None, 10).await,
        ["ak_a", "ak_c", "ak_d"]
    );
    assert_eq!(list(KeyStatusFilter::Revoked, None, 10).await, ["ak_b"]);
    assert_eq!(
        list(KeyStatusFilter::Active, None, 2).await,
        ["ak_a", "ak_c"]
    );
    // A page continues after a position even when its key was deleted since.
    let after = ListPosition::of(&store.get(&KeyId::from("ak_a")).await.unwrap().unwrap());
    store.delete(&KeyId::from("ak_a")).await.unwrap();
    assert_eq!(
        list(KeyStatusFilter::Active, Some(after), 1).await,
        ["ak_c"]
    );
}
