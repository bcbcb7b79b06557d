//! `keygate import`: existing keys, given as plaintext or as SHA-256 digests, written into
//! a real PostgreSQL store, where they are found by their digest. (Accepting
//! non-keygate formats on requests is per-prefix formats' job, issue 14.)
#![cfg(all(feature = "cli", feature = "postgres"))]

#[path = "common/pg.rs"]
mod pg;
#[path = "common/services.rs"]
mod services;

use std::io::Write;
use std::process::{Command, Stdio};

use keygate::store::PgStore;
use keygate::KeyHasher;

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

fn import(url: &str, schema: &str, input: &str) -> (bool, String, String) {
    let config = std::env::temp_dir().join(format!("{schema}.toml"));
    std::fs::write(&config, CONFIG).unwrap();
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
    assert_eq!(
        keygate::manage::rfc3339(record.created_at),
        "2024-01-02T02:04:05.000Z"
    );

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
