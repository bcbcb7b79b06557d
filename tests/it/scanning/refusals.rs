//! Alerts that are refused change nothing: no signature, a wrong one, one by a key not
//! listed, a tampered body, a body over the limit; and a store outage fails closed so
//! that the scanner retries, the retry applying each token once.

use keygate::admin::scanning::ScanningKeys;
use keygate::leaks::LeakPolicy;
use keygate::store::AccountId;
use keygate::KeyStoreWrite;

use super::support::*;
use crate::common::*;

/// The key works and carries no leak record.
async fn untouched(s: &Scanning, id: &keygate::store::KeyId, key: &str) {
    assert!(
        s.h.gate.verify_key(key).await.is_ok(),
        "the key still works"
    );
    let record = s.h.store.get(id).await.unwrap().unwrap();
    assert!(record.leak.is_none() && record.revoked_at.is_none());
}

#[tokio::test]
async fn unsigned_wrongly_signed_unlisted_and_tampered_alerts_change_nothing() {
    let s = Scanning::new(LeakPolicy::Revoke).await;
    let (id, key) = s.h.key("acct_1", &[]).await;
    let body = alert(&[&key]);
    let good = s.github.sign(body.as_bytes());

    // Missing headers, one or both.
    let none = post(s.addr, &body, None).await;
    assert_eq!(
        (none.status.as_u16(), none.code().as_str()),
        (401, "missing_signature")
    );
    let headers = [
        ("content-type", "application/json"),
        ("github-public-key-signature", good.as_str()),
    ];
    let no_id = http(s.addr, http::Method::POST, PATH, &headers, &body).await;
    assert_eq!(no_id.code(), "missing_signature");

    // A signature by a key that is not listed, under its own identifier and under
    // the listed one.
    let stranger = GithubKey::new("github-key-2");
    let unlisted = s.post_signed(&body, &stranger).await;
    assert_eq!(
        (unlisted.status.as_u16(), unlisted.code().as_str()),
        (401, "unknown_public_key")
    );
    let forged = post(
        s.addr,
        &body,
        Some((&s.github.id, &stranger.sign(body.as_bytes()))),
    )
    .await;
    assert_eq!(
        (forged.status.as_u16(), forged.code().as_str()),
        (401, "invalid_signature")
    );

    // A tampered body under a genuine signature.
    let tampered = body.replace("gist_content", "npm");
    let answer = post(s.addr, &tampered, Some((&s.github.id, &good))).await;
    assert_eq!(answer.code(), "invalid_signature");

    // Signatures that are not base64 DER at all.
    for bad in [
        "",
        "!!!",
        "AAAA",
        &"QUFB".repeat(100),
        &good[..good.len() - 4],
    ] {
        let answer = post(s.addr, &body, Some((&s.github.id, bad))).await;
        assert_eq!(answer.status, 401, "{bad:?}: {}", answer.body);
    }
    untouched(&s, &id, &key).await;

    // The genuine alert then works.
    assert_eq!(
        labels(&post(s.addr, &body, Some((&s.github.id, &good))).await),
        ["true_positive"]
    );
}

#[tokio::test]
async fn a_signed_body_that_is_not_an_alert_is_a_400_and_changes_nothing() {
    let s = Scanning::new(LeakPolicy::Revoke).await;
    let (id, key) = s.h.key("acct_1", &[]).await;
    for body in [
        "{}".to_owned(),
        "not json".to_owned(),
        format!(r#"[{{"token":"{key}"}}, 7]"#),
        r#"[{"type":"t"}]"#.to_owned(),
    ] {
        let answer = s.post(&body).await;
        assert_eq!(
            (answer.status.as_u16(), answer.code().as_str()),
            (400, "invalid_request"),
            "{body}"
        );
    }
    untouched(&s, &id, &key).await;
    assert_eq!(s.post("[]").await.body, "[]");
}

#[tokio::test]
async fn an_alert_over_the_body_limit_is_refused_with_413() {
    let h = Harness::new();
    let github = GithubKey::new("k");
    let keys = ScanningKeys::from_document(document(&[&github]).as_bytes()).unwrap();
    let addr = serve_endpoint(&h.manager, keys, LeakPolicy::Revoke, Some(1024)).await;
    let (_, key) = h.key("acct_1", &[]).await;
    let tokens: Vec<&str> = std::iter::repeat_n(key.as_str(), 20).collect();
    let body = alert(&tokens);
    assert!(body.len() > 1024);
    let answer = post(
        addr,
        &body,
        Some((&github.id, &github.sign(body.as_bytes()))),
    )
    .await;
    assert_eq!(
        (answer.status.as_u16(), answer.code().as_str()),
        (413, "body_too_large")
    );
    assert!(h.gate.verify_key(&key).await.is_ok());
}

#[tokio::test]
async fn only_post_is_served() {
    let s = Scanning::new(LeakPolicy::Revoke).await;
    let answer = http(s.addr, http::Method::GET, PATH, &[], "").await;
    assert_eq!(answer.status, 405);
    assert_eq!(answer.header("allow"), Some("POST"));
    assert_eq!(answer.code(), "method_not_allowed");
}

#[tokio::test]
async fn a_store_outage_answers_503_and_the_retry_applies_each_token_once() {
    let s = Scanning::new(LeakPolicy::Revoke).await;
    let (id, key) = s.h.key("acct_1", &[]).await;
    let body = alert(&[&key]);
    s.h.store.set_fault(Fault::Error);
    let answer = s.post(&body).await;
    assert_eq!(
        (answer.status.as_u16(), answer.code().as_str()),
        (503, "store_unavailable")
    );
    assert!(!answer.body.contains(&key));
    s.h.store.set_fault(Fault::None);
    let record = s.h.store.get(&id).await.unwrap().unwrap();
    assert!(record.leak.is_none() && record.revoked_at.is_none());
    // GitHub retries.
    assert_eq!(labels(&s.post(&body).await), ["true_positive"]);
    assert_eq!(labels(&s.post(&body).await), ["true_positive"]);
    let view =
        s.h.manager
            .get(&AccountId::from("acct_1"), &id)
            .await
            .unwrap();
    assert!(view.revoked_at.is_some());
    assert_eq!(
        s.h.store.get(&id).await.unwrap().unwrap().version,
        1,
        "written once"
    );
}
