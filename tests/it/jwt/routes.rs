//! A JWT and an API key on one route share one set of refusals: the route's scopes,
//! read-only scopes, IP allowlists and rate limits answer both alike, with the same
//! statuses, bodies and headers.

use std::net::SocketAddr;

use crate::common::jwt_support::*;
use crate::common::*;
use bytes::Bytes;
use http::{Method, Request};
use http_body_util::Full;
use keygate::client_ip::{IpAllowlist, PeerAddr};
use keygate::ratelimit::{RateLimitConfig, RateLimitKey};
use keygate::store::RateLimit;
use keygate::NewKey;

/// A JWT for `sub` of `org_1` with `scope`, valid for an hour.
fn jwt(sub: &str, scope: &str) -> String {
    rs256(&claims(sub, "org_1", scope, T0, T0 + 3600))
}

fn from(method: Method, token: &str, peer: &str) -> Request<Full<Bytes>> {
    let mut req = request(method, "/v1/streams", Some(token));
    let peer: SocketAddr = peer.parse().unwrap();
    req.extensions_mut().insert(PeerAddr(peer));
    req
}

/// Status, body and challenge: everything a client sees of a refusal.
fn seen(answer: &Answer) -> (u16, String, Option<String>) {
    (
        answer.status.as_u16(),
        answer.body.clone(),
        answer.header("www-authenticate").map(str::to_owned),
    )
}

#[tokio::test]
async fn route_scopes_refuse_a_jwt_as_they_refuse_a_key() {
    let h = Harness::with(|b| b.credential_verifier(verifier()));
    let (_, reader_key) = h.key("org_1", &["streams:read"]).await;
    let (_, writer_key) = h.key("org_1", &["streams:write"]).await;
    let layer = h.gate.layer().require_any(["streams:write"]);
    let mut svc = tower::Layer::layer(&layer, Echo);
    let peer = "198.51.100.1:1";

    let key_refused = send(&mut svc, from(Method::POST, &reader_key, peer)).await;
    let jwt_refused = send(
        &mut svc,
        from(Method::POST, &jwt("u1", "streams:read"), peer),
    )
    .await;
    assert_eq!(key_refused.status, 403);
    assert_eq!(key_refused.code(), "insufficient_scope");
    assert_eq!(seen(&key_refused), seen(&jwt_refused));

    let key_ok = send(&mut svc, from(Method::POST, &writer_key, peer)).await;
    let jwt_ok = send(
        &mut svc,
        from(Method::POST, &jwt("u1", "streams:write"), peer),
    )
    .await;
    assert_eq!((key_ok.status.as_u16(), jwt_ok.status.as_u16()), (200, 200));
    // `admin` grants every scope, for tokens as for keys.
    let admin = send(&mut svc, from(Method::POST, &jwt("u1", "admin"), peer)).await;
    assert_eq!(admin.status, 200);
}

#[tokio::test]
async fn a_read_only_scope_restricts_a_jwt_as_it_restricts_a_key() {
    let h = Harness::with(|b| b.credential_verifier(verifier()));
    let (_, key) = h.key("org_1", &["read-only"]).await;
    let mut svc = h.service();
    let peer = "198.51.100.1:1";
    let token = jwt("u1", "read-only");
    assert_eq!(
        send(&mut svc, from(Method::GET, &token, peer)).await.status,
        200
    );
    let key_refused = send(&mut svc, from(Method::DELETE, &key, peer)).await;
    let jwt_refused = send(&mut svc, from(Method::DELETE, &token, peer)).await;
    assert_eq!(key_refused.status, 403);
    assert_eq!(seen(&key_refused), seen(&jwt_refused));
}

#[tokio::test]
async fn ip_allowlists_refuse_a_jwt_as_they_refuse_a_key() {
    let inside = IpAllowlist::parse(["10.0.0.0/8"]).unwrap();
    let h = Harness::with(|b| {
        b.credential_verifier(verifier_builder().allowed_ips(inside).build().unwrap())
    });
    let (_, key) = h
        .key_with(
            "org_1",
            NewKey::named("office").ips(["10.0.0.0/8".to_owned()]),
        )
        .await;
    let mut svc = h.service();
    let token = jwt("u1", "");
    let key_refused = send(&mut svc, from(Method::GET, &key, "203.0.113.9:1")).await;
    let jwt_refused = send(&mut svc, from(Method::GET, &token, "203.0.113.9:1")).await;
    assert_eq!(key_refused.status, 403);
    assert_eq!(key_refused.code(), "ip_not_allowed");
    assert_eq!(seen(&key_refused), seen(&jwt_refused));
    let key_ok = send(&mut svc, from(Method::GET, &key, "10.1.2.3:1")).await;
    let jwt_ok = send(&mut svc, from(Method::GET, &token, "10.1.2.3:1")).await;
    assert_eq!((key_ok.status.as_u16(), jwt_ok.status.as_u16()), (200, 200));
}

#[tokio::test]
async fn rate_limits_refuse_a_jwt_as_they_refuse_a_key_each_in_its_own_bucket() {
    let quota = RateLimitConfig::default().default_quota(Some(RateLimit::new(1, 2)));
    let h = Harness::with(|b| b.credential_verifier(verifier()).rate_limits(quota));
    let (key_id, key) = h.key("org_1", &[]).await;
    // A subject equal to the key's id still has a bucket of its own.
    let token = jwt(key_id.as_str(), "");
    let mut svc = h.service();
    let peer = "198.51.100.1:1";
    for credential in [&key, &token] {
        for remaining in ["1", "0"] {
            let answer = send(&mut svc, from(Method::GET, credential, peer)).await;
            assert_eq!(answer.status, 200, "{}", answer.body);
            assert_eq!(answer.header("x-ratelimit-limit"), Some("2"));
            assert_eq!(answer.header("x-ratelimit-remaining"), Some(remaining));
        }
    }
    let key_limited = send(&mut svc, from(Method::GET, &key, peer)).await;
    let jwt_limited = send(&mut svc, from(Method::GET, &token, peer)).await;
    assert_eq!(key_limited.status, 429);
    assert_eq!(key_limited.code(), "rate_limited");
    assert_eq!(seen(&key_limited), seen(&jwt_limited));
    for name in ["retry-after", "x-ratelimit-remaining", "x-ratelimit-reset"] {
        assert_eq!(key_limited.header(name), jwt_limited.header(name), "{name}");
    }
    // Another subject is not limited by the first one's use.
    let other = send(&mut svc, from(Method::GET, &jwt("u2", ""), peer)).await;
    assert_eq!(other.status, 200);
}

#[tokio::test]
async fn a_verifier_quota_overrides_the_default_for_tokens() {
    let h = Harness::with(|b| {
        b.credential_verifier(
            verifier_builder()
                .rate_limit(RateLimit::new(1, 1))
                .build()
                .unwrap(),
        )
    });
    let mut svc = h.service();
    let token = jwt("u1", "");
    let first = send(&mut svc, from(Method::GET, &token, "198.51.100.1:1")).await;
    assert_eq!(first.header("x-ratelimit-limit"), Some("1"));
    let second = send(&mut svc, from(Method::GET, &token, "198.51.100.1:1")).await;
    assert_eq!(second.status, 429);
}

#[tokio::test]
async fn per_account_limits_count_an_accounts_tokens_and_keys_together() {
    let quota = RateLimitConfig::default()
        .default_quota(Some(RateLimit::new(1, 3)))
        .key(RateLimitKey::PerAccount);
    let h = Harness::with(|b| b.credential_verifier(verifier()).rate_limits(quota));
    let (_, key) = h.key("org_1", &[]).await;
    let mut svc = h.service();
    let peer = "198.51.100.1:1";
    let sequence = [&key, &jwt("u1", ""), &jwt("u2", "")];
    for credential in sequence {
        assert_eq!(
            send(&mut svc, from(Method::GET, credential, peer))
                .await
                .status,
            200
        );
    }
    for credential in sequence {
        let answer = send(&mut svc, from(Method::GET, credential, peer)).await;
        assert_eq!(answer.status, 429, "the account's bucket is shared");
    }
    // Another organisation's token has its own.
    let other = rs256(&claims("u9", "org_2", "", T0, T0 + 3600));
    assert_eq!(
        send(&mut svc, from(Method::GET, &other, peer)).await.status,
        200
    );
}
