//! The escalation guard: no key mints or changes a key beyond its own power.

use crate::common::*;
use crate::lifecycle::support::*;
use keygate::manage::KeyUpdate;
use keygate::manage::Revoked;
use keygate::scope::ScopeSet;
use keygate::{Environment, NewKey};

// ---------------------------------------------------------------------------------------
// Escalation guard

#[tokio::test]
async fn a_key_cannot_create_a_key_with_scopes_it_lacks() {
    let h = Harness::new();
    let (_, key) = h.key("acct_1", &["keys:write", "billing:read"]).await;
    let actor = identity(&h, &key).await;
    let acting = h.manager.acting_as(&actor);

    for scopes in [
        vec!["admin"],
        vec!["billing:write"],
        vec!["billing:read", "x"],
    ] {
        is_escalation(acting.create(NewKey::named("wider").scopes(scopes)).await);
    }
    let ok = acting
        .create(NewKey::named("narrower").scopes(["billing:read"]))
        .await
        .unwrap();
    assert_eq!(ok.view.account_id, acct("acct_1"));
    acting
        .create(NewKey::named("same").scopes(["keys:write", "billing:read"]))
        .await
        .unwrap();
    // Refused creations wrote nothing.
    assert_eq!(
        acting
            .list(&page_query(None, None))
            .await
            .unwrap()
            .data
            .len(),
        3
    );
}

#[tokio::test]
async fn a_key_cannot_update_or_roll_a_key_beyond_its_own_scopes() {
    let h = Harness::new();
    let (_, key) = h.key("acct_1", &["keys:write", "billing:read"]).await;
    let (admin_id, admin_key) = h.key("acct_1", &["admin"]).await;
    let actor = identity(&h, &key).await;
    let acting = h.manager.acting_as(&actor);
    let own = acting
        .create(NewKey::named("narrow").scopes(["billing:read"]))
        .await
        .unwrap();

    // Widening a narrow key.
    is_escalation(
        acting
            .update(&own.view.id, KeyUpdate::default().scopes(["admin"]))
            .await,
    );
    // Touching a key that holds more than the actor, even harmlessly.
    is_escalation(
        acting
            .update(&admin_id, KeyUpdate::default().name("mine now"))
            .await,
    );
    // Rolling a wider key would hand the actor its secret.
    is_escalation(acting.roll(&admin_id, None).await);
    is_escalation(acting.revoke(&admin_id).await);

    // Nothing changed: the admin key still works with its old secret and name.
    assert_eq!(
        h.manager
            .get(&acct("acct_1"), &admin_id)
            .await
            .unwrap()
            .name,
        "test key"
    );
    assert!(h.gate.verify_key(&admin_key).await.is_ok());
    assert_eq!(
        h.manager
            .get(&acct("acct_1"), &own.view.id)
            .await
            .unwrap()
            .scopes,
        ScopeSet::parse(["billing:read"]).unwrap()
    );

    // Within its own scopes, all of it is allowed.
    acting
        .update(
            &own.view.id,
            KeyUpdate::default().scopes(["billing:read", "keys:write"]),
        )
        .await
        .unwrap();
    acting.roll(&own.view.id, None).await.unwrap();
    assert_eq!(acting.revoke(&own.view.id).await.unwrap(), Revoked::Now);
}

#[tokio::test]
async fn an_admin_key_can_create_admin_keys() {
    let h = Harness::new();
    let (_, key) = h.key("acct_1", &["admin"]).await;
    let actor = identity(&h, &key).await;
    let created = h
        .manager
        .acting_as(&actor)
        .create(NewKey::named("another admin").scopes(["admin", "anything:else"]))
        .await
        .unwrap();
    assert!(h
        .gate
        .verify_key(created.key.expose_secret())
        .await
        .unwrap()
        .has_scope("admin"));
}

#[tokio::test]
async fn a_read_only_key_cannot_mint_a_read_write_key() {
    let h = Harness::new();
    let (_, key) = h.key("acct_1", &["read-only"]).await;
    let actor = identity(&h, &key).await;
    assert!(actor.is_read_only());
    let acting = h.manager.acting_as(&actor);

    // A key without scopes is not read-only: it may write.
    is_escalation(acting.create(NewKey::named("rw")).await);
    is_escalation(acting.create(NewKey::named("rw").scopes(["admin"])).await);
    let ro = acting
        .create(NewKey::named("ro").scopes(["read-only"]))
        .await
        .unwrap();
    assert!(identity(&h, ro.key.expose_secret()).await.is_read_only());
    // Nor can it strip the read-only scope from a key.
    is_escalation(
        acting
            .update(
                &ro.view.id,
                KeyUpdate::default().scopes(Vec::<String>::new()),
            )
            .await,
    );
}

#[tokio::test]
async fn a_test_key_cannot_mint_a_live_key() {
    let h = Harness::new();
    let (_, key) = h
        .key_with(
            "acct_1",
            NewKey::named("test admin")
                .scopes(["admin"])
                .environment(Environment::Test),
        )
        .await;
    let actor = identity(&h, &key).await;
    let acting = h.manager.acting_as(&actor);

    is_escalation(
        acting
            .create(NewKey::named("live").environment(Environment::Live))
            .await,
    );
    is_escalation(
        acting
            .create(NewKey::named("live").prefix("sk_live_"))
            .await,
    );
    is_escalation(acting.create(NewKey::named("neutral").prefix("tc_")).await);

    let created = acting.create(NewKey::named("test")).await.unwrap();
    assert_eq!(created.view.environment, Some(Environment::Test));
    assert!(created.key.expose_secret().starts_with("sk_test_"));
}
