//! Widening: a restricted key cannot mint a wider key or lift its own restrictions.

use crate::common::*;
use crate::hardening::support::*;
use http::Method;
use keygate::ratelimit::RateLimitConfig;
use keygate::scope::{ScopeImplications, ScopeSet};
use keygate::store::{KeyId, RateLimit};
use keygate::NewKey;
use serde_json::{json, Value};
use std::time::Duration;

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
