//! Memory: a create+revoke flood levels off; metadata is limited to 4 KiB of JSON.

use crate::common::*;
use crate::hardening::support::*;
use keygate::manage::ManagerConfig;
use keygate::NewKey;
use serde_json::{json, Value};
use std::time::Duration;

// ---------------------------------------------------------------------------------------
// Defect 4: memory per tenant.

#[tokio::test]
async fn memory_a_create_revoke_flood_levels_off() {
    let h = Harness::new();
    let account = acct("flood");
    let metadata: serde_json::Map<String, Value> = [("blob".to_owned(), json!("m".repeat(4000)))]
        .into_iter()
        .collect();
    let cycle = |h: &Harness, metadata: serde_json::Map<String, Value>| {
        let manager = h.manager.clone();
        let account = account.clone();
        async move {
            let created = manager
                .create(account.clone(), NewKey::named("flood").metadata(metadata))
                .await
                .unwrap();
            manager.revoke(&account, &created.view.id).await.unwrap();
        }
    };
    let held = |h: &Harness| h.store.inner.len();

    // At a standing clock (the review's 1,500 cycles in a burst, and more): the account
    // keeps its 1,000 most recently revoked keys.
    let mut burst = Vec::new();
    for i in 1..=5_000 {
        cycle(&h, metadata.clone()).await;
        if i % 1_000 == 0 || i == 1_500 {
            burst.push((i, held(&h)));
        }
    }
    println!("standing clock, (cycles, records held): {burst:?}");
    for &(i, n) in &burst {
        assert!(n <= 1_001, "{n} records after {i} cycles");
    }
    assert!(
        burst.last().unwrap().1 >= 1_000,
        "revoked keys are kept up to the bound"
    );

    // One cycle an hour: revoked keys go after 30 days (720 hours), before the bound.
    let h = Harness::new();
    let mut hourly = Vec::new();
    for i in 1..=3_000 {
        h.time.advance(Duration::from_secs(3600));
        cycle(&h, metadata.clone()).await;
        if i % 500 == 0 {
            hourly.push((i, held(&h)));
        }
    }
    println!("one cycle an hour, (cycles, records held): {hourly:?}");
    for &(i, n) in &hourly[1..] {
        assert!(
            (720..=722).contains(&n),
            "{n} records after {i} hourly cycles"
        );
    }

    // Letting keys expire instead of revoking them is bounded the same way.
    let h = Harness::new();
    for _ in 0..2_500 {
        let now = h.clock.now();
        h.manager
            .create(
                account.clone(),
                NewKey::named("short").expires_at(now + Duration::from_secs(1)),
            )
            .await
            .unwrap();
        h.time.advance(Duration::from_secs(2));
    }
    println!("2,500 keys left to expire: {} records held", held(&h));
    assert!(held(&h) <= 1_001);
}

#[tokio::test]
async fn memory_metadata_is_limited_to_4_kib_of_json() {
    let api = Api::new(Harness::new()).await;
    let (_, admin) = api.h.key("acct_1", &["admin"]).await;
    // {"k":"…"} is 8 bytes plus the value.
    let sized = |total: usize| json!({"k": "v".repeat(total - 8)});
    let a = api
        .post(
            "/v1/api-keys",
            &admin,
            json!({"name": "big", "metadata": sized(4097)}),
        )
        .await;
    assert_error_on(&a, 400, "invalid_request", "metadata");
    let a = api
        .post(
            "/v1/api-keys",
            &admin,
            json!({"name": "fits", "metadata": sized(4096)}),
        )
        .await;
    assert_eq!(a.status, 201, "{}", a.body);
    let id = a.json()["id"].as_str().unwrap().to_owned();
    let a = api
        .patch(&key_path(&id), &admin, json!({"metadata": sized(4097)}))
        .await;
    assert_error_on(&a, 400, "invalid_request", "metadata");

    // Configurable.
    let h = Harness::with(|b| b.manager_config(ManagerConfig::default().max_metadata_bytes(100)));
    let manager = h.manager.clone();
    let meta = |total: usize| match sized(total) {
        Value::Object(m) => m,
        _ => unreachable!(),
    };
    let err = manager
        .create(acct("a"), NewKey::named("k").metadata(meta(101)))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "invalid_request");
    manager
        .create(acct("a"), NewKey::named("k").metadata(meta(100)))
        .await
        .unwrap();
}
