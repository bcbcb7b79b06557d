//! The cap on active keys per account.

use crate::common::*;
use crate::lifecycle::support::*;
use keygate::manage::ManagerConfig;
use keygate::{ManageError, NewKey};
use std::time::Duration;

// ---------------------------------------------------------------------------------------
// Active-key cap

#[tokio::test]
async fn the_51st_active_key_is_refused_with_api_key_limit_reached() {
    let h = Harness::new();
    let account = acct("acct_1");
    let mut ids = Vec::new();
    for i in 0..50 {
        let created = h
            .manager
            .create(account.clone(), NewKey::named(format!("k{i}")))
            .await
            .unwrap();
        ids.push(created.view.id);
    }
    let err = h
        .manager
        .create(account.clone(), NewKey::named("one too many"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, ManageError::LimitReached { limit: 50 }),
        "{err:?}"
    );
    assert_eq!(err.code(), "api_key_limit_reached");
    assert_eq!(err.status(), 409);
    assert_eq!(
        h.manager
            .list(&account, &page_query(Some(100), None))
            .await
            .unwrap()
            .data
            .len(),
        50,
        "nothing was written"
    );

    // Another account is not affected.
    h.key("acct_2", &[]).await;

    // A revoked key no longer counts.
    h.manager.revoke(&account, &ids[7]).await.unwrap();
    h.manager
        .create(account.clone(), NewKey::named("replacement"))
        .await
        .unwrap();
    assert!(matches!(
        h.manager
            .create(account.clone(), NewKey::named("again"))
            .await,
        Err(ManageError::LimitReached { limit: 50 })
    ));
}

#[tokio::test]
async fn expired_keys_do_not_count_toward_the_cap() {
    let h = Harness::new();
    let account = acct("acct_1");
    for i in 0..10 {
        h.manager
            .create(
                account.clone(),
                NewKey::named(format!("short {i}")).expires_at(t0() + Duration::from_secs(60)),
            )
            .await
            .unwrap();
    }
    for i in 0..40 {
        h.manager
            .create(account.clone(), NewKey::named(format!("long {i}")))
            .await
            .unwrap();
    }
    assert!(matches!(
        h.manager.create(account.clone(), NewKey::named("x")).await,
        Err(ManageError::LimitReached { .. })
    ));
    h.time.advance(Duration::from_secs(60));
    for i in 0..10 {
        h.manager
            .create(account.clone(), NewKey::named(format!("new {i}")))
            .await
            .unwrap();
    }
    assert!(matches!(
        h.manager.create(account.clone(), NewKey::named("x")).await,
        Err(ManageError::LimitReached { .. })
    ));
}

#[tokio::test]
async fn the_cap_is_configurable() {
    let h = harness_with(ManagerConfig::default().max_active_keys(Some(2)));
    let manager = h.manager.clone();
    for _ in 0..2 {
        manager
            .create(acct("acct_1"), NewKey::named("k"))
            .await
            .unwrap();
    }
    let err = manager
        .create(acct("acct_1"), NewKey::named("k"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, ManageError::LimitReached { limit: 2 }),
        "{err:?}"
    );
    assert!(err.to_string().contains('2'));

    let unlimited = uncapped().manager;
    for _ in 0..60 {
        unlimited
            .create(acct("acct_1"), NewKey::named("k"))
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn a_disabled_key_counts_so_a_create_at_the_cap_is_refused() {
    let h = harness_with(ManagerConfig::default().max_active_keys(Some(2)));
    let account = acct("acct_cap_disabled");
    let first = h
        .manager
        .create(account.clone(), NewKey::named("paused"))
        .await
        .unwrap();
    h.manager
        .create(account.clone(), NewKey::named("working"))
        .await
        .unwrap();
    h.manager
        .update(
            &account,
            &first.view.id,
            keygate::manage::KeyUpdate::default().disabled(true),
        )
        .await
        .unwrap();
    let err = h
        .manager
        .create(account.clone(), NewKey::named("third"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, ManageError::LimitReached { limit: 2 }),
        "{err:?}"
    );
    // Revoking the disabled key frees its place.
    h.manager.revoke(&account, &first.view.id).await.unwrap();
    h.manager
        .create(account.clone(), NewKey::named("third"))
        .await
        .unwrap();
}

#[tokio::test]
async fn re_enabling_a_key_at_the_cap_never_takes_the_account_past_it() {
    let h = harness_with(ManagerConfig::default().max_active_keys(Some(2)));
    let account = acct("acct_cap_reenable");
    let paused = h
        .manager
        .create(account.clone(), NewKey::named("paused"))
        .await
        .unwrap();
    let set = |disabled| keygate::manage::KeyUpdate::default().disabled(disabled);
    h.manager
        .update(&account, &paused.view.id, set(true))
        .await
        .unwrap();
    // The disabled key holds its place: only one more fits.
    h.manager
        .create(account.clone(), NewKey::named("second"))
        .await
        .unwrap();
    assert!(matches!(
        h.manager.create(account.clone(), NewKey::named("x")).await,
        Err(ManageError::LimitReached { limit: 2 })
    ));
    // Enabling it again is allowed, and the account is at the cap, not past it.
    let view = h
        .manager
        .update(&account, &paused.view.id, set(false))
        .await
        .unwrap();
    assert!(!view.disabled);
    let listed = h
        .manager
        .list(&account, &page_query(Some(100), None))
        .await
        .unwrap();
    assert_eq!(listed.data.iter().filter(|k| !k.disabled).count(), 2);
    assert!(matches!(
        h.manager.create(account.clone(), NewKey::named("x")).await,
        Err(ManageError::LimitReached { limit: 2 })
    ));
}
