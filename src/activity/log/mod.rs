//! The API log: recent requests per key, for a customer investigating how its keys are
//! used ("who called us with this key, from where, and why was it refused?").
//!
//! # What is recorded
//!
//! One [`ApiEvent`] per request whose key was recognised: its time, key id, account,
//! outcome (`accepted`, or the refusal's stable code such as `ip_not_allowed` or
//! `rate_limited`), method, path (without its query string), client IP and response
//! status.
//!
//! - **Every refusal after recognition** is recorded: revoked, disabled, expired, wrong
//!   environment, IP, scope, read-only and rate-limit refusals. Refusals before a key is
//!   recognised (no credentials, a malformed or unknown key) name no key and are not.
//! - **Accepted requests** only when the deployment turns them on, with
//!   [`ApiLogConfig::accepted_sample_rate`]: off by default, so that a cached hit pays
//!   only a branch on a flag. The sampler is a counter, so a rate of 1/10 records exactly
//!   every tenth accepted request of the gate. An accepted event's status is the one the
//!   service answered with, recorded when its response is ready.
//! - **Never a secret**: no plaintext, key body or digest is ever part of an event. A
//!   path segment that is itself a key of the deployment's format (a client that put its
//!   key in the URL) is recorded as `[redacted]`. Paths are cut at 512 bytes.
//!
//! # Bounded, and off the request path
//!
//! - **Per account per minute**: an account records at most
//!   [`ApiLogConfig::max_events_per_account_per_minute`] events (default 600) each
//!   minute of the gate's clock; the rest are dropped and counted
//!   ([`ApiLogStats::dropped_over_bound`]), so one busy or attacked key cannot flood the
//!   log, and other accounts' events are unaffected.
//! - **Off the request path**: a request only pushes its event into a bounded channel
//!   ([`ApiLogConfig::buffer`], default 10,000), never waiting; when it is full the event
//!   is dropped and counted ([`ApiLogStats::dropped_buffer_full`]). A background task
//!   drains it and writes one batch per flush ([`ApiLogConfig::flush_interval`], default
//!   1 s) through [`ApiLogStore::append_events`]. [`ApiLog::flush`] writes what is
//!   buffered now; dropping the last clone of the gate flushes what remains. A crash
//!   loses at most one flush interval of events.
//! - **Stored with a retention and a bound per account**: events older than
//!   [`ApiLogConfig::retention`] (default 7 days) are pruned, and an account keeps at most
//!   [`ApiLogConfig::max_events_per_account`] (default 10,000), newest first.
//!
//! # Storage
//!
//! [`ApiLogStore`] is implemented by [`crate::MemoryStore`] and, with the `postgres`
//! feature, by [`crate::store::PgStore`] (one batched insert per flush; a table added by
//! [`crate::store::PgStore::migrate`]). Any instance reads what every instance wrote.
//!
//! # Reading
//!
//! [`crate::KeyManager::api_logs`] (server-side, any key of an account) and
//! [`crate::manage::ActingManager::api_logs`] (confined to what the calling key may see:
//! its own account, keys of its environment), and `GET /v1/api-logs` in the management
//! API (feature `admin`). Newest first, filtered by key, outcome and time, paged with an
//! opaque cursor. [`crate::KeyManager::erase_account_events`] deletes an account's
//! events, for a customer who leaves.
//!
//! ```
//! use keygate::activity::log::{ApiLogConfig, ApiLogQuery};
//! use keygate::{Keygate, MemoryStore, NewKey};
//! use std::sync::Arc;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let store = Arc::new(MemoryStore::new());
//! let (gate, manager) = Keygate::managed(store.clone())
//!     .api_log(ApiLogConfig::new(store).accepted_sample_rate(1.0))
//!     .build();
//! let created = manager.create("acct_1".into(), NewKey::named("CI")).await?;
//! // ... requests through `gate.layer()` ...
//! gate.api_log().expect("configured").flush().await;
//! let page = manager.api_logs(&"acct_1".into(), &ApiLogQuery::default()).await?;
//! assert!(page.data.is_empty());
//! # let _ = created; Ok(()) }
//! ```

mod config;
pub(crate) mod cursor;
pub(crate) mod event;
mod memory;
mod query;
mod read;
pub(crate) mod recorder;

use std::time::SystemTime;

use async_trait::async_trait;

pub use config::ApiLogConfig;
pub use event::{ApiEvent, OUTCOMES};
pub(crate) use memory::EventBuffer;
pub use query::{
    ApiLogPage, ApiLogQuery, EventFilter, EventPosition, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE,
};
pub use recorder::{ApiLog, ApiLogStats};

use crate::store::record::AccountId;
use crate::store::StoreError;

/// The storage limits of the API log, handed to every [`ApiLogStore::append_events`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ApiLogLimits {
    /// Events older than this (before the flush's `now`) are deleted.
    pub retention: std::time::Duration,
    /// An account keeps at most this many events, its newest.
    pub max_events_per_account: usize,
}

/// Where the API log's events live. Object-safe: `Arc<dyn ApiLogStore>` works.
///
/// Stores never see a secret: an [`ApiEvent`] holds none.
#[async_trait]
pub trait ApiLogStore: Send + Sync + 'static {
    /// Stores one batch of events (one flush), giving each a [`ApiEvent::seq`] that grows
    /// with insertion, then applies `limits` as of `now` to every account in the batch:
    /// its events older than the retention are deleted, and beyond
    /// `max_events_per_account` its oldest. Other accounts are untouched.
    async fn append_events(
        &self,
        events: &[ApiEvent],
        limits: &ApiLogLimits,
        now: SystemTime,
    ) -> Result<(), StoreError>;

    /// Deletes every event older than `before`, of every account; returns how many.
    async fn prune_events(&self, before: SystemTime) -> Result<u64, StoreError>;

    /// Up to `filter.limit` events of `filter.account_id` that match the filter, newest
    /// first (by time, then by `seq`), strictly after `filter.after` in that order.
    async fn query_events(&self, filter: &EventFilter) -> Result<Vec<ApiEvent>, StoreError>;

    /// Deletes every event of `account`; returns how many.
    async fn erase_account_events(&self, account: &AccountId) -> Result<u64, StoreError>;
}

#[async_trait]
impl<S: ApiLogStore + ?Sized> ApiLogStore for std::sync::Arc<S> {
    async fn append_events(
        &self,
        events: &[ApiEvent],
        limits: &ApiLogLimits,
        now: SystemTime,
    ) -> Result<(), StoreError> {
        (**self).append_events(events, limits, now).await
    }
    async fn prune_events(&self, before: SystemTime) -> Result<u64, StoreError> {
        (**self).prune_events(before).await
    }
    async fn query_events(&self, filter: &EventFilter) -> Result<Vec<ApiEvent>, StoreError> {
        (**self).query_events(filter).await
    }
    async fn erase_account_events(&self, account: &AccountId) -> Result<u64, StoreError> {
        (**self).erase_account_events(account).await
    }
}
