//! `Identity::for_test`: testing your own axum handlers without a key store.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::response::IntoResponse;
use axum::{routing::post, Json, Router};
use keygate::Identity;
use serde_json::json;
use tower::ServiceExt as _;

/// A handler of the user's own, deciding on the caller's scopes.
async fn refund(identity: Identity) -> axum::response::Response {
    if !identity.has_scope("charges:write") {
        return StatusCode::FORBIDDEN.into_response();
    }
    Json(json!({ "account": identity.account_id(), "by": identity.key_id() })).into_response()
}

async fn call(identity: Option<Identity>) -> (StatusCode, String) {
    let app = Router::new().route("/refunds", post(refund));
    let mut req = Request::post("/refunds").body(Body::empty()).unwrap();
    if let Some(identity) = identity {
        req.extensions_mut().insert(identity);
    }
    let res = app.oneshot(req).await.unwrap();
    let status = res.status();
    let body = axum::body::to_bytes(res.into_body(), 4096).await.unwrap();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

#[tokio::test]
async fn a_handler_sees_the_test_identity_it_was_given() {
    let identity = Identity::for_test("ak_ci", "acct_7", ["charges:write"]);
    let (status, body) = call(Some(identity)).await;
    assert_eq!(status, StatusCode::OK);
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body, json!({ "account": "acct_7", "by": "ak_ci" }));
}

#[tokio::test]
async fn a_test_identity_holds_exactly_its_scopes() {
    let identity = Identity::for_test("ak_ci", "acct_7", ["charges:read"]);
    assert!(identity.has_scope("charges:read"));
    assert!(!identity.has_scope("charges:write"));
    assert!(!identity.is_read_only());
    assert_eq!(identity.name(), "test key");
    assert_eq!(identity.environment(), None);
    let (status, _) = call(Some(identity)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn without_an_identity_the_extractor_names_the_missing_layer() {
    let (status, body) = call(None).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(body.contains("keygate_layer_missing"), "{body}");
}

#[test]
#[should_panic(expected = "valid scope names")]
fn an_invalid_scope_name_panics_in_the_test_that_wrote_it() {
    let _ = Identity::for_test("ak_ci", "acct_7", ["not a scope"]);
}
