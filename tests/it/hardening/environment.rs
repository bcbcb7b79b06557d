//! Environments: a test key never sees, changes or issues a live key.

use crate::common::*;
use crate::hardening::support::*;
use keygate::{Environment, ManageError, NewKey};
use serde_json::json;
use std::collections::BTreeSet;

// ---------------------------------------------------------------------------------------
// Defect 1: environment escalation.

#[tokio::test]
async fn environment_a_test_key_cannot_see_roll_patch_or_revoke_live_or_neutral_keys() {
    let api = Api::new(Harness::new()).await;
    let h = &api.h;
    let (test_admin_id, test_admin) = h
        .key_with(
            "acct_1",
            NewKey::named("test admin")
                .scopes(["admin"])
                .environment(Environment::Test),
        )
        .await;
    let (live_id, live_key) = h
        .key_with(
            "acct_1",
            NewKey::named("live admin")
                .scopes(["admin"])
                .environment(Environment::Live),
        )
        .await;
    // An environment-neutral key works in every deployment, live ones included.
    let (neutral_id, neutral_key) = h
        .key_with("acct_1", NewKey::named("neutral").scopes(["admin"]))
        .await;
    let (test_id, _) = h
        .key_with(
            "acct_1",
            NewKey::named("test").environment(Environment::Test),
        )
        .await;

    for id in [live_id.as_str(), neutral_id.as_str()] {
        assert_error(&api.get(&key_path(id), &test_admin).await, 404, "not_found");
        let patch = api
            .patch(&key_path(id), &test_admin, json!({"name": "pwned"}))
            .await;
        assert_error(&patch, 404, "not_found");
        let roll = api.post(&roll_path(id), &test_admin, json!({})).await;
        assert_error(&roll, 404, "not_found");
        assert_error(
            &api.delete(&key_path(id), &test_admin).await,
            404,
            "not_found",
        );
    }
    let listed = Api::listed_ids(&api.get("/v1/api-keys", &test_admin).await);
    let expected: BTreeSet<String> = [test_admin_id.to_string(), test_id.to_string()].into();
    assert_eq!(listed, expected);

    // The live and neutral keys are untouched and keep their secrets.
    for (id, key) in [(&live_id, &live_key), (&neutral_id, &neutral_key)] {
        let view = h.manager.get(&acct("acct_1"), id).await.unwrap();
        assert_ne!(view.name, "pwned");
        assert_eq!(view.revoked_at, None);
        assert!(h.gate.verify_key(key).await.is_ok());
    }

    // Its own environment's keys it still manages.
    let a = api
        .patch(
            &key_path(test_id.as_str()),
            &test_admin,
            json!({"name": "renamed"}),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    // A live key sees only live keys; a neutral one sees every environment.
    let listed = Api::listed_ids(&api.get("/v1/api-keys", &live_key).await);
    assert_eq!(listed, [live_id.to_string()].into());
    let listed = Api::listed_ids(&api.get("/v1/api-keys", &neutral_key).await);
    assert_eq!(listed.len(), 4);
}

#[tokio::test]
async fn environment_a_live_deployment_never_issues_or_returns_a_test_key() {
    // Two deployments share one store: this one serves live keys only.
    let h = Harness::with(|b| b.environment(Environment::Live));
    let (_, test_manager) = h.sibling(|b| b.environment(Environment::Test));
    let test = test_manager
        .create(
            acct("acct_1"),
            NewKey::named("test admin").scopes(["admin"]),
        )
        .await
        .unwrap();
    assert_eq!(test.view.environment, Some(Environment::Test));
    let test_id = test.view.id.clone();

    let api = Api::new(h).await;
    let (live_id, live_admin) = api.h.key("acct_1", &["admin"]).await;

    // Over HTTP, with a live admin key: the test key is absent.
    assert_error(
        &api.get(&key_path(test_id.as_str()), &live_admin).await,
        404,
        "not_found",
    );
    let roll = api
        .post(&roll_path(test_id.as_str()), &live_admin, json!({}))
        .await;
    assert_error(&roll, 404, "not_found");
    let patch = api
        .patch(
            &key_path(test_id.as_str()),
            &live_admin,
            json!({"disabled": true}),
        )
        .await;
    assert_error(&patch, 404, "not_found");
    assert_error(
        &api.delete(&key_path(test_id.as_str()), &live_admin).await,
        404,
        "not_found",
    );
    let listed = Api::listed_ids(&api.get("/v1/api-keys", &live_admin).await);
    assert_eq!(listed, [live_id.to_string()].into());
    // It cannot issue one either.
    let a = api
        .post(
            "/v1/api-keys",
            &live_admin,
            json!({"name": "t", "environment": "test"}),
        )
        .await;
    assert!(a.status == 400 || a.status == 403, "{}", a.body);
    let a = api
        .post(
            "/v1/api-keys",
            &live_admin,
            json!({"name": "t", "prefix": "sk_test_"}),
        )
        .await;
    assert!(a.status == 400 || a.status == 403, "{}", a.body);

    // The operator's manager of the live deployment is held to the same: no test key.
    let live = &api.h.manager;
    assert!(matches!(
        live.get(&acct("acct_1"), &test_id).await,
        Err(ManageError::NotFound)
    ));
    assert!(matches!(
        live.roll(&acct("acct_1"), &test_id, None).await,
        Err(ManageError::NotFound)
    ));
    let page = live
        .list(&acct("acct_1"), &page_query(None, None))
        .await
        .unwrap();
    assert!(page
        .data
        .iter()
        .all(|k| k.environment == Some(Environment::Live)));
    assert!(live
        .create(
            acct("acct_1"),
            NewKey::named("t").environment(Environment::Test)
        )
        .await
        .is_err());

    // The test deployment still has it, untouched, with its secret.
    let view = test_manager.get(&acct("acct_1"), &test_id).await.unwrap();
    assert_eq!(view.revoked_at, None);
    assert!(!view.disabled);
}
