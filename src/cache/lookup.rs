//! Store lookups on a miss: shared by concurrent requests, timed out, panic-isolated,
//! and cleaned up however they end (rules 2, 4 and 5 of the coherence protocol).

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use dashmap::mapref::entry::Entry;
use futures_util::FutureExt;
use tokio::sync::OnceCell;

use super::entry::ResolvedKey;
use super::{Cached, KeyCache};
use crate::error::AuthError;
use crate::key::digest::KeyDigest;
use crate::store::{KeyRecord, StoreError};
use crate::telemetry::StoreResult;

/// How many times a request looks up again after an invalidation raced its lookup.
const MAX_ATTEMPTS: usize = 4;

/// A store answer, with the epoch read before the call.
#[derive(Clone)]
pub(crate) struct Loaded {
    epoch: u64,
    key: Option<Arc<ResolvedKey>>,
}

/// How one store call ended. Moved once per store call: boxing the record would only
/// add an allocation to every miss.
#[allow(clippy::large_enum_variant)]
pub(crate) enum StoreCall {
    /// The store answered: the record, or `None` for no such key.
    Answered(Option<KeyRecord>),
    /// The store returned an error.
    Failed(StoreError),
    /// The store's future panicked.
    Panicked,
    /// No answer within the store timeout.
    TimedOut,
}

/// One store lookup shared by every request waiting on the same digest. `Err` when the
/// store failed (already logged).
pub(crate) struct Flight {
    cell: OnceCell<Result<Loaded, ()>>,
    /// Requests waiting on it; changed only under the in-flight map's entry lock.
    waiters: AtomicUsize,
}

/// A request's place in a [`Flight`]. Dropping the last one removes the flight from the
/// in-flight map, even when the request was cancelled mid-lookup.
struct Waiter {
    cache: Arc<KeyCache>,
    digest: KeyDigest,
    flight: Arc<Flight>,
}

impl Drop for Waiter {
    fn drop(&mut self) {
        self.cache.metrics.singleflight(-1.0, false);
        if let Entry::Occupied(entry) = self.cache.inflight.entry(self.digest) {
            if Arc::ptr_eq(entry.get(), &self.flight)
                && entry.get().waiters.fetch_sub(1, Ordering::Relaxed) == 1
            {
                entry.remove();
            }
        }
    }
}

impl KeyCache {
    /// Joins the lookup of `digest` under way, or starts one.
    fn join(self: &Arc<Self>, digest: KeyDigest) -> Waiter {
        let flight = match self.inflight.entry(digest) {
            Entry::Occupied(entry) => {
                entry.get().waiters.fetch_add(1, Ordering::Relaxed);
                self.metrics.singleflight(1.0, true);
                entry.get().clone()
            }
            Entry::Vacant(entry) => {
                self.metrics.singleflight(1.0, false);
                let flight = Arc::new(Flight {
                    cell: OnceCell::new(),
                    waiters: AtomicUsize::new(1),
                });
                entry.insert(flight.clone());
                flight
            }
        };
        Waiter {
            cache: self.clone(),
            digest,
            flight,
        }
    }

    /// The key for `digest`, from the cache or the store: `Ok(None)` for "no such key",
    /// `Err(StoreUnavailable)` when the store failed and no valid stale copy exists.
    pub(crate) fn load(
        self: &Arc<Self>,
        digest: KeyDigest,
    ) -> impl Future<Output = Result<Option<Arc<ResolvedKey>>, AuthError>> + Send + 'static {
        let cache = self.clone();
        async move {
            for _ in 0..MAX_ATTEMPTS {
                match cache.probe(&digest, cache.clock.now(), false) {
                    Cached::Hit(key) => return Ok(Some(key)),
                    Cached::Unknown => return Ok(None),
                    Cached::Miss => {}
                }
                let waiter = cache.join(digest);
                let outcome = waiter
                    .flight
                    .cell
                    .get_or_init(|| cache.fetch(digest))
                    .await
                    .clone();
                // Finished: later requests start a lookup of their own.
                cache
                    .inflight
                    .remove_if(&digest, |_, f| Arc::ptr_eq(f, &waiter.flight));
                drop(waiter);
                let epoch = cache.epochs.current(&digest);
                match outcome {
                    Ok(loaded) if loaded.epoch == epoch => return Ok(loaded.key),
                    // Invalidated while loading: the answer may predate the change.
                    Ok(_) => continue,
                    Err(()) => {
                        return match cache.stale_copy(&digest, epoch) {
                            Some(key) => {
                                tracing::warn!(target: "keygate", key_id = key.record.id.as_str(), "key store unavailable; serving a recently verified key");
                                Ok(Some(key))
                            }
                            None => Err(AuthError::StoreUnavailable),
                        };
                    }
                }
            }
            Err(AuthError::StoreUnavailable)
        }
    }

    /// One call to the store for `digest`, bounded by the store timeout and with a panic
    /// contained: what a lookup on a miss and the health probe both make.
    pub(crate) async fn call_store(&self, digest: &KeyDigest) -> StoreCall {
        let call = AssertUnwindSafe(self.store.find_by_digest(digest)).catch_unwind();
        match tokio::time::timeout(self.store_timeout, call).await {
            Ok(Ok(Ok(record))) => StoreCall::Answered(record),
            Ok(Ok(Err(error))) => StoreCall::Failed(error),
            Ok(Err(_panic)) => StoreCall::Panicked,
            Err(_elapsed) => StoreCall::TimedOut,
        }
    }

    /// One store call (rule 2).
    async fn fetch(&self, digest: KeyDigest) -> Result<Loaded, ()> {
        // A lookup that finished between our miss and our joining left its answer.
        let epoch = self.epochs.current(&digest);
        match self.probe(&digest, self.clock.now(), false) {
            Cached::Hit(key) => {
                return Ok(Loaded {
                    epoch: key.epoch,
                    key: Some(key),
                })
            }
            Cached::Unknown => return Ok(Loaded { epoch, key: None }),
            Cached::Miss => {}
        }
        self.store_calls.fetch_add(1, Ordering::Relaxed);
        let started = std::time::Instant::now();
        let outcome = self.call_store(&digest).await;
        let seconds = started.elapsed().as_secs_f64();
        let record = match outcome {
            StoreCall::Answered(record) => {
                self.metrics.store_call(
                    if record.is_some() {
                        StoreResult::Found
                    } else {
                        StoreResult::NotFound
                    },
                    seconds,
                );
                record
            }
            StoreCall::Failed(error) => {
                self.metrics.store_call(StoreResult::Error, seconds);
                tracing::error!(target: "keygate", %error, "key store lookup failed; refusing the request");
                return Err(());
            }
            StoreCall::Panicked => {
                self.metrics.store_call(StoreResult::Panic, seconds);
                tracing::error!(target: "keygate", "key store lookup panicked; refusing the request");
                return Err(());
            }
            StoreCall::TimedOut => {
                self.metrics.store_call(StoreResult::Timeout, seconds);
                tracing::error!(target: "keygate", timeout = ?self.store_timeout, "key store lookup timed out; refusing the request");
                return Err(());
            }
        };
        let key = record
            .filter(|r| r.digests().any(|d| d == digest))
            .map(|record| Arc::new((self.resolve)(record, &digest, epoch)));
        if let Some(meters) = key.as_ref().and_then(|k| k.metering.as_ref()) {
            meters.prime(self.store_timeout).await;
        }
        // Not worth keeping if already stale (rule 3 would ignore it anyway), and it must
        // not replace a newer copy.
        if self.epochs.current(&digest) == epoch {
            match &key {
                Some(key) => {
                    self.positive.insert(digest, key.clone());
                    if let Some(stale) = &self.stale {
                        stale.insert(digest, (key.clone(), self.clock.now()));
                    }
                }
                None => {
                    self.negative.insert(digest, epoch);
                    if let Some(stale) = &self.stale {
                        stale.invalidate(&digest);
                    }
                }
            }
        }
        Ok(Loaded { epoch, key })
    }

    /// A copy verified within the serve-stale window and still current (rule 4).
    fn stale_copy(&self, digest: &KeyDigest, epoch: u64) -> Option<Arc<ResolvedKey>> {
        let (key, verified_at) = self.stale.as_ref()?.get(digest)?;
        let age = self
            .clock
            .now()
            .duration_since(verified_at)
            .unwrap_or_default();
        (key.epoch == epoch && age <= self.stale_window).then_some(key)
    }
}
