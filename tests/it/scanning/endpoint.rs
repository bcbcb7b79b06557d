//! What an authentic alert does: the leak policies, the feedback, idempotence, the leak
//! record, and a batch of 1,000 tokens.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use keygate::leaks::{LeakChange, LeakOutcome, LeakPolicy, LeakReport};
use keygate::store::AccountId;
use keygate::{AuthError, KeyStoreWrite};
use tracing::Level;

use super::support::*;
use crate::common::*;

#[tokio::test]
async fn a_leaked_key_is_refused_on_its_very_next_request() {
    let s = Scanning::new(LeakPolicy::default()).await;
    let (id, key) = s.h.key("acct_1", &["read"]).await;
    let mut svc = s.h.service();
    assert_eq!(send(&mut svc, get("/x", Some(&key))).await.status, 200);

    let answer = s.post(&alert(&[&key])).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let feedback = answer.json();
    assert_eq!(
        feedback,
        serde_json::json!([{
            "token_hash": sha256_hex(&key),
            "token_type": "keygate_api_key",
            "label": "true_positive",
        }])
    );
    // The very next request: the cached copy is gone.
    let refused = send(&mut svc, get("/x", Some(&key))).await;
    assert_eq!(refused.status, 401);
    assert_eq!(refused.code(), "revoked_api_key");
    // The management view shows the leak.
    let view =
        s.h.manager
            .get(&AccountId::from("acct_1"), &id)
            .await
            .unwrap();
    assert!(view.revoked_at.is_some());
    let leak = serde_json::to_value(&view).unwrap()["leak"].clone();
    assert_eq!(leak["url"], "https://gist.github.com/someone/0123abcd");
    assert_eq!(leak["source"], "gist_content");
    assert_eq!(leak["token_type"], "keygate_api_key");
    assert!(leak["detected_at"].as_str().unwrap().ends_with('Z'));
    // The management API's document describes it.
    let doc = keygate::admin::openapi().to_json().unwrap();
    assert!(
        doc.contains("\"leak\"") && doc.contains("\"LeakView\""),
        "{doc}"
    );
}

#[tokio::test]
async fn the_disable_policy_disables_the_key_and_record_only_keeps_it_working() {
    let s = Scanning::new(LeakPolicy::Disable).await;
    let (id, key) = s.h.key("acct_1", &[]).await;
    assert!(s.h.gate.verify_key(&key).await.is_ok());
    assert_eq!(labels(&s.post(&alert(&[&key])).await), ["true_positive"]);
    assert!(matches!(
        s.h.gate.verify_key(&key).await,
        Err(AuthError::DisabledKey)
    ));
    let view =
        s.h.manager
            .get(&AccountId::from("acct_1"), &id)
            .await
            .unwrap();
    assert!(view.disabled && view.revoked_at.is_none() && view.leak.is_some());

    let s = Scanning::new(LeakPolicy::RecordOnly).await;
    let (id, key) = s.h.key("acct_1", &[]).await;
    assert_eq!(labels(&s.post(&alert(&[&key])).await), ["true_positive"]);
    assert!(s.h.gate.verify_key(&key).await.is_ok(), "record only");
    let view =
        s.h.manager
            .get(&AccountId::from("acct_1"), &id)
            .await
            .unwrap();
    assert!(!view.disabled && view.revoked_at.is_none());
    assert_eq!(view.leak.unwrap().source, "gist_content");
}

/// A `tracing` writer into a shared buffer.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
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
}

#[tokio::test(flavor = "current_thread")]
async fn the_same_alert_twice_has_the_effect_of_once() {
    let captured = Captured::default();
    let writer = captured.clone();
    let _guard = trace_into(
        tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_max_level(Level::TRACE)
            .with_ansi(false)
            .finish(),
    );
    let s = Scanning::new(LeakPolicy::Revoke).await;
    let (id, key) = s.h.key("acct_1", &[]).await;
    let body = alert(&[&key]);
    let first = s.post(&body).await;
    let after_first = s.h.store.get(&id).await.unwrap().unwrap();
    s.h.time.advance(Duration::from_secs(60));
    let second = s.post(&body).await;
    let after_second = s.h.store.get(&id).await.unwrap().unwrap();
    assert_eq!(first.body, second.body, "the same feedback");
    assert_eq!(after_first, after_second, "no second write");
    assert_eq!(
        after_first.revoked_at,
        after_first.leak.unwrap().detected_at.into()
    );
    let text = captured.text();
    assert_eq!(
        text.matches("action=\"leak\"").count(),
        1,
        "one audit event: {text}"
    );
    // The same token twice in one alert: handled once, labelled twice.
    let (_, other) = s.h.key("acct_1", &[]).await;
    assert_eq!(
        labels(&s.post(&alert(&[&other, &other])).await),
        ["true_positive", "true_positive"]
    );
    assert_eq!(captured.text().matches("action=\"leak\"").count(), 2);
}

#[tokio::test]
async fn unknown_and_malformed_tokens_are_false_positives_in_the_order_received() {
    let s = Scanning::new(LeakPolicy::Revoke).await;
    let (_, key) = s.h.key("acct_1", &[]).await;
    let format = s.h.gate.format();
    let unknown = format.generate(format.prefix("sk_test_").unwrap()).unwrap();
    let unknown = unknown.expose_secret();
    // A changed checksum character: the right shape, the wrong checksum.
    let mut near_miss = key.clone();
    let last = near_miss.pop().unwrap();
    near_miss.push(if last == 'a' { 'b' } else { 'a' });
    let tokens = [
        unknown,
        key.as_str(),
        &near_miss,
        "ghp_notours",
        "",
        "sk_live_short",
    ];
    let answer = s.post(&alert(&tokens)).await;
    assert_eq!(
        labels(&answer),
        [
            "false_positive",
            "true_positive",
            "false_positive",
            "false_positive",
            "false_positive",
            "false_positive"
        ]
    );
    let hashes: Vec<String> = answer
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["token_hash"].as_str().unwrap().to_owned())
        .collect();
    let expected: Vec<String> = tokens.iter().map(|t| sha256_hex(t)).collect();
    assert_eq!(hashes, expected);
    assert_eq!(
        s.h.store.lookups(),
        2,
        "only the two well-formed tokens reach the store"
    );
}

#[tokio::test]
async fn no_token_key_body_or_digest_in_the_stored_leak_record_or_the_logs() {
    let captured = Captured::default();
    let writer = captured.clone();
    let _guard = trace_into(
        tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_max_level(Level::TRACE)
            .with_ansi(false)
            .finish(),
    );
    let s = Scanning::new(LeakPolicy::RecordOnly).await;
    let (id, key) = s.h.key("acct_1", &[]).await;
    // A scanner's URL and source that carry the token itself.
    let body = serde_json::json!([{
        "token": key,
        "type": format!("type {key}"),
        "url": format!("https://github.com/o/r/blob/{key}/config.env"),
        "source": key,
    }])
    .to_string();
    assert_eq!(labels(&s.post(&body).await), ["true_positive"]);
    let record = s.h.store.get(&id).await.unwrap().unwrap();
    let leak = record.leak.clone().unwrap();
    assert_eq!(
        leak.url,
        "https://github.com/o/r/blob/[redacted]/config.env"
    );
    let secret_body = &key["sk_test_".len()..];
    let digest = record.digest.to_hex();
    let shown = format!(
        "{leak:?} {} {}",
        serde_json::to_string(&keygate::KeyView::from(&record)).unwrap(),
        captured.text()
    );
    for secret in [key.as_str(), secret_body, digest.as_str()] {
        assert!(!shown.contains(secret), "found key material in {shown}");
    }
}

#[tokio::test]
async fn a_leaked_previous_secret_ends_the_grace_period_and_the_current_one_keeps_working() {
    let s = Scanning::new(LeakPolicy::Revoke).await;
    let account = AccountId::from("acct_1");
    let (id, old) = s.h.key("acct_1", &[]).await;
    let rolled =
        s.h.manager
            .roll(&account, &id, Some(Duration::from_secs(3600)))
            .await
            .unwrap();
    let new = rolled.key.expose_secret().to_owned();
    assert!(
        s.h.gate.verify_key(&old).await.is_ok(),
        "in its grace period"
    );
    assert_eq!(labels(&s.post(&alert(&[&old])).await), ["true_positive"]);
    assert!(
        s.h.gate.verify_key(&old).await.is_err(),
        "the leaked secret is refused"
    );
    assert!(
        s.h.gate.verify_key(&new).await.is_ok(),
        "the current one works"
    );
    assert!(s.h.manager.get(&account, &id).await.unwrap().leak.is_some());
}

#[tokio::test]
async fn rolling_a_key_clears_its_leak_and_a_new_leak_is_recorded_again() {
    let s = Scanning::new(LeakPolicy::RecordOnly).await;
    let account = AccountId::from("acct_1");
    let (id, key) = s.h.key("acct_1", &[]).await;
    let report = LeakReport::new("t", "https://example.com/a", "content");
    let first =
        s.h.manager
            .report_leak(&key, &report, LeakPolicy::RecordOnly)
            .await
            .unwrap();
    assert!(matches!(
        first,
        LeakOutcome::Found {
            change: LeakChange::Recorded,
            ..
        }
    ));
    let rolled = s.h.manager.roll(&account, &id, None).await.unwrap();
    assert!(s.h.manager.get(&account, &id).await.unwrap().leak.is_none());
    let again =
        s.h.manager
            .report_leak(rolled.key.expose_secret(), &report, LeakPolicy::RecordOnly)
            .await
            .unwrap();
    assert!(matches!(
        again,
        LeakOutcome::Found {
            change: LeakChange::Recorded,
            ..
        }
    ));
    // The rolled-out secret is no key any more.
    let gone =
        s.h.manager
            .report_leak(&key, &report, LeakPolicy::Revoke)
            .await
            .unwrap();
    assert_eq!(gone, LeakOutcome::Unknown);
}

#[tokio::test]
async fn a_batch_of_1000_tokens_is_answered_within_the_limits() {
    let s = Scanning::new(LeakPolicy::Revoke).await;
    let format = s.h.gate.format().clone();
    let mut real = Vec::new();
    for _ in 0..10 {
        real.push(s.h.key("acct_1", &[]).await.1);
    }
    let unknown: Vec<String> = (0..990)
        .map(|_| {
            format
                .generate(format.prefix("sk_test_").unwrap())
                .unwrap()
                .expose_secret()
                .to_owned()
        })
        .collect();
    let mut tokens: Vec<&str> = unknown.iter().map(String::as_str).collect();
    for (i, key) in real.iter().enumerate() {
        tokens.insert(i * 100, key);
    }
    let body = alert(&tokens);
    assert!(
        body.len() < keygate::admin::scanning::DEFAULT_MAX_BODY_BYTES,
        "{} bytes",
        body.len()
    );
    let started = Instant::now();
    let answer = s.post(&body).await;
    let took = started.elapsed();
    assert_eq!(answer.status, 200);
    let labels = labels(&answer);
    assert_eq!(labels.len(), 1000);
    for (i, label) in labels.iter().enumerate() {
        let expected = if i % 100 == 0 {
            "true_positive"
        } else {
            "false_positive"
        };
        assert_eq!(label, expected, "token {i}");
    }
    for key in &real {
        assert!(matches!(
            s.h.gate.verify_key(key).await,
            Err(AuthError::RevokedKey)
        ));
    }
    println!(
        "secret scanning: 1,000 tokens ({} bytes, 10 real keys) answered in {took:?} (memory store, debug build)",
        body.len()
    );
}
