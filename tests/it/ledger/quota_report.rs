//! What two instances sharing PostgreSQL's ledger report of one quota: each its own
//! knowledge (the ledger's balance at its last reservation plus its cell), off the true
//! remaining by at most the other instance's lease.

use std::sync::Arc;

use crate::common::pg::*;
use crate::common::{get, send, Echo};
use keygate::metering::{Quota, QuotaPeriod};
use keygate::ratelimit::{QuotaHeaders, RateLimitConfig};
use keygate::{Keygate, NewKey};

const LEASE: u64 = 10;

#[tokio::test]
async fn each_instance_reports_what_it_knows_within_the_other_instances_lease() {
    let schema = schema_name("quota_report");
    let a_store = Arc::new(store_on(&schema, "quota_report_a").await);
    let b_store = Arc::new(store_on(&schema, "quota_report_b").await);
    let limits = RateLimitConfig::default().quota_headers(Some(QuotaHeaders::x_quota()));
    let (a, manager) = Keygate::managed(a_store)
        .rate_limits(limits.clone())
        .usage_lease(LEASE)
        .build();
    let b = Keygate::builder(b_store)
        .rate_limits(limits)
        .usage_lease(LEASE)
        .build();
    let created = manager
        .create(
            "acct_1".into(),
            NewKey::named("k").quota(Quota::new(100, QuotaPeriod::Day)),
        )
        .await
        .unwrap();
    let key = created.key.expose_secret().to_owned();
    let remaining = |gate: &Keygate| {
        let (gate, key) = (gate.clone(), key.clone());
        async move {
            let mut svc = tower::Layer::layer(&gate.layer(), Echo);
            let answer = send(&mut svc, get("/", Some(&key))).await;
            assert_eq!(answer.status, 200);
            answer
                .header("x-quota-remaining")
                .unwrap()
                .parse::<u64>()
                .unwrap()
        }
    };
    // A leases 10 (the ledger keeps 90) and spends 1: 90 + 9.
    assert_eq!(remaining(&a).await, 99);
    // B leases 10 (the ledger keeps 80) and spends 1: 80 + 9, while 98 remain in truth
    // (A's 9 are not in the ledger).
    assert_eq!(remaining(&b).await, 89);
    // A knows the ledger at 90 still: 90 + 8, while 97 remain.
    assert_eq!(remaining(&a).await, 98);
    for (reported, truth) in [(99, 99), (89, 98), (98, 97)] {
        assert!(u64::abs_diff(reported, truth) <= LEASE);
    }
    a.return_leases().await;
    b.return_leases().await;
    drop_schema(&schema).await;
}
