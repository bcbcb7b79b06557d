//! A PostgreSQL restart, on a private server this test stops and starts: two instances
//! keep running, lookups that need the database fail with 503 while it is down, and
//! afterwards lookups, writes and cross-instance revocation work again without
//! restarting anything. The private server needs `initdb` and `pg_ctl` on this machine
//! (they come with the PostgreSQL server package); the test fails saying so otherwise.
#![cfg(feature = "postgres")]

use std::sync::Arc;
use std::time::Duration;

use crate::common::propagation::*;
use crate::common::services::*;
use keygate::invalidation::ListenerStatus;
use keygate::store::AccountId;
use keygate::store::PgStoreBuilder;
use keygate::{AuthError, KeyManager, Keygate, NewKey};
use tokio::time::Instant;

fn instance(url: &str, name: &str) -> (Arc<keygate::store::PgStore>, Keygate, KeyManager) {
    let mut config: tokio_postgres::Config = url.parse().unwrap();
    config.application_name(name);
    let store = Arc::new(
        PgStoreBuilder::from_config(config)
            .timeout(Duration::from_millis(500))
            .build()
            .unwrap(),
    );
    let (gate, manager) = Keygate::managed(store.clone()).build();
    (store, gate, manager)
}

#[tokio::test]
async fn two_instances_survive_a_postgres_restart() {
    let server = tokio::task::spawn_blocking(PrivatePostgres::new)
        .await
        .unwrap();
    let (store_a, _, manager_a) = instance(&server.url, "restart_a");
    store_a.migrate().await.unwrap();
    let (store_b, gate_b, _) = instance(&server.url, "restart_b");
    let sink = Recording::new(&gate_b);
    let listener = store_b.listen(sink.clone());
    within(&listener, ListenerStatus::Live).await;

    let account = AccountId::new("acct");
    let cached = manager_a
        .create(account.clone(), NewKey::named("cached"))
        .await
        .unwrap();
    let other = manager_a
        .create(account.clone(), NewKey::named("not cached"))
        .await
        .unwrap();
    let (cached_key, other_key) = (cached.key.expose_secret(), other.key.expose_secret());
    assert!(gate_b.verify_key(cached_key).await.is_ok());

    let server = Arc::new(server);
    let stopping = server.clone();
    tokio::task::spawn_blocking(move || stopping.stop())
        .await
        .unwrap();
    within(&listener, ListenerStatus::Degraded).await;
    assert!(
        matches!(
            gate_b.verify_key(other_key).await,
            Err(AuthError::StoreUnavailable)
        ),
        "a key that is not cached gets 503 while the database is down, never 200"
    );
    assert!(
        gate_b.verify_key(cached_key).await.is_ok(),
        "a cached key still works"
    );

    let starting = server.clone();
    tokio::task::spawn_blocking(move || starting.start())
        .await
        .unwrap();
    within(&listener, ListenerStatus::Live).await;
    let back = eventually(BOUND, || async {
        gate_b.verify_key(other_key).await.is_ok()
    })
    .await;
    assert!(back, "lookups work again without restarting the instance");

    // Writes on A work again (its pool replaces the connections the restart broke), and
    // the revocation reaches B.
    let revoked = eventually(BOUND, || async {
        manager_a.revoke(&account, &cached.view.id).await.is_ok()
    })
    .await;
    assert!(revoked, "instance A can write again");
    let delay = refused_within(&gate_b, cached_key, Instant::now()).await;
    eprintln!("after a restart, revocation reached instance B {delay:?} after revoke returned");
    assert_eq!(sink.degraded(), [false, true, false]);
}
