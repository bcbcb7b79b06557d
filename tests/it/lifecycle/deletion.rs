//! Hard delete, distinct from revoke, and what `list` returns: the status filter and the
//! order of keys created in one millisecond.

use std::time::Duration;

use crate::common::*;
use keygate::manage::ListQuery;
use keygate::store::KeyStatusFilter;
use keygate::store::{AccountId, KeyId};
use keygate::{KeyStoreWrite, ManageError, NewKey, StoreError};

fn ids(page: &keygate::manage::Page) -> Vec<KeyId> {
    page.data.iter().map(|v| v.id.clone()).collect()
}

async fn list(h: &Harness, status: KeyStatusFilter) -> Vec<KeyId> {
    let page = h
        .manager
        .list(&acct("acct_1"), &ListQuery::new().limit(100).status(status))
        .await
        .unwrap();
    ids(&page)
}

#[tokio::test]
async fn a_deleted_key_is_gone_from_get_and_list_and_refused_even_when_cached() {
    let h = Harness::new();
    let (id, key) = h.key("acct_1", &[]).await;
    let (other, _) = h.key("acct_1", &[]).await;
    let mut svc = h.service();
    // Cached in moka, then copied into this thread's front.
    for _ in 0..3 {
        assert_eq!(send(&mut svc, get("/", Some(&key))).await.status, 200);
    }
    let lookups = h.store.lookups();

    h.manager.delete(&acct("acct_1"), &id).await.unwrap();

    let answer = send(&mut svc, get("/", Some(&key))).await;
    assert_eq!(answer.status, 401);
    assert_eq!(answer.json()["error"]["code"], "invalid_api_key");
    assert_eq!(
        h.store.lookups(),
        lookups + 1,
        "the cached copy was dropped"
    );
    assert!(matches!(
        h.manager.get(&acct("acct_1"), &id).await,
        Err(ManageError::NotFound)
    ));
    assert_eq!(list(&h, KeyStatusFilter::All).await, vec![other.clone()]);
    assert!(h.store.inner.get(&id).await.unwrap().is_none());
    assert!(matches!(
        h.manager.delete(&acct("acct_1"), &id).await,
        Err(ManageError::NotFound)
    ));
    // The other key is untouched.
    assert!(h.manager.get(&acct("acct_1"), &other).await.is_ok());
}

#[tokio::test]
async fn delete_removes_revoked_keys_and_the_grace_secret_of_a_rolled_one() {
    let h = Harness::new();
    let (revoked, _) = h.key("acct_1", &[]).await;
    h.manager.revoke(&acct("acct_1"), &revoked).await.unwrap();
    h.manager.delete(&acct("acct_1"), &revoked).await.unwrap();
    assert!(list(&h, KeyStatusFilter::All).await.is_empty());

    let (id, old) = h.key("acct_1", &[]).await;
    let rolled = h
        .manager
        .roll(&acct("acct_1"), &id, Some(Duration::from_secs(3600)))
        .await
        .unwrap();
    let mut svc = h.service();
    assert_eq!(send(&mut svc, get("/", Some(&old))).await.status, 200);
    let new = rolled.key.expose_secret();
    assert_eq!(send(&mut svc, get("/", Some(new))).await.status, 200);
    h.manager.delete(&acct("acct_1"), &id).await.unwrap();
    assert_eq!(send(&mut svc, get("/", Some(&old))).await.status, 401);
    assert_eq!(send(&mut svc, get("/", Some(new))).await.status, 401);
}

#[tokio::test]
async fn delete_is_confined_to_the_account_and_to_no_wider_keys() {
    let h = Harness::new();
    let (foreign, foreign_key) = h.key("acct_2", &[]).await;
    assert!(matches!(
        h.manager.delete(&acct("acct_1"), &foreign).await,
        Err(ManageError::NotFound)
    ));
    let (_, actor_key) = h.key("acct_1", &["read"]).await;
    let (wide, _) = h.key("acct_1", &["read", "write"]).await;
    let actor = h.gate.verify_key(&actor_key).await.unwrap();
    let acting = h.manager.acting_as(&actor);
    assert!(matches!(
        acting.delete(&wide).await,
        Err(ManageError::Escalation(_))
    ));
    assert!(matches!(
        acting.delete(&foreign).await,
        Err(ManageError::NotFound)
    ));
    let (narrow, _) = h.key("acct_1", &["read"]).await;
    acting.delete(&narrow).await.unwrap();
    assert!(h.manager.get(&acct("acct_1"), &narrow).await.is_err());
    assert!(h.manager.get(&acct("acct_1"), &wide).await.is_ok());
    assert!(h.gate.verify_key(&foreign_key).await.is_ok());
}

#[tokio::test]
async fn list_shows_active_keys_by_default_and_revoked_ones_on_request() {
    let h = Harness::new();
    let (a, _) = h.key("acct_1", &[]).await;
    let (b, _) = h.key("acct_1", &[]).await;
    let (c, _) = h.key("acct_1", &[]).await;
    h.manager.revoke(&acct("acct_1"), &b).await.unwrap();
    // Disabled and expired keys are not revoked: they stay in the default listing.
    h.manager
        .update(
            &acct("acct_1"),
            &c,
            keygate::manage::KeyUpdate::default().disabled(true),
        )
        .await
        .unwrap();

    let default = h
        .manager
        .list(&acct("acct_1"), &ListQuery::default())
        .await
        .unwrap();
    assert_eq!(ids(&default), [a.clone(), c.clone()]);
    assert_eq!(
        list(&h, KeyStatusFilter::Active).await,
        [a.clone(), c.clone()]
    );
    assert_eq!(list(&h, KeyStatusFilter::Revoked).await, vec![b.clone()]);
    assert_eq!(list(&h, KeyStatusFilter::All).await, [a, b, c]);
}

#[tokio::test]
async fn keys_created_in_one_millisecond_list_in_creation_order_across_pages() {
    let h = Harness::with(|b| {
        b.manager_config(keygate::manage::ManagerConfig::default().max_active_keys(None))
    });
    // The manual clock stands still: every key is created in the same millisecond.
    let mut created = Vec::new();
    for i in 0..60 {
        let (id, _) = h
            .key_with("acct_1", NewKey::named(format!("key {i}")))
            .await;
        created.push(id);
    }
    let mut seen = Vec::new();
    let mut query = ListQuery::new().limit(7);
    loop {
        let page = h.manager.list(&acct("acct_1"), &query).await.unwrap();
        seen.extend(ids(&page));
        match page.next_cursor {
            Some(cursor) => query = query.cursor(cursor),
            None => break,
        }
    }
    assert_eq!(seen, created);
}

#[tokio::test]
async fn a_cursor_survives_the_deletion_of_the_key_it_ends_on() {
    let h = Harness::new();
    let mut created = Vec::new();
    for _ in 0..5 {
        created.push(h.key("acct_1", &[]).await.0);
        h.time.advance(Duration::from_millis(1));
    }
    let first = h
        .manager
        .list(&acct("acct_1"), &ListQuery::new().limit(2))
        .await
        .unwrap();
    assert_eq!(ids(&first), created[..2]);
    h.manager
        .delete(&acct("acct_1"), &created[1])
        .await
        .unwrap();
    let cursor = first.next_cursor.unwrap();
    let rest = h
        .manager
        .list(&acct("acct_1"), &ListQuery::new().cursor(cursor))
        .await
        .unwrap();
    assert_eq!(ids(&rest), created[2..]);
}

#[tokio::test]
async fn deleting_a_key_that_does_not_exist_is_not_found_and_changes_nothing() {
    let h = Harness::new();
    let (id, _) = h.key("acct_1", &[]).await;
    let missing = KeyId::new("ak_neverexisted");
    assert!(matches!(
        h.manager.delete(&acct("acct_1"), &missing).await,
        Err(ManageError::NotFound)
    ));
    assert!(matches!(
        h.store.inner.delete(&missing).await,
        Err(StoreError::NotFound)
    ));
    assert!(h.manager.get(&AccountId::from("acct_1"), &id).await.is_ok());
}

fn acct(name: &str) -> AccountId {
    AccountId::from(name)
}
