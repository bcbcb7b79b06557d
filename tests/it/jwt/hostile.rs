//! Hostile tokens against `JwtVerifier`: `alg: none`, algorithm confusion (HS256 with
//! the RSA public key as the secret), garbage and huge tokens are refused with 401
//! `invalid_token` (or 400 when over the size limit), never a panic, and no answer
//! repeats the token.

use crate::common::jwt_support::gate::*;
use crate::common::jwt_support::*;
use crate::common::*;
use jsonwebtoken::Algorithm;
use keygate::credential::{BearerCredential, CredentialVerifier};
use proptest::prelude::*;
use serde_json::json;

#[tokio::test]
async fn alg_none_is_refused() {
    let h = harness();
    let c = valid("admin");
    for header in [
        json!({"alg": "none", "typ": "JWT"}),
        json!({"alg": "none", "kid": "rsa-1"}),
        json!({"alg": "None", "kid": "rsa-1"}),
    ] {
        // With an empty signature (the RFC 7519 §6 form) and with a made-up one.
        let empty = forged(&header, &c, "");
        assert_refused(
            &call(&h, &empty).await,
            "The bearer token is not a valid JWT",
        );
        let padded = forged(&header, &c, "c2ln");
        let answer = call(&h, &padded).await;
        assert_eq!(answer.code(), "invalid_token", "{}", answer.body);
    }
}

#[tokio::test]
async fn hs256_signed_with_the_rsa_public_key_is_refused() {
    let h = harness();
    // The classic confusion: the public key, which attackers know, as an HMAC secret.
    let token = sign(Algorithm::HS256, RSA_PUBLIC, Some("rsa-1"), &valid("admin"));
    assert_refused(
        &call(&h, &token).await,
        "The token's signing algorithm is not accepted",
    );
    // An ES256 header on the RSA key's kid, and an RS256 one on the EC key's.
    let es_on_rsa = sign(Algorithm::ES256, EC_PRIVATE, Some("rsa-1"), &valid("admin"));
    assert_refused(
        &call(&h, &es_on_rsa).await,
        "The token's signing algorithm is not accepted",
    );
    let rs_on_ec = sign(Algorithm::RS256, RSA_PRIVATE, Some("ec-1"), &valid("admin"));
    assert_refused(
        &call(&h, &rs_on_ec).await,
        "The token's signing algorithm is not accepted",
    );
}

#[tokio::test]
async fn garbage_and_hostile_tokens_are_refused_without_a_panic() {
    let h = harness();
    let good = rs256(&valid("u"));
    let parts: Vec<&str> = good.split('.').collect();
    let big_header = forged(
        &json!({"alg": "RS256", "kid": "k".repeat(4000)}),
        &valid("u"),
        "c2ln",
    );
    let deep = forged(
        &serde_json::from_str::<serde_json::Value>(&format!(
            "{}1{}",
            "[".repeat(100),
            "]".repeat(100)
        ))
        .unwrap(),
        &valid("u"),
        "c2ln",
    );
    let garbage = [
        "a".to_owned(),
        "a.b".to_owned(),
        "a.b.c".to_owned(),
        "a.b.c.d".to_owned(),
        "..".to_owned(),
        format!("{}.{}", parts[0], parts[1]),
        format!("{}.{}.{}.{}", parts[0], parts[1], parts[2], parts[2]),
        format!("{}..{}", parts[0], parts[2]),
        format!("{}.{}.", parts[0], parts[1]),
        format!("{}.{}.{}", parts[0], "!!!!", parts[2]).replace('!', "~"),
        forged(&json!(["alg", "RS256"]), &valid("u"), "c2ln"),
        forged(&json!({"alg": 256}), &valid("u"), "c2ln"),
        forged(&json!({"alg": "RS256", "kid": 1}), &valid("u"), "c2ln"),
        forged(
            &json!({"alg": "RS256", "kid": "rsa-1", "crit": ["exp"]}),
            &valid("u"),
            "c2ln",
        ),
        forged(
            &json!({"alg": "RS256", "kid": "rsa-1"}),
            &json!("not an object"),
            parts[2],
        ),
        big_header,
        deep,
        format!("{}.{}.{}", parts[0], "A".repeat(6000), parts[2]),
        "=".repeat(10),
        "A".repeat(8 * 1024 - 7),
    ];
    for token in &garbage {
        let answer = call(&h, token).await;
        assert!(
            answer.status == 401 && answer.code() == "invalid_token"
                || answer.status == 400 && answer.code() == "invalid_request",
            "{token:.60}: {} {}",
            answer.status,
            answer.body
        );
    }
    // Over the 8 KiB limit: 400 before the verifier runs.
    let huge = format!("{}.{}.{}", parts[0], "A".repeat(9000), parts[2]);
    let answer = call(&h, &huge).await;
    assert_eq!(
        (answer.status.as_u16(), answer.code().as_str()),
        (400, "invalid_request")
    );
}

#[tokio::test]
async fn no_message_or_log_repeats_the_token() {
    let h = harness();
    let token = sign(
        Algorithm::RS256,
        RSA_OTHER_PRIVATE,
        Some("rsa-1"),
        &valid("u"),
    );
    let answer = call(&h, &token).await;
    let signature = token.split('.').nth(2).unwrap();
    assert!(!answer.body.contains(signature));
    assert!(!format!("{:?}", answer.headers).contains(signature));
    let credential = BearerCredential::new(token.clone(), t0());
    assert!(!format!("{credential:?}").contains(signature));
}

/// Runs the verifier on `token` at the harness's start: it must answer, and refuse.
fn refused_without_panic(token: &str) -> Result<(), TestCaseError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let outcome = runtime.block_on(verifier().verify(BearerCredential::new(token, t0())));
    prop_assert!(outcome.is_err(), "accepted {token:?}");
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn random_segments_are_refused(token in "[A-Za-z0-9_-]{0,120}(\\.[A-Za-z0-9_=-]{0,300}){0,4}") {
        refused_without_panic(&token)?;
    }

    #[test]
    fn any_header_text_with_a_real_payload_is_refused(header in any::<String>(), sig in "[A-Za-z0-9_-]{0,400}") {
        use base64::Engine as _;
        let url = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let good = rs256(&valid("u"));
        let payload = good.split('.').nth(1).unwrap();
        refused_without_panic(&format!("{}.{payload}.{sig}", url.encode(header)))?;
    }

    #[test]
    fn trusted_headers_with_forged_payloads_are_refused(
        header in prop::sample::select(vec![
            json!({"alg": "RS256", "kid": "rsa-1"}),
            json!({"alg": "ES256", "kid": "ec-1"}),
            json!({"alg": "EdDSA", "kid": "ed-1"}),
            json!({"alg": "HS256", "kid": "rsa-1"}),
            json!({"alg": "none"}),
        ]),
        payload in any::<Vec<u8>>(),
        signature in any::<Vec<u8>>(),
    ) {
        use base64::Engine as _;
        let url = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let token = format!(
            "{}.{}.{}",
            url.encode(header.to_string()),
            url.encode(payload),
            url.encode(signature)
        );
        refused_without_panic(&token)?;
    }
}
