//! Key lifecycle through the library API: create, get, list, update, revoke,
//! roll, the active-key cap, the escalation guard, account isolation, last-used
//! coalescing and cache invalidation. Time only moves through the manual clock.

#[path = "../common/mod.rs"]
mod common;

mod account_isolation;
mod active_key_cap;
mod create;
mod escalation;
mod last_used;
mod listing;
mod revoke_roll_disable;
mod support;
mod update;
mod validation;
