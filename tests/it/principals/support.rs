//! The admin router on loopback with a JWT verifier, and requests to it.

use crate::common::jwt_support::{claims, rs256};
use crate::common::*;
use http::Method;
use keygate::admin::RouterBuilder;
use keygate::gate::Managed;
use keygate::KeygateBuilder;
use serde_json::Value;
use std::net::SocketAddr;

/// A deployment (configured by `gate`) serving the admin router (configured by
/// `router`) on loopback.
pub(crate) struct Api {
    pub(crate) h: Harness,
    pub(crate) addr: SocketAddr,
}

impl Api {
    pub(crate) async fn new(
        gate: impl FnOnce(KeygateBuilder<Managed>) -> KeygateBuilder<Managed>,
        router: impl FnOnce(RouterBuilder) -> RouterBuilder,
    ) -> Self {
        let h = Harness::with(gate);
        let addr = serve(router(keygate::admin::builder(h.manager.clone())).build()).await;
        Self { h, addr }
    }

    pub(crate) async fn call(
        &self,
        method: Method,
        path: &str,
        credential: &str,
        body: Option<Value>,
    ) -> Answer {
        let auth = bearer(credential);
        let mut headers = vec![("authorization", auth.as_str())];
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        if !body.is_empty() {
            headers.push(("content-type", "application/json"));
        }
        http(self.addr, method, path, &headers, &body).await
    }
}

/// A JWT for `sub` of `org_1` with `scope`, valid from the harness's start until
/// `T0 + lifetime`, with `extra` claims.
pub(crate) fn token(sub: &str, scope: &str, lifetime: u64, extra: Value) -> String {
    let mut c = claims(sub, "org_1", scope, T0, T0 + lifetime);
    if let (Some(c), Value::Object(extra)) = (c.as_object_mut(), extra) {
        c.extend(extra);
    }
    rs256(&c)
}

pub(crate) fn key_path(id: &str) -> String {
    format!("/v1/api-keys/{id}")
}

pub(crate) fn roll_path(id: &str) -> String {
    format!("/v1/api-keys/{id}/roll")
}

pub(crate) fn assert_error(a: &Answer, status: u16, code: &str) {
    assert_eq!(a.status, status, "{}", a.body);
    assert_eq!(a.code(), code, "{}", a.body);
}

/// The ids of a list answer.
pub(crate) fn listed(a: &Answer) -> Vec<String> {
    assert_eq!(a.status, 200, "{}", a.body);
    a.json()["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["id"].as_str().unwrap().to_owned())
        .collect()
}
