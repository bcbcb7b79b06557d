//! Flushes: on drop of the gate, kept across a failing sink, and exact under concurrent
//! requests, invalidations and flushes.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use keygate::activity::{
    Outcome, UsageBucket, UsageConfig, UsageCount, UsageRange, UsageRetention, UsageSink,
    UsageStore, UsageSubject,
};
use keygate::store::AccountId;
use keygate::{KeyStore, MemoryStore, StoreError};
use tokio::sync::Notify;

use super::{minutes, total};
use crate::common::*;

/// A [`MemoryStore`]'s usage half that can fail on demand and says when it was written.
struct Gauge {
    inner: Arc<dyn UsageStore>,
    failing: AtomicBool,
    written: Notify,
}

impl Gauge {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            inner: MemoryStore::new().usage_store().unwrap(),
            failing: AtomicBool::new(false),
            written: Notify::new(),
        })
    }
}

#[async_trait]
impl UsageSink for Gauge {
    async fn record(&self, counts: &[UsageCount]) -> Result<(), StoreError> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(StoreError::unavailable("sink down"));
        }
        self.inner.record(counts).await?;
        self.written.notify_one();
        Ok(())
    }
}

#[async_trait]
impl UsageStore for Gauge {
    fn retention(&self) -> UsageRetention {
        self.inner.retention()
    }
    async fn usage(
        &self,
        s: &UsageSubject,
        r: &UsageRange,
    ) -> Result<Vec<UsageBucket>, StoreError> {
        self.inner.usage(s, r).await
    }
    async fn erase_account_usage(&self, a: &AccountId) -> Result<u64, StoreError> {
        self.inner.erase_account_usage(a).await
    }
}

#[tokio::test]
async fn dropping_the_gate_flushes_what_it_counted() {
    let gauge = Gauge::new();
    let h = Harness::with(|b| {
        b.usage(
            UsageConfig::default()
                .store(gauge.clone())
                .flush_interval(Duration::from_secs(3600)),
        )
    });
    let (id, key) = h.key("acct", &[]).await;
    let mut svc = h.service();
    for _ in 0..7 {
        send(&mut svc, get("/", Some(&key))).await;
    }
    let range = keygate::activity::UsageQuery::default()
        .resolve(h.clock.now(), &UsageRetention::default())
        .unwrap();
    let subject = UsageSubject::Key(id);
    assert!(
        gauge
            .inner
            .usage(&subject, &range)
            .await
            .unwrap()
            .is_empty(),
        "not flushed yet"
    );
    let written = gauge.written.notified();
    drop(svc);
    drop(h);
    written.await;
    let buckets = gauge.inner.usage(&subject, &range).await.unwrap();
    assert_eq!(total(&buckets, Outcome::Accepted), 7);
}

#[tokio::test]
async fn a_failed_flush_keeps_its_counts_for_the_next_one_and_writes_them_once() {
    let gauge = Gauge::new();
    let h = Harness::with(|b| b.usage(UsageConfig::default().store(gauge.clone())));
    let start = h.clock.now();
    let (id, key) = h.key("acct", &[]).await;
    let mut svc = h.service();
    for _ in 0..4 {
        send(&mut svc, get("/", Some(&key))).await;
    }
    gauge.failing.store(true, Ordering::SeqCst);
    assert!(h.gate.flush_usage().await.is_err());
    assert!(h
        .manager
        .usage(&"acct".into(), &id, &Default::default())
        .await
        .is_err());
    for _ in 0..3 {
        send(&mut svc, get("/", Some(&key))).await;
    }
    gauge.failing.store(false, Ordering::SeqCst);
    h.gate.flush_usage().await.unwrap();
    h.gate.flush_usage().await.unwrap();
    assert_eq!(
        total(
            &minutes(&h.manager, "acct", &id, start, 1).await,
            Outcome::Accepted
        ),
        7
    );
}

#[tokio::test]
async fn erasing_an_account_deletes_its_keys_and_its_own_counts_only() {
    let h = Harness::new();
    let start = h.clock.now();
    let (gone, gone_key) = h.key("acct_gone", &[]).await;
    let (kept, kept_key) = h.key("acct_kept", &[]).await;
    let mut svc = h.service();
    for key in [&gone_key, &kept_key] {
        send(&mut svc, get("/", Some(key))).await;
    }
    assert!(
        h.manager
            .erase_account_usage(&"acct_gone".into())
            .await
            .unwrap()
            > 0
    );
    let q = keygate::activity::UsageQuery::default();
    assert_eq!(
        total(
            &minutes(&h.manager, "acct_gone", &gone, start, 1).await,
            Outcome::Accepted
        ),
        0
    );
    assert_eq!(
        total(
            &h.manager
                .account_usage(&"acct_gone".into(), &q)
                .await
                .unwrap(),
            Outcome::Accepted
        ),
        0
    );
    assert_eq!(
        total(
            &minutes(&h.manager, "acct_kept", &kept, start, 1).await,
            Outcome::Accepted
        ),
        1
    );
}

/// Many requests on many threads while other tasks invalidate the cache (so that cells
/// are dropped and made again) and flush: every request counted exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_requests_invalidations_and_flushes_count_every_request_once() {
    const TASKS: usize = 8;
    const EACH: usize = 2_000;
    let h = Harness::with(|b| {
        b.rate_limits(keygate::ratelimit::RateLimitConfig::default().default_quota(None))
    });
    let start = h.clock.now();
    let (id, key) = h.key("acct", &[]).await;
    let stop = Arc::new(AtomicBool::new(false));
    // Rounds of churn done so far: the senders wait for a new round every 500 requests,
    // so requests and churn interleave however the threads are scheduled.
    let done = Arc::new(Rounds::default());
    // Answers by status: a lookup that loses to four invalidations in a row fails
    // closed (503, `store_unavailable`, counted for the deployment), by design.
    let (admitted, unavailable) = (
        Arc::new(std::sync::atomic::AtomicU64::new(0)),
        Arc::new(std::sync::atomic::AtomicU64::new(0)),
    );
    let churn = {
        let (gate, stop, done) = (h.gate.clone(), stop.clone(), done.clone());
        tokio::spawn(async move {
            let mut rounds = 0u64;
            loop {
                // A round when a sender asks for one (so that lookups are not starved
                // by invalidations: they fail closed after a few, by design).
                done.wanted().await;
                if stop.load(Ordering::SeqCst) {
                    return rounds;
                }
                gate.invalidate_all();
                gate.run_maintenance();
                gate.flush_usage().await.unwrap();
                rounds += 1;
                done.finished(rounds);
            }
        })
    };
    let mut tasks = Vec::new();
    for _ in 0..TASKS {
        let (gate, key, done) = (h.gate.clone(), key.clone(), done.clone());
        let (admitted, unavailable) = (admitted.clone(), unavailable.clone());
        tasks.push(tokio::spawn(async move {
            let mut svc = tower::Layer::layer(&gate.layer(), Echo);
            for i in 0..EACH {
                let answer = send(&mut svc, get("/", Some(&key))).await;
                match answer.status.as_u16() {
                    200 => admitted.fetch_add(1, Ordering::SeqCst),
                    503 if answer.code() == "store_unavailable" => {
                        unavailable.fetch_add(1, Ordering::SeqCst)
                    }
                    _ => panic!("{}: {}", answer.status, answer.body),
                };
                if i % 500 == 499 {
                    // A synchronisation point: the next requests wait for one more
                    // round of churn to finish.
                    let seen = done.load(Ordering::SeqCst);
                    done.want();
                    done.notified(seen).await;
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    stop.store(true, Ordering::SeqCst);
    done.want();
    let rounds = churn.await.unwrap();
    let counted = total(
        &minutes(&h.manager, "acct", &id, start, 1).await,
        Outcome::Accepted,
    );
    let deployment = h
        .manager
        .deployment_usage(&keygate::activity::UsageQuery::new(
            keygate::activity::Granularity::Minute,
        ))
        .await
        .unwrap();
    let (admitted, unavailable) = (
        admitted.load(Ordering::SeqCst),
        unavailable.load(Ordering::SeqCst),
    );
    println!(
        "stress: {} requests ({admitted} admitted, {unavailable} failed closed), \
         {rounds} invalidate+flush rounds, counted {counted}",
        TASKS * EACH
    );
    assert_eq!(admitted + unavailable, (TASKS * EACH) as u64);
    assert_eq!(counted, admitted);
    assert_eq!(total(&deployment, Outcome::StoreUnavailable), unavailable);
    assert!(rounds >= (EACH / 500) as u64, "{rounds} rounds");
}

/// Rounds of churn finished, a wake-up for tasks that wait for the next one, and the
/// senders' requests for a round.
#[derive(Default)]
struct Rounds {
    done: std::sync::atomic::AtomicU64,
    next: tokio::sync::Notify,
    asked: tokio::sync::Notify,
}

impl Rounds {
    /// Asks for a round (remembered until the churn task takes it).
    fn want(&self) {
        self.asked.notify_one();
    }

    /// Waits until a round is asked for.
    async fn wanted(&self) {
        self.asked.notified().await;
    }

    fn load(&self, order: Ordering) -> u64 {
        self.done.load(order)
    }

    fn finished(&self, rounds: u64) {
        self.done.store(rounds, Ordering::SeqCst);
        self.next.notify_waiters();
    }

    /// Returns once a round after round `seen` has finished.
    async fn notified(&self, seen: u64) {
        loop {
            let next = self.next.notified();
            tokio::pin!(next);
            next.as_mut().enable();
            if self.done.load(Ordering::SeqCst) > seen {
                return;
            }
            next.await;
        }
    }
}
