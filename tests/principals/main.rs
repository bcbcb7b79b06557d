//! Verified credentials (JWTs) managing keys through the admin router are confined like
//! API keys: their expiry and environment bound what they mint, and the keys record them
//! as `external:<subject>`; and the actor fields the router records are the server's.

#[path = "../common/mod.rs"]
mod common;
#[path = "../jwt_support/mod.rs"]
mod jwt_support;

mod actors;
mod confinement;
mod support;
