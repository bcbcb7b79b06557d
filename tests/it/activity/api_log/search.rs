//! Operators' key search across accounts, and erasing an account's events.

use std::time::Duration;

use keygate::store::AccountId;
use keygate::{Keygate, MemoryStore, NewKey};

use super::{all_events, logged};
use crate::common::{get, send};

#[tokio::test]
async fn operators_find_a_key_across_accounts_by_id_hint_and_plaintext() {
    let (_gate, manager) = Keygate::managed(MemoryStore::new()).build();
    let _mine = manager
        .create("acct_1".into(), NewKey::named("one"))
        .await
        .unwrap();
    let theirs = manager
        .create("acct_2".into(), NewKey::named("two"))
        .await
        .unwrap();
    let id = theirs.view.id.clone();

    let by_id = manager.find_key_by_id(&id).await.unwrap().unwrap();
    assert_eq!(by_id.account_id.as_str(), "acct_2");
    assert!(manager
        .find_key_by_id(&"ak_nope".into())
        .await
        .unwrap()
        .is_none());

    let hint = theirs.view.start.clone();
    let found = manager.find_keys_by_hint(&hint).await.unwrap();
    assert!(found.iter().any(|k| k.id == id), "{found:?}");
    assert!(found.iter().all(|k| k.start == hint));
    let dotted = manager
        .find_keys_by_hint(&format!("{hint}…"))
        .await
        .unwrap();
    assert_eq!(dotted.len(), found.len());
    let bad = manager.find_keys_by_hint("").await.unwrap_err();
    assert_eq!(bad.code(), "invalid_request");

    let plaintext = theirs.key.expose_secret().to_owned();
    let reported = manager
        .find_key_by_plaintext(&plaintext)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (reported.id.as_str(), reported.account_id.as_str()),
        (id.as_str(), "acct_2")
    );
    // Rolled with a grace period, the old secret still names the key.
    let account = AccountId::from("acct_2");
    manager
        .roll(&account, &id, Some(Duration::from_secs(60)))
        .await
        .unwrap();
    assert_eq!(
        manager
            .find_key_by_plaintext(&plaintext)
            .await
            .unwrap()
            .unwrap()
            .id,
        id
    );
    // A revoked key is found too, with its state.
    let gone = manager
        .create("acct_3".into(), NewKey::named("gone"))
        .await
        .unwrap();
    manager
        .revoke(&"acct_3".into(), &gone.view.id)
        .await
        .unwrap();
    let found = manager
        .find_key_by_plaintext(gone.key.expose_secret())
        .await
        .unwrap()
        .unwrap();
    assert!(found.revoked_at.is_some());
    let mut wrong = plaintext.clone();
    wrong.replace_range(12..13, if &plaintext[12..13] == "a" { "b" } else { "a" });
    assert!(manager
        .find_key_by_plaintext(&wrong)
        .await
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn erasing_an_account_deletes_its_events_and_leaves_another_accounts() {
    let (h, _log) = logged(|c| c);
    let (leaving, leaving_key) = h.key("acct_leaving", &[]).await;
    let (staying, staying_key) = h.key("acct_staying", &[]).await;
    h.manager
        .revoke(&"acct_leaving".into(), &leaving)
        .await
        .unwrap();
    h.manager
        .revoke(&"acct_staying".into(), &staying)
        .await
        .unwrap();
    let mut svc = h.service();
    for _ in 0..3 {
        send(&mut svc, get("/x", Some(&leaving_key))).await;
        send(&mut svc, get("/x", Some(&staying_key))).await;
    }
    // Not flushed yet: erasure writes what is buffered first, so nothing survives it.
    let erased = h
        .manager
        .erase_account_events(&"acct_leaving".into())
        .await
        .unwrap();
    assert_eq!(erased, 3);
    assert!(all_events(&h.manager, "acct_leaving").await.is_empty());
    assert_eq!(all_events(&h.manager, "acct_staying").await.len(), 3);
}
