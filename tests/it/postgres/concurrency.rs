//! `PgStore` under concurrency and failure: the active-key cap against creators on
//! separate pools, compare-and-set updates from two instances, batched last-used writes,
//! and lost connections. Each test works in a schema of its own.
#![cfg(feature = "postgres")]

use std::sync::Arc;
use std::time::Duration;

use crate::common::pg::*;
use crate::common::services::*;
use keygate::manage::{KeyUpdate, ManagerConfig};
use keygate::store::{AccountId, KeyId};
use keygate::store::{PgStore, PgStoreBuilder};
use keygate::{AuthError, KeyManager, KeyStore, KeyStoreWrite, Keygate, NewKey, StoreError};

#[tokio::test]
async fn the_active_key_cap_holds_against_concurrent_creators_on_separate_pools() {
    const CAP: usize = 10;
    let schema = schema_name("cap");
    store_on(&schema, "cap").await;
    for round in 0..3 {
        let account = AccountId::new(format!("acct_{round}"));
        let stores: Vec<Arc<PgStore>> = (0..8)
            .map(|i| {
                let mut config = pg_config();
                config.application_name(format!("cap{i}"));
                Arc::new(
                    PgStoreBuilder::from_config(config)
                        .schema(schema.clone())
                        .max_connections(2)
                        // Generous: creators queue on the account's lock on a busy machine.
                        .timeout(Duration::from_secs(20))
                        .build()
                        .unwrap(),
                )
            })
            .collect();
        let config = ManagerConfig::default().max_active_keys(Some(CAP));
        let managers: Vec<KeyManager> = stores
            .iter()
            .map(|s| {
                Keygate::managed(s.clone())
                    .manager_config(config.clone())
                    .build()
                    .1
            })
            .collect();
        // Fill all but the last three slots, then race 8 instances x 2 creations for them.
        for i in 0..CAP - 3 {
            managers[0]
                .create(account.clone(), NewKey::named(format!("pre {i}")))
                .await
                .unwrap();
        }
        let barrier = Arc::new(tokio::sync::Barrier::new(16));
        let tasks: Vec<_> = (0..16)
            .map(|i| {
                let manager = managers[i % 8].clone();
                let account = account.clone();
                let barrier = barrier.clone();
                tokio::spawn(async move {
                    barrier.wait().await;
                    manager
                        .create(account, NewKey::named(format!("race {i}")))
                        .await
                })
            })
            .collect();
        let mut won = 0;
        for t in tasks {
            match t.await.unwrap() {
                Ok(_) => won += 1,
                Err(keygate::ManageError::LimitReached { limit }) => assert_eq!(limit, CAP),
                Err(other) => panic!("unexpected error: {other}"),
            }
        }
        assert_eq!(won, 3, "round {round}: exactly the free slots were taken");
        let count: i64 = pg_admin()
            .await
            .query_one(
                &format!("SELECT count(*) FROM \"{schema}\".keys WHERE account_id = $1"),
                &[&account.as_str()],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(
            count as usize, CAP,
            "round {round}: the cap was reached, never exceeded"
        );
    }
    drop_schema(&schema).await;
}

#[tokio::test]
async fn a_stale_replace_is_refused_and_a_fresh_one_bumps_the_version() {
    let schema = schema_name("cas");
    let store = store_on(&schema, "cas").await;
    let r = record("ak_1", "acct", 1);
    store
        .insert(r.clone(), None, at(1_700_000_000))
        .await
        .unwrap();
    let mut first = r.clone();
    first.name = "first".into();
    store.replace(first).await.unwrap();
    let mut stale = r.clone();
    stale.name = "stale".into();
    assert!(matches!(
        store.replace(stale).await,
        Err(StoreError::VersionConflict)
    ));
    let stored = store.get(&r.id).await.unwrap().unwrap();
    assert_eq!((stored.name.as_str(), stored.version), ("first", 1));
    let mut moved = stored.clone();
    moved.account_id = AccountId::new("other");
    assert!(matches!(
        store.replace(moved).await,
        Err(StoreError::Conflict(_))
    ));
    let mut ghost = stored;
    ghost.id = KeyId::new("ak_missing");
    assert!(matches!(
        store.replace(ghost).await,
        Err(StoreError::NotFound)
    ));
    drop_schema(&schema).await;
}

#[tokio::test]
async fn concurrent_updates_from_two_instances_both_survive() {
    let schema = schema_name("upd");
    let a = Arc::new(store_on(&schema, "upd_a").await);
    let b = Arc::new(store_on(&schema, "upd_b").await);
    let manager_a = Keygate::managed(a.clone()).build().1;
    let manager_b = Keygate::managed(b.clone()).build().1;
    let account = AccountId::new("acct");
    let id = manager_a
        .create(account.clone(), NewKey::named("start"))
        .await
        .unwrap()
        .view
        .id;
    for round in 0..15u64 {
        let name = KeyUpdate::default().name(format!("name {round}"));
        let mut meta = serde_json::Map::new();
        meta.insert("round".into(), round.into());
        let metadata = KeyUpdate::default().metadata(meta);
        let (ra, rb) = tokio::join!(
            manager_a.update(&account, &id, name),
            manager_b.update(&account, &id, metadata)
        );
        ra.unwrap();
        rb.unwrap();
        let stored = a.get(&id).await.unwrap().unwrap();
        assert_eq!(
            stored.name,
            format!("name {round}"),
            "instance A's change survived"
        );
        assert_eq!(
            stored.metadata.get("round"),
            Some(&round.into()),
            "B's change survived"
        );
        assert_eq!(
            stored.version,
            2 * (round + 1),
            "every update is one replace"
        );
    }
    drop_schema(&schema).await;
}

#[tokio::test]
async fn last_used_writes_are_buffered_and_flushed_in_batches() {
    let schema = schema_name("used");
    let store = store_on(&schema, "used").await;
    for (i, id) in ["ak_1", "ak_2"].iter().enumerate() {
        store
            .insert(record(id, "acct", i as u8 + 1), None, at(1_700_000_000))
            .await
            .unwrap();
    }
    let (one, two) = (KeyId::new("ak_1"), KeyId::new("ak_2"));
    store
        .record_last_used(&one, at(1_700_000_100))
        .await
        .unwrap();
    store
        .record_last_used(&one, at(1_700_000_050))
        .await
        .unwrap();
    store
        .record_last_used(&two, at(1_700_000_200))
        .await
        .unwrap();
    store
        .record_last_used(&KeyId::new("ak_gone"), at(1_700_000_200))
        .await
        .unwrap();
    assert_eq!(
        store.get(&one).await.unwrap().unwrap().last_used_at,
        None,
        "not written yet"
    );
    assert_eq!(
        store.flush_last_used().await.unwrap(),
        3,
        "one batch of three keys"
    );
    assert_eq!(
        store.get(&one).await.unwrap().unwrap().last_used_at,
        Some(at(1_700_000_100))
    );
    assert_eq!(
        store.get(&two).await.unwrap().unwrap().last_used_at,
        Some(at(1_700_000_200))
    );
    assert_eq!(
        store.flush_last_used().await.unwrap(),
        0,
        "nothing left to write"
    );

    // An older time never overwrites a newer one, and a replace keeps the newer one.
    store
        .record_last_used(&one, at(1_700_000_010))
        .await
        .unwrap();
    store.flush_last_used().await.unwrap();
    let mut stale = store.get(&one).await.unwrap().unwrap();
    assert_eq!(stale.last_used_at, Some(at(1_700_000_100)));
    stale.last_used_at = Some(at(1_700_000_001));
    store.replace(stale).await.unwrap();
    assert_eq!(
        store.get(&one).await.unwrap().unwrap().last_used_at,
        Some(at(1_700_000_100))
    );

    // The background task flushes by itself.
    let auto = PgStoreBuilder::from_config(pg_config())
        .schema(schema.clone())
        .last_used_flush_interval(Duration::from_millis(20))
        .build()
        .unwrap();
    auto.record_last_used(&two, at(1_700_000_300))
        .await
        .unwrap();
    let written = eventually(Duration::from_secs(5), || async {
        store.get(&two).await.unwrap().unwrap().last_used_at == Some(at(1_700_000_300))
    })
    .await;
    assert!(written, "the background flush wrote the buffered time");
    drop_schema(&schema).await;
}

#[tokio::test]
async fn lookups_fail_while_connections_are_lost_and_recover_without_a_restart() {
    let schema = schema_name("loss");
    let role = unique("kgt_role");
    create_role(&role).await;
    store_on(&schema, "loss_setup").await;
    let app = unique("loss");
    let store = Arc::new(
        PgStoreBuilder::from_config(pg_config_as(&role, &app))
            .schema(schema.clone())
            .timeout(Duration::from_millis(500))
            .build()
            .unwrap(),
    );
    let (gate, manager) = Keygate::managed(store.clone()).build();
    let account = AccountId::new("acct");
    let key = manager
        .create(account.clone(), NewKey::named("k"))
        .await
        .unwrap()
        .key;
    let uncached = manager
        .create(account, NewKey::named("u"))
        .await
        .unwrap()
        .key;
    assert!(gate.verify_key(key.expose_secret()).await.is_ok());

    // Every connection of the pool is killed, and new logins are refused meanwhile.
    set_login(&role, false).await;
    assert!(
        terminate(&app).await >= 1,
        "the pool had connections to lose"
    );
    let digest = gate.hasher().digest(uncached.expose_secret());
    for _ in 0..3 {
        assert!(
            matches!(
                store.find_by_digest(&digest).await,
                Err(StoreError::Unavailable(_))
            ),
            "a lookup while the database is unreachable fails, never 'no such key'"
        );
    }
    assert!(matches!(
        gate.verify_key(uncached.expose_secret()).await,
        Err(AuthError::StoreUnavailable)
    ));
    assert!(
        gate.verify_key(key.expose_secret()).await.is_ok(),
        "a cached key still works"
    );

    // The database is back: the same store instance recovers by itself.
    set_login(&role, true).await;
    let recovered = eventually(Duration::from_secs(5), || async {
        store
            .find_by_digest(&digest)
            .await
            .is_ok_and(|r| r.is_some())
    })
    .await;
    assert!(recovered, "lookups work again without restarting the store");
    assert!(gate.verify_key(uncached.expose_secret()).await.is_ok());

    // Terminating the backends alone is survived: the pool replaces broken connections.
    assert!(terminate(&app).await >= 1);
    let survived = eventually(Duration::from_secs(5), || async {
        store
            .find_by_digest(&digest)
            .await
            .is_ok_and(|r| r.is_some())
    })
    .await;
    assert!(survived);
    drop(manager);
    drop(gate);
    drop(store);
    drop_role(&role).await;
    drop_schema(&schema).await;
}
