//! keygate's core: reading the key, checking it, caching it and answering.
//!
//! Most tests go through the tower stack with `send`; the `over_tcp_*` tests go over a
//! real loopback connection with a real HTTP client.

mod answers;
mod axum_extractors;
mod credentials;
mod environments;
mod formats;
mod health;
mod identity_for_test;
mod layering;
mod lookup_and_cache;
mod neutral_keys;
mod options;
mod over_tcp;
mod secrets;
mod service_contract;
mod support;
