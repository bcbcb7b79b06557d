//! Recording: what is recorded, its bounds, sampling, and that no secret is kept.

use std::time::Duration;

use keygate::key::KeyHasher;
use keygate::store::AccountId;
use keygate::ScopeRequirement;
use tower::Service as _;

use super::{all_events, logged};
use crate::common::{get, send};

#[tokio::test]
async fn a_flood_of_refusals_keeps_the_account_at_its_bound_and_leaves_another_untouched() {
    let (h, _log) = logged(|c| {
        c.max_events_per_account(20)
            .max_events_per_account_per_minute(10_000)
    });
    let (busy, busy_key) = h.key("acct_busy", &[]).await;
    let (_, calm_key) = h.key("acct_calm", &[]).await;
    h.manager
        .revoke(&AccountId::from("acct_busy"), &busy)
        .await
        .unwrap();
    let mut svc = h.service();
    let mut calm = tower::Layer::layer(
        &h.gate.layer().require(ScopeRequirement::scope("admin")),
        crate::common::Echo,
    );
    for _ in 0..5 {
        assert_eq!(
            send(&mut calm, get("/calm", Some(&calm_key))).await.status,
            403
        );
    }
    h.gate.api_log().unwrap().flush().await;
    for _ in 0..500 {
        assert_eq!(
            send(&mut svc, get("/flood", Some(&busy_key))).await.status,
            401
        );
    }
    h.gate.api_log().unwrap().flush().await;
    let busy_events = all_events(&h.manager, "acct_busy").await;
    assert_eq!(busy_events.len(), 20);
    assert!(busy_events.iter().all(|e| e.outcome == "revoked_api_key"));
    let calm_events = all_events(&h.manager, "acct_calm").await;
    assert_eq!(calm_events.len(), 5);
    assert!(calm_events
        .iter()
        .all(|e| e.outcome == "insufficient_scope" && e.status == 403 && e.path == "/calm"));
}

#[tokio::test]
async fn one_busy_account_is_cut_at_its_per_minute_bound_and_records_again_the_next_minute() {
    let (h, _log) = logged(|c| c.max_events_per_account_per_minute(10));
    let (busy, busy_key) = h.key("acct_busy", &[]).await;
    let (other, other_key) = h.key("acct_other", &[]).await;
    h.manager.revoke(&"acct_busy".into(), &busy).await.unwrap();
    h.manager
        .revoke(&"acct_other".into(), &other)
        .await
        .unwrap();
    let mut svc = h.service();
    for _ in 0..30 {
        send(&mut svc, get("/x", Some(&busy_key))).await;
    }
    for _ in 0..3 {
        send(&mut svc, get("/x", Some(&other_key))).await;
    }
    let log = h.gate.api_log().unwrap();
    log.flush().await;
    assert_eq!(all_events(&h.manager, "acct_busy").await.len(), 10);
    assert_eq!(all_events(&h.manager, "acct_other").await.len(), 3);
    let stats = log.stats();
    assert_eq!(stats.dropped_over_bound, 20);
    assert_eq!(stats.recorded, 13);
    assert_eq!(stats.written, 13);
    h.time.advance(Duration::from_secs(60));
    send(&mut svc, get("/x", Some(&busy_key))).await;
    log.flush().await;
    assert_eq!(all_events(&h.manager, "acct_busy").await.len(), 11);
}

#[tokio::test]
async fn a_full_buffer_drops_and_counts_events_without_blocking_requests() {
    let (h, _log) = logged(|c| c.buffer(1).max_events_per_account_per_minute(1000));
    let (id, key) = h.key("acct_1", &[]).await;
    h.manager.revoke(&"acct_1".into(), &id).await.unwrap();
    let mut svc = h.service();
    // The first request caches the key; its event is written.
    assert_eq!(send(&mut svc, get("/x", Some(&key))).await.status, 401);
    h.gate.api_log().unwrap().flush().await;
    // A current-thread runtime: the writer cannot run until this task yields, and a
    // cached refusal never yields, so the buffer of one fills with the first event and
    // the next ones are dropped.
    for _ in 0..5 {
        let req = get("/x", Some(&key));
        let fut = tower::ServiceExt::ready(&mut svc).await.unwrap().call(req);
        let res = futures_now(fut).unwrap();
        assert_eq!(res.status(), 401);
    }
    let log = h.gate.api_log().unwrap();
    assert_eq!(log.stats().recorded, 2);
    assert_eq!(log.stats().dropped_buffer_full, 4);
    log.flush().await;
    assert_eq!(all_events(&h.manager, "acct_1").await.len(), 2);
}

/// Polls a future that is ready at once (a cached refusal), without yielding.
fn futures_now<F: std::future::Future>(fut: F) -> F::Output {
    let waker = std::task::Waker::noop();
    let mut cx = std::task::Context::from_waker(waker);
    let mut fut = std::pin::pin!(fut);
    match fut.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(out) => out,
        std::task::Poll::Pending => panic!("a cached refusal is ready at once"),
    }
}

#[tokio::test]
async fn accepted_requests_are_not_recorded_by_default() {
    let (h, _log) = logged(|c| c);
    let (_, key) = h.key("acct_1", &["read"]).await;
    let mut svc = h.service();
    for _ in 0..10 {
        assert_eq!(send(&mut svc, get("/ok", Some(&key))).await.status, 200);
    }
    let mut admin_only = tower::Layer::layer(
        &h.gate.layer().require(ScopeRequirement::scope("admin")),
        crate::common::Echo,
    );
    send(&mut admin_only, get("/admin?token=x", Some(&key))).await;
    h.gate.api_log().unwrap().flush().await;
    let events = all_events(&h.manager, "acct_1").await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].outcome, "insufficient_scope");
    assert_eq!(events[0].path, "/admin", "the query string is never kept");
    assert_eq!(events[0].method, "GET");
}

#[tokio::test(flavor = "current_thread")]
async fn accepted_requests_are_sampled_exactly_at_the_configured_rate() {
    let (h, _log) = logged(|c| c.accepted_sample_rate(0.25));
    let (_, key) = h.key("acct_1", &[]).await;
    let mut svc = h.service();
    for _ in 0..100 {
        assert_eq!(send(&mut svc, get("/ok", Some(&key))).await.status, 200);
    }
    h.gate.api_log().unwrap().flush().await;
    let events = all_events(&h.manager, "acct_1").await;
    assert_eq!(events.len(), 25);
    assert!(events
        .iter()
        .all(|e| e.outcome == "accepted" && e.status == 200 && e.path == "/ok"));
}

#[tokio::test]
async fn an_accepted_event_carries_the_status_the_service_answered_with() {
    let (h, _log) = logged(|c| c.accepted_sample_rate(1.0));
    let (_, key) = h.key("acct_1", &[]).await;
    let teapot = tower::service_fn(
        |_req: http::Request<http_body_util::Full<bytes::Bytes>>| async {
            let mut res = http::Response::new(http_body_util::Full::new(bytes::Bytes::new()));
            *res.status_mut() = http::StatusCode::IM_A_TEAPOT;
            Ok::<_, std::convert::Infallible>(res)
        },
    );
    let mut svc = tower::Layer::layer(&h.gate.layer(), teapot);
    assert_eq!(send(&mut svc, get("/brew", Some(&key))).await.status, 418);
    h.gate.api_log().unwrap().flush().await;
    let events = all_events(&h.manager, "acct_1").await;
    assert_eq!(events.len(), 1);
    assert_eq!(
        (events[0].outcome.as_str(), events[0].status),
        ("accepted", 418)
    );
}

#[tokio::test]
async fn no_secret_key_body_or_digest_is_kept_in_memory_events() {
    let (h, log) = logged(|c| c.accepted_sample_rate(1.0));
    let (id, key) = h.key("acct_1", &[]).await;
    let digest = KeyHasher::sha256().digest(&key);
    let mut svc = h.service();
    // The key in the path, in the query, and as the credential; accepted and refused.
    send(&mut svc, get(&format!("/v1/{key}/x?key={key}"), Some(&key))).await;
    send(&mut svc, get("/plain", Some(&key))).await;
    h.manager.revoke(&"acct_1".into(), &id).await.unwrap();
    send(&mut svc, get(&format!("/v1/{key}"), Some(&key))).await;
    h.gate.api_log().unwrap().flush().await;
    let events = all_events(&h.manager, "acct_1").await;
    assert_eq!(events.len(), 3);
    assert!(events.iter().any(|e| e.path == "/v1/[redacted]/x"));
    let filter = keygate::activity::log::EventFilter::account("acct_1".into(), 1000);
    let stored = keygate::activity::log::ApiLogStore::query_events(&*log, &filter)
        .await
        .unwrap();
    assert_eq!(stored.len(), 3);
    let text = format!("{stored:?} {}", serde_json::to_string(&stored).unwrap());
    super::assert_no_secret(text.as_bytes(), &key, digest.as_bytes());
}
