//! Helpers shared by the tests of this binary.

use crate::common::*;
use http::Method;
use keygate::admin::{self, RouterBuilder};
use serde_json::Value;
use std::net::SocketAddr;

/// A harness with a configured router served on loopback, and an admin key.
pub(crate) struct Served {
    pub(crate) h: Harness,
    pub(crate) addr: SocketAddr,
    pub(crate) admin: String,
}

impl Served {
    pub(crate) async fn new(configure: impl FnOnce(RouterBuilder) -> RouterBuilder) -> Self {
        let h = Harness::new();
        let (_, admin) = h.key("acct_1", &["admin"]).await;
        let addr = serve(configure(admin::builder(h.manager.clone())).build()).await;
        Self { h, addr, admin }
    }

    pub(crate) async fn call(
        &self,
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
        http(self.addr, method, path, &headers, body).await
    }

    pub(crate) async fn admin(&self, method: Method, path: &str, body: Value) -> Answer {
        let body = if body.is_null() {
            String::new()
        } else {
            body.to_string()
        };
        self.call(method, path, Some(&self.admin), &body).await
    }
}

/// A 400 `invalid_request` (default envelope) whose message starts with `field`.
pub(crate) fn assert_invalid(a: &Answer, field: &str) {
    assert_eq!(a.status, 400, "{}", a.body);
    assert_eq!(a.code(), "invalid_request");
    let message = a.json()["error"]["message"].as_str().unwrap().to_owned();
    assert!(
        message.starts_with(field),
        "should name '{field}': {message}"
    );
}
