//! Issue 13, security hardening: each defect the adversarial review found, shown fixed
//! over HTTP where it is an HTTP behaviour (the admin router on loopback TCP), plus a
//! property test that no management request ever yields a key with more power than the
//! key that made it, and a create+revoke flood that shows the store's memory levels off.

mod common;
use common::*;

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::routing::get as get_route;
use http::Method;
use keygate::manage::Revoked;
use keygate::scope::GrantedScopes;
use keygate::{
    AccountId, Environment, ForwardingHeader, Identity, IpAllowlist, KeyId, KeyRecord,
    KeyStoreWrite, KeyUpdate, ManageError, ManagerConfig, NewKey, RateLimit, RateLimitConfig,
    ScopeImplications, ScopePolicy, ScopeRequirement, ScopeSet, TrustedProxies,
};
use serde_json::{json, Value};

// ---------------------------------------------------------------------------------------
// Harness: the admin router on loopback, optionally behind a trusted proxy on 127.0.0.1.

struct Api {
    h: Harness,
    addr: SocketAddr,
}

impl Api {
    async fn new(h: Harness) -> Self {
        let addr = serve(keygate::admin::router(h.manager.clone())).await;
        Self { h, addr }
    }

    /// A request from the loopback peer; `client` is sent as `X-Forwarded-For`, which a
    /// harness from [`behind_loopback_proxy`] honours.
    async fn call(
        &self,
        method: Method,
        path: &str,
        key: &str,
        body: Option<Value>,
        client: Option<&str>,
    ) -> Answer {
        let auth = bearer(key);
        let mut headers = vec![("authorization", auth.as_str())];
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        if !body.is_empty() {
            headers.push(("content-type", "application/json"));
        }
        if let Some(ip) = client {
            headers.push(("x-forwarded-for", ip));
        }
        http(self.addr, method, path, &headers, &body).await
    }

    async fn get(&self, path: &str, key: &str) -> Answer {
        self.call(Method::GET, path, key, None, None).await
    }

    async fn post(&self, path: &str, key: &str, body: Value) -> Answer {
        self.call(Method::POST, path, key, Some(body), None).await
    }

    async fn patch(&self, path: &str, key: &str, body: Value) -> Answer {
        self.call(Method::PATCH, path, key, Some(body), None).await
    }

    async fn delete(&self, path: &str, key: &str) -> Answer {
        self.call(Method::DELETE, path, key, None, None).await
    }

    fn listed_ids(a: &Answer) -> BTreeSet<String> {
        assert_eq!(a.status, 200, "{}", a.body);
        a.json()["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["id"].as_str().unwrap().to_owned())
            .collect()
    }
}

/// Behind a proxy on 127.0.0.1 that appends the client to `X-Forwarded-For`.
fn behind_loopback_proxy() -> Harness {
    let proxy = IpAllowlist::parse(["127.0.0.1"]).unwrap();
    Harness::with(|b| b.client_ip(TrustedProxies::new(proxy)))
}

fn key_path(id: &str) -> String {
    format!("/v1/api-keys/{id}")
}

fn roll_path(id: &str) -> String {
    format!("/v1/api-keys/{id}/roll")
}

fn assert_error(a: &Answer, status: u16, code: &str) {
    assert_eq!(a.status, status, "{}", a.body);
    assert_eq!(a.code(), code, "{}", a.body);
}

/// A 400 or 403 whose message starts with `field: `.
fn assert_error_on(a: &Answer, status: u16, code: &str, field: &str) {
    assert_error(a, status, code);
    let message = a.json()["error"]["message"].as_str().unwrap().to_owned();
    assert!(
        message.starts_with(&format!("{field}: ")),
        "message should start with '{field}: ': {message}"
    );
}

fn acct(s: &str) -> AccountId {
    AccountId::from(s)
}

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

// ---------------------------------------------------------------------------------------
// Defect 2: restricted keys widening other keys, or themselves.

/// An admin key limited to 203.0.113.7, a one-hour expiry and 2 requests/s, and the API
/// behind a loopback proxy so requests can come "from" 203.0.113.7.
async fn restricted_admin() -> (Api, KeyId, String) {
    let api = Api::new(behind_loopback_proxy()).await;
    let (id, key) = api
        .h
        .key_with(
            "acct_1",
            NewKey::named("restricted admin")
                .scopes(["admin"])
                .ips(["203.0.113.7"])
                .expires_at(t0() + Duration::from_secs(3600))
                .rate_limit(RateLimit::new(2, 2)),
        )
        .await;
    (api, id, key)
}

const ACTOR_IP: Option<&str> = Some("203.0.113.7");

impl Api {
    /// A call from the restricted admin's address, one second after the last, so its
    /// 2/s quota never refuses it.
    async fn as_actor(&self, method: Method, path: &str, key: &str, body: Option<Value>) -> Answer {
        self.h.time.advance(Duration::from_secs(1));
        self.call(method, path, key, body, ACTOR_IP).await
    }
}

#[tokio::test]
async fn widening_a_restricted_key_cannot_mint_a_wider_key() {
    let (api, actor_id, actor) = restricted_admin().await;
    let u32max = u32::MAX;
    let refused = [
        (json!({"name": "w", "ips": ["0.0.0.0/0"]}), "ips"),
        (json!({"name": "w", "ips": ["203.0.113.0/24"]}), "ips"),
        (
            json!({"name": "w", "ips": ["203.0.113.7", "198.51.100.1"]}),
            "ips",
        ),
        (
            json!({"name": "w", "expires_at": "2099-01-01T00:00:00Z"}),
            "expires_at",
        ),
        (
            json!({"name": "w", "rate_limit": {"per_second": u32max, "burst": u32max}}),
            "rate_limit",
        ),
        (
            json!({"name": "w", "rate_limit": {"per_second": 2, "burst": 3}}),
            "rate_limit",
        ),
        (
            json!({"name": "w", "rate_limit": {"per_second": 3, "burst": 1}}),
            "rate_limit",
        ),
    ];
    for (body, field) in refused {
        let a = api
            .as_actor(Method::POST, "/v1/api-keys", &actor, Some(body.clone()))
            .await;
        assert_error_on(&a, 403, "widening_refused", field);
    }
    // The review's exact request: no allowlist, no expiry, 4294967295/s.
    let a = api
        .as_actor(
            Method::POST,
            "/v1/api-keys",
            &actor,
            Some(
                json!({"name": "w", "ips": ["0.0.0.0/0", "::/0"], "expires_at": null,
                        "rate_limit": {"per_second": u32max, "burst": u32max}}),
            ),
        )
        .await;
    assert_error(&a, 403, "widening_refused");
    let listed = api
        .as_actor(Method::GET, "/v1/api-keys", &actor, None)
        .await;
    assert_eq!(Api::listed_ids(&listed), [actor_id.to_string()].into());

    // Left open, the restrictions are inherited rather than refused.
    let actor_view = api.h.manager.get(&acct("acct_1"), &actor_id).await.unwrap();
    for body in [
        json!({"name": "inherits", "scopes": ["read-only"]}),
        json!({"name": "explicit any", "scopes": ["read-only"], "ips": [], "expires_at": null,
               "rate_limit": null}),
    ] {
        let a = api
            .as_actor(Method::POST, "/v1/api-keys", &actor, Some(body))
            .await;
        assert_eq!(a.status, 201, "{}", a.body);
        let child = a.json();
        assert_eq!(child["ips"], json!(["203.0.113.7"]));
        assert_eq!(child["expires_at"], json!(actor_view.expires_at));
        assert_eq!(child["rate_limit"], json!({"per_second": 2, "burst": 2}));
        // The child works from the actor's address only.
        let key = child["key"].as_str().unwrap();
        let ok = api.as_actor(Method::GET, "/v1/api-keys", key, None).await;
        assert_eq!(ok.status, 200, "{}", ok.body);
        api.h.time.advance(Duration::from_secs(1));
        let elsewhere = api
            .call(Method::GET, "/v1/api-keys", key, None, Some("198.51.100.1"))
            .await;
        assert_error(&elsewhere, 403, "ip_not_allowed");
    }

    // Narrower in every way is fine.
    let a = api
        .as_actor(
            Method::POST,
            "/v1/api-keys",
            &actor,
            Some(json!({"name": "narrower", "ips": ["203.0.113.7/32"],
                        "expires_at": "2023-11-14T22:43:20+00:00",
                        "rate_limit": {"per_second": 1, "burst": 2}})),
        )
        .await;
    assert_eq!(a.status, 201, "{}", a.body);
}

#[tokio::test]
async fn widening_a_restricted_key_cannot_lift_its_own_restrictions() {
    let (api, actor_id, actor) = restricted_admin().await;
    let own = key_path(actor_id.as_str());
    let before = api.h.manager.get(&acct("acct_1"), &actor_id).await.unwrap();
    let refused = [
        (
            json!({"ips": [], "expires_at": null, "rate_limit": null}),
            None,
        ),
        (json!({"ips": []}), Some("ips")),
        (json!({"ips": ["0.0.0.0/0"]}), Some("ips")),
        (json!({"expires_at": null}), Some("expires_at")),
        (
            json!({"expires_at": "2099-01-01T00:00:00+14:00"}),
            Some("expires_at"),
        ),
        (json!({"rate_limit": null}), Some("rate_limit")),
        (
            json!({"rate_limit": {"per_second": 1000, "burst": 2000}}),
            Some("rate_limit"),
        ),
    ];
    for (body, field) in refused {
        let a = api.as_actor(Method::PATCH, &own, &actor, Some(body)).await;
        match field {
            Some(field) => assert_error_on(&a, 403, "widening_refused", field),
            None => assert_error(&a, 403, "widening_refused"),
        }
    }
    let mut after = api.h.manager.get(&acct("acct_1"), &actor_id).await.unwrap();
    after.last_used_at = before.last_used_at.clone();
    assert_eq!(after, before, "nothing changed");

    // Nor can it touch a less restricted key of its account: rolling one would hand it
    // that key's unrestricted secret.
    let (free_id, free_key) = api.h.key("acct_1", &["admin"]).await;
    let free = key_path(free_id.as_str());
    let attempts = [
        api.as_actor(
            Method::POST,
            &roll_path(free_id.as_str()),
            &actor,
            Some(json!({})),
        )
        .await,
        api.as_actor(Method::PATCH, &free, &actor, Some(json!({"name": "mine"})))
            .await,
        api.as_actor(Method::DELETE, &free, &actor, None).await,
    ];
    for a in &attempts {
        assert_error(a, 403, "widening_refused");
    }
    assert!(api.h.gate.verify_key(&free_key).await.is_ok());
    assert_eq!(
        api.h
            .manager
            .get(&acct("acct_1"), &free_id)
            .await
            .unwrap()
            .name,
        "test key"
    );

    // Tightening itself is allowed.
    let a = api
        .as_actor(
            Method::PATCH,
            &own,
            &actor,
            Some(json!({"name": "tighter", "rate_limit": {"per_second": 1, "burst": 2}})),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
}

#[tokio::test]
async fn widening_an_actor_on_the_default_quota_cannot_exceed_it() {
    let h = Harness::with(|b| {
        b.rate_limits(RateLimitConfig::default().default_quota(Some(RateLimit::new(10, 20))))
    });
    let api = Api::new(h).await;
    let (_, admin) = api.h.key("acct_1", &["admin"]).await;
    let a = api
        .post(
            "/v1/api-keys",
            &admin,
            json!({"name": "w", "rate_limit": {"per_second": 11, "burst": 1}}),
        )
        .await;
    assert_error_on(&a, 403, "widening_refused", "rate_limit");
    let a = api
        .post(
            "/v1/api-keys",
            &admin,
            json!({"name": "ok", "rate_limit": {"per_second": 10, "burst": 20}}),
        )
        .await;
    assert_eq!(a.status, 201, "{}", a.body);
}

#[tokio::test]
async fn read_only_scopes_are_restrictions_a_read_write_key_may_create_a_read_only_key() {
    // No implications: "admin" does not imply "read-only" here.
    let api = Api::new(Harness::with(|b| {
        b.scope_implications(ScopeImplications::new())
    }))
    .await;
    let (_, admin) = api.h.key("acct_1", &["admin"]).await;
    let a = api
        .post(
            "/v1/api-keys",
            &admin,
            json!({"name": "reader", "scopes": ["read-only"]}),
        )
        .await;
    assert_eq!(a.status, 201, "{}", a.body);
    let reader = a.json()["key"].as_str().unwrap().to_owned();
    assert!(api.h.gate.verify_key(&reader).await.unwrap().is_read_only());
    // The reader reads, and cannot write.
    assert_eq!(api.get("/v1/api-keys", &reader).await.status, 200);
    let a = api
        .post(
            "/v1/api-keys",
            &reader,
            json!({"name": "x", "scopes": ["read-only"]}),
        )
        .await;
    assert_error(&a, 403, "insufficient_scope");

    // Vidbeo's `fetch`, through the acting manager.
    let h = Harness::with(|b| b.read_only_scopes(ScopeSet::parse(["fetch"]).unwrap()));
    let (_, writer) = h.key("acct_1", &["videos:write"]).await;
    let actor = h.gate.verify_key(&writer).await.unwrap();
    let fetch = h
        .manager
        .acting_as(&actor)
        .create(NewKey::named("fetch").scopes(["fetch", "videos:write"]))
        .await
        .unwrap();
    assert!(h
        .gate
        .verify_key(fetch.key.expose_secret())
        .await
        .unwrap()
        .is_read_only());
    // A read-only actor still cannot drop its restriction.
    let ro = h.gate.verify_key(fetch.key.expose_secret()).await.unwrap();
    let err = h
        .manager
        .acting_as(&ro)
        .create(NewKey::named("rw").scopes(["videos:write"]))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "insufficient_scope");

    // A restricting scope that implies a privilege grants it, so it is not free.
    let h = Harness::with(|b| {
        b.scope_implications(ScopeImplications::new().implies("read-only", ["billing:read"]))
    });
    let (_, writer) = h.key("acct_1", &["videos:write"]).await;
    let actor = h.gate.verify_key(&writer).await.unwrap();
    let err = h
        .manager
        .acting_as(&actor)
        .create(NewKey::named("ro").scopes(["read-only"]))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "insufficient_scope", "{err}");
}

// ---------------------------------------------------------------------------------------
// Defect 4: memory per tenant.

#[tokio::test]
async fn memory_a_create_revoke_flood_levels_off() {
    let h = Harness::new();
    let account = acct("flood");
    let metadata: serde_json::Map<String, Value> = [("blob".to_owned(), json!("m".repeat(4000)))]
        .into_iter()
        .collect();
    let cycle = |h: &Harness, metadata: serde_json::Map<String, Value>| {
        let manager = h.manager.clone();
        let account = account.clone();
        async move {
            let created = manager
                .create(account.clone(), NewKey::named("flood").metadata(metadata))
                .await
                .unwrap();
            manager.revoke(&account, &created.view.id).await.unwrap();
        }
    };
    let held = |h: &Harness| h.store.inner.len();

    // At a standing clock (the review's 1,500 cycles in a burst, and more): the account
    // keeps its 1,000 most recently revoked keys.
    let mut burst = Vec::new();
    for i in 1..=5_000 {
        cycle(&h, metadata.clone()).await;
        if i % 1_000 == 0 || i == 1_500 {
            burst.push((i, held(&h)));
        }
    }
    println!("standing clock, (cycles, records held): {burst:?}");
    for &(i, n) in &burst {
        assert!(n <= 1_001, "{n} records after {i} cycles");
    }
    assert!(
        burst.last().unwrap().1 >= 1_000,
        "revoked keys are kept up to the bound"
    );

    // One cycle an hour: revoked keys go after 30 days (720 hours), before the bound.
    let h = Harness::new();
    let mut hourly = Vec::new();
    for i in 1..=3_000 {
        h.time.advance(Duration::from_secs(3600));
        cycle(&h, metadata.clone()).await;
        if i % 500 == 0 {
            hourly.push((i, held(&h)));
        }
    }
    println!("one cycle an hour, (cycles, records held): {hourly:?}");
    for &(i, n) in &hourly[1..] {
        assert!(
            (720..=722).contains(&n),
            "{n} records after {i} hourly cycles"
        );
    }

    // Letting keys expire instead of revoking them is bounded the same way.
    let h = Harness::new();
    for _ in 0..2_500 {
        let now = h.clock.now();
        h.manager
            .create(
                account.clone(),
                NewKey::named("short").expires_at(now + Duration::from_secs(1)),
            )
            .await
            .unwrap();
        h.time.advance(Duration::from_secs(2));
    }
    println!("2,500 keys left to expire: {} records held", held(&h));
    assert!(held(&h) <= 1_001);
}

#[tokio::test]
async fn memory_metadata_is_limited_to_4_kib_of_json() {
    let api = Api::new(Harness::new()).await;
    let (_, admin) = api.h.key("acct_1", &["admin"]).await;
    // {"k":"…"} is 8 bytes plus the value.
    let sized = |total: usize| json!({"k": "v".repeat(total - 8)});
    let a = api
        .post(
            "/v1/api-keys",
            &admin,
            json!({"name": "big", "metadata": sized(4097)}),
        )
        .await;
    assert_error_on(&a, 400, "invalid_request", "metadata");
    let a = api
        .post(
            "/v1/api-keys",
            &admin,
            json!({"name": "fits", "metadata": sized(4096)}),
        )
        .await;
    assert_eq!(a.status, 201, "{}", a.body);
    let id = a.json()["id"].as_str().unwrap().to_owned();
    let a = api
        .patch(&key_path(&id), &admin, json!({"metadata": sized(4097)}))
        .await;
    assert_error_on(&a, 400, "invalid_request", "metadata");

    // Configurable.
    let h = Harness::with(|b| b.manager_config(ManagerConfig::default().max_metadata_bytes(100)));
    let manager = h.manager.clone();
    let meta = |total: usize| match sized(total) {
        Value::Object(m) => m,
        _ => unreachable!(),
    };
    let err = manager
        .create(acct("a"), NewKey::named("k").metadata(meta(101)))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "invalid_request");
    manager
        .create(acct("a"), NewKey::named("k").metadata(meta(100)))
        .await
        .unwrap();
}

// ---------------------------------------------------------------------------------------
// Defect 5: HEAD bypassing a GET-only ScopePolicy row.

#[tokio::test]
async fn head_is_checked_as_get_by_a_scope_policy() {
    let h = Harness::new();
    let ran = Arc::new(AtomicUsize::new(0));
    let counter = ran.clone();
    let handler = move || {
        let counter = counter.clone();
        async move {
            counter.fetch_add(1, Ordering::SeqCst);
            ([("x-secret-report", "quarterly")], "the report")
        }
    };
    let policy = ScopePolicy::new().route(
        Method::GET,
        "/reports/{id}",
        ScopeRequirement::scope("reports:read"),
    );
    let app = axum::Router::new()
        .route("/reports/{id}", get_route(handler))
        .layer(h.gate.layer().policy(policy));
    let addr = serve(app).await;
    let (_, none) = h.key("acct_1", &[]).await;
    let (_, reader) = h.key("acct_1", &["reports:read"]).await;

    for method in [Method::GET, Method::HEAD] {
        let auth = bearer(&none);
        let a = http(
            addr,
            method.clone(),
            "/reports/1",
            &[("authorization", &auth)],
            "",
        )
        .await;
        assert_eq!(a.status, 403, "{method}");
        assert!(a.header("x-secret-report").is_none(), "{method}");
        if method == Method::GET {
            assert_eq!(a.code(), "insufficient_scope");
        }
    }
    assert_eq!(ran.load(Ordering::SeqCst), 0, "the handler never ran");

    for method in [Method::GET, Method::HEAD] {
        let auth = bearer(&reader);
        let a = http(
            addr,
            method.clone(),
            "/reports/1",
            &[("authorization", &auth)],
            "",
        )
        .await;
        assert_eq!(a.status, 200, "{method}");
        assert_eq!(a.header("x-secret-report"), Some("quarterly"));
    }
    assert_eq!(ran.load(Ordering::SeqCst), 2);
}

// ---------------------------------------------------------------------------------------
// Defect 6: a client-sent Forwarded header beating the proxy's X-Forwarded-For.

#[tokio::test]
async fn forwarding_a_client_sent_forwarded_header_cannot_pass_an_ip_allowlist() {
    // The proxy on 127.0.0.1 appends the real client, 203.0.113.9, to X-Forwarded-For and
    // passes the client's own Forwarded header through untouched.
    let h = behind_loopback_proxy();
    let (_, key) = h
        .key_with("acct_1", NewKey::named("office only").ips(["198.51.100.7"]))
        .await;
    let app = axum::Router::new()
        .route("/", get_route(|| async { "ok" }))
        .layer(h.gate.layer());
    let addr = serve(app).await;
    let auth = bearer(&key);
    let spoofed = http(
        addr,
        Method::GET,
        "/",
        &[
            ("authorization", &auth),
            ("forwarded", "for=198.51.100.7"),
            ("x-forwarded-for", "203.0.113.9"),
        ],
        "",
    )
    .await;
    assert_eq!(spoofed.status, 403, "{}", spoofed.body);
    assert_eq!(spoofed.code(), "ip_not_allowed");
    // The real office address passes.
    let office = http(
        addr,
        Method::GET,
        "/",
        &[
            ("authorization", &auth),
            ("x-forwarded-for", "198.51.100.7"),
        ],
        "",
    )
    .await;
    assert_eq!(office.status, 200, "{}", office.body);

    // An operator whose proxy writes Forwarded chooses it, and X-Forwarded-For is ignored.
    let proxy = IpAllowlist::parse(["127.0.0.1"]).unwrap();
    let h = Harness::with(|b| {
        b.client_ip(TrustedProxies::new(proxy).header(ForwardingHeader::Forwarded))
    });
    let (_, key) = h
        .key_with("acct_1", NewKey::named("office only").ips(["198.51.100.7"]))
        .await;
    let app = axum::Router::new()
        .route("/", get_route(|| async { "ok" }))
        .layer(h.gate.layer());
    let addr = serve(app).await;
    let auth = bearer(&key);
    let spoofed = http(
        addr,
        Method::GET,
        "/",
        &[
            ("authorization", &auth),
            ("x-forwarded-for", "198.51.100.7"),
            ("forwarded", "for=203.0.113.9"),
        ],
        "",
    )
    .await;
    assert_eq!(spoofed.code(), "ip_not_allowed");
}

// ---------------------------------------------------------------------------------------
// Defect 8: valid input refused, invalid input accepted.

#[tokio::test]
async fn validation_expires_at_accepts_any_rfc3339_offset_and_normalises_to_utc() {
    let api = Api::new(Harness::new()).await;
    let (_, admin) = api.h.key("acct_1", &["admin"]).await;
    let cases = [
        ("2099-01-01T00:00:00+14:00", "2098-12-31T10:00:00.000Z"),
        ("2099-01-01T00:00:00-12:00", "2099-01-01T12:00:00.000Z"),
        ("2099-06-30T23:59:59.5+05:30", "2099-06-30T18:29:59.500Z"),
        ("2099-01-01t00:00:00z", "2099-01-01T00:00:00.000Z"),
        ("2099-01-01T00:00:00Z", "2099-01-01T00:00:00.000Z"),
    ];
    for (sent, stored) in cases {
        let a = api
            .post(
                "/v1/api-keys",
                &admin,
                json!({"name": "k", "expires_at": sent}),
            )
            .await;
        assert_eq!(a.status, 201, "{sent}: {}", a.body);
        assert_eq!(a.json()["expires_at"], stored, "{sent}");
        let id = a.json()["id"].as_str().unwrap().to_owned();
        let a = api
            .patch(&key_path(&id), &admin, json!({"expires_at": sent}))
            .await;
        assert_eq!(a.status, 200, "{sent}: {}", a.body);
        assert_eq!(a.json()["expires_at"], stored, "{sent}");
    }
    for bad in [
        "2099-01-01T00:00:00",
        "2099-01-01T00:00:00+1400",
        "2099-02-30T00:00:00Z",
        "2099-01-01T00:00:00+24:00",
        "tomorrow",
    ] {
        let a = api
            .post(
                "/v1/api-keys",
                &admin,
                json!({"name": "k", "expires_at": bad}),
            )
            .await;
        assert_error_on(&a, 400, "invalid_request", "expires_at");
    }
}

#[tokio::test]
async fn validation_names_of_invisible_or_bidi_control_characters_are_refused() {
    let api = Api::new(Harness::new()).await;
    let (admin_id, admin) = api.h.key("acct_1", &["admin"]).await;
    let bad = [
        "\u{200B}",
        "\u{200B}\u{200C}\u{200D}",
        "\u{FEFF}\u{2060}",
        " \u{200B}\u{3000}",
        "invoice\u{202E}fdp.exe",
        "\u{2066}admin\u{2069}",
        "\u{200F}key",
        "tab\there",
        "bell\u{7}",
    ];
    for name in bad {
        let a = api
            .post("/v1/api-keys", &admin, json!({"name": name}))
            .await;
        assert_error_on(&a, 400, "invalid_request", "name");
        let a = api
            .patch(&key_path(admin_id.as_str()), &admin, json!({"name": name}))
            .await;
        assert_error_on(&a, 400, "invalid_request", "name");
    }
    for good in ["CI key", "clé", "👩\u{200D}💻 laptop", "ключ"] {
        let a = api
            .post("/v1/api-keys", &admin, json!({"name": good}))
            .await;
        assert_eq!(a.status, 201, "{good:?}: {}", a.body);
    }
}

// ---------------------------------------------------------------------------------------
// The property: no key ever ends up with more power than the key that made it.

mod power {
    use super::*;
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestCaseError, TestRunner};

    pub(super) const CASES: u32 = 512;

    const SCOPES: [&str; 7] = [
        "admin",
        "billing",
        "charges:read",
        "charges:write",
        "keys:write",
        "read-only",
        "fetch",
    ];
    const NETS: [&str; 5] = [
        "203.0.113.7",
        "203.0.113.0/24",
        "10.0.0.0/8",
        "2001:db8::/32",
        "0.0.0.0/0",
    ];
    /// Addresses that tell the nets apart.
    const PROBES: [&str; 8] = [
        "203.0.113.7",
        "203.0.113.8",
        "10.1.2.3",
        "8.8.8.8",
        "2001:db8::1",
        "2001:db9::1",
        "::ffff:203.0.113.7",
        "::1",
    ];
    const QUOTAS: [u32; 5] = [1, 2, 100, 1000, u32::MAX];
    const DEFAULT_QUOTA: RateLimit = RateLimit::new(100, 200);

    fn implications() -> ScopeImplications {
        ScopeImplications::new()
            .grants_all("admin")
            .implies("billing", ["charges:read", "charges:write"])
            .write_implies_read()
    }

    fn read_only_scopes() -> ScopeSet {
        ScopeSet::parse(["read-only", "fetch"]).unwrap()
    }

    /// Restrictions a key may be given: the same shape serves actors, targets, creates
    /// and updates.
    #[derive(Clone, Debug)]
    pub(super) struct Shape {
        scopes: Vec<&'static str>,
        ips: Vec<&'static str>,
        /// Hours from the start, or none.
        expires_in_hours: Option<u64>,
        rate_limit: Option<(u32, u32)>,
        environment: Option<Environment>,
    }

    fn shape() -> impl Strategy<Value = Shape> {
        (
            proptest::sample::subsequence(SCOPES.to_vec(), 0..=3),
            prop_oneof![
                2 => Just(Vec::new()),
                3 => proptest::sample::subsequence(NETS.to_vec(), 1..=2),
            ],
            proptest::option::of(prop_oneof![
                Just(1u64),
                Just(24),
                Just(24 * 30),
                Just(24 * 365)
            ]),
            proptest::option::of((
                proptest::sample::select(QUOTAS.to_vec()),
                proptest::sample::select(QUOTAS.to_vec()),
            )),
            prop_oneof![
                Just(None),
                Just(Some(Environment::Test)),
                Just(Some(Environment::Live)),
            ],
        )
            .prop_map(
                |(scopes, ips, expires_in_hours, rate_limit, environment)| Shape {
                    scopes,
                    ips,
                    expires_in_hours,
                    rate_limit,
                    environment,
                },
            )
    }

    impl Shape {
        fn new_key(&self, name: &str) -> NewKey {
            let mut new = NewKey::named(name)
                .scopes(self.scopes.iter().copied())
                .ips(self.ips.iter().copied());
            new.expires_at = self.expires_at();
            new.rate_limit = self.rate();
            new.environment = self.environment;
            new
        }

        fn expires_at(&self) -> Option<SystemTime> {
            self.expires_in_hours
                .map(|h| t0() + Duration::from_secs(h * 3600))
        }

        fn rate(&self) -> Option<RateLimit> {
            self.rate_limit.map(|(p, b)| RateLimit::new(p, b))
        }

        /// This shape's scopes that the actor holds directly, plus the actor's read-only
        /// ones.
        fn narrowed_scopes(&self, actor: &KeyRecord) -> Vec<String> {
            let restricting = read_only_scopes();
            self.scopes
                .iter()
                .copied()
                .filter(|s| actor.scopes.contains(s))
                .chain(
                    actor
                        .scopes
                        .iter()
                        .map(|s| s.as_str())
                        .filter(|s| restricting.contains(s)),
                )
                .map(str::to_owned)
                .collect()
        }
    }

    #[derive(Clone, Debug)]
    pub(super) enum Op {
        /// A create from the shape; when `narrow`, cut down to the actor's own scopes,
        /// leaving the other restrictions open (inherited).
        Create {
            shape: Shape,
            narrow: bool,
        },
        /// Which fields to set, from a shape; `target` indexes the keys known so far.
        /// When `narrow`, the restrictions set are the actor's own.
        Update {
            target: usize,
            from: Shape,
            fields: [bool; 4],
            clear_expiry: bool,
            clear_rate: bool,
            narrow: bool,
        },
        Roll(usize),
        Revoke(usize),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            3 => (shape(), any::<bool>()).prop_map(|(shape, narrow)| Op::Create { shape, narrow }),
            3 => (
                any::<usize>(),
                shape(),
                any::<[bool; 4]>(),
                any::<(bool, bool, bool)>(),
            )
                .prop_map(|(target, from, fields, (clear_expiry, clear_rate, narrow))| {
                    Op::Update { target, from, fields, clear_expiry, clear_rate, narrow }
                }),
            1 => any::<usize>().prop_map(Op::Roll),
            1 => any::<usize>().prop_map(Op::Revoke),
        ]
    }

    /// Everything a key can do, in terms an attacker cares about, compared directly:
    /// this does not reuse keygate's rule, it probes the two keys.
    fn no_more_powerful(
        key: &KeyRecord,
        actor: &KeyRecord,
        granted_key: &GrantedScopes,
        granted_actor: &GrantedScopes,
    ) -> Result<(), String> {
        if key.account_id != actor.account_id {
            return Err("another account".into());
        }
        if actor.environment.is_some() && key.environment != actor.environment {
            return Err(format!(
                "environment {:?} from a {:?} actor",
                key.environment, actor.environment
            ));
        }
        let restricting = read_only_scopes();
        if granted_key.has_all() && !granted_actor.has_all() {
            return Err("grants every scope".into());
        }
        let probes = SCOPES
            .iter()
            .copied()
            .chain(["other:thing", "charges:admin"])
            .chain(granted_key.iter().map(|s| s.as_str()));
        for s in probes {
            if granted_key.has(s) && !granted_actor.has(s) && !restricting.contains(s) {
                return Err(format!("scope {s}"));
            }
        }
        let read_only = |r: &KeyRecord| r.scopes.iter().any(|s| restricting.contains(s.as_str()));
        if read_only(actor) && !read_only(key) {
            return Err("read-write from a read-only actor".into());
        }
        for p in PROBES {
            let ip: IpAddr = p.parse().unwrap();
            if key.ips.allows(ip) && !actor.ips.allows(ip) {
                return Err(format!("address {p}"));
            }
        }
        if let Some(limit) = actor.expires_at {
            if key.expires_at.is_none_or(|t| t > limit) {
                return Err(format!("expiry {:?} after {limit:?}", key.expires_at));
            }
        }
        let effective = |r: &KeyRecord| r.rate_limit.or(Some(DEFAULT_QUOTA));
        if let (Some(a), k) = (effective(actor), effective(key)) {
            match k {
                Some(k) if k.per_second <= a.per_second && k.burst <= a.burst => {}
                other => return Err(format!("rate limit {other:?} above {a:?}")),
            }
        }
        Ok(())
    }

    /// The state of a key that an operation must not have changed, ignoring the
    /// coarse `last_used_at`.
    fn frozen(r: &Option<KeyRecord>) -> Option<KeyRecord> {
        r.clone().map(|mut r| {
            r.last_used_at = None;
            r
        })
    }

    #[derive(Default, Debug)]
    pub(super) struct Tally {
        pub(super) ok: usize,
        pub(super) refused: usize,
        pub(super) not_found: usize,
    }

    async fn run_case(
        actor_shape: Shape,
        others: Vec<Shape>,
        ops: Vec<Op>,
        tally: &mut Tally,
    ) -> Result<(), TestCaseError> {
        let h = Harness::with(|b| {
            b.scope_implications(implications())
                .read_only_scopes(read_only_scopes())
                .rate_limits(RateLimitConfig::default().default_quota(Some(DEFAULT_QUOTA)))
                .manager_config(ManagerConfig::default().max_active_keys(None))
        });
        let manager = h.manager.clone();
        let account = acct("acct_1");
        let actor_key = manager
            .create(account.clone(), actor_shape.new_key("actor"))
            .await
            .unwrap();
        let actor: Identity = h
            .gate
            .verify_key(actor_key.key.expose_secret())
            .await
            .unwrap();
        let actor_record = h.store.get(actor.key_id()).await.unwrap().unwrap();
        let granted_actor = implications().expand(&actor_record.scopes);

        // Keys the actor may try to act on: others in its account (any environment), one
        // in another account, and itself.
        let mut known: Vec<KeyId> = vec![actor.key_id().clone()];
        for (i, shape) in others.iter().enumerate() {
            let owner = if i == 0 {
                acct("acct_2")
            } else {
                account.clone()
            };
            let created = manager.create(owner, shape.new_key("other")).await.unwrap();
            known.push(created.view.id);
        }

        let acting = manager.acting_as(&actor);
        let check = |r: &KeyRecord, what: &str| -> Result<(), TestCaseError> {
            let granted = implications().expand(&r.scopes);
            no_more_powerful(r, &actor_record, &granted, &granted_actor).map_err(|why| {
                TestCaseError::fail(format!(
                    "{what} gave {} more power than its maker ({why}):\n key {r:?}\n actor {actor_record:?}",
                    r.id
                ))
            })
        };
        let record = |id: &KeyId| {
            let store = h.store.clone();
            let id = id.clone();
            async move { store.get(&id).await.unwrap() }
        };

        for op in ops {
            match op {
                Op::Create { shape, narrow } => {
                    let new = if narrow {
                        NewKey::named("narrow").scopes(shape.narrowed_scopes(&actor_record))
                    } else {
                        shape.new_key("made")
                    };
                    match acting.create(new).await {
                        Ok(created) => {
                            tally.ok += 1;
                            let r = record(&created.view.id).await.unwrap();
                            check(&r, "create")?;
                            known.push(created.view.id);
                        }
                        Err(e) => {
                            tally.refused += 1;
                            prop_assert!(
                                matches!(
                                    e,
                                    ManageError::Escalation(_)
                                        | ManageError::Widening(_)
                                        | ManageError::InvalidRequest(_)
                                ),
                                "{e:?}"
                            );
                        }
                    }
                }
                Op::Update {
                    target,
                    from,
                    fields,
                    clear_expiry,
                    clear_rate,
                    narrow,
                } => {
                    let id = known[target % known.len()].clone();
                    let before = record(&id).await;
                    let update = if narrow {
                        let mut u = KeyUpdate::default();
                        u.scopes = fields[0].then(|| from.narrowed_scopes(&actor_record));
                        u.ips = Some(
                            actor_record
                                .ips
                                .entries()
                                .iter()
                                .map(|n| n.to_string())
                                .collect(),
                        );
                        u.expires_at = Some(actor_record.expires_at);
                        u.rate_limit = Some(actor_record.rate_limit);
                        u
                    } else {
                        let mut u = KeyUpdate::default();
                        u.scopes =
                            fields[0].then(|| from.scopes.iter().map(|s| s.to_string()).collect());
                        u.ips = fields[1].then(|| from.ips.iter().map(|s| s.to_string()).collect());
                        u.expires_at = (fields[2] || clear_expiry).then(|| {
                            if clear_expiry {
                                None
                            } else {
                                from.expires_at()
                            }
                        });
                        u.rate_limit = (fields[3] || clear_rate).then(|| {
                            if clear_rate {
                                None
                            } else {
                                from.rate()
                            }
                        });
                        u
                    };
                    match acting.update(&id, update).await {
                        Ok(_) => {
                            tally.ok += 1;
                            check(before.as_ref().unwrap(), "updating a key")?;
                            check(&record(&id).await.unwrap(), "update")?;
                        }
                        Err(e) => {
                            if matches!(e, ManageError::NotFound) {
                                tally.not_found += 1;
                            } else {
                                tally.refused += 1;
                            }
                            prop_assert_eq!(frozen(&record(&id).await), frozen(&before));
                        }
                    }
                }
                Op::Roll(target) => {
                    let id = known[target % known.len()].clone();
                    let before = record(&id).await;
                    match acting.roll(&id, None).await {
                        Ok(rolled) => {
                            tally.ok += 1;
                            let r = record(&id).await.unwrap();
                            check(&r, "roll")?;
                            // The new secret is the key's, with nothing more.
                            let who = h.gate.verify_key(rolled.key.expose_secret()).await;
                            if let Ok(who) = who {
                                prop_assert_eq!(who.key_id(), &id);
                            }
                        }
                        Err(e) => {
                            if matches!(e, ManageError::NotFound) {
                                tally.not_found += 1;
                            } else {
                                tally.refused += 1;
                            }
                            prop_assert_eq!(frozen(&record(&id).await), frozen(&before));
                        }
                    }
                }
                Op::Revoke(target) => {
                    let id = known[target % known.len()].clone();
                    let before = record(&id).await;
                    match acting.revoke(&id).await {
                        Ok(Revoked::Now) => {
                            tally.ok += 1;
                            check(before.as_ref().unwrap(), "revoking a key")?;
                        }
                        // Idempotent: an already revoked key is left as it was.
                        Ok(Revoked::Already) => {
                            prop_assert_eq!(frozen(&record(&id).await), frozen(&before));
                        }
                        Err(e) => {
                            if matches!(e, ManageError::NotFound) {
                                tally.not_found += 1;
                            } else {
                                tally.refused += 1;
                            }
                            prop_assert_eq!(frozen(&record(&id).await), frozen(&before));
                        }
                    }
                }
            }
            // Keys of another environment than the actor's, or another account, are never
            // changed by it (checked by `check` for those it did change).
        }
        Ok(())
    }

    #[test]
    fn no_key_ever_ends_up_with_more_power_than_the_key_that_made_it() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let mut runner = TestRunner::new(Config {
            cases: CASES,
            failure_persistence: None,
            ..Config::default()
        });
        let tally = std::cell::RefCell::new(Tally::default());
        let strategy = (
            shape(),
            proptest::collection::vec(shape(), 1..=4),
            proptest::collection::vec(op(), 1..=12),
        );
        let result = runner.run(&strategy, |(actor, others, ops)| {
            let mut t = tally.borrow_mut();
            rt.block_on(run_case(actor, others, ops, &mut t))
        });
        if let Err(e) = result {
            panic!("{e}");
        }
        let tally = tally.into_inner();
        println!("{CASES} cases: {tally:?}");
        // Not vacuous: plenty of requests succeeded, and plenty were refused.
        assert!(tally.ok > CASES as usize, "{tally:?}");
        assert!(tally.refused > CASES as usize / 2, "{tally:?}");
        assert!(tally.not_found > 0, "{tally:?}");
    }
}
