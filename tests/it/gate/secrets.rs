//! Secrets: no plaintext in Debug output, `verify_key`, peppered digests.

use crate::common::*;
use crate::gate::support::*;
use keygate::key::KeyHasher;
use keygate::{AuthError, KeyStoreWrite, Keygate, NewKey};

// ---------------------------------------------------------------- secrets, verify_key, pepper

#[tokio::test]
async fn plaintext_never_appears_in_debug_output() {
    let h = Harness::new();
    let created = h
        .manager
        .create(account(), NewKey::named("debug me").scopes(["admin"]))
        .await
        .unwrap();
    let key = created.key.expose_secret().to_owned();
    let secret = &key[created.key.prefix().len()..];
    let identity = h.gate.verify_key(&key).await.unwrap();
    let record = h.store.inner.get(&created.view.id).await.unwrap().unwrap();
    let digest_hex = record.digest.to_hex();

    let outputs = [
        format!("{created:?}"),
        format!("{created:#?}"),
        format!("{:?}", created.key),
        format!("{}", created.key),
        format!("{identity:?}"),
        format!("{record:?}"),
        format!("{record:#?}"),
        serde_json::to_string(&identity).unwrap(),
        serde_json::to_string(&created.view).unwrap(),
        format!("{:?}", h.gate),
    ];
    for out in &outputs {
        assert!(!out.contains(secret), "secret in {out}");
        assert!(!out.contains(&digest_hex), "digest in {out}");
    }
    assert!(format!("{:?}", created.key).contains("[redacted]"));
    assert_eq!(
        format!("{}", created.key),
        format!("{}[redacted]", created.key.prefix())
    );
}

#[tokio::test]
async fn verify_key_checks_format_store_and_status() {
    let h = Harness::new();
    let (id, key) = h.key(ACCOUNT, &["admin"]).await;
    let identity = h.gate.verify_key(&key).await.unwrap();
    assert_eq!(identity.key_id(), &id);
    assert_eq!(identity.account_id().as_str(), ACCOUNT);
    assert!(identity.has_scope("admin"));

    assert_eq!(
        h.gate.verify_key(&typo(&key)).await.unwrap_err(),
        AuthError::InvalidKey
    );
    assert_eq!(h.store.lookups(), 1, "a typo never reaches the store");
    assert_eq!(
        h.gate.verify_key(&unknown_key("tc_")).await.unwrap_err(),
        AuthError::InvalidKey
    );
    h.manager.revoke(&account(), &id).await.unwrap();
    assert_eq!(
        h.gate.verify_key(&key).await.unwrap_err(),
        AuthError::RevokedKey
    );
}

#[tokio::test]
async fn peppered_digests_round_trip_and_differ_from_plain_sha256() {
    let pepper = b"server-side pepper, kept outside the database";
    let h = Harness::with(|b| b.hasher(KeyHasher::with_pepper(pepper)));
    let (id, key) = h.key(ACCOUNT, &[]).await;
    let answer = send(&mut h.service(), get("/", Some(&key))).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.json()["id"], id.as_str());

    let record = h.store.inner.get(&id).await.unwrap().unwrap();
    assert_eq!(record.digest, KeyHasher::with_pepper(pepper).digest(&key));
    assert_ne!(record.digest, KeyHasher::sha256().digest(&key));

    for hasher in [
        KeyHasher::sha256(),
        KeyHasher::with_pepper(b"another pepper"),
    ] {
        let other = Keygate::builder(h.store.clone()).hasher(hasher).build();
        let refused = send(&mut service_for(&other), get("/", Some(&key))).await;
        assert_json_error(&refused, 401, "invalid_api_key");
    }
}
