//! Where events wait for delivery: the outbox interface and its listing types.

use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use serde::Serialize;

use super::event::WebhookEvent;
use crate::store::record::{AccountId, KeyId, KeyRecord};
use crate::store::StoreError;

/// Where an event stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[cfg_attr(feature = "admin", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum EventStatus {
    /// Waiting for its first or next try.
    Pending,
    /// A receiver answered 2xx.
    Delivered,
    /// Every try until the retry horizon failed; it stays listed until re-sent.
    Failed,
}

impl EventStatus {
    /// `pending`, `delivered` or `failed`.
    pub const fn as_str(self) -> &'static str {
        match self {
            EventStatus::Pending => "pending",
            EventStatus::Delivered => "delivered",
            EventStatus::Failed => "failed",
        }
    }

    /// The status named `name`.
    pub fn parse(name: &str) -> Option<Self> {
        [Self::Pending, Self::Delivered, Self::Failed]
            .into_iter()
            .find(|s| s.as_str() == name)
    }
}

/// An event as the outbox holds it, for listings.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "admin", derive(utoipa::ToSchema))]
#[non_exhaustive]
pub struct EventRecord {
    /// The `webhook-id`.
    pub id: String,
    /// The payload's `type`.
    #[serde(rename = "type")]
    pub event_type: String,
    /// Where it stands.
    pub status: EventStatus,
    /// Tries made so far.
    pub attempts: u32,
    /// The account of the key it is about.
    #[cfg_attr(feature = "admin", schema(value_type = String))]
    pub account_id: AccountId,
    /// The key it is about.
    #[cfg_attr(feature = "admin", schema(value_type = Option<String>))]
    pub key_id: Option<KeyId>,
    /// When it was queued.
    #[serde(serialize_with = "super::serde_time")]
    #[cfg_attr(feature = "admin", schema(value_type = String, format = DateTime))]
    pub created_at: SystemTime,
    /// When it is tried next (pending), or was last tried.
    #[serde(serialize_with = "super::serde_time")]
    #[cfg_attr(feature = "admin", schema(value_type = String, format = DateTime))]
    pub next_attempt_at: SystemTime,
    /// Why the last try failed: a status code, a timeout, a connection error.
    pub last_error: Option<String>,
    /// The payload, as it is sent.
    #[cfg_attr(feature = "admin", schema(value_type = Object))]
    pub payload: serde_json::Value,
}

/// Which events to list: [`super::Webhooks::events`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct EventQuery {
    /// Only events in this state. Default: [`EventStatus::Failed`].
    pub status: EventStatus,
    /// Only events about keys of this account. Default: every account.
    pub account: Option<AccountId>,
    /// Only events queued after the one with this id (the last of the previous page).
    pub after: Option<String>,
    /// Most events returned, 1 to 100. Default: 25.
    pub limit: usize,
}

impl Default for EventQuery {
    fn default() -> Self {
        Self {
            status: EventStatus::Failed,
            account: None,
            after: None,
            limit: 25,
        }
    }
}

impl EventQuery {
    /// Events in `status`.
    #[must_use]
    pub fn status(mut self, status: EventStatus) -> Self {
        self.status = status;
        self
    }

    /// Events of `account` only.
    #[must_use]
    pub fn account(mut self, account: AccountId) -> Self {
        self.account = Some(account);
        self
    }

    /// Events queued after the event `id`.
    #[must_use]
    pub fn after(mut self, id: impl Into<String>) -> Self {
        self.after = Some(id.into());
        self
    }

    /// At most `limit` events (clamped to 1-100).
    #[must_use]
    pub fn limit(mut self, limit: usize) -> Self {
        self.limit = limit.clamp(1, 100);
        self
    }
}

/// An event taken for one try, under a lease.
#[derive(Debug)]
pub(crate) struct Claimed {
    pub(crate) id: String,
    pub(crate) body: String,
    pub(crate) attempts: u32,
    pub(crate) deadline: SystemTime,
}

/// How a try ended.
#[derive(Debug)]
pub(crate) enum Outcome {
    Delivered,
    Retry { at: SystemTime, error: String },
    Failed { error: String },
}

/// The durable (PostgreSQL) or in-process store of events waiting for delivery.
#[async_trait]
pub(crate) trait Outbox: Send + Sync + 'static {
    /// Queues `events`, each to be tried until its deadline; returns how many were
    /// queued (an expiry notice already queued is not queued again).
    async fn enqueue(&self, events: &[WebhookEvent]) -> Result<usize, StoreError>;
    /// Takes up to `limit` due events not leased by anyone, leasing them to `owner`
    /// until `lease_until`.
    async fn claim(
        &self,
        now: SystemTime,
        limit: usize,
        owner: &str,
        lease_until: SystemTime,
    ) -> Result<Vec<Claimed>, StoreError>;
    /// Records how a try of `id` by `owner` ended; ignored when the lease was lost.
    async fn finish(
        &self,
        id: &str,
        owner: &str,
        outcome: Outcome,
        now: SystemTime,
    ) -> Result<(), StoreError>;
    /// Events matching `query`, oldest first.
    async fn list(&self, query: &EventQuery) -> Result<Vec<EventRecord>, StoreError>;
    /// Makes a failed event `id` (of `account`, when given) pending again, due at
    /// `now`, with a new `deadline`. `false` when there is no such failed event.
    async fn retry(
        &self,
        id: &str,
        account: Option<&AccountId>,
        now: SystemTime,
        deadline: SystemTime,
    ) -> Result<bool, StoreError>;
    /// Keys not revoked whose `expires_at` is in `(now, until]` and that have no
    /// expiry notice for that expiry yet.
    async fn expiring(
        &self,
        now: SystemTime,
        until: SystemTime,
    ) -> Result<Vec<KeyRecord>, StoreError>;
    /// Drops delivered events finished before `before`, and failed ones finished before
    /// `failed_before`; returns how many.
    async fn trim(
        &self,
        before: SystemTime,
        failed_before: SystemTime,
        now: SystemTime,
    ) -> Result<u64, StoreError>;
}

/// The delay before try `attempt + 1`, after `attempt` failed tries: `initial`,
/// doubling each time, at most `max`.
pub(crate) fn backoff(initial: Duration, max: Duration, attempt: u32) -> Duration {
    let factor = 1u32
        .checked_shl(attempt.saturating_sub(1))
        .unwrap_or(u32::MAX);
    initial.saturating_mul(factor).min(max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backoff_doubles_and_is_capped() {
        let s = Duration::from_secs;
        let delays: Vec<_> = (1..=6).map(|a| backoff(s(5), s(60), a)).collect();
        assert_eq!(delays, [s(5), s(10), s(20), s(40), s(60), s(60)]);
        assert_eq!(backoff(s(5), s(3600), 200), s(3600));
    }
}
