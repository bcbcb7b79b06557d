//! Conformance with the Tenbyte seed (`shared/seeds/000_*.txt`): its example key
//! `sk_live_1234567890abcdef`, made by Tenbyte rather than keygate, imported and accepted
//! as a Bearer token on a Tenbyte-like route, and its "Authentication Errors" table
//! (401 `unauthorized`, 403 `forbidden`, 429 `rate_limited`) through keygate's
//! configurable refusal renderer.
//!
//! The seed's `limit`/`page` pagination is the management API's, tested with it.

use std::time::Duration;

use crate::common::*;

use axum::routing::get as get_route;
use axum::{Json, Router};
use bytes::Bytes;
use http::Response;
use keygate::key::{Alphabet, Checksum, KeyBody};
use keygate::key::{KeyFormat, KeyPrefix};
use keygate::manage::ImportedKey;
use keygate::refusal::Refusal;
use keygate::store::{AccountId, RateLimit};
use keygate::Environment;

/// The seed's example key, verbatim.
const SEED_KEY: &str = "sk_live_1234567890abcdef";

/// The seed's error table: status, error, description.
const ERRORS: [(u16, &str, &str); 3] = [
    (
        401,
        "unauthorized",
        "API key is missing, expired, or invalid.",
    ),
    (
        403,
        "forbidden",
        "The provided API key does not have access to the requested resource.",
    ),
    (
        429,
        "rate_limited",
        "Too many requests have been sent with this key. Wait before retrying.",
    ),
];

/// Tenbyte's key shape: `sk_live_` and 16 lowercase hex characters, no checksum.
fn tenbyte_format() -> KeyFormat {
    let body = KeyBody::new(Alphabet::Hex, 16..=16, Checksum::Off).unwrap();
    KeyFormat::new([KeyPrefix::new("sk_live_", Some(Environment::Live))
        .unwrap()
        .with_body(body)])
    .unwrap()
}

/// Every refusal as a row of the seed's table, chosen by its HTTP status.
fn tenbyte_renderer(r: &Refusal<'_>) -> Response<Bytes> {
    let status = r.error.status();
    let (_, error, description) = ERRORS
        .iter()
        .find(|(s, _, _)| *s == status.as_u16())
        .copied()
        .unwrap_or((status.as_u16(), r.error.code(), "The request was refused."));
    let body = serde_json::json!({ "error": error, "description": description });
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Bytes::from(body.to_string()))
        .unwrap()
}

async fn distributions() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "data": [] }))
}

/// A Tenbyte-like deployment: live keys of Tenbyte's shape, the seed's error table,
/// `GET /v1/cdn/distributions` requiring the `cdn` scope.
fn tenbyte() -> (Harness, Router) {
    let h = Harness::with(|b| {
        b.format(tenbyte_format())
            .environment(Environment::Live)
            .renderer(tenbyte_renderer)
    });
    let app = Router::new().route(
        "/v1/cdn/distributions",
        get_route(distributions).route_layer(h.gate.layer().require_any(["cdn"])),
    );
    (h, app)
}

fn account() -> AccountId {
    AccountId::from("org_1")
}

fn assert_row(answer: &Answer, status: u16) {
    let (_, error, description) = ERRORS.iter().find(|(s, _, _)| *s == status).unwrap();
    assert_eq!(answer.status, status, "{answer:?}");
    assert_eq!(answer.json()["error"], *error, "{answer:?}");
    assert_eq!(answer.json()["description"], *description);
}

#[tokio::test]
async fn the_seed_key_imported_from_tenbyte_is_accepted_by_the_seed_curl() {
    let (h, app) = tenbyte();
    h.manager
        .import(
            account(),
            ImportedKey::plaintext("seed example key", SEED_KEY).scopes(["cdn"]),
        )
        .await
        .unwrap();
    // curl -X GET https://api.tenbyte.io/v1/cdn/distributions \
    //   -H "Authorization: Bearer sk_live_1234567890abcdef"
    let addr = serve(app).await;
    let auth = format!("Bearer {SEED_KEY}");
    let answer = http(
        addr,
        http::Method::GET,
        "/v1/cdn/distributions",
        &[("authorization", auth.as_str())],
        "",
    )
    .await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.json(), serde_json::json!({ "data": [] }));
}

#[tokio::test]
async fn missing_expired_and_invalid_keys_are_401_unauthorized() {
    let (h, mut app) = tenbyte();
    let expired = "sk_live_00000000000000ff";
    h.manager
        .import(
            account(),
            ImportedKey::plaintext("expired", expired)
                .scopes(["cdn"])
                .expires_at(t0() - Duration::from_secs(1)),
        )
        .await
        .unwrap();
    // Missing.
    assert_row(
        &send(&mut app, get("/v1/cdn/distributions", None)).await,
        401,
    );
    // Expired.
    let answer = send(&mut app, get("/v1/cdn/distributions", Some(expired))).await;
    assert_row(&answer, 401);
    // Invalid: well-shaped but unknown (one lookup), and junk (none).
    let lookups = h.store.lookups();
    let unknown = "sk_live_fedcba0987654321";
    assert_row(
        &send(&mut app, get("/v1/cdn/distributions", Some(unknown))).await,
        401,
    );
    assert_eq!(h.store.lookups(), lookups + 1);
    for junk in [
        "sk_live_1234567890ABCDEF",
        "sk_live_1234567890abcde",
        "sk_test_1234567890abcdef",
        "1234567890abcdef",
    ] {
        assert_row(
            &send(&mut app, get("/v1/cdn/distributions", Some(junk))).await,
            401,
        );
    }
    assert_eq!(
        h.store.lookups(),
        lookups + 1,
        "junk never reached the store"
    );
}

#[tokio::test]
async fn a_key_without_access_is_403_forbidden() {
    let (h, mut app) = tenbyte();
    h.manager
        .import(
            account(),
            ImportedKey::plaintext("video only", SEED_KEY).scopes(["vidinfra"]),
        )
        .await
        .unwrap();
    let answer = send(&mut app, get("/v1/cdn/distributions", Some(SEED_KEY))).await;
    assert_row(&answer, 403);
}

#[tokio::test]
async fn too_many_requests_with_one_key_are_429_rate_limited() {
    let (h, mut app) = tenbyte();
    h.manager
        .import(
            account(),
            ImportedKey::plaintext("limited", SEED_KEY)
                .scopes(["cdn"])
                .rate_limit(RateLimit::new(1, 2)),
        )
        .await
        .unwrap();
    for _ in 0..2 {
        let answer = send(&mut app, get("/v1/cdn/distributions", Some(SEED_KEY))).await;
        assert_eq!(answer.status, 200, "{answer:?}");
    }
    let answer = send(&mut app, get("/v1/cdn/distributions", Some(SEED_KEY))).await;
    assert_row(&answer, 429);
    assert!(answer.header("retry-after").is_some());
    // "Wait before retrying": a second later the bucket has a token again.
    h.time.advance(Duration::from_secs(1));
    let answer = send(&mut app, get("/v1/cdn/distributions", Some(SEED_KEY))).await;
    assert_eq!(answer.status, 200, "{answer:?}");
}

#[test]
fn the_seed_key_is_tenbytes_shape_and_too_short_for_keygate_to_issue() {
    let format = tenbyte_format();
    assert!(format.parse(SEED_KEY).is_ok());
    // 16 hex characters are 64 bits: import-only.
    assert!(format.generate(&format.prefixes()[0]).is_err());
}
