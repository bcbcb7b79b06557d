//! `KeyManager::import`: keys made elsewhere, by plaintext or by SHA-256 digest.

use std::time::Duration;

use crate::common::*;
use keygate::key::{Alphabet, Checksum, KeyBody};
use keygate::key::{KeyDigest, KeyFormat, KeyHasher, KeyPrefix};
use keygate::manage::{ImportedKey, ListQuery, ManagerConfig};
use keygate::store::{AccountId, KeyId};
use keygate::{Environment, KeyStoreWrite, ManageError, NewKey};

const TENBYTE: &str = "sk_live_1234567890abcdef";

/// Tenbyte's 16-hex-character keys, and keygate's own neutral `tc_` keys.
fn tenbyte_format() -> KeyFormat {
    let hex = KeyBody::new(Alphabet::Hex, 16..=16, Checksum::Off).unwrap();
    KeyFormat::new([
        KeyPrefix::new("sk_live_", Some(Environment::Live))
            .unwrap()
            .with_body(hex.clone()),
        KeyPrefix::new("sk_test_", Some(Environment::Test))
            .unwrap()
            .with_body(hex),
        KeyPrefix::new("tc_", None).unwrap(),
    ])
    .unwrap()
}

fn acct() -> AccountId {
    AccountId::from("acct_1")
}

fn sha256(key: &str) -> KeyDigest {
    KeyHasher::sha256().digest(key)
}

#[tokio::test]
async fn a_plaintext_import_keeps_id_name_scopes_created_time_and_environment() {
    let h = Harness::with(|b| b.format(tenbyte_format()));
    let created = t0() - Duration::from_secs(86_400 * 400);
    // A lookup before the import caches "no such key"; the import must clear it.
    assert!(h.gate.verify_key(TENBYTE).await.is_err());
    let (new_id, _) = h.key_with("acct_1", NewKey::named("new")).await;
    let view = h
        .manager
        .import(
            acct(),
            ImportedKey::plaintext("legacy CDN key", TENBYTE)
                .id(KeyId::new("key_0042"))
                .scopes(["cdn:read"])
                .created_at(created),
        )
        .await
        .unwrap();
    assert_eq!(view.id.as_str(), "key_0042");
    assert_eq!(view.name, "legacy CDN key");
    assert_eq!(view.environment, Some(Environment::Live));
    assert_eq!(view.prefix, "sk_live_");
    assert_eq!(view.start, "sk_live_1234");
    assert_eq!(view.created_at, rfc3339(created));
    let identity = h.gate.verify_key(TENBYTE).await.unwrap();
    assert_eq!(identity.key_id().as_str(), "key_0042");
    assert!(identity.has_scope("cdn:read"));
    // Oldest first: the imported key, created 400 days ago, lists first.
    let page = h.manager.list(&acct(), &ListQuery::new()).await.unwrap();
    let ids: Vec<&str> = page.data.iter().map(|v| v.id.as_str()).collect();
    assert_eq!(ids, ["key_0042", new_id.as_str()]);
    // Nothing shows the plaintext.
    let shown = format!(
        "{:?} {} {:?}",
        ImportedKey::plaintext("x", TENBYTE),
        serde_json::to_string(&view).unwrap(),
        h.store.inner.get(&view.id).await.unwrap()
    );
    assert!(!shown.contains("1234567890abcdef"), "{shown}");
}

#[tokio::test]
async fn a_digest_import_verifies_the_plaintext_it_was_made_from() {
    let h = Harness::with(|b| b.format(tenbyte_format()));
    let view = h
        .manager
        .import(
            acct(),
            ImportedKey::sha256_digest("hashed elsewhere", sha256(TENBYTE), "sk_live_")
                .environment(Environment::Live)
                .id(KeyId::new("key_7")),
        )
        .await
        .unwrap();
    assert_eq!(view.start, "sk_live_");
    assert_eq!(view.environment, Some(Environment::Live));
    let identity = h.gate.verify_key(TENBYTE).await.unwrap();
    assert_eq!(identity.key_id().as_str(), "key_7");

    // A peppered deployment's digests are not plain SHA-256: refused, nothing written.
    let peppered = Harness::with(|b| b.hasher(KeyHasher::with_pepper(b"pepper")));
    let err = peppered
        .manager
        .import(
            acct(),
            ImportedKey::sha256_digest("x", sha256(TENBYTE), "sk_live_"),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, ManageError::InvalidRequest(_)), "{err:?}");
    assert_eq!(peppered.store.inner.len(), 0);
}

#[tokio::test]
async fn duplicates_by_id_or_by_secret_are_refused_and_write_nothing() {
    let h = Harness::with(|b| b.format(tenbyte_format()));
    let first = ImportedKey::plaintext("a", TENBYTE).id(KeyId::new("key_1"));
    h.manager.import(acct(), first).await.unwrap();
    let cases = [
        ImportedKey::plaintext("same id", "sk_live_ffffffffffffffff").id(KeyId::new("key_1")),
        ImportedKey::plaintext("same key", TENBYTE).id(KeyId::new("key_2")),
        ImportedKey::sha256_digest("same digest", sha256(TENBYTE), "sk_live_"),
    ];
    for case in cases {
        let err = h.manager.import(acct(), case).await.unwrap_err();
        assert!(matches!(err, ManageError::AlreadyExists(_)), "{err:?}");
        assert_eq!(err.status(), 409);
        assert_eq!(err.code(), "api_key_exists");
    }
    assert_eq!(h.store.inner.len(), 1);
    assert!(h.gate.verify_key("sk_live_ffffffffffffffff").await.is_err());
}

#[tokio::test]
async fn imports_respect_the_active_key_cap() {
    let h = Harness::with(|b| {
        b.format(tenbyte_format())
            .manager_config(ManagerConfig::default().max_active_keys(Some(2)))
    });
    for key in ["sk_live_0000000000000001", "sk_live_0000000000000002"] {
        h.manager
            .import(acct(), ImportedKey::plaintext("k", key))
            .await
            .unwrap();
    }
    let err = h
        .manager
        .import(
            acct(),
            ImportedKey::plaintext("k", "sk_live_0000000000000003"),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, ManageError::LimitReached { limit: 2 }),
        "{err:?}"
    );
}

#[tokio::test]
async fn plaintexts_must_match_the_formats_and_environments_of_the_deployment() {
    let h = Harness::with(|b| b.format(tenbyte_format()).environment(Environment::Live));
    let bad = [
        (
            "not a key of any format",
            ImportedKey::plaintext("k", "pk_1234567890abcdef"),
        ),
        ("too short", ImportedKey::plaintext("k", "sk_live_12345")),
        (
            "another environment",
            ImportedKey::plaintext("k", "sk_test_1234567890abcdef"),
        ),
        (
            "a neutral key where none are accepted",
            ImportedKey::sha256_digest("k", sha256("tc_x"), "tc_"),
        ),
        (
            "an environment that contradicts the prefix",
            ImportedKey::plaintext("k", TENBYTE).environment(Environment::Test),
        ),
        (
            "a malformed id",
            ImportedKey::plaintext("k", TENBYTE).id(KeyId::new("bad id!")),
        ),
        (
            "a creation time in the future",
            ImportedKey::plaintext("k", TENBYTE).created_at(t0() + Duration::from_secs(60)),
        ),
        ("an empty name", ImportedKey::plaintext("", TENBYTE)),
    ];
    for (what, key) in bad {
        let err = h.manager.import(acct(), key).await.unwrap_err();
        assert!(
            matches!(&err, ManageError::InvalidRequest(_)),
            "{what}: {err:?}"
        );
        assert!(!err.to_string().contains("1234567890"), "{what}: {err}");
    }
    assert_eq!(h.store.inner.len(), 0);
}

/// A key of the default format, and its SHA-256 digest: what a digest import is given.
fn generated(environment: Environment) -> (String, KeyDigest) {
    let format = KeyFormat::default();
    let key = format
        .generate(format.prefix_for(Some(environment)).unwrap())
        .unwrap()
        .expose_secret()
        .to_owned();
    let digest = sha256(&key);
    (key, digest)
}

fn refused_as(err: &ManageError, words: &str) {
    assert!(matches!(err, ManageError::InvalidRequest(_)), "{err:?}");
    assert_eq!(err.status(), 400);
    assert!(err.to_string().contains(words), "{err}");
}

#[tokio::test]
async fn a_live_only_deployment_refuses_a_test_digest_however_it_is_labelled() {
    let h = Harness::with(|b| b.environment(Environment::Live));
    let (_, digest) = generated(Environment::Test);
    let err = h
        .manager
        .import(
            acct(),
            ImportedKey::sha256_digest("test key", digest, "sk_test_")
                .environment(Environment::Live),
        )
        .await
        .unwrap_err();
    refused_as(&err, "prefix 'sk_test_' is for test keys, not live keys");
    let err = h
        .manager
        .import(
            acct(),
            ImportedKey::sha256_digest("test key", digest, "sk_test_"),
        )
        .await
        .unwrap_err();
    refused_as(&err, "only accepts live keys");
    assert_eq!(h.store.inner.len(), 0, "nothing written");
}

#[tokio::test]
async fn a_digest_with_a_deployment_prefix_takes_its_environment_and_keeps_it_when_rolled() {
    let h = Harness::new();
    let (live_key, live) = generated(Environment::Live);
    let err = h
        .manager
        .import(
            acct(),
            ImportedKey::sha256_digest("live key", live, "sk_live_").environment(Environment::Test),
        )
        .await
        .unwrap_err();
    refused_as(&err, "prefix 'sk_live_' is for live keys, not test keys");
    assert_eq!(h.store.inner.len(), 0, "nothing written");

    // Unlabelled, each digest takes its prefix's environment.
    let (test_key, test) = generated(Environment::Test);
    for (key, digest, prefix, environment) in [
        (&live_key, live, "sk_live_", Environment::Live),
        (&test_key, test, "sk_test_", Environment::Test),
    ] {
        let view = h
            .manager
            .import(acct(), ImportedKey::sha256_digest("k", digest, prefix))
            .await
            .unwrap();
        assert_eq!(view.environment, Some(environment), "{prefix}");
        let identity = h.gate.verify_key(key).await.unwrap();
        assert_eq!(identity.environment(), Some(environment), "{prefix}");
        // A roll keeps the prefix and the environment together.
        let rolled = h.manager.roll(&acct(), &view.id, None).await.unwrap();
        let secret = rolled.key.expose_secret();
        assert!(secret.starts_with(prefix), "{prefix}");
        let identity = h.gate.verify_key(secret).await.unwrap();
        assert_eq!(identity.environment(), Some(environment), "{prefix}");
    }
}

/// RFC 3339 with milliseconds, UTC: the management API's form of a time.
fn rfc3339(at: std::time::SystemTime) -> String {
    humantime::format_rfc3339_millis(at).to_string()
}
