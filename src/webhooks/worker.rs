//! Delivering: one round of due events, expiry notices, and the background task that
//! runs both.

use std::sync::Arc;
use std::time::UNIX_EPOCH;

use futures_util::StreamExt;

use super::client::{DeliveryError, Signed};
use super::event::{new_id, WebhookEvent};
use super::outbox::{backoff, Claimed, Outcome};
use super::{Inner, Webhooks};
use crate::store::StoreError;

/// What one delivery round did: [`Webhooks::deliver_due`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeliveryRound {
    /// Events a receiver accepted (2xx).
    pub delivered: usize,
    /// Tries that failed and will be retried.
    pub retrying: usize,
    /// Events that failed their last try before the horizon and are now failed.
    pub failed: usize,
}

impl DeliveryRound {
    /// Tries made.
    pub fn attempts(&self) -> usize {
        self.delivered + self.retrying + self.failed
    }
}

impl Webhooks {
    /// Takes the events due now (up to the batch size) under a lease, tries each
    /// once, records the outcomes, and says what happened. The background task
    /// ([`Webhooks::start`]) calls it in a loop; call it yourself to drain the queue
    /// (before a shutdown, say) or in tests, on a manual clock.
    pub async fn deliver_due(&self) -> Result<DeliveryRound, StoreError> {
        let inner = &self.inner;
        let now = inner.clock.now();
        let owner = new_id();
        let claimed = inner
            .outbox
            .claim(now, inner.batch_size, &owner, now + inner.lease)
            .await?;
        let outcomes: Vec<Result<Outcome, StoreError>> = futures_util::stream::iter(claimed)
            .map(|event| {
                let owner = owner.as_str();
                async move {
                    let outcome = inner.attempt(&event).await;
                    let kind = match &outcome {
                        Outcome::Delivered => Outcome::Delivered,
                        Outcome::Retry { at, .. } => Outcome::Retry {
                            at: *at,
                            error: String::new(),
                        },
                        Outcome::Failed { .. } => Outcome::Failed {
                            error: String::new(),
                        },
                    };
                    inner
                        .outbox
                        .finish(&event.id, owner, outcome, inner.clock.now())
                        .await
                        .map(|()| kind)
                }
            })
            .buffer_unordered(inner.concurrency)
            .collect()
            .await;
        let mut round = DeliveryRound::default();
        for outcome in outcomes {
            match outcome? {
                Outcome::Delivered => round.delivered += 1,
                Outcome::Retry { .. } => round.retrying += 1,
                Outcome::Failed { .. } => round.failed += 1,
            }
        }
        Ok(round)
    }

    /// Queues `key.expiring` for every key not revoked that expires within the
    /// configured notice and has not been announced for that expiry; returns how many
    /// were queued. Each key and expiry is announced once, however many instances scan
    /// (the outbox refuses a second notice). The background task calls it every scan
    /// interval.
    pub async fn queue_expiry_notices(&self) -> Result<usize, StoreError> {
        let inner = &self.inner;
        let Some(notice) = inner.expiry_notice else {
            return Ok(0);
        };
        if !inner.sends(super::EventType::KeyExpiring) {
            return Ok(0);
        }
        let now = inner.clock.now();
        let keys = inner.outbox.expiring(now, now + notice).await?;
        let events: Vec<WebhookEvent> = keys
            .iter()
            .filter_map(|k| {
                k.expires_at
                    .map(|at| WebhookEvent::key_expiring(k, at, now))
            })
            .collect();
        let events = self.prepare(events);
        if events.is_empty() {
            return Ok(0);
        }
        let queued = inner.outbox.enqueue(&events).await?;
        inner.wake.notify_one();
        Ok(queued)
    }

    /// Starts the background task: it delivers due events (woken at once by events
    /// queued in this process, otherwise every poll interval), queues expiry notices
    /// and trims old events every scan interval. It stops when the returned handle is
    /// dropped. Call it once per process.
    ///
    /// # Panics
    /// Outside a tokio runtime.
    pub fn start(&self) -> DeliveryTask {
        let weak = Arc::downgrade(&self.inner);
        let handle = tokio::spawn(async move {
            let mut last_scan: Option<tokio::time::Instant> = None;
            loop {
                let Some(inner) = weak.upgrade() else { return };
                let webhooks = Webhooks { inner };
                let scan_due =
                    last_scan.is_none_or(|at| at.elapsed() >= webhooks.inner.scan_interval);
                if scan_due {
                    last_scan = Some(tokio::time::Instant::now());
                    webhooks.scan().await;
                }
                let busy = match webhooks.deliver_due().await {
                    Ok(round) => round.attempts() >= webhooks.inner.batch_size,
                    Err(e) => {
                        tracing::warn!(target: "keygate::webhooks", error = %e, "webhook outbox unavailable");
                        false
                    }
                };
                if !busy {
                    let poll = webhooks.inner.poll_interval;
                    let wake = webhooks.inner.clone();
                    drop(webhooks);
                    let woken = std::pin::pin!(wake.wake.notified());
                    let slept = std::pin::pin!(tokio::time::sleep(poll));
                    futures_util::future::select(woken, slept).await;
                }
            }
        });
        DeliveryTask { handle }
    }

    async fn scan(&self) {
        if let Err(e) = self.queue_expiry_notices().await {
            tracing::warn!(target: "keygate::webhooks", error = %e, "expiry notices not queued");
        }
        let inner = &self.inner;
        let now = inner.clock.now();
        let before = now.checked_sub(inner.retention).unwrap_or(UNIX_EPOCH);
        let failed_before = now
            .checked_sub(inner.failed_retention)
            .unwrap_or(UNIX_EPOCH);
        if let Err(e) = inner.outbox.trim(before, failed_before, now).await {
            tracing::warn!(target: "keygate::webhooks", error = %e, "webhook outbox not trimmed");
        }
    }
}

/// The background delivery task of [`Webhooks::start`]; dropping it stops the task.
#[derive(Debug)]
pub struct DeliveryTask {
    handle: tokio::task::JoinHandle<()>,
}

impl Drop for DeliveryTask {
    fn drop(&mut self) {
        self.handle.abort();
    }
}

impl Inner {
    /// One try of `event`, and what to record.
    async fn attempt(&self, event: &Claimed) -> Outcome {
        let now = self.clock.now();
        let timestamp = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let signed = Signed {
            id: &event.id,
            timestamp,
            signature: self
                .signing
                .header(&event.id, timestamp, event.body.as_bytes(), now),
            body: &event.body,
        };
        let error = match self.receiver.post(&signed).await {
            Ok(_) => {
                tracing::debug!(target: "keygate::webhooks", event_id = %event.id, receiver = %self.receiver.origin, "webhook delivered");
                return Outcome::Delivered;
            }
            Err(e) => e,
        };
        let attempts = event.attempts + 1;
        let mut delay = backoff(self.initial_retry, self.max_retry_interval, attempts);
        if let DeliveryError::Status {
            retry_after: Some(asked),
            ..
        } = &error
        {
            delay = delay.max(*asked).min(self.max_retry_interval);
        }
        let at = self.clock.now() + delay;
        let message = error.to_string();
        if at > event.deadline {
            tracing::warn!(target: "keygate::webhooks", event_id = %event.id, receiver = %self.receiver.origin, attempts, error = %message, "webhook failed for good");
            Outcome::Failed { error: message }
        } else {
            tracing::info!(target: "keygate::webhooks", event_id = %event.id, receiver = %self.receiver.origin, attempts, retry_in = ?delay, error = %message, "webhook try failed");
            Outcome::Retry { at, error: message }
        }
    }
}
