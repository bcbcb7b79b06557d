//! Updating a key: every editable field, clearing with null, unknown or revoked keys.

use crate::common::*;
use crate::lifecycle::support::*;
use keygate::manage::KeyUpdate;
use keygate::scope::ScopeSet;
use keygate::store::{KeyId, RateLimit};
use keygate::{ManageError, NewKey};
use std::time::Duration;

// ---------------------------------------------------------------------------------------
// Update

#[tokio::test]
async fn update_changes_every_editable_field_and_takes_effect_at_once() {
    let h = Harness::new();
    let account = acct("acct_1");
    let (id, key) = h.key("acct_1", &["charges:read"]).await;
    let mut admin_only = tower::ServiceBuilder::new()
        .layer(h.gate.layer().require_any(["charges:write"]))
        .service_fn(echo);
    let mut open = h.service();
    assert_eq!(
        send(&mut admin_only, get("/", Some(&key))).await.status,
        403
    );
    assert_eq!(send(&mut open, get("/", Some(&key))).await.status, 200);

    h.time.advance(Duration::from_secs(5));
    let mut meta = serde_json::Map::new();
    meta.insert("owner".into(), "ops".into());
    let view = h
        .manager
        .update(
            &account,
            &id,
            KeyUpdate::default()
                .name("renamed")
                .scopes(["charges:write"])
                .ips(["10.0.0.0/8", "2001:db8::/32"])
                .expires_at(Some(t0() + Duration::from_secs(60)))
                .rate_limit(Some(RateLimit::new(1, 4)))
                .metadata(meta.clone()),
        )
        .await
        .unwrap();
    assert_eq!(view.name, "renamed");
    assert_eq!(view.scopes, ScopeSet::parse(["charges:write"]).unwrap());
    assert_eq!(
        serde_json::to_value(&view.ips).unwrap(),
        serde_json::json!(["10.0.0.0/8", "2001:db8::/32"])
    );
    assert_eq!(
        view.expires_at,
        Some(rfc3339(t0() + Duration::from_secs(60)))
    );
    assert_eq!(view.rate_limit, Some(RateLimit::new(1, 4)));
    assert_eq!(view.metadata, meta);
    assert_eq!(view.created_at, rfc3339(t0()));
    assert_eq!(view.updated_at, rfc3339(t0() + Duration::from_secs(5)));
    assert_eq!(h.manager.get(&account, &id).await.unwrap(), view);

    // The cached key sees every change on its very next request.
    let a = send(&mut admin_only, from_ip(get("/", Some(&key)), "10.9.9.9")).await;
    assert_eq!(a.status, 200);
    assert_eq!(a.header("x-ratelimit-limit"), Some("4"));
    assert_eq!(a.json()["name"], "renamed");
    let a = send(&mut admin_only, from_ip(get("/", Some(&key)), "192.0.2.1")).await;
    assert_eq!(a.code(), "ip_not_allowed");
    h.time.advance(Duration::from_secs(55));
    let a = send(&mut admin_only, from_ip(get("/", Some(&key)), "10.9.9.9")).await;
    assert_eq!(a.status, 401);
    assert_eq!(a.code(), "expired_api_key");
}

#[tokio::test]
async fn update_with_null_clears_expiry_and_rate_limit_and_leaves_other_fields_alone() {
    let h = Harness::new();
    let account = acct("acct_1");
    let (id, _) = h
        .key_with(
            "acct_1",
            NewKey::named("temp")
                .scopes(["a"])
                .ips(["192.0.2.1"])
                .expires_at(t0() + Duration::from_secs(10))
                .rate_limit(RateLimit::new(1, 1)),
        )
        .await;
    let before = h.manager.get(&account, &id).await.unwrap();
    let view = h
        .manager
        .update(
            &account,
            &id,
            KeyUpdate::default().expires_at(None).rate_limit(None),
        )
        .await
        .unwrap();
    assert_eq!(view.expires_at, None);
    assert_eq!(view.rate_limit, None);
    assert_eq!(view.name, before.name);
    assert_eq!(view.scopes, before.scopes);
    assert_eq!(view.ips, before.ips);

    // An empty update changes nothing but the update time.
    let same = h
        .manager
        .update(&account, &id, KeyUpdate::default())
        .await
        .unwrap();
    assert_eq!(same.name, view.name);
    assert_eq!(same.expires_at, None);
}

#[tokio::test]
async fn update_of_an_unknown_or_revoked_key_fails() {
    let h = Harness::new();
    let account = acct("acct_1");
    let missing = h
        .manager
        .update(&account, &KeyId::from("ak_nope"), KeyUpdate::default())
        .await;
    assert!(matches!(missing, Err(ManageError::NotFound)), "{missing:?}");

    let (id, _) = h.key("acct_1", &[]).await;
    h.manager.revoke(&account, &id).await.unwrap();
    let err = h
        .manager
        .update(&account, &id, KeyUpdate::default().name("again"))
        .await
        .unwrap_err();
    assert!(matches!(err, ManageError::Revoked), "{err:?}");
    assert_eq!(err.code(), "api_key_revoked");
    assert_eq!(err.status(), 409);
    assert_eq!(h.manager.get(&account, &id).await.unwrap().name, "test key");
}

/// RFC 3339 with milliseconds, UTC: the management API's form of a time.
fn rfc3339(at: std::time::SystemTime) -> String {
    humantime::format_rfc3339_millis(at).to_string()
}
