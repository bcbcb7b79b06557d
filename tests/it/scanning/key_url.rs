//! Public keys fetched from a URL over TLS (a CA made in the test): fetched by the first
//! alert, fetched again for an unknown identifier at most once per interval, and an
//! unreachable URL failing closed.

use std::time::Duration;

use keygate::admin::scanning::ScanningKeys;
use keygate::leaks::LeakPolicy;

use super::support::*;
use crate::common::*;
use crate::jwks::support::{Answer, Issuer, TestCa};

fn serve_document(issuer: &Issuer, keys: &[&GithubKey]) {
    issuer.answer(Answer::Jwks {
        body: document(keys),
        cache_control: None,
    });
}

#[tokio::test]
async fn keys_from_a_url_are_fetched_again_for_an_unknown_identifier_at_most_once_per_interval() {
    let ca = TestCa::new("scanning-ca");
    let first = GithubKey::new("key-1");
    let rotated = GithubKey::new("key-2");
    let issuer = Issuer::tls(&ca, Answer::Status(500, String::new())).await;
    serve_document(&issuer, &[&first]);
    let keys = ScanningKeys::fetch(issuer.url.clone())
        .root_certificates_pem(ca.pem.clone())
        .min_refetch_interval(Duration::from_secs(300))
        .build()
        .unwrap();
    let h = Harness::new();
    let addr = serve_endpoint(&h.manager, keys, LeakPolicy::Revoke, None).await;
    let (_, key) = h.key("acct_1", &[]).await;
    let body = alert(&[&key]);
    let by = |k: &GithubKey| (k.id.clone(), k.sign(body.as_bytes()));

    // The first alert fetches the document.
    let (id, sig) = by(&first);
    assert_eq!(
        issuer.fetches(),
        0,
        "nothing fetched before the first alert"
    );
    assert_eq!(
        post(addr, "[]", Some((&id, &first.sign(b"[]"))))
            .await
            .status,
        200
    );
    assert_eq!(issuer.fetches(), 1);

    // GitHub rotates its key; the document lists it, but keygate fetched just now.
    serve_document(&issuer, &[&rotated, &first]);
    let (id2, sig2) = by(&rotated);
    for _ in 0..5 {
        let answer = post(addr, &body, Some((&id2, &sig2))).await;
        assert_eq!(answer.code(), "unknown_public_key");
    }
    assert_eq!(
        issuer.fetches(),
        1,
        "made-up identifiers cause no fetch within the interval"
    );
    assert!(h.gate.verify_key(&key).await.is_ok());

    // Once the interval has passed, one unknown identifier fetches once more.
    h.time.advance(Duration::from_secs(300));
    assert_eq!(
        labels(&post(addr, &body, Some((&id2, &sig2))).await),
        ["true_positive"]
    );
    assert_eq!(issuer.fetches(), 2);
    // The old key still verifies (it is listed, not current) without a fetch.
    assert_eq!(post(addr, &body, Some((&id, &sig))).await.status, 200);
    let answer = post(addr, &body, Some(("key-3", &sig))).await;
    assert_eq!(answer.code(), "unknown_public_key");
    assert_eq!(issuer.fetches(), 2);
}

#[tokio::test]
async fn an_unreachable_key_url_fails_closed_and_changes_nothing() {
    // A port nothing listens on.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let keys = ScanningKeys::fetch(format!("https://127.0.0.1:{port}/keys"))
        .root_certificates_pem(TestCa::new("unused").pem)
        .build()
        .unwrap();
    let h = Harness::new();
    let addr = serve_endpoint(&h.manager, keys, LeakPolicy::Revoke, None).await;
    let (_, key) = h.key("acct_1", &[]).await;
    let github = GithubKey::new("k");
    let body = alert(&[&key]);
    let answer = post(
        addr,
        &body,
        Some((&github.id, &github.sign(body.as_bytes()))),
    )
    .await;
    assert_eq!(
        (answer.status.as_u16(), answer.code().as_str()),
        (503, "public_keys_unavailable")
    );
    assert!(h.gate.verify_key(&key).await.is_ok());
}

#[tokio::test]
async fn a_plain_http_key_url_is_refused_unless_allowed() {
    let err = ScanningKeys::fetch("http://127.0.0.1:1/keys")
        .build()
        .unwrap_err();
    assert!(
        err.to_string().contains("allow_plain_http_for_development"),
        "{err}"
    );
    assert!(ScanningKeys::fetch("http://127.0.0.1:1/keys")
        .allow_plain_http_for_development(true)
        .build()
        .is_ok());
}
