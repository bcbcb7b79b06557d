//! Revocation across instances over Postgres LISTEN/NOTIFY against a real server: a key
//! revoked through instance A is refused by instance B (its own pool, cache and
//! listener) within a bounded wait, and changes made while B's subscription was down
//! (connection terminated, or hung without closing) are replayed after it reconnects.
#![cfg(feature = "postgres")]

use crate::common::proxy;
use std::sync::Arc;
use std::time::Duration;

use crate::common::pg::*;
use crate::common::propagation::*;
use crate::common::services::*;
use keygate::invalidation::{InvalidationChannel, ListenerStatus, Replay};
use keygate::store::AccountId;
use keygate::store::{PgStore, PgStoreBuilder};
use keygate::{AuthError, KeyManager, KeyStoreWrite, Keygate, NewKey};
use tokio::time::Instant;

/// Instance `name`: a store with its own pool, a core and a manager over it.
async fn pg_instance(schema: &str, name: &str) -> (Arc<PgStore>, Keygate, KeyManager) {
    let store = Arc::new(store_on(schema, name).await);
    let (gate, manager) = Keygate::managed(store.clone()).build();
    (store, gate, manager)
}

#[tokio::test]
async fn a_key_revoked_through_instance_a_is_refused_by_instance_b_over_postgres() {
    let schema = schema_name("inv");
    let (_, _, manager_a) = pg_instance(&schema, "inv_a").await;
    let (store_b, gate_b, _) = pg_instance(&schema, "inv_b").await;
    let listener = store_b.listen(Arc::new(gate_b.clone()));
    within(&listener, ListenerStatus::Live).await;
    let account = AccountId::new("acct");
    let mut times = Vec::new();
    for i in 0..20u64 {
        let created = manager_a
            .create(account.clone(), NewKey::named(format!("k{i}")))
            .await
            .unwrap();
        let key = created.key.expose_secret();
        applied(&listener, 2 * i + 1).await;
        assert!(
            gate_b.verify_key(key).await.is_ok(),
            "B caches the key (for 30 s)"
        );
        // Measured from the call to revoke: the write, the commit and the delivery.
        let started = Instant::now();
        manager_a.revoke(&account, &created.view.id).await.unwrap();
        times.push(refused_within(&gate_b, key, started).await);
    }
    assert!(listener.stats().invalidated >= 20);
    report("postgres LISTEN/NOTIFY", times);
    drop(listener);
    drop_schema(&schema).await;
}

#[tokio::test]
async fn the_postgres_listener_replays_changes_made_while_it_was_disconnected() {
    let schema = schema_name("replay");
    let (_, _, manager_a) = pg_instance(&schema, "replay_a").await;
    let role = unique("kgt_role");
    create_role(&role).await;
    let app = unique("replay_b");
    let store_b = Arc::new(
        PgStoreBuilder::from_config(pg_config_as(&role, &app))
            .schema(schema.clone())
            .build()
            .unwrap(),
    );
    let gate_b = Keygate::builder(store_b.clone()).build();
    let sink = Recording::new(&gate_b);
    let listener = store_b.listen(sink.clone());
    within(&listener, ListenerStatus::Live).await;
    // A witness: instance C listens on the same schema throughout. Once it has heard a
    // change, PostgreSQL has delivered that change to every session listening then.
    let (store_c, gate_c, _) = pg_instance(&schema, "replay_c").await;
    let witness = store_c.listen(Arc::new(gate_c));
    within(&witness, ListenerStatus::Live).await;

    let account = AccountId::new("acct");
    let created = manager_a
        .create(account.clone(), NewKey::named("k"))
        .await
        .unwrap();
    let key = created.key.expose_secret();
    applied(&listener, 1).await;
    applied(&witness, 1).await;
    assert!(gate_b.verify_key(key).await.is_ok());

    // B's listener loses its connection and cannot log in again for now.
    set_login(&role, false).await;
    assert_eq!(terminate(&format!("{app}.listener")).await, 1);
    within(&listener, ListenerStatus::Degraded).await;
    assert_eq!(
        sink.degraded(),
        [false, true],
        "B knows it is not hearing changes"
    );

    manager_a.revoke(&account, &created.view.id).await.unwrap();
    // The synchronisation point: the witness has heard the revocation, so its
    // notification went out, to listeners B was not among.
    applied(&witness, 2).await;
    let served = gate_b.verify_key(key).await;
    assert!(
        served.is_ok(),
        "the notification was lost: B still serves its cached copy ({:?}, {:?}, {:?})",
        served.err(),
        sink.degraded(),
        listener.stats()
    );

    set_login(&role, true).await;
    within(&listener, ListenerStatus::Live).await;
    assert!(
        matches!(gate_b.verify_key(key).await, Err(AuthError::RevokedKey)),
        "the missed revocation was replayed from the change log on reconnect"
    );
    assert_eq!(sink.degraded(), [false, true, false]);
    let stats = listener.stats();
    assert!(stats.replayed >= 1 && stats.deaths >= 1, "{stats:?}");
    assert_eq!(
        stats.flushes, 1,
        "the first connect's only: a replay, not a flush"
    );
    drop(listener);
    drop(witness);
    drop(gate_b);
    drop(store_b);
    drop_role(&role).await;
    drop_schema(&schema).await;
}

#[tokio::test]
async fn the_change_log_replays_by_position_and_says_so_when_trimmed() {
    let schema = schema_name("trim");
    let (store, _, manager) = pg_instance(&schema, "trim").await;
    let channel = store.channel();
    let Replay::Changes {
        position: start,
        digests,
    } = channel.replay(None).await.unwrap()
    else {
        panic!("a fresh log has a position");
    };
    assert!(digests.is_empty());
    let account = AccountId::new("acct");
    let created = manager
        .create(account.clone(), NewKey::named("k"))
        .await
        .unwrap();
    manager.revoke(&account, &created.view.id).await.unwrap();
    let digest = store.get(&created.view.id).await.unwrap().unwrap().digest;
    let Replay::Changes { digests, position } = channel.replay(Some(start)).await.unwrap() else {
        panic!("nothing was trimmed yet");
    };
    assert_eq!(digests, [digest, digest], "the create and the revoke");
    assert_eq!(position, start + 2);

    assert_eq!(store.trim_changes(Duration::ZERO).await.unwrap(), 2);
    assert_eq!(
        channel.replay(Some(start)).await.unwrap(),
        Replay::Unknown,
        "entries after this position are gone: the listener must flush"
    );
    assert_eq!(
        channel.replay(Some(position)).await.unwrap(),
        Replay::Changes {
            digests: vec![],
            position
        },
        "nothing after the newest position was lost"
    );
    drop_schema(&schema).await;
}

#[tokio::test]
async fn a_hung_postgres_connection_is_found_dead_by_the_heartbeat_and_caught_up() {
    let schema = schema_name("hung");
    let (_, _, manager_a) = pg_instance(&schema, "hung_a").await;
    // Instance B reaches the database only through a proxy that can hang.
    let config = pg_config();
    let upstream = match (&config.get_hosts()[0], config.get_ports()[0]) {
        (tokio_postgres::config::Host::Tcp(host), port) => {
            tokio::net::lookup_host((host.as_str(), port))
                .await
                .unwrap()
                .next()
                .unwrap()
        }
        _ => panic!("the test database must be reached over TCP"),
    };
    let proxy = proxy::Proxy::start(upstream).await;
    // `host` and `port` add to a config's lists: start from an empty one.
    let mut via_proxy = tokio_postgres::Config::new();
    via_proxy
        .host("127.0.0.1")
        .port(proxy.addr.port())
        .user(config.get_user().unwrap_or("postgres"))
        .dbname(config.get_dbname().unwrap_or("postgres"))
        .application_name("hung_b");
    if let Some(password) = config.get_password() {
        via_proxy.password(password);
    }
    let store_b = Arc::new(
        PgStoreBuilder::from_config(via_proxy)
            .schema(schema.clone())
            .build()
            .unwrap(),
    );
    let gate_b = Keygate::builder(store_b.clone()).build();
    let sink = Recording::new(&gate_b);
    let listener = store_b.listen(sink.clone());
    within(&listener, ListenerStatus::Live).await;
    let account = AccountId::new("acct");
    let created = manager_a
        .create(account.clone(), NewKey::named("k"))
        .await
        .unwrap();
    let key = created.key.expose_secret();
    applied(&listener, 1).await;
    assert!(gate_b.verify_key(key).await.is_ok());

    // The connection hangs without closing: only the heartbeat can notice.
    let hung_at = Instant::now();
    proxy.freeze();
    within(&listener, ListenerStatus::Degraded).await;
    let noticed = hung_at.elapsed();
    eprintln!("postgres listener: hung connection noticed after {noticed:?}");
    assert_eq!(sink.degraded(), [false, true]);

    manager_a.revoke(&account, &created.view.id).await.unwrap();
    proxy.thaw();
    within(&listener, ListenerStatus::Live).await;
    assert!(
        matches!(gate_b.verify_key(key).await, Err(AuthError::RevokedKey)),
        "the revocation made while the connection hung was replayed"
    );
    drop(listener);
    drop_schema(&schema).await;
}
