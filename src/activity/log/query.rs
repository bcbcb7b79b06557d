//! What a reader asks of the API log, and what a store is asked.

use std::time::SystemTime;

use serde::Serialize;

use super::ApiEvent;
use crate::store::record::{AccountId, KeyId};

/// Default page size of [`crate::KeyManager::api_logs`].
pub const DEFAULT_PAGE_SIZE: usize = 50;
/// Largest page size of [`crate::KeyManager::api_logs`].
pub const MAX_PAGE_SIZE: usize = 100;

/// The input of [`crate::KeyManager::api_logs`]: which events, and which page of them.
/// Every filter is optional; together they must all match.
///
/// ```
/// use keygate::activity::log::ApiLogQuery;
///
/// let query = ApiLogQuery::default()
///     .key_id("ak_0Q5kR2xv")
///     .outcome("rate_limited")
///     .limit(20);
/// # let _ = query;
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ApiLogQuery {
    /// Only this key's events.
    pub key_id: Option<KeyId>,
    /// Only events with this outcome (`accepted`, or a refusal code: see
    /// [`super::OUTCOMES`]).
    pub outcome: Option<String>,
    /// Only events at or after this time.
    pub from: Option<SystemTime>,
    /// Only events before this time.
    pub to: Option<SystemTime>,
    /// The `next_cursor` of the previous page; `None` (or empty) for the first page.
    pub cursor: Option<String>,
    /// Events per page: 1 to 100, default 50.
    pub limit: Option<usize>,
}

impl ApiLogQuery {
    /// Only this key's events.
    pub fn key_id(mut self, id: impl Into<KeyId>) -> Self {
        self.key_id = Some(id.into());
        self
    }
    /// Only events with this outcome.
    pub fn outcome(mut self, outcome: impl Into<String>) -> Self {
        self.outcome = Some(outcome.into());
        self
    }
    /// Only events at or after `from`.
    pub fn from(mut self, from: SystemTime) -> Self {
        self.from = Some(from);
        self
    }
    /// Only events before `to`.
    pub fn to(mut self, to: SystemTime) -> Self {
        self.to = Some(to);
        self
    }
    /// The page after the one whose `next_cursor` this is.
    pub fn cursor(mut self, cursor: impl Into<String>) -> Self {
        self.cursor = Some(cursor.into());
        self
    }
    /// Events per page.
    pub fn limit(mut self, limit: usize) -> Self {
        self.limit = Some(limit);
        self
    }
}

/// One page of [`crate::KeyManager::api_logs`].
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(
    feature = "admin",
    derive(utoipa::ToSchema),
    schema(
        description = "One page of events, newest first; pass `next_cursor` as `cursor` \
                          for the next"
    )
)]
#[non_exhaustive]
pub struct ApiLogPage {
    /// The events, newest first.
    #[cfg_attr(feature = "admin", schema(value_type = Vec<ApiEvent>))]
    pub data: Vec<ApiEvent>,
    /// Pass as `cursor` for the next page; `None` on the last page.
    pub next_cursor: Option<String>,
}

/// A place in the log's order (newest first: by time, then by [`ApiEvent::seq`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct EventPosition {
    /// The event's time.
    pub time: SystemTime,
    /// The event's sequence number.
    pub seq: u64,
}

impl EventPosition {
    /// A position.
    pub fn new(time: SystemTime, seq: u64) -> Self {
        Self { time, seq }
    }

    /// The position of `event`.
    pub fn of(event: &ApiEvent) -> Self {
        Self::new(event.time, event.seq)
    }

    /// Whether `event` comes after this position, newest first.
    pub fn precedes(&self, event: &ApiEvent) -> bool {
        (event.time, event.seq) < (self.time, self.seq)
    }
}

/// What [`super::ApiLogStore::query_events`] is asked: one account's events matching
/// every filter set, newest first, after a position.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct EventFilter {
    /// The account.
    pub account_id: AccountId,
    /// Only this key's events.
    pub key_id: Option<KeyId>,
    /// Only events with this outcome.
    pub outcome: Option<String>,
    /// Only events at or after this time.
    pub from: Option<SystemTime>,
    /// Only events before this time.
    pub to: Option<SystemTime>,
    /// Only events after this position, newest first.
    pub after: Option<EventPosition>,
    /// At most this many.
    pub limit: usize,
}

impl EventFilter {
    /// Every event of `account`, up to `limit`.
    pub fn account(account_id: AccountId, limit: usize) -> Self {
        Self {
            account_id,
            key_id: None,
            outcome: None,
            from: None,
            to: None,
            after: None,
            limit,
        }
    }

    /// Whether `event` matches (the account and every filter set, and after the position).
    pub fn matches(&self, event: &ApiEvent) -> bool {
        event.account_id == self.account_id
            && self.key_id.as_ref().is_none_or(|k| *k == event.key_id)
            && self.outcome.as_ref().is_none_or(|o| *o == event.outcome)
            && self.from.is_none_or(|f| event.time >= f)
            && self.to.is_none_or(|t| event.time < t)
            && self.after.is_none_or(|p| p.precedes(event))
    }
}
