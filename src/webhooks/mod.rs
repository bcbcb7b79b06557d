//! Signed webhooks for key events (feature `webhooks`).
//!
//! [`Webhooks`] sends `key.created`, `key.updated`, `key.rolled`, `key.revoked`,
//! `key.deleted`, `key.leaked`, `key.expiring` and `credits.low` to one receiver URL,
//! signed as the [Standard Webhooks](https://www.standardwebhooks.com/) specification
//! defines:
//!
//! - the body is `{"type":"key.revoked","timestamp":"<RFC 3339>","data":{…}}`; `data`
//!   names the key by `key_id` and `account_id`, with its `name`, `environment` and the
//!   `actor` of the change, never its secret, digest, first characters or metadata
//!   (see [`WebhookEvent`]);
//! - headers `webhook-id` (`msg_…`, the same on every try, for the receiver to drop
//!   duplicates), `webhook-timestamp` (Unix seconds of this try) and
//!   `webhook-signature`: `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">` under
//!   the base64-decoded part of the `whsec_…` [`WebhookSecret`]. While a secret is
//!   rotated out ([`WebhooksBuilder::previous_secret`]) a second, space-separated
//!   `v1,…` signed with the old secret follows.
//!
//! # Delivery
//!
//! At least once, over HTTPS (rustls; plain `http` only with
//! [`WebhooksBuilder::allow_plain_http`]), with a timeout (10 s). Any answer but 2xx,
//! redirects included, is a failure; a failed try is retried after 5 s, doubling each
//! time up to one hour between tries (a `Retry-After` in seconds is honoured up to that
//! cap), until 24 hours after the event was queued: then the event is marked failed.
//! Failed events are listed by [`Webhooks::events`] (and, with the `admin` feature, by
//! `GET /v1/webhook-events?status=failed` of [`EventsRouter`]) and re-sent on request
//! with [`Webhooks::retry`] (`POST /v1/webhook-events/{id}/retry`), which gives them a
//! new horizon. All of these are settings of [`WebhooksBuilder`].
//!
//! Delivery runs in a background task ([`Webhooks::start`]): a management call only
//! queues its events, and a slow or dead receiver never slows a request or a
//! management call.
//!
//! # Where events wait
//!
//! - **PostgreSQL** ([`WebhooksBuilder::postgres`]): events are rows of the
//!   `webhook_outbox` table (migration 8), written in the same transaction as the key
//!   change that caused them, so an event exists exactly when its change committed.
//!   Every instance may run a delivery task: each takes due rows with
//!   `FOR UPDATE SKIP LOCKED` and holds a lease on them (the timeout plus 30 s) while it
//!   tries them, so each event is tried by one instance at a time; a lease left by a
//!   crashed instance ends and another instance takes the event over. `key.expiring` is
//!   queued once per key and expiry, however many instances scan, by a unique index.
//! - **In process** (the default): a bounded queue ([`WebhooksBuilder::queue_capacity`],
//!   10,000 events) in this process's memory. Its events are **lost when the process
//!   ends or crashes**, and an event that does not fit is dropped with a warning. Use it
//!   with [`crate::MemoryStore`], whose keys are lost the same way.
//!
//! Delivered events are kept 7 days and failed ones 30 days, then trimmed.
//!
//! ```no_run
//! use std::sync::Arc;
//! use keygate::webhooks::{WebhookSecret, Webhooks};
//! use keygate::{Keygate, MemoryStore, NewKey};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let store = Arc::new(MemoryStore::new());
//! let webhooks = Webhooks::builder(
//!     "https://hooks.example.com/keygate",
//!     WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")?,
//! )
//! .expiring_keys_of(store.clone())
//! .build()?;
//! let _delivery = webhooks.start();
//! let (_gate, manager) = Keygate::managed(store).webhooks(webhooks).build();
//! // Queues `key.created`; the task delivers it.
//! manager.create("acct_1".into(), NewKey::named("CI")).await?;
//! # Ok(()) }
//! ```

#[cfg(feature = "admin")]
mod admin;
mod builder;
mod client;
mod event;
mod memory;
mod outbox;
mod secret;
mod worker;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

#[cfg(feature = "admin")]
#[cfg_attr(docsrs, doc(cfg(feature = "admin")))]
pub use admin::EventsRouter;
pub use builder::WebhooksBuilder;
pub use event::{EventType, WebhookEvent};
pub use outbox::{EventQuery, EventRecord, EventStatus};
pub use secret::WebhookSecret;
pub use worker::{DeliveryRound, DeliveryTask};

pub(crate) use event::changed_fields;
pub(crate) use outbox::Outbox;
#[cfg(feature = "postgres")]
pub(crate) use outbox::{Claimed, Outcome};

use crate::clock::Clock;
use crate::store::record::AccountId;
use crate::store::StoreError;
use client::Receiver;
use secret::Signing;

/// Why a [`WebhooksBuilder`] refused its settings.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WebhookConfigError {
    /// The receiver URL cannot be used.
    #[error("invalid webhook URL: {0}")]
    InvalidUrl(String),
    /// The URL is plain `http` and that was not allowed.
    #[error("a webhook URL must be https; plain http needs allow_plain_http")]
    PlainHttp,
    /// The secret is not a `whsec_` secret of 24 to 64 bytes; the text never quotes it.
    #[error("invalid webhook secret: {0}")]
    InvalidSecret(String),
    /// The trusted roots cannot be used.
    #[error("webhook TLS settings: {0}")]
    Tls(String),
}

/// Signed webhooks to one receiver: see [the module docs](self). Cheap to clone.
#[derive(Clone)]
pub struct Webhooks {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    receiver: Receiver,
    signing: Signing,
    outbox: Arc<dyn Outbox>,
    durable: bool,
    clock: Clock,
    events: Option<Vec<EventType>>,
    initial_retry: Duration,
    max_retry_interval: Duration,
    horizon: Duration,
    expiry_notice: Option<Duration>,
    lease: Duration,
    poll_interval: Duration,
    scan_interval: Duration,
    batch_size: usize,
    concurrency: usize,
    retention: Duration,
    failed_retention: Duration,
    wake: tokio::sync::Notify,
    dropped: AtomicU64,
}

impl std::fmt::Debug for Webhooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhooks")
            .field("receiver", &self.inner.receiver.origin)
            .field("durable", &self.inner.durable)
            .field("horizon", &self.inner.horizon)
            .finish_non_exhaustive()
    }
}

impl Inner {
    fn sends(&self, event_type: EventType) -> bool {
        self.events.as_ref().is_none_or(|t| t.contains(&event_type))
    }
}

impl Webhooks {
    /// Starts building webhooks to `url`, signed with `secret`.
    pub fn builder(url: impl Into<String>, secret: WebhookSecret) -> WebhooksBuilder {
        WebhooksBuilder::new(url, secret)
    }

    /// Queues `events` (those of a type this receiver takes) for delivery, without
    /// waiting for it; returns how many were queued. For events of changes made outside
    /// the [`crate::KeyManager`], such as a leaked key (`key.leaked`,
    /// [`WebhookEvent::key_leaked`]) or a key running out of credits (`credits.low`,
    /// [`WebhookEvent::credits_low`]).
    ///
    /// Fails when the outbox cannot take them: PostgreSQL is unreachable, or the
    /// in-process queue is full of pending events.
    pub async fn enqueue(
        &self,
        events: impl IntoIterator<Item = WebhookEvent>,
    ) -> Result<usize, StoreError> {
        let events = self.prepare(events.into_iter().collect());
        if events.is_empty() {
            return Ok(0);
        }
        let queued = self.inner.outbox.enqueue(&events).await;
        match &queued {
            Ok(_) => self.inner.wake.notify_one(),
            Err(e) => {
                let n = events.len() as u64;
                self.inner.dropped.fetch_add(n, Ordering::Relaxed);
                tracing::warn!(target: "keygate::webhooks", error = %e, events = n, "webhook events not queued");
            }
        }
        queued
    }

    /// Events in the outbox matching `query`, oldest first (by default the failed
    /// ones of every account).
    pub async fn events(&self, query: &EventQuery) -> Result<Vec<EventRecord>, StoreError> {
        self.inner.outbox.list(query).await
    }

    /// Sends the failed event `id` again: it is pending at once, with a new retry
    /// horizon. `account` confines the call to events of that account. Returns `false`
    /// when there is no such failed event.
    pub async fn retry(&self, id: &str, account: Option<&AccountId>) -> Result<bool, StoreError> {
        let now = self.inner.clock.now();
        let done = self
            .inner
            .outbox
            .retry(id, account, now, now + self.inner.horizon)
            .await?;
        if done {
            self.inner.wake.notify_one();
        }
        Ok(done)
    }

    /// Events that could not be queued since this process started (the outbox was
    /// unreachable, or the in-process queue full).
    pub fn dropped_events(&self) -> u64 {
        self.inner.dropped.load(Ordering::Relaxed)
    }

    /// Whether events are written by the key store in the key change's transaction.
    pub(crate) fn durable(&self) -> bool {
        self.inner.durable
    }

    /// `events` without those of types this receiver does not take, each with the
    /// retry horizon from now.
    pub(crate) fn prepare(&self, mut events: Vec<WebhookEvent>) -> Vec<WebhookEvent> {
        let deadline = self.inner.clock.now() + self.inner.horizon;
        events.retain(|e| self.inner.sends(e.event_type));
        for event in &mut events {
            event.deadline = deadline;
        }
        events
    }

    /// A handle that does not keep the webhooks alive (for hooks that a store holds).
    pub(crate) fn downgrade(&self) -> std::sync::Weak<Inner> {
        Arc::downgrade(&self.inner)
    }

    /// The webhooks of a [`Webhooks::downgrade`] handle, while they live.
    pub(crate) fn upgrade(weak: &std::sync::Weak<Inner>) -> Option<Self> {
        weak.upgrade().map(|inner| Self { inner })
    }

    /// Wakes the delivery task: events were written for it.
    pub(crate) fn wake(&self) {
        self.inner.wake.notify_one();
    }
}

/// Serialises a time as RFC 3339, for listings.
pub(crate) fn serde_time<S: serde::Serializer>(at: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&crate::manage::rfc3339(*at))
}
