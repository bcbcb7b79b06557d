//! Two instances on one PostgreSQL count the same key; either reads the exact sum.

use std::sync::Arc;
use std::time::Duration;

use keygate::activity::{Granularity, Outcome, UsageQuery};
use keygate::clock::Clock;
use keygate::store::AccountId;
use keygate::{Keygate, NewKey};

use super::{minute_of, total};
use crate::common::pg::*;
use crate::common::services::pg_admin;
use crate::common::*;

#[tokio::test]
async fn two_instances_on_one_postgres_read_the_exact_sum_of_their_counts() {
    let schema = schema_name("usage_sum");
    let one = Arc::new(store_on(&schema, "usage_one").await);
    let two = Arc::new(store_on(&schema, "usage_two").await);
    let (clock, time) = Clock::manual(t0());
    let (gate_one, manager_one) = Keygate::managed(one.clone()).clock(clock.clone()).build();
    let (gate_two, manager_two) = Keygate::managed(two.clone()).clock(clock.clone()).build();
    let account = AccountId::from("acct_pg");
    let created = manager_one
        .create(account.clone(), NewKey::named("shared"))
        .await
        .unwrap();
    let (id, key) = (
        created.view.id.clone(),
        created.key.expose_secret().to_owned(),
    );

    let mut svc_one = tower::Layer::layer(&gate_one.layer(), Echo);
    let mut svc_two = tower::Layer::layer(&gate_two.layer(), Echo);
    for _ in 0..3 {
        assert_eq!(send(&mut svc_one, get("/", Some(&key))).await.status, 200);
    }
    for _ in 0..4 {
        assert_eq!(send(&mut svc_two, get("/", Some(&key))).await.status, 200);
    }
    // Each flushes its own share; both add to the same rows.
    gate_one.flush_usage().await.unwrap();
    gate_two.flush_usage().await.unwrap();
    time.advance(Duration::from_secs(60));
    assert_eq!(send(&mut svc_two, get("/", Some(&key))).await.status, 200);
    gate_two.flush_usage().await.unwrap();

    let m0 = minute_of(t0());
    let by_minute = UsageQuery::new(Granularity::Minute)
        .from(m0)
        .to(m0 + Duration::from_secs(120));
    for manager in [&manager_one, &manager_two] {
        let minutes = manager.usage(&account, &id, &by_minute).await.unwrap();
        assert_eq!(
            minutes
                .iter()
                .map(|b| b.get(Outcome::Accepted))
                .collect::<Vec<_>>(),
            [7, 1]
        );
        let day = manager
            .usage(&account, &id, &UsageQuery::new(Granularity::Day))
            .await
            .unwrap();
        assert_eq!(total(&day, Outcome::Accepted), 8);
        let acct = manager.account_usage(&account, &by_minute).await.unwrap();
        assert_eq!(total(&acct, Outcome::Accepted), 8);
    }
    // One row per subject, granularity, bucket and outcome, holding the sum.
    let n: i64 = pg_admin()
        .await
        .query_one(
            &format!(
                "SELECT n FROM \"{schema}\".usage_counts WHERE subject_kind = 'key' \
                 AND subject = $1 AND granularity = 'minute' AND start = $2 AND outcome = 'accepted'"
            ),
            &[&id.as_str(), &m0],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 7);

    // Erasure reaches every instance's counts.
    manager_two.erase_account_usage(&account).await.unwrap();
    let after = manager_one.usage(&account, &id, &by_minute).await.unwrap();
    assert_eq!(total(&after, Outcome::Accepted), 0);
    drop_schema(&schema).await;
}
