//! Key lifecycle through the library API: create, get, list, update, revoke,
//! roll, the active-key cap, the escalation guard, account isolation, last-used
//! coalescing and cache invalidation. Time only moves through the manual clock.

mod account_isolation;
mod active_key_cap;
mod create;
mod deletion;
mod escalation;
mod import;
mod last_used;
mod listing;
mod metadata_patch;
mod revoke_roll_disable;
mod support;
mod update;
mod validation;
mod versioning;
