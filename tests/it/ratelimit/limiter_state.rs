//! Limiter state: follows the key id across a roll, bounded, dropped once idle.

use crate::common::*;
use crate::ratelimit::support::*;
use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use keygate::gate::CacheConfig;
use keygate::store::{AccountId, KeyId, KeyRecord, RateLimit};
use keygate::{KeyStoreWrite, Keygate, MemoryStore, NewKey};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tower::{Service, ServiceExt};

#[tokio::test]
async fn limiter_state_follows_the_key_id_across_a_roll_with_grace() {
    let h = Harness::new();
    let (id, old) = h
        .key_with(
            "acct_1",
            NewKey::named("rolled").rate_limit(RateLimit::new(1, 3)),
        )
        .await;
    let mut svc = h.service();
    assert_eq!(legacy(&send(&mut svc, get("/", Some(&old))).await).1, 2);

    let rolled = h
        .manager
        .roll(
            &AccountId::from("acct_1"),
            &id,
            Some(Duration::from_secs(3600)),
        )
        .await
        .unwrap();
    let new = rolled.key.expose_secret().to_owned();
    assert_ne!(new, old);

    // Old and new secrets draw from one bucket: the key id's.
    assert_eq!(legacy(&send(&mut svc, get("/", Some(&new))).await).1, 1);
    assert_eq!(legacy(&send(&mut svc, get("/", Some(&old))).await).1, 0);
    assert_rate_limited(&send(&mut svc, get("/", Some(&new))).await, "1");
    assert_rate_limited(&send(&mut svc, get("/", Some(&old))).await, "1");
    assert_eq!(h.gate.stats().rate_limit_buckets, 1);
}

/// One bare request through `svc`; returns `X-RateLimit-Remaining`.
async fn remaining_after<S>(svc: &mut S, authorization: &str) -> String
where
    S: Service<
        Request<Full<Bytes>>,
        Response = Response<keygate::layer::ResponseBody<Full<Bytes>>>,
    >,
    S::Error: std::fmt::Debug,
{
    let req = Request::builder()
        .header("authorization", authorization)
        .body(Full::new(Bytes::new()))
        .unwrap();
    let res = svc.ready().await.unwrap().call(req).await.unwrap();
    assert_eq!(res.status(), 200);
    res.headers()["x-ratelimit-remaining"]
        .to_str()
        .unwrap()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limiter_state_for_100_000_keys_is_dropped_once_they_are_idle() {
    const KEYS: usize = 100_000;
    const TASKS: usize = 4;
    // Records go straight into a store (no manager, so no last-used writes), the cache
    // is small, and the inner service does nothing: the work is the limiter's.
    let store = Arc::new(MemoryStore::new());
    let (clock, time) = keygate::clock::Clock::manual(t0());
    let gate = Keygate::builder(store.clone())
        .clock(clock)
        .cache(CacheConfig::default().max_entries(1024))
        .build();
    let prefix = gate.format().prefix("tc_").unwrap().clone();
    let mut keys = Vec::with_capacity(KEYS);
    for i in 0..KEYS {
        let key = gate.format().generate(&prefix).unwrap();
        let mut record = KeyRecord::new(
            KeyId::new(format!("ak_{i:06}")),
            AccountId::from("acct_bulk"),
            gate.hasher().digest(key.expose_secret()),
            t0(),
        );
        record.name = "bulk".into();
        record.prefix = "tc_".into();
        record.start = key.start().to_owned();
        store.insert(record, None, t0()).await.unwrap();
        keys.push(format!("Bearer {}", key.expose_secret()));
    }
    let svc = tower::ServiceBuilder::new().layer(gate.layer()).service_fn(
        |_: Request<Full<Bytes>>| async {
            Ok::<_, Infallible>(Response::new(Full::new(Bytes::new())))
        },
    );
    let keys = Arc::new(keys);
    let tasks: Vec<_> = (0..TASKS)
        .map(|t| {
            let (keys, mut svc) = (keys.clone(), svc.clone());
            tokio::spawn(async move {
                for header in keys.iter().skip(t).step_by(TASKS) {
                    assert_eq!(remaining_after(&mut svc, header).await, "1999");
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(gate.stats().rate_limit_buckets, KEYS);

    // Every bucket refills within 1 ms; once idle, the state is dropped.
    time.advance(Duration::from_secs(2));
    gate.run_maintenance();
    assert_eq!(gate.stats().rate_limit_buckets, 0);

    // It is rebuilt on demand: a returning key starts from a full bucket.
    let mut svc = svc;
    assert_eq!(remaining_after(&mut svc, &keys[0]).await, "1999");
    assert_eq!(gate.stats().rate_limit_buckets, 1);
}

#[tokio::test]
async fn idle_limiter_state_is_dropped_by_periodic_maintenance_without_being_asked() {
    let h = Harness::new();
    let mut svc = h.service();
    let mut keys = Vec::new();
    for i in 0..200 {
        let (_, key) = h.key(&format!("acct_{i}"), &[]).await;
        assert_eq!(send(&mut svc, get("/", Some(&key))).await.status, 200);
        keys.push(key);
    }
    assert_eq!(h.gate.stats().rate_limit_buckets, 200);

    // Past the default 10 s maintenance interval, the next request triggers a sweep.
    h.time.advance(Duration::from_secs(11));
    assert_eq!(send(&mut svc, get("/", Some(&keys[0]))).await.status, 200);
    assert_eq!(h.gate.stats().rate_limit_buckets, 1);
}

#[tokio::test]
async fn a_key_that_is_still_limited_keeps_its_state_through_maintenance() {
    let h = with_default(RateLimit::new(1, 3));
    let (_, busy) = h.key("acct_1", &[]).await;
    let (_, idle) = h.key("acct_2", &[]).await;
    let mut svc = h.service();
    send(&mut svc, get("/", Some(&idle))).await;
    for _ in 0..3 {
        send(&mut svc, get("/", Some(&busy))).await;
    }
    h.time.advance(Duration::from_millis(2500));
    h.gate.run_maintenance();
    // `idle` (full since T0+1 s) was dropped; `busy` (full only at T0+3 s) was kept.
    assert_eq!(h.gate.stats().rate_limit_buckets, 1);
    // 2.5 tokens are back, one is used: 1 left. A fresh bucket would report 2.
    let a = send(&mut svc, get("/", Some(&busy))).await;
    assert_eq!(a.status, 200);
    assert_eq!(a.header("x-ratelimit-remaining"), Some("1"));
}
