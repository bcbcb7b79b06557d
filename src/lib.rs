//! # keygate
//!
//! API-key authentication for any tower service — axum, hyper, tonic — in one
//! `.layer(...)`.
//!
//! ```no_run
//! use axum::{routing::get, Json, Router};
//! use keygate::{Environment, Identity, KeyManager, Keygate, MemoryStore, NewKey};
//! use std::sync::Arc;
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let store = Arc::new(MemoryStore::new());
//! let gate = Keygate::builder_arc(store.clone())
//!     .environment(Environment::Test)
//!     .build();
//! let manager = KeyManager::new(gate.clone(), store);
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
//! checksum. Only their SHA-256 digest is stored. See [`KeygateLayer`] for the order of
//! checks and [`AuthError`] for every refusal.
#![deny(unreachable_pub)]
#![warn(missing_docs)]
#![forbid(unsafe_code)]

#[cfg(feature = "admin")]
pub mod admin;
mod client_ip;
mod clock;
mod error;
mod identity;
pub mod invalidation;
mod key;
mod keygate;
mod layer;
mod manage;
mod ratelimit;
mod scope;
pub mod store;
mod verify;

pub use client_ip::{
    ClientIpResolver, InvalidIpEntry, IpAllowlist, PeerAddr, PeerIp, TrustedProxies,
};
pub use clock::{Clock, ManualClock};
pub use error::AuthError;
pub use identity::Identity;
#[cfg(feature = "axum")]
pub use identity::MissingIdentity;
pub use key::digest::{DigestHasher, KeyDigest, KeyHasher, PassThroughHasher};
pub use key::{
    ApiKey, Environment, InvalidFormat, InvalidPrefix, KeyFormat, KeyPrefix, MalformedKey,
    ParsedKey, CHECKSUM_LEN, MAX_PREFIX_LEN, SECRET_LEN,
};
pub use keygate::{CacheConfig, Keygate, KeygateBuilder, KeygateStats};
pub use layer::KeygateLayer;
pub use layer::KeygateService;
pub use layer::ResponseBody;
pub use layer::ResponseFuture;
pub use manage::{
    rfc3339, ActingManager, CreatedKey, KeyManager, KeyUpdate, KeyView, ManageError, ManagerConfig,
    NewKey, Page, Revoked, DEFAULT_PAGE_SIZE, MAX_NAME_LEN, MAX_PAGE_SIZE,
};
pub use ratelimit::{RateLimitConfig, RateLimitKey, RateLimitStatus};
pub use scope::policy::{PolicyDecision, ScopePolicy, Unmatched};
pub use scope::{
    GrantedScopes, InvalidScope, Scope, ScopeImplications, ScopeRequirement, ScopeSet,
    MAX_SCOPE_LEN,
};
pub use store::record::{AccountId, GraceDigest, KeyId, KeyRecord, RateLimit};
pub use store::{KeyStore, KeyStoreWrite, MemoryStore, StoreError};
pub use verify::credentials::{parse_bearer, MAX_CREDENTIAL_LEN};
pub use verify::render::{json_error, JsonRenderer, Rejection, RenderRejection};

/// The README's Rust examples, compiled as doc-tests so they cannot drift from the API.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
