//! The in-process ledger's own tests.

use std::time::{Duration, UNIX_EPOCH};

use super::*;
use crate::metering::{Refill, RefillInterval, UtcOffset};

#[test]
fn reserve_grants_what_remains_and_release_of_an_ended_period_is_dropped() {
    let ledger = MemoryLedger::new();
    let meter = Meter::KeyCredits("ak_1".into());
    let hour = RefillInterval::Every(Duration::from_secs(3600));
    let policy = MeterPolicy::new(10, Some(Refill::new(10, hour)), UtcOffset::UTC);
    let t0 = UNIX_EPOCH + Duration::from_secs(3600 * 1000);
    let r = ledger.reserve_now(&meter, &policy, 4, t0);
    assert_eq!((r.granted, r.balance, r.period), (4, 6, 1000));
    let r = ledger.reserve_now(&meter, &policy, 100, t0);
    assert_eq!((r.granted, r.balance), (6, 0));
    ledger.release_now(&meter, 1000, 3);
    assert_eq!(ledger.balance_now(&meter, &policy, t0), 3);
    let t1 = t0 + Duration::from_secs(3600);
    assert_eq!(ledger.balance_now(&meter, &policy, t1), 10);
    ledger.release_now(&meter, 1000, 3);
    assert_eq!(ledger.balance_now(&meter, &policy, t1), 10);
    assert_eq!(ledger.adjust_now(&meter, &policy, -25, t1), -15);
    assert_eq!(ledger.reserve_now(&meter, &policy, 1, t1).granted, 0);
}

#[test]
fn a_fair_reservation_takes_at_most_a_share_of_a_small_balance() {
    let ledger = MemoryLedger::new();
    let meter = Meter::KeyCredits("ak_1".into());
    let policy = MeterPolicy::new(1000, None, UtcOffset::UTC);
    let t0 = UNIX_EPOCH + Duration::from_secs(3600 * 1000);
    // Large balance: the whole lease.
    assert_eq!(
        ledger.reserve_fair_now(&meter, &policy, 64, 4, t0).granted,
        64
    );
    // 936 left: at most a quarter of it (234) of the 256 wanted.
    let r = ledger.reserve_fair_now(&meter, &policy, 256, 4, t0);
    assert_eq!((r.granted, r.balance), (234, 702));
    ledger.set_now(&meter, &policy, 10, t0);
    // ceil(10 / 4) = 3, then ceil(7 / 4) = 2, ceil(5 / 4) = 2, ceil(3 / 4) = 1 ...
    let grants: Vec<u64> = std::iter::from_fn(|| {
        let g = ledger.reserve_fair_now(&meter, &policy, 64, 4, t0).granted;
        (g > 0).then_some(g)
    })
    .collect();
    assert_eq!(grants, [3, 2, 2, 1, 1, 1]);
    assert_eq!(ledger.balance_now(&meter, &policy, t0), 0);
    assert_eq!(fair_share(0, 4), 0);
    assert_eq!(fair_share(5, 1), 5);
}
