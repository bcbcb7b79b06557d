//! governor as the oracle for the GCRA cell: the same quota and the same arrival times
//! must give the same admit/refuse decisions and the same waits.
//!
//! governor's direct limiter runs on its `FakeRelativeClock` (nanoseconds since the
//! limiter was made); the cell runs on Unix nanoseconds from a fixed start. Both clocks
//! count whole nanoseconds, so "within the clock's resolution" means exactly equal.

use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock as _, FakeRelativeClock};
use governor::{Quota, RateLimiter};
use proptest::prelude::*;

use super::tier::{Cell, Tier};
use crate::store::record::RateLimit;

/// Cases per property: each feeds up to `MAX_ARRIVALS` requests to both limiters.
const CASES: u32 = 512;
const MAX_ARRIVALS: usize = 256;
/// An arbitrary start on the cell's clock (2023-11-14), so it never starts at zero.
const START: u64 = 1_700_000_000 * 1_000_000_000;

/// One limiter's answer to one request: admitted, or refused with the wait until a token
/// is back.
#[derive(Debug, PartialEq, Eq)]
enum Decision {
    Admit,
    Refuse(Duration),
}

/// Feeds `gaps` (nanoseconds between consecutive requests; 0 for simultaneous ones) to
/// governor and to the cell under `quota`, and returns both sequences of decisions.
fn run_both(quota: RateLimit, gaps: &[u64]) -> (Vec<Decision>, Vec<Decision>) {
    let per_second = NonZeroU32::new(quota.per_second).expect("a positive rate");
    let burst = NonZeroU32::new(quota.burst).expect("a positive burst");
    let clock = FakeRelativeClock::default();
    let governor = RateLimiter::direct_with_clock(
        Quota::per_second(per_second).allow_burst(burst),
        clock.clone(),
    );
    let tier = Tier::new(quota).expect("a limited quota");
    let cell = Cell::default();

    let mut now = START;
    let mut theirs = Vec::with_capacity(gaps.len());
    let mut ours = Vec::with_capacity(gaps.len());
    for &gap in gaps {
        clock.advance(Duration::from_nanos(gap));
        now += gap;
        theirs.push(match governor.check() {
            Ok(()) => Decision::Admit,
            Err(not_until) => Decision::Refuse(not_until.wait_time_from(clock.now())),
        });
        ours.push(match tier.take(&cell, now) {
            Ok(_) => Decision::Admit,
            Err((wait, _)) => Decision::Refuse(wait),
        });
    }
    (theirs, ours)
}

/// A gap between requests, in nanoseconds, scaled to the quota's interval so that every
/// case mixes bursts, arrivals near the refill rate and long pauses.
fn gap(interval: u64) -> impl Strategy<Value = u64> {
    prop_oneof![
        3 => Just(0),
        4 => 0..=interval.saturating_mul(2),
        2 => (0u64..=16).prop_map(move |eighths| interval / 8 * eighths),
        1 => 0..=interval.saturating_mul(64),
    ]
}

/// A quota and the gaps between its requests.
fn scenario(max_per_second: u32, max_burst: u32) -> impl Strategy<Value = (RateLimit, Vec<u64>)> {
    (1..=max_per_second, 1..=max_burst).prop_flat_map(|(per_second, burst)| {
        let interval = (1_000_000_000 / u64::from(per_second)).max(1);
        (
            Just(RateLimit::new(per_second, burst)),
            prop::collection::vec(gap(interval), 1..=MAX_ARRIVALS),
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    /// Small quotas, where single requests decide: bursts of 1 to 20 at 1 to 50 per second.
    #[test]
    fn cell_decides_as_governor_on_small_quotas((quota, gaps) in scenario(50, 20)) {
        let (theirs, ours) = run_both(quota, &gaps);
        prop_assert_eq!(ours, theirs);
    }

    /// Large rates, up to a million per second (a 1 µs interval, where the interval is
    /// rounded down to whole nanoseconds), with bursts up to 100 so that the arrivals of
    /// one case can still empty the bucket.
    #[test]
    fn cell_decides_as_governor_on_large_quotas((quota, gaps) in scenario(1_000_000, 100)) {
        let (theirs, ours) = run_both(quota, &gaps);
        prop_assert_eq!(ours, theirs);
    }
}

/// The properties above compare sequences; this pins one known sequence so that a change
/// to both sides at once (or to the harness) cannot pass unnoticed.
#[test]
fn a_burst_of_three_at_two_per_second_refuses_the_fourth_for_half_a_second() {
    let (theirs, ours) = run_both(RateLimit::new(2, 3), &[0, 0, 0, 0, 500_000_000]);
    let expected = [
        Decision::Admit,
        Decision::Admit,
        Decision::Admit,
        Decision::Refuse(Duration::from_millis(500)),
        Decision::Admit,
    ];
    assert_eq!(theirs, expected);
    assert_eq!(ours, expected);
}
