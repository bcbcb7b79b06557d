//! Per-prefix key formats on the request path: keys of other systems' shapes are
//! accepted, and junk in those shapes is refused before any store lookup.

use crate::common::*;
use keygate::key::{Alphabet, Checksum, KeyBody};
use keygate::key::{KeyFormat, KeyPrefix};
use keygate::Environment;

fn tenuo_and_tenbyte() -> KeyFormat {
    KeyFormat::new([
        KeyPrefix::new("tc_", None)
            .unwrap()
            .with_body(KeyBody::new(Alphabet::Base64Url, 43..=43, Checksum::Off).unwrap()),
        KeyPrefix::new("sk_live_", Some(Environment::Live))
            .unwrap()
            .with_body(KeyBody::new(Alphabet::Hex, 16..=16, Checksum::Off).unwrap()),
    ])
    .unwrap()
}

#[tokio::test]
async fn junk_in_a_checksumless_format_is_refused_with_zero_store_lookups() {
    let h = Harness::with(|b| b.format(tenuo_and_tenbyte()));
    let mut svc = h.service();
    let junk = [
        format!("tc_{}", "a".repeat(42)),
        format!("tc_{}", "a".repeat(44)),
        format!("tc_{}+", "a".repeat(42)),
        format!("tc_{}", "\u{e9}".repeat(21)),
        "sk_live_1234567890abcde".to_owned(),
        "sk_live_1234567890ABCDEF".to_owned(),
        "sk_live_1234567890abcdeg".to_owned(),
        "sk_test_1234567890abcdef".to_owned(),
        "1234567890abcdef".to_owned(),
        format!("sk_live_{}", "0".repeat(10_000)),
    ];
    for key in &junk {
        let answer = send(&mut svc, get("/", Some(key))).await;
        assert!(
            answer.status == 401 || answer.status == 400,
            "{key}: {answer:?}"
        );
        if answer.status == 401 {
            assert_eq!(answer.json()["error"]["code"], "invalid_api_key", "{key}");
        }
    }
    assert_eq!(h.store.lookups(), 0, "no junk reached the store");

    // The trade-off: a well-shaped key that does not exist costs one lookup.
    let unknown = format!("tc_{}", "Q".repeat(43));
    assert_eq!(send(&mut svc, get("/", Some(&unknown))).await.status, 401);
    assert_eq!(h.store.lookups(), 1);
}

#[tokio::test]
async fn keys_generated_in_a_custom_format_are_accepted() {
    let h = Harness::with(|b| b.format(tenuo_and_tenbyte()));
    let (_, key) = h
        .key_with("acct_1", keygate::NewKey::named("tenuo").prefix("tc_"))
        .await;
    assert_eq!(key.len(), 3 + 43);
    assert!(key[3..]
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
    let mut svc = h.service();
    assert_eq!(send(&mut svc, get("/", Some(&key))).await.status, 200);
    // Tenbyte's shape is too short to generate: creating one is a clear refusal.
    let err = h
        .manager
        .create(
            "acct_1".into(),
            keygate::NewKey::named("tenbyte").prefix("sk_live_"),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, keygate::ManageError::InvalidRequest(m) if m.contains("import")),
        "{err:?}"
    );
}
