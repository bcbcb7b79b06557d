//! How layers combine: nesting verifies once, rules accumulate, the environment is
//! refused before any lookup, and the deployment (not the client) picks the answer form.

use crate::common::*;
use axum::routing::get as route_get;
use axum::Router;
use keygate::{Environment, Keygate, NewKey, ScopePolicy, ScopeRequirement};

/// The README's quick start: a router-wide layer plus a route layer.
fn quick_start(h: &Harness) -> Router {
    Router::new()
        .route("/v1/whoami", route_get(|| async { "me" }))
        .route(
            "/v1/keys",
            route_get(|| async { "keys" })
                .route_layer(h.gate.layer().require_any(["admin", "read-only"])),
        )
        .layer(h.gate.layer())
}

#[tokio::test]
async fn nested_layers_of_one_gate_verify_once_and_charge_one_token() {
    let h = Harness::new();
    let (_, key) = h.key("acct_1", &["read-only"]).await;
    let mut app = quick_start(&h);
    let mut remaining = Vec::new();
    for _ in 0..3 {
        let answer = send(&mut app, get("/v1/keys", Some(&key))).await;
        assert_eq!(answer.status, 200, "{answer:?}");
        remaining.push(answer.header("x-ratelimit-remaining").unwrap().to_owned());
    }
    assert_eq!(remaining, ["1999", "1998", "1997"]);
    assert_eq!(h.store.lookups(), 1, "one lookup for three requests");
}

#[tokio::test]
async fn the_inner_layer_still_applies_its_own_scope_rule() {
    let h = Harness::new();
    let (_, key) = h.key("acct_1", &["billing"]).await;
    let mut app = quick_start(&h);
    assert_eq!(
        send(&mut app, get("/v1/whoami", Some(&key))).await.status,
        200
    );
    let refused = send(&mut app, get("/v1/keys", Some(&key))).await;
    assert_eq!(refused.status, 403);
    assert_eq!(refused.code(), "insufficient_scope");
}

#[tokio::test]
async fn a_layer_of_another_gate_verifies_again() {
    let h = Harness::new();
    let other = Harness::new();
    let (_, key) = h.key("acct_1", &[]).await;
    let mut app: Router = Router::new()
        .route("/", route_get(|| async { "ok" }))
        .layer(other.gate.layer())
        .layer(h.gate.layer());
    // The outer gate admits the key; the inner gate, over another store, does not know it.
    let answer = send(&mut app, get("/", Some(&key))).await;
    assert_eq!(answer.status, 401);
    assert_eq!(answer.code(), "invalid_api_key");
}

#[tokio::test]
async fn accumulated_requirements_are_all_enforced_without_implications() {
    let h = Harness::with(|b| b.scope_implications(keygate::scope::ScopeImplications::new()));
    let layer = h
        .gate
        .layer()
        .require_any(["admin"])
        .require_all(["billing"])
        .policy(ScopePolicy::new().route(
            http::Method::GET,
            "/",
            ScopeRequirement::scope("reports"),
        ));
    let mut svc = tower::Layer::layer(&layer, Echo);
    for (scopes, status) in [
        (vec!["admin", "billing", "reports"], 200),
        (vec!["billing", "reports"], 403),
        (vec!["admin", "reports"], 403),
        (vec!["admin", "billing"], 403),
    ] {
        let (_, key) = h.key("acct_1", &scopes).await;
        let answer = send(&mut svc, get("/", Some(&key))).await;
        assert_eq!(answer.status, status, "{scopes:?}");
    }
}

#[tokio::test]
async fn a_key_of_another_environment_is_refused_before_any_lookup() {
    // The test deployment's store does not hold the live key at all.
    let h = Harness::with(|b| b.environment(Environment::Test));
    let elsewhere = Harness::new();
    let (_, live) = elsewhere
        .key_with(
            "acct_1",
            NewKey::named("live").environment(Environment::Live),
        )
        .await;
    let mut svc = h.service();
    let answer = send(&mut svc, get("/", Some(&live))).await;
    assert_eq!(answer.status, 401);
    assert_eq!(answer.code(), "wrong_environment");
    assert_eq!(
        answer.json()["error"]["message"],
        "This is a live API key; this endpoint only accepts test keys"
    );
    assert_eq!(h.store.lookups(), 0);
    assert!(h.gate.verify_key(&live).await.is_err());
    assert_eq!(h.store.lookups(), 0);
}

#[tokio::test]
async fn a_client_cannot_turn_a_rest_refusal_into_a_grpc_200() {
    let h = Harness::new();
    let mut svc = h.service();
    let mut req = get("/", None);
    req.headers_mut()
        .insert("content-type", "application/grpc".parse().unwrap());
    let answer = send(&mut svc, req).await;
    assert_eq!(answer.status, 401);
    assert!(answer.header("grpc-status").is_none());
}

#[tokio::test]
async fn a_grpc_layer_answers_refusals_in_grpc_form() {
    let h = Harness::new();
    let mut svc = tower::Layer::layer(&h.gate.layer().grpc(), Echo);
    let answer = send(&mut svc, get("/", None)).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.header("grpc-status"), Some("16"));
}

#[test]
fn a_gate_built_read_only_has_no_manager_and_a_managed_one_shares_its_store() {
    let gate = Keygate::builder(keygate::MemoryStore::new()).build();
    assert!(gate.environment().is_none());
    let (gate, manager) = Keygate::managed(keygate::MemoryStore::new()).build();
    assert!(std::ptr::eq(manager.keygate().format(), gate.format()));
}

/// A defect the adversarial review found: with `PerAccount` limits and a burst of 5, ten keys of one tenant
/// with per-key overrides got 94 requests through in one burst. Every key of an account
/// now draws from one bucket; an override only lowers a key's own share.
#[tokio::test]
async fn per_account_quota_cannot_be_multiplied_with_per_key_overrides_over_http() {
    let h = Harness::with(|b| {
        b.rate_limits(
            keygate::ratelimit::RateLimitConfig::default()
                .default_quota(Some(keygate::store::RateLimit::new(1, 5)))
                .key(keygate::ratelimit::RateLimitKey::PerAccount),
        )
    });
    let mut keys = Vec::new();
    for i in 0..10 {
        let (_, key) = h
            .key_with(
                "acct_tenant",
                NewKey::named(format!("k{i}")).rate_limit(keygate::store::RateLimit::new(100, 100)),
            )
            .await;
        keys.push(key);
    }
    let (_, other) = h.key("acct_other", &[]).await;
    let app: Router = Router::new()
        .route("/", route_get(|| async { "ok" }))
        .layer(h.gate.layer());
    let addr = serve(app).await;
    let mut admitted = 0;
    for key in &keys {
        for _ in 0..10 {
            let a = http(
                addr,
                http::Method::GET,
                "/",
                &[("authorization", &bearer(key))],
                "",
            )
            .await;
            if a.status == 200 {
                admitted += 1;
            } else {
                assert_eq!(a.status, 429);
            }
        }
    }
    assert_eq!(admitted, 5, "one burst of 5 for the whole account");
    // Another account's bucket is its own.
    let a = http(
        addr,
        http::Method::GET,
        "/",
        &[("authorization", &bearer(&other))],
        "",
    )
    .await;
    assert_eq!(a.status, 200);

    // An override below the account's quota lowers that key's own share.
    let (_, low) = h
        .key_with(
            "acct_low",
            NewKey::named("low").rate_limit(keygate::store::RateLimit::new(1, 2)),
        )
        .await;
    let mut admitted = 0;
    for _ in 0..5 {
        let a = http(
            addr,
            http::Method::GET,
            "/",
            &[("authorization", &bearer(&low))],
            "",
        )
        .await;
        admitted += u32::from(a.status == 200);
    }
    assert_eq!(admitted, 2);
}
