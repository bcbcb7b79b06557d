//! A hanging issuer, the 503 after the stale bound, oversized and invalid documents.

use std::convert::Infallible;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use keygate::{Keygate, MemoryStore};
use tower::ServiceExt as _;

use super::support::tokens::{jwks, secs, SigningKey};
use super::support::{Answer, Issuer, TestCa};
use super::*;

use SigningKey::{Ed25519, P256};

#[tokio::test]
async fn an_issuer_that_hangs_is_timed_out_stale_keys_serve_within_the_bound_then_it_fails_closed()
{
    let ca = TestCa::new("keygate test CA");
    let issuer = Issuer::tls(&ca, Answer::Hang).await;
    issuer.serve(&jwks(&[(Ed25519, "k1")]), 60);
    let s = Setup::new(source(&issuer, &ca));
    s.verify(Ed25519, "k1").await.unwrap();

    // From here Tokio's clock is paused: with the issuer hanging and nothing else to
    // do, the runtime jumps to the fetch's one-hour timeout at once.
    issuer.answer(Answer::Hang);
    tokio::time::pause();
    let paused = tokio::time::Instant::now();
    s.time.advance(secs(60));
    assert!(
        s.verify(Ed25519, "k1").await.is_ok(),
        "stale, while the issuer hangs"
    );
    assert_eq!(issuer.fetches(), 2);
    assert!(
        paused.elapsed() >= secs(3600),
        "the fetch ended by its timeout"
    );
    s.time.advance(secs(299));
    assert!(
        s.verify(Ed25519, "k1").await.is_ok(),
        "the last second of stale use"
    );
    assert_eq!(issuer.fetches(), 3);

    // Past lifetime + stale bound: 503, without another fetch within the interval.
    s.time.advance(secs(1));
    assert!(is_unavailable(&s.verify(Ed25519, "k1").await));
    assert_eq!(issuer.fetches(), 3);
    s.time.advance(secs(10));
    assert!(is_unavailable(&s.verify(Ed25519, "k1").await));
    assert_eq!(issuer.fetches(), 4);

    // The issuer is back: keys are fetched again at the next allowed attempt.
    tokio::time::resume();
    issuer.serve(&jwks(&[(Ed25519, "k1")]), 60);
    s.time.advance(secs(10));
    s.verify(Ed25519, "k1").await.unwrap();
    assert_eq!(issuer.fetches(), 5);
}

#[tokio::test]
async fn a_gate_answers_503_verifier_unavailable_when_no_jwks_can_be_fetched() {
    let ca = TestCa::new("keygate test CA");
    let issuer = Issuer::tls(&ca, Answer::Hang).await;
    let s = Setup::new(source(&issuer, &ca).timeout(std::time::Duration::from_millis(200)));
    let gate = Keygate::builder(MemoryStore::new())
        .credential_verifier(s.verifier.clone())
        .clock(s.clock.clone())
        .build();
    let service = tower::Layer::layer(
        &gate.layer(),
        tower::service_fn(|_: Request<Full<Bytes>>| async {
            Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"ok"))))
        }),
    );
    let token = Ed25519.token("k1", "user_1", s.now());
    let request = Request::get("/v1/streams")
        .header("authorization", format!("Bearer {token}"))
        .body(Full::new(Bytes::new()))
        .unwrap();
    let response = service.oneshot(request).await.unwrap();
    assert_eq!(response.status(), 503);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["error"]["code"], "verifier_unavailable", "{body}");
    assert_eq!(issuer.fetches(), 1);
}

#[tokio::test]
async fn an_oversized_document_is_refused_and_the_keys_held_stay_in_use() {
    let ca = TestCa::new("keygate test CA");
    let issuer = Issuer::tls(&ca, Answer::Hang).await;
    issuer.serve(&jwks(&[(Ed25519, "k1")]), 60);
    // The timeout is an hour: the refusals below cannot be timeouts.
    let s = Setup::new(source(&issuer, &ca).max_document_size(4096));
    s.verify(Ed25519, "k1").await.unwrap();

    // A Content-Length over the limit, with a body never sent: refused unread.
    issuer.answer(Answer::Declares(10_000_000));
    s.time.advance(secs(60));
    assert!(s.verify(Ed25519, "k1").await.is_ok());
    assert_eq!(issuer.fetches(), 2);

    // A chunked body that never ends: refused once past the limit, and the connection
    // dropped. A client reading on would keep the issuer writing for the hour.
    issuer.answer(Answer::Endless);
    s.time.advance(secs(10));
    assert!(s.verify(Ed25519, "k1").await.is_ok());
    assert_eq!(issuer.fetches(), 3);
    let written = issuer.streamed().await;
    assert!(
        written < 16 << 20,
        "{written} bytes written before the client left"
    );

    // A valid document just over the limit (here with a new key) is refused too.
    let mut big = jwks(&[(Ed25519, "k1"), (P256, "k2")]);
    big["padding"] = " ".repeat(4096).into();
    issuer.serve(&big, 60);
    s.time.advance(secs(10));
    assert_eq!(s.verify(P256, "k2").await, refused(UNKNOWN_KID));
    assert_eq!(issuer.fetches(), 4);
}

#[tokio::test]
async fn an_invalid_document_is_refused_and_the_keys_held_stay_in_use() {
    let ca = TestCa::new("keygate test CA");
    let issuer = Issuer::tls(&ca, Answer::Hang).await;
    issuer.serve(&jwks(&[(Ed25519, "k1")]), 60);
    let s = Setup::new(source(&issuer, &ca));
    s.verify(Ed25519, "k1").await.unwrap();

    let two_k2 = serde_json::json!({"keys": [P256.jwk("k2"), Ed25519.jwk("k2")]});
    let document = |body: String| Answer::Jwks {
        body,
        cache_control: Some("max-age=60".into()),
    };
    let good = jwks(&[(Ed25519, "k1"), (P256, "k2")]).to_string();
    let invalid = [
        document(two_k2.to_string()),
        document("<html>maintenance</html>".to_owned()),
        document(r#"{"keys":[{"kty":"oct","kid":"k2","k":"c2VjcmV0"}]}"#.to_owned()),
        // A good document behind an error status, or a redirect (never followed).
        Answer::Status(500, good.clone()),
        Answer::Status(302, good),
    ];
    s.time.advance(secs(60));
    for (i, answer) in invalid.into_iter().enumerate() {
        issuer.answer(answer);
        s.time.advance(secs(10));
        assert_eq!(
            s.verify(P256, "k2").await,
            refused(UNKNOWN_KID),
            "document {i}"
        );
        assert!(s.verify(Ed25519, "k1").await.is_ok(), "document {i}");
        assert_eq!(issuer.fetches(), 2 + i);
    }
}
