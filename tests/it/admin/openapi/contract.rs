//! Checking real answers against the OpenAPI document: `$ref`s, JSON Schema validation,
//! and which documented responses a test covered.

use std::collections::BTreeSet;
use std::net::SocketAddr;

use http::Method;
use serde_json::{json, Value};

use crate::common::{bearer, http, Answer};

/// `GET /openapi.json`, unauthenticated.
pub(crate) async fn fetch_document(addr: SocketAddr) -> Value {
    let a = http(addr, Method::GET, "/openapi.json", &[], "").await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.header("content-type"), Some("application/json"));
    a.json()
}

/// Follows a local `$ref` such as `#/components/responses/NotFound`.
pub(crate) fn resolve<'a>(doc: &'a Value, node: &'a Value) -> &'a Value {
    match node.get("$ref").and_then(Value::as_str) {
        Some(r) => doc
            .pointer(r.trim_start_matches('#'))
            .unwrap_or_else(|| panic!("dangling $ref {r}")),
        None => node,
    }
}

/// Validates `instance` against `schema`, whose `$ref`s point into `doc`.
pub(crate) fn schema_errors(doc: &Value, schema: &Value, instance: &Value) -> Vec<String> {
    let mut root = doc.clone();
    let root_map = root.as_object_mut().unwrap();
    root_map.insert(
        "$schema".into(),
        json!("https://json-schema.org/draft/2020-12/schema"),
    );
    root_map.insert("allOf".into(), json!([schema]));
    let validator = jsonschema::options()
        .should_validate_formats(true)
        .build(&root)
        .unwrap_or_else(|e| panic!("the schema does not compile: {e}"));
    validator
        .iter_errors(instance)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .take(5)
        .collect()
}

/// Real answers checked against the document, and which documented responses they
/// covered.
pub(crate) struct Contract {
    pub(crate) doc: Value,
    pub(crate) seen: BTreeSet<(String, String, String)>,
}

impl Contract {
    pub(crate) async fn fetch(addr: SocketAddr) -> Self {
        Self {
            doc: fetch_document(addr).await,
            seen: BTreeSet::new(),
        }
    }

    /// Asserts that `answer` to operation (`method`, `template`) is documented: its
    /// status is listed; a response documented with a body is `application/json` and
    /// validates against the schema; one documented without a body has none.
    pub(crate) fn check(&mut self, method: &str, template: &str, answer: &Answer) {
        let status = answer.status.as_str().to_owned();
        let op = &self.doc["paths"][template][method];
        assert!(op.is_object(), "{method} {template} is not documented");
        let documented = &op["responses"][&status];
        assert!(
            documented.is_object(),
            "{method} {template} answered {status}, which is not documented: {}",
            answer.body
        );
        let response = resolve(&self.doc, documented);
        match response.get("content") {
            None => assert!(answer.body.is_empty(), "{}", answer.body),
            Some(content) => {
                assert_eq!(answer.header("content-type"), Some("application/json"));
                let schema = &content["application/json"]["schema"];
                let errors = schema_errors(&self.doc, schema, &answer.json());
                assert!(
                    errors.is_empty(),
                    "{method} {template} {status}: {errors:?} in {}",
                    answer.body
                );
            }
        }
        self.seen
            .insert((method.to_owned(), template.to_owned(), status));
    }

    /// Every documented (operation, status) pair.
    pub(crate) fn documented(&self) -> BTreeSet<(String, String, String)> {
        let mut all = BTreeSet::new();
        for (template, item) in self.doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                for status in op["responses"].as_object().unwrap().keys() {
                    all.insert((method.clone(), template.clone(), status.clone()));
                }
            }
        }
        all
    }
}

/// Sends `body` (JSON when not empty) to `path` with each of `keys` as a bearer header.
pub(crate) async fn send_as(
    addr: SocketAddr,
    method: &str,
    path: &str,
    keys: &[&str],
    body: &str,
) -> Answer {
    let auth: Vec<String> = keys.iter().map(|k| bearer(k)).collect();
    let mut headers: Vec<(&str, &str)> =
        auth.iter().map(|a| ("authorization", a.as_str())).collect();
    if !body.is_empty() {
        headers.push(("content-type", "application/json"));
    }
    let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
    http(addr, method, path, &headers, body).await
}

pub(crate) fn concrete(template: &str, id: &str) -> String {
    template.replace("{id}", id)
}
