//! Metrics (feature `metrics`) and tracing-span fields.
//!
//! With the `metrics` feature, keygate records through the [`metrics`] facade; install any
//! recorder (for example `metrics-exporter-prometheus`) **before building the
//! [`crate::Keygate`]**: each core registers its metric handles once, when it is built, so
//! the request path only bumps counters it already holds. Without a recorder the handles
//! are no-ops (a null check); without the feature they compile to nothing.
//!
//! | name | kind | labels | what |
//! |---|---|---|---|
//! | `keygate_decisions_total` | counter | `outcome`: `ok` or a refusal code | every decision a layer makes |
//! | `keygate_cache_lookups_total` | counter | `result`: `front`, `moka`, `negative`, `miss` | how each request's key was found; the hit ratio is (front + moka + negative) / all |
//! | `keygate_store_calls_total` | counter | `result`: `found`, `not_found`, `error`, `timeout`, `panic` | calls into the `KeyStore` |
//! | `keygate_store_call_seconds` | histogram | | latency of each `find_by_digest` call |
//! | `keygate_singleflight_waiters` | gauge | | requests waiting on a shared store lookup right now |
//! | `keygate_singleflight_joined_total` | counter | | requests that joined a lookup another request started |
//! | `keygate_invalidations_total` | counter | `scope`: `digest` or `all`; `source`: `manager` or `external` | cache invalidations (`external`: channels and user code) |
//! | `keygate_ratelimit_total` | counter | `result`: `admitted` or `limited` | rate-limit decisions |
//! | `keygate_ratelimit_lease_refills_total` | counter | | token leases taken from Redis (`RedisLimiter`) |
//! | `keygate_ratelimit_redis_errors_total` | counter | | failed or timed-out Redis calls (`RedisLimiter`) |
//!
//! Spans: on every decision keygate records `key_id`, `account_id` (when a key was found)
//! and `outcome` on the current span, if that span declared those fields (for example
//! `tracing::info_span!("request", key_id = tracing::field::Empty, account_id =
//! tracing::field::Empty, outcome = tracing::field::Empty)` in tower-http's `TraceLayer`
//! `make_span_with`). No secret is ever recorded.

use crate::cache::entry::ResolvedKey;

/// Every decision outcome, `ok` first; the index of a code in this list picks its counter.
#[cfg(feature = "metrics")]
const OUTCOMES: [&str; 15] = [
    "ok",
    "unauthorized",
    "invalid_request",
    "invalid_api_key",
    "revoked_api_key",
    "disabled_api_key",
    "expired_api_key",
    "wrong_environment",
    "ip_not_allowed",
    "insufficient_scope",
    "rate_limited",
    "usage_exceeded",
    "store_unavailable",
    "invalid_token",
    "verifier_unavailable",
];

#[cfg(feature = "metrics")]
const CACHE: [&str; 4] = ["front", "moka", "negative", "miss"];
#[cfg(feature = "metrics")]
const STORE: [&str; 5] = ["found", "not_found", "error", "timeout", "panic"];

/// How a request's key was found in the cache.
#[derive(Clone, Copy)]
pub(crate) enum CacheResult {
    Front = 0,
    Moka = 1,
    Negative = 2,
    Miss = 3,
}

/// How a store call ended.
#[derive(Clone, Copy)]
pub(crate) enum StoreResult {
    Found = 0,
    NotFound = 1,
    Error = 2,
    Timeout = 3,
    Panic = 4,
}

/// One core's metric handles, registered when it is built.
pub(crate) struct Metrics {
    #[cfg(feature = "metrics")]
    h: Handles,
}

#[cfg(feature = "metrics")]
struct Handles {
    decisions: Vec<metrics::Counter>,
    cache: Vec<metrics::Counter>,
    store: Vec<metrics::Counter>,
    store_seconds: metrics::Histogram,
    waiters: metrics::Gauge,
    joined: metrics::Counter,
    /// digest/manager, digest/external, all/external.
    invalidations: [metrics::Counter; 3],
    /// admitted, limited.
    rate_limit: [metrics::Counter; 2],
}

impl Metrics {
    /// Registers every handle with the recorder installed now (if any).
    pub(crate) fn new() -> Self {
        Self {
            #[cfg(feature = "metrics")]
            h: Handles {
                decisions: OUTCOMES
                    .iter()
                    .map(|&o| metrics::counter!("keygate_decisions_total", "outcome" => o))
                    .collect(),
                cache: CACHE
                    .iter()
                    .map(|&r| metrics::counter!("keygate_cache_lookups_total", "result" => r))
                    .collect(),
                store: STORE
                    .iter()
                    .map(|&r| metrics::counter!("keygate_store_calls_total", "result" => r))
                    .collect(),
                store_seconds: metrics::histogram!("keygate_store_call_seconds"),
                waiters: metrics::gauge!("keygate_singleflight_waiters"),
                joined: metrics::counter!("keygate_singleflight_joined_total"),
                invalidations: [
                    metrics::counter!("keygate_invalidations_total", "scope" => "digest", "source" => "manager"),
                    metrics::counter!("keygate_invalidations_total", "scope" => "digest", "source" => "external"),
                    metrics::counter!("keygate_invalidations_total", "scope" => "all", "source" => "external"),
                ],
                rate_limit: [
                    metrics::counter!("keygate_ratelimit_total", "result" => "admitted"),
                    metrics::counter!("keygate_ratelimit_total", "result" => "limited"),
                ],
            },
        }
    }

    /// Records an admission: the metric and the current span's fields.
    #[inline]
    pub(crate) fn admitted(&self, key: &ResolvedKey) {
        self.count_admitted();
        Self::record_span("ok", Some(key));
    }

    /// Records an admission's metric only: for a caller that found no subscriber
    /// interested, so that no span can be current.
    #[inline]
    pub(crate) fn count_admitted(&self) {
        #[cfg(feature = "metrics")]
        self.h.decisions[0].increment(1);
    }

    /// Records a refusal: the metric and the current span's fields.
    pub(crate) fn refused(&self, outcome: &'static str, key: Option<&ResolvedKey>) {
        #[cfg(feature = "metrics")]
        match OUTCOMES.iter().position(|&o| o == outcome) {
            Some(i) => self.h.decisions[i].increment(1),
            None => metrics::counter!("keygate_decisions_total", "outcome" => outcome).increment(1),
        }
        Self::record_span(outcome, key);
    }

    #[inline]
    fn record_span(outcome: &'static str, key: Option<&ResolvedKey>) {
        use tracing::level_filters::LevelFilter;
        // No subscriber (global or scoped) enables anything at any level, so no span
        // can be current: skip looking one up. One relaxed load.
        if LevelFilter::current() == LevelFilter::OFF {
            return;
        }
        let span = tracing::Span::current();
        if !span.is_disabled() {
            span.record("outcome", outcome);
            if let Some(key) = key {
                span.record("key_id", key.record.id.as_str());
                span.record("account_id", key.record.account_id.as_str());
            }
        }
    }

    /// How a request's key was found in the cache.
    #[inline]
    pub(crate) fn cache_lookup(&self, result: CacheResult) {
        #[cfg(feature = "metrics")]
        self.h.cache[result as usize].increment(1);
        #[cfg(not(feature = "metrics"))]
        let _ = result;
    }

    /// One store call's outcome and latency.
    pub(crate) fn store_call(&self, result: StoreResult, seconds: f64) {
        #[cfg(feature = "metrics")]
        {
            self.h.store[result as usize].increment(1);
            self.h.store_seconds.record(seconds);
        }
        #[cfg(not(feature = "metrics"))]
        let _ = (result, seconds);
    }

    /// A request starts (`+1`) or stops (`-1`) waiting on a shared lookup; `joined` when
    /// it joined one another request started.
    pub(crate) fn singleflight(&self, delta: f64, joined: bool) {
        #[cfg(feature = "metrics")]
        {
            self.h.waiters.increment(delta);
            if joined {
                self.h.joined.increment(1);
            }
        }
        #[cfg(not(feature = "metrics"))]
        let _ = (delta, joined);
    }

    /// A cache invalidation: of one digest by the manager, of one digest from outside
    /// (channels, user code), or of everything.
    pub(crate) fn invalidation(&self, all: bool, by_manager: bool) {
        #[cfg(feature = "metrics")]
        self.h.invalidations[match (all, by_manager) {
            (false, true) => 0,
            (false, false) => 1,
            (true, _) => 2,
        }]
        .increment(1);
        #[cfg(not(feature = "metrics"))]
        let _ = (all, by_manager);
    }

    /// A rate-limit decision.
    #[inline]
    pub(crate) fn rate_limit(&self, admitted: bool) {
        #[cfg(feature = "metrics")]
        self.h.rate_limit[usize::from(!admitted)].increment(1);
        #[cfg(not(feature = "metrics"))]
        let _ = admitted;
    }
}
