//! Where the console's usage pages read key activity from: [`UsageSource`].
//!
//! The console draws a key's requests per hour or per day, split by outcome, and lists
//! its recent API log with filters. It reads both through [`UsageSource`], so any
//! record of key activity can feed it; [`MemoryUsage`] keeps events in memory (for
//! tests, demos and single-process deployments).

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;

use crate::store::record::{AccountId, KeyId};

/// How wide each bar of a usage chart is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Granularity {
    /// One bar per hour (the last 24 hours).
    #[default]
    Hour,
    /// One bar per day (the last 30 days).
    Day,
}

impl Granularity {
    /// The width of one bucket.
    pub fn width(self) -> Duration {
        match self {
            Granularity::Hour => Duration::from_secs(3600),
            Granularity::Day => Duration::from_secs(86_400),
        }
    }

    /// How many buckets a chart shows.
    pub fn buckets(self) -> usize {
        match self {
            Granularity::Hour => 24,
            Granularity::Day => 30,
        }
    }

    /// The start of the bucket holding `at`.
    pub fn floor(self, at: SystemTime) -> SystemTime {
        let secs = at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let w = self.width().as_secs();
        UNIX_EPOCH + Duration::from_secs(secs - secs % w)
    }
}

/// One bucket of a usage series: its start and the requests in it, by outcome
/// (`ok` or a refusal code such as `rate_limited`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UsageBucket {
    /// Start of the bucket.
    pub start: Option<SystemTime>,
    /// Requests per outcome.
    pub outcomes: BTreeMap<String, u64>,
}

impl UsageBucket {
    /// All requests in the bucket.
    pub fn total(&self) -> u64 {
        self.outcomes.values().sum()
    }
}

/// A filter of the API log.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LogQuery {
    /// Only this key's entries.
    pub key: Option<KeyId>,
    /// Only entries with this outcome (`ok`, or a refusal code).
    pub outcome: Option<String>,
    /// Only entries at or after this time.
    pub since: Option<SystemTime>,
    /// At most this many entries, newest first.
    pub limit: usize,
}

/// One request in the API log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogEntry {
    /// When it was decided.
    pub at: SystemTime,
    /// The key it carried.
    pub key: KeyId,
    /// Its account.
    pub account: AccountId,
    /// `ok`, or the refusal code.
    pub outcome: String,
    /// HTTP method.
    pub method: String,
    /// Path (no query string: it may carry secrets).
    pub path: String,
    /// Response status.
    pub status: u16,
}

/// A usage source failed; the page says usage is unavailable (503).
#[derive(Debug, thiserror::Error)]
#[error("usage unavailable: {0}")]
pub struct UsageError(pub String);

/// Key activity, as the console's usage pages read it. Implement it over your own record
/// of requests; every call is confined by the console to the session's account.
#[async_trait]
pub trait UsageSource: Send + Sync + 'static {
    /// `key`'s requests in `granularity` buckets, oldest first, for the buckets that end
    /// after `since` and start before `until`. Missing buckets count as empty.
    async fn series(
        &self,
        account: &AccountId,
        key: &KeyId,
        granularity: Granularity,
        since: SystemTime,
        until: SystemTime,
    ) -> Result<Vec<UsageBucket>, UsageError>;

    /// The account's API log entries matching `query`, newest first.
    async fn log(&self, account: &AccountId, query: &LogQuery)
        -> Result<Vec<LogEntry>, UsageError>;
}

/// Key activity kept in memory: the newest `capacity` requests (100,000 by default).
/// Record each decided request with [`MemoryUsage::record`].
///
/// ```
/// use std::time::SystemTime;
/// use keygate::console::usage::{LogEntry, MemoryUsage};
///
/// let usage = MemoryUsage::default();
/// usage.record(LogEntry {
///     at: SystemTime::now(),
///     key: "ak_1".into(),
///     account: "acct_1".into(),
///     outcome: "ok".into(),
///     method: "GET".into(),
///     path: "/v1/things".into(),
///     status: 200,
/// });
/// assert_eq!(usage.len(), 1);
/// ```
#[derive(Debug)]
pub struct MemoryUsage {
    entries: Mutex<VecDeque<LogEntry>>,
    capacity: usize,
}

impl Default for MemoryUsage {
    fn default() -> Self {
        Self::with_capacity(100_000)
    }
}

impl MemoryUsage {
    /// Keeps the newest `capacity` entries.
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            entries: Mutex::new(VecDeque::new()),
            capacity: capacity.max(1),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<LogEntry>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records one request.
    pub fn record(&self, entry: LogEntry) {
        let mut entries = self.lock();
        if entries.len() == self.capacity {
            entries.pop_front();
        }
        entries.push_back(entry);
    }

    /// How many entries are kept.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[async_trait]
impl UsageSource for MemoryUsage {
    async fn series(
        &self,
        account: &AccountId,
        key: &KeyId,
        granularity: Granularity,
        since: SystemTime,
        until: SystemTime,
    ) -> Result<Vec<UsageBucket>, UsageError> {
        let first = granularity.floor(since);
        let mut buckets: BTreeMap<SystemTime, UsageBucket> = BTreeMap::new();
        let mut at = first;
        while at < until {
            buckets.insert(
                at,
                UsageBucket {
                    start: Some(at),
                    outcomes: BTreeMap::new(),
                },
            );
            at += granularity.width();
        }
        for e in self.lock().iter() {
            if &e.account != account || &e.key != key || e.at < first || e.at >= until {
                continue;
            }
            if let Some(b) = buckets.get_mut(&granularity.floor(e.at)) {
                *b.outcomes.entry(e.outcome.clone()).or_default() += 1;
            }
        }
        Ok(buckets.into_values().collect())
    }

    async fn log(
        &self,
        account: &AccountId,
        query: &LogQuery,
    ) -> Result<Vec<LogEntry>, UsageError> {
        Ok(self
            .lock()
            .iter()
            .rev()
            .filter(|e| &e.account == account)
            .filter(|e| query.key.as_ref().is_none_or(|k| &e.key == k))
            .filter(|e| query.outcome.as_ref().is_none_or(|o| &e.outcome == o))
            .filter(|e| query.since.is_none_or(|s| e.at >= s))
            .take(query.limit)
            .cloned()
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(at: SystemTime, key: &str, account: &str, outcome: &str) -> LogEntry {
        LogEntry {
            at,
            key: key.into(),
            account: account.into(),
            outcome: outcome.into(),
            method: "GET".into(),
            path: "/".into(),
            status: 200,
        }
    }

    #[tokio::test]
    async fn series_buckets_by_hour_and_outcome_within_the_account() {
        let usage = MemoryUsage::default();
        let t0 = UNIX_EPOCH + Duration::from_secs(1_000 * 3600);
        usage.record(entry(t0, "ak_1", "acct_1", "ok"));
        usage.record(entry(t0 + Duration::from_secs(10), "ak_1", "acct_1", "ok"));
        usage.record(entry(
            t0 + Duration::from_secs(3600),
            "ak_1",
            "acct_1",
            "rate_limited",
        ));
        usage.record(entry(t0, "ak_1", "acct_2", "ok"));
        let series = usage
            .series(
                &"acct_1".into(),
                &"ak_1".into(),
                Granularity::Hour,
                t0,
                t0 + Duration::from_secs(3 * 3600),
            )
            .await
            .unwrap();
        assert_eq!(series.len(), 3);
        assert_eq!(series[0].outcomes["ok"], 2);
        assert_eq!(series[1].outcomes["rate_limited"], 1);
        assert_eq!(series[2].total(), 0);
    }

    #[tokio::test]
    async fn the_log_filters_and_keeps_the_newest() {
        let usage = MemoryUsage::with_capacity(2);
        let t0 = SystemTime::now();
        usage.record(entry(t0, "ak_1", "acct_1", "ok"));
        usage.record(entry(t0, "ak_2", "acct_1", "invalid_api_key"));
        usage.record(entry(t0, "ak_1", "acct_1", "ok"));
        let query = LogQuery {
            outcome: Some("ok".into()),
            limit: 10,
            ..LogQuery::default()
        };
        let log = usage.log(&"acct_1".into(), &query).await.unwrap();
        assert_eq!(log.len(), 1);
        assert!(usage
            .log(&"acct_2".into(), &query)
            .await
            .unwrap()
            .is_empty());
    }
}
