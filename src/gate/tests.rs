//! Unit tests of the check pipeline: what `start` settles without I/O, and the order in
//! which `admit` refuses.

use std::time::{Duration, UNIX_EPOCH};

use http::{Method, Request};

use super::request::{Admission, Start};
use crate::check::access::ScopeRules;
use crate::client_ip::PeerAddr;
use crate::clock::Clock;
use crate::error::AuthError;
use crate::key::Environment;
use crate::manage::{KeyManager, NewKey};
use crate::ratelimit::RateLimitConfig;
use crate::refusal::RefusalAnswer;
use crate::scope::ScopeRequirement;
use crate::store::record::RateLimit;
use crate::store::MemoryStore;
use crate::Keygate;

fn deployment() -> (Keygate, KeyManager) {
    let (clock, _) = Clock::manual(UNIX_EPOCH + Duration::from_secs(1_700_000_000));
    Keygate::managed(MemoryStore::new())
        .clock(clock)
        .environment(Environment::Test)
        .rate_limits(RateLimitConfig::default().default_quota(Some(RateLimit::new(1, 1))))
        .build()
}

fn request(method: Method, key: &str, peer: &str) -> Request<()> {
    Request::builder()
        .method(method)
        .uri("/")
        .header("authorization", format!("Bearer {key}"))
        .extension(PeerAddr(format!("{peer}:1").parse().unwrap()))
        .body(())
        .unwrap()
}

/// Runs `start` then, for a found key, `admit`; the refusal code or "ok".
async fn outcome(gate: &Keygate, req: &mut Request<()>, scopes: &ScopeRules) -> String {
    let answer = RefusalAnswer::default();
    let (key, digest) = match gate.start(req.headers(), req.extensions(), false) {
        Start::Refused(e) => return e.code().to_owned(),
        Start::Cached(key, digest, _) => (key, digest),
        Start::Lookup(digest) => match gate.lookup(digest).await {
            Ok(Some(key)) => (key, digest),
            Ok(None) => return AuthError::InvalidKey.code().to_owned(),
            Err(e) => return e.code().to_owned(),
        },
        Start::Anonymous | Start::Verified => return "passed".to_owned(),
        Start::Credential(_) => return "handed to the credential verifier".to_owned(),
    };
    match gate.admit(key, &digest, req, scopes, &answer, gate.clock().read()) {
        Admission::Admitted(..) => "ok".to_owned(),
        Admission::AwaitLease(_) => "awaiting a lease".to_owned(),
        Admission::Refused(res) => {
            let body: serde_json::Value = serde_json::from_slice(res.body()).unwrap();
            format!(
                "{}: {}",
                body["error"]["code"].as_str().unwrap(),
                body["error"]["message"]
            )
        }
    }
}

#[tokio::test]
async fn refusals_come_in_the_documented_order_and_none_takes_a_token() {
    let (gate, manager) = deployment();
    let key = manager
        .create(
            "acct".into(),
            NewKey::named("k").scopes(["read-only"]).ips(["10.0.0.0/8"]),
        )
        .await
        .unwrap()
        .key;
    let key = key.expose_secret();
    let admin = ScopeRules {
        requirements: vec![ScopeRequirement::scope("billing")],
        ..ScopeRules::default()
    };
    let open = ScopeRules::default();
    // IP before scopes, scopes before read-only, read-only before the limiter.
    let cases = [
        (Method::GET, "192.0.2.1", &admin, "ip_not_allowed"),
        (
            Method::POST,
            "10.0.0.1",
            &admin,
            "insufficient_scope: \"This endpoint requires 'billing'",
        ),
        (
            Method::POST,
            "10.0.0.1",
            &open,
            "insufficient_scope: \"This API key is read-only",
        ),
    ];
    for (method, peer, rules, expected) in cases {
        for _ in 0..3 {
            let mut req = request(method.clone(), key, peer);
            let got = outcome(&gate, &mut req, rules).await;
            assert!(got.starts_with(expected), "{got}");
        }
    }
    // Nine refusals took nothing: the one-token bucket is still full.
    let mut req = request(Method::GET, key, "10.0.0.1");
    assert_eq!(outcome(&gate, &mut req, &open).await, "ok");
    let mut req = request(Method::GET, key, "10.0.0.1");
    assert!(outcome(&gate, &mut req, &open)
        .await
        .starts_with("rate_limited"));
}

#[tokio::test]
async fn start_settles_junk_and_foreign_environments_without_the_store() {
    let (gate, _) = deployment();
    let prefix = gate.format().prefix("sk_live_").unwrap().clone();
    let live = gate.format().generate(&prefix).unwrap();
    let req = request(Method::GET, live.expose_secret(), "10.0.0.1");
    assert!(matches!(
        gate.start(req.headers(), req.extensions(), false),
        Start::Refused(AuthError::WrongEnvironment { .. })
    ));
    let req = request(Method::GET, "sk_test_not_a_real_key", "10.0.0.1");
    assert!(matches!(
        gate.start(req.headers(), req.extensions(), false),
        Start::Refused(AuthError::InvalidKey)
    ));
    assert_eq!(gate.stats().store_lookups, 0);
}
