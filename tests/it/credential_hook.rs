//! The credential hook: which bearers reach the verifier, what its answers become
//! (401 `invalid_token`, 503 `verifier_unavailable` for errors, panics and hangs), in
//! JSON, custom and gRPC form, and the audit events of its identities.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::common::*;
use bytes::Bytes;
use http::Response;
use keygate::client_ip::PeerAddr;
use keygate::credential::{BearerCredential, CredentialError, CredentialVerifier, Principal};
use keygate::refusal::Refusal;
use keygate::scope::ScopeSet;

/// A verifier that accepts `token-<subject>` for account `acct_ext` with scope `read`,
/// refuses anything else, and counts its calls.
#[derive(Clone, Default)]
struct Counting(Arc<AtomicUsize>);

impl Counting {
    fn calls(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

#[async_trait::async_trait]
impl CredentialVerifier for Counting {
    async fn verify(&self, credential: BearerCredential) -> Result<Principal, CredentialError> {
        self.0.fetch_add(1, Ordering::SeqCst);
        match credential.expose_secret().strip_prefix("token-") {
            Some(subject) => Ok(Principal::new(subject.into(), "acct_ext".into())
                .name("external session")
                .scopes(ScopeSet::parse(["read"]).unwrap())),
            None => Err(CredentialError::refused("Unknown session token")),
        }
    }
}

#[tokio::test]
async fn without_a_verifier_a_foreign_bearer_is_an_invalid_api_key() {
    let h = Harness::new();
    let answer = send(&mut h.service(), get("/", Some("token-ada"))).await;
    assert_eq!(
        (answer.status.as_u16(), answer.code().as_str()),
        (401, "invalid_api_key")
    );
    // Without a verifier the 512-byte credential limit stands.
    let long = "a".repeat(600);
    let answer = send(&mut h.service(), get("/", Some(&long))).await;
    assert_eq!(
        (answer.status.as_u16(), answer.code().as_str()),
        (400, "invalid_request")
    );
}

#[tokio::test]
async fn a_foreign_bearer_goes_to_the_verifier_and_becomes_an_external_identity() {
    let verifier = Counting::default();
    let h = Harness::with(|b| b.credential_verifier(verifier.clone()));
    let answer = send(&mut h.service(), get("/", Some("token-ada"))).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let identity = answer.json();
    assert_eq!(identity["id"], "ada");
    assert_eq!(identity["account_id"], "acct_ext");
    assert_eq!(identity["name"], "external session");
    assert_eq!(identity["scopes"], serde_json::json!(["read"]));
    assert_eq!(verifier.calls(), 1);
    assert_eq!(h.store.lookups(), 0);

    let refused = send(&mut h.service(), get("/", Some("nonsense"))).await;
    assert_eq!(refused.status, 401);
    assert_eq!(refused.code(), "invalid_token");
    assert_eq!(refused.json()["error"]["message"], "Unknown session token");
    assert_eq!(
        refused.header("www-authenticate"),
        Some("Bearer realm=\"api\", error=\"invalid_token\", error_description=\"Unknown session token\"")
    );
}

#[tokio::test]
async fn keygate_keys_never_reach_the_verifier() {
    let verifier = Counting::default();
    let h = Harness::with(|b| {
        b.credential_verifier(verifier.clone())
            .api_key_header(http::HeaderName::from_static("x-api-key"))
    });
    let (_, key) = h.key("acct_1", &["read"]).await;
    let mut svc = h.service();
    assert_eq!(send(&mut svc, get("/", Some(&key))).await.status, 200);
    // A malformed or unknown key with one of keygate's prefixes stays a key refusal.
    let mut typo = key.clone();
    typo.pop();
    typo.push(if key.ends_with('x') { 'y' } else { 'x' });
    for token in [
        typo.as_str(),
        "sk_test_short",
        "tc_token-ada",
        "sk_live_token-ada",
    ] {
        let answer = send(&mut svc, get("/", Some(token))).await;
        assert_eq!(answer.status, 401, "{token}");
        assert_ne!(answer.code(), "invalid_token", "{token}");
    }
    // A foreign token in the API-key header is not a bearer: not handed over.
    let mut req = get("/", None);
    req.headers_mut()
        .insert("x-api-key", "token-ada".parse().unwrap());
    assert_eq!(send(&mut svc, req).await.code(), "invalid_api_key");
    assert_eq!(verifier.calls(), 0);
    // Malformed headers are refused before any verifier runs.
    let mut two = get("/", Some("token-ada"));
    two.headers_mut()
        .append("authorization", "Bearer token-bob".parse().unwrap());
    assert_eq!(send(&mut svc, two).await.code(), "invalid_request");
    let spaced = send(&mut svc, get("/", Some("token ada"))).await;
    assert_eq!(spaced.code(), "invalid_request");
    assert_eq!(verifier.calls(), 0);
}

#[tokio::test]
async fn an_erring_verifier_fails_closed_with_503() {
    let h = Harness::with(|b| {
        b.credential_verifier(|_: BearerCredential| async {
            Err::<Principal, _>(CredentialError::unavailable("JWKS endpoint unreachable"))
        })
    });
    let answer = send(&mut h.service(), get("/", Some("token-ada"))).await;
    assert_eq!(answer.status, 503);
    assert_eq!(answer.code(), "verifier_unavailable");
    assert!(
        !answer.body.contains("JWKS"),
        "internal detail leaked: {}",
        answer.body
    );
    assert!(answer.header("www-authenticate").is_none());
}

#[tokio::test]
async fn a_panicking_verifier_fails_closed_with_503() {
    let h = Harness::with(|b| {
        b.credential_verifier(|c: BearerCredential| async move {
            if c.expose_secret() == "boom" {
                panic!("verifier bug");
            }
            Ok(Principal::new("ok".into(), "acct".into()))
        })
    });
    let answer = send(&mut h.service(), get("/", Some("boom"))).await;
    assert_eq!(
        (answer.status.as_u16(), answer.code().as_str()),
        (503, "verifier_unavailable")
    );
    // The gate keeps working.
    assert_eq!(
        send(&mut h.service(), get("/", Some("fine"))).await.status,
        200
    );
}

#[tokio::test(start_paused = true)]
async fn a_hanging_verifier_fails_closed_after_the_store_timeout() {
    let h = Harness::with(|b| {
        b.store_timeout(Duration::from_millis(300))
            .credential_verifier(|_: BearerCredential| async {
                std::future::pending::<Result<Principal, CredentialError>>().await
            })
    });
    let started = tokio::time::Instant::now();
    let answer = send(&mut h.service(), get("/", Some("token-ada"))).await;
    assert_eq!(
        (answer.status.as_u16(), answer.code().as_str()),
        (503, "verifier_unavailable")
    );
    assert_eq!(started.elapsed(), Duration::from_millis(300));
}

#[tokio::test]
async fn refusals_use_the_configured_renderer_and_the_grpc_form() {
    let h = Harness::with(|b| {
        b.credential_verifier(Counting::default())
            .renderer(|r: &Refusal<'_>| {
                let body = serde_json::json!({"success": false, "errors": [r.error.code()]});
                Response::builder()
                    .status(r.error.status())
                    .body(Bytes::from(body.to_string()))
                    .unwrap()
            })
    });
    let answer = send(&mut h.service(), get("/", Some("nonsense"))).await;
    assert_eq!(answer.status, 401);
    assert_eq!(
        answer.json(),
        serde_json::json!({"success": false, "errors": ["invalid_token"]})
    );
    assert!(answer.header("www-authenticate").is_some());

    let mut grpc = tower::Layer::layer(&h.gate.layer().grpc(), Echo);
    let answer = send(&mut grpc, get("/", Some("nonsense"))).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.header("grpc-status"), Some("16"));
    assert_eq!(
        answer.header("grpc-message"),
        Some("invalid_token: Unknown session token")
    );
    let down = Harness::with(|b| {
        b.credential_verifier(|_: BearerCredential| async {
            Err::<Principal, _>(CredentialError::unavailable("down"))
        })
    });
    let mut grpc = tower::Layer::layer(&down.gate.layer().grpc(), Echo);
    let answer = send(&mut grpc, get("/", Some("x"))).await;
    assert_eq!(answer.header("grpc-status"), Some("14"));
}

#[tokio::test]
async fn answers_are_never_cached_nor_written_to_the_store() {
    let verifier = Counting::default();
    let h = Harness::with(|b| {
        b.credential_verifier(verifier.clone())
            .last_used_interval(Duration::from_secs(1))
    });
    let mut svc = h.service();
    for _ in 0..3 {
        assert_eq!(
            send(&mut svc, get("/", Some("token-ada"))).await.status,
            200
        );
        h.time.advance(Duration::from_secs(5));
    }
    assert_eq!(verifier.calls(), 3, "every request is verified afresh");
    tokio::task::yield_now().await;
    assert_eq!(h.store.last_used_writes(), 0);
    assert_eq!(h.store.lookups(), 0);
    assert_eq!(h.gate.stats().cached_entries, 0);
}

#[tokio::test]
async fn nested_layers_verify_a_credential_once() {
    let verifier = Counting::default();
    let h = Harness::with(|b| b.credential_verifier(verifier.clone()));
    let inner = tower::Layer::layer(&h.gate.layer().require_any(["read"]), Echo);
    let mut svc = tower::Layer::layer(&h.gate.layer(), inner);
    assert_eq!(
        send(&mut svc, get("/", Some("token-ada"))).await.status,
        200
    );
    assert_eq!(verifier.calls(), 1);
    let inner = tower::Layer::layer(&h.gate.layer().require_any(["write"]), Echo);
    let mut svc = tower::Layer::layer(&h.gate.layer(), inner);
    let answer = send(&mut svc, get("/", Some("token-ada"))).await;
    assert_eq!(
        (answer.status.as_u16(), answer.code().as_str()),
        (403, "insufficient_scope")
    );
    assert_eq!(verifier.calls(), 2);
}

/// A `tracing` writer into a shared buffer.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn audit_events_name_the_subject_and_never_the_token() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .finish();
    let _guard = trace_into(subscriber);

    let h = Harness::with(|b| b.credential_verifier(Counting::default()));
    let peer: SocketAddr = "203.0.113.9:40000".parse().unwrap();
    let mut svc = h.service();
    for token in ["token-ada", "secret-session-3f9a"] {
        let mut req = get("/", Some(token));
        req.extensions_mut().insert(PeerAddr(peer));
        send(&mut svc, req).await;
    }
    let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(
        log.lines().any(|l| l.contains("outcome=\"ok\"")
            && l.contains("credential=\"external\"")
            && l.contains("key_id=\"ada\"")
            && l.contains("account_id=\"acct_ext\"")
            && l.contains("client_ip=203.0.113.9")),
        "{log}"
    );
    assert!(
        log.lines()
            .any(|l| l.contains("outcome=\"invalid_token\"") && l.contains("status=401")),
        "{log}"
    );
    assert!(!log.contains("token-ada"), "{log}");
    assert!(!log.contains("secret-session-3f9a"), "{log}");
}
