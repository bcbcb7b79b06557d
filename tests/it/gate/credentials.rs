//! Reading the credential: the challenge, the realm, the Bearer scheme and malformed headers.

use crate::common::*;
use crate::gate::support::*;
use http::header::HeaderValue;

// ---------------------------------------------------------------- extraction

#[tokio::test]
async fn missing_header_is_401_unauthorized_with_a_bare_bearer_challenge() {
    let h = Harness::new();
    let answer = send(&mut h.service(), get("/", None)).await;
    assert_json_error(&answer, 401, "unauthorized");
    assert_eq!(
        answer.json()["error"]["message"],
        "Authorization header is required"
    );
    assert_eq!(
        answer.header("www-authenticate"),
        Some("Bearer realm=\"api\"")
    );
    assert_eq!(h.store.lookups(), 0);
}

#[tokio::test]
async fn realm_is_configurable() {
    let h = Harness::with(|b| b.realm("payments"));
    let answer = send(&mut h.service(), get("/", None)).await;
    assert_eq!(
        answer.header("www-authenticate"),
        Some("Bearer realm=\"payments\"")
    );
}

#[tokio::test]
async fn bearer_scheme_is_case_insensitive_and_extra_whitespace_is_tolerated() {
    let h = Harness::new();
    let (id, key) = h.key(ACCOUNT, &[]).await;
    let mut svc = h.service();
    for value in [
        format!("Bearer {key}"),
        format!("bearer {key}"),
        format!("BEARER {key}"),
        format!("bEaReR    {key}"),
        format!("Bearer\t{key}"),
        format!("  Bearer  {key}  "),
    ] {
        let answer = send(&mut svc, with_authorization(&value)).await;
        assert_eq!(answer.status, 200, "{value:?}: {answer:?}");
        assert_eq!(answer.json()["id"], id.as_str());
    }
}

#[tokio::test]
async fn two_authorization_headers_are_400_invalid_request() {
    let h = Harness::new();
    let (_, key) = h.key(ACCOUNT, &[]).await;
    let req = with_header(get("/", Some(&key)), "authorization", &bearer(&key));
    let answer = send(&mut h.service(), req).await;
    assert_json_error(&answer, 400, "invalid_request");
    let challenge = answer.header("www-authenticate").unwrap();
    assert!(challenge.starts_with("Bearer realm=\"api\""), "{challenge}");
    assert!(
        challenge.contains("error=\"invalid_request\""),
        "{challenge}"
    );
    assert_eq!(h.store.lookups(), 0);
}

#[tokio::test]
async fn malformed_authorization_values_are_400_invalid_request_without_lookups() {
    let h = Harness::new();
    let (_, key) = h.key(ACCOUNT, &[]).await;
    let mut svc = h.service();
    let cases = [
        format!("Basic {key}"),
        format!("Token {key}"),
        format!("Bearer{key}"),
        "Bearer".to_owned(),
        "Bearer    ".to_owned(),
        format!("Bearer {key} extra"),
        format!("Bearer {key}%"),
        "Bearer sk_test_ab\"cd".to_owned(),
        "Bearer sk_test_{abc}".to_owned(),
    ];
    for value in &cases {
        let answer = send(&mut svc, with_authorization(value)).await;
        assert_json_error(&answer, 400, "invalid_request");
        assert!(answer
            .header("www-authenticate")
            .unwrap()
            .contains("error=\"invalid_request\""));
        assert!(!answer.body.contains(&key), "the key is echoed: {answer:?}");
    }
    assert_eq!(h.store.lookups(), 0);
}

#[tokio::test]
async fn non_ascii_authorization_value_is_400_invalid_request() {
    let h = Harness::new();
    let mut req = get("/", None);
    req.headers_mut().insert(
        "authorization",
        HeaderValue::from_bytes(b"Bearer sk_test_\xff\xfe").unwrap(),
    );
    let answer = send(&mut h.service(), req).await;
    assert_json_error(&answer, 400, "invalid_request");
}

#[tokio::test]
async fn over_long_authorization_value_is_400_invalid_request() {
    let h = Harness::new();
    let long = format!(
        "Bearer sk_test_{}",
        "a".repeat(keygate::check::MAX_CREDENTIAL_LEN)
    );
    let answer = send(&mut h.service(), with_authorization(&long)).await;
    assert_json_error(&answer, 400, "invalid_request");
    assert_eq!(h.store.lookups(), 0);
}
