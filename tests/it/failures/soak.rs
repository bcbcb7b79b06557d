//! Races and soak: mixed traffic while keys are created, revoked and rolled concurrently.
//!
//! The default run is short. Set `KEYGATE_SOAK_SECONDS=N` for a long run by hand; it
//! prints its counts either way.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use crate::common::*;
use keygate::store::{AccountId, KeyId, RateLimit};
use keygate::NewKey;

#[derive(Default)]
struct Tally {
    requests: AtomicUsize,
    ok: AtomicUsize,
    refused: AtomicUsize,
    violations: AtomicUsize,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mixed_traffic_with_concurrent_revokes_and_rolls_keeps_every_invariant() {
    let deadline = std::env::var("KEYGATE_SOAK_SECONDS")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .map(|s| Instant::now() + Duration::from_secs(s));
    let rounds_per_worker = if deadline.is_some() { usize::MAX } else { 1500 };

    // The manual clock stands still, so give ordinary keys a quota no soak exhausts.
    let h = Arc::new(Harness::with(|b| {
        b.rate_limits(
            keygate::ratelimit::RateLimitConfig::default()
                .default_quota(Some(RateLimit::new(1_000_000, u32::MAX / 2))),
        )
    }));
    let account = AccountId::from("acct");
    let mut live: Vec<(KeyId, String)> = Vec::new();
    for _ in 0..20 {
        live.push(h.key("acct", &["read"]).await);
    }
    let (_, limited) = h
        .key_with(
            "acct",
            NewKey::named("limited")
                .scopes(["read"])
                .rate_limit(RateLimit::new(1, 5)),
        )
        .await;
    let keys = Arc::new(RwLock::new(live));
    // Secrets that must never work again: revoked keys, and rolled-out secrets.
    let dead: Arc<RwLock<HashSet<String>>> = Arc::default();
    let tally = Arc::new(Tally::default());
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));

    let mut workers = Vec::new();
    for w in 0..4 {
        let (h, keys, dead, tally, limited, stop) = (
            h.clone(),
            keys.clone(),
            dead.clone(),
            tally.clone(),
            limited.clone(),
            stop.clone(),
        );
        workers.push(tokio::spawn(async move {
            let mut svc = h.service();
            let mut scoped = tower::Layer::layer(&h.gate.layer().require_any(["write"]), Echo);
            let mut round = 0usize;
            while round < rounds_per_worker && !stop.load(Ordering::Relaxed) {
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    break;
                }
                round += 1;
                let pick = (round * 7 + w) % 10;
                let (key, expect_dead) = match pick {
                    0 => ("sk_test_not-even-close".to_owned(), true),
                    1 => (format!("sk_test_{}", "A".repeat(38)), true),
                    2 => (limited.clone(), false),
                    _ => {
                        let list = keys.read().unwrap();
                        let (_, k) = &list[(round + w) % list.len()];
                        (k.clone(), false)
                    }
                };
                let was_dead = expect_dead || dead.read().unwrap().contains(&key);
                let res = if pick == 2 && round.is_multiple_of(2) {
                    // The limited key on a route it lacks the scope for: must cost nothing.
                    send(&mut scoped, get("/", Some(&key))).await
                } else if pick == 2 {
                    continue;
                } else {
                    send(&mut svc, get("/", Some(&key))).await
                };
                tally.requests.fetch_add(1, Ordering::Relaxed);
                // Cached requests never wait; let the lifecycle task interleave.
                tokio::task::yield_now().await;
                if res.status == 200 {
                    tally.ok.fetch_add(1, Ordering::Relaxed);
                    if was_dead {
                        tally.violations.fetch_add(1, Ordering::Relaxed);
                        eprintln!("violation: a dead secret succeeded");
                    }
                } else {
                    tally.refused.fetch_add(1, Ordering::Relaxed);
                    assert!(
                        res.status.is_client_error() || res.status == 503,
                        "{}",
                        res.status
                    );
                }
            }
        }));
    }

    // Lifecycle churn: revoke, roll and create while traffic flows.
    let churn = {
        let (h, keys, dead, stop) = (h.clone(), keys.clone(), dead.clone(), stop.clone());
        let account = account.clone();
        tokio::spawn(async move {
            let mut i = 0usize;
            let mut changes = 0usize;
            while !stop.load(Ordering::Relaxed) && (deadline.is_some() || i < 60) {
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    break;
                }
                i += 1;
                let (id, secret) = {
                    let list = keys.read().unwrap();
                    list[i % list.len()].clone()
                };
                match i % 3 {
                    0 => {
                        h.manager.revoke(&account, &id).await.unwrap();
                        dead.write().unwrap().insert(secret.clone());
                        let fresh = h.key("acct", &["read"]).await;
                        let mut list = keys.write().unwrap();
                        if let Some(slot) = list.iter_mut().find(|(k, _)| *k == id) {
                            *slot = fresh;
                        }
                    }
                    1 => {
                        let rolled = h.manager.roll(&account, &id, None).await.unwrap();
                        dead.write().unwrap().insert(secret.clone());
                        let mut list = keys.write().unwrap();
                        if let Some(slot) = list.iter_mut().find(|(k, _)| *k == id) {
                            slot.1 = rolled.key.expose_secret().to_owned();
                        }
                    }
                    _ => {
                        let fresh = h.key("acct2", &["read"]).await;
                        h.manager.revoke(&"acct2".into(), &fresh.0).await.unwrap();
                    }
                }
                changes += 1;
                tokio::task::yield_now().await;
            }
            changes
        })
    };

    let changes = churn.await.expect("churn task did not panic");
    for w in workers {
        w.await.expect("no worker panicked");
    }
    stop.store(true, Ordering::Relaxed);

    // The limited key's 5-request burst is still whole: refused requests cost nothing.
    let mut svc = h.service();
    let mut allowed = 0;
    for _ in 0..10 {
        if send(&mut svc, get("/", Some(&limited))).await.status == 200 {
            allowed += 1;
        }
    }
    assert_eq!(allowed, 5, "refused requests consumed quota");

    // Every dead secret is refused now.
    let dead: Vec<String> = dead.read().unwrap().iter().cloned().collect();
    for secret in &dead {
        let res = send(&mut svc, get("/", Some(secret))).await;
        assert_eq!(res.status, 401, "a dead secret works after the soak");
    }

    // State returns to its bounds.
    h.time.advance(Duration::from_secs(3600));
    h.gate.run_maintenance();
    let stats = h.gate.stats();
    assert_eq!(stats.inflight_lookups, 0);
    assert_eq!(stats.rate_limit_buckets, 0);
    assert!(stats.cached_entries <= keygate::gate::CacheConfig::default().max_entries);

    let t = &tally;
    println!(
        "soak: requests={} ok={} refused={} lifecycle_changes={} violations={}",
        t.requests.load(Ordering::Relaxed),
        t.ok.load(Ordering::Relaxed),
        t.refused.load(Ordering::Relaxed),
        changes,
        t.violations.load(Ordering::Relaxed),
    );
    assert_eq!(t.violations.load(Ordering::Relaxed), 0);
    assert!(t.ok.load(Ordering::Relaxed) > 0 && t.refused.load(Ordering::Relaxed) > 0);
}
