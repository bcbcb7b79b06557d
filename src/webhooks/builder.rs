//! [`WebhooksBuilder`]: the receiver, its secrets, the retry policy and the outbox.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::client::Receiver;
use super::event::EventType;
use super::memory::MemoryOutbox;
use super::outbox::Outbox;
use super::secret::{Signing, WebhookSecret};
use super::{Inner, WebhookConfigError, Webhooks};
use crate::clock::Clock;
use crate::store::MemoryStore;

/// Builds [`Webhooks`]: see [`Webhooks::builder`].
#[must_use = "a builder does nothing until `build` is called"]
pub struct WebhooksBuilder {
    url: String,
    signing: Signing,
    allow_http: bool,
    roots_pem: Vec<Vec<u8>>,
    timeout: Duration,
    initial_retry: Duration,
    max_retry_interval: Duration,
    horizon: Duration,
    expiry_notice: Option<Duration>,
    events: Option<Vec<EventType>>,
    clock: Clock,
    queue_capacity: usize,
    memory_keys: Option<Arc<MemoryStore>>,
    outbox: Option<Arc<dyn Outbox>>,
    /// The store whose ledger writes `credits.low` into the outbox.
    #[cfg(feature = "postgres")]
    pg: Option<crate::store::PgStore>,
    poll_interval: Duration,
    scan_interval: Duration,
    batch_size: usize,
    concurrency: usize,
    retention: Duration,
    failed_retention: Duration,
}

impl std::fmt::Debug for WebhooksBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhooksBuilder")
            .field("timeout", &self.timeout)
            .field("horizon", &self.horizon)
            .field("durable", &self.outbox.is_some())
            .finish_non_exhaustive()
    }
}

impl WebhooksBuilder {
    pub(super) fn new(url: impl Into<String>, secret: WebhookSecret) -> Self {
        Self {
            url: url.into(),
            signing: Signing {
                current: secret,
                previous: None,
            },
            allow_http: false,
            roots_pem: Vec::new(),
            timeout: Duration::from_secs(10),
            initial_retry: Duration::from_secs(5),
            max_retry_interval: Duration::from_secs(3600),
            horizon: Duration::from_secs(24 * 3600),
            expiry_notice: Some(Duration::from_secs(7 * 24 * 3600)),
            events: None,
            clock: Clock::system(),
            queue_capacity: 10_000,
            memory_keys: None,
            outbox: None,
            #[cfg(feature = "postgres")]
            pg: None,
            poll_interval: Duration::from_secs(1),
            scan_interval: Duration::from_secs(60),
            batch_size: 32,
            concurrency: 8,
            retention: Duration::from_secs(7 * 24 * 3600),
            failed_retention: Duration::from_secs(30 * 24 * 3600),
        }
    }

    /// Also signs with `secret`, the one being rotated out, until `until`: each
    /// delivery then carries two signatures, so a receiver that knows either secret
    /// accepts it while it switches over.
    pub fn previous_secret(mut self, secret: WebhookSecret, until: SystemTime) -> Self {
        self.signing.previous = Some((secret, until));
        self
    }

    /// Trusts the certificate authorities in this PEM document (one or more
    /// `CERTIFICATE` blocks) instead of the operating system's; calling it again also
    /// trusts those.
    pub fn root_certificates_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.roots_pem.push(pem.into());
        self
    }

    /// Allows a plain `http://` receiver URL. Off by default: payloads and signatures
    /// would cross the network in the clear.
    pub fn allow_plain_http(mut self) -> Self {
        self.allow_http = true;
        self
    }

    /// Longest wait for a receiver's answer, connecting included. Default: 10 s.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The delay after the first failed try; it doubles after each further failure,
    /// up to [`max_retry_interval`](Self::max_retry_interval). Default: 5 s.
    pub fn initial_retry_interval(mut self, interval: Duration) -> Self {
        self.initial_retry = interval;
        self
    }

    /// Longest delay between two tries. Default: 1 hour.
    pub fn max_retry_interval(mut self, interval: Duration) -> Self {
        self.max_retry_interval = interval;
        self
    }

    /// How long after it was queued (or re-sent) an event is tried before it is marked
    /// failed. Default: 24 hours.
    pub fn retry_horizon(mut self, horizon: Duration) -> Self {
        self.horizon = horizon;
        self
    }

    /// How long before a key's `expires_at` its `key.expiring` is sent; `None` sends
    /// none. Default: 7 days. A key created closer to its expiry is announced at the
    /// next scan.
    pub fn expiry_notice(mut self, before: Option<Duration>) -> Self {
        self.expiry_notice = before;
        self
    }

    /// Sends only events of these types. Default: every type.
    pub fn events(mut self, types: impl IntoIterator<Item = EventType>) -> Self {
        self.events = Some(types.into_iter().collect());
        self
    }

    /// The clock timestamps, backoff and expiry notices are read from. Give it the
    /// gate's clock ([`crate::Keygate::clock`]). Default: the system clock.
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// How many events the in-process queue holds (pending, and finished ones kept for
    /// listing). When it is full of pending events, new ones are dropped with a
    /// warning. Default: 10,000. Not used with [`postgres`](Self::postgres).
    pub fn queue_capacity(mut self, events: usize) -> Self {
        self.queue_capacity = events;
        self
    }

    /// With the in-process queue, the store whose keys get `key.expiring` notices.
    pub fn expiring_keys_of(mut self, store: Arc<MemoryStore>) -> Self {
        self.memory_keys = Some(store);
        self
    }

    /// Keeps events in `store`'s outbox table (migration 8), written in the same
    /// transaction as the key change when the [`crate::KeyManager`] uses this store.
    /// Every instance delivering from it takes each due event under a lease, so each
    /// event is tried by one instance at a time. Default: the in-process queue.
    #[cfg(feature = "postgres")]
    #[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
    ///
    /// The store's credit ledger then writes `credits.low` into the outbox too, in the
    /// statement that crosses the threshold (when this receiver takes `credits.low`):
    /// give the gate a clone of this same store.
    pub fn postgres(mut self, store: crate::store::PgStore) -> Self {
        self.pg = Some(store.clone());
        self.outbox = Some(Arc::new(store));
        self
    }

    /// How often the delivery task looks for due events when nothing wakes it.
    /// Default: 1 s.
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval;
        self
    }

    /// How often keys are scanned for expiry notices and old events trimmed.
    /// Default: 1 minute.
    pub fn scan_interval(mut self, interval: Duration) -> Self {
        self.scan_interval = interval;
        self
    }

    /// Most events taken per round, and most tries in flight at once.
    /// Defaults: 32 and 8.
    pub fn batch(mut self, size: usize, concurrency: usize) -> Self {
        self.batch_size = size.max(1);
        self.concurrency = concurrency.max(1);
        self
    }

    /// How long delivered events, and failed ones, stay listed. Defaults: 7 and 30 days.
    pub fn retention(mut self, delivered: Duration, failed: Duration) -> Self {
        self.retention = delivered;
        self.failed_retention = failed;
        self
    }

    /// Checks the URL and the trusted roots. Refused: a URL that is not `https` (unless
    /// allowed), has no host or has user information; PEM without certificates; no
    /// system roots when none are configured.
    pub fn build(self) -> Result<Webhooks, WebhookConfigError> {
        let receiver = Receiver::new(&self.url, self.allow_http, &self.roots_pem, self.timeout)?;
        let durable = self.outbox.is_some();
        #[cfg(feature = "postgres")]
        if let Some(pg) = &self.pg {
            let takes = self
                .events
                .as_ref()
                .is_none_or(|t| t.contains(&EventType::CreditsLow));
            if takes {
                pg.send_low_credits(self.horizon);
            }
        }
        let outbox = self
            .outbox
            .unwrap_or_else(|| Arc::new(MemoryOutbox::new(self.queue_capacity, self.memory_keys)));
        Ok(Webhooks {
            inner: Arc::new(Inner {
                receiver,
                signing: self.signing,
                outbox,
                durable,
                clock: self.clock,
                events: self.events,
                initial_retry: self.initial_retry,
                max_retry_interval: self.max_retry_interval,
                horizon: self.horizon,
                expiry_notice: self.expiry_notice,
                lease: self.timeout + Duration::from_secs(30),
                poll_interval: self.poll_interval,
                scan_interval: self.scan_interval,
                batch_size: self.batch_size,
                concurrency: self.concurrency,
                retention: self.retention,
                failed_retention: self.failed_retention,
                wake: tokio::sync::Notify::new(),
                dropped: std::sync::atomic::AtomicU64::new(0),
            }),
        })
    }
}
