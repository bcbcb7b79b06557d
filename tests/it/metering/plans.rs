//! Plans: keys and accounts on a named plan, narrowing, and a plan change reaching
//! keys that are already cached.

use super::support::*;
use crate::common::*;
use keygate::manage::KeyUpdate;
use keygate::metering::{Credits, Plan, Quota, QuotaPeriod, UsageLimits};
use keygate::store::{AccountId, RateLimit};
use keygate::{ManageError, NewKey};

fn free() -> Plan {
    Plan::new("free").credits(Credits::new(2))
}

#[tokio::test]
async fn a_plan_change_applies_at_once_to_keys_already_on_it() {
    let m = Metered::with(t0(), |b| b.plan(free()));
    let (_, key) = m.key("acct_1", NewKey::named("k").plan("free")).await;
    let (_, other) = m.key("acct_1", NewKey::named("k2").plan("free")).await;
    assert_eq!(m.send(&key).await.status, 200);
    assert_eq!(m.send(&key).await.status, 200);
    assert_usage_exceeded(&m.send(&key).await, None);
    // Each key on the plan has its own credits.
    assert_eq!(m.send(&other).await.status, 200);
    // The plan now has a daily quota of one instead of credits: both cached keys follow.
    m.gate
        .set_plan(Plan::new("free").quota(Quota::new(1, QuotaPeriod::Day)));
    assert_eq!(m.send(&key).await.status, 200);
    assert_usage_exceeded(&m.send(&key).await, Some("6400"));
    // T0 is 22:13:20 UTC: 6,400 s to midnight.
    assert_eq!(m.send(&other).await.status, 200);
    assert_usage_exceeded(&m.send(&other).await, Some("6400"));
}

#[tokio::test]
async fn moving_a_key_to_another_plan_applies_at_the_next_request() {
    let pro = Plan::new("pro").credits(Credits::new(100));
    let m = Metered::with(t0(), |b| b.plan(free()).plan(pro));
    let account = AccountId::from("acct_1");
    let (id, key) = m.key("acct_1", NewKey::named("k").plan("free")).await;
    assert_eq!(m.send(&key).await.status, 200);
    assert_eq!(m.send(&key).await.status, 200);
    assert_usage_exceeded(&m.send(&key).await, None);
    let view = m
        .manager
        .update(&account, &id, KeyUpdate::default().plan(Some("pro".into())))
        .await
        .unwrap();
    let usage = view.usage.unwrap();
    assert_eq!(usage.plan.as_deref(), Some("pro"));
    assert_eq!(
        usage.credits.unwrap().remaining,
        100,
        "the new plan's credits"
    );
    assert_eq!(m.send(&key).await.status, 200);
    assert_eq!(m.credits("acct_1", &id).await, 99);
}

#[tokio::test]
async fn an_account_on_a_plan_shares_its_credits_across_keys() {
    let m = Metered::with(t0(), |b| b.plan(free()));
    let mut limits = UsageLimits::default();
    limits.plan = Some("free".into());
    let (_, a) = m.key("acct_1", NewKey::named("a")).await;
    let (_, b) = m.key("acct_1", NewKey::named("b")).await;
    m.manager
        .set_account_limits(&AccountId::from("acct_1"), limits)
        .await
        .unwrap();
    assert_eq!(m.send(&a).await.status, 200);
    assert_eq!(m.send(&b).await.status, 200);
    assert_usage_exceeded(&m.send(&a).await, None);
    assert_usage_exceeded(&m.send(&b).await, None);
}

#[tokio::test]
async fn a_key_may_only_narrow_its_plan() {
    let plan = Plan::new("pro")
        .rate_limit(RateLimit::new(10, 20))
        .credits(Credits::new(100))
        .quota(Quota::new(50, QuotaPeriod::Day));
    let m = Metered::with(t0(), |b| b.plan(plan));
    let account = AccountId::from("acct_1");
    let wider = [
        NewKey::named("k").plan("pro").credits(Credits::new(101)),
        NewKey::named("k")
            .plan("pro")
            .quota(Quota::new(51, QuotaPeriod::Day)),
        NewKey::named("k")
            .plan("pro")
            .rate_limit(RateLimit::new(11, 20)),
        NewKey::named("k").plan("enterprise"),
    ];
    for new in wider {
        let err = m.manager.create(account.clone(), new).await.unwrap_err();
        assert!(matches!(err, ManageError::InvalidRequest(_)), "{err:?}");
    }
    let (id, key) = m
        .key(
            "acct_1",
            NewKey::named("k")
                .plan("pro")
                .quota(Quota::new(1, QuotaPeriod::Day)),
        )
        .await;
    assert_eq!(m.send(&key).await.status, 200);
    assert_usage_exceeded(&m.send(&key).await, Some("6400"));
    let usage = m.view("acct_1", &id).await.usage.unwrap();
    assert_eq!(usage.quotas[0].limit, 1);
    assert_eq!(usage.credits.unwrap().remaining, 99);
}

#[tokio::test]
async fn a_plan_that_no_longer_exists_fails_closed() {
    let m = Metered::with(t0(), |b| b.plan(free()));
    let (_, key) = m.key("acct_1", NewKey::named("k").plan("free")).await;
    assert_eq!(m.send(&key).await.status, 200);
    m.gate.remove_plan("free");
    assert_usage_exceeded(&m.send(&key).await, None);
}

#[tokio::test]
async fn plans_come_from_the_configuration_file() {
    let config: keygate::config::KeygateConfig = toml::from_str(
        r#"
        [[plans]]
        name = "pro"
        rate_limit = { per_second = 5, burst = 10 }
        credits = { remaining = 2, refill = { amount = 2, interval = "month" } }
        quotas = [{ limit = 100, period = "day" }]
        "#,
    )
    .unwrap();
    let m = Metered::with(t0(), |b| b.config(&config).unwrap());
    assert_eq!(m.gate.plan("pro").unwrap().credits.unwrap().remaining, 2);
    let (_, key) = m.key("acct_1", NewKey::named("k").plan("pro")).await;
    assert_eq!(m.send(&key).await.status, 200);
    assert_eq!(m.send(&key).await.status, 200);
    assert_eq!(m.send(&key).await.code(), "usage_exceeded");
}
