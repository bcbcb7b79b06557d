//! `JwtVerifier` behind keygate's layer: RS256, ES256 and EdDSA tokens from trusted keys
//! are admitted; signature, time (on keygate's clock, with leeway), issuer and audience
//! are checked. Keys and hostile tokens are in `keys.rs` and `hostile.rs`.

use std::time::Duration;

use crate::common::jwt_support::gate::*;
use crate::common::jwt_support::*;
use crate::common::*;
use jsonwebtoken::Algorithm;
use keygate::credential::{BearerCredential, CredentialError, CredentialVerifier};
use serde_json::json;

#[tokio::test]
async fn rs256_es256_and_eddsa_tokens_from_trusted_keys_are_admitted() {
    let h = harness();
    let tokens = [
        rs256(&valid("user_rs")),
        sign(
            Algorithm::ES256,
            EC_PRIVATE,
            Some("ec-1"),
            &valid("user_es"),
        ),
        sign(
            Algorithm::EdDSA,
            ED_PRIVATE,
            Some("ed-1"),
            &valid("user_ed"),
        ),
    ];
    for (token, sub) in tokens.iter().zip(["user_rs", "user_es", "user_ed"]) {
        let answer = call(&h, token).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        let identity = answer.json();
        assert_eq!(identity["id"], sub);
        assert_eq!(identity["account_id"], "org_1");
        assert_eq!(identity["scopes"], json!(["streams:read", "streams:write"]));
    }
    assert_eq!(h.store.lookups(), 0, "a JWT never reaches the key store");
}

#[tokio::test]
async fn the_identity_is_external_and_carries_the_claims() {
    let h = harness();
    let token = rs256(&valid("user_1"));
    let app = axum::Router::new()
        .route(
            "/",
            axum::routing::get(|id: keygate::Identity| async move {
                assert_eq!(
                    id.credential(),
                    keygate::credential::CredentialKind::External
                );
                assert_eq!(id.metadata()["iss"], ISSUER);
                id.metadata()["org"].as_str().unwrap().to_owned()
            }),
        )
        .layer(h.gate.layer());
    let mut svc = app;
    let answer = send(&mut svc, get("/", Some(&token))).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.body, "org_1");
}

#[tokio::test]
async fn a_token_signed_by_another_key_is_refused() {
    let h = harness();
    let token = sign(
        Algorithm::RS256,
        RSA_OTHER_PRIVATE,
        Some("rsa-1"),
        &valid("mallory"),
    );
    assert_refused(
        &call(&h, &token).await,
        "The token's signature is not valid",
    );
    // The payload of a valid token under another token's signature.
    let good = rs256(&valid("user_1"));
    let other = rs256(&valid("admin"));
    let mut spliced: Vec<&str> = other.split('.').collect();
    spliced[2] = good.split('.').nth(2).unwrap();
    assert_refused(
        &call(&h, &spliced.join(".")).await,
        "The token's signature is not valid",
    );
}

#[tokio::test]
async fn expiry_is_checked_on_keygates_clock() {
    let h = harness();
    let token = rs256(&claims("user_1", "org_1", "", T0, T0 + 60));
    assert_eq!(call(&h, &token).await.status, 200);
    h.time.advance(Duration::from_secs(59));
    assert_eq!(call(&h, &token).await.status, 200);
    h.time.advance(Duration::from_secs(1));
    assert_refused(&call(&h, &token).await, "The token has expired");
}

#[tokio::test]
async fn leeway_tolerates_skew_on_exp_and_nbf() {
    let h = Harness::with(|b| {
        b.credential_verifier(
            verifier_builder()
                .leeway(Duration::from_secs(30))
                .build()
                .unwrap(),
        )
    });
    let expired_20s_ago = rs256(&claims("user_1", "org_1", "", T0 - 100, T0 - 20));
    assert_eq!(call(&h, &expired_20s_ago).await.status, 200);
    let mut early = claims("user_1", "org_1", "", T0, T0 + 600);
    early["nbf"] = json!(T0 + 20);
    assert_eq!(call(&h, &rs256(&early)).await.status, 200);
    let expired_30s_ago = rs256(&claims("user_1", "org_1", "", T0 - 100, T0 - 30));
    assert_refused(&call(&h, &expired_30s_ago).await, "The token has expired");
}

#[tokio::test]
async fn a_token_not_valid_yet_is_refused_until_its_nbf() {
    let h = harness();
    let mut c = valid("user_1");
    c["nbf"] = json!(T0 + 100);
    let token = rs256(&c);
    assert_refused(
        &call(&h, &token).await,
        "The token is not valid yet ('nbf' claim)",
    );
    h.time.advance(Duration::from_secs(100));
    assert_eq!(call(&h, &token).await.status, 200);
}

#[tokio::test]
async fn a_token_without_exp_is_refused() {
    let h = harness();
    let mut c = valid("user_1");
    c.as_object_mut().unwrap().remove("exp");
    assert_refused(
        &call(&h, &rs256(&c)).await,
        "The token has no expiry ('exp' claim)",
    );
}

#[tokio::test]
async fn wrong_or_missing_issuer_and_audience_are_refused() {
    let h = harness();
    let cases = [
        (
            "iss",
            Some(json!("https://evil.test/")),
            "The token's issuer ('iss') is not accepted",
        ),
        ("iss", None, "The token has no issuer ('iss' claim)"),
        (
            "aud",
            Some(json!("another-api")),
            "The token's audience ('aud') is not accepted",
        ),
        (
            "aud",
            Some(json!(["x", "y"])),
            "The token's audience ('aud') is not accepted",
        ),
        ("aud", None, "The token has no audience ('aud' claim)"),
    ];
    for (claim, value, message) in cases {
        let mut c = valid("user_1");
        match value {
            Some(v) => c[claim] = v,
            None => {
                c.as_object_mut().unwrap().remove(claim);
            }
        }
        assert_refused(&call(&h, &rs256(&c)).await, message);
    }
    let mut many = valid("user_1");
    many["aud"] = json!(["another-api", AUDIENCE]);
    assert_eq!(call(&h, &rs256(&many)).await.status, 200);
}

#[tokio::test]
async fn the_verifier_can_be_called_directly() {
    let jwt = verifier();
    let principal = jwt
        .verify(BearerCredential::new(rs256(&valid("u")), t0()))
        .await
        .unwrap();
    assert_eq!(principal.subject.as_str(), "u");
    assert_eq!(principal.account.as_str(), "org_1");
    let late = t0() + Duration::from_secs(3600);
    assert_eq!(
        jwt.verify(BearerCredential::new(rs256(&valid("u")), late))
            .await,
        Err(CredentialError::refused("The token has expired"))
    );
}
