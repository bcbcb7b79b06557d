//! Validation errors that name the field and change nothing.

use crate::common::*;
use crate::lifecycle::support::*;
use keygate::manage::{KeyUpdate, ManagerConfig};
use keygate::scope::ScopeSet;
use keygate::store::RateLimit;
use keygate::{ManageError, NewKey};

// ---------------------------------------------------------------------------------------
// Validation

#[tokio::test]
async fn create_validation_errors_name_the_field() {
    let h = Harness::new();
    let account = acct("acct_1");
    let create = |new: NewKey| h.manager.create(account.clone(), new);

    invalid_field(create(NewKey::named("")).await, "name");
    invalid_field(create(NewKey::named("   ")).await, "name");
    invalid_field(create(NewKey::named("x".repeat(51))).await, "name");
    invalid_field(create(NewKey::named("line\nbreak")).await, "name");
    create(NewKey::named("x".repeat(50))).await.unwrap();
    // 50 characters, more than 50 bytes.
    create(NewKey::named("é".repeat(50))).await.unwrap();

    for bad in ["10.0.0.0/33", "not-an-ip", "300.1.1.1", "10.0.0.0/8/8"] {
        invalid_field(create(NewKey::named("k").ips([bad])).await, "ips");
    }
    for bad in ["has space", "", "semi;colon", &"s".repeat(65)] {
        invalid_field(create(NewKey::named("k").scopes([bad])).await, "scopes");
    }
    for bad in [RateLimit::new(0, 10), RateLimit::new(10, 0)] {
        invalid_field(
            create(NewKey::named("k").rate_limit(bad)).await,
            "rate_limit",
        );
    }
    invalid_field(create(NewKey::named("k").prefix("zz_")).await, "prefix");

    // Only the two valid names were created.
    assert_eq!(
        h.manager
            .list(&account, &page_query(None, None))
            .await
            .unwrap()
            .data
            .len(),
        2
    );
}

#[tokio::test]
async fn update_validation_errors_name_the_field_and_change_nothing() {
    let h = Harness::new();
    let account = acct("acct_1");
    let (id, _) = h.key("acct_1", &["a"]).await;
    let update = |u: KeyUpdate| h.manager.update(&account, &id, u);
    invalid_field(
        update(KeyUpdate::default().name("y".repeat(51))).await,
        "name",
    );
    invalid_field(
        update(KeyUpdate::default().ips(["192.168.0.0/40"])).await,
        "ips",
    );
    invalid_field(
        update(KeyUpdate::default().scopes(["bad scope"])).await,
        "scopes",
    );
    invalid_field(
        update(KeyUpdate::default().rate_limit(Some(RateLimit::new(0, 0)))).await,
        "rate_limit",
    );
    let view = h.manager.get(&account, &id).await.unwrap();
    assert_eq!(view.name, "test key");
    assert_eq!(view.scopes, ScopeSet::parse(["a"]).unwrap());
}

#[tokio::test]
async fn restricted_scope_lists_refuse_unknown_scopes_by_name() {
    let h = harness_with(ManagerConfig::default().allowed_scopes(Some(
        ScopeSet::parse(["charges:read", "charges:write"]).unwrap(),
    )));
    let manager = h.manager.clone();
    let err = manager
        .create(
            acct("acct_1"),
            NewKey::named("k").scopes(["charges:read", "refunds:write"]),
        )
        .await
        .unwrap_err();
    match err {
        ManageError::InvalidRequest(m) => {
            assert!(m.starts_with("scopes:"), "{m}");
            assert!(m.contains("refunds:write"), "{m}");
        }
        other => panic!("{other:?}"),
    }
    manager
        .create(acct("acct_1"), NewKey::named("k").scopes(["charges:read"]))
        .await
        .unwrap();
}
