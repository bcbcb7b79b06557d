//! A circuit breaker in front of Redis, so that instances stop hammering a Redis that
//! is down.
//!
//! Closed: every refill may go to Redis. After `threshold` consecutive failures it
//! opens: no refill is sent until the cool-down has passed. Then it is half-open: one
//! refill goes through as a probe. Its success closes the breaker; its failure opens it
//! again for another cool-down. Time is keygate's [`crate::clock::Clock`], in Unix milliseconds,
//! so a manual clock drives the breaker in tests.

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// The state of a [`crate::ratelimit::RedisLimiter`]'s circuit breaker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BreakerState {
    /// Redis is answering: refills go through.
    Closed,
    /// Redis failed repeatedly: no refill is sent until the cool-down has passed.
    Open,
    /// The cool-down has passed and one probe refill is under way.
    HalfOpen,
}

const CLOSED: u8 = 0;
const OPEN: u8 = 1;
const HALF_OPEN: u8 = 2;

/// The breaker's transitions, behind one lock; its state, readable without the lock.
pub(super) struct Breaker {
    threshold: u32,
    cool_down_ms: u64,
    state: AtomicU8,
    /// Until when an open breaker refuses calls; written under `failures`' lock.
    open_until_ms: AtomicU64,
    /// Consecutive failures.
    failures: Mutex<u32>,
    trips: AtomicU64,
}

impl Breaker {
    pub(super) fn new(threshold: u32, cool_down: Duration) -> Self {
        Self {
            threshold: threshold.max(1),
            cool_down_ms: u64::try_from(cool_down.as_millis()).unwrap_or(u64::MAX),
            state: AtomicU8::new(CLOSED),
            open_until_ms: AtomicU64::new(0),
            failures: Mutex::new(0),
            trips: AtomicU64::new(0),
        }
    }

    /// Whether the breaker is closed: Redis is taken to be answering.
    #[inline]
    pub(super) fn is_closed(&self) -> bool {
        self.state.load(Ordering::Acquire) == CLOSED
    }

    pub(super) fn state(&self) -> BreakerState {
        match self.state.load(Ordering::Acquire) {
            CLOSED => BreakerState::Closed,
            OPEN => BreakerState::Open,
            _ => BreakerState::HalfOpen,
        }
    }

    /// How many times the breaker has opened.
    pub(super) fn trips(&self) -> u64 {
        self.trips.load(Ordering::Relaxed)
    }

    /// Whether a call to Redis may start now. When the cool-down has passed, the first
    /// caller becomes the half-open probe and every other caller is refused until the
    /// probe reports.
    pub(super) fn try_acquire(&self, now_ms: u64) -> bool {
        match self.state.load(Ordering::Acquire) {
            CLOSED => true,
            HALF_OPEN => false,
            _ => {
                if now_ms < self.open_until_ms.load(Ordering::Acquire) {
                    return false;
                }
                self.state
                    .compare_exchange(OPEN, HALF_OPEN, Ordering::AcqRel, Ordering::Acquire)
                    .is_ok()
            }
        }
    }

    /// A call to Redis answered.
    pub(super) fn on_success(&self) {
        let mut failures = self.lock();
        *failures = 0;
        self.state.store(CLOSED, Ordering::Release);
    }

    /// A call to Redis failed at `now_ms`.
    pub(super) fn on_failure(&self, now_ms: u64) {
        let mut failures = self.lock();
        *failures = failures.saturating_add(1);
        let state = self.state.load(Ordering::Acquire);
        let trip = state == HALF_OPEN || (state == CLOSED && *failures >= self.threshold);
        if trip {
            self.open_until_ms
                .store(now_ms.saturating_add(self.cool_down_ms), Ordering::Release);
            self.state.store(OPEN, Ordering::Release);
            self.trips.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, u32> {
        // A count is never left half-written: a poisoned lock is still usable.
        self.failures.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_threshold_consecutive_failures() {
        let b = Breaker::new(3, Duration::from_secs(5));
        b.on_failure(0);
        b.on_success();
        b.on_failure(0);
        b.on_failure(0);
        assert_eq!(
            b.state(),
            BreakerState::Closed,
            "a success resets the count"
        );
        b.on_failure(0);
        assert_eq!(b.state(), BreakerState::Open);
        assert!(!b.try_acquire(4_999));
        assert_eq!(b.trips(), 1);
    }

    #[test]
    fn half_open_lets_exactly_one_probe_through() {
        let b = Breaker::new(1, Duration::from_secs(5));
        b.on_failure(1_000);
        assert!(!b.try_acquire(5_999));
        assert!(b.try_acquire(6_000), "the cool-down has passed: probe");
        assert_eq!(b.state(), BreakerState::HalfOpen);
        assert!(!b.try_acquire(6_000), "one probe at a time");
        b.on_failure(6_001);
        assert_eq!(b.state(), BreakerState::Open, "a failed probe opens again");
        assert!(!b.try_acquire(11_000));
        assert!(b.try_acquire(11_001));
        b.on_success();
        assert_eq!(b.state(), BreakerState::Closed);
        assert!(b.try_acquire(11_001));
        assert_eq!(b.trips(), 2);
    }
}
