//! JWKS over HTTPS: a `JwtVerifier` whose keys come from an issuer's JWKS URL. The
//! issuer runs in-process on loopback, over TLS with a certificate from a CA made by
//! the test; lifetimes run on a manual clock.

mod jwks_support;

use std::convert::Infallible;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures_util::future::join_all;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use jwks_support::tokens::{jwks, secs, SigningKey};
use jwks_support::{Answer, Issuer, TestCa};
use keygate::credential::jwt::{
    JwksConfigError, JwksSource, JwksSourceBuilder, JwtConfigError, JwtKey, JwtVerifier,
};
use keygate::credential::{BearerCredential, CredentialError, CredentialVerifier};
use keygate::{Clock, ManualClock};
use keygate::{Keygate, MemoryStore};
use tower::ServiceExt as _;

use SigningKey::{Ed25519, P256};

const UNKNOWN_KID: &str = "The token's key id ('kid') names no key this service trusts";

/// A verifier on a manual clock, trusting `ca`, with a lifetime floor of 60 s and a
/// ceiling of 600 s, one fetch per 10 s at most, 300 s of stale use, and a timeout
/// long enough never to fire in these tests unless an issuer hangs.
struct Setup {
    verifier: JwtVerifier,
    clock: Clock,
    time: ManualClock,
}

fn source(issuer: &Issuer, ca: &TestCa) -> JwksSourceBuilder {
    JwksSource::builder(&issuer.url)
        .root_certificates_pem(ca.pem.clone())
        .timeout(secs(3600))
        .min_lifetime(secs(60))
        .max_lifetime(secs(600))
        .min_refetch_interval(secs(10))
        .stale_while_unreachable(secs(300))
}

impl Setup {
    fn new(source: JwksSourceBuilder) -> Self {
        let (clock, time) = Clock::manual(UNIX_EPOCH + secs(1_800_000_000));
        let verifier = JwtVerifier::builder()
            .jwks(source.build().unwrap())
            .build()
            .unwrap();
        Self {
            verifier,
            clock,
            time,
        }
    }

    fn now(&self) -> SystemTime {
        self.clock.now()
    }

    /// Verifies a token signed by `key` naming `kid`, made now.
    async fn verify(&self, key: SigningKey, kid: &str) -> Result<String, CredentialError> {
        let token = key.token(kid, "user_1", self.now());
        self.verify_token(token).await
    }

    async fn verify_token(&self, token: String) -> Result<String, CredentialError> {
        let credential = BearerCredential::new(token, self.now());
        let principal = self.verifier.verify(credential).await?;
        Ok(principal.subject.as_str().to_owned())
    }
}

fn refused(message: &str) -> Result<String, CredentialError> {
    Err(CredentialError::refused(message.to_owned()))
}

fn is_unavailable(result: &Result<String, CredentialError>) -> bool {
    matches!(result, Err(CredentialError::Unavailable(_)))
}

/// A `kid` nobody has issued.
fn random_kid() -> String {
    format!("kid-{:016x}", rand::random::<u64>())
}

#[tokio::test]
async fn a_token_verifies_with_a_key_fetched_over_tls_and_the_document_is_cached() {
    let ca = TestCa::new("keygate test CA");
    let issuer = Issuer::tls(&ca, Answer::Hang).await;
    issuer.serve(&jwks(&[(Ed25519, "k1"), (P256, "k2")]), 300);
    let s = Setup::new(source(&issuer, &ca));

    assert_eq!(s.verify(Ed25519, "k1").await.unwrap(), "user_1");
    assert_eq!(s.verify(P256, "k2").await.unwrap(), "user_1");
    s.time.advance(secs(299));
    assert_eq!(s.verify(Ed25519, "k1").await.unwrap(), "user_1");
    assert_eq!(
        issuer.fetches(),
        1,
        "one fetch serves the document's lifetime"
    );
    // A token signed by another key than its kid names is still refused.
    assert_eq!(
        s.verify(P256, "k1").await,
        refused("The token's signing algorithm is not accepted")
    );
}

#[tokio::test]
async fn a_rotated_in_kid_verifies_after_one_refetch_once_the_interval_has_passed() {
    let ca = TestCa::new("keygate test CA");
    let issuer = Issuer::tls(&ca, Answer::Hang).await;
    issuer.serve(&jwks(&[(Ed25519, "k1")]), 300);
    let s = Setup::new(source(&issuer, &ca));
    s.verify(Ed25519, "k1").await.unwrap();

    issuer.serve(&jwks(&[(Ed25519, "k1"), (P256, "k2")]), 300);
    // Within the refetch interval of the last fetch, an unknown kid fetches nothing.
    assert_eq!(s.verify(P256, "k2").await, refused(UNKNOWN_KID));
    assert_eq!(issuer.fetches(), 1);

    s.time.advance(secs(10));
    assert_eq!(s.verify(P256, "k2").await.unwrap(), "user_1");
    assert_eq!(issuer.fetches(), 2, "one refetch for the unknown kid");
    s.verify(Ed25519, "k1").await.unwrap();
    s.verify(P256, "k2").await.unwrap();
    assert_eq!(issuer.fetches(), 2);
}

#[tokio::test]
async fn a_kid_removed_from_the_jwks_stops_verifying_after_the_next_refresh() {
    let ca = TestCa::new("keygate test CA");
    let issuer = Issuer::tls(&ca, Answer::Hang).await;
    issuer.serve(&jwks(&[(Ed25519, "k1"), (P256, "k2")]), 120);
    let s = Setup::new(source(&issuer, &ca));
    s.verify(Ed25519, "k1").await.unwrap();

    issuer.serve(&jwks(&[(P256, "k2")]), 120);
    s.time.advance(secs(119));
    assert!(
        s.verify(Ed25519, "k1").await.is_ok(),
        "still within max-age"
    );
    assert_eq!(issuer.fetches(), 1);

    s.time.advance(secs(1));
    assert_eq!(s.verify(Ed25519, "k1").await, refused(UNKNOWN_KID));
    assert_eq!(issuer.fetches(), 2, "the lifetime ended: one refresh");
    s.verify(P256, "k2").await.unwrap();
    // Once the interval allows, the removed kid is looked up again, and stays refused.
    s.time.advance(secs(10));
    assert_eq!(s.verify(Ed25519, "k1").await, refused(UNKNOWN_KID));
    assert_eq!(issuer.fetches(), 3);
}

#[tokio::test]
async fn the_lifetime_is_max_age_clamped_between_the_floor_and_the_ceiling() {
    let ca = TestCa::new("keygate test CA");
    let issuer = Issuer::tls(&ca, Answer::Hang).await;
    issuer.serve(&jwks(&[(Ed25519, "k1")]), 5);
    let s = Setup::new(source(&issuer, &ca));
    s.verify(Ed25519, "k1").await.unwrap();

    // max-age=5 is raised to the 60 s floor.
    s.time.advance(secs(59));
    s.verify(Ed25519, "k1").await.unwrap();
    assert_eq!(issuer.fetches(), 1);
    s.time.advance(secs(1));
    s.verify(Ed25519, "k1").await.unwrap();
    assert_eq!(issuer.fetches(), 2);

    // max-age of a day is cut to the 600 s ceiling.
    issuer.serve(&jwks(&[(Ed25519, "k1")]), 86_400);
    s.time.advance(secs(60));
    s.verify(Ed25519, "k1").await.unwrap();
    assert_eq!(issuer.fetches(), 3);
    s.time.advance(secs(599));
    s.verify(Ed25519, "k1").await.unwrap();
    assert_eq!(issuer.fetches(), 3);
    s.time.advance(secs(1));
    s.verify(Ed25519, "k1").await.unwrap();
    assert_eq!(issuer.fetches(), 4);

    // No Cache-Control at all: the floor.
    issuer.answer(Answer::Jwks {
        body: jwks(&[(Ed25519, "k1")]).to_string(),
        cache_control: None,
    });
    s.time.advance(secs(600));
    s.verify(Ed25519, "k1").await.unwrap();
    assert_eq!(issuer.fetches(), 5);
    s.time.advance(secs(59));
    s.verify(Ed25519, "k1").await.unwrap();
    assert_eq!(issuer.fetches(), 5);
    s.time.advance(secs(1));
    s.verify(Ed25519, "k1").await.unwrap();
    assert_eq!(issuer.fetches(), 6);
}

#[tokio::test]
async fn an_unknown_kid_storm_fetches_at_most_once_per_interval_and_shares_the_fetch() {
    let ca = TestCa::new("keygate test CA");
    let issuer = Issuer::tls(&ca, Answer::Hang).await;
    issuer.serve(&jwks(&[(Ed25519, "k1")]), 600);
    let s = Setup::new(source(&issuer, &ca));
    s.verify(Ed25519, "k1").await.unwrap();
    issuer.serve(&jwks(&[(Ed25519, "k1"), (P256, "k2")]), 600);
    s.time.advance(secs(10));

    // 200 tokens with made-up kids and 20 with the rotated-in k2, all at once: they
    // share one fetch, the k2 tokens verify with it, the others are refused. (On the
    // test's single-threaded runtime every token has asked before the fetch task
    // runs, so a k2 token that did not wait for the shared fetch would be refused.)
    let storm = (0..220).map(|i| {
        let s = &s;
        async move {
            if i % 11 == 0 {
                (true, s.verify(P256, "k2").await)
            } else {
                (false, s.verify(Ed25519, &random_kid()).await)
            }
        }
    });
    for (rotated, result) in join_all(storm).await {
        if rotated {
            assert_eq!(result.unwrap(), "user_1");
        } else {
            assert_eq!(result, refused(UNKNOWN_KID));
        }
    }
    assert_eq!(issuer.fetches(), 2, "one fetch for the whole storm");

    // More made-up kids within the interval fetch nothing at all.
    for _ in 0..100 {
        assert_eq!(s.verify(Ed25519, &random_kid()).await, refused(UNKNOWN_KID));
    }
    assert_eq!(issuer.fetches(), 2);

    // Over a minute of storms, one fetch per 10 s at most.
    for _ in 0..6 {
        s.time.advance(secs(10));
        let storm = (0..50).map(|_| async { s.verify(Ed25519, &random_kid()).await });
        assert!(join_all(storm)
            .await
            .into_iter()
            .all(|r| r == refused(UNKNOWN_KID)));
    }
    assert_eq!(issuer.fetches(), 8);
    s.verify(Ed25519, "k1").await.unwrap();
}

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

#[tokio::test]
async fn plain_http_is_refused_unless_allowed_for_development() {
    let issuer = Issuer::plain(Answer::Hang).await;
    issuer.serve(&jwks(&[(Ed25519, "k1")]), 60);
    let refused = JwksSource::builder(&issuer.url).build();
    assert_eq!(refused.unwrap_err(), JwksConfigError::PlainHttp);

    let s = Setup::new(JwksSource::builder(&issuer.url).allow_plain_http_for_development());
    assert_eq!(s.verify(Ed25519, "k1").await.unwrap(), "user_1");
    assert_eq!(issuer.fetches(), 1);
}

#[tokio::test]
async fn an_issuer_whose_certificate_is_not_from_a_trusted_ca_is_refused() {
    let trusted = TestCa::new("keygate test CA");
    let other = TestCa::new("another CA");
    let issuer = Issuer::tls(&other, Answer::Hang).await;
    issuer.serve(&jwks(&[(Ed25519, "k1")]), 60);

    let s = Setup::new(source(&issuer, &trusted));
    assert!(is_unavailable(&s.verify(Ed25519, "k1").await));
    // The system's roots do not know the test CA either.
    let s = Setup::new(JwksSource::builder(&issuer.url));
    assert!(is_unavailable(&s.verify(Ed25519, "k1").await));
    assert_eq!(
        issuer.fetches(),
        0,
        "no request is sent before the handshake"
    );

    // The same server, trusted: it was only the certificate.
    let s = Setup::new(source(&issuer, &other));
    s.verify(Ed25519, "k1").await.unwrap();
    assert_eq!(issuer.fetches(), 1);
}

#[tokio::test]
async fn configuration_mistakes_are_refused_when_built() {
    let url = "https://auth.example.com/.well-known/jwks.json";
    let bad_pem = JwksSource::builder(url).root_certificates_pem("not a certificate");
    assert!(matches!(
        bad_pem.build(),
        Err(JwksConfigError::InvalidRootCertificates(_))
    ));
    let bounds = JwksSource::builder(url)
        .min_lifetime(secs(600))
        .max_lifetime(secs(60))
        .build();
    assert!(matches!(
        bounds,
        Err(JwksConfigError::LifetimeBounds { .. })
    ));
    for bad in [
        "ftp://auth.example.com/jwks",
        "https://user:pw@auth.example.com/jwks",
        "/jwks",
    ] {
        let built = JwksSource::builder(bad).build();
        assert!(
            matches!(built, Err(JwksConfigError::InvalidUrl(_))),
            "{bad}"
        );
    }

    let pem = "-----BEGIN PUBLIC KEY-----\n\
               MCowBQYDK2VwAyEA8OOLKldapI6Ti63boo2whYFkQOvfWuiPS0hTlPsnTpc=\n\
               -----END PUBLIC KEY-----\n";
    let key = JwtKey::ed25519_pem(pem.as_bytes()).unwrap();
    let both = JwtVerifier::builder()
        .key(key.clone())
        .jwks(JwksSource::builder(url).build().unwrap())
        .build();
    assert_eq!(both.unwrap_err(), JwtConfigError::KeysFromJwks);
    let from_jwks = JwtVerifier::builder()
        .jwks(JwksSource::builder(url).build().unwrap())
        .build()
        .unwrap();
    assert_eq!(
        from_jwks.replace_keys(vec![key]),
        Err(JwtConfigError::KeysFromJwks)
    );
}
