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

pub mod activity;
#[cfg(feature = "admin")]
#[cfg_attr(docsrs, doc(cfg(feature = "admin")))]
pub mod admin;
mod cache;
pub mod check;
pub mod client_ip;
pub mod clock;
pub mod config;
#[cfg(feature = "console")]
#[cfg_attr(docsrs, doc(cfg(feature = "console")))]
pub mod console;
pub mod credential;
mod error;
#[cfg(any(feature = "jwks", feature = "scanning", feature = "webhooks"))]
mod fetch;
pub mod gate;
pub mod identity;
pub mod invalidation;
pub mod key;
pub mod layer;
pub mod leaks;
pub mod manage;
pub mod metering;
pub mod ratelimit;
pub mod refusal;
pub mod scope;
pub mod store;
mod telemetry;
#[cfg(feature = "webhooks")]
#[cfg_attr(docsrs, doc(cfg(feature = "webhooks")))]
pub mod webhooks;

#[cfg(test)]
mod documented_codes;

// The names most users need; everything else is in the module that owns it.
pub use error::AuthError;
pub use gate::{Keygate, KeygateBuilder};
pub use identity::Identity;
pub use key::Environment;
pub use layer::KeygateLayer;
pub use manage::{CreatedKey, KeyManager, KeyView, ManageError, NewKey};
pub use scope::{ScopePolicy, ScopeRequirement};
pub use store::{KeyStore, KeyStoreWrite, MemoryStore, StoreError};

/// The README's Rust examples, compiled as doc-tests so they cannot drift from the API.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
