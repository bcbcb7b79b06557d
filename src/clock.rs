//! Time sources: the wall clock, and a manual clock for tests.
//!
//! Everything in keygate that depends on time (expiry, roll grace periods, cache
//! lifetimes, rate limits, last-used tracking) reads it from one [`Clock`], so a test can
//! drive all of it with a [`ManualClock`] instead of sleeping.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A source of wall-clock and monotonic time.
///
/// `Clock::default()` is the system clock. Cloning is cheap.
#[derive(Clone, Debug, Default)]
pub struct Clock {
    manual: Option<Arc<ManualState>>,
}

#[derive(Debug)]
struct ManualState {
    start: SystemTime,
    elapsed_nanos: AtomicU64,
}

/// A handle that moves a manual [`Clock`] forward.
#[derive(Clone, Debug)]
pub struct ManualClock {
    state: Arc<ManualState>,
}

impl Clock {
    /// The system clock.
    pub fn system() -> Self {
        Self::default()
    }

    /// A clock that stands still at `start` until its [`ManualClock`] advances it.
    pub fn manual(start: SystemTime) -> (Self, ManualClock) {
        let state = Arc::new(ManualState {
            start,
            elapsed_nanos: AtomicU64::new(0),
        });
        (
            Self {
                manual: Some(state.clone()),
            },
            ManualClock { state },
        )
    }

    /// The current wall-clock time.
    pub fn now(&self) -> SystemTime {
        match &self.manual {
            None => SystemTime::now(),
            Some(state) => {
                state.start + Duration::from_nanos(state.elapsed_nanos.load(Ordering::Acquire))
            }
        }
    }

    /// The current time, for the request path: see [`Now`].
    #[inline]
    pub(crate) fn read(&self) -> Now {
        Now::of(self.now())
    }
}

/// A request's time, read once: the wall-clock time and the same instant in Unix
/// nanoseconds, so that every step of the request path (rate limit, usage counts,
/// credits, last use) reads the integer without converting the time again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Now {
    /// The wall-clock time.
    pub(crate) at: SystemTime,
    /// The same, in nanoseconds since the Unix epoch (0 before it).
    pub(crate) unix_nanos: u64,
}

impl Now {
    /// `at`, converted once.
    #[inline]
    pub(crate) fn of(at: SystemTime) -> Self {
        // Seconds and nanoseconds in 64 bits: no 128-bit product on the request path.
        let unix_nanos = at.duration_since(UNIX_EPOCH).map_or(0, |d| {
            d.as_secs()
                .saturating_mul(1_000_000_000)
                .saturating_add(u64::from(d.subsec_nanos()))
        });
        Self { at, unix_nanos }
    }

    /// Whole seconds since the Unix epoch.
    #[inline]
    pub(crate) fn unix_secs(self) -> u64 {
        self.unix_nanos / 1_000_000_000
    }
}

impl From<SystemTime> for Now {
    fn from(at: SystemTime) -> Self {
        Self::of(at)
    }
}

impl ManualClock {
    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        let nanos = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
        self.state.elapsed_nanos.fetch_add(nanos, Ordering::AcqRel);
    }

    /// The clock's current wall-clock time.
    pub fn now(&self) -> SystemTime {
        self.state.start + Duration::from_nanos(self.state.elapsed_nanos.load(Ordering::Acquire))
    }
}

/// Seconds since the Unix epoch, rounded up (0 for times before it). Only the shared
/// (Redis) limiter reports in these; the local one works in nanoseconds.
#[cfg_attr(not(feature = "redis"), allow(dead_code))]
pub(crate) fn unix_seconds_ceil(at: SystemTime) -> u64 {
    match at.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs() + u64::from(d.subsec_nanos() > 0),
        Err(_) => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_advanced() {
        let start = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let (clock, handle) = Clock::manual(start);
        assert_eq!(clock.now(), start);
        handle.advance(Duration::from_millis(1500));
        assert_eq!(clock.now(), start + Duration::from_millis(1500));
        assert_eq!(unix_seconds_ceil(clock.now()), 1_700_000_002);
    }
}
