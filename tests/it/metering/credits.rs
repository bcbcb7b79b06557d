//! Credits: spend, refusal at zero, refusals that spend nothing, costs, charges after
//! the fact, operator adjustments and per-account sharing.

use std::time::Duration;

use super::support::*;
use crate::common::*;
use keygate::metering::{Credits, Quota, QuotaPeriod, Refill, RefillInterval, UsageLimits};
use keygate::store::AccountId;
use keygate::{Identity, NewKey};

#[tokio::test]
async fn each_request_spends_one_credit_and_the_request_after_the_last_is_refused() {
    let m = Metered::at(t0());
    let (id, key) = m
        .key("acct_1", NewKey::named("k").credits(Credits::new(3)))
        .await;
    assert_eq!(m.credits("acct_1", &id).await, 3);
    for left in [2, 1, 0] {
        assert_eq!(m.send(&key).await.status, 200);
        assert_eq!(m.credits("acct_1", &id).await, left);
    }
    // No refill: no Retry-After.
    assert_usage_exceeded(&m.send(&key).await, None);
    assert_usage_exceeded(&m.send(&key).await, None);
    assert_eq!(
        m.credits("acct_1", &id).await,
        0,
        "a refusal spends nothing"
    );
}

#[tokio::test]
async fn a_request_refused_earlier_or_by_another_meter_spends_nothing() {
    let m = Metered::at(t0());
    let (id, key) = m
        .key(
            "acct_1",
            NewKey::named("k")
                .scopes(["read"])
                .credits(Credits::new(2))
                .quota(Quota::new(5, QuotaPeriod::Day)),
        )
        .await;
    // Refused by the scopes: neither the quota nor the credits move.
    let scoped = m.gate.layer().require_any(["admin"]);
    assert_eq!(m.send_through(scoped, &key).await.status, 403);
    assert_eq!(m.send(&key).await.status, 200);
    assert_eq!(m.send(&key).await.status, 200);
    // Refused by the credits: the quota unit it took is given back.
    let a = m.send(&key).await;
    assert_usage_exceeded(&a, None);
    let view = m.view("acct_1", &id).await.usage.unwrap();
    assert_eq!(view.credits.unwrap().remaining, 0);
    assert_eq!(view.quotas[0].remaining, 3, "two admitted, of five");
}

#[tokio::test]
async fn a_layer_cost_other_than_one_is_spent_whole_or_not_at_all() {
    let m = Metered::at(t0());
    let (id, key) = m
        .key("acct_1", NewKey::named("k").credits(Credits::new(10)))
        .await;
    for _ in 0..3 {
        assert_eq!(
            m.send_through(m.gate.layer().cost(3), &key).await.status,
            200
        );
    }
    assert_eq!(m.credits("acct_1", &id).await, 1);
    assert_usage_exceeded(&m.send_through(m.gate.layer().cost(3), &key).await, None);
    assert_eq!(
        m.credits("acct_1", &id).await,
        1,
        "3 does not fit in 1: nothing spent"
    );
    assert_eq!(
        m.send_through(m.gate.layer().cost(0), &key).await.status,
        200
    );
    assert_eq!(m.send(&key).await.status, 200);
    assert_eq!(m.credits("acct_1", &id).await, 0);
}

#[tokio::test]
async fn an_inner_layer_cost_replaces_the_outer_one() {
    let m = Metered::at(t0());
    let (id, key) = m
        .key("acct_1", NewKey::named("k").credits(Credits::new(10)))
        .await;
    let inner = tower::Layer::layer(&m.gate.layer().cost(4), Echo);
    let mut svc = tower::Layer::layer(&m.gate.layer(), inner);
    assert_eq!(send(&mut svc, get("/", Some(&key))).await.status, 200);
    assert_eq!(m.credits("acct_1", &id).await, 6);
    let cheap = tower::Layer::layer(&m.gate.layer().cost(0), Echo);
    let mut svc = tower::Layer::layer(&m.gate.layer(), cheap);
    assert_eq!(send(&mut svc, get("/", Some(&key))).await.status, 200);
    assert_eq!(
        m.credits("acct_1", &id).await,
        6,
        "the inner cost of 0 refunds the outer 1"
    );
}

#[tokio::test]
async fn a_charge_after_the_fact_can_go_below_zero_and_refills_pay_it_off_first() {
    let start = t0();
    let hour = RefillInterval::Every(Duration::from_secs(3600));
    let m = Metered::at(start);
    let credits = Credits::new(5).refill(Refill::new(5, hour).anchored(start));
    let (id, key) = m.key("acct_1", NewKey::named("k").credits(credits)).await;
    let charging = tower::service_fn(
        |req: http::Request<http_body_util::Full<bytes::Bytes>>| async move {
            let identity = req.extensions().get::<Identity>().unwrap().clone();
            assert!(identity.has_credits());
            identity.charge(11);
            Ok::<_, std::convert::Infallible>(http::Response::new(http_body_util::Full::new(
                bytes::Bytes::new(),
            )))
        },
    );
    let mut svc = tower::Layer::layer(&m.gate.layer(), charging);
    assert_eq!(send(&mut svc, get("/", Some(&key))).await.status, 200);
    assert_eq!(m.credits("acct_1", &id).await, 5 - 1 - 11);
    assert_usage_exceeded(&m.send(&key).await, Some("3600"));
    // One refill of 5 leaves -2: still refused.
    m.advance(Duration::from_secs(3600));
    assert_usage_exceeded(&m.send(&key).await, Some("3600"));
    assert_eq!(m.credits("acct_1", &id).await, -2);
    m.advance(Duration::from_secs(3600));
    assert_eq!(m.send(&key).await.status, 200);
    assert_eq!(m.credits("acct_1", &id).await, 2);
}

#[tokio::test]
async fn a_refund_through_the_identity_gives_credits_back() {
    let m = Metered::at(t0());
    let (id, key) = m
        .key("acct_1", NewKey::named("k").credits(Credits::new(2)))
        .await;
    let refunding = tower::service_fn(
        |req: http::Request<http_body_util::Full<bytes::Bytes>>| async move {
            req.extensions().get::<Identity>().unwrap().refund(1);
            Ok::<_, std::convert::Infallible>(http::Response::new(http_body_util::Full::new(
                bytes::Bytes::new(),
            )))
        },
    );
    let mut svc = tower::Layer::layer(&m.gate.layer(), refunding);
    for _ in 0..5 {
        assert_eq!(send(&mut svc, get("/", Some(&key))).await.status, 200);
    }
    assert_eq!(m.credits("acct_1", &id).await, 2);
}

#[tokio::test]
async fn operators_add_spend_and_set_credits_exactly() {
    let m = Metered::at(t0());
    let account = AccountId::from("acct_1");
    let (id, key) = m
        .key("acct_1", NewKey::named("k").credits(Credits::new(1)))
        .await;
    assert_eq!(m.send(&key).await.status, 200);
    assert_usage_exceeded(&m.send(&key).await, None);
    assert_eq!(m.manager.adjust_credits(&account, &id, 2).await.unwrap(), 2);
    assert_eq!(m.send(&key).await.status, 200);
    assert_eq!(
        m.manager.adjust_credits(&account, &id, -1).await.unwrap(),
        0
    );
    assert_usage_exceeded(&m.send(&key).await, None);
    m.manager.set_credits(&account, &id, 4).await.unwrap();
    assert_eq!(m.credits("acct_1", &id).await, 4);
    for _ in 0..4 {
        assert_eq!(m.send(&key).await.status, 200);
    }
    assert_usage_exceeded(&m.send(&key).await, None);
}

#[tokio::test]
async fn account_credits_are_shared_by_every_key_of_the_account_and_no_other() {
    let m = Metered::at(t0());
    let account = AccountId::from("acct_1");
    let (_, a) = m.key("acct_1", NewKey::named("a")).await;
    let (id_b, b) = m.key("acct_1", NewKey::named("b")).await;
    let (_, other) = m.key("acct_2", NewKey::named("other")).await;
    let mut limits = UsageLimits::default();
    limits.credits = Some(Credits::new(3));
    m.manager
        .set_account_limits(&account, limits)
        .await
        .unwrap();
    assert_eq!(m.send(&a).await.status, 200);
    assert_eq!(m.send(&b).await.status, 200);
    assert_eq!(m.send(&a).await.status, 200);
    assert_usage_exceeded(&m.send(&b).await, None);
    assert_usage_exceeded(&m.send(&a).await, None);
    assert_eq!(
        m.send(&other).await.status,
        200,
        "another account is not metered"
    );
    let view = m.view("acct_1", &id_b).await;
    assert!(view.usage.is_none());
    assert_eq!(view.account_usage.unwrap().credits.unwrap().remaining, 0);
    let shown = m.manager.account_limits(&account).await.unwrap().unwrap();
    assert_eq!(shown.credits.unwrap().remaining, 0);
}

#[tokio::test]
async fn grpc_callers_get_resource_exhausted() {
    let m = Metered::at(t0());
    let (_, key) = m
        .key("acct_1", NewKey::named("k").credits(Credits::new(0)))
        .await;
    let a = m.send_through(m.gate.layer().grpc(), &key).await;
    assert_eq!(a.status, 200);
    assert_eq!(a.header("grpc-status"), Some("8"));
}
