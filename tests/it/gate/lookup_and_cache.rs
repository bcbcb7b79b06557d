//! Checking the key: checksum before lookup, status, the cache, store failures and
//! coalesced misses.

use crate::common::*;
use crate::gate::support::*;
use keygate::gate::CacheConfig;
use keygate::manage::KeyUpdate;
use keygate::manage::Revoked;
use keygate::{KeyStoreWrite, NewKey};
use std::time::Duration;

// ---------------------------------------------------------------- verification

#[tokio::test]
async fn bad_checksum_is_401_invalid_api_key_without_any_store_lookup() {
    let h = Harness::new();
    let (_, key) = h.key(ACCOUNT, &[]).await;
    let mut svc = h.service();
    for bad in [
        typo(&key),
        format!("{key}0"),
        key[..key.len() - 1].to_owned(),
        "sk_live_notakey".to_owned(),
        "nope_0123456789".to_owned(),
    ] {
        let answer = send(&mut svc, get("/", Some(&bad))).await;
        assert_json_error(&answer, 401, "invalid_api_key");
        assert_eq!(
            answer.header("www-authenticate"),
            Some(
                "Bearer realm=\"api\", error=\"invalid_token\", \
                 error_description=\"The provided API key is invalid\""
            )
        );
    }
    assert_eq!(
        h.store.lookups(),
        0,
        "malformed keys must not reach the store"
    );
    assert_eq!(h.gate.stats().cached_entries, 0);
}

#[tokio::test]
async fn unknown_well_formed_key_is_401_and_negatively_cached() {
    let h = Harness::new();
    let stranger = unknown_key("sk_test_");
    let mut svc = h.service();
    let first = send(&mut svc, get("/", Some(&stranger))).await;
    assert_json_error(&first, 401, "invalid_api_key");
    assert_eq!(h.store.lookups(), 1);
    let second = send(&mut svc, get("/", Some(&stranger))).await;
    assert_json_error(&second, 401, "invalid_api_key");
    assert_eq!(h.store.lookups(), 1, "the miss was not cached");
}

#[tokio::test]
async fn valid_key_is_cached_after_one_lookup() {
    let h = Harness::new();
    let (_, key) = h.key(ACCOUNT, &[]).await;
    let mut svc = h.service();
    for _ in 0..5 {
        assert_eq!(send(&mut svc, get("/", Some(&key))).await.status, 200);
    }
    assert_eq!(h.store.lookups(), 1);
}

#[tokio::test]
async fn expired_key_is_refused_even_while_cached() {
    let h =
        Harness::with(|b| b.cache(CacheConfig::default().positive_ttl(Duration::from_secs(3600))));
    let expires = t0() + Duration::from_secs(60);
    let (_, key) = h
        .key_with(ACCOUNT, NewKey::named("short lived").expires_at(expires))
        .await;
    let mut svc = h.service();
    assert_eq!(send(&mut svc, get("/", Some(&key))).await.status, 200);
    h.time.advance(Duration::from_secs(59));
    assert_eq!(send(&mut svc, get("/", Some(&key))).await.status, 200);
    h.time.advance(Duration::from_secs(1));
    let answer = send(&mut svc, get("/", Some(&key))).await;
    assert_json_error(&answer, 401, "expired_api_key");
    assert_eq!(h.store.lookups(), 1, "refused from the cached copy");
}

#[tokio::test]
async fn revoked_key_is_refused_even_when_cached() {
    let h = Harness::new();
    let (id, key) = h.key(ACCOUNT, &[]).await;
    let mut svc = h.service();
    assert_eq!(send(&mut svc, get("/", Some(&key))).await.status, 200);
    assert_eq!(h.store.lookups(), 1);
    assert_eq!(
        h.manager.revoke(&account(), &id).await.unwrap(),
        Revoked::Now
    );
    let answer = send(&mut svc, get("/", Some(&key))).await;
    assert_json_error(&answer, 401, "revoked_api_key");
    let again = send(&mut svc, get("/", Some(&key))).await;
    assert_json_error(&again, 401, "revoked_api_key");
}

#[tokio::test]
async fn key_revoked_behind_the_cache_is_refused_once_invalidated() {
    let h = Harness::new();
    let (id, key) = h.key(ACCOUNT, &[]).await;
    let mut svc = h.service();
    assert_eq!(send(&mut svc, get("/", Some(&key))).await.status, 200);

    // Another process revokes the key straight in the store.
    let mut record = h.store.inner.get(&id).await.unwrap().unwrap();
    record.revoked_at = Some(h.clock.now());
    h.store.inner.replace(record.clone()).await.unwrap();
    assert_eq!(
        send(&mut svc, get("/", Some(&key))).await.status,
        200,
        "served from the cache until invalidated"
    );

    h.gate.invalidate(&record);
    let answer = send(&mut svc, get("/", Some(&key))).await;
    assert_json_error(&answer, 401, "revoked_api_key");
    assert_eq!(h.store.lookups(), 2);
}

#[tokio::test]
async fn disabled_key_is_refused_and_works_again_when_enabled() {
    let h = Harness::new();
    let (id, key) = h.key(ACCOUNT, &[]).await;
    let mut svc = h.service();
    assert_eq!(send(&mut svc, get("/", Some(&key))).await.status, 200);
    let disable = KeyUpdate::default().disabled(true);
    h.manager.update(&account(), &id, disable).await.unwrap();
    let answer = send(&mut svc, get("/", Some(&key))).await;
    assert_json_error(&answer, 401, "disabled_api_key");
    let enable = KeyUpdate::default().disabled(false);
    h.manager.update(&account(), &id, enable).await.unwrap();
    assert_eq!(send(&mut svc, get("/", Some(&key))).await.status, 200);
}

#[tokio::test]
async fn store_error_is_503_and_not_cached() {
    let h = Harness::new();
    let (_, key) = h.key(ACCOUNT, &[]).await;
    let mut svc = h.service();
    h.store.set_fault(Fault::Error);
    let answer = send(&mut svc, get("/", Some(&key))).await;
    assert_json_error(&answer, 503, "store_unavailable");
    assert!(
        !answer.body.contains("injected"),
        "store error text leaked: {}",
        answer.body
    );
    assert_eq!(h.store.lookups(), 1);

    h.store.set_fault(Fault::None);
    let answer = send(&mut svc, get("/", Some(&key))).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(h.store.lookups(), 2, "the failure was cached");
}

#[tokio::test(start_paused = true)]
async fn store_that_hangs_times_out_with_503() {
    let h = Harness::with(|b| b.store_timeout(Duration::from_secs(1)));
    let (_, key) = h.key(ACCOUNT, &[]).await;
    h.store.set_fault(Fault::Hang);
    let answer = send(&mut h.service(), get("/", Some(&key))).await;
    assert_json_error(&answer, 503, "store_unavailable");
}

#[tokio::test(start_paused = true)]
async fn hundred_concurrent_requests_with_one_uncached_key_make_one_store_call() {
    let h = Harness::new();
    let (id, key) = h.key(ACCOUNT, &[]).await;
    h.store.set_fault(Fault::Delay(Duration::from_millis(200)));
    let svc = h.service();
    let requests = (0..100).map(|_| {
        let mut svc = svc.clone();
        let req = get("/", Some(&key));
        async move { send(&mut svc, req).await }
    });
    let answers = futures_util::future::join_all(requests).await;
    assert_eq!(answers.len(), 100);
    for answer in &answers {
        assert_eq!(answer.status, 200, "{answer:?}");
        assert_eq!(answer.json()["id"], id.as_str());
    }
    assert_eq!(h.store.lookups(), 1);
    assert_eq!(h.gate.stats().inflight_lookups, 0);
}

#[tokio::test(start_paused = true)]
async fn concurrent_misses_on_an_unknown_key_make_one_store_call() {
    let h = Harness::new();
    let stranger = unknown_key("sk_live_");
    h.store.set_fault(Fault::Delay(Duration::from_millis(200)));
    let svc = h.service();
    let requests = (0..20).map(|_| {
        let mut svc = svc.clone();
        let req = get("/", Some(&stranger));
        async move { send(&mut svc, req).await }
    });
    for answer in futures_util::future::join_all(requests).await {
        assert_json_error(&answer, 401, "invalid_api_key");
    }
    assert_eq!(h.store.lookups(), 1);
}
