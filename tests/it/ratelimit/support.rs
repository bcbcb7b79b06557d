//! Helpers shared by the tests of this binary.

use crate::common::*;
use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::Full;
use keygate::client_ip::PeerAddr;
use keygate::ratelimit::RateLimitConfig;
use keygate::store::RateLimit;
use std::net::SocketAddr;

/// A harness whose deployment default quota is `quota`, per key.
pub(crate) fn with_default(quota: RateLimit) -> Harness {
    Harness::with(|b| b.rate_limits(RateLimitConfig::default().default_quota(Some(quota))))
}

/// The three legacy headers as numbers: (limit, remaining, reset).
pub(crate) fn legacy(a: &Answer) -> (u64, u64, u64) {
    let num = |name: &str| -> u64 {
        a.header(name)
            .unwrap_or_else(|| panic!("{name} missing on {}: {:?}", a.status, a.headers))
            .parse()
            .unwrap()
    };
    (
        num("x-ratelimit-limit"),
        num("x-ratelimit-remaining"),
        num("x-ratelimit-reset"),
    )
}

pub(crate) fn assert_rate_limited(a: &Answer, retry_after: &str) {
    assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS, "{}", a.body);
    assert_eq!(a.code(), "rate_limited");
    assert!(a.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("retry"));
    assert_eq!(a.header("content-type"), Some("application/json"));
    assert_eq!(a.header("retry-after"), Some(retry_after));
    assert!(
        a.header("www-authenticate").is_none(),
        "a 429 is not an authentication challenge"
    );
}

pub(crate) fn from_ip(mut req: Request<Full<Bytes>>, ip: &str) -> Request<Full<Bytes>> {
    let addr: SocketAddr = format!("{ip}:40000").parse().unwrap();
    req.extensions_mut().insert(PeerAddr(addr));
    req
}
