//! The layer-level helpers of the JWT tests: a harness trusting the test keys, and
//! assertions on `invalid_token` refusals.

use super::{claims, verifier};
use crate::common::*;

pub fn harness() -> Harness {
    Harness::with(|b| b.credential_verifier(verifier()))
}

/// Claims valid for an hour from the harness's start.
pub fn valid(sub: &str) -> serde_json::Value {
    claims(sub, "org_1", "streams:read streams:write", T0, T0 + 3600)
}

pub async fn call(h: &Harness, token: &str) -> Answer {
    send(&mut h.service(), get("/v1/streams", Some(token))).await
}

/// Asserts a 401 `invalid_token` whose message is `message`.
pub fn assert_refused(answer: &Answer, message: &str) {
    assert_eq!(answer.status, 401, "{}", answer.body);
    assert_eq!(answer.code(), "invalid_token", "{}", answer.body);
    assert_eq!(answer.json()["error"]["message"], message);
    let challenge = answer.header("www-authenticate").unwrap();
    assert!(
        challenge.starts_with("Bearer realm=\"api\", error=\"invalid_token\""),
        "{challenge}"
    );
}
