//! A JSON client for the seed apps served on loopback.

use std::net::SocketAddr;

use http::Method;
use serde_json::Value;

use crate::common::{bearer, http, serve, Answer};

/// A seed app served on a loopback port.
pub struct Client {
    pub addr: SocketAddr,
}

impl Client {
    pub async fn serving(app: axum::Router) -> Self {
        Self {
            addr: serve(app).await,
        }
    }

    /// `method path` with the key as a bearer (when given) and a raw JSON body.
    pub async fn call(&self, method: Method, path: &str, key: Option<&str>, body: &str) -> Answer {
        let auth = key.map(bearer);
        let mut headers = Vec::new();
        if let Some(auth) = &auth {
            headers.push(("authorization", auth.as_str()));
        }
        if !body.is_empty() {
            headers.push(("content-type", "application/json"));
        }
        http(self.addr, method, path, &headers, body).await
    }

    pub async fn get(&self, path: &str, key: &str) -> Answer {
        self.call(Method::GET, path, Some(key), "").await
    }

    pub async fn post(&self, path: &str, key: &str, body: Value) -> Answer {
        self.call(Method::POST, path, Some(key), &body.to_string())
            .await
    }

    pub async fn patch(&self, path: &str, key: &str, body: Value) -> Answer {
        self.call(Method::PATCH, path, Some(key), &body.to_string())
            .await
    }

    pub async fn delete(&self, path: &str, key: &str) -> Answer {
        self.call(Method::DELETE, path, Some(key), "").await
    }
}

/// The names of a JSON object's fields, sorted.
pub fn field_names(value: &Value) -> Vec<String> {
    let mut names: Vec<String> = value
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {value}"))
        .keys()
        .cloned()
        .collect();
    names.sort();
    names
}

/// Whether `text` is an RFC 3339 UTC time with milliseconds, as
/// `2021-01-01T12:00:00.000Z`.
pub fn is_rfc3339_millis(text: &str) -> bool {
    text.len() == 24
        && text.ends_with('Z')
        && text.as_bytes()[10] == b'T'
        && text.as_bytes()[19] == b'.'
        && humantime::parse_rfc3339(text).is_ok()
}
