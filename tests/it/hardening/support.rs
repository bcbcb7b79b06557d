//! Helpers shared by the tests of this binary.

use crate::common::*;
use http::Method;
use keygate::client_ip::{IpAllowlist, TrustedProxies};
use keygate::store::AccountId;
use serde_json::Value;
use std::collections::BTreeSet;
use std::net::SocketAddr;

// ---------------------------------------------------------------------------------------
// Harness: the admin router on loopback, optionally behind a trusted proxy on 127.0.0.1.

pub(crate) struct Api {
    pub(crate) h: Harness,
    pub(crate) addr: SocketAddr,
}

impl Api {
    pub(crate) async fn new(h: Harness) -> Self {
        let addr = serve(keygate::admin::router(h.manager.clone())).await;
        Self { h, addr }
    }

    /// A request from the loopback peer; `client` is sent as `X-Forwarded-For`, which a
    /// harness from [`behind_loopback_proxy`] honours.
    pub(crate) async fn call(
        &self,
        method: Method,
        path: &str,
        key: &str,
        body: Option<Value>,
        client: Option<&str>,
    ) -> Answer {
        let auth = bearer(key);
        let mut headers = vec![("authorization", auth.as_str())];
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        if !body.is_empty() {
            headers.push(("content-type", "application/json"));
        }
        if let Some(ip) = client {
            headers.push(("x-forwarded-for", ip));
        }
        http(self.addr, method, path, &headers, &body).await
    }

    pub(crate) async fn get(&self, path: &str, key: &str) -> Answer {
        self.call(Method::GET, path, key, None, None).await
    }

    pub(crate) async fn post(&self, path: &str, key: &str, body: Value) -> Answer {
        self.call(Method::POST, path, key, Some(body), None).await
    }

    pub(crate) async fn patch(&self, path: &str, key: &str, body: Value) -> Answer {
        self.call(Method::PATCH, path, key, Some(body), None).await
    }

    pub(crate) async fn delete(&self, path: &str, key: &str) -> Answer {
        self.call(Method::DELETE, path, key, None, None).await
    }

    pub(crate) fn listed_ids(a: &Answer) -> BTreeSet<String> {
        assert_eq!(a.status, 200, "{}", a.body);
        a.json()["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["id"].as_str().unwrap().to_owned())
            .collect()
    }
}

/// Behind a proxy on 127.0.0.1 that appends the client to `X-Forwarded-For`.
pub(crate) fn behind_loopback_proxy() -> Harness {
    let proxy = IpAllowlist::parse(["127.0.0.1"]).unwrap();
    Harness::with(|b| b.client_ip(TrustedProxies::new(proxy)))
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

/// A 400 or 403 whose message starts with `field: `.
pub(crate) fn assert_error_on(a: &Answer, status: u16, code: &str, field: &str) {
    assert_error(a, status, code);
    let message = a.json()["error"]["message"].as_str().unwrap().to_owned();
    assert!(
        message.starts_with(&format!("{field}: ")),
        "message should start with '{field}: ': {message}"
    );
}

pub(crate) fn acct(s: &str) -> AccountId {
    AccountId::from(s)
}
