//! `keygate import`: existing keys, given as plaintext or as SHA-256 digests, written into
//! a real PostgreSQL store, where they are found by their digest. (Accepting
//! non-keygate formats on requests is the per-prefix formats' job: `key::KeyBody`.)
#![cfg(all(feature = "cli", feature = "postgres"))]

use crate::common::pg;
use crate::common::services;
use std::io::Write;
use std::process::{Command, Stdio};

use keygate::key::KeyHasher;
use keygate::store::PgStore;

/// The deployment's configuration: Tenbyte-shaped live keys (16 to 48 characters, no
/// checksum) and keygate's environment-neutral `tc_` keys.
const CONFIG: &str = r#"
[[prefixes]]
prefix = "sk_live_"
environment = "live"
length = { min = 16, max = 48 }
checksum = "off"

[[prefixes]]
prefix = "tc_"
"#;

/// keygate's default key formats: `sk_live_`, `sk_test_` and `tc_`.
const DEFAULT_PREFIXES: &str = "";

fn import(url: &str, schema: &str, input: &str) -> (bool, String, String) {
    import_with(url, schema, input, CONFIG)
}

fn import_with(url: &str, schema: &str, input: &str, config_text: &str) -> (bool, String, String) {
    let config = std::env::temp_dir().join(format!("{schema}.toml"));
    std::fs::write(&config, config_text).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_keygate"))
        .args(["import", "--database-url", url, "--schema", schema])
        .arg("--config")
        .arg(&config)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let _ = child.stdin.take().unwrap().write_all(input.as_bytes());
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_from_another_system_are_imported_and_found_by_digest() {
    let url = services::postgres_url();
    let schema = pg::schema_name("cli_import");
    let tenbyte = "sk_live_1234567890abcdef";
    let hashed_elsewhere = "tc_legacy_key_from_a_sha256_table";
    let lines = format!(
        "{}\n{}\n",
        serde_json::json!({"id": "ak_tenbyte", "account_id": "acct_1", "name": "Tenbyte example",
            "key": tenbyte, "prefix": "sk_live_", "environment": "live", "scopes": ["read"],
            "created_at": "2024-01-02T03:04:05+01:00"}),
        serde_json::json!({"id": "ak_legacy", "account_id": "acct_1", "name": "legacy",
            "digest": KeyHasher::sha256().digest(hashed_elsewhere).to_hex(), "prefix": "tc_"}),
    );
    let (ok, stdout, stderr) = import(&url, &schema, &lines);
    assert!(ok, "{stderr}");
    assert_eq!(stdout.trim(), "imported 2 keys");
    assert!(!stdout.contains(tenbyte) && !stderr.contains(tenbyte));

    let store = PgStore::builder(&url)
        .unwrap()
        .schema(schema.clone())
        .build()
        .unwrap();
    for (key, id) in [(tenbyte, "ak_tenbyte"), (hashed_elsewhere, "ak_legacy")] {
        let digest = KeyHasher::sha256().digest(key);
        let record = keygate::KeyStore::find_by_digest(&store, &digest)
            .await
            .unwrap()
            .expect("imported");
        assert_eq!(record.id.as_str(), id);
    }
    let record = keygate::KeyStore::find_by_digest(&store, &KeyHasher::sha256().digest(tenbyte))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.start, "sk_live_1234");
    assert_eq!(rfc3339(record.created_at), "2024-01-02T02:04:05.000Z");

    // A bad line names its number, never its key, and nothing after it is written.
    let bad = format!(
        "{}\n",
        serde_json::json!({"id": "ak_bad", "account_id": "acct_1", "name": "x",
            "key": "sk_live_secretsecret", "digest": "00"})
    );
    let (ok, _, stderr) = import(&url, &schema, &bad);
    assert!(!ok);
    assert!(
        stderr.contains("line 1: give exactly one of `key` and `digest`"),
        "{stderr}"
    );
    assert!(!stderr.contains("secretsecret"));
    pg::drop_schema(&schema).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_digest_takes_its_prefixs_environment_and_a_contradicting_label_is_refused() {
    let url = services::postgres_url();
    let schema = pg::schema_name("cli_import_env");
    let digest = |key: &str| KeyHasher::sha256().digest(key).to_hex();
    let contradicting = format!(
        "{}\n",
        serde_json::json!({"id": "ak_wrong", "account_id": "acct_1", "name": "x",
            "digest": digest("sk_test_labelled_live"), "prefix": "sk_test_",
            "environment": "live"})
    );
    let (ok, _, stderr) = import_with(&url, &schema, &contradicting, DEFAULT_PREFIXES);
    assert!(!ok);
    assert!(
        stderr.contains("line 1:") && stderr.contains("prefix 'sk_test_' is for test keys"),
        "{stderr}"
    );

    let unlabelled = format!(
        "{}\n{}\n",
        serde_json::json!({"id": "ak_live", "account_id": "acct_1", "name": "live",
            "digest": digest("sk_live_unlabelled"), "prefix": "sk_live_"}),
        serde_json::json!({"id": "ak_test", "account_id": "acct_1", "name": "test",
            "digest": digest("sk_test_unlabelled"), "prefix": "sk_test_"}),
    );
    let (ok, stdout, stderr) = import_with(&url, &schema, &unlabelled, DEFAULT_PREFIXES);
    assert!(ok, "{stderr}");
    assert_eq!(stdout.trim(), "imported 2 keys");
    let store = PgStore::builder(&url)
        .unwrap()
        .schema(schema.clone())
        .build()
        .unwrap();
    for (id, environment) in [
        ("ak_live", keygate::Environment::Live),
        ("ak_test", keygate::Environment::Test),
    ] {
        let record = keygate::KeyStoreWrite::get(&store, &keygate::store::KeyId::new(id))
            .await
            .unwrap()
            .expect("imported");
        assert_eq!(record.environment, Some(environment), "{id}");
    }
    assert!(
        keygate::KeyStoreWrite::get(&store, &keygate::store::KeyId::new("ak_wrong"))
            .await
            .unwrap()
            .is_none(),
        "the refused line wrote nothing"
    );
    pg::drop_schema(&schema).await;
}

/// RFC 3339 with milliseconds, UTC: the management API's form of a time.
fn rfc3339(at: std::time::SystemTime) -> String {
    humantime::format_rfc3339_millis(at).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_import_checks_keys_as_the_key_manager_does() {
    let url = services::postgres_url();
    let schema = pg::schema_name("cli_import_checks");
    let line = |id: &str, key: &str| {
        format!(
            "{}\n",
            serde_json::json!({"id": id, "account_id": "acct_1", "name": "k", "key": key})
        )
    };
    let key = "sk_live_abcdefghijklmnop";
    let (ok, _, stderr) = import(&url, &schema, &line("ak_once", key));
    assert!(ok, "{stderr}");

    // The same secret again: refused as a duplicate, naming the line, not the key.
    let (ok, _, stderr) = import(&url, &schema, &line("ak_twice", key));
    assert!(!ok);
    assert!(stderr.contains("line 1:"), "{stderr}");
    assert!(stderr.contains("already"), "{stderr}");
    assert!(!stderr.contains("abcdefghijklmnop"), "{stderr}");

    // A key that matches none of the deployment's formats (a body too short).
    let (ok, _, stderr) = import(&url, &schema, &line("ak_short", "sk_live_tooshort"));
    assert!(!ok);
    assert!(stderr.contains("line 1:"), "{stderr}");
    assert!(!stderr.contains("tooshort"), "{stderr}");
    pg::drop_schema(&schema).await;
}
