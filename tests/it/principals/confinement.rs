//! A verified credential managing keys is confined by its expiry and its environment,
//! and recorded as `external:<subject>`.

use std::time::Duration;

use crate::common::jwt_support::{verifier, verifier_builder};
use crate::common::*;
use crate::principals::support::*;
use http::Method;
use keygate::admin::KeyFields;
use keygate::manage::ManagerConfig;
use keygate::{Environment, NewKey};
use serde_json::{json, Value};

fn at(secs_after_t0: u64) -> String {
    humantime::format_rfc3339_millis(t0() + Duration::from_secs(secs_after_t0)).to_string()
}

#[tokio::test]
async fn a_key_minted_by_a_short_lived_jwt_expires_no_later_than_the_jwt() {
    let api = Api::new(
        |b| {
            b.environment(Environment::Live)
                .credential_verifier(verifier())
        },
        |r| r,
    )
    .await;
    // A JWT and an API key that both expire 120 s from now, with the `admin` scope.
    let jwt = token("u1", "admin", 120, json!({}));
    let (_, key) = api
        .h
        .key_with(
            "org_1",
            NewKey::named("expiring admin")
                .scopes(["admin"])
                .environment(Environment::Live)
                .expires_at(t0() + Duration::from_secs(120)),
        )
        .await;

    // Asked for no expiry: the key inherits the token's.
    let minted = api
        .call(
            Method::POST,
            "/v1/api-keys",
            &jwt,
            Some(json!({"name": "minted", "scopes": ["admin"]})),
        )
        .await;
    assert_eq!(minted.status, 201, "{}", minted.body);
    assert_eq!(minted.json()["expires_at"], at(120));
    let by_key = api
        .call(
            Method::POST,
            "/v1/api-keys",
            &key,
            Some(json!({"name": "by key", "scopes": ["admin"]})),
        )
        .await;
    assert_eq!(by_key.json()["expires_at"], minted.json()["expires_at"]);

    // Asked for a later expiry: refused, exactly as for the expiring key.
    let later = json!({"name": "later", "expires_at": at(3600)});
    let jwt_later = api
        .call(Method::POST, "/v1/api-keys", &jwt, Some(later.clone()))
        .await;
    let key_later = api
        .call(Method::POST, "/v1/api-keys", &key, Some(later))
        .await;
    assert_error(&jwt_later, 403, "widening_refused");
    assert_eq!(jwt_later.status, key_later.status);
    assert_eq!(jwt_later.code(), key_later.code());

    // Nor can the token lift the minted key's expiry afterwards.
    let id = minted.json()["id"].as_str().unwrap().to_owned();
    let lifted = api
        .call(
            Method::PATCH,
            &key_path(&id),
            &jwt,
            Some(json!({"expires_at": null})),
        )
        .await;
    assert_error(&lifted, 403, "widening_refused");

    // Once the token has expired, so has the key it minted.
    let secret = minted.json()["key"].as_str().unwrap().to_owned();
    api.h.time.advance(Duration::from_secs(121));
    assert!(api.h.gate.verify_key(&secret).await.is_err());
}

/// Live and test keys of `org_1`, on the default deployment (both environments):
/// (live admin id, live admin secret, test key id).
async fn two_environments(api: &Api) -> (String, String, String) {
    let (live_id, live) = api
        .h
        .key_with(
            "org_1",
            NewKey::named("live admin")
                .scopes(["admin"])
                .environment(Environment::Live),
        )
        .await;
    let (test_id, _) = api
        .h
        .key_with(
            "org_1",
            NewKey::named("test key").environment(Environment::Test),
        )
        .await;
    (live_id.to_string(), live, test_id.to_string())
}

#[tokio::test]
async fn a_jwt_without_environment_may_not_manage_keys_on_a_two_environment_deployment() {
    let api = Api::new(|b| b.credential_verifier(verifier()), |r| r).await;
    let (live_id, live, test_id) = two_environments(&api).await;
    let jwt = token("u1", "admin", 3600, json!({}));
    let refused = [
        api.call(Method::GET, "/v1/api-keys", &jwt, None).await,
        api.call(Method::GET, &key_path(&test_id), &jwt, None).await,
        api.call(
            Method::POST,
            "/v1/api-keys",
            &jwt,
            Some(json!({"name": "x", "environment": "live"})),
        )
        .await,
        api.call(
            Method::PATCH,
            &key_path(&test_id),
            &jwt,
            Some(json!({"name": "y"})),
        )
        .await,
        api.call(Method::POST, &roll_path(&live_id), &jwt, None)
            .await,
        api.call(Method::DELETE, &key_path(&test_id), &jwt, None)
            .await,
    ];
    for answer in &refused {
        assert_error(answer, 403, "environment_required");
    }
    // Nothing changed: the live admin key still works, and the test key is untouched.
    assert!(api.h.gate.verify_key(&live).await.is_ok());
    let keys = api.call(Method::GET, "/v1/api-keys", &live, None).await;
    assert_eq!(listed(&keys), vec![live_id]);
    let test = api
        .h
        .manager
        .get(&"org_1".into(), &test_id.as_str().into())
        .await
        .unwrap();
    assert_eq!(test.name, "test key");
    assert!(test.revoked_at.is_none());
}

#[tokio::test]
async fn a_jwt_naming_its_environment_acts_only_within_it() {
    let api = Api::new(
        |b| b.credential_verifier(verifier_builder().environment_claim("env").build().unwrap()),
        |r| r,
    )
    .await;
    let (live_id, live, test_id) = two_environments(&api).await;
    let jwt = token("u1", "admin", 3600, json!({"env": "test"}));

    let keys = api.call(Method::GET, "/v1/api-keys", &jwt, None).await;
    assert_eq!(listed(&keys), vec![test_id.clone()]);
    let created = api
        .call(
            Method::POST,
            "/v1/api-keys",
            &jwt,
            Some(json!({"name": "made by a test token"})),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(created.json()["environment"], "test");
    assert!(created.json()["key"]
        .as_str()
        .unwrap()
        .starts_with("sk_test_"));
    let live_key = api
        .call(
            Method::POST,
            "/v1/api-keys",
            &jwt,
            Some(json!({"name": "x", "environment": "live"})),
        )
        .await;
    assert_error(&live_key, 403, "insufficient_scope");
    // The live keys are out of its sight.
    assert_error(
        &api.call(Method::GET, &key_path(&live_id), &jwt, None).await,
        404,
        "not_found",
    );
    assert_error(
        &api.call(Method::POST, &roll_path(&live_id), &jwt, None)
            .await,
        404,
        "not_found",
    );
    assert_error(
        &api.call(Method::DELETE, &key_path(&live_id), &jwt, None)
            .await,
        404,
        "not_found",
    );
    assert!(api.h.gate.verify_key(&live).await.is_ok());
    // Its own environment's keys it manages, within its own bounds: the key it made
    // (which expires with it), not the test key that never expires.
    let made = created.json()["id"].as_str().unwrap().to_owned();
    let revoked = api.call(Method::DELETE, &key_path(&made), &jwt, None).await;
    assert_eq!(revoked.status, 204, "{}", revoked.body);
    let wider = api
        .call(Method::DELETE, &key_path(&test_id), &jwt, None)
        .await;
    assert_error(&wider, 403, "widening_refused");

    // A token naming no environment, or an unknown one, is not accepted at all.
    for extra in [json!({}), json!({"env": "prod"})] {
        let bad = token("u1", "admin", 3600, extra);
        assert_error(
            &api.call(Method::GET, "/v1/api-keys", &bad, None).await,
            401,
            "invalid_token",
        );
    }
}

#[tokio::test]
async fn on_a_deployment_of_one_environment_a_jwt_without_environment_acts_in_it() {
    let api = Api::new(
        |b| {
            b.environment(Environment::Live)
                .credential_verifier(verifier())
        },
        |r| r,
    )
    .await;
    let (live_id, _) = api.h.key("org_1", &["admin"]).await;
    let jwt = token("u1", "admin", 3600, json!({}));
    let keys = api.call(Method::GET, "/v1/api-keys", &jwt, None).await;
    assert_eq!(listed(&keys), vec![live_id.to_string()]);
    let created = api
        .call(
            Method::POST,
            "/v1/api-keys",
            &jwt,
            Some(json!({"name": "made"})),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(created.json()["environment"], "live");
}

#[tokio::test]
async fn a_deployment_may_opt_in_to_environment_neutral_principals() {
    let api = Api::new(
        |b| {
            b.credential_verifier(verifier())
                .manager_config(ManagerConfig::default().environment_neutral_principals(true))
        },
        |r| r,
    )
    .await;
    let (live_id, _, test_id) = two_environments(&api).await;
    let jwt = token("u1", "admin", 3600, json!({}));
    let mut keys = listed(&api.call(Method::GET, "/v1/api-keys", &jwt, None).await);
    keys.sort();
    let mut expected = vec![live_id, test_id];
    expected.sort();
    assert_eq!(keys, expected);
}

#[tokio::test]
async fn a_jwt_whose_subject_is_a_key_id_is_recorded_as_external() {
    let api = Api::new(
        |b| {
            b.environment(Environment::Live)
                .credential_verifier(verifier())
        },
        |r| r.fields(KeyFields::default().record_actors("created_by", "updated_by")),
    )
    .await;
    // Key ids are public: a token's subject may equal one.
    let (existing, _) = api
        .h
        .key_with(
            "org_1",
            NewKey::named("someone's key").environment(Environment::Live),
        )
        .await;
    let jwt = token(existing.as_str(), "admin", 3600, json!({}));
    let created = api
        .call(
            Method::POST,
            "/v1/api-keys",
            &jwt,
            Some(json!({"name": "by a token"})),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let recorded = format!("external:{existing}");
    assert_eq!(created.json()["created_by"], Value::from(recorded.clone()));
    assert_eq!(created.json()["updated_by"], Value::from(recorded));
    assert_ne!(created.json()["created_by"], existing.as_str());
}
