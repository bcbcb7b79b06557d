//! Metrics through the `metrics` facade: decisions by outcome, cache levels, store calls,
//! single-flight waiters, invalidations and rate-limit decisions, under the names the
//! `telemetry` table documents.
//!
//! The recorder is local to the test's thread (`metrics::with_local_recorder`), with a
//! current-thread runtime: the core registers its handles with it when it is built, and
//! the other tests of this process, on their own threads, record nothing into it.

use std::collections::HashMap;

use crate::common::*;
use keygate::ratelimit::RateLimitConfig;
use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use metrics_util::{CompositeKey, MetricKind};

/// Counter values by `name{label=value,...}`.
fn counters(
    snapshot: Vec<(
        CompositeKey,
        Option<metrics::Unit>,
        Option<metrics::SharedString>,
        DebugValue,
    )>,
) -> HashMap<String, u64> {
    let mut out = HashMap::new();
    for (key, _, _, value) in snapshot {
        let (kind, key) = key.into_parts();
        let labels: Vec<String> = key
            .labels()
            .map(|l| format!("{}={}", l.key(), l.value()))
            .collect();
        let name = format!("{}{{{}}}", key.name(), labels.join(","));
        match (kind, value) {
            (MetricKind::Counter, DebugValue::Counter(n)) => {
                out.insert(name, n);
            }
            (MetricKind::Histogram, DebugValue::Histogram(v)) => {
                out.insert(name, v.len() as u64);
            }
            _ => {}
        }
    }
    out
}

#[test]
fn every_documented_metric_is_recorded_with_its_labels() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap();
    metrics::with_local_recorder(&recorder, || {
        rt.block_on(async {
            let h = Harness::with(|b| {
                b.rate_limits(
                    RateLimitConfig::default()
                        .default_quota(Some(keygate::store::RateLimit::new(1, 2))),
                )
            });
            let (id, key) = h.key("acct_1", &[]).await;
            let mut svc = h.service();
            for _ in 0..3 {
                send(&mut svc, get("/", Some(&key))).await;
            }
            send(&mut svc, get("/", None)).await;
            send(
                &mut svc,
                get("/", Some("sk_test_unknownunknownunknownunknow1")),
            )
            .await;
            h.manager
                .revoke(&keygate::store::AccountId::from("acct_1"), &id)
                .await
                .unwrap();
            h.gate.invalidate_all();
            send(&mut svc, get("/", Some(&key))).await;
        })
    });
    let c = counters(snapshotter.snapshot().into_vec());
    let at = |name: &str| c.get(name).copied().unwrap_or(0);
    assert_eq!(at("keygate_decisions_total{outcome=ok}"), 2, "{c:#?}");
    assert_eq!(at("keygate_decisions_total{outcome=rate_limited}"), 1);
    assert_eq!(at("keygate_decisions_total{outcome=unauthorized}"), 1);
    assert_eq!(at("keygate_decisions_total{outcome=invalid_api_key}"), 1);
    assert_eq!(at("keygate_decisions_total{outcome=revoked_api_key}"), 1);
    assert_eq!(at("keygate_ratelimit_total{result=admitted}"), 2);
    assert_eq!(at("keygate_ratelimit_total{result=limited}"), 1);
    // First request: a miss; the next two: the moka hit, then this thread's front.
    assert_eq!(at("keygate_cache_lookups_total{result=miss}"), 2);
    assert_eq!(at("keygate_cache_lookups_total{result=moka}"), 1);
    assert_eq!(at("keygate_cache_lookups_total{result=front}"), 1);
    assert_eq!(at("keygate_store_calls_total{result=found}"), 2);
    assert_eq!(at("keygate_store_call_seconds{}"), 2);
    assert!(at("keygate_invalidations_total{scope=digest,source=manager}") >= 2);
    assert_eq!(
        at("keygate_invalidations_total{scope=all,source=external}"),
        1
    );
}
