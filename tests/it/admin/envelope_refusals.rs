//! `admin::EnvelopeRefusals`: routes mounted beside the management router answer the
//! keygate layer's refusals in the router's envelope.

use crate::common::*;

use axum::body::Bytes;
use axum::routing::get;
use axum::Router;
use http::{Method, Response, StatusCode};
use keygate::admin::{self, EnvelopeRefusals, JsonEnvelope, Reply};
use serde_json::json;

/// `{"success": false, "errors": [{"code": …}]}` for every refusal.
fn envelope(reply: Reply<'_>) -> Response<Bytes> {
    use keygate::admin::Envelope as _;
    match reply {
        Reply::Error(e) => admin::json_response(
            e.status,
            &json!({ "success": false, "errors": [{ "code": e.code }] }),
        ),
        other => JsonEnvelope.render(other),
    }
}

#[tokio::test]
async fn a_route_beside_the_router_renders_the_layers_refusals_in_its_envelope() {
    let h = Harness::new();
    let usage = get(|| async { "usage" }).route_layer(
        h.gate
            .layer()
            .require_any(["usage:read"])
            .renderer(EnvelopeRefusals::new(envelope)),
    );
    let app = Router::new()
        .route("/v1/usage", usage)
        .merge(admin::builder(h.manager.clone()).envelope(envelope).build());
    let addr = serve(app).await;
    let get = |path: &'static str, key: Option<String>| async move {
        let auth = key.as_deref().map(bearer);
        let headers: Vec<(&str, &str)> = auth
            .as_deref()
            .map(|a| vec![("authorization", a)])
            .unwrap_or_default();
        http(addr, Method::GET, path, &headers, "").await
    };

    // No key: the same shape beside the router as on it, with WWW-Authenticate.
    for path in ["/v1/usage", "/v1/api-keys"] {
        let a = get(path, None).await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{path}");
        assert_eq!(
            a.json(),
            json!({ "success": false, "errors": [{ "code": "unauthorized" }] }),
            "{path}"
        );
        assert!(a.header("www-authenticate").is_some(), "{path}");
    }
    // A key without the scope: 403 in the envelope.
    let (_, plain) = h.key("acct_env", &[]).await;
    let a = get("/v1/usage", Some(plain)).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    assert_eq!(a.json()["errors"][0]["code"], "insufficient_scope");
    // With it, the route answers.
    let (_, reader) = h.key("acct_env", &["usage:read"]).await;
    let a = get("/v1/usage", Some(reader)).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.body, "usage");
}
