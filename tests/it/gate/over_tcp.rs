//! The layer over a real loopback connection with a real HTTP client.

use crate::common::*;
use crate::gate::support::*;
use axum::routing::get as get_route;
use axum::Router;
use http::Method;
use keygate::{Environment, NewKey};

// ---------------------------------------------------------------- real loopback TCP

async fn serve_whoami(h: &Harness) -> std::net::SocketAddr {
    serve(
        Router::new()
            .route("/v1/whoami", get_route(whoami))
            .layer(h.gate.layer()),
    )
    .await
}

#[tokio::test]
async fn over_tcp_valid_key_reaches_the_handler_with_its_identity() {
    let h = Harness::new();
    let (id, key) = h
        .key_with(ACCOUNT, NewKey::named("tcp").environment(Environment::Live))
        .await;
    let addr = serve_whoami(&h).await;
    let auth = bearer(&key);
    let answer = http(
        addr,
        Method::GET,
        "/v1/whoami",
        &[("authorization", &auth)],
        "",
    )
    .await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.json()["identity"]["id"], id.as_str());
    assert_eq!(answer.json()["identity"]["environment"], "live");
    assert!(!answer.body.contains(&key));

    let lower = format!("bearer   {key}");
    let answer = http(
        addr,
        Method::GET,
        "/v1/whoami",
        &[("authorization", &lower)],
        "",
    )
    .await;
    assert_eq!(answer.status, 200, "{answer:?}");
}

#[tokio::test]
async fn over_tcp_missing_header_is_401_with_bare_challenge() {
    let h = Harness::new();
    let addr = serve_whoami(&h).await;
    let answer = http(addr, Method::GET, "/v1/whoami", &[], "").await;
    assert_json_error(&answer, 401, "unauthorized");
    assert_eq!(
        answer.header("www-authenticate"),
        Some("Bearer realm=\"api\"")
    );
}

#[tokio::test]
async fn over_tcp_malformed_credentials_are_refused() {
    let h = Harness::new();
    let (_, key) = h.key(ACCOUNT, &[]).await;
    let addr = serve_whoami(&h).await;
    let auth = bearer(&key);

    let twice = [
        ("authorization", auth.as_str()),
        ("authorization", auth.as_str()),
    ];
    let answer = http(addr, Method::GET, "/v1/whoami", &twice, "").await;
    assert_json_error(&answer, 400, "invalid_request");

    let basic = [("authorization", "Basic dXNlcjpwYXNz")];
    let answer = http(addr, Method::GET, "/v1/whoami", &basic, "").await;
    assert_json_error(&answer, 400, "invalid_request");

    let bad = bearer(&typo(&key));
    let answer = http(
        addr,
        Method::GET,
        "/v1/whoami",
        &[("authorization", &bad)],
        "",
    )
    .await;
    assert_json_error(&answer, 401, "invalid_api_key");
    assert_eq!(h.store.lookups(), 0);
}

#[tokio::test]
async fn over_tcp_revoked_key_is_refused_on_the_next_request() {
    let h = Harness::new();
    let (id, key) = h.key(ACCOUNT, &[]).await;
    let addr = serve_whoami(&h).await;
    let auth = bearer(&key);
    let headers = [("authorization", auth.as_str())];
    assert_eq!(
        http(addr, Method::GET, "/v1/whoami", &headers, "")
            .await
            .status,
        200
    );
    h.manager.revoke(&account(), &id).await.unwrap();
    let answer = http(addr, Method::GET, "/v1/whoami", &headers, "").await;
    assert_json_error(&answer, 401, "revoked_api_key");
}

#[tokio::test]
async fn over_tcp_store_failure_is_503_then_recovers() {
    let h = Harness::new();
    let (_, key) = h.key(ACCOUNT, &[]).await;
    let addr = serve_whoami(&h).await;
    let auth = bearer(&key);
    let headers = [("authorization", auth.as_str())];
    h.store.set_fault(Fault::Error);
    let answer = http(addr, Method::GET, "/v1/whoami", &headers, "").await;
    assert_json_error(&answer, 503, "store_unavailable");
    h.store.set_fault(Fault::None);
    assert_eq!(
        http(addr, Method::GET, "/v1/whoami", &headers, "")
            .await
            .status,
        200
    );
}
