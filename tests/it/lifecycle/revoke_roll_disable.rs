//! Revoking, rolling (with and without grace) and disabling a key.

use crate::common::*;
use crate::lifecycle::support::*;
use http::Method;
use keygate::manage::KeyUpdate;
use keygate::manage::Revoked;
use keygate::scope::ScopeSet;
use keygate::store::KeyId;
use keygate::ManageError;
use std::time::Duration;

// ---------------------------------------------------------------------------------------
// Revoke

#[tokio::test]
async fn revoke_is_idempotent_and_refuses_the_key_from_the_next_request() {
    let h = Harness::new();
    let account = acct("acct_1");
    let (id, key) = h.key("acct_1", &[]).await;
    let mut svc = h.service();
    assert_eq!(send(&mut svc, get("/", Some(&key))).await.status, 200);

    h.time.advance(Duration::from_secs(3));
    assert_eq!(h.manager.revoke(&account, &id).await.unwrap(), Revoked::Now);
    let a = send(&mut svc, get("/", Some(&key))).await;
    assert_eq!(a.status, 401);
    assert_eq!(a.code(), "revoked_api_key");

    h.time.advance(Duration::from_secs(3));
    assert_eq!(
        h.manager.revoke(&account, &id).await.unwrap(),
        Revoked::Already
    );
    let view = h.manager.get(&account, &id).await.unwrap();
    assert_eq!(
        view.revoked_at,
        Some(rfc3339(t0() + Duration::from_secs(3))),
        "the second revoke changes nothing"
    );
    assert_eq!(
        send(&mut svc, get("/", Some(&key))).await.code(),
        "revoked_api_key"
    );

    let missing = h.manager.revoke(&account, &KeyId::from("ak_never")).await;
    assert!(matches!(missing, Err(ManageError::NotFound)), "{missing:?}");
}

#[tokio::test]
async fn revoked_key_is_refused_even_when_cached() {
    let h = Harness::new();
    let (id, key) = h.key("acct_1", &[]).await;
    let mut svc = h.service();
    for _ in 0..3 {
        assert_eq!(send(&mut svc, get("/", Some(&key))).await.status, 200);
    }
    assert_eq!(h.store.lookups(), 1, "the key is served from the cache");

    h.manager.revoke(&acct("acct_1"), &id).await.unwrap();
    let a = send(&mut svc, get("/", Some(&key))).await;
    assert_eq!(a.status, 401);
    assert_eq!(a.code(), "revoked_api_key");
    assert_eq!(h.store.lookups(), 2, "the revoke dropped the cached entry");
}

// ---------------------------------------------------------------------------------------
// Roll

#[tokio::test]
async fn roll_without_grace_refuses_the_old_secret_at_once_and_keeps_the_id() {
    let h = Harness::new();
    let account = acct("acct_1");
    let (id, old) = h.key("acct_1", &["admin"]).await;
    let mut svc = h.service();
    assert_eq!(send(&mut svc, get("/", Some(&old))).await.status, 200);

    let rolled = h.manager.roll(&account, &id, None).await.unwrap();
    let new = rolled.key.expose_secret().to_owned();
    assert_ne!(new, old);
    assert_eq!(rolled.view.id, id, "the key id survives a roll");
    assert!(new.starts_with(&rolled.view.start));
    assert_eq!(rolled.view.scopes, ScopeSet::parse(["admin"]).unwrap());
    assert!(!serde_json::to_string(&rolled.view).unwrap().contains(&new));

    let a = send(&mut svc, get("/", Some(&old))).await;
    assert_eq!(a.status, 401);
    assert_eq!(a.code(), "invalid_api_key");
    let a = send(&mut svc, get("/", Some(&new))).await;
    assert_eq!(a.status, 200);
    assert_eq!(a.json()["id"], id.as_str());

    // A zero grace period is no grace period.
    let again = h
        .manager
        .roll(&account, &id, Some(Duration::ZERO))
        .await
        .unwrap();
    assert_eq!(send(&mut svc, get("/", Some(&new))).await.status, 401);
    let newest = again.key.expose_secret();
    assert_eq!(send(&mut svc, get("/", Some(newest))).await.status, 200);
}

#[tokio::test]
async fn roll_with_grace_keeps_the_old_secret_working_until_the_deadline() {
    let h = Harness::new();
    let account = acct("acct_1");
    let (id, old) = h.key("acct_1", &[]).await;
    let mut svc = h.service();
    assert_eq!(send(&mut svc, get("/", Some(&old))).await.status, 200);

    let rolled = h
        .manager
        .roll(&account, &id, Some(Duration::from_secs(600)))
        .await
        .unwrap();
    let new = rolled.key.expose_secret().to_owned();

    for _ in 0..2 {
        assert_eq!(send(&mut svc, get("/", Some(&old))).await.status, 200);
        assert_eq!(send(&mut svc, get("/", Some(&new))).await.status, 200);
    }
    h.time
        .advance(Duration::from_secs(600) - Duration::from_nanos(1));
    assert_eq!(send(&mut svc, get("/", Some(&old))).await.status, 200);

    h.time.advance(Duration::from_nanos(1));
    let a = send(&mut svc, get("/", Some(&old))).await;
    assert_eq!(a.status, 401);
    assert_eq!(a.code(), "expired_api_key");
    let a = send(&mut svc, get("/", Some(&new))).await;
    assert_eq!(a.status, 200);
    assert_eq!(a.json()["id"], id.as_str());

    // Still refused later, also on a fresh verification.
    h.time.advance(Duration::from_secs(3600));
    assert_eq!(send(&mut svc, get("/", Some(&old))).await.status, 401);
    assert!(h.gate.verify_key(&old).await.is_err());
    assert!(h.gate.verify_key(&new).await.is_ok());
}

#[tokio::test]
async fn a_second_roll_ends_the_first_secrets_grace_period() {
    let h = Harness::new();
    let account = acct("acct_1");
    let (id, first) = h.key("acct_1", &[]).await;
    let second = h
        .manager
        .roll(&account, &id, Some(Duration::from_secs(600)))
        .await
        .unwrap();
    let third = h
        .manager
        .roll(&account, &id, Some(Duration::from_secs(600)))
        .await
        .unwrap();
    let mut svc = h.service();
    assert_eq!(send(&mut svc, get("/", Some(&first))).await.status, 401);
    assert_eq!(
        send(&mut svc, get("/", Some(second.key.expose_secret())))
            .await
            .status,
        200
    );
    assert_eq!(
        send(&mut svc, get("/", Some(third.key.expose_secret())))
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn revoking_a_rolled_key_ends_its_grace_period_too() {
    let h = Harness::new();
    let account = acct("acct_1");
    let (id, old) = h.key("acct_1", &[]).await;
    let rolled = h
        .manager
        .roll(&account, &id, Some(Duration::from_secs(600)))
        .await
        .unwrap();
    let mut svc = h.service();
    assert_eq!(send(&mut svc, get("/", Some(&old))).await.status, 200);
    h.manager.revoke(&account, &id).await.unwrap();
    assert_eq!(send(&mut svc, get("/", Some(&old))).await.status, 401);
    let a = send(&mut svc, get("/", Some(rolled.key.expose_secret()))).await;
    assert_eq!(a.code(), "revoked_api_key");
    let err = h.manager.roll(&account, &id, None).await.unwrap_err();
    assert!(matches!(err, ManageError::Revoked), "{err:?}");
}

#[tokio::test]
async fn a_disabled_key_is_refused_and_can_be_enabled_again() {
    let h = Harness::new();
    let account = acct("acct_1");
    let (id, key) = h.key("acct_1", &[]).await;
    let mut svc = h.service();
    assert_eq!(send(&mut svc, get("/", Some(&key))).await.status, 200);
    let set = |disabled| KeyUpdate::default().disabled(disabled);
    assert!(
        h.manager
            .update(&account, &id, set(true))
            .await
            .unwrap()
            .disabled
    );
    let a = send(&mut svc, request(Method::GET, "/", Some(&key))).await;
    assert_eq!(a.code(), "disabled_api_key");
    h.manager.update(&account, &id, set(false)).await.unwrap();
    assert_eq!(send(&mut svc, get("/", Some(&key))).await.status, 200);
}

/// RFC 3339 with milliseconds, UTC: the management API's form of a time.
fn rfc3339(at: std::time::SystemTime) -> String {
    humantime::format_rfc3339_millis(at).to_string()
}
