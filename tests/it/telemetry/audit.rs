//! Audit events: every decision is a `tracing` event on `keygate::audit` naming the key id,
//! the account, the outcome code and the client IP, and nothing logged at any level ever
//! carries key material (a key, its secret body, or its digest).

use crate::common::*;

use std::io::Write;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use keygate::client_ip::PeerAddr;
use keygate::key::KeyHasher;
use keygate::store::AccountId;
use tracing::Level;

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

impl Captured {
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }

    /// Everything at TRACE and above, from every target, as plain text.
    fn subscriber(&self) -> impl tracing::Subscriber + Send + Sync {
        let buffer = self.clone();
        tracing_subscriber::fmt()
            .with_writer(move || buffer.clone())
            .with_max_level(Level::TRACE)
            .with_ansi(false)
            .finish()
    }
}

const CLIENT: &str = "203.0.113.9:40000";

/// A GET carrying `authorization` values, from [`CLIENT`] as a plain hyper server would
/// report it.
fn from_client(authorization: &[&str]) -> Request<Full<Bytes>> {
    let mut req = get("/v1/things", None);
    for value in authorization {
        req.headers_mut()
            .append("authorization", value.parse().unwrap());
    }
    let peer: SocketAddr = CLIENT.parse().unwrap();
    req.extensions_mut().insert(PeerAddr(peer));
    req
}

/// The random part of a key: everything after its prefix.
fn body(key: &str) -> &str {
    &key[key.rfind('_').unwrap() + 1..]
}

/// Fails if any form of `key` appears in `log`.
fn assert_no_key_material(log: &str, key: &str) {
    let digest = KeyHasher::sha256().digest(key);
    let hex = digest.to_hex();
    let forms = [
        ("the key", key.to_owned()),
        ("the key body", body(key).to_owned()),
        ("the digest hex", hex.clone()),
        ("the upper-case digest hex", hex.to_uppercase()),
        ("the first half of the digest hex", hex[..32].to_owned()),
        ("the digest bytes", format!("{:?}", digest.as_bytes())),
    ];
    for (what, form) in forms {
        assert!(
            !log.contains(&form),
            "{what} of a key appears in the captured log:\n{log}"
        );
    }
}

#[tokio::test]
async fn audit_events_name_keys_and_outcomes_but_never_key_material() {
    let captured = Captured::default();
    let _guard = trace_into(captured.subscriber());

    let h = Harness::new();
    let account = AccountId::from("acct_audit");
    let (valid_id, valid) = h.key("acct_audit", &["admin"]).await;
    let (revoked_id, revoked) = h.key("acct_audit", &["read-only"]).await;
    h.manager.revoke(&account, &revoked_id).await.unwrap();
    let (rolled_id, old) = h.key("acct_audit", &["admin"]).await;
    let rolled = h
        .manager
        .roll(&account, &rolled_id, Some(Duration::from_secs(60)))
        .await
        .unwrap();
    let new = rolled.key.expose_secret().to_owned();
    let unknown = h
        .gate
        .format()
        .generate(&h.gate.format().prefixes()[0])
        .unwrap()
        .expose_secret()
        .to_owned();
    let mut typo = valid.clone();
    typo.replace_range(12..13, if &valid[12..13] == "x" { "y" } else { "x" });

    let mut svc = h.service();
    let answers = [
        (send(&mut svc, from_client(&[&bearer(&valid)])).await, 200),
        (send(&mut svc, from_client(&[&bearer(&valid)])).await, 200), // cached
        (send(&mut svc, from_client(&[&bearer(&new)])).await, 200),
        (send(&mut svc, from_client(&[&bearer(&old)])).await, 200), // grace period
        (send(&mut svc, from_client(&[&bearer(&unknown)])).await, 401),
        (send(&mut svc, from_client(&[&bearer(&typo)])).await, 401),
        (send(&mut svc, from_client(&[&bearer(&revoked)])).await, 401),
        (
            send(&mut svc, from_client(&[&format!("Basic {valid}")])).await,
            400,
        ),
        (
            send(&mut svc, from_client(&[&bearer(&valid), &bearer(&new)])).await,
            400,
        ),
        (send(&mut svc, from_client(&[])).await, 401),
    ];
    for (i, (answer, status)) in answers.iter().enumerate() {
        assert_eq!(answer.status, *status, "request {i}: {}", answer.body);
    }
    // A store outage is logged with the backend's error, and still no key material.
    h.store.set_fault(Fault::Error);
    let (_, during_outage) = h.key("acct_audit", &["admin"]).await;
    let outage = send(&mut svc, from_client(&[&bearer(&during_outage)])).await;
    assert_eq!(outage.status, 503);

    let log = captured.text();
    for needle in [
        "api key accepted",
        "api key refused",
        "outcome=\"ok\"",
        "outcome=\"invalid_api_key\"",
        "outcome=\"revoked_api_key\"",
        "outcome=\"invalid_request\"",
        "outcome=\"unauthorized\"",
        "outcome=\"store_unavailable\"",
        "action=\"create\"",
        "action=\"revoke\"",
        "action=\"roll\"",
        "account_id=\"acct_audit\"",
        "injected failure",
    ] {
        assert!(log.contains(needle), "{needle} missing from:\n{log}");
    }
    for id in [&valid_id, &revoked_id, &rolled_id] {
        assert!(
            log.contains(&format!("key_id=\"{id}\"")),
            "{id} missing from:\n{log}"
        );
    }
    // The refusal of the revoked key names it; the client IP is on allowed and refused
    // decisions alike.
    assert!(
        log.lines()
            .any(|l| l.contains("outcome=\"revoked_api_key\"")
                && l.contains(&format!("key_id=\"{revoked_id}\""))
                && l.contains("client_ip=203.0.113.9")),
        "{log}"
    );
    assert!(
        log.lines().any(|l| l.contains("outcome=\"ok\"")
            && l.contains(&format!("key_id=\"{valid_id}\""))
            && l.contains("client_ip=203.0.113.9")),
        "{log}"
    );

    for key in [
        &valid,
        &revoked,
        &old,
        &new,
        &unknown,
        &typo,
        &during_outage,
    ] {
        assert_no_key_material(&log, key);
    }
}

#[tokio::test]
async fn created_and_rolled_keys_are_logged_by_id_only() {
    let captured = Captured::default();
    let _guard = trace_into(captured.subscriber());

    let h = Harness::new();
    let account = AccountId::from("acct_manage");
    let (id, first) = h.key("acct_manage", &["admin"]).await;
    let second = h.manager.roll(&account, &id, None).await.unwrap();
    let third = h
        .manager
        .roll(&account, &id, Some(Duration::from_secs(30)))
        .await
        .unwrap();

    let log = captured.text();
    let created = log
        .lines()
        .filter(|l| l.contains("action=\"create\""))
        .count();
    let rolls = log
        .lines()
        .filter(|l| l.contains("action=\"roll\""))
        .count();
    assert_eq!((created, rolls), (1, 2), "{log}");
    assert!(log.contains(&format!("key_id=\"{id}\"")), "{log}");
    for key in [
        first.as_str(),
        second.key.expose_secret(),
        third.key.expose_secret(),
    ] {
        assert_no_key_material(&log, key);
    }
    // The start shown in key lists is not logged either: a log names keys by id.
    assert!(!log.contains(second.key.start()), "{log}");
}

/// Inside tower-http's `TraceLayer`, keygate's events belong to the request span that
/// `TraceLayer` opens, so they read like the rest of a service's request logs.
#[tokio::test]
async fn audit_events_nest_in_the_trace_layer_request_span() {
    let captured = Captured::default();
    let _guard = trace_into(captured.subscriber());
    let h = Harness::new();
    let (id, key) = h.key("acct_trace", &[]).await;
    let mut svc = tower::ServiceBuilder::new()
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .layer(h.gate.layer())
        .service(Echo);
    assert_eq!(
        send(&mut svc, from_client(&[&bearer(&key)])).await.status,
        200
    );
    assert_eq!(send(&mut svc, from_client(&[])).await.status, 401);
    let log = captured.text();
    let accepted = log
        .lines()
        .find(|l| l.contains("api key accepted"))
        .expect("accepted event");
    assert!(
        accepted.contains("request{method=GET uri=/v1/things"),
        "{accepted}"
    );
    assert!(accepted.contains(id.as_str()));
    let refused = log
        .lines()
        .find(|l| l.contains("api key refused"))
        .expect("refused event");
    assert!(
        refused.contains("request{method=GET uri=/v1/things"),
        "{refused}"
    );
    assert!(refused.contains("outcome=\"unauthorized\""), "{refused}");
    assert_no_key_material(&log, &key);
}

/// A `TraceLayer` span that declares `key_id`, `account_id` and `outcome` gets them filled
/// in by keygate on every decision; nothing secret is recorded.
#[tokio::test]
async fn the_trace_layer_request_span_carries_key_id_account_and_outcome() {
    let captured = Captured::default();
    let buffer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || buffer.clone())
        .with_max_level(Level::TRACE)
        .with_ansi(false)
        .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
        .finish();
    let _guard = trace_into(subscriber);
    let h = Harness::new();
    let (id, key) = h.key("acct_span", &[]).await;
    let trace = tower_http::trace::TraceLayer::new_for_http().make_span_with(
        |req: &Request<Full<Bytes>>| {
            tracing::info_span!(
                "request",
                uri = %req.uri(),
                key_id = tracing::field::Empty,
                account_id = tracing::field::Empty,
                outcome = tracing::field::Empty,
            )
        },
    );
    let mut svc = tower::ServiceBuilder::new()
        .layer(trace)
        .layer(h.gate.layer())
        .service(Echo);
    assert_eq!(
        send(&mut svc, from_client(&[&bearer(&key)])).await.status,
        200
    );
    assert_eq!(send(&mut svc, from_client(&[])).await.status, 401);
    let log = captured.text();
    let closed: Vec<&str> = log.lines().filter(|l| l.contains(" close")).collect();
    assert_eq!(closed.len(), 2, "{log}");
    for field in [
        format!("key_id=\"{id}\""),
        "account_id=\"acct_span\"".to_owned(),
        "outcome=\"ok\"".to_owned(),
    ] {
        assert!(closed[0].contains(&field), "{}", closed[0]);
    }
    assert!(
        closed[1].contains("outcome=\"unauthorized\""),
        "{}",
        closed[1]
    );
    assert!(!closed[1].contains("key_id="), "{}", closed[1]);
    assert_no_key_material(&log, &key);
}
