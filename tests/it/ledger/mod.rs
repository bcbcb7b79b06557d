//! The balance of record of credits and quotas in PostgreSQL, the leases instances take
//! from it, and credits shared by several instances (separate processes). Each test
//! works in a schema of its own.
#![cfg(feature = "postgres")]

mod cluster;
mod deleted_keys;
mod instance;
mod lease_wait;
mod leases;
mod low_credits;
mod pg_ledger;
mod pg_races;
mod quota_report;
mod shared_plans;
