//! `PgStore` against a real PostgreSQL: migrations, records read back field for field,
//! lookups by current and previous digest, listing and deleting. Each test works in a
//! schema of its own.
#![cfg(feature = "postgres")]

use std::sync::Arc;
use std::time::Duration;

use crate::common::pg::*;
use crate::common::services::*;
use keygate::client_ip::IpAllowlist;
use keygate::key::KeyDigest;
use keygate::scope::ScopeSet;
use keygate::store::GraceDigest;
use keygate::store::KeyStatusFilter::All;
use keygate::store::ListPosition;
use keygate::store::PgStore;
use keygate::store::{AccountId, KeyId, KeyRecord};
use keygate::{AuthError, KeyStore, KeyStoreWrite, Keygate, NewKey, StoreError};

#[tokio::test]
async fn a_stored_record_reads_back_field_for_field() {
    let schema = schema_name("round");
    let store = store_on(&schema, "round").await;
    let mut r = record("ak_1", "acct", 1);
    r.previous = Some(GraceDigest {
        digest: KeyDigest::from_bytes([2; 32]),
        until: at(1_800_000_000),
    });
    store
        .insert(r.clone(), None, at(1_700_000_000))
        .await
        .unwrap();
    assert_eq!(store.get(&r.id).await.unwrap(), Some(r.clone()));
    assert_eq!(
        store.find_by_digest(&r.digest).await.unwrap(),
        Some(r.clone()),
        "found by its current digest"
    );
    assert_eq!(
        store
            .find_by_digest(&KeyDigest::from_bytes([2; 32]))
            .await
            .unwrap(),
        Some(r.clone()),
        "found by its previous digest during the grace period"
    );
    assert_eq!(
        store
            .find_by_digest(&KeyDigest::from_bytes([3; 32]))
            .await
            .unwrap(),
        None
    );

    let mut bare = record("ak_2", "acct", 4);
    bare.environment = None;
    bare.scopes = ScopeSet::new();
    bare.ips = IpAllowlist::any();
    bare.expires_at = None;
    bare.rate_limit = None;
    bare.metadata = serde_json::Map::new();
    store
        .insert(bare.clone(), None, at(1_700_000_000))
        .await
        .unwrap();
    assert_eq!(store.get(&bare.id).await.unwrap(), Some(bare));
    drop_schema(&schema).await;
}

#[tokio::test]
async fn duplicate_ids_and_digests_conflict_without_naming_the_digest() {
    let schema = schema_name("dup");
    let store = store_on(&schema, "dup").await;
    let r = record("ak_1", "acct", 7);
    store
        .insert(r.clone(), None, at(1_700_000_000))
        .await
        .unwrap();
    let same_id = record("ak_1", "acct", 8);
    assert!(matches!(
        store.insert(same_id, None, at(1_700_000_000)).await,
        Err(StoreError::Conflict(_))
    ));
    let same_digest = record("ak_2", "acct", 7);
    let err = store
        .insert(same_digest, None, at(1_700_000_000))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err}");
    let hex = r.digest.to_hex();
    assert!(!format!("{err} {err:?}").contains(&hex[..16]));
    assert!(!format!("{err} {err:?}").contains("\\x0707"));
    assert_eq!(
        store.get(&KeyId::new("ak_2")).await.unwrap(),
        None,
        "nothing written"
    );
    drop_schema(&schema).await;
}

#[tokio::test]
async fn migrate_is_idempotent_and_safe_when_instances_race() {
    let schema = schema_name("mig");
    let stores: Vec<PgStore> = (0..6)
        .map(|_| {
            PgStore::builder(&postgres_url())
                .unwrap()
                .schema(schema.clone())
                .build()
                .unwrap()
        })
        .collect();
    let results = futures_util::future::join_all(stores.iter().map(|s| s.migrate())).await;
    for r in results {
        r.unwrap();
    }
    stores[0].migrate().await.unwrap();
    let admin = pg_admin().await;
    let rows = admin
        .query(
            &format!("SELECT version FROM \"{schema}\".schema_migrations ORDER BY version"),
            &[],
        )
        .await
        .unwrap();
    let mut versions: Vec<i32> = rows.iter().map(|r| r.get(0)).collect();
    versions.sort_unstable();
    let applied = versions.len();
    versions.dedup();
    assert_eq!(
        applied,
        versions.len(),
        "each migration applied exactly once"
    );
    assert!(
        versions.starts_with(&[1, 2]),
        "every migration applied: {versions:?}"
    );
    for shipped in [1, 2, 3, 4, 5, 6, 7, 8] {
        assert!(versions.contains(&shipped), "migration {shipped} applied");
    }

    admin
        .execute(
            &format!("INSERT INTO \"{schema}\".schema_migrations (version, description) VALUES (999, 'future')"),
            &[],
        )
        .await
        .unwrap();
    assert!(
        matches!(stores[1].migrate().await, Err(StoreError::Conflict(_))),
        "a schema migrated by a newer build is refused"
    );
    drop_schema(&schema).await;
}

#[tokio::test]
async fn invalid_schema_names_are_refused() {
    for bad in [
        "",
        "Keys",
        "a-b",
        "x\"; DROP TABLE y; --",
        "pg_keys",
        "1abc",
        &"a".repeat(41),
    ] {
        let built = PgStore::builder(&postgres_url())
            .unwrap()
            .schema(bad)
            .build();
        assert!(
            matches!(built, Err(StoreError::Conflict(_))),
            "{bad:?} accepted"
        );
    }
    assert!(PgStore::builder("not a url at all").is_err());
}

#[tokio::test]
async fn roll_with_grace_indexes_both_digests_and_revoke_drops_the_old_one() {
    let schema = schema_name("roll");
    let store = Arc::new(store_on(&schema, "roll").await);
    let (gate, manager) = Keygate::managed(store.clone()).build();
    let account = AccountId::new("acct");
    let created = manager
        .create(account.clone(), NewKey::named("k"))
        .await
        .unwrap();
    let rolled = manager
        .roll(&account, &created.view.id, Some(Duration::from_secs(3600)))
        .await
        .unwrap();
    let old = created.key.expose_secret();
    let new = rolled.key.expose_secret();
    assert!(
        gate.verify_key(old).await.is_ok(),
        "the old secret works during grace"
    );
    assert!(gate.verify_key(new).await.is_ok());
    manager.revoke(&account, &created.view.id).await.unwrap();
    assert!(matches!(
        gate.verify_key(new).await,
        Err(AuthError::RevokedKey)
    ));
    let old_digest = gate.hasher().digest(old);
    assert_eq!(
        store.find_by_digest(&old_digest).await.unwrap(),
        None,
        "revoking ends the grace period"
    );
    drop_schema(&schema).await;
}

#[tokio::test]
async fn keys_created_at_one_instant_list_in_id_order_and_delete_removes_a_key() {
    let schema = schema_name("list");
    let store = store_on(&schema, "list").await;
    for (i, id) in ["ak_b", "ak_a", "ak_C", "ak_d"].iter().enumerate() {
        store
            .insert(record(id, "acct", i as u8 + 1), None, at(1_700_000_000))
            .await
            .unwrap();
    }
    store
        .insert(record("ak_z", "other", 9), None, at(1_700_000_000))
        .await
        .unwrap();
    let account = AccountId::new("acct");
    let ids = |v: Vec<KeyRecord>| v.into_iter().map(|r| r.id.to_string()).collect::<Vec<_>>();
    assert_eq!(
        ids(store.list(&account, All, None, 2).await.unwrap()),
        ["ak_C", "ak_a"]
    );
    let after = ListPosition::new(at(1_700_000_000), KeyId::new("ak_a"));
    assert_eq!(
        ids(store.list(&account, All, Some(&after), 10).await.unwrap()),
        ["ak_b", "ak_d"]
    );

    let deleted = store.delete(&KeyId::new("ak_a")).await.unwrap();
    assert_eq!(deleted.id.as_str(), "ak_a");
    assert_eq!(deleted.digest, KeyDigest::from_bytes([2; 32]));
    assert_eq!(
        ids(store.list(&account, All, None, 10).await.unwrap()),
        ["ak_C", "ak_b", "ak_d"]
    );
    assert_eq!(store.get(&KeyId::new("ak_a")).await.unwrap(), None);
    assert_eq!(
        store
            .find_by_digest(&KeyDigest::from_bytes([2; 32]))
            .await
            .unwrap(),
        None
    );
    assert!(matches!(
        store.delete(&KeyId::new("ak_a")).await,
        Err(StoreError::NotFound)
    ));
    drop_schema(&schema).await;
}
