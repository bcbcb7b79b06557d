//! Revocation across instances over Redis pub/sub, for any store: instance A writes
//! through a `PublishingStore`, instance B listens, and after B's subscriber is killed it
//! flushes its whole cache, since Redis keeps no history to replay.
#![cfg(feature = "redis")]

use std::sync::Arc;

use crate::common::propagation::*;
use crate::common::services::*;
use keygate::invalidation::{Listener, ListenerStatus, PublishingStore, RedisChannel};
use keygate::store::AccountId;
use keygate::{AuthError, KeyManager, Keygate, MemoryStore, NewKey};
use tokio::time::Instant;

/// Instance A over a shared store, publishing on `channel`.
async fn redis_publisher(store: &Arc<MemoryStore>, channel: &str) -> KeyManager {
    let publish = RedisChannel::open(&redis_url(), channel).await.unwrap();
    let store = Arc::new(PublishingStore::new(store.clone(), Arc::new(publish)));
    Keygate::managed(store.clone()).build().1
}

#[tokio::test]
async fn a_key_revoked_through_instance_a_is_refused_by_instance_b_over_redis() {
    let channel = unique("keygate:test");
    let shared = Arc::new(MemoryStore::new());
    let manager_a = redis_publisher(&shared, &channel).await;
    let gate_b = Keygate::builder(shared.clone()).build();
    let subscribe = RedisChannel::open(&redis_url(), channel.clone())
        .await
        .unwrap();
    let listener = Listener::spawn(
        Arc::new(subscribe),
        Arc::new(gate_b.clone()),
        Default::default(),
    );
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
        assert!(gate_b.verify_key(key).await.is_ok());
        // Measured from the call to revoke: the write, the commit and the delivery.
        let started = Instant::now();
        manager_a.revoke(&account, &created.view.id).await.unwrap();
        times.push(refused_within(&gate_b, key, started).await);
    }
    report("redis pub/sub", times);
}

#[tokio::test]
async fn a_key_deleted_through_instance_a_is_dropped_from_instance_b_s_cache() {
    let channel = unique("keygate:test");
    let shared = Arc::new(MemoryStore::new());
    let manager_a = redis_publisher(&shared, &channel).await;
    let gate_b = Keygate::builder(shared.clone()).build();
    let subscribe = RedisChannel::open(&redis_url(), channel.clone())
        .await
        .unwrap();
    let listener = Listener::spawn(
        Arc::new(subscribe),
        Arc::new(gate_b.clone()),
        Default::default(),
    );
    within(&listener, ListenerStatus::Live).await;
    let account = AccountId::new("acct");
    let created = manager_a
        .create(account.clone(), NewKey::named("k"))
        .await
        .unwrap();
    let key = created.key.expose_secret();
    applied(&listener, 1).await;
    // Cached by B.
    assert!(gate_b.verify_key(key).await.is_ok());
    assert!(gate_b.verify_key(key).await.is_ok());
    manager_a.delete(&account, &created.view.id).await.unwrap();
    // The delete publishes the key's one digest; once B applied it, B refuses.
    applied(&listener, 2).await;
    assert!(matches!(
        gate_b.verify_key(key).await,
        Err(AuthError::InvalidKey)
    ));
}

#[tokio::test]
async fn the_redis_listener_flushes_everything_after_its_connection_is_killed() {
    let channel = unique("keygate:test");
    let user = unique("kgt_user");
    let admin = redis::Client::open(redis_url()).unwrap();
    let mut admin = admin.get_multiplexed_async_connection().await.unwrap();
    let acl = |args: &[&str]| {
        let mut cmd = redis::cmd("ACL");
        for a in args {
            cmd.arg(*a);
        }
        cmd
    };
    acl(&["SETUSER", &user, "on", ">pw", "~*", "&*", "+@all"])
        .query_async::<()>(&mut admin)
        .await
        .unwrap();

    let shared = Arc::new(MemoryStore::new());
    let manager_a = redis_publisher(&shared, &channel).await;
    let gate_b = Keygate::builder(shared.clone()).build();
    let mut info = redis::Client::open(redis_url())
        .unwrap()
        .get_connection_info()
        .clone();
    info.redis.username = Some(user.clone());
    info.redis.password = Some("pw".into());
    let as_user = redis::Client::open(info).unwrap();
    let subscribe = RedisChannel::new(as_user, channel.clone()).await.unwrap();
    let sink = Recording::new(&gate_b);
    let listener = Listener::spawn(Arc::new(subscribe), sink.clone(), Default::default());
    within(&listener, ListenerStatus::Live).await;
    // A witness: instance C subscribes to the same channel throughout. Once it has heard
    // a message, Redis has delivered that message to every subscriber of the moment.
    let gate_c = Keygate::builder(shared.clone()).build();
    let witness = Listener::spawn(
        Arc::new(
            RedisChannel::open(&redis_url(), channel.clone())
                .await
                .unwrap(),
        ),
        Arc::new(gate_c),
        Default::default(),
    );
    within(&witness, ListenerStatus::Live).await;

    let account = AccountId::new("acct");
    let created = manager_a
        .create(account.clone(), NewKey::named("k"))
        .await
        .unwrap();
    let key = created.key.expose_secret();
    applied(&listener, 1).await;
    assert!(gate_b.verify_key(key).await.is_ok());

    // B's subscriber is killed and cannot log in again for now.
    acl(&["SETUSER", &user, "off"])
        .query_async::<()>(&mut admin)
        .await
        .unwrap();
    let killed: i64 = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("USER")
        .arg(&user)
        .query_async(&mut admin)
        .await
        .unwrap();
    assert!(killed >= 1);
    within(&listener, ListenerStatus::Degraded).await;
    manager_a.revoke(&account, &created.view.id).await.unwrap();
    // The synchronisation point: the witness has heard the revocation (after the
    // creation), so it was published while B was not subscribed.
    applied(&witness, 2).await;
    assert!(
        gate_b.verify_key(key).await.is_ok(),
        "the message was lost: B still serves its cached copy"
    );

    acl(&["SETUSER", &user, "on"])
        .query_async::<()>(&mut admin)
        .await
        .unwrap();
    within(&listener, ListenerStatus::Live).await;
    assert!(
        matches!(gate_b.verify_key(key).await, Err(AuthError::RevokedKey)),
        "Redis cannot replay: the whole cache was flushed on reconnect"
    );
    assert_eq!(sink.degraded(), [false, true, false]);
    assert_eq!(
        listener.stats().flushes,
        2,
        "on the first connect and on the reconnect"
    );
    drop(listener);
    drop(witness);
    acl(&["DELUSER", &user])
        .query_async::<()>(&mut admin)
        .await
        .unwrap();
}
