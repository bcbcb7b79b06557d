//! Counts survive whatever happens to the key's cache entry: a refresh, an invalidation,
//! a replacement and an eviction each keep every count made before it.

use std::time::Duration;

use keygate::activity::Outcome;
use keygate::gate::CacheConfig;
use keygate::manage::KeyUpdate;
use keygate::store::AccountId;

use super::{minutes, total};
use crate::common::*;

/// `n` accepted requests with `key`.
async fn accepted(h: &Harness, key: &str, n: usize) {
    let mut svc = h.service();
    for _ in 0..n {
        assert_eq!(send(&mut svc, get("/", Some(key))).await.status, 200);
    }
}

async fn accepted_total(
    h: &Harness,
    id: &keygate::store::KeyId,
    since: std::time::SystemTime,
) -> u64 {
    total(
        &minutes(&h.manager, "acct", id, since, 2).await,
        Outcome::Accepted,
    )
}

#[tokio::test]
async fn counts_survive_a_refresh_of_the_entry() {
    let h = Harness::with(|b| b.cache(CacheConfig::default().positive_ttl(Duration::from_secs(5))));
    let start = h.clock.now();
    let (id, key) = h.key("acct", &[]).await;
    accepted(&h, &key, 2).await;
    let lookups = h.store.lookups();
    h.time.advance(Duration::from_secs(6));
    accepted(&h, &key, 3).await;
    assert_eq!(
        h.store.lookups(),
        lookups + 1,
        "the entry was refreshed from the store"
    );
    assert_eq!(accepted_total(&h, &id, start).await, 5);
}

#[tokio::test]
async fn counts_survive_an_invalidation_of_the_entry() {
    let h = Harness::new();
    let start = h.clock.now();
    let (id, key) = h.key("acct", &[]).await;
    accepted(&h, &key, 2).await;
    let lookups = h.store.lookups();
    h.gate.invalidate_all();
    accepted(&h, &key, 3).await;
    assert_eq!(
        h.store.lookups(),
        lookups + 1,
        "looked up again after the invalidation"
    );
    assert_eq!(accepted_total(&h, &id, start).await, 5);
}

#[tokio::test]
async fn counts_survive_a_replacement_of_the_entry() {
    let h = Harness::new();
    let start = h.clock.now();
    let (id, key) = h.key("acct", &[]).await;
    accepted(&h, &key, 2).await;
    h.manager
        .update(
            &AccountId::from("acct"),
            &id,
            KeyUpdate::default().name("renamed"),
        )
        .await
        .unwrap();
    accepted(&h, &key, 3).await;
    // And a roll: the new secret's entry keeps counting for the same key.
    let rolled = h
        .manager
        .roll(&AccountId::from("acct"), &id, Some(Duration::from_secs(60)))
        .await
        .unwrap();
    accepted(&h, rolled.key.expose_secret(), 4).await;
    accepted(&h, &key, 1).await;
    assert_eq!(accepted_total(&h, &id, start).await, 10);
}

#[tokio::test]
async fn counts_survive_an_eviction_of_the_entry() {
    let h = Harness::with(|b| b.cache(CacheConfig::default().max_entries(2)));
    let start = h.clock.now();
    let (id, key) = h.key("acct", &[]).await;
    accepted(&h, &key, 2).await;
    // Other keys push it out of the bounded cache.
    let mut others = Vec::new();
    for _ in 0..8 {
        let (_, other) = h.key("acct", &[]).await;
        accepted(&h, &other, 1).await;
        others.push(other);
    }
    h.gate.run_maintenance();
    assert!(h.gate.stats().cached_entries <= 2, "{:?}", h.gate.stats());
    // Counted before and after, in another entry or none.
    accepted(&h, &key, 3).await;
    assert_eq!(accepted_total(&h, &id, start).await, 5);
}

#[tokio::test]
async fn a_flushed_key_no_entry_holds_leaves_no_counters_behind() {
    let h = Harness::with(|b| b.cache(CacheConfig::default().max_entries(1)));
    let (id, key) = h.key("acct", &[]).await;
    let start = h.clock.now();
    // On a thread of its own, so that the per-thread front of this one holds no copy.
    let gate = h.gate.clone();
    let key2 = key.clone();
    tokio::task::spawn_blocking(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let mut svc = tower::Layer::layer(&gate.layer(), Echo);
            assert_eq!(send(&mut svc, get("/", Some(&key2))).await.status, 200);
        });
    })
    .await
    .unwrap();
    assert_eq!(h.gate.stats().usage_cells, 1);
    h.gate.invalidate_all();
    h.gate.run_maintenance();
    h.gate.flush_usage().await.unwrap();
    assert_eq!(
        h.gate.stats().usage_cells,
        0,
        "flushed and held by no entry"
    );
    assert_eq!(accepted_total(&h, &id, start).await, 1);
}
