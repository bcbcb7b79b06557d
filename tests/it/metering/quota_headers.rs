//! Quotas per period in responses: items of the IETF draft's `RateLimit-Policy` and
//! `RateLimit` fields beside the per-second policy, and `X-…` headers of the
//! deployment's choosing, on admitted requests and on `usage_exceeded` refusals.

use std::time::Duration;

use super::support::*;
use keygate::metering::{Credits, Quota, QuotaPeriod, UsageLimits};
use keygate::ratelimit::{QuotaHeaders, RateLimitConfig};
use keygate::store::{AccountId, RateLimit};
use keygate::NewKey;

const DAY: u64 = 86_400;

/// A gate at `start` whose rate limit is 10/s with a burst of 10, with the IETF fields
/// `ietf` and the `X-Quota-*` headers `x`.
fn gate(start: std::time::SystemTime, ietf: bool, x: bool) -> Metered {
    Metered::with(start, |b| {
        b.rate_limits(
            RateLimitConfig::default()
                .default_quota(Some(RateLimit::new(10, 10)))
                .ietf_headers(ietf)
                .quota_headers(x.then(QuotaHeaders::x_quota)),
        )
    })
}

fn quotas(day: u64, month: u64) -> NewKey {
    NewKey::named("k")
        .quota(Quota::new(day, QuotaPeriod::Day))
        .quota(Quota::new(month, QuotaPeriod::Month))
}

#[tokio::test]
async fn quota_headers_are_off_by_default_and_the_ietf_fields_carry_only_the_rate_limit() {
    let m = gate(utc(2026, 3, 1, 0), false, false);
    let (_, key) = m.key("acct_1", quotas(10, 100)).await;
    let a = m.send(&key).await;
    assert_eq!(a.status, 200);
    assert_eq!(a.header("x-ratelimit-remaining"), Some("9"));
    for name in [
        "x-quota-limit",
        "x-quota-remaining",
        "x-quota-reset",
        "ratelimit",
        "ratelimit-policy",
    ] {
        assert_eq!(a.header(name), None, "{name}");
    }
}

#[tokio::test]
async fn with_the_ietf_fields_on_each_quota_is_a_policy_item_beside_the_per_second_one() {
    // 1 March 2026, midnight UTC: a day of 86,400 s and a month of 31 days begin.
    let m = gate(utc(2026, 3, 1, 0), true, false);
    let (_, key) = m.key("acct_1", quotas(10, 100)).await;
    let a = m.send(&key).await;
    assert_eq!(a.status, 200);
    assert_eq!(
        a.header("ratelimit-policy"),
        Some("\"default\";q=10;w=1, \"day\";q=10;w=86400, \"month\";q=100;w=2678400")
    );
    assert_eq!(
        a.header("ratelimit"),
        Some("\"default\";r=9;t=1, \"day\";r=9;t=86400, \"month\";r=99;t=2678400")
    );
    assert_eq!(a.header("x-quota-limit"), None, "X- headers stay off");
    m.advance(Duration::from_secs(3600));
    let a = m.send(&key).await;
    assert_eq!(
        a.header("ratelimit"),
        Some("\"default\";r=9;t=1, \"day\";r=8;t=82800, \"month\";r=98;t=2674800")
    );
}

#[tokio::test]
async fn reset_seconds_count_to_the_day_and_month_boundaries_and_the_quota_resets_there() {
    // One second before the end of 28 February 2026 (a month of 28 days).
    let m = gate(utc(2026, 2, 28, DAY - 1), true, true);
    let (_, key) = m.key("acct_1", quotas(3, 5)).await;
    let a = m.send(&key).await;
    let items = a.header("ratelimit").unwrap().to_owned();
    assert!(
        items.ends_with("\"day\";r=2;t=1, \"month\";r=4;t=1"),
        "{items}"
    );
    assert!(a
        .header("ratelimit-policy")
        .unwrap()
        .ends_with("\"day\";q=3;w=86400, \"month\";q=5;w=2419200"));
    let march = utc(2026, 3, 1, 0);
    let march_secs = march
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert_eq!(a.header("x-quota-reset"), Some(&*(march_secs).to_string()));
    m.advance(Duration::from_secs(1));
    let a = m.send(&key).await;
    let items = a.header("ratelimit").unwrap().to_owned();
    assert!(
        items.ends_with("\"day\";r=2;t=86400, \"month\";r=4;t=2678400"),
        "both quotas reset at midnight of 1 March: {items}"
    );
    assert_eq!(
        a.header("x-quota-reset"),
        Some(&*(march_secs + DAY).to_string()),
        "the day's quota and the month's have 2 left each: the one that resets first"
    );
}

#[tokio::test]
async fn the_x_headers_report_the_quota_with_the_least_remaining_key_or_account() {
    let start = utc(2026, 3, 10, 12 * 3600);
    let m = gate(start, false, true);
    let account = AccountId::from("acct_1");
    let mut shared = UsageLimits::default();
    shared.quotas = vec![Quota::new(4, QuotaPeriod::Month)];
    m.manager
        .set_account_limits(&account, shared)
        .await
        .unwrap();
    let (_, key) = m
        .key(
            "acct_1",
            NewKey::named("k").quota(Quota::new(10, QuotaPeriod::Day)),
        )
        .await;
    let a = m.send(&key).await;
    assert_eq!(a.status, 200);
    // The key's day: 9 of 10 left; the account's month: 3 of 4.
    assert_eq!(a.header("x-quota-limit"), Some("4"));
    assert_eq!(a.header("x-quota-remaining"), Some("3"));
    let april = utc(2026, 4, 1, 0)
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert_eq!(a.header("x-quota-reset"), Some(&*april.to_string()));
    assert_eq!(a.header("ratelimit"), None, "IETF fields stay off");
}

#[tokio::test]
async fn an_accounts_quota_is_its_own_policy_item() {
    let m = gate(utc(2026, 3, 10, 0), true, true);
    let account = AccountId::from("acct_1");
    let mut shared = UsageLimits::default();
    shared.quotas = vec![Quota::new(50, QuotaPeriod::Week)];
    m.manager
        .set_account_limits(&account, shared)
        .await
        .unwrap();
    let (_, a_key) = m.key("acct_1", NewKey::named("a")).await;
    let (_, b_key) = m.key("acct_1", NewKey::named("b")).await;
    assert_eq!(m.send(&a_key).await.status, 200);
    let b = m.send(&b_key).await;
    // Tuesday 10 March 2026, midnight: the week (from Monday) ends in 6 days.
    assert_eq!(
        b.header("ratelimit"),
        Some("\"default\";r=9;t=1, \"account-week\";r=48;t=518400")
    );
    assert_eq!(
        b.header("ratelimit-policy"),
        Some("\"default\";q=10;w=1, \"account-week\";q=50;w=604800")
    );
    assert_eq!(
        b.header("x-quota-remaining"),
        Some("48"),
        "shared by the account's keys"
    );
}

#[tokio::test]
async fn a_usage_exceeded_refusal_reports_the_quotas_as_it_left_them() {
    let m = gate(utc(2026, 3, 1, 20 * 3600), true, true);
    let (_, key) = m
        .key("acct_1", quotas(2, 100).credits(Credits::new(1_000)))
        .await;
    for _ in 0..2 {
        assert_eq!(m.send(&key).await.status, 200);
    }
    let a = m.send(&key).await;
    assert_usage_exceeded(&a, Some("14400"));
    assert!(
        a.header("ratelimit")
            .unwrap()
            .ends_with("\"day\";r=0;t=14400, \"month\";r=98;t=2606400"),
        "{:?}",
        a.header("ratelimit")
    );
    assert_eq!(a.header("x-quota-limit"), Some("2"));
    assert_eq!(a.header("x-quota-remaining"), Some("0"));
    // The refusal spent nothing from the month's quota or the credits.
    let a = m.send(&key).await;
    assert!(a.header("ratelimit").unwrap().contains("\"month\";r=98;"));
    // gRPC refusals carry the same fields, as metadata.
    let g = m.send_through(m.gate.layer().grpc(), &key).await;
    assert_eq!(g.header("grpc-status"), Some("8"));
    assert_eq!(g.header("x-quota-remaining"), Some("0"));
    assert!(g
        .header("ratelimit")
        .unwrap()
        .contains("\"day\";r=0;t=14400"));
}

#[tokio::test]
async fn credits_alone_are_not_reported_as_a_quota() {
    let m = gate(utc(2026, 3, 1, 0), true, true);
    let (_, key) = m
        .key("acct_1", NewKey::named("k").credits(Credits::new(5)))
        .await;
    let a = m.send(&key).await;
    assert_eq!(a.header("ratelimit"), Some("\"default\";r=9;t=1"));
    assert_eq!(a.header("x-quota-remaining"), None);
}

#[test]
fn quota_header_names_are_checked_and_read_from_configuration_files() {
    let config: RateLimitConfig = toml::from_str(
        r#"quota_headers = { limit = "X-Plan-Limit", remaining = "X-Plan-Remaining", reset = "X-Plan-Reset" }"#,
    )
    .unwrap();
    let names = config.quota_headers.unwrap();
    assert_eq!(names.limit().as_str(), "x-plan-limit");
    for bad in [
        r#"quota_headers = { limit = "X-RateLimit-Limit", remaining = "a", reset = "b" }"#,
        r#"quota_headers = { limit = "bad name", remaining = "a", reset = "b" }"#,
        r#"quota_headers = { limit = "a", remaining = "a", reset = "b" }"#,
    ] {
        let err = toml::from_str::<RateLimitConfig>(bad)
            .unwrap_err()
            .to_string();
        assert!(err.contains("quota_headers"), "{err}");
    }
}
