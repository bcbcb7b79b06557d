//! Creating a key: the one-time plaintext and the recorded attributes.

use crate::common::*;
use crate::lifecycle::support::*;
use keygate::key::KeyHasher;
use keygate::scope::ScopeSet;
use keygate::store::RateLimit;
use keygate::{Environment, KeyStoreWrite, NewKey};
use std::time::Duration;

// ---------------------------------------------------------------------------------------
// Plaintext shown once

#[tokio::test]
async fn create_returns_the_plaintext_once_and_no_view_holds_the_key_or_its_digest() {
    let h = Harness::new();
    let created = h
        .manager
        .create(acct("acct_1"), NewKey::named("CI key").scopes(["admin"]))
        .await
        .unwrap();
    let key = created.key.expose_secret().to_owned();
    let digest_hex = KeyHasher::sha256().digest(&key).to_hex();
    let secret_part = &key[created.view.prefix.len()..];
    assert!(h.gate.format().parse(&key).is_ok(), "a well-formed key");
    assert!(key.starts_with(&created.view.start));
    assert_eq!(created.view.start.len(), created.view.prefix.len() + 4);

    let mut shown = vec![
        serde_json::to_string(&created.view).unwrap(),
        format!("{created:?}"),
        format!("{:?}", created.view),
    ];
    let got = h
        .manager
        .get(&acct("acct_1"), &created.view.id)
        .await
        .unwrap();
    assert_eq!(got, created.view);
    shown.push(serde_json::to_string(&got).unwrap());
    let page = h
        .manager
        .list(&acct("acct_1"), &page_query(None, None))
        .await
        .unwrap();
    assert_eq!(page.data, vec![created.view.clone()]);
    shown.push(serde_json::to_string(&page).unwrap());
    let stored = h.store.inner.get(&created.view.id).await.unwrap().unwrap();
    shown.push(format!("{stored:?}"));

    for text in &shown {
        assert!(!text.contains(secret_part), "plaintext leaked: {text}");
        assert!(!text.contains(&digest_hex), "digest leaked: {text}");
        assert!(!text.contains(&digest_hex.to_uppercase()));
    }
    let json: serde_json::Value = serde_json::from_str(&shown[0]).unwrap();
    for field in ["key", "digest", "secret", "hash"] {
        assert!(json.get(field).is_none(), "view has a '{field}' field");
    }
    // The digest is what is stored; it is the SHA-256 of the key.
    assert_eq!(stored.digest.to_hex(), digest_hex);
}

#[tokio::test]
async fn a_created_key_authenticates_with_the_recorded_attributes() {
    let h = Harness::new();
    let mut meta = serde_json::Map::new();
    meta.insert("team".into(), "billing".into());
    let created = h
        .manager
        .create(
            acct("acct_1"),
            NewKey::named("billing")
                .scopes(["charges:read", "charges:write"])
                .ips(["10.0.0.0/8"])
                .expires_at(t0() + Duration::from_secs(3600))
                .rate_limit(RateLimit::new(5, 10))
                .environment(Environment::Live)
                .metadata(meta.clone()),
        )
        .await
        .unwrap();
    let v = &created.view;
    assert_eq!(v.name, "billing");
    assert_eq!(v.prefix, "sk_live_");
    assert_eq!(v.environment, Some(Environment::Live));
    assert_eq!(
        v.scopes,
        ScopeSet::parse(["charges:read", "charges:write"]).unwrap()
    );
    assert_eq!(
        serde_json::to_value(&v.ips).unwrap(),
        serde_json::json!(["10.0.0.0/8"])
    );
    assert_eq!(
        v.expires_at.as_deref(),
        Some(rfc3339(t0() + Duration::from_secs(3600)).as_str())
    );
    assert_eq!(v.rate_limit, Some(RateLimit::new(5, 10)));
    assert_eq!(v.metadata, meta);
    assert_eq!(v.created_at, rfc3339(t0()));
    assert_eq!(v.updated_at, rfc3339(t0()));
    assert_eq!(v.last_used_at, None);
    assert_eq!(v.revoked_at, None);
    assert!(v.id.as_str().starts_with("ak_"));

    let who = identity(&h, created.key.expose_secret()).await;
    assert_eq!(who.key_id(), &v.id);
    assert_eq!(who.account_id(), &acct("acct_1"));
    assert_eq!(who.metadata(), &meta);
}

/// RFC 3339 with milliseconds, UTC: the management API's form of a time.
fn rfc3339(at: std::time::SystemTime) -> String {
    humantime::format_rfc3339_millis(at).to_string()
}
