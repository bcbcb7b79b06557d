//! Scope requirements: any-of, all-of, the shorthands, the RFC 6750 challenge, 403 not 401, admin.

use crate::authz::support::*;
use crate::common::*;
use keygate::ScopeRequirement;

// ---------------------------------------------------------------- route requirements

#[tokio::test]
async fn any_of_requirement_passes_with_any_one_listed_scope() {
    let h = Harness::new();
    let req = ScopeRequirement::any_of(["invoices:read", "invoices:write"]);
    let mut svc = service(h.gate.layer().require(req));
    for scopes in [
        &["invoices:read"][..],
        &["invoices:write"],
        &["x", "invoices:read"],
    ] {
        let key = scoped_key(&h, scopes).await;
        let answer = send(&mut svc, get("/", Some(&key))).await;
        assert_eq!(answer.status, 200, "{scopes:?}: {answer:?}");
    }
    for scopes in [&[][..], &["charges:read"], &["invoices"]] {
        let key = scoped_key(&h, scopes).await;
        let answer = send(&mut svc, get("/", Some(&key))).await;
        assert_refused(&answer, 403, "insufficient_scope");
        assert_eq!(
            message(&answer),
            "This endpoint requires 'invoices:read' or 'invoices:write' scope"
        );
    }
}

#[tokio::test]
async fn all_of_requirement_needs_every_listed_scope() {
    let h = Harness::new();
    let mut svc = service(
        h.gate
            .layer()
            .require(ScopeRequirement::all_of(["charges:read", "refunds:write"])),
    );
    let both = scoped_key(&h, &["refunds:write", "charges:read"]).await;
    assert_eq!(send(&mut svc, get("/", Some(&both))).await.status, 200);
    for scopes in [&["charges:read"][..], &["refunds:write"], &[]] {
        let key = scoped_key(&h, scopes).await;
        let answer = send(&mut svc, get("/", Some(&key))).await;
        assert_refused(&answer, 403, "insufficient_scope");
        assert_eq!(
            message(&answer),
            "This endpoint requires 'charges:read' and 'refunds:write' scopes"
        );
    }
}

#[tokio::test]
async fn require_any_and_require_all_shorthands_behave_like_require() {
    let h = Harness::new();
    let one = scoped_key(&h, &["a"]).await;
    let mut any = service(h.gate.layer().require_any(["a", "b"]));
    let mut all = service(h.gate.layer().require_all(["a", "b"]));
    assert_eq!(send(&mut any, get("/", Some(&one))).await.status, 200);
    assert_refused(
        &send(&mut all, get("/", Some(&one))).await,
        403,
        "insufficient_scope",
    );
}

#[tokio::test]
async fn insufficient_scope_carries_an_rfc6750_challenge_naming_the_scopes() {
    let h = Harness::new();
    let key = scoped_key(&h, &["read-only"]).await;
    let mut svc = service(h.gate.layer().require_any(["authorizer", "admin"]));
    let answer = send(&mut svc, get("/v1/revocations/srl", Some(&key))).await;
    assert_refused(&answer, 403, "insufficient_scope");
    assert_eq!(
        answer.header("www-authenticate"),
        Some(
            "Bearer realm=\"api\", error=\"insufficient_scope\", \
             error_description=\"This endpoint requires 'authorizer' or 'admin' scope\", \
             scope=\"authorizer admin\""
        )
    );
}

#[tokio::test]
async fn scope_refusal_is_a_403_not_a_401() {
    let h = Harness::new();
    let key = scoped_key(&h, &["a"]).await;
    let answer = send(
        &mut service(h.gate.layer().require_any(["b"])),
        get("/", Some(&key)),
    )
    .await;
    assert_eq!(answer.status, 403);
    assert!(!answer
        .header("www-authenticate")
        .unwrap()
        .contains("invalid_token"));
}

// ---------------------------------------------------------------- implications

#[tokio::test]
async fn admin_grants_every_scope_by_default() {
    let h = Harness::new();
    let admin = scoped_key(&h, &["admin"]).await;
    let mut svc = service(
        h.gate
            .layer()
            .require_all(["anything:at-all", "charges:write"]),
    );
    assert_eq!(send(&mut svc, get("/", Some(&admin))).await.status, 200);
}
