//! The demo server's routes: the Tenuo Cloud scope table, the management API and its
//! OpenAPI document, the webhook events, health, metrics; the key console is nested by
//! `main`.

use std::sync::Arc;

use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use keygate::invalidation::Listener;
use keygate::webhooks::{EventsRouter, Webhooks};
use keygate::{Identity, KeyManager, Keygate};
use metrics_exporter_prometheus::PrometheusHandle;
use serde_json::{json, Value};

async fn whoami(identity: Identity) -> Json<Identity> {
    Json(identity)
}

/// `GET /health`: 200 when every configured component works, 503 otherwise; the body
/// is `{"status":"ok"|"unavailable"}` with the fields of `keygate::gate::Health`.
async fn health(gate: Keygate, listener: Option<Arc<Listener>>) -> (StatusCode, Json<Value>) {
    let health = gate.health(listener.as_deref()).await;
    let (status, label) = if health.is_healthy() {
        (StatusCode::OK, "ok")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "unavailable")
    };
    let mut body = json!({ "status": label });
    if let (Value::Object(out), Ok(Value::Object(fields))) =
        (&mut body, serde_json::to_value(health))
    {
        out.extend(fields);
    }
    (status, Json(body))
}

pub(crate) fn app(
    gate: &Keygate,
    listener: Option<Arc<Listener>>,
    manager: KeyManager,
    metrics: PrometheusHandle,
    webhooks: Option<Webhooks>,
) -> Router {
    let need = |scopes: &[&str]| gate.layer().require_any(scopes.iter().copied());
    // The Tenuo Cloud scope table.
    let tenuo = Router::new()
        .route(
            "/v1/keys",
            get(|id: Identity| async move {
                Json(json!({ "object": "list", "data": [], "account_id": id.account_id() }))
            })
            .route_layer(need(&["admin", "read-only"]))
            .merge(
                axum::routing::post(|| async {
                    (
                        axum::http::StatusCode::CREATED,
                        Json(json!({ "object": "key", "created": true })),
                    )
                })
                .route_layer(need(&["admin"])),
            ),
        )
        .route(
            "/v1/revocations/srl",
            get(|| async { Json(json!({ "object": "srl", "revoked": [] })) })
                .route_layer(need(&["authorizer", "admin"])),
        )
        .route(
            "/v1/revocations",
            axum::routing::post(|| async {
                (
                    axum::http::StatusCode::CREATED,
                    Json(json!({ "object": "revocation", "created": true })),
                )
            })
            .route_layer(need(&["admin"])),
        )
        .route("/v1/whoami", get(whoami).route_layer(gate.layer()));
    // This deployment's prefixes and environment.
    let mut openapi = keygate::admin::openapi_for(&manager);
    // The failed webhook events and their re-sending, when webhooks are on.
    let events = webhooks.map(|w| {
        openapi.merge(EventsRouter::openapi());
        EventsRouter::new(w, &manager).build()
    });
    let openapi = Json(openapi);
    Router::new()
        .route(
            "/health",
            get({
                let gate = gate.clone();
                move || health(gate, listener)
            }),
        )
        // Unauthenticated, like most scrape endpoints; keep it off public interfaces.
        .route("/metrics", get(move || async move { metrics.render() }))
        // The management API's contract, unauthenticated like any published document.
        .route(
            "/openapi.json",
            get(move || std::future::ready(openapi.clone())),
        )
        .merge(tenuo)
        .merge(events.unwrap_or_default())
        .merge(keygate::admin::router(manager))
}
