//! What the layer answers: the identity, the error body and custom renderers.

use crate::common::*;
use crate::gate::support::*;
use bytes::Bytes;
use http::header::HeaderValue;
use http::Response;
use keygate::refusal::Refusal;
use keygate::{Environment, Keygate, MemoryStore, NewKey};

// ---------------------------------------------------------------- identity and errors

#[tokio::test]
async fn identity_carries_id_account_name_environment_and_scopes() {
    let h = Harness::new();
    let (id, key) = h
        .key_with(
            "acct_42",
            NewKey::named("CI pipeline key")
                .environment(Environment::Test)
                .scopes(["billing:read", "admin"]),
        )
        .await;
    assert!(key.starts_with("sk_test_"));
    let answer = send(&mut h.service(), get("/", Some(&key))).await;
    assert_eq!(answer.status, 200);
    assert_eq!(
        answer.json(),
        serde_json::json!({
            "id": id.as_str(),
            "account_id": "acct_42",
            "name": "CI pipeline key",
            "environment": "test",
            "scopes": ["admin", "billing:read"],
        })
    );
}

#[tokio::test]
async fn error_body_is_exactly_error_code_and_message() {
    let h = Harness::new();
    let answer = send(&mut h.service(), get("/", Some(&unknown_key("tc_")))).await;
    assert_eq!(answer.status, 401);
    assert_eq!(answer.header("content-type"), Some("application/json"));
    assert_eq!(
        answer.json(),
        serde_json::json!({
            "error": {"code": "invalid_api_key", "message": "The provided API key is invalid"}
        })
    );
}

fn vidbeo(r: &Refusal<'_>) -> Response<Bytes> {
    let body = serde_json::json!({
        "success": false,
        "result": null,
        "errors": [{"code": r.error.code(), "message": r.error.message()}],
    });
    Response::builder()
        .status(r.error.status())
        .header("content-type", "application/json")
        .body(Bytes::from(body.to_string()))
        .unwrap()
}

#[tokio::test]
async fn custom_renderer_closure_shapes_the_body_and_keeps_the_challenge() {
    let gate = Keygate::builder(MemoryStore::new())
        .renderer(|r: &Refusal<'_>| vidbeo(r))
        .build();
    let answer = send(&mut service_for(&gate), get("/", None)).await;
    assert_eq!(answer.status, 401);
    assert_eq!(
        answer.json(),
        serde_json::json!({
            "success": false,
            "result": null,
            "errors": [{"code": "unauthorized", "message": "Authorization header is required"}],
        })
    );
    assert_eq!(
        answer.header("www-authenticate"),
        Some("Bearer realm=\"api\"")
    );

    let answer = send(&mut service_for(&gate), get("/", Some(&unknown_key("tc_")))).await;
    assert_eq!(answer.status, 401);
    assert_eq!(answer.json()["errors"][0]["code"], "invalid_api_key");
    assert!(answer
        .header("www-authenticate")
        .unwrap()
        .contains("error=\"invalid_token\""));
}

#[tokio::test]
async fn custom_renderer_keeps_its_own_challenge() {
    let gate = Keygate::builder(MemoryStore::new())
        .renderer(|r: &Refusal<'_>| {
            let mut res = vidbeo(r);
            res.headers_mut().insert(
                "www-authenticate",
                HeaderValue::from_static("Key realm=\"custom\""),
            );
            res
        })
        .build();
    let answer = send(&mut service_for(&gate), get("/", None)).await;
    assert_eq!(
        answer.header("www-authenticate"),
        Some("Key realm=\"custom\"")
    );
}

#[tokio::test]
async fn repeated_refusals_are_identical_and_custom_renderers_run_every_time() {
    let h = Harness::new();
    let mut svc = h.service();
    let first = send(&mut svc, get("/", Some("sk_test_junk"))).await;
    for _ in 0..3 {
        let again = send(&mut svc, get("/", Some("sk_test_junk"))).await;
        assert_eq!(again.status, first.status);
        assert_eq!(again.headers, first.headers);
        assert_eq!(again.body, first.body);
        assert_eq!(again.code(), "invalid_api_key");
    }

    let calls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = calls.clone();
    let h = Harness::with(move |b| {
        b.renderer(move |r: &keygate::refusal::Refusal<'_>| {
            let n = seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            http::Response::builder()
                .status(r.error.status())
                .body(bytes::Bytes::from(format!("refusal #{n}")))
                .unwrap()
        })
    });
    let mut svc = h.service();
    for i in 0..3 {
        let res = send(&mut svc, get("/", None)).await;
        assert_eq!(res.body, format!("refusal #{i}"));
    }
    assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 3);
}
