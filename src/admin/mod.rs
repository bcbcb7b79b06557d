//! A ready-made management HTTP API (feature `admin`), protected by keygate itself.
//!
//! | Request | Scope | Answer |
//! |---|---|---|
//! | `POST /v1/api-keys` | `admin` | 201 with the key and `"key": "<plaintext>"`, once |
//! | `GET /v1/api-keys?limit=&cursor=&status=` | `admin` or `read-only` | `{"data":[...],"next_cursor":...}`; active keys unless `status` is `revoked` or `all` |
//! | `GET /v1/api-keys/{id}` | `admin` or `read-only` | 200, or 404 `not_found` |
//! | `PATCH /v1/api-keys/{id}` | `admin` | 200, or 404 |
//! | `DELETE /v1/api-keys/{id}` | `admin` | 204, also when already revoked; 404 if it never existed |
//! | `POST /v1/api-keys/{id}/roll` | `admin` | 200 with the new plaintext, once; body `{"grace_seconds": N}` optional |
//! | `GET /v1/api-keys/{id}/usage?from=&to=&granularity=` | `admin` or `read-only` | `{"data":[{"start":"<RFC 3339>","outcomes":{"accepted":N,...}},...]}` (see [`crate::activity`]); 400 for a bad range |
//!
//! Every route acts for the calling key through [`crate::manage::ActingManager`]: it sees only its
//! own account's keys of its own environment (others answer 404 `not_found`), and never
//! makes or touches a key less restricted than itself (403 `insufficient_scope` for
//! scopes and environments, 403 `widening_refused` for IP allowlists, expiry and rate
//! limits). A key it creates without `ips`, `expires_at` or `rate_limit` inherits the
//! caller's own. A verified credential (a JWT) is confined the same way by its
//! principal's expiry and environment; one naming no environment, on a deployment
//! serving several, is refused every action with 403 `environment_required` (see
//! [`crate::manage::ManagerConfig::environment_neutral_principals`]).
//!
//! With [`KeyFields::record_actors`], who created and last changed each key is the
//! server's record: a body writing either field is 400 `read_only_field`.
//!
//! `expires_at` is any RFC 3339 time with an offset, and is shown back in UTC. Names are
//! 1 to 50 characters, not only whitespace or invisible characters, with no control or
//! bidirectional-formatting characters. Metadata is at most
//! [`crate::manage::ManagerConfig::max_metadata_bytes`] (4 KiB) of JSON.
//!
//! Every refusal, from the keygate layer or a handler, is
//! `{"error":{"code":"...","message":"..."}}` with `Content-Type: application/json`; a body
//! over [`MAX_BODY_BYTES`] answers 413 `body_too_large`, another method on a route 405
//! `method_not_allowed` with `Allow`. [`openapi`] describes all of it, generated from the
//! handlers' own types; the demo server serves it at `GET /openapi.json`, and CI fuzzes
//! the API against it with schemathesis (`scripts/schemathesis.sh`).
//!
//! # Fitting it to your API
//!
//! [`router`] is [`builder`] with its defaults. The builder changes, without a line of
//! handler code:
//!
//! | Part | Builder call | Default |
//! |---|---|---|
//! | where it lives | [`RouterBuilder::base_path`] | `/v1/api-keys` |
//! | absolute `links.next` | [`RouterBuilder::public_base_url`] | relative links |
//! | which keys may take each action | [`RouterBuilder::access`], [`RouterBuilder::any_key`] | the table above |
//! | field names, shown fields, constants, who changed a key | [`RouterBuilder::fields`] with [`KeyFields`] | keygate's names, every field |
//! | the plaintext's name | `KeyFields::rename("key", "value")` | `key` |
//! | the body of every answer, refusals included | [`RouterBuilder::envelope`] with an [`Envelope`] | [`JsonEnvelope`] |
//! | paging | [`RouterBuilder::pagination`]: [`Pagination::cursor`] (`limit`, `cursor`) or [`Pagination::offset`] (`limit`, `page`) | cursor, 25 a page |
//! | what `DELETE` does | [`RouterBuilder::delete`]: [`DeleteMode::Revoke`] (idempotent) or [`DeleteMode::Delete`] | revoke |
//! | largest body | [`RouterBuilder::max_body_bytes`] | 64 KiB |
//!
//! Whatever the configuration, every route acts for the calling key as above, and bad
//! input (malformed JSON, unknown or hidden fields, wrong types, bad paging parameters,
//! huge bodies) is a clear refusal through the envelope, naming the field by the API's
//! name. With an envelope set, the keygate layer's refusals on these routes (401, 403,
//! 429, 503) are rendered by it too ([`crate::KeygateLayer::renderer`]); without one they
//! use the core's renderer. Your own routes beside the router answer the layer's refusals
//! in the same envelope with [`EnvelopeRefusals`]. [`openapi`] describes the default
//! router only.
//!
//! An API under `/v1/account/api-keys`, where any key of the account manages keys and
//! only three fields are shown:
//!
//! ```
//! use keygate::admin::{self, KeyFields};
//! use keygate::{Environment, Keygate, MemoryStore};
//!
//! let (_gate, manager) = Keygate::managed(MemoryStore::new())
//!     .environment(Environment::Live)
//!     .build();
//! let app: axum::Router = admin::builder(manager)
//!     .base_path("/v1/account/api-keys")
//!     .any_key()
//!     .fields(KeyFields::default().only(["id", "name", "created_at"]))
//!     .build();
//! ```
//!
//! The crate's examples reproduce two existing key-management APIs this way, one of them
//! with its own field names and an envelope of `success`/`result`/`links`/`errors`.
//!
//! # Building blocks
//!
//! A route the builder cannot express is a plain axum handler over the same parts: the
//! caller's [`crate::Identity`] (an extractor), the body and path as axum extracts them
//! (a failed extraction answered as [`AdminError::invalid`]),
//! [`KeyFields::parse_create`] / [`KeyFields::parse_update`] or [`parse_json`] for the body, [`crate::KeyManager::acting_as`] for the change,
//! [`KeyFields::render`] for the key, and [`AdminError::render`] with your [`Envelope`]
//! for every failure, so it answers exactly as the router does.

use axum::Router;
use utoipa::OpenApi as _;

use crate::manage::KeyManager;

mod body;
mod builder;
mod envelope;
mod error;
mod fields;
mod handlers;
mod openapi;
mod pagination;
mod refusals;
mod settings;
mod usage;

pub use body::parse_json;
pub use builder::RouterBuilder;
pub use envelope::{
    json_response, Envelope, EnvelopeRefusals, ErrorReply, IntoReplyResponse, JsonEnvelope,
    NextPage, Reply,
};
pub use error::AdminError;
pub use fields::KeyFields;
pub use pagination::{Pagination, MAX_OFFSET};
pub use settings::{Access, Action, DeleteMode};

/// Largest accepted request body, by default.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// Longest roll grace period: 30 days.
pub const MAX_GRACE_SECONDS: u64 = 30 * 24 * 3600;

/// The management API as an axum router, ready to `merge` or `nest`, in the default
/// configuration ([`RouterBuilder::new`]): the table above.
///
/// Every route carries its own keygate layer from `manager`'s [`crate::Keygate`], with
/// the scope the table above names; mount it without another keygate layer in front.
pub fn router(manager: KeyManager) -> Router {
    RouterBuilder::new(manager).build()
}

/// A configurable management API: see [`RouterBuilder`].
pub fn builder(manager: KeyManager) -> RouterBuilder {
    RouterBuilder::new(manager)
}

/// The OpenAPI 3.1 document of [`router`]: every path, body, status code and error code,
/// and the bearer security scheme. It is generated from the handlers and the types they
/// serialize, so it follows them.
///
/// ```
/// let doc = keygate::admin::openapi();
/// assert!(doc.paths.paths.contains_key("/v1/api-keys/{id}/roll"));
/// let json = doc.to_json().unwrap();
/// assert!(json.starts_with(r#"{"openapi":"3.1.0""#));
/// ```
pub fn openapi() -> utoipa::openapi::OpenApi {
    openapi::ApiDoc::openapi()
}

/// [`openapi`] for `manager`'s deployment: a new key's `prefix` is listed as one of the
/// prefixes the deployment accepts, and its `environment` as the deployment's own (when
/// it is bound to one), so that a client (or a fuzzer) following the document sends only
/// what this deployment accepts. Serve this one when the document describes a running
/// service.
///
/// ```
/// use keygate::{Environment, Keygate, MemoryStore};
///
/// let (_gate, manager) = Keygate::managed(MemoryStore::new())
///     .environment(Environment::Live)
///     .build();
/// let doc = keygate::admin::openapi_for(&manager).to_json().unwrap();
/// assert!(doc.contains(r#""enum":["live",null]"#));
/// ```
pub fn openapi_for(manager: &KeyManager) -> utoipa::openapi::OpenApi {
    openapi::for_deployment(manager.keygate())
}
