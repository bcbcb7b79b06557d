//! Metrics (feature `metrics`) and tracing-span fields.
//!
//! With the `metrics` feature, keygate records through the [`metrics`] facade; install any
//! recorder (for example `metrics-exporter-prometheus`) to collect them. Without a
//! recorder each recording is a no-op call; without the feature they compile to nothing.
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
//!
//! Spans: on every decision keygate records `key_id`, `account_id` (when a key was found)
//! and `outcome` on the current span, if that span declared those fields (for example
//! `tracing::info_span!("request", key_id = tracing::field::Empty, account_id =
//! tracing::field::Empty, outcome = tracing::field::Empty)` in tower-http's `TraceLayer`
//! `make_span_with`). No secret is ever recorded.

use crate::cache::entry::ResolvedKey;

/// Records a decision: the metric and the current span's fields.
#[inline]
pub(crate) fn decision(outcome: &'static str, key: Option<&ResolvedKey>) {
    #[cfg(feature = "metrics")]
    metrics::counter!("keygate_decisions_total", "outcome" => outcome).increment(1);
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
pub(crate) fn cache_lookup(result: &'static str) {
    #[cfg(feature = "metrics")]
    metrics::counter!("keygate_cache_lookups_total", "result" => result).increment(1);
    #[cfg(not(feature = "metrics"))]
    let _ = result;
}

/// One store call's outcome and latency.
#[inline]
pub(crate) fn store_call(result: &'static str, seconds: f64) {
    #[cfg(feature = "metrics")]
    {
        metrics::counter!("keygate_store_calls_total", "result" => result).increment(1);
        metrics::histogram!("keygate_store_call_seconds").record(seconds);
    }
    #[cfg(not(feature = "metrics"))]
    let _ = (result, seconds);
}

/// A request starts (`+1`) or stops (`-1`) waiting on a shared lookup; `joined` when it
/// joined one another request started.
#[inline]
pub(crate) fn singleflight(delta: f64, joined: bool) {
    #[cfg(feature = "metrics")]
    {
        metrics::gauge!("keygate_singleflight_waiters").increment(delta);
        if joined {
            metrics::counter!("keygate_singleflight_joined_total").increment(1);
        }
    }
    #[cfg(not(feature = "metrics"))]
    let _ = (delta, joined);
}

/// A cache invalidation.
#[inline]
pub(crate) fn invalidation(scope: &'static str, source: &'static str) {
    #[cfg(feature = "metrics")]
    metrics::counter!("keygate_invalidations_total", "scope" => scope, "source" => source)
        .increment(1);
    #[cfg(not(feature = "metrics"))]
    let _ = (scope, source);
}

/// A rate-limit decision.
#[inline]
pub(crate) fn rate_limit(admitted: bool) {
    #[cfg(feature = "metrics")]
    metrics::counter!(
        "keygate_ratelimit_total",
        "result" => if admitted { "admitted" } else { "limited" }
    )
    .increment(1);
    #[cfg(not(feature = "metrics"))]
    let _ = admitted;
}
