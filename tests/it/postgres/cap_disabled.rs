//! The active-key cap on a real PostgreSQL counts disabled keys, as `MemoryStore` does.
#![cfg(feature = "postgres")]

use std::sync::Arc;

use crate::common::pg::*;
use keygate::manage::{KeyUpdate, ManagerConfig};
use keygate::store::AccountId;
use keygate::{Keygate, ManageError, NewKey};

#[tokio::test]
async fn disabled_keys_count_towards_the_cap_on_postgres() {
    let schema = schema_name("cap_disabled");
    let store = Arc::new(store_on(&schema, "cap_disabled").await);
    let (_gate, manager) = Keygate::managed(store)
        .manager_config(ManagerConfig::default().max_active_keys(Some(2)))
        .build();
    let account = AccountId::new("acct");
    let paused = manager
        .create(account.clone(), NewKey::named("paused"))
        .await
        .unwrap();
    manager
        .create(account.clone(), NewKey::named("working"))
        .await
        .unwrap();
    let set = |disabled| KeyUpdate::default().disabled(disabled);
    manager
        .update(&account, &paused.view.id, set(true))
        .await
        .unwrap();
    // A create at the cap is refused although one key is disabled.
    assert!(matches!(
        manager
            .create(account.clone(), NewKey::named("third"))
            .await,
        Err(ManageError::LimitReached { limit: 2 })
    ));
    // Enabling it again keeps the account at the cap.
    manager
        .update(&account, &paused.view.id, set(false))
        .await
        .unwrap();
    assert!(matches!(
        manager
            .create(account.clone(), NewKey::named("third"))
            .await,
        Err(ManageError::LimitReached { limit: 2 })
    ));
    // Revoking one frees a place.
    manager.revoke(&account, &paused.view.id).await.unwrap();
    manager
        .create(account.clone(), NewKey::named("third"))
        .await
        .unwrap();
    drop_schema(&schema).await;
}
