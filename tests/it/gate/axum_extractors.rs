//! The axum `Identity` and optional identity extractors.

use crate::common::*;
use crate::gate::support::*;
use axum::routing::get as get_route;
use axum::Router;
use keygate::{Identity, NewKey};

async fn maybe_whoami(identity: Option<Identity>) -> String {
    identity.map_or_else(|| "anonymous".to_owned(), |i| i.key_id().to_string())
}

#[tokio::test]
async fn axum_identity_extractor_receives_the_identity() {
    let h = Harness::new();
    let mut metadata = serde_json::Map::new();
    metadata.insert("team".into(), "payments".into());
    let (id, key) = h
        .key_with(
            ACCOUNT,
            NewKey::named("axum")
                .scopes(["read-only"])
                .metadata(metadata),
        )
        .await;
    let mut app = Router::new()
        .route("/v1/whoami", get_route(whoami))
        .layer(h.gate.layer());
    let answer = send(&mut app, get("/v1/whoami", Some(&key))).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    let body = answer.json();
    assert_eq!(body["identity"]["id"], id.as_str());
    assert_eq!(body["identity"]["scopes"], serde_json::json!(["read-only"]));
    assert_eq!(body["metadata"]["team"], "payments");
    assert_eq!(body["read_only"], true);

    let refused = send(&mut app, get("/v1/whoami", None)).await;
    assert_json_error(&refused, 401, "unauthorized");
}

#[tokio::test]
async fn axum_identity_extractor_without_the_layer_is_a_500_naming_the_layer() {
    let h = Harness::new();
    let (_, key) = h.key(ACCOUNT, &[]).await;
    let mut app = Router::new().route("/v1/whoami", get_route(whoami));
    let answer = send(&mut app, get("/v1/whoami", Some(&key))).await;
    assert_json_error(&answer, 500, "keygate_layer_missing");
    let message = answer.json()["error"]["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(message.contains("layer"), "{message}");
    assert_eq!(h.store.lookups(), 0);
}

#[tokio::test]
async fn axum_optional_identity_is_none_for_anonymous_callers() {
    let h = Harness::new();
    let (id, key) = h.key(ACCOUNT, &[]).await;
    let mut app = Router::new()
        .route("/", get_route(maybe_whoami))
        .layer(h.gate.layer().allow_anonymous());
    assert_eq!(send(&mut app, get("/", None)).await.body, "anonymous");
    assert_eq!(send(&mut app, get("/", Some(&key))).await.body, id.as_str());

    // Without the layer it is simply absent: no 500.
    let mut bare = Router::new().route("/", get_route(maybe_whoami));
    let answer = send(&mut bare, get("/", Some(&key))).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.body, "anonymous");
}
