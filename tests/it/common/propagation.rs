//! Shared by the invalidation tests: a recording sink, bounded waits, and the delay report.
#![allow(dead_code, unreachable_pub)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use keygate::invalidation::{InvalidationSink, Listener, ListenerStatus};
use keygate::key::KeyDigest;
use keygate::{AuthError, Keygate};
use tokio::time::{timeout, Instant};

use super::services::eventually;

/// Forwards to a [`Keygate`] and records `set_degraded` calls.
pub struct Recording {
    gate: Keygate,
    degraded: Mutex<Vec<bool>>,
}

impl Recording {
    pub fn new(gate: &Keygate) -> Arc<Self> {
        Arc::new(Self {
            gate: gate.clone(),
            degraded: Mutex::new(Vec::new()),
        })
    }
    pub fn degraded(&self) -> Vec<bool> {
        self.degraded.lock().unwrap().clone()
    }
}

impl InvalidationSink for Recording {
    fn invalidate_digest(&self, digest: &KeyDigest) {
        self.gate.invalidate_digest(digest);
    }
    fn invalidate_all(&self) {
        self.gate.invalidate_all();
    }
    fn set_degraded(&self, degraded: bool) {
        self.degraded.lock().unwrap().push(degraded);
    }
}

pub const BOUND: Duration = Duration::from_secs(5);

pub async fn within(listener: &Listener, status: ListenerStatus) {
    timeout(BOUND, listener.wait_for(status))
        .await
        .unwrap_or_else(|_| panic!("listener not {status:?} within {BOUND:?}"));
}

/// Waits until `gate` refuses `key` as revoked; returns how long after `started`.
pub async fn refused_within(gate: &Keygate, key: &str, started: Instant) -> Duration {
    let refused = eventually(BOUND, || async {
        matches!(gate.verify_key(key).await, Err(AuthError::RevokedKey))
    })
    .await;
    assert!(
        refused,
        "instance B still accepts the revoked key after {BOUND:?}"
    );
    started.elapsed()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

pub fn report(channel: &str, mut times: Vec<Duration>) {
    times.sort();
    eprintln!(
        "{channel}: revocation reached instance B in p50 {:?}, p99 {:?}, max {:?} ({} samples)",
        percentile(&times, 0.5),
        percentile(&times, 0.99),
        times.last().unwrap(),
        times.len()
    );
}

/// Waits until `listener` has applied `n` published digests, such as those of a key's
/// creation, so that a key cached afterwards is not dropped by a late notification.
pub async fn applied(listener: &Listener, n: u64) {
    let done = eventually(BOUND, || async { listener.stats().invalidated >= n }).await;
    assert!(
        done,
        "the listener did not apply {n} digests within {BOUND:?}"
    );
}
