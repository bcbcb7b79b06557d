//! One quota ([`Tier`]) and its buckets: a GCRA cell per key (or account), held by the
//! key's cache entry so that a request updates its own cell without any map lookup.
//!
//! A cell is one `AtomicU64`, the bucket's theoretical arrival time (GCRA, as governor
//! implements it) in nanoseconds since the Unix epoch. It is updated with the time the
//! request read once, so a check costs one compare-and-swap on the key's own cache line
//! and no further clock read. The tier keeps every cell it handed out in a map by id,
//! which only a cache miss probes: a key that is refreshed, or invalidated and found
//! again, gets its same cell back, so its quota does not reset.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use dashmap::DashMap;

use super::{Namespace, RateLimitStatus};
use crate::store::record::RateLimit;

const NANOS_PER_SEC: u64 = 1_000_000_000;

/// One quota: its interval and tolerance, and the cells of every bucket under it.
pub(crate) struct Tier {
    pub(crate) quota: RateLimit,
    /// Nanoseconds for one token to come back.
    interval: u64,
    /// How far ahead of now the arrival time may run: `interval × burst`.
    tolerance: u64,
    /// By namespace and id: a key, an account and a subject with equal ids never share
    /// a cell.
    cells: DashMap<(Namespace, Arc<str>), Arc<Cell>>,
}

/// A bucket's state: the theoretical arrival time, in nanoseconds since the Unix epoch.
#[derive(Default)]
pub(crate) struct Cell {
    tat: AtomicU64,
}

/// A key's (or account's) bucket in a tier, as its cache entry holds it.
pub(crate) struct Bucket {
    pub(crate) tier: Arc<Tier>,
    pub(crate) cell: Arc<Cell>,
}

/// Nanoseconds since the Unix epoch (0 before it; saturates in the year 2554).
#[inline]
pub(crate) fn unix_nanos(at: SystemTime) -> u64 {
    // Seconds and nanoseconds in 64 bits: no 128-bit product on the request path.
    at.duration_since(UNIX_EPOCH).map_or(0, |d| {
        d.as_secs()
            .saturating_mul(NANOS_PER_SEC)
            .saturating_add(u64::from(d.subsec_nanos()))
    })
}

impl Tier {
    /// A tier for `quota`; `None` when its rate or burst is 0 (no limit).
    pub(crate) fn new(quota: RateLimit) -> Option<Self> {
        if quota.per_second == 0 || quota.burst == 0 {
            return None;
        }
        let interval = (NANOS_PER_SEC / u64::from(quota.per_second)).max(1);
        Some(Self {
            quota,
            interval,
            tolerance: interval * u64::from(quota.burst),
            cells: DashMap::new(),
        })
    }

    /// The cell of `id` in `namespace`, made on first use.
    pub(crate) fn cell(&self, namespace: Namespace, id: &Arc<str>) -> Arc<Cell> {
        let key = (namespace, id.clone());
        if let Some(cell) = self.cells.get(&key) {
            return cell.clone();
        }
        self.cells.entry(key).or_default().clone()
    }

    /// Takes one token from `cell` at `now` (Unix nanoseconds): the status to report, or
    /// the wait until a token is back and the status.
    pub(crate) fn take(
        &self,
        cell: &Cell,
        now: u64,
    ) -> Result<RateLimitStatus, (Duration, RateLimitStatus)> {
        let mut tat = cell.tat.load(Ordering::Relaxed);
        loop {
            let base = tat.max(now);
            let next = base + self.interval;
            if next - now > self.tolerance {
                let wait = next - now - self.tolerance;
                return Err((Duration::from_nanos(wait), self.status(0, base, now)));
            }
            match cell
                .tat
                .compare_exchange_weak(tat, next, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => {
                    let remaining = (self.tolerance - (next - now)) / self.interval;
                    return Ok(self.status(remaining, next, now));
                }
                Err(current) => tat = current,
            }
        }
    }

    /// The status of `cell` at `now`, without taking a token.
    pub(crate) fn peek(&self, cell: &Cell, now: u64) -> RateLimitStatus {
        let base = cell.tat.load(Ordering::Relaxed).max(now);
        let remaining = (self.tolerance - (base - now).min(self.tolerance)) / self.interval;
        self.status(remaining, base, now)
    }

    /// `remaining` tokens, full again at `full_at`; both times in Unix nanoseconds.
    fn status(&self, remaining: u64, full_at: u64, now: u64) -> RateLimitStatus {
        let reset_at = full_at.div_ceil(NANOS_PER_SEC);
        RateLimitStatus::new(
            self.quota,
            u32::try_from(remaining).unwrap_or(u32::MAX),
            reset_at,
            reset_at.saturating_sub(now / NANOS_PER_SEC),
        )
    }

    /// Drops the cells no cache entry holds whose bucket is full again at `now` (a new
    /// cell is the same state). The map's shard lock is held while a cell's holders are
    /// counted, so no cell is handed out while it is being dropped.
    pub(crate) fn retain_recent(&self, now: u64) {
        self.cells.retain(|_, cell| {
            Arc::strong_count(cell) > 1 || cell.tat.load(Ordering::Relaxed) > now
        });
        self.cells.shrink_to_fit();
    }

    /// Cells held.
    pub(crate) fn len(&self) -> usize {
        self.cells.len()
    }

    /// Cells whose bucket is not full again at `now`.
    pub(crate) fn with_state(&self, now: u64) -> usize {
        self.cells
            .iter()
            .filter(|cell| cell.tat.load(Ordering::Relaxed) > now)
            .count()
    }
}

impl Bucket {
    /// Takes one token at `now` (Unix nanoseconds).
    pub(crate) fn take(&self, now: u64) -> Result<RateLimitStatus, (Duration, RateLimitStatus)> {
        self.tier.take(&self.cell, now)
    }

    /// The status at `now`, without taking a token.
    pub(crate) fn peek(&self, now: u64) -> RateLimitStatus {
        self.tier.peek(&self.cell, now)
    }
}
