//! Store faults: errors, hangs and panics fail closed with 503; serve-stale is opt-in.

use std::time::Duration;

use crate::common::*;
use keygate::gate::CacheConfig;
use keygate::KeyManager;

fn no_cache(serve_stale: Option<Duration>) -> CacheConfig {
    CacheConfig::default()
        .positive_ttl(Duration::ZERO)
        .negative_ttl(Duration::ZERO)
        .serve_stale(serve_stale)
}

#[tokio::test]
async fn store_error_fails_closed_and_is_not_cached() {
    let h = Harness::new();
    let (_, key) = h.key("acct", &[]).await;
    let mut svc = h.service();
    h.store.set_fault(Fault::Error);
    let down = send(&mut svc, get("/", Some(&key))).await;
    assert_eq!(down.status, 503);
    assert_eq!(down.code(), "store_unavailable");
    assert!(down.header("www-authenticate").is_none());
    h.store.set_fault(Fault::None);
    let up = send(&mut svc, get("/", Some(&key))).await;
    assert_eq!(up.status, 200, "the error was not cached");
    assert_eq!(h.store.lookups(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_hanging_store_times_out_with_503() {
    let h = Harness::with(|b| b.store_timeout(Duration::from_millis(250)));
    let (_, key) = h.key("acct", &[]).await;
    h.store.set_fault(Fault::Hang);
    let started = tokio::time::Instant::now();
    let res = send(&mut h.service(), get("/", Some(&key))).await;
    assert_eq!(res.status, 503);
    assert_eq!(res.code(), "store_unavailable");
    assert_eq!(started.elapsed(), Duration::from_millis(250));
    assert_eq!(h.gate.stats().inflight_lookups, 0);
}

#[tokio::test(start_paused = true)]
async fn the_default_store_timeout_is_two_seconds() {
    let h = Harness::new();
    let (_, key) = h.key("acct", &[]).await;
    h.store.set_fault(Fault::Hang);
    let started = tokio::time::Instant::now();
    assert_eq!(
        send(&mut h.service(), get("/", Some(&key))).await.status,
        503
    );
    assert_eq!(started.elapsed(), Duration::from_secs(2));
}

#[tokio::test]
async fn a_panicking_store_fails_that_request_and_the_service_keeps_serving() {
    let h = Harness::new();
    let (_, first) = h.key("acct", &[]).await;
    let (_, second) = h.key("acct", &[]).await;
    let mut svc = h.service();
    h.store.set_fault(Fault::Panic);
    let res = send(&mut svc, get("/", Some(&first))).await;
    assert_eq!(res.status, 503);
    assert_eq!(res.code(), "store_unavailable");
    h.store.set_fault(Fault::None);
    assert_eq!(send(&mut svc, get("/", Some(&second))).await.status, 200);
    assert_eq!(send(&mut svc, get("/", Some(&first))).await.status, 200);
}

#[tokio::test]
async fn serve_stale_is_off_by_default() {
    let h = Harness::with(|b| b.cache(no_cache(None)));
    let (_, key) = h.key("acct", &[]).await;
    let mut svc = h.service();
    assert_eq!(send(&mut svc, get("/", Some(&key))).await.status, 200);
    h.store.set_fault(Fault::Error);
    assert_eq!(send(&mut svc, get("/", Some(&key))).await.status, 503);
}

#[tokio::test]
async fn serve_stale_keeps_a_recently_verified_key_working_within_the_window() {
    let h = Harness::with(|b| b.cache(no_cache(Some(Duration::from_secs(60)))));
    let (_, key) = h.key("acct", &[]).await;
    let (_, never_seen) = h.key("acct", &[]).await;
    let mut svc = h.service();
    assert_eq!(send(&mut svc, get("/", Some(&key))).await.status, 200);
    h.store.set_fault(Fault::Error);
    assert_eq!(send(&mut svc, get("/", Some(&key))).await.status, 200);
    assert_eq!(
        send(&mut svc, get("/", Some(&never_seen))).await.status,
        503,
        "a key never verified here is not served stale"
    );
    h.time.advance(Duration::from_secs(61));
    assert_eq!(send(&mut svc, get("/", Some(&key))).await.status, 503);
}

#[tokio::test]
async fn serve_stale_never_revives_a_key_revoked_through_this_process() {
    let h = Harness::with(|b| b.cache(no_cache(Some(Duration::from_secs(60)))));
    let (id, key) = h.key("acct", &[]).await;
    let mut svc = h.service();
    assert_eq!(send(&mut svc, get("/", Some(&key))).await.status, 200);
    h.manager.revoke(&"acct".into(), &id).await.unwrap();
    h.store.set_fault(Fault::Error);
    assert_eq!(send(&mut svc, get("/", Some(&key))).await.status, 503);
}

#[tokio::test]
async fn serve_stale_still_applies_expiry() {
    let h = Harness::with(|b| b.cache(no_cache(Some(Duration::from_secs(600)))));
    let (_, key) = h
        .key_with(
            "acct",
            keygate::NewKey::named("short").expires_at(t0() + Duration::from_secs(30)),
        )
        .await;
    let mut svc = h.service();
    assert_eq!(send(&mut svc, get("/", Some(&key))).await.status, 200);
    h.store.set_fault(Fault::Error);
    h.time.advance(Duration::from_secs(31));
    let res = send(&mut svc, get("/", Some(&key))).await;
    assert_eq!(res.code(), "expired_api_key");
}

/// Injects every fault kind many times over fresh keys and counts what failed closed.
#[tokio::test(start_paused = true)]
async fn every_injected_fault_fails_closed() {
    let h = Harness::with(|b| b.store_timeout(Duration::from_millis(100)));
    let manager: &KeyManager = &h.manager;
    let mut keys = Vec::new();
    for i in 0..40 {
        let created = manager
            .create("acct".into(), keygate::NewKey::named(format!("k{i}")))
            .await
            .unwrap();
        keys.push(created.key.expose_secret().to_owned());
    }
    let faults = [Fault::Error, Fault::Hang, Fault::Panic, Fault::Error];
    let mut svc = h.service();
    let (mut injected, mut closed) = (0, 0);
    for (i, key) in keys.iter().enumerate() {
        h.store.set_fault(faults[i % faults.len()].clone());
        injected += 1;
        let res = send(&mut svc, get("/", Some(key))).await;
        if res.status == 503 && res.code() == "store_unavailable" {
            closed += 1;
        }
    }
    println!("faults injected: {injected}, requests failed closed: {closed}");
    assert_eq!(closed, injected);
    h.store.set_fault(Fault::Delay(Duration::from_millis(50)));
    for key in &keys {
        assert_eq!(send(&mut svc, get("/", Some(key))).await.status, 200);
    }
}
