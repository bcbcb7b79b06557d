//! # keygate
//!
//! API-key authentication for any tower service — axum, hyper, tonic — in one
//! `.layer(...)`.
//!
//! ```no_run
//! use axum::{routing::get, Json, Router};
//! use keygate::{Environment, Identity, Keygate, MemoryStore, NewKey};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let (gate, manager) = Keygate::managed(MemoryStore::new())
//!     .environment(Environment::Test)
//!     .build();
//!
//! // The plaintext is returned exactly once.
//! let created = manager
//!     .create("acct_1".into(), NewKey::named("CI pipeline key").scopes(["admin"]))
//!     .await?;
//! println!("admin key: {}", created.key.expose_secret());
//!
//! async fn whoami(identity: Identity) -> Json<Identity> {
//!     Json(identity)
//! }
//! let app: Router = Router::new()
//!     .route("/v1/whoami", get(whoami))
//!     .layer(gate.layer());
//! # Ok(()) }
//! ```
//!
//! Keys look like `sk_live_` + 32 random base62 characters + a 6-character CRC32
//! checksum. Only their SHA-256 digest is stored. See [`layer`] for the request path and
//! the order of checks, and [`AuthError`] for every refusal. Other bearer credentials,
//! such as JWTs (feature `jwt`), can share the same route, refusals and limits through
//! the [credential hook](credential).
#![cfg_attr(docsrs, feature(doc_cfg))]
#![deny(unreachable_pub)]
#![warn(missing_docs)]
#![forbid(unsafe_code)]

#[cfg(feature = "admin")]
#[cfg_attr(docsrs, doc(cfg(feature = "admin")))]
pub mod admin;
mod cache;
pub mod check;
pub mod client_ip;
mod clock;
mod config;
pub mod credential;
mod error;
mod gate;
mod identity;
pub mod invalidation;
pub mod key;
pub mod layer;
pub mod manage;
pub mod ratelimit;
pub mod refusal;
pub mod scope;
pub mod store;
mod telemetry;
/// Reading credentials and rendering refusals.
pub mod verify {
    pub use crate::check::credentials::{parse_bearer, MAX_CREDENTIAL_LEN};
    pub use crate::refusal::{json_error, JsonRenderer, Refusal, RenderRefusal};
}

/// The builder's states: [`builder::ReadOnly`] from [`Keygate::builder`],
/// [`builder::Managed`] from [`Keygate::managed`].
pub mod builder {
    pub use crate::gate::{KeygateBuilder, Managed, ReadOnly};
}

pub use cache::CacheConfig;
pub use client_ip::{ForwardingHeader, IpAllowlist, PeerAddr, TrustedProxies};
pub use clock::{Clock, ManualClock};
pub use config::{BodyLength, ConfigError, KeygateConfig, PrefixConfig};
pub use error::AuthError;
pub use gate::{Keygate, KeygateBuilder, KeygateStats};
pub use identity::Identity;
#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub use identity::MissingIdentity;
pub use key::{ApiKey, Environment, KeyDigest, KeyFormat, KeyHasher, KeyPrefix};
pub use layer::KeygateLayer;
pub use manage::{
    ActingManager, CreatedKey, ImportedKey, KeyManager, KeyUpdate, KeyView, ListQuery, ManageError,
    ManagerConfig, NewKey,
};
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use ratelimit::{
    BreakerState, OutagePolicy, RedisLimiter, RedisLimiterConfig, RedisLimiterStats,
};
pub use ratelimit::{RateLimitConfig, RateLimitKey, ReportedLimit};
pub use scope::{Scope, ScopeImplications, ScopePolicy, ScopeRequirement, ScopeSet};
pub use store::{
    AccountId, KeyId, KeyRecord, KeyStore, KeyStoreWrite, MemoryStore, RateLimit, StoreError,
};
pub use verify::{JsonRenderer, Refusal, RenderRefusal};

/// The README's Rust examples, compiled as doc-tests so they cannot drift from the API.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
