//! The management router's envelope (`keygate::admin::Envelope`): every answer, the
//! keygate layer's refusals included, goes through it; the building blocks let a custom
//! handler answer the same way; and a layer's own renderer
//! (`KeygateLayer::renderer`) leaves the core's alone.

use crate::common::*;

use std::net::SocketAddr;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::routing::{get, post};
use axum::Router;
use http::{Method, Response, StatusCode};
use keygate::admin::{self, AdminError, Envelope, JsonEnvelope, KeyFields, Pagination, Reply};
use keygate::refusal::Refusal;
use keygate::{Identity, KeyManager};
use serde_json::{json, Value};

/// An envelope unlike the default: `{"ok":…,"data":…,"next":…,"problem":…}`, and a
/// header, so a test can tell it rendered the answer.
fn envelope(reply: Reply<'_>) -> Response<Bytes> {
    let (status, body) = match reply {
        Reply::Key { status, key } => (status, json!({ "ok": true, "data": key })),
        Reply::Page { keys, next, .. } => {
            let next = next.map(|n| n.url);
            (
                StatusCode::OK,
                json!({ "ok": true, "data": keys, "next": next }),
            )
        }
        Reply::Error(e) => (e.status, json!({ "ok": false, "problem": e.code })),
        _ => (StatusCode::ACCEPTED, json!({ "ok": true, "removed": true })),
    };
    let mut res = admin::json_response(status, &body);
    res.headers_mut()
        .insert("x-envelope", http::HeaderValue::from_static("custom"));
    res
}

async fn served(h: &Harness) -> SocketAddr {
    let app = admin::builder(h.manager.clone())
        .envelope(envelope)
        .max_body_bytes(256)
        .build();
    serve(app).await
}

async fn call(
    addr: SocketAddr,
    method: Method,
    path: &str,
    key: Option<&str>,
    body: &str,
) -> Answer {
    let auth = key.map(bearer);
    let mut headers = vec![("content-type", "application/json")];
    if let Some(auth) = &auth {
        headers.push(("authorization", auth.as_str()));
    }
    http(addr, method, path, &headers, body).await
}

/// A refusal rendered by [`envelope`].
fn assert_problem(a: &Answer, status: u16, code: &str) {
    assert_eq!(a.status, status, "{}", a.body);
    assert_eq!(a.header("x-envelope"), Some("custom"), "{}", a.body);
    assert_eq!(a.json(), json!({ "ok": false, "problem": code }));
}

#[tokio::test]
async fn successes_go_through_the_envelope() {
    let h = Harness::new();
    let (_, admin) = h.key("acct_1", &["admin"]).await;
    let addr = served(&h).await;
    // The new key is created after the admin key, so it is listed after it.
    h.time.advance(std::time::Duration::from_millis(1));
    let a = call(
        addr,
        Method::POST,
        "/v1/api-keys",
        Some(&admin),
        r#"{"name":"k"}"#,
    )
    .await;
    assert_eq!(a.status, 201);
    assert_eq!(a.header("x-envelope"), Some("custom"));
    let body = a.json();
    assert_eq!(body["ok"], true);
    let key = body["data"]["key"].as_str().unwrap();
    assert!(h.gate.verify_key(key).await.is_ok());
    let id = body["data"]["id"].as_str().unwrap().to_owned();

    let a = call(addr, Method::GET, "/v1/api-keys?limit=1", Some(&admin), "").await;
    let body = a.json();
    assert_eq!(body["data"].as_array().unwrap().len(), 1);
    let next = body["next"].as_str().unwrap().to_owned();
    assert!(next.starts_with("/v1/api-keys?limit=1&cursor="), "{next}");
    let a = call(addr, Method::GET, &next, Some(&admin), "").await;
    let body = a.json();
    assert_eq!(body["data"][0]["id"], id.as_str());
    assert_eq!(body["next"], Value::Null);

    let path = format!("/v1/api-keys/{id}");
    let a = call(addr, Method::DELETE, &path, Some(&admin), "").await;
    assert_eq!(a.status, 202);
    assert_eq!(a.json(), json!({ "ok": true, "removed": true }));
}

#[tokio::test]
async fn every_refusal_goes_through_the_envelope() {
    let h = Harness::new();
    let (_, admin) = h.key("acct_1", &["admin"]).await;
    let (_, plain) = h.key("acct_1", &["charges:read"]).await;
    let addr = served(&h).await;

    // The layer's: no key, a bad key, a missing scope; its headers are still added.
    let a = call(addr, Method::GET, "/v1/api-keys", None, "").await;
    assert_problem(&a, 401, "unauthorized");
    assert_eq!(a.header("www-authenticate"), Some("Bearer realm=\"api\""));
    let a = call(addr, Method::GET, "/v1/api-keys", Some("sk_live_junk"), "").await;
    assert_problem(&a, 401, "invalid_api_key");
    let a = call(addr, Method::GET, "/v1/api-keys", Some(&plain), "").await;
    assert_problem(&a, 403, "insufficient_scope");
    assert!(a
        .header("www-authenticate")
        .unwrap()
        .contains("insufficient_scope"));

    // The handlers': bad input, a missing key, a huge body, a wrong method.
    let post = |body: &'static str| call(addr, Method::POST, "/v1/api-keys", Some(&admin), body);
    assert_problem(&post("{").await, 400, "invalid_request");
    assert_problem(
        &post(r#"{"name":"k","colour":"red"}"#).await,
        400,
        "invalid_request",
    );
    assert_problem(&post("[1,2]").await, 400, "invalid_request");
    let huge = format!(r#"{{"name":"{}"}}"#, "x".repeat(300));
    let a = call(addr, Method::POST, "/v1/api-keys", Some(&admin), &huge).await;
    assert_problem(&a, 413, "body_too_large");
    let a = call(
        addr,
        Method::GET,
        "/v1/api-keys?limit=1000",
        Some(&admin),
        "",
    )
    .await;
    assert_problem(&a, 400, "invalid_request");
    let a = call(addr, Method::GET, "/v1/api-keys/ak_nope", Some(&admin), "").await;
    assert_problem(&a, 404, "not_found");
    let a = call(addr, Method::PUT, "/v1/api-keys", Some(&admin), "{}").await;
    assert_problem(&a, 405, "method_not_allowed");
    assert_eq!(a.header("allow"), Some("GET, POST"));

    // The store failing: 503 through the envelope too.
    h.store.set_fault(Fault::Error);
    h.gate.invalidate_all();
    let a = call(addr, Method::GET, "/v1/api-keys", Some(&admin), "").await;
    assert_problem(&a, 503, "store_unavailable");
}

#[tokio::test]
async fn the_default_router_answers_a_wrong_method_with_405_json() {
    let h = Harness::new();
    let (_, admin) = h.key("acct_1", &["admin"]).await;
    let addr = serve(admin::router(h.manager.clone())).await;
    let a = call(addr, Method::PUT, "/v1/api-keys/ak_x", Some(&admin), "{}").await;
    assert_eq!(a.status, 405);
    assert_eq!(a.code(), "method_not_allowed");
    assert_eq!(a.header("allow"), Some("GET, PATCH, DELETE"));
    assert_eq!(a.header("content-type"), Some("application/json"));
}

/// A hand-written route built from the public blocks: the caller's identity, the body
/// read and parsed through a field mapping, the manager acting as the caller, the key
/// rendered, and errors rendered by the same envelope.
async fn custom_create(
    axum::extract::State(manager): axum::extract::State<KeyManager>,
    identity: Option<Identity>,
    raw: Result<Bytes, BytesRejection>,
) -> axum::response::Response {
    let fields = KeyFields::default().rename("key", "token");
    let outcome = async {
        let actor = identity.ok_or(AdminError::MissingIdentity)?;
        let raw = raw.map_err(|_| AdminError::invalid("body: could not be read"))?;
        let new = fields.parse_create(&raw, &actor)?;
        let created = manager.acting_as(&actor).create(new).await?;
        let key = fields.render(&created.view, Some(created.key.expose_secret()));
        Ok::<_, AdminError>(Reply::Key {
            status: StatusCode::CREATED,
            key,
        })
    };
    let res = match outcome.await {
        Ok(reply) => envelope.render(reply),
        Err(e) => e.render(&envelope),
    };
    res.map(axum::body::Body::from)
}

#[tokio::test]
async fn a_custom_handler_answers_like_the_router_with_the_building_blocks() {
    let h = Harness::new();
    let (_, admin) = h.key("acct_1", &["admin"]).await;
    let layered = Router::new()
        .route("/custom", post(custom_create))
        .route_layer(h.gate.layer());
    let app = layered
        .route("/no-layer", post(custom_create))
        .with_state(h.manager.clone());
    let addr = serve(app).await;
    let a = call(
        addr,
        Method::POST,
        "/custom",
        Some(&admin),
        r#"{"name":"c"}"#,
    )
    .await;
    assert_eq!(a.status, 201, "{}", a.body);
    let token = a.json()["data"]["token"].as_str().unwrap().to_owned();
    assert!(h.gate.verify_key(&token).await.is_ok());
    let a = call(
        addr,
        Method::POST,
        "/custom",
        Some(&admin),
        r#"{"name":""}"#,
    )
    .await;
    assert_problem(&a, 400, "invalid_request");
    // Without keygate's layer there is no identity: a server mistake, said so.
    let a = call(
        addr,
        Method::POST,
        "/no-layer",
        Some(&admin),
        r#"{"name":"c"}"#,
    )
    .await;
    assert_problem(&a, 500, "keygate_layer_missing");
}

#[test]
fn parse_json_names_the_field_and_the_default_envelope_keeps_its_shapes() {
    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        count: u8,
    }
    let e = admin::parse_json::<Body>(br#"{"count": 300}"#).unwrap_err();
    assert_eq!(e.code(), "invalid_request");
    assert!(e.to_string().starts_with("count: "), "{e}");
    let e = admin::parse_json::<Body>(br#"{"count": 1} trailing"#).unwrap_err();
    assert!(e.to_string().starts_with("body: "), "{e}");

    let removed = JsonEnvelope.render(Reply::Removed {
        mode: admin::DeleteMode::Revoke,
    });
    assert_eq!(removed.status(), 204);
    assert!(removed.body().is_empty());
    let paged = JsonEnvelope.render(Reply::Page {
        keys: vec![],
        page: Some(3),
        next: None,
    });
    let body: Value = serde_json::from_slice(paged.body()).unwrap();
    assert_eq!(body, json!({"data": [], "page": 3, "next_page": null}));
    let _ = Pagination::offset();
}

#[tokio::test]
async fn a_layer_with_its_own_renderer_leaves_the_core_renderer_alone() {
    let h = Harness::new();
    let own = |r: &Refusal<'_>| {
        let body = json!({ "layer": "own", "code": r.error.code() });
        admin::json_response(r.error.status(), &body)
    };
    let app = Router::new()
        .route(
            "/own",
            get(|| async { "ok" }).route_layer(h.gate.layer().renderer(own)),
        )
        .route("/core", get(|| async { "ok" }).route_layer(h.gate.layer()));
    let addr = serve(app).await;
    let a = call(addr, Method::GET, "/own", None, "").await;
    assert_eq!(a.status, 401);
    assert_eq!(a.json(), json!({ "layer": "own", "code": "unauthorized" }));
    assert_eq!(a.header("www-authenticate"), Some("Bearer realm=\"api\""));
    let a = call(addr, Method::GET, "/core", None, "").await;
    assert_eq!(a.status, 401);
    assert_eq!(a.code(), "unauthorized");
    // The core's prerendered refusal is not the layer's, and the other way round.
    let a = call(addr, Method::GET, "/own", Some("sk_live_junk"), "").await;
    assert_eq!(a.json()["layer"], "own");
    let a = call(addr, Method::GET, "/core", Some("sk_live_junk"), "").await;
    assert_eq!(a.code(), "invalid_api_key");
}
