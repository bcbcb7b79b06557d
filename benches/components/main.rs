//! Where the nanoseconds of one request go: each step of the check on its own.
//!
//! ```text
//! cargo bench --bench components
//! ```
//!
//! Groups:
//! - `key`: format, prefix and CRC32 checksum check ([`KeyFormat::parse`]);
//! - `hash`: SHA-256 and peppered HMAC-SHA-256 of a key ([`KeyHasher::digest`]);
//! - `header`: finding the one `Authorization` header and parsing `Bearer <token>`;
//! - `cache`: a moka hit configured as keygate's cache (same key, value, hasher and
//!   capacity), and [`Keygate::verify_key`] on a cached key (parse + hash + cache + status);
//! - `scope`: [`ScopeRequirement::is_met_by`] on scopes expanded by [`ScopeImplications`];
//! - `ip`: [`IpAllowlist::allows`];
//! - `limiter`: the rate-limit response headers (the limiter itself, one
//!   compare-and-swap on the key's own cell, is in `layer/full` against `layer/no_limiter`);
//! - `extensions`: inserting one `Arc` into a request's extensions, the cost of attaching
//!   the identity;
//! - `layer`: the whole hot path with one feature at a time switched off, so that the
//!   difference to `layer/full` is that feature's share.

mod layer;
mod setup;
mod steps;

use criterion::{criterion_group, criterion_main};
use layer::layer_variants;
use steps::{
    cache_lookup, extensions, hashing, header_parsing, ip_check, key_parsing, limiter_check,
    scope_check,
};

criterion_group!(
    benches,
    key_parsing,
    hashing,
    header_parsing,
    cache_lookup,
    scope_check,
    ip_check,
    limiter_check,
    extensions,
    layer_variants
);
criterion_main!(benches);
