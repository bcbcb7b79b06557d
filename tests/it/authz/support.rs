//! Helpers shared by the tests of this binary.

use crate::common::*;
use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use keygate::client_ip::PeerAddr;
use keygate::{KeygateLayer, NewKey};
use std::net::SocketAddr;

pub(crate) const ACCOUNT: &str = "acct_1";

/// `layer` over [`echo`].
pub(crate) fn service(
    layer: KeygateLayer,
) -> impl tower::Service<
    Request<Full<Bytes>>,
    Response = Response<keygate::layer::ResponseBody<Full<Bytes>>>,
    Error = std::convert::Infallible,
> + Clone {
    tower::ServiceBuilder::new().layer(layer).service_fn(echo)
}

/// `req` as if it came from a connection whose peer is `ip`.
pub(crate) fn from(mut req: Request<Full<Bytes>>, ip: &str) -> Request<Full<Bytes>> {
    let addr = SocketAddr::new(ip.parse().unwrap(), 40_000);
    req.extensions_mut().insert(PeerAddr(addr));
    req
}

pub(crate) fn with_header(
    mut req: Request<Full<Bytes>>,
    name: &'static str,
    value: &str,
) -> Request<Full<Bytes>> {
    req.headers_mut()
        .append(name, http::HeaderValue::from_str(value).unwrap());
    req
}

pub(crate) async fn scoped_key(h: &Harness, scopes: &[&str]) -> String {
    h.key(ACCOUNT, scopes).await.1
}

pub(crate) async fn key_with_ips(h: &Harness, ips: &[&str]) -> String {
    h.key_with(ACCOUNT, NewKey::named("ip key").ips(ips.iter().copied()))
        .await
        .1
}

pub(crate) fn assert_refused(answer: &Answer, status: u16, code: &str) {
    assert_eq!(answer.status, status, "{answer:?}");
    assert_eq!(answer.code(), code, "{answer:?}");
    assert_eq!(answer.header("content-type"), Some("application/json"));
}

pub(crate) fn message(answer: &Answer) -> String {
    answer.json()["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}
