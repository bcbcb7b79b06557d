//! Policy tables mapping method and path to requirements.

use crate::authz::support::*;
use crate::common::*;
use http::Method;
use keygate::scope::Unmatched;
use keygate::{ScopePolicy, ScopeRequirement};

// ---------------------------------------------------------------- policy table

fn tenuo_policy() -> ScopePolicy {
    ScopePolicy::new()
        .route(
            Method::GET,
            "/v1/keys",
            ScopeRequirement::any_of(["admin", "read-only"]),
        )
        .route(Method::POST, "/v1/keys", ScopeRequirement::scope("admin"))
        .route(
            Method::DELETE,
            "/v1/keys/{id}",
            ScopeRequirement::scope("admin"),
        )
        .route(
            Method::GET,
            "/v1/revocations/srl",
            ScopeRequirement::any_of(["authorizer", "admin"]),
        )
        .route(
            Method::POST,
            "/v1/revocations",
            ScopeRequirement::scope("admin"),
        )
        .any_method("/internal/*", ScopeRequirement::scope("ops"))
}

#[tokio::test]
async fn policy_table_maps_method_and_path_to_requirements() {
    let h = Harness::new();
    let authorizer = scoped_key(&h, &["authorizer"]).await;
    let ops = scoped_key(&h, &["ops"]).await;
    let mut svc = service(h.gate.layer().policy(tenuo_policy()));

    let srl = send(&mut svc, get("/v1/revocations/srl", Some(&authorizer))).await;
    assert_eq!(srl.status, 200);
    let keys = send(&mut svc, get("/v1/keys", Some(&authorizer))).await;
    assert_refused(&keys, 403, "insufficient_scope");
    assert_eq!(
        message(&keys),
        "This endpoint requires 'admin' or 'read-only' scope"
    );
    let delete = send(
        &mut svc,
        request(Method::DELETE, "/v1/keys/ak_123", Some(&authorizer)),
    )
    .await;
    assert_eq!(message(&delete), "This endpoint requires 'admin' scope");
    assert!(delete
        .header("www-authenticate")
        .unwrap()
        .ends_with("scope=\"admin\""));

    // `*` covers the rest of the path, for every method.
    for method in [Method::GET, Method::POST] {
        let answer = send(
            &mut svc,
            request(method.clone(), "/internal/a/b", Some(&ops)),
        )
        .await;
        assert_eq!(answer.status, 200, "{method}");
        let answer = send(
            &mut svc,
            request(method, "/internal/a/b", Some(&authorizer)),
        )
        .await;
        assert_refused(&answer, 403, "insufficient_scope");
    }

    // Unmatched requests are allowed by default.
    let unmatched = send(&mut svc, get("/v1/health", Some(&authorizer))).await;
    assert_eq!(unmatched.status, 200);
}

#[tokio::test]
async fn policy_with_unmatched_deny_refuses_unlisted_routes() {
    let h = Harness::new();
    let admin_like = scoped_key(&h, &["authorizer"]).await;
    let admin = scoped_key(&h, &["admin"]).await;
    let mut svc = service(
        h.gate
            .layer()
            .policy(tenuo_policy().unmatched(Unmatched::Deny)),
    );
    assert_eq!(
        send(&mut svc, get("/v1/revocations/srl", Some(&admin_like)))
            .await
            .status,
        200
    );
    for (method, path) in [
        (Method::GET, "/v1/unknown"),
        (Method::PUT, "/v1/keys"),
        (Method::GET, "/v1/revocations/srl/extra"),
    ] {
        let answer = send(&mut svc, request(method.clone(), path, Some(&admin_like))).await;
        assert_refused(&answer, 403, "insufficient_scope");
        // Deny by default holds even for admin keys.
        let answer = send(&mut svc, request(method, path, Some(&admin))).await;
        assert_refused(&answer, 403, "insufficient_scope");
    }
}

#[tokio::test]
async fn policy_first_matching_row_wins() {
    let h = Harness::new();
    let a = scoped_key(&h, &["a"]).await;
    let policy = ScopePolicy::new()
        .route(Method::GET, "/things/special", ScopeRequirement::scope("a"))
        .route(Method::GET, "/things/{id}", ScopeRequirement::scope("b"));
    let mut svc = service(h.gate.layer().policy(policy));
    assert_eq!(
        send(&mut svc, get("/things/special", Some(&a)))
            .await
            .status,
        200
    );
    assert_refused(
        &send(&mut svc, get("/things/other", Some(&a))).await,
        403,
        "insufficient_scope",
    );
}
