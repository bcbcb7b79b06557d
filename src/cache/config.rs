//! [`CacheConfig`]: how many keys are held, for how long, and in how many bytes.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Cache settings.
///
/// Build it from [`CacheConfig::default`] and the chained setters:
///
/// ```
/// use std::time::Duration;
/// use keygate::gate::CacheConfig;
///
/// let cache = CacheConfig::default()
///     .positive_ttl(Duration::from_secs(10))
///     .serve_stale(Some(Duration::from_secs(300)));
/// assert_eq!(cache.positive_ttl, Duration::from_secs(10));
/// ```
///
/// It reads from configuration files (any serde format), with durations in human form:
/// `positive_ttl = "30s"`, `serve_stale = "5m"`. Missing fields keep their defaults.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct CacheConfig {
    /// Most keys held.
    pub max_entries: u64,
    /// Most bytes the cached keys may weigh together (each key weighs its record,
    /// metadata and derived scopes). A tenant with large metadata fills this budget, not
    /// the process's memory. Default: 256 MiB.
    pub max_bytes: u64,
    /// Most "no such key" answers held. Kept apart from found keys, so a flood of
    /// well-formed but unknown keys can never push real keys out of the cache.
    pub max_negative_entries: u64,
    /// How long a found key is trusted without asking the store again. Changes made
    /// through this process's [`crate::KeyManager`] apply at once regardless; this bounds
    /// how late changes made elsewhere (another process, the database) are seen when no
    /// invalidation channel is connected.
    #[serde(with = "humantime_serde")]
    pub positive_ttl: Duration,
    /// How long "no such key" is remembered.
    #[serde(with = "humantime_serde")]
    pub negative_ttl: Duration,
    /// Opt-in "serve stale" window: while the store fails, a key that was verified
    /// against the store within this window keeps working. Off (`None`) by default.
    /// Never applies to a key whose cache entries were invalidated since it was verified
    /// (see the coherence protocol in the `cache` module docs).
    #[serde(with = "humantime_serde")]
    pub serve_stale: Option<Duration>,
    /// How long a found key is trusted while the invalidation channel is down (see
    /// `keygate::invalidation`): changes made elsewhere are not heard of then, so the
    /// positive lifetime is cut to this. Default: 1 s.
    #[serde(with = "humantime_serde")]
    pub degraded_ttl: Duration,
}

impl Default for CacheConfig {
    /// 100,000 keys (at most 256 MiB) for 30 s, 10,000 unknown keys for 5 s, no stale
    /// serving.
    fn default() -> Self {
        Self {
            max_entries: 100_000,
            max_bytes: 256 * 1024 * 1024,
            max_negative_entries: 10_000,
            positive_ttl: Duration::from_secs(30),
            negative_ttl: Duration::from_secs(5),
            serve_stale: None,
            degraded_ttl: Duration::from_secs(1),
        }
    }
}

impl CacheConfig {
    /// Sets [`CacheConfig::max_entries`].
    #[must_use]
    pub fn max_entries(mut self, n: u64) -> Self {
        self.max_entries = n;
        self
    }

    /// Sets [`CacheConfig::max_bytes`].
    #[must_use]
    pub fn max_bytes(mut self, n: u64) -> Self {
        self.max_bytes = n;
        self
    }

    /// Sets [`CacheConfig::max_negative_entries`].
    #[must_use]
    pub fn max_negative_entries(mut self, n: u64) -> Self {
        self.max_negative_entries = n;
        self
    }

    /// Sets [`CacheConfig::positive_ttl`].
    #[must_use]
    pub fn positive_ttl(mut self, ttl: Duration) -> Self {
        self.positive_ttl = ttl;
        self
    }

    /// Sets [`CacheConfig::negative_ttl`].
    #[must_use]
    pub fn negative_ttl(mut self, ttl: Duration) -> Self {
        self.negative_ttl = ttl;
        self
    }

    /// Sets [`CacheConfig::degraded_ttl`].
    #[must_use]
    pub fn degraded_ttl(mut self, ttl: Duration) -> Self {
        self.degraded_ttl = ttl;
        self
    }

    /// Sets [`CacheConfig::serve_stale`].
    #[must_use]
    pub fn serve_stale(mut self, window: Option<Duration>) -> Self {
        self.serve_stale = window;
        self
    }
}
