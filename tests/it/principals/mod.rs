//! Verified credentials (JWTs) managing keys through the admin router are confined like
//! API keys: their expiry and environment bound what they mint, and the keys record them
//! as `external:<subject>`; and the actor fields the router records are the server's.

mod actors;
mod confinement;
mod support;
