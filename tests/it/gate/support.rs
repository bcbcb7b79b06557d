//! Helpers shared by the tests of this binary.

use crate::common::*;
use axum::Json;
use bytes::Bytes;
use http::header::{HeaderName, HeaderValue};
use http::{Request, Response};
use http_body_util::Full;
use keygate::key::KeyFormat;
use keygate::store::AccountId;
use keygate::{Identity, Keygate};

pub(crate) const ACCOUNT: &str = "acct_1";

pub(crate) fn account() -> AccountId {
    AccountId::from(ACCOUNT)
}

/// `key` with one character of its random part changed: the checksum no longer matches.
pub(crate) fn typo(key: &str) -> String {
    let mut bytes = key.as_bytes().to_vec();
    let i = key.len() - 12;
    bytes[i] = if bytes[i] == b'a' { b'b' } else { b'a' };
    String::from_utf8(bytes).unwrap()
}

/// A well-formed key (valid checksum) that no store holds.
pub(crate) fn unknown_key(prefix: &str) -> String {
    let format = KeyFormat::default();
    format
        .generate(format.prefix(prefix).unwrap())
        .unwrap()
        .expose_secret()
        .to_owned()
}

pub(crate) fn with_header(
    mut req: Request<Full<Bytes>>,
    name: &str,
    value: &str,
) -> Request<Full<Bytes>> {
    req.headers_mut().append(
        HeaderName::from_bytes(name.as_bytes()).unwrap(),
        HeaderValue::from_str(value).unwrap(),
    );
    req
}

pub(crate) fn with_authorization(value: &str) -> Request<Full<Bytes>> {
    with_header(get("/", None), "authorization", value)
}

/// The layer of `gate` over [`echo`].
pub(crate) fn service_for(
    gate: &Keygate,
) -> impl tower::Service<
    Request<Full<Bytes>>,
    Response = Response<keygate::layer::ResponseBody<Full<Bytes>>>,
    Error = std::convert::Infallible,
> + Clone {
    tower::ServiceBuilder::new()
        .layer(gate.layer())
        .service_fn(echo)
}

pub(crate) fn assert_json_error(answer: &Answer, status: u16, code: &str) {
    assert_eq!(answer.status, status, "{answer:?}");
    assert_eq!(answer.code(), code, "{answer:?}");
    assert_eq!(answer.header("content-type"), Some("application/json"));
}

// ---------------------------------------------------------------- axum

pub(crate) async fn whoami(identity: Identity) -> Json<serde_json::Value> {
    Json(serde_json::json!({
        "identity": identity,
        "metadata": identity.metadata(),
        "read_only": identity.is_read_only(),
    }))
}
