//! The `keygate` command line: mint, hash and check, offline.
#![cfg(feature = "cli")]

use std::io::Write;
use std::process::{Command, Output, Stdio};

use keygate::key::{KeyFormat, KeyHasher};

fn keygate(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_keygate"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the keygate binary runs");
    let mut input = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        // The command may exit before reading (a bad flag): ignore a closed pipe.
        let _ = input.write_all(text.as_bytes());
    }
    drop(input);
    child.wait_with_output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).unwrap()
}

#[test]
fn mint_prints_a_valid_key_and_its_digest() {
    let out = keygate(&["mint", "--prefix", "sk_live_"], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let mut lines = stdout.lines();
    let key = lines
        .next()
        .unwrap()
        .strip_prefix("key: ")
        .unwrap()
        .to_owned();
    let digest = lines.next().unwrap().strip_prefix("digest: ").unwrap();
    assert!(key.starts_with("sk_live_"));
    KeyFormat::default().parse(&key).expect("a valid key");
    assert_eq!(digest, KeyHasher::sha256().digest(&key).to_hex());
}

#[test]
fn mint_json_and_hash_agree_with_a_pepper() {
    let dir = std::env::temp_dir().join(format!("keygate-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pepper = dir.join("pepper");
    std::fs::write(&pepper, "server-side secret\n").unwrap();
    let pepper = pepper.to_str().unwrap();
    let out = keygate(
        &["mint", "--json", "--prefix", "tc_", "--pepper-file", pepper],
        None,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let minted: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let key = minted["key"].as_str().unwrap();
    let expected = KeyHasher::with_pepper(b"server-side secret")
        .digest(key)
        .to_hex();
    assert_eq!(minted["digest"], expected);
    let hashed = keygate(
        &["hash", "--pepper-file", pepper],
        Some(&format!("{key}\n")),
    );
    assert!(hashed.status.success());
    assert_eq!(text(&hashed.stdout).trim(), expected);
    // Hashing never prints the key back.
    assert!(!text(&hashed.stdout).contains(key));
}

#[test]
fn check_accepts_real_keys_and_names_what_is_wrong_with_others() {
    let format = KeyFormat::default();
    let key = format.generate(format.prefix("sk_test_").unwrap()).unwrap();
    let ok = keygate(&["check"], Some(key.expose_secret()));
    assert!(ok.status.success());
    assert_eq!(text(&ok.stdout).trim(), "ok: prefix sk_test_ (test)");

    let mut typo = key.expose_secret().to_owned();
    let last = typo.pop().unwrap();
    typo.push(if last == 'a' { 'b' } else { 'a' });
    let bad = keygate(&["check", &typo], None);
    assert!(!bad.status.success());
    assert!(
        text(&bad.stderr).contains("checksum"),
        "{}",
        text(&bad.stderr)
    );
    assert!(!text(&bad.stderr).contains(&typo), "the key is not echoed");

    let junk = keygate(&["check", "hello"], None);
    assert!(text(&junk.stderr).contains("known prefix"));
}

#[test]
fn unknown_prefixes_and_missing_input_are_clear_errors() {
    let out = keygate(&["mint", "--prefix", "pk_"], None);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("unknown prefix 'pk_'"));
    let out = keygate(&["hash"], Some(""));
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("no key on stdin"));
    let out = keygate(
        &["hash", "--pepper-file", "/nonexistent/pepper"],
        Some("x\n"),
    );
    assert!(text(&out.stderr).contains("cannot read the pepper file"));
}
