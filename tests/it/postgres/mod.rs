//! `PgStore` against a real PostgreSQL (feature `postgres`): records, migrations,
//! concurrency, lifecycle through a `KeyManager`, and a server restart. Each test works
//! in a schema of its own.

mod cap_disabled;
mod concurrency;
mod lifecycle;
mod restart;
mod store;
mod usage;
