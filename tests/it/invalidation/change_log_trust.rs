//! The change log, not the notification, decides what a Postgres listener replays, on a
//! real server: a notification sent by a role with no privileges at all, claiming a
//! position far ahead of the log, cannot hide a revocation made while the listener was
//! disconnected, and notifications that keygate did not write are counted and change
//! nothing.
#![cfg(feature = "postgres")]

use crate::common::pg::*;

use std::sync::Arc;

use crate::common::propagation::*;
use crate::common::services::*;
use keygate::invalidation::{Listener, ListenerStatus};
use keygate::store::AccountId;
use keygate::store::{PgStore, PgStoreBuilder};
use keygate::{AuthError, KeyManager, Keygate, NewKey};

/// A role that may log in and nothing else: no schema, table or superuser rights.
struct PlainRole {
    name: String,
    client: tokio_postgres::Client,
}

impl PlainRole {
    async fn connect() -> Self {
        let name = unique("kgt_plain");
        pg_admin()
            .await
            .batch_execute(&format!("CREATE ROLE \"{name}\" LOGIN NOSUPERUSER"))
            .await
            .expect("create a plain role");
        let (client, connection) = pg_config_as(&name, &unique("plain"))
            .connect(tokio_postgres::NoTls)
            .await
            .expect("connect as the plain role");
        tokio::spawn(connection);
        Self { name, client }
    }

    /// `pg_notify(channel, payload)`, which needs no privilege.
    async fn notify(&self, channel: &str, payload: &str) {
        self.client
            .execute("SELECT pg_notify($1, $2)", &[&channel, &payload])
            .await
            .expect("any role may NOTIFY");
    }

    async fn drop_role(self) {
        drop(self.client);
        drop_role(&self.name).await;
    }
}

/// Instance A manages keys; instance B (its own role, pool, cache and listener) serves
/// them. B's role can be kept from logging in, to hold its listener disconnected.
struct Pair {
    schema: String,
    manager_a: KeyManager,
    role_b: String,
    app_b: String,
    store_b: Arc<PgStore>,
    gate_b: Keygate,
    listener: Listener,
}

impl Pair {
    async fn start(name: &str) -> Self {
        let schema = schema_name(name);
        let store_a = Arc::new(store_on(&schema, &unique(&format!("{name}_a"))).await);
        let (_, manager_a) = Keygate::managed(store_a).build();
        let role_b = unique("kgt_role");
        create_role(&role_b).await;
        let app_b = unique(&format!("{name}_b"));
        let store_b = Arc::new(
            PgStoreBuilder::from_config(pg_config_as(&role_b, &app_b))
                .schema(schema.clone())
                .build()
                .unwrap(),
        );
        let gate_b = Keygate::builder(store_b.clone()).build();
        let listener = store_b.listen(Arc::new(gate_b.clone()));
        within(&listener, ListenerStatus::Live).await;
        Self {
            schema,
            manager_a,
            role_b,
            app_b,
            store_b,
            gate_b,
            listener,
        }
    }

    fn channel(&self) -> String {
        format!("{}.changes", self.schema)
    }

    async fn finish(self) {
        drop(self.listener);
        drop(self.gate_b);
        drop(self.store_b);
        drop_role(&self.role_b).await;
        drop_schema(&self.schema).await;
    }
}

#[tokio::test]
async fn a_notified_position_ahead_of_the_change_log_cannot_hide_a_missed_revocation() {
    let p = Pair::start("forged").await;
    let account = AccountId::new("acct");
    let created = p
        .manager_a
        .create(account.clone(), NewKey::named("k"))
        .await
        .unwrap();
    let key = created.key.expose_secret();
    applied(&p.listener, 1).await;
    assert!(p.gate_b.verify_key(key).await.is_ok(), "B caches the key");

    // A role without any privilege claims a change log position far ahead of the log.
    let plain = PlainRole::connect().await;
    plain.notify(&p.channel(), "9000000000000000000:").await;
    // Notifications arrive in commit order: once B has applied this real change, it
    // has handled the forged one too.
    p.manager_a
        .create(account.clone(), NewKey::named("marker"))
        .await
        .unwrap();
    applied(&p.listener, 2).await;

    // B's listener loses its connection and cannot log in again for now; the key is
    // revoked meanwhile, so B never hears of it by notification.
    set_login(&p.role_b, false).await;
    assert_eq!(terminate(&format!("{}.listener", p.app_b)).await, 1);
    within(&p.listener, ListenerStatus::Degraded).await;
    p.manager_a
        .revoke(&account, &created.view.id)
        .await
        .unwrap();
    set_login(&p.role_b, true).await;
    within(&p.listener, ListenerStatus::Live).await;

    let served = p.gate_b.verify_key(key).await;
    assert!(
        matches!(served, Err(AuthError::RevokedKey)),
        "the replay read the log from the position B verified itself, so the revocation \
         was found ({:?}, {:?})",
        served.map(|i| i.key_id().clone()),
        p.listener.stats()
    );
    assert!(p.listener.stats().replayed >= 1);
    plain.drop_role().await;
    p.finish().await;
}

#[tokio::test]
async fn malformed_notifications_are_counted_and_change_nothing() {
    let p = Pair::start("malformed").await;
    let account = AccountId::new("acct");
    let created = p
        .manager_a
        .create(account.clone(), NewKey::named("k"))
        .await
        .unwrap();
    let key = created.key.expose_secret();
    applied(&p.listener, 1).await;
    assert!(p.gate_b.verify_key(key).await.is_ok(), "B caches the key");
    let lookups = p.gate_b.stats().store_lookups;

    let plain = PlainRole::connect().await;
    let payloads = ["garbage", "x:", "-1:", "12:not-hex", "12:*,zz", ""];
    for payload in payloads {
        plain.notify(&p.channel(), payload).await;
    }
    p.manager_a
        .create(account.clone(), NewKey::named("marker"))
        .await
        .unwrap();
    applied(&p.listener, 2).await;

    let stats = p.listener.stats();
    assert_eq!(stats.malformed, payloads.len() as u64, "{stats:?}");
    assert_eq!(stats.flushes, 1, "the first connect's only: {stats:?}");
    assert_eq!(stats.invalidated, 2, "the two creations only: {stats:?}");
    assert!(p.gate_b.verify_key(key).await.is_ok());
    assert_eq!(
        p.gate_b.stats().store_lookups,
        lookups,
        "the key is still served from B's cache"
    );
    assert_eq!(p.listener.status(), ListenerStatus::Live);
    plain.drop_role().await;
    p.finish().await;
}
