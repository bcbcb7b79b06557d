//! Read-only keys: safe methods only, the order against route scopes, configurable
//! read-only scopes.

use crate::authz::support::*;
use crate::common::*;
use http::Method;
use keygate::scope::ScopeSet;

// ---------------------------------------------------------------- read-only keys

const SAFE: [Method; 3] = [Method::GET, Method::HEAD, Method::OPTIONS];
const UNSAFE: [Method; 4] = [Method::POST, Method::PUT, Method::PATCH, Method::DELETE];

#[tokio::test]
async fn read_only_key_may_use_only_safe_methods() {
    let h = Harness::new();
    let key = scoped_key(&h, &["read-only"]).await;
    let mut svc = service(h.gate.layer());
    for method in SAFE {
        let answer = send(&mut svc, request(method.clone(), "/v1/keys", Some(&key))).await;
        assert_eq!(answer.status, 200, "{method}: {answer:?}");
    }
    for method in UNSAFE {
        let answer = send(&mut svc, request(method.clone(), "/v1/keys", Some(&key))).await;
        assert_refused(&answer, 403, "insufficient_scope");
        assert!(
            message(&answer).contains("read-only"),
            "{method}: {answer:?}"
        );
        assert!(answer
            .header("www-authenticate")
            .unwrap()
            .contains("error=\"insufficient_scope\""));
    }
}

#[tokio::test]
async fn read_only_scope_restricts_even_a_key_that_also_holds_admin() {
    let h = Harness::new();
    let key = scoped_key(&h, &["admin", "read-only"]).await;
    let mut svc = service(h.gate.layer());
    assert_eq!(
        send(&mut svc, request(Method::GET, "/", Some(&key)))
            .await
            .status,
        200
    );
    assert_refused(
        &send(&mut svc, request(Method::DELETE, "/", Some(&key))).await,
        403,
        "insufficient_scope",
    );
}

#[tokio::test]
async fn read_only_key_hears_the_missing_route_scope_before_the_read_only_rule() {
    let h = Harness::new();
    let key = scoped_key(&h, &["read-only"]).await;
    let mut admin_route = service(h.gate.layer().require_any(["admin"]));
    let answer = send(&mut admin_route, request(Method::POST, "/", Some(&key))).await;
    assert_refused(&answer, 403, "insufficient_scope");
    assert_eq!(message(&answer), "This endpoint requires 'admin' scope");

    // Where the key holds the route's scope, the read-only rule is what refuses it.
    let mut readable = service(h.gate.layer().require_any(["admin", "read-only"]));
    assert_eq!(send(&mut readable, get("/", Some(&key))).await.status, 200);
    let answer = send(&mut readable, request(Method::POST, "/", Some(&key))).await;
    assert_refused(&answer, 403, "insufficient_scope");
    assert_eq!(
        message(&answer),
        "This API key is read-only and can only be used with GET, HEAD and OPTIONS"
    );
}

#[tokio::test]
async fn other_keys_may_use_every_method() {
    let h = Harness::new();
    let key = scoped_key(&h, &["writer"]).await;
    let mut svc = service(h.gate.layer());
    for method in SAFE.into_iter().chain(UNSAFE) {
        let answer = send(&mut svc, request(method.clone(), "/", Some(&key))).await;
        assert_eq!(answer.status, 200, "{method}: {answer:?}");
    }
}

#[tokio::test]
async fn read_only_scopes_are_configurable_vidbeo_fetch() {
    let h = Harness::with(|b| b.read_only_scopes(ScopeSet::parse(["fetch"]).unwrap()));
    let fetch = scoped_key(&h, &["fetch"]).await;
    let tenuo_style = scoped_key(&h, &["read-only"]).await;
    let mut svc = service(h.gate.layer());
    for method in SAFE {
        let answer = send(&mut svc, request(method.clone(), "/videos", Some(&fetch))).await;
        assert_eq!(answer.status, 200, "{method}");
    }
    for method in UNSAFE {
        let answer = send(&mut svc, request(method.clone(), "/videos", Some(&fetch))).await;
        assert_refused(&answer, 403, "insufficient_scope");
        // `read-only` is just a scope name on this deployment.
        let answer = send(
            &mut svc,
            request(method.clone(), "/videos", Some(&tenuo_style)),
        )
        .await;
        assert_eq!(answer.status, 200, "{method}");
    }
    assert!(h.gate.verify_key(&fetch).await.unwrap().is_read_only());
    assert!(!h
        .gate
        .verify_key(&tenuo_style)
        .await
        .unwrap()
        .is_read_only());
}
