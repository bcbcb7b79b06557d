//! Hard delete and the list status filter through a `KeyManager` over a real
//! PostgreSQL, in a schema of its own.
#![cfg(feature = "postgres")]

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use crate::common::pg::*;
use keygate::clock::Clock;
use keygate::manage::{ListQuery, ManagerConfig};
use keygate::store::KeyStatusFilter;
use keygate::store::{AccountId, KeyId};
use keygate::{AuthError, KeyStore, KeyStoreWrite, Keygate, ManageError, NewKey};

fn ids(page: &keygate::manage::Page) -> Vec<KeyId> {
    page.data.iter().map(|v| v.id.clone()).collect()
}

#[tokio::test]
async fn delete_and_status_filters_work_on_postgres_in_creation_order() {
    let schema = schema_name("lifecycle");
    let store = Arc::new(store_on(&schema, "lifecycle").await);
    // A clock that stands still: every key is created in the same microsecond.
    let (clock, time) = Clock::manual(UNIX_EPOCH + Duration::from_secs(1_800_000_000));
    let (gate, manager) = Keygate::managed(store.clone())
        .clock(clock)
        .manager_config(ManagerConfig::default().max_active_keys(None))
        .build();
    let account = AccountId::new("acct");
    let mut created = Vec::new();
    for i in 0..12 {
        created.push(
            manager
                .create(account.clone(), NewKey::named(format!("k{i}")))
                .await
                .unwrap(),
        );
    }
    let all: Vec<KeyId> = created.iter().map(|c| c.view.id.clone()).collect();
    time.advance(Duration::from_secs(1));
    manager.revoke(&account, &all[3]).await.unwrap();

    // Pages of 5, in creation order, revoked key left out by default.
    let mut seen = Vec::new();
    let mut query = ListQuery::new().limit(5);
    loop {
        let page = manager.list(&account, &query).await.unwrap();
        seen.extend(ids(&page));
        match page.next_cursor {
            Some(c) => query = query.cursor(c),
            None => break,
        }
    }
    let mut active = all.clone();
    active.remove(3);
    assert_eq!(seen, active);
    let revoked = ListQuery::new().status(KeyStatusFilter::Revoked);
    assert_eq!(
        ids(&manager.list(&account, &revoked).await.unwrap()),
        [all[3].clone()]
    );
    let every = ListQuery::new().status(KeyStatusFilter::All);
    assert_eq!(ids(&manager.list(&account, &every).await.unwrap()), all);

    // Delete: cached copy dropped, row and digest gone, a second delete is NotFound.
    let key = created[5].key.expose_secret();
    assert!(gate.verify_key(key).await.is_ok());
    manager.delete(&account, &all[5]).await.unwrap();
    assert!(matches!(
        gate.verify_key(key).await,
        Err(AuthError::InvalidKey)
    ));
    assert!(store.get(&all[5]).await.unwrap().is_none());
    let digest = gate.hasher().digest(key);
    assert!(store.find_by_digest(&digest).await.unwrap().is_none());
    assert!(matches!(
        manager.delete(&account, &all[5]).await,
        Err(ManageError::NotFound)
    ));
    assert!(!ids(&manager.list(&account, &every).await.unwrap()).contains(&all[5]));
    // The revoked key can be deleted too.
    manager.delete(&account, &all[3]).await.unwrap();
    assert!(ids(&manager.list(&account, &revoked).await.unwrap()).is_empty());
    drop_schema(&schema).await;
}

#[tokio::test]
async fn imports_keep_their_fields_refuse_duplicates_and_respect_the_cap_on_postgres() {
    use keygate::key::KeyHasher;
    use keygate::manage::ImportedKey;
    use keygate::Environment;
    let schema = schema_name("import");
    let store = Arc::new(store_on(&schema, "import").await);
    let (gate, manager) = Keygate::managed(store.clone())
        .manager_config(ManagerConfig::default().max_active_keys(Some(2)))
        .build();
    let account = AccountId::new("acct");
    let plaintext = gate
        .format()
        .generate(gate.format().prefix("sk_live_").unwrap())
        .unwrap();
    let created = UNIX_EPOCH + Duration::from_secs(1_600_000_000);
    let view = manager
        .import(
            account.clone(),
            ImportedKey::plaintext("migrated", plaintext.expose_secret())
                .id(KeyId::new("legacy_1"))
                .scopes(["read"])
                .created_at(created),
        )
        .await
        .unwrap();
    assert_eq!(view.environment, Some(Environment::Live));
    let stored = store.get(&KeyId::new("legacy_1")).await.unwrap().unwrap();
    assert_eq!(stored.created_at, created);
    assert_eq!(stored.name, "migrated");
    assert!(stored.scopes.contains("read"));
    assert!(gate.verify_key(plaintext.expose_secret()).await.is_ok());

    // By digest only.
    let other = "tc_made_elsewhere_but_in_no_format";
    let digest = KeyHasher::sha256().digest(other);
    manager
        .import(
            account.clone(),
            ImportedKey::sha256_digest("hashed", digest, "tc_").id(KeyId::new("legacy_2")),
        )
        .await
        .unwrap();
    assert_eq!(
        store
            .find_by_digest(&digest)
            .await
            .unwrap()
            .unwrap()
            .id
            .as_str(),
        "legacy_2"
    );

    // Duplicate id and duplicate secret: refused; the cap of 2 is reached.
    let again = ImportedKey::plaintext("again", plaintext.expose_secret()).id(KeyId::new("x_3"));
    assert!(matches!(
        manager.import(account.clone(), again).await,
        Err(ManageError::AlreadyExists(_))
    ));
    let third = gate
        .format()
        .generate(gate.format().prefix("tc_").unwrap())
        .unwrap();
    let same_id =
        ImportedKey::plaintext("same id", third.expose_secret()).id(KeyId::new("legacy_1"));
    assert!(matches!(
        manager.import(account.clone(), same_id).await,
        Err(ManageError::AlreadyExists(_))
    ));
    let over = ImportedKey::plaintext("third", third.expose_secret());
    assert!(matches!(
        manager.import(account.clone(), over).await,
        Err(ManageError::LimitReached { limit: 2 })
    ));
    let all = ListQuery::new().status(KeyStatusFilter::All);
    assert_eq!(manager.list(&account, &all).await.unwrap().data.len(), 2);
    drop_schema(&schema).await;
}
