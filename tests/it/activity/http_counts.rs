//! A known mix of requests with two keys of two accounts, counted exactly per outcome,
//! key and minute, and read back through the management API.

use std::time::Duration;

use keygate::activity::Outcome;
use keygate::gate::CacheConfig;
use keygate::ratelimit::RateLimitConfig;
use keygate::store::{AccountId, RateLimit};
use keygate::{NewKey, ScopeRequirement};
use serde_json::json;

use super::{from, minute_of, minutes, total};
use crate::common::*;

const ALLOWED: &str = "203.0.113.7";
const OTHER: &str = "198.51.100.1";

#[tokio::test]
async fn a_known_mix_is_counted_exactly_per_outcome_key_and_minute_through_http() {
    let h = Harness::with(|b| {
        b.rate_limits(RateLimitConfig::default().default_quota(Some(RateLimit::new(1, 5))))
            .cache(CacheConfig::default().positive_ttl(Duration::from_secs(600)))
    });
    let start = h.clock.now();
    let (a, key_a) = h
        .key_with("acct_a", NewKey::named("a").scopes(["read"]).ips([ALLOWED]))
        .await;
    let (b, key_b) = h.key("acct_b", &["read"]).await;
    let (_, admin_a) = h.key("acct_a", &["admin"]).await;
    let (_, admin_b) = h.key("acct_b", &["admin"]).await;
    let mut read = tower::Layer::layer(
        &h.gate.layer().require(ScopeRequirement::any_of(["read"])),
        Echo,
    );
    let mut write = tower::Layer::layer(
        &h.gate.layer().require(ScopeRequirement::any_of(["write"])),
        Echo,
    );

    // Minute 0, key A: 3 accepted, 2 from another IP, 2 without the scope, then the
    // quota's last 2 and 3 over it.
    for _ in 0..3 {
        assert_eq!(
            send(&mut read, from(get("/r", Some(&key_a)), ALLOWED))
                .await
                .status,
            200
        );
    }
    for _ in 0..2 {
        let refused = send(&mut read, from(get("/r", Some(&key_a)), OTHER)).await;
        assert_eq!(refused.code(), "ip_not_allowed");
    }
    for _ in 0..2 {
        let refused = send(&mut write, from(get("/w", Some(&key_a)), ALLOWED)).await;
        assert_eq!(refused.code(), "insufficient_scope");
    }
    for _ in 0..2 {
        assert_eq!(
            send(&mut read, from(get("/r", Some(&key_a)), ALLOWED))
                .await
                .status,
            200
        );
    }
    for _ in 0..3 {
        let refused = send(&mut read, from(get("/r", Some(&key_a)), ALLOWED)).await;
        assert_eq!(refused.code(), "rate_limited");
    }
    // Key B: 2 accepted, then revoked, then 3 refused as revoked.
    for _ in 0..2 {
        assert_eq!(
            send(&mut read, from(get("/r", Some(&key_b)), OTHER))
                .await
                .status,
            200
        );
    }
    h.manager
        .revoke(&AccountId::from("acct_b"), &b)
        .await
        .unwrap();
    for _ in 0..3 {
        let refused = send(&mut read, from(get("/r", Some(&key_b)), OTHER)).await;
        assert_eq!(refused.code(), "revoked_api_key");
    }
    // Before any key is known: counted for the deployment only.
    send(&mut read, get("/r", None)).await;
    send(&mut read, get("/r", Some("sk_live_notakey"))).await;

    // Minute 1: key A once more (the bucket has refilled).
    h.time.advance(Duration::from_secs(60));
    assert_eq!(
        send(&mut read, from(get("/r", Some(&key_a)), ALLOWED))
            .await
            .status,
        200
    );

    let mut admin = keygate::admin::router(h.manager.clone());
    let m0 = minute_of(start);
    let range = |g: &str| {
        format!(
            "?granularity={g}&from={}&to={}",
            humantime::format_rfc3339_seconds(m0),
            humantime::format_rfc3339_seconds(m0 + Duration::from_secs(120))
        )
    };
    let usage = send(
        &mut admin,
        get(
            &format!("/v1/api-keys/{a}/usage{}", range("minute")),
            Some(&admin_a),
        ),
    )
    .await;
    assert_eq!(usage.status, 200, "{}", usage.body);
    assert_eq!(
        usage.json(),
        json!({"data": [
            {"start": humantime::format_rfc3339_seconds(m0).to_string(),
             "outcomes": {"accepted": 5, "ip_not_allowed": 2, "insufficient_scope": 2, "rate_limited": 3}},
            {"start": humantime::format_rfc3339_seconds(m0 + Duration::from_secs(60)).to_string(),
             "outcomes": {"accepted": 1}},
        ]})
    );
    let b_usage = send(
        &mut admin,
        get(
            &format!("/v1/api-keys/{b}/usage{}", range("minute")),
            Some(&admin_b),
        ),
    )
    .await;
    assert_eq!(
        b_usage.json()["data"][0]["outcomes"],
        json!({"accepted": 2, "revoked_api_key": 3})
    );
    assert_eq!(b_usage.json()["data"][1]["outcomes"], json!({}));

    // The hour holds both minutes; an account sees no other account's key.
    let hour = send(
        &mut admin,
        get(
            &format!("/v1/api-keys/{a}/usage?granularity=hour"),
            Some(&admin_a),
        ),
    )
    .await;
    let hours = hour.json()["data"].as_array().unwrap().clone();
    assert_eq!(hours.len(), 48);
    assert_eq!(hours[47]["outcomes"]["accepted"], 6, "{hours:?}");
    let foreign = send(
        &mut admin,
        get(&format!("/v1/api-keys/{b}/usage"), Some(&admin_a)),
    )
    .await;
    assert_eq!(
        (foreign.status.as_u16(), foreign.code().as_str()),
        (404, "not_found")
    );

    // Per account, and per deployment for what came before recognition.
    let q = keygate::activity::UsageQuery::new(keygate::activity::Granularity::Minute);
    let account_a = h.manager.account_usage(&"acct_a".into(), &q).await.unwrap();
    // Key A's 6, and the admin key's 3 calls above (the layer accepted each).
    assert_eq!(total(&account_a, Outcome::Accepted), 6 + 3);
    let deployment = h.manager.deployment_usage(&q).await.unwrap();
    assert_eq!(total(&deployment, Outcome::Unauthorized), 1);
    assert_eq!(total(&deployment, Outcome::InvalidApiKey), 1);
    assert_eq!(total(&deployment, Outcome::Accepted), 0);
    let key_b_buckets = minutes(&h.manager, "acct_b", &b, start, 2).await;
    assert_eq!(total(&key_b_buckets, Outcome::InvalidApiKey), 0);
}

#[tokio::test]
async fn a_bad_usage_query_is_a_400_with_its_own_code() {
    let h = Harness::new();
    let (_, admin) = h.key("acct_a", &["admin"]).await;
    let (id, _) = h.key("acct_a", &["read"]).await;
    let mut api = keygate::admin::router(h.manager.clone());
    let now = h.clock.now();
    let t = |d: i64| {
        let at = if d >= 0 {
            now + Duration::from_secs(d as u64)
        } else {
            now - Duration::from_secs((-d) as u64)
        };
        humantime::format_rfc3339_seconds(at).to_string()
    };
    let cases = [
        ("granularity=week".to_owned(), "unknown_granularity"),
        (
            format!("from={}&to={}", t(60), t(0)),
            "usage_range_reversed",
        ),
        (
            format!("from={}&to={}", t(-2000 * 60), t(0)),
            "usage_range_too_large",
        ),
        (
            format!(
                "granularity=minute&from={}&to={}",
                t(-49 * 3600),
                t(-48 * 3600)
            ),
            "usage_range_beyond_retention",
        ),
        ("from=yesterday".to_owned(), "invalid_request"),
        (
            "granularity=hour&granularity=day".to_owned(),
            "invalid_request",
        ),
    ];
    for (query, code) in cases {
        let answer = send(
            &mut api,
            get(&format!("/v1/api-keys/{id}/usage?{query}"), Some(&admin)),
        )
        .await;
        assert_eq!(
            (answer.status.as_u16(), answer.code()),
            (400, code.to_owned()),
            "{query}"
        );
    }
    let day = send(
        &mut api,
        get(
            &format!("/v1/api-keys/{id}/usage?granularity=day"),
            Some(&admin),
        ),
    )
    .await;
    assert_eq!(day.json()["data"].as_array().unwrap().len(), 30);
}
