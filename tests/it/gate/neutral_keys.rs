//! The environment of new keys by default, and environment-neutral keys (`tc_`) in a
//! deployment restricted to one environment.

use crate::common::*;
use keygate::config::KeygateConfig;
use keygate::key::{KeyFormat, KeyPrefix};
use keygate::manage::ListQuery;
use keygate::store::AccountId;
use keygate::{AuthError, Environment, ManageError, NewKey};

fn acct() -> AccountId {
    AccountId::from("acct_1")
}

fn live_only() -> KeyFormat {
    KeyFormat::new([KeyPrefix::new("sk_live_", Some(Environment::Live)).unwrap()]).unwrap()
}

#[tokio::test]
async fn a_live_only_format_gives_new_keys_the_live_environment_by_default() {
    let h = Harness::with(|b| b.format(live_only()));
    assert_eq!(h.gate.default_environment(), Some(Environment::Live));
    let created = h
        .manager
        .create(acct(), NewKey::named("no environment given"))
        .await
        .unwrap();
    assert_eq!(created.view.environment, Some(Environment::Live));
    assert!(created.key.expose_secret().starts_with("sk_live_"));
    assert!(h.gate.verify_key(created.key.expose_secret()).await.is_ok());
}

#[tokio::test]
async fn a_deployment_of_one_environment_gives_new_keys_its_environment() {
    for env in [Environment::Live, Environment::Test] {
        let h = Harness::with(|b| b.environment(env));
        let created = h.manager.create(acct(), NewKey::named("k")).await.unwrap();
        assert_eq!(created.view.environment, Some(env));
        assert_eq!(created.view.prefix, format!("sk_{env}_"));
    }
    // A deployment of any environment with the default prefixes (live, test and the
    // neutral tc_) makes neutral keys unless told otherwise.
    let h = Harness::new();
    assert_eq!(h.gate.default_environment(), None);
    let created = h.manager.create(acct(), NewKey::named("k")).await.unwrap();
    assert_eq!(created.view.prefix, "tc_");
}

#[tokio::test]
async fn a_restricted_deployment_refuses_neutral_keys_unless_configured_to_accept_them() {
    // An open deployment makes a neutral key in the shared store.
    let h = Harness::new();
    let (neutral_id, neutral) = h
        .key_with("acct_1", NewKey::named("tc").prefix("tc_"))
        .await;
    let (live, live_manager) = h.sibling(|b| b.environment(Environment::Live));
    assert!(!live.accepts_environment_neutral_keys());
    assert!(matches!(
        live.verify_key(&neutral).await,
        Err(AuthError::InvalidKey)
    ));
    // Its manager neither issues nor shows them.
    let err = live_manager
        .create(acct(), NewKey::named("tc").prefix("tc_"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ManageError::InvalidRequest(m) if m.starts_with("prefix")),
        "{err:?}"
    );
    assert!(matches!(
        live_manager.get(&acct(), &neutral_id).await,
        Err(ManageError::NotFound)
    ));
    let page = live_manager.list(&acct(), &ListQuery::new()).await.unwrap();
    assert!(page.data.is_empty());

    let (accepting, accepting_manager) = h.sibling(|b| {
        b.environment(Environment::Live)
            .accept_environment_neutral_keys(true)
    });
    assert!(accepting.verify_key(&neutral).await.is_ok());
    assert!(accepting_manager.get(&acct(), &neutral_id).await.is_ok());
    let created = accepting_manager
        .create(acct(), NewKey::named("tc").prefix("tc_"))
        .await
        .unwrap();
    assert!(accepting
        .verify_key(created.key.expose_secret())
        .await
        .is_ok());
    // Without an explicit prefix the deployment's own environment still wins.
    let created = accepting_manager
        .create(acct(), NewKey::named("default"))
        .await
        .unwrap();
    assert_eq!(created.view.environment, Some(Environment::Live));
}

#[tokio::test]
async fn the_configuration_file_can_accept_neutral_keys() {
    let config: KeygateConfig =
        toml::from_str("environment = \"live\"\naccept_environment_neutral_keys = true\n").unwrap();
    let h = Harness::with(|b| b.config(&config).unwrap());
    assert!(h.gate.accepts_environment_neutral_keys());
    let config: KeygateConfig = toml::from_str("environment = \"live\"\n").unwrap();
    let h = Harness::with(|b| b.config(&config).unwrap());
    assert!(!h.gate.accepts_environment_neutral_keys());
}
