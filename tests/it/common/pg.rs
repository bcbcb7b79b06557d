//! PostgreSQL helpers for tests: schemas, roles, backends, and records.
#![allow(dead_code, unreachable_pub)]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use keygate::client_ip::IpAllowlist;
use keygate::key::KeyDigest;
use keygate::scope::ScopeSet;
use keygate::store::{AccountId, KeyId, KeyRecord, RateLimit};
use keygate::store::{PgStore, PgStoreBuilder};

use super::services::{pg_admin, pg_config, unique};

/// A fresh schema name, and a guard-less drop for the end of the test.
pub fn schema_name(prefix: &str) -> String {
    unique(&format!("kgt_{prefix}"))
}

/// Drops a test's schema and everything in it.
pub async fn drop_schema(schema: &str) {
    pg_admin()
        .await
        .batch_execute(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
        .await
        .expect("drop test schema");
}

/// Connection settings that log in as `user` with `application_name` `app`.
pub fn pg_config_as(user: &str, app: &str) -> tokio_postgres::Config {
    let mut config = pg_config();
    config.user(user).application_name(app);
    config
}

/// A new superuser role that can log in, for a test to turn off and on.
pub async fn create_role(name: &str) {
    pg_admin()
        .await
        .batch_execute(&format!("CREATE ROLE \"{name}\" LOGIN SUPERUSER"))
        .await
        .expect("create test role");
}

/// Allows (`true`) or refuses (`false`) new logins of role `name`.
pub async fn set_login(name: &str, login: bool) {
    let what = if login { "LOGIN" } else { "NOLOGIN" };
    pg_admin()
        .await
        .batch_execute(&format!("ALTER ROLE \"{name}\" {what}"))
        .await
        .expect("alter test role");
}

/// Terminates every backend whose `application_name` is `app`; returns how many.
pub async fn terminate(app: &str) -> i64 {
    pg_admin()
        .await
        .query_one(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
             WHERE application_name = $1",
            &[&app],
        )
        .await
        .expect("terminate backends")
        .get(0)
}

/// Drops a role made by [`create_role`], once its connections are gone.
pub async fn drop_role(name: &str) {
    let admin = pg_admin().await;
    admin
        .query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1",
            &[&name],
        )
        .await
        .expect("terminate role's backends");
    admin
        .batch_execute(&format!("DROP ROLE IF EXISTS \"{name}\""))
        .await
        .expect("drop test role");
}

/// A migrated store on schema `schema`, whose connections are named `app`.
pub async fn store_on(schema: &str, app: &str) -> PgStore {
    let mut config = pg_config();
    config.application_name(app);
    let store = PgStoreBuilder::from_config(config)
        .schema(schema)
        .build()
        .unwrap();
    store.migrate().await.unwrap();
    store
}

pub fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

pub fn record(id: &str, account: &str, digest_byte: u8) -> KeyRecord {
    let mut metadata = serde_json::Map::new();
    metadata.insert(
        "team".into(),
        serde_json::json!({"name": "payments", "n": 3}),
    );
    let mut r = KeyRecord::new(
        KeyId::new(id),
        AccountId::new(account),
        KeyDigest::from_bytes([digest_byte; 32]),
        at(1_700_000_000),
    );
    r.name = "CI key".into();
    r.prefix = "sk_live_".into();
    r.start = "sk_live_AbCd".into();
    r.environment = Some(keygate::Environment::Live);
    r.scopes = ScopeSet::parse(["read", "write"]).unwrap();
    r.ips = IpAllowlist::parse(["10.0.0.0/8", "2001:db8::1"]).unwrap();
    r.expires_at = Some(at(2_000_000_000));
    r.rate_limit = Some(RateLimit::new(5, 10));
    r.metadata = metadata;
    r.updated_at = at(1_700_000_001);
    r
}
