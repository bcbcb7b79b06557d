//! The management API's OpenAPI document, over real loopback TCP: it is
//! OpenAPI 3.1 with the bearer scheme and the error schema, it names exactly the
//! router's operations, and every status it documents for an operation is one the
//! running API really answers, with a body that validates against the documented schema.

mod contract;

use crate::common::*;
use contract::*;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};

use keygate::store::RateLimit;
use keygate::NewKey;
use serde_json::{json, Value};

/// The operations of `keygate::admin::router`: method and path template.
const OPERATIONS: [(&str, &str); 8] = [
    ("get", "/v1/api-keys"),
    ("post", "/v1/api-keys"),
    ("get", "/v1/api-keys/{id}"),
    ("patch", "/v1/api-keys/{id}"),
    ("delete", "/v1/api-keys/{id}"),
    ("post", "/v1/api-keys/{id}/roll"),
    ("get", "/v1/api-keys/{id}/usage"),
    ("get", "/v1/api-logs"),
];

/// The management API plus `GET /openapi.json`, served as the demo server serves them.
async fn serve_api(h: &Harness) -> SocketAddr {
    let doc = axum::Json(keygate::admin::openapi());
    let app = keygate::admin::router(h.manager.clone()).route(
        "/openapi.json",
        axum::routing::get(move || std::future::ready(doc.clone())),
    );
    serve(app).await
}

/// A valid body for each operation that takes one.
fn valid_body(method: &str, template: &str) -> &'static str {
    match (method, template) {
        ("post", "/v1/api-keys") => r#"{"name":"made by the contract test"}"#,
        ("patch", _) => r#"{"name":"renamed"}"#,
        _ => "",
    }
}

#[tokio::test]
async fn the_document_is_openapi_3_1_with_the_bearer_scheme_and_the_error_schema() {
    let h = Harness::new();
    let addr = serve_api(&h).await;
    let doc = fetch_document(addr).await;
    assert_eq!(
        doc,
        serde_json::to_value(keygate::admin::openapi()).unwrap(),
        "the served document is keygate::admin::openapi()"
    );
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1."));
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"],
        json!({"type": "http", "scheme": "bearer", "description": "An API key with the scope the operation names"})
    );
    assert_eq!(doc["security"], json!([{"bearer": []}]));
    let error = &doc["components"]["schemas"]["Error"];
    assert_eq!(error["required"], json!(["error"]));
    assert_eq!(
        error["properties"]["error"]["required"],
        json!(["code", "message"])
    );
    let codes = error["properties"]["error"]["properties"]["code"]["enum"]
        .as_array()
        .unwrap();
    // Every code the layer and the handlers produce.
    let expected = "invalid_request read_only_field unknown_granularity usage_range_reversed \
                    usage_range_too_large usage_range_beyond_retention \
                    unauthorized invalid_api_key \
                    revoked_api_key disabled_api_key expired_api_key wrong_environment \
                    invalid_token ip_not_allowed insufficient_scope widening_refused \
                    environment_required not_found \
                    api_key_limit_reached api_key_revoked body_too_large rate_limited usage_exceeded \
                    store_unavailable verifier_unavailable";
    let expected: Vec<Value> = expected.split_whitespace().map(|c| json!(c)).collect();
    assert_eq!(codes, &expected);
    // The schemas compile, and an error body and a non-error validate as they should.
    let schema = json!({"$ref": "#/components/schemas/Error"});
    let refusal = json!({"error": {"code": "not_found", "message": "No such key"}});
    assert!(schema_errors(&doc, &schema, &refusal).is_empty());
    assert!(!schema_errors(&doc, &schema, &json!({"code": "not_found"})).is_empty());
    let unknown = json!({"error": {"code": "teapot", "message": "?"}});
    assert!(!schema_errors(&doc, &schema, &unknown).is_empty());
}

#[tokio::test]
async fn the_document_names_exactly_the_operations_the_router_serves() {
    let h = Harness::new();
    let addr = serve_api(&h).await;
    let doc = fetch_document(addr).await;
    let mut documented = BTreeSet::new();
    for (template, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            documented.insert((method.clone(), template.clone()));
        }
    }
    let expected: BTreeSet<_> = OPERATIONS
        .iter()
        .map(|(m, t)| (m.to_string(), t.to_string()))
        .collect();
    assert_eq!(documented, expected);

    // Each documented operation is routed (the keygate layer answers, not a 404 or 405),
    // and every other method on those paths is not.
    for template in [
        "/v1/api-keys",
        "/v1/api-keys/{id}",
        "/v1/api-keys/{id}/roll",
        "/v1/api-keys/{id}/usage",
        "/v1/api-logs",
    ] {
        let path = concrete(template, "ak_some");
        for method in ["get", "post", "put", "patch", "delete"] {
            let a = send_as(addr, method, &path, &[], "").await;
            if expected.contains(&(method.to_owned(), template.to_owned())) {
                assert_eq!(a.status, 401, "{method} {path}: {}", a.body);
                assert_eq!(a.code(), "unauthorized");
            } else {
                assert_eq!(
                    a.status, 405,
                    "{method} {path} is served but not documented"
                );
            }
        }
    }
}

#[tokio::test]
async fn every_documented_response_is_really_answered_and_matches_its_schema() {
    // With the API log on, so that its events are checked against their schema.
    let events = std::sync::Arc::new(keygate::MemoryStore::new());
    let h = Harness::with(|b| {
        b.api_log(keygate::activity::log::ApiLogConfig::new(events).accepted_sample_rate(1.0))
    });
    let addr = serve_api(&h).await;
    let mut contract = Contract::fetch(addr).await;
    layer_refusals(&h, addr, &mut contract).await;
    handler_answers(&h, addr, &mut contract).await;
    let missing: Vec<_> = contract
        .documented()
        .difference(&contract.seen)
        .cloned()
        .collect();
    assert!(
        missing.is_empty(),
        "documented but never answered: {missing:?}"
    );
}

/// The keygate layer's refusals (400, 401, 403, 429, 503), on every operation.
async fn layer_refusals(h: &Harness, addr: SocketAddr, contract: &mut Contract) {
    let (_, admin) = h.key("acct_main", &["admin"]).await;
    let (_, reader) = h.key("acct_main", &["read-only"]).await;
    let (_, billing) = h.key("acct_main", &["billing"]).await;
    for (method, template) in OPERATIONS {
        let (target, _) = h.key("acct_main", &["read-only"]).await;
        let path = concrete(template, target.as_str());
        let body = valid_body(method, template);
        let a = send_as(addr, method, &path, &[], body).await;
        contract.check(method, template, &a);
        let a = send_as(addr, method, &path, &[&admin, &admin], body).await;
        assert_eq!(a.code(), "invalid_request");
        contract.check(method, template, &a);
        let unscoped = if method == "get" { &billing } else { &reader };
        let a = send_as(addr, method, &path, &[unscoped], body).await;
        assert_eq!(a.code(), "insufficient_scope");
        contract.check(method, template, &a);

        let limited = NewKey::named("limited")
            .scopes(["admin"])
            .rate_limit(RateLimit::new(1, 1));
        let (_, limited) = h.key_with("acct_main", limited).await;
        let first = send_as(addr, "get", "/v1/api-keys", &[&limited], "").await;
        assert_eq!(first.status, 200, "{}", first.body);
        let a = send_as(addr, method, &path, &[&limited], body).await;
        assert_eq!(a.code(), "rate_limited");
        assert!(a.header("retry-after").is_some());
        contract.check(method, template, &a);

        let (_, unseen) = h.key("acct_main", &["admin"]).await;
        h.store.set_fault(Fault::Error);
        let a = send_as(addr, method, &path, &[&unseen], body).await;
        h.store.set_fault(Fault::None);
        assert_eq!(a.code(), "store_unavailable");
        contract.check(method, template, &a);
    }
}

/// What each handler answers: successes, bad input, no widening, limits, unknown ids,
/// revoked keys.
async fn handler_answers(h: &Harness, addr: SocketAddr, contract: &mut Contract) {
    let (_, admin) = h.key("acct_main", &["admin"]).await;
    let (_, reader) = h.key("acct_main", &["read-only"]).await;
    let name = "x".repeat(keygate::admin::MAX_BODY_BYTES);
    let too_large = format!(r#"{{"name":"{name}"}}"#);
    let list = "/v1/api-keys";
    let a = send_as(addr, "get", list, &[&admin], "").await;
    contract.check("get", list, &a);
    let a = send_as(addr, "get", "/v1/api-keys?limit=0", &[&admin], "").await;
    contract.check("get", list, &a);

    let a = send_as(addr, "post", list, &[&admin], valid_body("post", list)).await;
    assert!(!a.json()["key"].as_str().unwrap().is_empty());
    contract.check("post", list, &a);
    let a = send_as(addr, "post", list, &[&admin], r#"{"name":""}"#).await;
    contract.check("post", list, &a);
    let a = send_as(addr, "post", list, &[&admin], &too_large).await;
    assert_eq!(a.code(), "body_too_large");
    contract.check("post", list, &a);
    let capped = NewKey::named("capped")
        .scopes(["admin"])
        .rate_limit(RateLimit::new(10, 10));
    let (_, capped) = h.key_with("acct_capped", capped).await;
    let wider = r#"{"name":"wider","rate_limit":{"per_second":100,"burst":100}}"#;
    let a = send_as(addr, "post", list, &[&capped], wider).await;
    assert_eq!(a.code(), "widening_refused");
    contract.check("post", list, &a);
    let (_, full) = h.key("acct_full", &["admin"]).await;
    for _ in 1..50 {
        h.key("acct_full", &[]).await;
    }
    let a = send_as(addr, "post", list, &[&full], valid_body("post", list)).await;
    assert_eq!(a.code(), "api_key_limit_reached");
    contract.check("post", list, &a);

    // A key with no quota of its own is wider than the capped admin: it may not touch it.
    let (open_id, _) = h.key("acct_capped", &[]).await;
    let one = "/v1/api-keys/{id}";
    let roll = "/v1/api-keys/{id}/roll";
    for (method, template, body) in [
        ("get", one, ""),
        ("patch", one, valid_body("patch", one)),
        ("delete", one, ""),
        ("post", roll, ""),
    ] {
        // Unknown ids, and text that cannot be an id at all (`%FF` is not UTF-8).
        for id in ["ak_nothere", "%FF%FE", "not-an-id!"] {
            let a = send_as(addr, method, &concrete(template, id), &[&admin], body).await;
            assert_eq!(a.code(), "not_found", "{method} {id}: {}", a.body);
            contract.check(method, template, &a);
        }
        if method != "get" {
            let path = concrete(template, open_id.as_str());
            let a = send_as(addr, method, &path, &[&capped], body).await;
            assert_eq!(a.code(), "widening_refused", "{method}: {}", a.body);
            contract.check(method, template, &a);
        }
    }
    let (id, _) = h.key("acct_main", &["read-only"]).await;
    let path = concrete(one, id.as_str());
    let a = send_as(addr, "get", &path, &[&reader], "").await;
    contract.check("get", one, &a);
    let a = send_as(addr, "patch", &path, &[&admin], valid_body("patch", one)).await;
    assert_eq!(a.json()["name"], "renamed");
    contract.check("patch", one, &a);
    let a = send_as(addr, "patch", &path, &[&admin], r#"{"name":"\u0000"}"#).await;
    contract.check("patch", one, &a);
    let a = send_as(addr, "patch", &path, &[&admin], &too_large).await;
    contract.check("patch", one, &a);

    let roll_path = concrete(roll, id.as_str());
    let a = send_as(addr, "post", &roll_path, &[&admin], "").await;
    contract.check("post", roll, &a);
    let a = send_as(addr, "post", &roll_path, &[&admin], "null").await;
    assert_eq!(a.status, 200, "a null body is no options: {}", a.body);
    contract.check("post", roll, &a);
    let over = r#"{"grace_seconds":2592001}"#;
    let a = send_as(addr, "post", &roll_path, &[&admin], over).await;
    contract.check("post", roll, &a);
    let a = send_as(addr, "post", &roll_path, &[&admin], &too_large).await;
    contract.check("post", roll, &a);

    // Usage: the buckets, each bad range, a key the caller does not see.
    let usage = "/v1/api-keys/{id}/usage";
    let usage_path = concrete(usage, id.as_str());
    let a = send_as(addr, "get", &usage_path, &[&reader], "").await;
    assert_eq!(a.status, 200, "{}", a.body);
    contract.check("get", usage, &a);
    for (query, code) in [
        ("granularity=week", "unknown_granularity"),
        ("from=yesterday", "invalid_request"),
    ] {
        let a = send_as(
            addr,
            "get",
            &format!("{usage_path}?{query}"),
            &[&reader],
            "",
        )
        .await;
        assert_eq!(a.code(), code, "{query}: {}", a.body);
        contract.check("get", usage, &a);
    }
    let a = send_as(addr, "get", &concrete(usage, "ak_nothere"), &[&reader], "").await;
    assert_eq!(a.code(), "not_found");
    contract.check("get", usage, &a);

    // The API log: a page, a bad filter, a key the caller does not see.
    let logs = "/v1/api-logs";
    h.gate.api_log().unwrap().flush().await;
    let a = send_as(addr, "get", logs, &[&reader], "").await;
    assert_eq!(a.status, 200, "{}", a.body);
    let events = a.json()["data"].as_array().unwrap().clone();
    assert!(
        events.iter().any(|e| e["outcome"] == "accepted"),
        "{}",
        a.body
    );
    assert!(
        events.iter().any(|e| e["outcome"] != "accepted"),
        "{}",
        a.body
    );
    contract.check("get", logs, &a);
    let a = send_as(addr, "get", "/v1/api-logs?outcome=bogus", &[&admin], "").await;
    assert_eq!(a.code(), "invalid_request");
    contract.check("get", logs, &a);
    let a = send_as(addr, "get", "/v1/api-logs?key_id=ak_nothere", &[&admin], "").await;
    assert_eq!(a.code(), "not_found");
    contract.check("get", logs, &a);

    let a = send_as(addr, "delete", &path, &[&admin], "").await;
    contract.check("delete", one, &a);
    for (method, template, body) in [("patch", one, valid_body("patch", one)), ("post", roll, "")] {
        let path = concrete(template, id.as_str());
        let a = send_as(addr, method, &path, &[&admin], body).await;
        assert_eq!(a.code(), "api_key_revoked");
        contract.check(method, template, &a);
    }
}

#[tokio::test]
async fn revoking_the_calling_key_is_followed_by_a_documented_401() {
    let h = Harness::new();
    let addr = serve_api(&h).await;
    let mut contract = Contract::fetch(addr).await;
    let (id, admin) = h.key("acct_self", &["admin"]).await;
    let path = concrete("/v1/api-keys/{id}", id.as_str());
    let a = send_as(addr, "delete", &path, &[&admin], "").await;
    assert_eq!(a.status, 204);
    contract.check("delete", "/v1/api-keys/{id}", &a);
    for (method, template) in OPERATIONS {
        let path = concrete(template, id.as_str());
        let a = send_as(addr, method, &path, &[&admin], valid_body(method, template)).await;
        assert_eq!(a.code(), "revoked_api_key", "{method} {template}");
        assert!(a.header("www-authenticate").unwrap().starts_with("Bearer "));
        contract.check(method, template, &a);
    }
}

/// The demo server binary `cargo test` builds, started on a free port; killed on drop.
struct DemoServer {
    child: Child,
    addr: SocketAddr,
    admin_key: String,
}

impl Drop for DemoServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_demo_server() -> DemoServer {
    let exe = std::env::current_exe().unwrap();
    let path = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples/server");
    assert!(path.exists(), "{} is built by `cargo test`", path.display());
    let mut child = Command::new(path)
        .args(["--addr", "127.0.0.1:0"])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the demo server starts");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let (mut addr, mut admin_key) = (None, None);
    while admin_key.is_none() {
        let line = lines.next().expect("the address and the key").unwrap();
        if let Some(rest) = line.strip_prefix("listening on http://") {
            addr = rest.split_whitespace().next().map(|a| a.parse().unwrap());
        }
        admin_key = line.strip_prefix("admin key: ").map(str::to_owned);
    }
    DemoServer {
        child,
        addr: addr.expect("an address line"),
        admin_key: admin_key.unwrap(),
    }
}

#[tokio::test]
async fn the_demo_server_serves_the_document_without_authentication() {
    let server = start_demo_server();
    let mut contract = Contract::fetch(server.addr).await;
    // The document of this deployment (`admin::openapi_for`): a new key's prefix and
    // environment are the deployment's; everything else is the default document.
    let mut expected = serde_json::to_value(keygate::admin::openapi()).unwrap();
    let served = contract.doc["components"]["schemas"]["NewApiKey"]["properties"].clone();
    assert_eq!(
        served["environment"]["enum"],
        serde_json::json!(["test", null])
    );
    let prefixes = served["prefix"]["enum"].as_array().unwrap();
    assert!(
        prefixes.contains(&serde_json::json!("sk_test_")),
        "{prefixes:?}"
    );
    assert!(
        !prefixes.contains(&serde_json::json!("sk_live_")),
        "{prefixes:?}"
    );
    let new_key = &mut expected["components"]["schemas"]["NewApiKey"]["properties"];
    new_key["prefix"] = served["prefix"].clone();
    new_key["environment"] = served["environment"].clone();
    assert_eq!(contract.doc, expected);
    let key = server.admin_key.as_str();
    let a = send_as(server.addr, "get", "/v1/api-keys", &[key], "").await;
    assert_eq!(a.status, 200, "{}", a.body);
    contract.check("get", "/v1/api-keys", &a);
    let created = send_as(
        server.addr,
        "post",
        "/v1/api-keys",
        &[key],
        r#"{"name":"n"}"#,
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.body);
    contract.check("post", "/v1/api-keys", &created);
}
