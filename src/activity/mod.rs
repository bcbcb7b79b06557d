//! Key activity: how every key is used, for an API's own customers.
//!
//! - [`log`]: the API log, recent events per request (time, key, account, outcome,
//!   method, path, client IP, status) for investigation, stored with a retention and a
//!   bound per account, read newest first through the [`crate::KeyManager`] and the
//!   management API.

pub mod log;
