//! Key lifecycle through the library API (issue 5): create, get, list, update, revoke,
//! roll, the active-key cap, the escalation guard, account isolation, last-used
//! coalescing and cache invalidation. Time only moves through the manual clock.

mod common;
use common::*;

use std::collections::{BTreeSet, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use bytes::Bytes;
use http::{Method, Request};
use http_body_util::Full;
use keygate::manage::rfc3339;
use keygate::manage::Revoked;
use keygate::store::KeyStatusFilter;
use keygate::{
    AccountId, Environment, Identity, KeyDigest, KeyHasher, KeyId, KeyRecord, KeyStore,
    KeyStoreWrite, KeyUpdate, Keygate, ManageError, ManagerConfig, MemoryStore, NewKey, PeerAddr,
    RateLimit, ScopeSet, StoreError,
};

fn acct(name: &str) -> AccountId {
    AccountId::from(name)
}

/// A harness whose manager has another configuration.
fn harness_with(config: ManagerConfig) -> Harness {
    Harness::with(|b| b.manager_config(config))
}

fn uncapped() -> Harness {
    harness_with(ManagerConfig::default().max_active_keys(None))
}

async fn identity(h: &Harness, key: &str) -> Identity {
    h.gate.verify_key(key).await.expect("key verifies")
}

fn invalid_field(result: Result<impl std::fmt::Debug, ManageError>, field: &str) {
    match result {
        Err(ManageError::InvalidRequest(message)) => assert!(
            message.starts_with(&format!("{field}:")),
            "message should name '{field}': {message}"
        ),
        other => panic!("expected InvalidRequest naming {field}, got {other:?}"),
    }
}

fn is_escalation<T: std::fmt::Debug>(result: Result<T, ManageError>) -> ManageError {
    match result {
        Err(e @ ManageError::Escalation(_)) => {
            assert_eq!(e.code(), "insufficient_scope");
            assert_eq!(e.status(), 403);
            e
        }
        other => panic!("expected Escalation, got {other:?}"),
    }
}

fn from_ip(mut req: Request<Full<Bytes>>, ip: &str) -> Request<Full<Bytes>> {
    let addr: SocketAddr = format!("{ip}:40000").parse().unwrap();
    req.extensions_mut().insert(PeerAddr(addr));
    req
}

/// Lets spawned last-used writes run.
async fn settle() {
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
}

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

// ---------------------------------------------------------------------------------------
// Listing

#[tokio::test]
async fn list_pages_through_120_keys_oldest_first_with_default_and_maximum_limits() {
    let h = uncapped();
    let manager = h.manager.clone();
    let mut ids = Vec::new();
    for i in 0..120 {
        let created = manager
            .create(acct("acct_1"), NewKey::named(format!("key {i}")))
            .await
            .unwrap();
        ids.push(created.view.id);
        // One millisecond apart, so "oldest first" has a single answer.
        h.time.advance(Duration::from_millis(1));
    }
    // Another account's keys never show up.
    h.key("acct_2", &[]).await;

    for (limit, sizes) in [
        (None, vec![25, 25, 25, 25, 20]),
        (Some(100), vec![100, 20]),
        (Some(1), vec![1; 120]),
        (Some(120 / 8), vec![15; 8]),
    ] {
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        let mut page_sizes = Vec::new();
        loop {
            let page = manager
                .list(&acct("acct_1"), &page_query(limit, cursor.as_deref()))
                .await
                .unwrap();
            page_sizes.push(page.data.len());
            seen.extend(page.data.iter().map(|v| v.id.clone()));
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        assert_eq!(page_sizes, sizes, "limit {limit:?}");
        assert_eq!(seen, ids, "limit {limit:?}: every key once, oldest first");
    }
}

#[tokio::test]
async fn list_refuses_limits_outside_1_to_100_and_foreign_cursors() {
    let h = Harness::new();
    h.key("acct_1", &[]).await;
    for limit in [0, 101, 1000] {
        invalid_field(
            h.manager
                .list(&acct("acct_1"), &page_query(Some(limit), None))
                .await,
            "limit",
        );
    }
    assert_eq!(
        h.manager
            .list(&acct("acct_1"), &page_query(Some(100), None))
            .await
            .unwrap()
            .data
            .len(),
        1
    );
    for cursor in ["not a cursor", "../../etc", &"x".repeat(65), "ak_é"] {
        invalid_field(
            h.manager
                .list(&acct("acct_1"), &page_query(None, Some(cursor)))
                .await,
            "cursor",
        );
    }
    // An empty cursor is the first page.
    let page = h
        .manager
        .list(&acct("acct_1"), &page_query(None, Some("")))
        .await
        .unwrap();
    assert_eq!(page.data.len(), 1);
    assert_eq!(page.next_cursor, None);
}

#[tokio::test]
async fn list_is_stable_while_keys_are_created_and_revoked_between_pages() {
    let h = uncapped();
    let manager = h.manager.clone();
    let account = acct("acct_1");
    let mut initial = Vec::new();
    for i in 0..120 {
        let created = manager
            .create(account.clone(), NewKey::named(format!("key {i}")))
            .await
            .unwrap();
        initial.push(created.view.id);
        if i % 3 == 0 {
            h.time.advance(Duration::from_millis(1));
        }
    }

    let mut seen: Vec<KeyId> = Vec::new();
    let mut cursor: Option<String> = None;
    let mut round = 0;
    loop {
        let page = manager
            .list(
                &account,
                &page_query(None, cursor.as_deref()).status(KeyStatusFilter::All),
            )
            .await
            .unwrap();
        seen.extend(page.data.iter().map(|v| v.id.clone()));
        // Between pages: new keys (some in the same millisecond as old ones, so their ids
        // sort among them), and revocations both behind and ahead of the cursor.
        for _ in 0..4 {
            manager
                .create(account.clone(), NewKey::named("meanwhile"))
                .await
                .unwrap();
        }
        manager.revoke(&account, &initial[round * 7]).await.unwrap();
        manager
            .revoke(&account, &initial[119 - round * 5])
            .await
            .unwrap();
        round += 1;
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }

    let unique: HashSet<&KeyId> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "no key appears twice");
    for id in &initial {
        assert_eq!(
            seen.iter().filter(|s| *s == id).count(),
            1,
            "{id} existed from the start and must appear exactly once"
        );
    }
    let mut sorted = seen.clone();
    sorted.sort();
    assert_eq!(sorted, seen, "pages are in id order");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_is_stable_while_another_task_creates_and_revokes_concurrently() {
    let h = uncapped();
    let manager = h.manager.clone();
    let account = acct("acct_1");
    let mut initial = Vec::new();
    for i in 0..120 {
        let created = manager
            .create(account.clone(), NewKey::named(format!("key {i}")))
            .await
            .unwrap();
        initial.push(created.view.id);
    }
    let writer = {
        let (manager, account, initial) = (manager.clone(), account.clone(), initial.clone());
        tokio::spawn(async move {
            for i in 0..60 {
                manager
                    .create(account.clone(), NewKey::named("concurrent"))
                    .await
                    .unwrap();
                manager.revoke(&account, &initial[i * 2]).await.unwrap();
                tokio::task::yield_now().await;
            }
        })
    };
    let mut seen: Vec<KeyId> = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = manager
            .list(
                &account,
                &page_query(Some(10), cursor.as_deref()).status(KeyStatusFilter::All),
            )
            .await
            .unwrap();
        seen.extend(page.data.iter().map(|v| v.id.clone()));
        tokio::task::yield_now().await;
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    writer.await.unwrap();
    let unique: HashSet<&KeyId> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "no key appears twice");
    let seen: BTreeSet<&KeyId> = seen.iter().collect();
    for id in &initial {
        assert!(seen.contains(id), "{id} was skipped");
    }
}

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
async fn revoked_key_is_rejected_even_when_cached() {
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

// ---------------------------------------------------------------------------------------
// Account isolation

#[tokio::test]
async fn a_key_cannot_see_or_change_another_accounts_keys() {
    let h = Harness::new();
    let (_, a_key) = h.key("acct_a", &["admin"]).await;
    let (a_other, _) = h.key("acct_a", &[]).await;
    let (b_id, b_key) = h.key("acct_b", &["admin"]).await;
    let actor = identity(&h, &a_key).await;
    let acting = h.manager.acting_as(&actor);

    assert!(matches!(
        acting.get(&b_id).await,
        Err(ManageError::NotFound)
    ));
    assert!(matches!(
        acting
            .update(&b_id, KeyUpdate::default().name("pwned"))
            .await,
        Err(ManageError::NotFound)
    ));
    assert!(matches!(
        acting.revoke(&b_id).await,
        Err(ManageError::NotFound)
    ));
    assert!(matches!(
        acting.roll(&b_id, None).await,
        Err(ManageError::NotFound)
    ));

    let page = acting.list(&page_query(Some(100), None)).await.unwrap();
    let ids: BTreeSet<&str> = page.data.iter().map(|v| v.id.as_str()).collect();
    assert_eq!(ids.len(), 2);
    assert!(ids.contains(a_other.as_str()));
    assert!(!ids.contains(b_id.as_str()));
    assert!(page.data.iter().all(|v| v.account_id == acct("acct_a")));

    // B's key is untouched.
    let b = h.manager.get(&acct("acct_b"), &b_id).await.unwrap();
    assert_eq!(b.name, "test key");
    assert_eq!(b.revoked_at, None);
    assert!(h.gate.verify_key(&b_key).await.is_ok());

    // The plain manager enforces the same boundary by account.
    assert!(matches!(
        h.manager.get(&acct("acct_a"), &b_id).await,
        Err(ManageError::NotFound)
    ));
    assert!(matches!(
        h.manager.revoke(&acct("acct_a"), &b_id).await,
        Err(ManageError::NotFound)
    ));
}

// ---------------------------------------------------------------------------------------
// Last used

#[tokio::test]
async fn last_used_is_written_at_most_once_per_interval_per_key() {
    let h = Harness::with(|b| b.last_used_interval(Duration::from_secs(60)));
    let account = acct("acct_1");
    let (id, key) = h.key("acct_1", &[]).await;
    let (other_id, other) = h.key("acct_1", &[]).await;
    let mut svc = h.service();

    for _ in 0..50 {
        assert_eq!(send(&mut svc, get("/", Some(&key))).await.status, 200);
    }
    settle().await;
    assert_eq!(h.store.last_used_writes(), 1);
    assert_eq!(
        h.manager.get(&account, &id).await.unwrap().last_used_at,
        Some(rfc3339(t0()))
    );

    // Within the interval: no more writes.
    h.time.advance(Duration::from_secs(59));
    for _ in 0..50 {
        send(&mut svc, get("/", Some(&key))).await;
    }
    settle().await;
    assert_eq!(h.store.last_used_writes(), 1);

    // Past it: exactly one more.
    h.time.advance(Duration::from_secs(1));
    for _ in 0..50 {
        send(&mut svc, get("/", Some(&key))).await;
    }
    settle().await;
    assert_eq!(h.store.last_used_writes(), 2);
    assert_eq!(
        h.manager.get(&account, &id).await.unwrap().last_used_at,
        Some(rfc3339(t0() + Duration::from_secs(60)))
    );

    // Each key coalesces on its own.
    for _ in 0..10 {
        send(&mut svc, get("/", Some(&other))).await;
    }
    settle().await;
    assert_eq!(h.store.last_used_writes(), 3);
    assert!(h
        .manager
        .get(&account, &other_id)
        .await
        .unwrap()
        .last_used_at
        .is_some());

    // Refused requests are not uses.
    h.time.advance(Duration::from_secs(120));
    let mut scoped = tower::ServiceBuilder::new()
        .layer(h.gate.layer().require_any(["admin"]))
        .service_fn(echo);
    for _ in 0..5 {
        assert_eq!(send(&mut scoped, get("/", Some(&key))).await.status, 403);
    }
    settle().await;
    assert_eq!(h.store.last_used_writes(), 3);
}

#[tokio::test]
async fn last_used_is_not_written_more_often_after_the_cached_entry_is_reloaded() {
    let h = Harness::with(|b| b.last_used_interval(Duration::from_secs(60)));
    let (id, key) = h.key("acct_1", &[]).await;
    let mut svc = h.service();
    send(&mut svc, get("/", Some(&key))).await;
    settle().await;
    assert_eq!(h.store.last_used_writes(), 1);
    // An unrelated change drops the cache entry; the reloaded record remembers the write.
    h.manager
        .update(&acct("acct_1"), &id, KeyUpdate::default().name("renamed"))
        .await
        .unwrap();
    h.time.advance(Duration::from_secs(10));
    for _ in 0..10 {
        send(&mut svc, get("/", Some(&key))).await;
    }
    settle().await;
    assert_eq!(h.store.lookups(), 2);
    assert_eq!(h.store.last_used_writes(), 1);
}

/// A store whose `last_used_at` writes never finish.
#[derive(Default)]
struct StuckWrites(MemoryStore);

#[async_trait]
impl KeyStore for StuckWrites {
    async fn find_by_digest(&self, digest: &KeyDigest) -> Result<Option<KeyRecord>, StoreError> {
        self.0.find_by_digest(digest).await
    }
}

#[async_trait]
impl KeyStoreWrite for StuckWrites {
    async fn get(&self, id: &KeyId) -> Result<Option<KeyRecord>, StoreError> {
        self.0.get(id).await
    }
    async fn insert(
        &self,
        record: KeyRecord,
        max_active: Option<usize>,
        now: SystemTime,
    ) -> Result<(), StoreError> {
        self.0.insert(record, max_active, now).await
    }
    async fn replace(&self, record: KeyRecord) -> Result<(), StoreError> {
        self.0.replace(record).await
    }
    async fn delete(&self, id: &keygate::KeyId) -> Result<KeyRecord, StoreError> {
        self.0.delete(id).await
    }
    async fn list(
        &self,
        account: &AccountId,
        status: keygate::store::KeyStatusFilter,
        after: Option<&keygate::store::ListPosition>,
        limit: usize,
    ) -> Result<Vec<KeyRecord>, StoreError> {
        self.0.list(account, status, after, limit).await
    }
    async fn record_last_used(&self, _: &KeyId, _: SystemTime) -> Result<(), StoreError> {
        std::future::pending().await
    }
}

#[tokio::test(start_paused = true)]
async fn authenticating_requests_never_wait_for_the_last_used_write() {
    let store = Arc::new(StuckWrites::default());
    let (clock, time) = keygate::Clock::manual(t0());
    let (gate, manager) = Keygate::managed(store.clone())
        .clock(clock)
        .last_used_interval(Duration::from_secs(1))
        .build();
    let created = manager
        .create(acct("acct_1"), NewKey::named("k"))
        .await
        .unwrap();
    let mut svc = tower::ServiceBuilder::new()
        .layer(gate.layer())
        .service_fn(echo);
    for _ in 0..5 {
        // With the write on the request path this would never finish; the paused tokio
        // clock makes the timeout fire at once if it does not.
        let answer = tokio::time::timeout(
            Duration::from_secs(60),
            send(&mut svc, get("/", Some(created.key.expose_secret()))),
        )
        .await
        .expect("the request did not wait for the last-used write");
        assert_eq!(answer.status, 200);
        time.advance(Duration::from_secs(2));
    }
}

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
    invalid_field(
        create(NewKey::named("k").expires_at(t0())).await,
        "expires_at",
    );
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
