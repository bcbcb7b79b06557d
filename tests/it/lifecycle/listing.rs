//! Listing keys: pages, limits, cursors, and stability under concurrent changes.

use crate::common::*;
use crate::lifecycle::support::*;
use keygate::store::KeyId;
use keygate::store::KeyStatusFilter;
use keygate::NewKey;
use std::collections::{BTreeSet, HashSet};
use std::time::Duration;

// ---------------------------------------------------------------------------------------
// Listing

#[tokio::test]
async fn list_pages_through_120_keys_oldest_first_with_default_and_maximum_limits() {
    let h = uncapped();
    let manager = h.manager.clone();
    let mut ids = Vec::new();
    for i in 0..120 {
        let created = manager
            .create(acct("acct_1"), NewKey::named(format!("key {i}")))
            .await
            .unwrap();
        ids.push(created.view.id);
        // One millisecond apart, so "oldest first" has a single answer.
        h.time.advance(Duration::from_millis(1));
    }
    // Another account's keys never show up.
    h.key("acct_2", &[]).await;

    for (limit, sizes) in [
        (None, vec![25, 25, 25, 25, 20]),
        (Some(100), vec![100, 20]),
        (Some(1), vec![1; 120]),
        (Some(120 / 8), vec![15; 8]),
    ] {
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        let mut page_sizes = Vec::new();
        loop {
            let page = manager
                .list(&acct("acct_1"), &page_query(limit, cursor.as_deref()))
                .await
                .unwrap();
            page_sizes.push(page.data.len());
            seen.extend(page.data.iter().map(|v| v.id.clone()));
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        assert_eq!(page_sizes, sizes, "limit {limit:?}");
        assert_eq!(seen, ids, "limit {limit:?}: every key once, oldest first");
    }
}

#[tokio::test]
async fn list_refuses_limits_outside_1_to_100_and_foreign_cursors() {
    let h = Harness::new();
    h.key("acct_1", &[]).await;
    for limit in [0, 101, 1000] {
        invalid_field(
            h.manager
                .list(&acct("acct_1"), &page_query(Some(limit), None))
                .await,
            "limit",
        );
    }
    assert_eq!(
        h.manager
            .list(&acct("acct_1"), &page_query(Some(100), None))
            .await
            .unwrap()
            .data
            .len(),
        1
    );
    // (Twelve characters of position, then an id of at most 64.)
    for cursor in ["not a cursor", "../../etc", &"x".repeat(12 + 65), "ak_é"] {
        invalid_field(
            h.manager
                .list(&acct("acct_1"), &page_query(None, Some(cursor)))
                .await,
            "cursor",
        );
    }
    // An empty cursor is the first page.
    let page = h
        .manager
        .list(&acct("acct_1"), &page_query(None, Some("")))
        .await
        .unwrap();
    assert_eq!(page.data.len(), 1);
    assert_eq!(page.next_cursor, None);
}

#[tokio::test]
async fn list_is_stable_while_keys_are_created_and_revoked_between_pages() {
    let h = uncapped();
    let manager = h.manager.clone();
    let account = acct("acct_1");
    let mut initial = Vec::new();
    for i in 0..120 {
        let created = manager
            .create(account.clone(), NewKey::named(format!("key {i}")))
            .await
            .unwrap();
        initial.push(created.view.id);
        if i % 3 == 0 {
            h.time.advance(Duration::from_millis(1));
        }
    }

    let mut seen: Vec<KeyId> = Vec::new();
    let mut cursor: Option<String> = None;
    let mut round = 0;
    loop {
        let page = manager
            .list(
                &account,
                &page_query(None, cursor.as_deref()).status(KeyStatusFilter::All),
            )
            .await
            .unwrap();
        seen.extend(page.data.iter().map(|v| v.id.clone()));
        // Between pages: new keys (some in the same millisecond as old ones, so their ids
        // sort among them), and revocations both behind and ahead of the cursor.
        for _ in 0..4 {
            manager
                .create(account.clone(), NewKey::named("meanwhile"))
                .await
                .unwrap();
        }
        manager.revoke(&account, &initial[round * 7]).await.unwrap();
        manager
            .revoke(&account, &initial[119 - round * 5])
            .await
            .unwrap();
        round += 1;
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }

    let unique: HashSet<&KeyId> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "no key appears twice");
    for id in &initial {
        assert_eq!(
            seen.iter().filter(|s| *s == id).count(),
            1,
            "{id} existed from the start and must appear exactly once"
        );
    }
    let mut sorted = seen.clone();
    sorted.sort();
    assert_eq!(sorted, seen, "pages are in id order");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_is_stable_while_another_task_creates_and_revokes_concurrently() {
    let h = uncapped();
    let manager = h.manager.clone();
    let account = acct("acct_1");
    let mut initial = Vec::new();
    for i in 0..120 {
        let created = manager
            .create(account.clone(), NewKey::named(format!("key {i}")))
            .await
            .unwrap();
        initial.push(created.view.id);
    }
    let writer = {
        let (manager, account, initial) = (manager.clone(), account.clone(), initial.clone());
        tokio::spawn(async move {
            for i in 0..60 {
                manager
                    .create(account.clone(), NewKey::named("concurrent"))
                    .await
                    .unwrap();
                manager.revoke(&account, &initial[i * 2]).await.unwrap();
                tokio::task::yield_now().await;
            }
        })
    };
    let mut seen: Vec<KeyId> = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = manager
            .list(
                &account,
                &page_query(Some(10), cursor.as_deref()).status(KeyStatusFilter::All),
            )
            .await
            .unwrap();
        seen.extend(page.data.iter().map(|v| v.id.clone()));
        tokio::task::yield_now().await;
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    writer.await.unwrap();
    let unique: HashSet<&KeyId> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "no key appears twice");
    let seen: BTreeSet<&KeyId> = seen.iter().collect();
    for id in &initial {
        assert!(seen.contains(id), "{id} was skipped");
    }
}
