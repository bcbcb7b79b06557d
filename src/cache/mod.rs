//! The key cache and its coherence protocol.
//!
//! keygate answers most requests from memory: a per-thread front ([`front`]), then a
//! bounded moka cache of found keys (weighed in bytes), a separate moka cache of "no
//! such key" answers, and, when serve-stale is on, a cache of recently verified keys
//! to fall back on while the store fails. A miss becomes one store call shared by
//! every request waiting on the same digest (single flight), with a timeout and panic
//! isolation.
//!
//! # Coherence protocol
//!
//! The promise is: once [`crate::Keygate::invalidate_digest`] (which
//! [`crate::KeyManager`] calls after every change) returns, no request that starts
//! afterwards is answered from a copy made before the change. It holds because of these
//! rules, each enforced in this module:
//!
//! 1. **Epochs.** Every digest maps to an invalidation counter (its epoch). An
//!    invalidation *first* bumps the epoch, *then* drops the positive, negative and stale
//!    copies and the in-flight lookup of that digest.
//! 2. **Stamped before the store call.** A lookup reads the epoch *before* it calls the
//!    store, and every copy it produces (positive, negative, stale, and any per-thread
//!    front copy made from them later) carries that epoch. A copy is never re-stamped.
//! 3. **Checked on every read.** A copy answers only while its epoch equals the digest's
//!    current epoch (and it is fresh). So a store answer that raced an invalidation is
//!    dead on arrival even if it lands in a cache after the invalidation removed
//!    everything: its epoch is older than the current one.
//! 4. **Waiters re-check.** A request that joined a shared lookup uses its answer only
//!    if the epoch has not moved since that lookup began; otherwise it looks up again.
//!    A stale copy served while the store fails obeys the same rule, so serve-stale can
//!    never revive a key invalidated since it was verified.
//! 5. **No leaks.** A shared lookup is removed from the in-flight map when it finishes,
//!    when it is invalidated, and, through a drop guard, when every request waiting on it
//!    has gone away (a client that disconnects mid-lookup leaves nothing behind).
//! 6. **Flush.** [`crate::Keygate::invalidate_all`] bumps every epoch and empties every
//!    cache, for an instance that lost its invalidation channel and cannot tell what it
//!    missed.
//!
//! Since a change is written to the store *before* the invalidation, a lookup whose
//! epoch is current began after the invalidation, and so read the changed record.

mod config;
pub(crate) mod entry;
mod epochs;
pub(crate) mod front;
mod lookup;
pub(crate) use lookup::StoreCall;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use dashmap::DashMap;
use moka::sync::Cache;

pub use config::CacheConfig;
use entry::{EntryExpiry, ResolvedKey};
use epochs::Epochs;
use lookup::Flight;

use crate::clock::Clock;
use crate::key::digest::{DigestHasher, KeyDigest};
use crate::store::record::KeyRecord;
use crate::store::KeyStore;
use crate::telemetry::{CacheResult, Metrics};

/// Turns a found record into a cache entry (derived scopes, limiter tiers, freshness).
pub(crate) type Resolve = dyn Fn(KeyRecord, &KeyDigest, u64) -> ResolvedKey + Send + Sync;

/// What the cache knows about a digest, without I/O.
pub(crate) enum Cached {
    /// A valid copy of the key.
    Hit(Arc<ResolvedKey>),
    /// A valid "no such key" answer.
    Unknown,
    /// Nothing valid: ask the store.
    Miss,
}

/// The cache of one [`crate::Keygate`].
pub(crate) struct KeyCache {
    gate: u64,
    store: Arc<dyn KeyStore>,
    resolve: Box<Resolve>,
    clock: Clock,
    positive: Cache<KeyDigest, Arc<ResolvedKey>, DigestHasher>,
    /// "No such key", with the epoch read before the store call that said so.
    negative: Cache<KeyDigest, u64, DigestHasher>,
    /// Keys last verified against the store, with when: for serving stale.
    stale: Option<Cache<KeyDigest, (Arc<ResolvedKey>, SystemTime), DigestHasher>>,
    stale_window: Duration,
    epochs: Epochs,
    inflight: DashMap<KeyDigest, Arc<Flight>, DigestHasher>,
    store_timeout: Duration,
    store_calls: AtomicU64,
    pub(crate) metrics: Arc<Metrics>,
    /// The invalidation channel is down: trust copies for `degraded_ttl` only.
    degraded: AtomicBool,
    degraded_ttl: Duration,
}

impl KeyCache {
    pub(crate) fn new(
        gate: u64,
        store: Arc<dyn KeyStore>,
        resolve: Box<Resolve>,
        clock: Clock,
        config: &CacheConfig,
        store_timeout: Duration,
        metrics: Arc<Metrics>,
    ) -> Self {
        // Each key weighs at least its share of the entry budget, so the byte budget also
        // bounds the entry count: sum(max(bytes, B/N)) <= B implies count <= N.
        let floor = u32::try_from(config.max_bytes / config.max_entries.max(1))
            .unwrap_or(u32::MAX)
            .max(1);
        let positive = Cache::builder()
            .max_capacity(config.max_bytes)
            .weigher(move |_: &KeyDigest, key: &Arc<ResolvedKey>| key.weight().max(floor))
            .expire_after(EntryExpiry {
                clock: clock.clone(),
            })
            .build_with_hasher(DigestHasher);
        let negative = Cache::builder()
            .max_capacity(config.max_negative_entries)
            .time_to_live(config.negative_ttl)
            .build_with_hasher(DigestHasher);
        let stale = config.serve_stale.map(|window| {
            Cache::builder()
                .max_capacity(config.max_bytes)
                .weigher(move |_: &KeyDigest, v: &(Arc<ResolvedKey>, SystemTime)| {
                    v.0.weight().max(floor)
                })
                .time_to_live(window + config.positive_ttl)
                .build_with_hasher(DigestHasher)
        });
        Self {
            gate,
            store,
            resolve,
            clock,
            positive,
            negative,
            stale,
            stale_window: config.serve_stale.unwrap_or_default(),
            epochs: Epochs::default(),
            inflight: DashMap::with_hasher(DigestHasher),
            store_timeout,
            store_calls: AtomicU64::new(0),
            metrics,
            degraded: AtomicBool::new(false),
            degraded_ttl: config.degraded_ttl,
        }
    }

    /// The cached answer for `digest` at `now`, without I/O (rule 3), for a request:
    /// counted in the cache metrics.
    #[inline]
    pub(crate) fn get(&self, digest: &KeyDigest, now: SystemTime) -> Cached {
        self.probe(digest, now, true)
    }

    /// [`KeyCache::get`], counted only when `count` (a request's first look).
    #[inline]
    pub(crate) fn probe(&self, digest: &KeyDigest, now: SystemTime, count: bool) -> Cached {
        if self.degraded.load(Ordering::Relaxed) {
            return self.probe_degraded(digest, now, count);
        }
        let epoch = self.epochs.current(digest);
        if let Some(key) = front::get(self.gate, digest, epoch, now) {
            if count {
                self.metrics.cache_lookup(CacheResult::Front);
            }
            return Cached::Hit(key);
        }
        if let Some(key) = self.positive.get(digest) {
            if key.is_valid(epoch, now) {
                front::put(*digest, &key);
                if count {
                    self.metrics.cache_lookup(CacheResult::Moka);
                }
                return Cached::Hit(key);
            }
        }
        let found = if self.negative.get(digest) == Some(epoch) {
            Cached::Unknown
        } else {
            Cached::Miss
        };
        if count {
            self.metrics.cache_lookup(match found {
                Cached::Unknown => CacheResult::Negative,
                _ => CacheResult::Miss,
            });
        }
        found
    }

    /// While degraded, a copy older than `degraded_ttl` is a miss, and the per-thread
    /// front is bypassed (its copies' age is checked the same way through moka).
    #[cold]
    fn probe_degraded(&self, digest: &KeyDigest, now: SystemTime, count: bool) -> Cached {
        let epoch = self.epochs.current(digest);
        let young = |key: &ResolvedKey| now < key.verified_at + self.degraded_ttl;
        if let Some(key) = self.positive.get(digest) {
            if key.is_valid(epoch, now) && young(&key) {
                if count {
                    self.metrics.cache_lookup(CacheResult::Moka);
                }
                return Cached::Hit(key);
            }
        }
        if count {
            self.metrics.cache_lookup(CacheResult::Miss);
        }
        Cached::Miss
    }

    /// Sets whether the invalidation channel is down.
    pub(crate) fn set_degraded(&self, degraded: bool) {
        self.degraded.store(degraded, Ordering::Relaxed);
    }

    /// Drops every copy of `digest` (rule 1).
    pub(crate) fn invalidate(&self, digest: &KeyDigest) {
        self.epochs.bump(digest);
        self.positive.invalidate(digest);
        self.negative.invalidate(digest);
        if let Some(stale) = &self.stale {
            stale.invalidate(digest);
        }
        self.inflight.remove(digest);
    }

    /// Drops every copy of every digest (rule 6).
    pub(crate) fn invalidate_all(&self) {
        self.epochs.bump_all();
        self.positive.invalidate_all();
        self.negative.invalidate_all();
        if let Some(stale) = &self.stale {
            stale.invalidate_all();
        }
        self.inflight.clear();
    }

    /// Applies pending evictions.
    pub(crate) fn run_pending_tasks(&self) {
        self.positive.run_pending_tasks();
        self.negative.run_pending_tasks();
        if let Some(stale) = &self.stale {
            stale.run_pending_tasks();
        }
    }

    /// Keys held (approximate until maintenance runs).
    pub(crate) fn entries(&self) -> u64 {
        self.positive.entry_count()
    }

    /// Bytes the held keys weigh (approximate until maintenance runs).
    pub(crate) fn weighted_bytes(&self) -> u64 {
        self.positive.weighted_size()
    }

    /// "No such key" answers held.
    pub(crate) fn unknown_entries(&self) -> u64 {
        self.negative.entry_count()
    }

    /// Shared lookups under way.
    pub(crate) fn inflight(&self) -> usize {
        self.inflight.len()
    }

    /// Store calls made since start.
    pub(crate) fn store_calls(&self) -> u64 {
        self.store_calls.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests;
