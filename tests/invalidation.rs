//! Revocation across instances against the real servers: a key revoked through
//! instance A is refused by instance B (its own pool, cache and listener) within a
//! bounded wait, over Postgres LISTEN/NOTIFY and over Redis pub/sub, and changes made
//! while B's subscription was down are caught up after it reconnects.
#![cfg(all(feature = "postgres", feature = "redis"))]

#[path = "common/pg.rs"]
mod pg;
#[path = "common/services.rs"]
mod services;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use keygate::invalidation::{
    InvalidationChannel, InvalidationSink, Listener, ListenerStatus, PublishingStore, RedisChannel,
    Replay,
};
use keygate::store::{PgStore, PgStoreBuilder};
use keygate::{
    AccountId, AuthError, KeyDigest, KeyManager, KeyStoreWrite, Keygate, MemoryStore, NewKey,
};
use pg::*;
use services::*;
use tokio::time::{timeout, Instant};

/// Forwards to a [`Keygate`] and records `set_degraded` calls.
struct Recording {
    gate: Keygate,
    degraded: Mutex<Vec<bool>>,
}

impl Recording {
    fn new(gate: &Keygate) -> Arc<Self> {
        Arc::new(Self {
            gate: gate.clone(),
            degraded: Mutex::new(Vec::new()),
        })
    }
    fn degraded(&self) -> Vec<bool> {
        self.degraded.lock().unwrap().clone()
    }
}

impl InvalidationSink for Recording {
    fn invalidate_digest(&self, digest: &KeyDigest) {
        self.gate.invalidate_digest(digest);
    }
    fn invalidate_all(&self) {
        self.gate.invalidate_all();
    }
    fn set_degraded(&self, degraded: bool) {
        self.degraded.lock().unwrap().push(degraded);
    }
}

const BOUND: Duration = Duration::from_secs(5);

async fn within(listener: &Listener, status: ListenerStatus) {
    timeout(BOUND, listener.wait_for(status))
        .await
        .unwrap_or_else(|_| panic!("listener not {status:?} within {BOUND:?}"));
}

/// Waits until `gate` refuses `key` as revoked; returns how long after `started`.
async fn refused_within(gate: &Keygate, key: &str, started: Instant) -> Duration {
    let refused = eventually(BOUND, || async {
        matches!(gate.verify_key(key).await, Err(AuthError::RevokedKey))
    })
    .await;
    assert!(
        refused,
        "instance B still accepts the revoked key after {BOUND:?}"
    );
    started.elapsed()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn report(channel: &str, mut times: Vec<Duration>) {
    times.sort();
    eprintln!(
        "{channel}: revocation reached instance B in p50 {:?}, p99 {:?}, max {:?} ({} samples)",
        percentile(&times, 0.5),
        percentile(&times, 0.99),
        times.last().unwrap(),
        times.len()
    );
}

/// Instance `name`: a store with its own pool, a core and a manager over it.
async fn pg_instance(schema: &str, name: &str) -> (Arc<PgStore>, Keygate, KeyManager) {
    let store = Arc::new(store_on(schema, name).await);
    let gate = Keygate::builder_arc(store.clone()).build();
    let manager = KeyManager::new(gate.clone(), store.clone());
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
    for i in 0..20 {
        let created = manager_a
            .create(account.clone(), NewKey::named(format!("k{i}")))
            .await
            .unwrap();
        let key = created.key.expose_secret();
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
    let gate_b = Keygate::builder_arc(store_b.clone()).build();
    let sink = Recording::new(&gate_b);
    let listener = store_b.listen(sink.clone());
    within(&listener, ListenerStatus::Live).await;

    let account = AccountId::new("acct");
    let created = manager_a
        .create(account.clone(), NewKey::named("k"))
        .await
        .unwrap();
    let key = created.key.expose_secret();
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
    // Give a notification ample time to arrive, were one to be delivered.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        gate_b.verify_key(key).await.is_ok(),
        "the notification was lost: B still serves its cached copy"
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
    assert_eq!(stats.flushes, 0, "a replay, not a flush");
    drop(listener);
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

/// Instance A over a shared store, publishing on `channel`.
async fn redis_publisher(store: &Arc<MemoryStore>, channel: &str) -> KeyManager {
    let publish = RedisChannel::open(&redis_url(), channel).await.unwrap();
    let store = Arc::new(PublishingStore::new(store.clone(), Arc::new(publish)));
    KeyManager::new(Keygate::builder_arc(store.clone()).build(), store)
}

#[tokio::test]
async fn a_key_revoked_through_instance_a_is_refused_by_instance_b_over_redis() {
    let channel = unique("keygate:test");
    let shared = Arc::new(MemoryStore::new());
    let manager_a = redis_publisher(&shared, &channel).await;
    let gate_b = Keygate::builder_arc(shared.clone()).build();
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
    for i in 0..20 {
        let created = manager_a
            .create(account.clone(), NewKey::named(format!("k{i}")))
            .await
            .unwrap();
        let key = created.key.expose_secret();
        assert!(gate_b.verify_key(key).await.is_ok());
        // Measured from the call to revoke: the write, the commit and the delivery.
        let started = Instant::now();
        manager_a.revoke(&account, &created.view.id).await.unwrap();
        times.push(refused_within(&gate_b, key, started).await);
    }
    report("redis pub/sub", times);
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
    let gate_b = Keygate::builder_arc(shared.clone()).build();
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

    let account = AccountId::new("acct");
    let created = manager_a
        .create(account.clone(), NewKey::named("k"))
        .await
        .unwrap();
    let key = created.key.expose_secret();
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
    tokio::time::sleep(Duration::from_millis(200)).await;
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
    acl(&["DELUSER", &user])
        .query_async::<()>(&mut admin)
        .await
        .unwrap();
}
