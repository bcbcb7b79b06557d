//! Refills and resets at period edges: a duration, calendar months of 28, 30 and 31
//! days, a calendar day in an offset.

use std::time::Duration;

use super::support::*;
use crate::common::*;
use keygate::metering::{Credits, Quota, QuotaPeriod, Refill, RefillInterval, UtcOffset};
use keygate::NewKey;

const DAY: u64 = 86_400;

#[tokio::test]
async fn credits_refill_at_a_duration_boundary_and_not_before() {
    let start = t0();
    let m = Metered::at(start);
    let every = RefillInterval::Every(Duration::from_secs(600));
    let credits = Credits::new(2).refill(Refill::new(2, every).anchored(start));
    let (id, key) = m.key("acct_1", NewKey::named("k").credits(credits)).await;
    assert_eq!(m.send(&key).await.status, 200);
    assert_eq!(m.send(&key).await.status, 200);
    assert_usage_exceeded(&m.send(&key).await, Some("600"));
    m.advance(Duration::from_secs(599));
    assert_usage_exceeded(&m.send(&key).await, Some("1"));
    m.advance(Duration::from_secs(1));
    assert_eq!(m.credits("acct_1", &id).await, 2, "topped up to the amount");
    assert_eq!(m.send(&key).await.status, 200);
    // Many edges later, still topped up only to the amount.
    m.advance(Duration::from_secs(600 * 10));
    assert_eq!(m.credits("acct_1", &id).await, 2);
}

#[tokio::test]
async fn monthly_credits_refill_on_the_first_after_months_of_28_31_and_30_days() {
    // Noon on 27 February 2026 (a 28-day February).
    let m = Metered::at(utc(2026, 2, 27, 12 * 3600));
    let credits = Credits::new(1).refill(Refill::new(1, RefillInterval::Month));
    let (_, key) = m.key("acct_1", NewKey::named("k").credits(credits)).await;
    assert_eq!(m.send(&key).await.status, 200);
    // Until 1 March: a day and a half.
    assert_usage_exceeded(&m.send(&key).await, Some(&(DAY + DAY / 2).to_string()));
    m.advance(Duration::from_secs(DAY + DAY / 2 - 1));
    assert_usage_exceeded(&m.send(&key).await, Some("1"));
    m.advance(Duration::from_secs(1));
    assert_eq!(m.send(&key).await.status, 200, "refilled on 1 March");
    // March has 31 days.
    assert_usage_exceeded(&m.send(&key).await, Some(&(31 * DAY).to_string()));
    m.advance(Duration::from_secs(31 * DAY));
    assert_eq!(m.send(&key).await.status, 200, "refilled on 1 April");
    // April has 30 days.
    assert_usage_exceeded(&m.send(&key).await, Some(&(30 * DAY).to_string()));
    m.advance(Duration::from_secs(30 * DAY - 1));
    assert_usage_exceeded(&m.send(&key).await, Some("1"));
    m.advance(Duration::from_secs(1));
    assert_eq!(m.send(&key).await.status, 200, "refilled on 1 May");
}

#[tokio::test]
async fn a_daily_quota_resets_at_midnight_of_the_configured_offset() {
    // 20:00 UTC is 22:00 at UTC+2: the day there ends in two hours.
    let offset = UtcOffset::from_seconds(2 * 3600).unwrap();
    let m = Metered::with(utc(2026, 12, 3, 20 * 3600), |b| b.calendar_offset(offset));
    let (id, key) = m
        .key(
            "acct_1",
            NewKey::named("k").quota(Quota::new(2, QuotaPeriod::Day)),
        )
        .await;
    assert_eq!(m.send(&key).await.status, 200);
    assert_eq!(m.send(&key).await.status, 200);
    assert_usage_exceeded(&m.send(&key).await, Some("7200"));
    m.advance(Duration::from_secs(7200));
    let quotas = m.view("acct_1", &id).await.usage.unwrap().quotas;
    assert_eq!(quotas[0].remaining, 2, "reset to the limit");
    assert_eq!(m.send(&key).await.status, 200);
}
