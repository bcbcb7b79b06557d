//! The API log in PostgreSQL: the per-account bound across flushes, no secret in any
//! stored row, reads, search by hint and erasure.

use std::sync::Arc;

use keygate::activity::log::{ApiLogConfig, ApiLogQuery};
use keygate::clock::Clock;
use keygate::key::KeyHasher;
use keygate::{Keygate, NewKey};

use super::{all_events, assert_no_secret};
use crate::common::pg::{drop_schema, schema_name, store_on};
use crate::common::services::pg_admin;
use crate::common::{get, send, t0, Echo};

#[tokio::test]
async fn postgres_keeps_each_account_at_its_bound_stores_no_secret_and_erases() {
    let schema = schema_name("apilog");
    let store = Arc::new(store_on(&schema, "kgt_apilog").await);
    let (clock, _time) = Clock::manual(t0());
    let (gate, manager) = Keygate::managed(store.clone())
        .clock(clock)
        .api_log(
            ApiLogConfig::new(store.clone())
                .max_events_per_account(15)
                .max_events_per_account_per_minute(10_000)
                .accepted_sample_rate(1.0),
        )
        .build();
    let busy = manager
        .create("acct_busy".into(), NewKey::named("busy"))
        .await
        .unwrap();
    let calm = manager
        .create("acct_calm".into(), NewKey::named("calm"))
        .await
        .unwrap();
    let busy_key = busy.key.expose_secret().to_owned();
    let calm_key = calm.key.expose_secret().to_owned();
    let mut svc = tower::Layer::layer(&gate.layer(), Echo);
    for _ in 0..4 {
        let path = format!("/v1/{calm_key}/x?key={calm_key}");
        assert_eq!(
            send(&mut svc, get(&path, Some(&calm_key))).await.status,
            200
        );
    }
    manager
        .revoke(&"acct_busy".into(), &busy.view.id)
        .await
        .unwrap();
    let log = gate.api_log().unwrap();
    // Several flushes, so that the bound holds across batches, not only within one.
    for _ in 0..4 {
        for _ in 0..50 {
            let path = format!("/v1/{busy_key}");
            assert_eq!(
                send(&mut svc, get(&path, Some(&busy_key))).await.status,
                401
            );
        }
        log.flush().await;
    }
    assert_eq!(log.stats().written, 204);

    let admin = pg_admin().await;
    let counts = admin
        .query(
            &format!(
                "SELECT account_id, count(*) FROM \"{schema}\".api_events GROUP BY 1 ORDER BY 1"
            ),
            &[],
        )
        .await
        .unwrap();
    let counts: Vec<(String, i64)> = counts.iter().map(|r| (r.get(0), r.get(1))).collect();
    assert_eq!(
        counts,
        [("acct_busy".to_owned(), 15), ("acct_calm".to_owned(), 4)]
    );

    // Every stored row, as text and as bytes, holds no secret.
    let rows = admin
        .query(
            &format!("SELECT convert_to(t::text, 'UTF8') FROM \"{schema}\".api_events t"),
            &[],
        )
        .await
        .unwrap();
    let mut stored = Vec::new();
    for row in &rows {
        stored.extend_from_slice(row.get::<_, &[u8]>(0));
        stored.push(b'\n');
    }
    assert!(String::from_utf8_lossy(&stored).contains("[redacted]"));
    for key in [&busy_key, &calm_key] {
        let digest = KeyHasher::sha256().digest(key);
        assert_no_secret(&stored, key, digest.as_bytes());
    }

    // Reads: newest first, each once, through pages of four.
    let mut seen = Vec::new();
    let mut query = ApiLogQuery::default().limit(4);
    loop {
        let page = manager.api_logs(&"acct_busy".into(), &query).await.unwrap();
        seen.extend(page.data);
        match page.next_cursor {
            Some(c) => query = query.cursor(c),
            None => break,
        }
    }
    assert_eq!(seen.len(), 15);
    assert!(seen
        .windows(2)
        .all(|w| (w[0].time, w[0].seq) > (w[1].time, w[1].seq)));
    let accepted = manager
        .api_logs(
            &"acct_calm".into(),
            &ApiLogQuery::default().outcome("accepted"),
        )
        .await
        .unwrap();
    assert_eq!(accepted.data.len(), 4);
    assert!(accepted
        .data
        .iter()
        .all(|e| e.path == "/v1/[redacted]/x" && e.status == 200));

    // Operators find a key by its hint in PostgreSQL.
    let found = manager.find_keys_by_hint(&calm.view.start).await.unwrap();
    assert!(found.iter().any(|k| k.id == calm.view.id));

    // Erasure deletes one account's events only.
    let erased = manager
        .erase_account_events(&"acct_busy".into())
        .await
        .unwrap();
    assert_eq!(erased, 15);
    assert!(all_events(&manager, "acct_busy").await.is_empty());
    assert_eq!(all_events(&manager, "acct_calm").await.len(), 4);
    drop(gate);
    drop_schema(&schema).await;
}
