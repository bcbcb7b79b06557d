//! Leaks over PostgreSQL: the record survives in the `leak` column, a key leaked through
//! instance A's endpoint is refused by instance B as soon as the change reaches it, and
//! two instances handling the same alert at once apply it once.
#![cfg(feature = "postgres")]

use std::sync::Arc;
use tokio::time::Instant;

use keygate::admin::scanning::ScanningKeys;
use keygate::invalidation::ListenerStatus;
use keygate::leaks::{LeakChange, LeakOutcome, LeakPolicy, LeakReport};
use keygate::store::{AccountId, PgStore};
use keygate::{KeyManager, KeyStoreWrite, Keygate, NewKey};

use super::support::*;
use crate::common::pg::*;
use crate::common::propagation::*;

async fn pg_instance(schema: &str, name: &str) -> (Arc<PgStore>, Keygate, KeyManager) {
    let store = Arc::new(store_on(schema, name).await);
    let (gate, manager) = Keygate::managed(store.clone()).build();
    (store, gate, manager)
}

#[tokio::test]
async fn a_key_leaked_through_instance_a_is_refused_by_instance_b() {
    let schema = schema_name("leak");
    let (store_a, _, manager_a) = pg_instance(&schema, "leak_a").await;
    let (store_b, gate_b, manager_b) = pg_instance(&schema, "leak_b").await;
    let listener = store_b.listen(Arc::new(gate_b.clone()));
    within(&listener, ListenerStatus::Live).await;
    let github = GithubKey::new("github-key-1");
    let keys = ScanningKeys::from_document(document(&[&github]).as_bytes()).unwrap();
    let addr = serve_endpoint(&manager_a, keys, LeakPolicy::Revoke, None).await;
    let account = AccountId::new("acct");
    let mut times = Vec::new();
    for i in 0..5 {
        let created = manager_a
            .create(account.clone(), NewKey::named(format!("k{i}")))
            .await
            .unwrap();
        let key = created.key.expose_secret();
        applied(&listener, 2 * i + 1).await;
        assert!(gate_b.verify_key(key).await.is_ok(), "B caches the key");
        let body = alert(&[key]);
        let started = Instant::now();
        let answer = post(
            addr,
            &body,
            Some((&github.id, &github.sign(body.as_bytes()))),
        )
        .await;
        assert_eq!(labels(&answer), ["true_positive"]);
        times.push(refused_within(&gate_b, key, started).await);
        // The leak is in the database, and B's manager shows it.
        let view = manager_b.get(&account, &created.view.id).await.unwrap();
        let leak = view.leak.expect("leak record read back from PostgreSQL");
        assert_eq!(leak.source, "gist_content");
        let record = store_a.get(&created.view.id).await.unwrap().unwrap();
        assert_eq!(
            record.leak.unwrap().url,
            "https://gist.github.com/someone/0123abcd"
        );
    }
    report("secret-scanning leak, endpoint on A to refusal on B", times);
    drop(listener);
    drop_schema(&schema).await;
}

#[tokio::test]
async fn two_instances_handling_the_same_alert_at_once_apply_it_once() {
    let schema = schema_name("leakrace");
    let (_, _, manager_a) = pg_instance(&schema, "leakrace_a").await;
    let (store_b, _, manager_b) = pg_instance(&schema, "leakrace_b").await;
    let account = AccountId::new("acct");
    let report = LeakReport::new("keygate_api_key", "https://example.com/x", "content");
    let rounds = 30;
    let mut conflicts_won_by_b = 0;
    for i in 0..rounds {
        let created = manager_a
            .create(account.clone(), NewKey::named(format!("k{i}")))
            .await
            .unwrap();
        let key = created.key.expose_secret().to_owned();
        let (a, b) = tokio::join!(
            manager_a.report_leak(&key, &report, LeakPolicy::Revoke),
            manager_b.report_leak(&key, &report, LeakPolicy::Revoke),
        );
        let changes: Vec<LeakChange> = [a.unwrap(), b.unwrap()]
            .into_iter()
            .map(|o| match o {
                LeakOutcome::Found { change, .. } => change,
                other => panic!("{other:?}"),
            })
            .collect();
        let applied = changes
            .iter()
            .filter(|c| **c == LeakChange::Revoked)
            .count();
        let unchanged = changes
            .iter()
            .filter(|c| **c == LeakChange::Unchanged)
            .count();
        assert_eq!((applied, unchanged), (1, 1), "round {i}: {changes:?}");
        if changes[1] == LeakChange::Revoked {
            conflicts_won_by_b += 1;
        }
        let record = store_b.get(&created.view.id).await.unwrap().unwrap();
        assert_eq!(record.version, 1, "one write");
    }
    println!(
        "leak race: {rounds} rounds, each applied exactly once (B applied {conflicts_won_by_b})"
    );
    drop_schema(&schema).await;
}

#[tokio::test]
async fn migration_7_adds_the_leak_column() {
    let schema = schema_name("leakmig");
    let store = store_on(&schema, "leakmig").await;
    let rows = crate::common::services::pg_admin()
        .await
        .query(
            &format!("SELECT version FROM \"{schema}\".schema_migrations ORDER BY version"),
            &[],
        )
        .await
        .unwrap();
    let versions: Vec<i32> = rows.iter().map(|r| r.get(0)).collect();
    assert!(versions.contains(&7), "{versions:?}");
    drop(store);
    drop_schema(&schema).await;
}
