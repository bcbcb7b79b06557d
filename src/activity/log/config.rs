//! [`ApiLogConfig`]: where the API log is stored, what it records and its bounds.

use std::sync::Arc;
use std::time::Duration;

use super::{ApiLogLimits, ApiLogStore};

/// Turns the API log on, for [`crate::KeygateBuilder::api_log`]. See [`super`] for what
/// it records.
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use keygate::activity::log::ApiLogConfig;
/// use keygate::{Keygate, MemoryStore};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let store = Arc::new(MemoryStore::new());
/// let (gate, _manager) = Keygate::managed(store.clone())
///     .api_log(
///         ApiLogConfig::new(store)
///             .accepted_sample_rate(0.01) // 1 accepted request in 100
///             .retention(Duration::from_secs(30 * 24 * 3600))
///             .max_events_per_account(50_000),
///     )
///     .build();
/// assert!(gate.api_log().is_some());
/// # }
/// ```
#[derive(Clone)]
#[must_use]
pub struct ApiLogConfig {
    pub(crate) store: Arc<dyn ApiLogStore>,
    /// Accepted requests recorded per million; 0: none.
    pub(crate) accepted_per_million: u64,
    pub(crate) per_account_per_minute: u32,
    pub(crate) limits: ApiLogLimits,
    pub(crate) buffer: usize,
    pub(crate) flush_interval: Duration,
    pub(crate) max_batch: usize,
}

impl std::fmt::Debug for ApiLogConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiLogConfig")
            .field("accepted_per_million", &self.accepted_per_million)
            .field("per_account_per_minute", &self.per_account_per_minute)
            .field("limits", &self.limits)
            .field("buffer", &self.buffer)
            .field("flush_interval", &self.flush_interval)
            .finish_non_exhaustive()
    }
}

impl ApiLogConfig {
    /// Default of [`ApiLogConfig::retention`]: 7 days.
    pub const DEFAULT_RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);
    /// Default of [`ApiLogConfig::max_events_per_account`].
    pub const DEFAULT_MAX_EVENTS_PER_ACCOUNT: usize = 10_000;
    /// Default of [`ApiLogConfig::max_events_per_account_per_minute`].
    pub const DEFAULT_MAX_EVENTS_PER_ACCOUNT_PER_MINUTE: u32 = 600;
    /// Default of [`ApiLogConfig::buffer`].
    pub const DEFAULT_BUFFER: usize = 10_000;

    /// An API log stored in `store`, recording refusals only, with the default bounds.
    pub fn new(store: impl ApiLogStore) -> Self {
        Self {
            store: Arc::new(store),
            accepted_per_million: 0,
            per_account_per_minute: Self::DEFAULT_MAX_EVENTS_PER_ACCOUNT_PER_MINUTE,
            limits: ApiLogLimits {
                retention: Self::DEFAULT_RETENTION,
                max_events_per_account: Self::DEFAULT_MAX_EVENTS_PER_ACCOUNT,
            },
            buffer: Self::DEFAULT_BUFFER,
            flush_interval: Duration::from_secs(1),
            max_batch: 1000,
        }
    }

    /// Also records accepted requests, this fraction of them (0.0 to 1.0, to the
    /// millionth; clamped). Default: 0, none, so that the hit path pays only one branch.
    /// Sampling is by a counter of the gate's accepted requests: at 0.1, exactly one in
    /// ten is recorded. The cost when on is in `BENCHMARKS.md`.
    pub fn accepted_sample_rate(mut self, rate: f64) -> Self {
        let rate = if rate.is_nan() {
            0.0
        } else {
            rate.clamp(0.0, 1.0)
        };
        // At most 1,000,000: the cast cannot truncate.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let per_million = (rate * 1_000_000.0).round() as u64;
        self.accepted_per_million = per_million;
        self
    }

    /// Most events an account records per minute of the gate's clock; the rest are
    /// dropped and counted. Default: 600.
    pub fn max_events_per_account_per_minute(mut self, max: u32) -> Self {
        self.per_account_per_minute = max;
        self
    }

    /// How long events are kept. Default: 7 days.
    pub fn retention(mut self, retention: Duration) -> Self {
        self.limits.retention = retention;
        self
    }

    /// Most events an account keeps: beyond it, its oldest are deleted. Default: 10,000.
    pub fn max_events_per_account(mut self, max: usize) -> Self {
        self.limits.max_events_per_account = max;
        self
    }

    /// Events waiting for the background writer; when full, new ones are dropped and
    /// counted, never waited for. Default: 10,000.
    pub fn buffer(mut self, events: usize) -> Self {
        self.buffer = events.max(1);
        self
    }

    /// How often buffered events are written, in one batch. Default: 1 s.
    pub fn flush_interval(mut self, interval: Duration) -> Self {
        self.flush_interval = interval;
        self
    }

    /// Largest batch written at once. Default: 1,000.
    pub fn max_batch(mut self, events: usize) -> Self {
        self.max_batch = events.max(1);
        self
    }
}
