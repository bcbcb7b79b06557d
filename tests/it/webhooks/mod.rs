//! Signed webhooks for key events: delivery over TLS to a receiver that verifies the
//! Standard Webhooks signature itself, retries with backoff, the outbox in PostgreSQL
//! shared by several instances, expiry notices, and the failed-events API.

mod credits_low;
mod delivery;
mod demo;
mod events_api;
#[cfg(feature = "postgres")]
mod outbox;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use keygate::clock::{Clock, ManualClock};
use keygate::webhooks::{WebhookSecret, Webhooks, WebhooksBuilder};
use keygate::{KeyManager, Keygate, MemoryStore};

use crate::common::t0;
use crate::common::webhook_receiver::{Answer, Receiver, TestCa};

/// A receiver over TLS, verifying with `secret`, on the time of `time`.
async fn receiver(
    ca: &TestCa,
    secret: &WebhookSecret,
    time: &ManualClock,
    script: &[Answer],
    then: Answer,
) -> Receiver {
    let time = time.clone();
    let text = secret.expose_secret();
    Receiver::start(ca, &[&text], move || time.now(), script, then).await
}

/// Webhooks to `receiver`, trusting `ca`, on `clock`.
fn webhooks_to(
    receiver: &Receiver,
    ca: &TestCa,
    secret: &WebhookSecret,
    clock: &Clock,
) -> WebhooksBuilder {
    Webhooks::builder(receiver.url.clone(), secret.clone())
        .root_certificates_pem(ca.pem.clone())
        .clock(clock.clone())
}

/// A manager over a memory store sending through `webhooks`.
fn memory_manager(clock: &Clock, webhooks: Webhooks) -> (Arc<MemoryStore>, Keygate, KeyManager) {
    let store = Arc::new(MemoryStore::new());
    let (gate, manager) = Keygate::managed(store.clone())
        .clock(clock.clone())
        .webhooks(webhooks)
        .build();
    (store, gate, manager)
}

fn manual() -> (Clock, ManualClock) {
    Clock::manual(t0())
}

fn payload(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap()
}

#[allow(dead_code)]
fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

#[allow(dead_code)]
fn at(s: u64) -> SystemTime {
    t0() + Duration::from_secs(s)
}
