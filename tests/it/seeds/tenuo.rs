//! Conformance with the Tenuo Cloud seed (`shared/seeds/001_*.txt`): its key format
//! (`tc_` + 43 characters), its scope-requirement table, for keys holding each of its
//! three scopes, and its three error bodies exactly as the seed writes them.
//!
//! The table is built twice: once as a [`ScopePolicy`] over the whole router, and once
//! with one axum `route_layer` per route.

use crate::common::*;

use axum::http::StatusCode;
use axum::routing::{get as get_route, post as post_route};
use axum::{Json, Router};
use http::Method;
use keygate::{Keygate, ScopePolicy, ScopeRequirement};

// The seed's error bodies, verbatim.

const SEED_INVALID_API_KEY: &str = r#"{
"error": {
"code": "invalid_api_key",
"message": "The provided API key is invalid"
}
}"#;

const SEED_UNAUTHORIZED: &str = r#"{
"error": {
"code": "unauthorized",
"message": "Authorization header is required"
}
}"#;

const SEED_INSUFFICIENT_SCOPE: &str = r#"{
"error": {
"code": "insufficient_scope",
"message": "This endpoint requires 'admin' scope"
}
}"#;

/// One row of the seed's "Scope Requirements by Endpoint" table.
struct Row {
    method: Method,
    path: &'static str,
    /// The "Required Scope" column: any one of these.
    required: &'static [&'static str],
}

/// The seed's table, row for row.
fn seed_table() -> Vec<Row> {
    vec![
        Row {
            method: Method::GET,
            path: "/v1/keys",
            required: &["admin", "read-only"],
        },
        Row {
            method: Method::POST,
            path: "/v1/keys",
            required: &["admin"],
        },
        Row {
            method: Method::GET,
            path: "/v1/revocations/srl",
            required: &["authorizer", "admin"],
        },
        Row {
            method: Method::POST,
            path: "/v1/revocations",
            required: &["admin"],
        },
        Row {
            method: Method::GET,
            path: "/v1/api-keys",
            required: &["admin", "read-only"],
        },
        Row {
            method: Method::POST,
            path: "/v1/api-keys",
            required: &["admin"],
        },
    ]
}

/// The seed's three scopes.
const SCOPES: [&str; 3] = ["admin", "authorizer", "read-only"];

async fn list() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "data": [] }))
}

async fn create() -> (StatusCode, Json<serde_json::Value>) {
    (
        StatusCode::CREATED,
        Json(serde_json::json!({ "created": true })),
    )
}

/// The handlers for every row, unprotected.
fn handlers() -> Router {
    Router::new()
        .route("/v1/keys", get_route(list).post(create))
        .route("/v1/revocations/srl", get_route(list))
        .route("/v1/revocations", post_route(create))
        .route("/v1/api-keys", get_route(list).post(create))
}

/// The table as one [`ScopePolicy`] on the whole router.
fn with_policy(gate: &Keygate) -> Router {
    let policy = seed_table()
        .into_iter()
        .fold(ScopePolicy::new(), |policy, row| {
            policy.route(row.method, row.path, ScopeRequirement::any_of(row.required))
        });
    handlers().layer(gate.layer().policy(policy))
}

/// The table as one axum `route_layer` per route.
fn with_route_layers(gate: &Keygate) -> Router {
    let admin_or_read_only = || gate.layer().require_any(["admin", "read-only"]);
    let admin = || gate.layer().require(ScopeRequirement::scope("admin"));
    Router::new()
        .route(
            "/v1/keys",
            get_route(list).route_layer(admin_or_read_only()),
        )
        .route("/v1/keys", post_route(create).route_layer(admin()))
        .route(
            "/v1/revocations/srl",
            get_route(list).route_layer(gate.layer().require_any(["authorizer", "admin"])),
        )
        .route("/v1/revocations", post_route(create).route_layer(admin()))
        .route(
            "/v1/api-keys",
            get_route(list).route_layer(admin_or_read_only()),
        )
        .route("/v1/api-keys", post_route(create).route_layer(admin()))
}

/// The body keygate must send when `row` refuses a key: the seed's sentence, naming the
/// scopes in the seed's order.
fn expected_refusal(row: &Row) -> serde_json::Value {
    if row.required == ["admin"] {
        return serde_json::from_str(SEED_INSUFFICIENT_SCOPE).unwrap();
    }
    let names: Vec<String> = row.required.iter().map(|s| format!("'{s}'")).collect();
    serde_json::json!({
        "error": {
            "code": "insufficient_scope",
            "message": format!("This endpoint requires {} scope", names.join(" or ")),
        }
    })
}

/// Sends every row of the table with a key holding `scope` and checks each answer.
async fn check_table(build: fn(&Keygate) -> Router, scope: &str) {
    let h = Harness::new();
    let (_, key) = h.key("tenant_1", &[scope]).await;
    assert!(key.starts_with("tc_"), "{key}");
    let mut app = build(&h.gate);
    for row in seed_table() {
        let answer = send(&mut app, request(row.method.clone(), row.path, Some(&key))).await;
        let what = format!("{scope} key, {} {}", row.method, row.path);
        if row.required.contains(&scope) {
            let expected = if row.method == Method::POST { 201 } else { 200 };
            assert_eq!(answer.status, expected, "{what}: {answer:?}");
        } else {
            assert_eq!(answer.status, 403, "{what}: {answer:?}");
            assert_eq!(
                answer.header("content-type"),
                Some("application/json"),
                "{what}"
            );
            let expected = expected_refusal(&row);
            assert_eq!(answer.json(), expected, "{what}");
            assert_eq!(answer.body, expected.to_string(), "{what}");
        }
    }
}

#[tokio::test]
async fn policy_table_admin_key_passes_every_row() {
    check_table(with_policy, "admin").await;
}

#[tokio::test]
async fn policy_table_authorizer_key_reads_only_the_srl() {
    check_table(with_policy, "authorizer").await;
}

#[tokio::test]
async fn policy_table_read_only_key_reads_keys_and_is_refused_the_rest() {
    check_table(with_policy, "read-only").await;
}

#[tokio::test]
async fn route_layers_admin_key_passes_every_row() {
    check_table(with_route_layers, "admin").await;
}

#[tokio::test]
async fn route_layers_authorizer_key_reads_only_the_srl() {
    check_table(with_route_layers, "authorizer").await;
}

#[tokio::test]
async fn route_layers_read_only_key_reads_keys_and_is_refused_the_rest() {
    check_table(with_route_layers, "read-only").await;
}

#[test]
fn every_row_is_exercised_with_each_scope() {
    let table = seed_table();
    assert_eq!(table.len(), 6);
    for scope in SCOPES {
        assert!(
            table.iter().any(|r| r.required.contains(&scope)),
            "{scope} is granted by no row"
        );
    }
}

// ---------------------------------------------------------------- the seed's error bodies

fn assert_seed_body(answer: &Answer, status: u16, seed: &str) {
    let expected: serde_json::Value = serde_json::from_str(seed).unwrap();
    assert_eq!(answer.status, status, "{answer:?}");
    assert_eq!(answer.header("content-type"), Some("application/json"));
    assert_eq!(answer.json(), expected);
    assert_eq!(answer.body, expected.to_string());
}

#[tokio::test]
async fn invalid_api_key_body_matches_the_seed() {
    let h = Harness::new();
    let (_, key) = h.key("tenant_1", &["admin"]).await;
    let mut app = with_policy(&h.gate);
    let forged = format!(
        "tc_{}",
        "x".repeat(keygate::key::SECRET_LEN + keygate::key::CHECKSUM_LEN)
    );
    let mut typo = key.clone().into_bytes();
    typo[10] = if typo[10] == b'a' { b'b' } else { b'a' };
    let typo = String::from_utf8(typo).unwrap();
    let format = keygate::key::KeyFormat::default();
    let unknown = format.generate(format.prefix("tc_").unwrap()).unwrap();
    for bad in [forged.as_str(), typo.as_str(), unknown.expose_secret()] {
        let answer = send(&mut app, get("/v1/keys", Some(bad))).await;
        assert_seed_body(&answer, 401, SEED_INVALID_API_KEY);
    }
}

#[tokio::test]
async fn missing_authorization_body_matches_the_seed() {
    let h = Harness::new();
    for mut app in [with_policy(&h.gate), with_route_layers(&h.gate)] {
        let answer = send(&mut app, get("/v1/keys", None)).await;
        assert_seed_body(&answer, 401, SEED_UNAUTHORIZED);
    }
}

#[tokio::test]
async fn insufficient_scope_body_matches_the_seed() {
    let h = Harness::new();
    let (_, key) = h.key("tenant_1", &["authorizer"]).await;
    for mut app in [with_policy(&h.gate), with_route_layers(&h.gate)] {
        let answer = send(&mut app, request(Method::POST, "/v1/keys", Some(&key))).await;
        assert_seed_body(&answer, 403, SEED_INSUFFICIENT_SCOPE);
    }
}

#[tokio::test]
async fn over_tcp_the_seed_table_holds_for_a_read_only_key() {
    let h = Harness::new();
    let (_, key) = h.key("tenant_1", &["read-only"]).await;
    let addr = serve(with_route_layers(&h.gate)).await;
    let auth = bearer(&key);
    let headers = [("authorization", auth.as_str())];

    let answer = http(addr, Method::GET, "/v1/keys", &headers, "").await;
    assert_eq!(answer.status, 200, "{answer:?}");
    let answer = http(addr, Method::POST, "/v1/revocations", &headers, "").await;
    assert_seed_body(&answer, 403, SEED_INSUFFICIENT_SCOPE);
    let answer = http(addr, Method::GET, "/v1/keys", &[], "").await;
    assert_seed_body(&answer, 401, SEED_UNAUTHORIZED);
}

/// Tenuo's documented key format: `tc_` and 43 characters (base64url, as 32 random bytes
/// encode), with no checksum.
fn tenuo_format() -> keygate::key::KeyFormat {
    use keygate::key::{Alphabet, Checksum, KeyBody};
    let body = KeyBody::new(Alphabet::Base64Url, 43..=43, Checksum::Off).unwrap();
    keygate::key::KeyFormat::new([keygate::key::KeyPrefix::new("tc_", None)
        .unwrap()
        .with_body(body)])
    .unwrap()
}

#[tokio::test]
async fn keys_of_the_documented_tc_43_character_format_are_issued_and_accepted() {
    let h = Harness::with(|b| b.format(tenuo_format()));
    let (_, key) = h.key("tenant_1", &["admin"]).await;
    assert_eq!(key.len(), "tc_".len() + 43);
    let mut app = with_policy(&h.gate);
    assert_eq!(
        send(&mut app, get("/v1/keys", Some(&key))).await.status,
        200
    );

    // The seed's own placeholder has the documented shape: it is looked up (once) and
    // refused with the seed's body.
    let placeholder = format!("tc_{}", "x".repeat(43));
    let lookups = h.store.lookups();
    let answer = send(&mut app, get("/v1/keys", Some(&placeholder))).await;
    assert_seed_body(&answer, 401, SEED_INVALID_API_KEY);
    assert_eq!(h.store.lookups(), lookups + 1);
    // Junk of any other shape is refused the same way before any lookup.
    for junk in [
        format!("tc_{}", "x".repeat(42)),
        format!("tc_{}", "x".repeat(44)),
        format!("tc_{}/", "x".repeat(42)),
        "tc_your_api_key_here".to_owned(),
    ] {
        let answer = send(&mut app, get("/v1/keys", Some(&junk))).await;
        assert_seed_body(&answer, 401, SEED_INVALID_API_KEY);
    }
    assert_eq!(
        h.store.lookups(),
        lookups + 1,
        "junk never reached the store"
    );
}

// ---------------------------------------------------------------- the seed's rate-limit headers

/// The seed's "Rate Limiting" section: 1000 req/s with a burst of 2000, and the headers
/// `X-RateLimit-Limit: 1000`, `X-RateLimit-Remaining: 999` and `X-RateLimit-Reset` as a
/// Unix timestamp (`1706123456` in the seed). keygate's default quota is the seed's;
/// the seed's header form is one setting, `ReportedLimit::PerSecond`.
#[tokio::test]
async fn rate_limit_headers_match_the_seed() {
    use keygate::ratelimit::{RateLimitConfig, ReportedLimit};

    let h = Harness::with(|b| {
        b.rate_limits(RateLimitConfig::default().reported_limit(ReportedLimit::PerSecond))
    });
    let (_, key) = h.key("tenant_1", &["admin"]).await;
    let mut app = with_policy(&h.gate);
    let answer = send(&mut app, get("/v1/keys", Some(&key))).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.header("x-ratelimit-limit"), Some("1000"));
    assert_eq!(answer.header("x-ratelimit-remaining"), Some("999"));
    // A Unix timestamp in seconds, like the seed's `1706123456`: ten digits, and the
    // moment the bucket is full again (one token back takes 1 ms: the next second).
    let reset = answer.header("x-ratelimit-reset").unwrap();
    assert_eq!(reset.len(), "1706123456".len());
    assert_eq!(reset.parse::<u64>().unwrap(), T0 + 1);
    // The next request counts down.
    let answer = send(&mut app, get("/v1/keys", Some(&key))).await;
    assert_eq!(answer.header("x-ratelimit-remaining"), Some("998"));
}
