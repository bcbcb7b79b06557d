//! [`UsageConfig`]: whether and where a gate counts, and how often it flushes.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::UsageStore;

/// Usage counting settings, for [`crate::KeygateBuilder::usage`].
///
/// On by default over a key store that keeps usage ([`crate::MemoryStore`], `PgStore`),
/// flushing every 10 seconds; off over any other store unless [`UsageConfig::store`]
/// names one.
///
/// ```
/// use std::time::Duration;
/// use keygate::activity::UsageConfig;
/// use keygate::{Keygate, MemoryStore};
///
/// let (gate, _manager) = Keygate::managed(MemoryStore::new())
///     .usage(UsageConfig::default().flush_interval(Duration::from_secs(1)))
///     .build();
/// assert!(gate.counts_usage());
/// ```
#[derive(Clone)]
#[must_use]
pub struct UsageConfig {
    pub(crate) enabled: bool,
    pub(crate) store: Option<Arc<dyn UsageStore>>,
    pub(crate) flush_interval: Duration,
    pub(crate) max_pending: usize,
}

impl Default for UsageConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            store: None,
            flush_interval: Self::DEFAULT_FLUSH_INTERVAL,
            max_pending: Self::DEFAULT_MAX_PENDING,
        }
    }
}

impl fmt::Debug for UsageConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UsageConfig")
            .field("enabled", &self.enabled)
            .field("store", &self.store.is_some())
            .field("flush_interval", &self.flush_interval)
            .field("max_pending", &self.max_pending)
            .finish()
    }
}

impl UsageConfig {
    /// Default flush interval: 10 seconds (what a crash can lose at most).
    pub const DEFAULT_FLUSH_INTERVAL: Duration = Duration::from_secs(10);
    /// Default bound on counts kept while the sink fails: 1,000,000.
    pub const DEFAULT_MAX_PENDING: usize = 1_000_000;

    /// No counting at all: nothing is added on the request path.
    pub fn off() -> Self {
        Self {
            enabled: false,
            ..Self::default()
        }
    }

    /// Where counts go and are read from, instead of the key store's own.
    pub fn store(mut self, store: impl UsageStore) -> Self {
        self.store = Some(Arc::new(store));
        self
    }

    /// How often the background task flushes (at least 10 ms). A crash loses at most
    /// the counts of one interval; keep it under a minute, so that each count keeps its
    /// exact minute.
    pub fn flush_interval(mut self, interval: Duration) -> Self {
        self.flush_interval = interval.max(Duration::from_millis(10));
        self
    }

    /// Most distinct counts (subject, minute, outcome) kept in memory while the sink
    /// fails; beyond it the oldest minutes are dropped, with an error logged.
    pub fn max_pending_counts(mut self, max: usize) -> Self {
        self.max_pending = max.max(1);
        self
    }
}
