//! Environment-restricted gates and the key's environment in refusals.

use crate::common::*;
use crate::gate::support::*;
use keygate::{Environment, Keygate, NewKey};
use std::sync::Arc;

/// A store with one key per prefix, created by an unrestricted core.
async fn keys_of_every_environment() -> (Arc<FaultyStore>, String, String, String) {
    let store = Arc::new(FaultyStore::default());
    let (_open, manager) = Keygate::managed(store.clone()).build();
    let mut keys = Vec::new();
    for prefix in ["sk_live_", "sk_test_", "tc_"] {
        let created = manager
            .create(account(), NewKey::named(prefix).prefix(prefix))
            .await
            .unwrap();
        keys.push(created.key.expose_secret().to_owned());
    }
    let tc = keys.pop().unwrap();
    let test = keys.pop().unwrap();
    let live = keys.pop().unwrap();
    (store, live, test, tc)
}

#[tokio::test]
async fn live_gate_refuses_test_keys_naming_the_key_environment() {
    let (store, live, test, _) = keys_of_every_environment().await;
    let gate = Keygate::builder(store)
        .environment(Environment::Live)
        .build();
    let mut svc = service_for(&gate);
    let refused = send(&mut svc, get("/", Some(&test))).await;
    assert_json_error(&refused, 401, "wrong_environment");
    assert_eq!(
        refused.json()["error"]["message"],
        "This is a test API key; this endpoint only accepts live keys"
    );
    assert!(refused
        .header("www-authenticate")
        .unwrap()
        .contains("error=\"invalid_token\""));
    assert_eq!(send(&mut svc, get("/", Some(&live))).await.status, 200);
}

#[tokio::test]
async fn test_gate_refuses_live_keys_naming_the_key_environment() {
    let (store, live, test, _) = keys_of_every_environment().await;
    let gate = Keygate::builder(store)
        .environment(Environment::Test)
        .build();
    let mut svc = service_for(&gate);
    let refused = send(&mut svc, get("/", Some(&live))).await;
    assert_json_error(&refused, 401, "wrong_environment");
    assert_eq!(
        refused.json()["error"]["message"],
        "This is a live API key; this endpoint only accepts test keys"
    );
    assert_eq!(send(&mut svc, get("/", Some(&test))).await.status, 200);
}

#[tokio::test]
async fn tc_keys_are_accepted_by_an_environment_restricted_gate_only_when_configured() {
    let (store, _, _, tc) = keys_of_every_environment().await;
    for env in [Environment::Live, Environment::Test] {
        // Not configured: refused before any lookup, as a key this deployment never
        // issues.
        let gate = Keygate::builder(store.clone()).environment(env).build();
        let before = store.lookups();
        let answer = send(&mut service_for(&gate), get("/", Some(&tc))).await;
        assert_json_error(&answer, 401, "invalid_api_key");
        assert_eq!(store.lookups(), before, "{env}: refused without a lookup");

        let gate = Keygate::builder(store.clone())
            .environment(env)
            .accept_environment_neutral_keys(true)
            .build();
        let answer = send(&mut service_for(&gate), get("/", Some(&tc))).await;
        assert_eq!(answer.status, 200, "{env}: {answer:?}");
        assert_eq!(answer.json()["environment"], serde_json::Value::Null);
    }
    // A gate of any environment accepts them without being told.
    let gate = Keygate::builder(store.clone()).build();
    assert!(gate.accepts_environment_neutral_keys());
    assert_eq!(
        send(&mut service_for(&gate), get("/", Some(&tc)))
            .await
            .status,
        200
    );
}
