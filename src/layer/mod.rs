//! The tower layer: [`KeygateLayer`], its [`KeygateService`], the [`ResponseFuture`] and
//! the [`ResponseBody`].
//!
//! # The request path
//!
//! This module is tower glue only; the checks live in [`crate::check`], one step per
//! file, and [`crate::Keygate`] runs them in order. A request goes:
//!
//! 1. `layer/service.rs`: [`KeygateService::call`](tower_service::Service::call) lets
//!    exempt paths through, then asks the gate to start (`gate/request.rs`), which runs
//!    the steps that need no I/O: `check/credentials.rs`, `check/format.rs`, and the
//!    cache (`cache/`: the front, then moka, then "no such key"). A cached key goes on to
//!    the checks of step 3 at once, with no future state of its own. A request an outer
//!    layer of the same `Keygate` already admitted gets only this layer's scope rules.
//! 2. On a miss, `layer/future.rs` awaits the cache's one shared store lookup
//!    (`cache/lookup.rs`, with `check/lookup.rs` turning the record into an entry); a
//!    bearer that is not a keygate key awaits the credential verifier instead
//!    (`check/external.rs`).
//! 3. The gate admits or refuses: `check/status.rs`, `check/access.rs`, then
//!    `check/limit.rs`; a refusal is rendered and audited by `gate/refusal.rs`, and the
//!    answer leaves through `layer/future.rs` with the rate-limit headers and the
//!    [`ResponseBody`].
//!
//! # The order of checks
//!
//! A refused request reaches nothing after its refusal, so it consumes no quota. The
//! steps map onto the files of [`crate::check`]: 1 `credentials.rs`, 2 and 3
//! `format.rs`, 4 `lookup.rs`, 5 to 7 `status.rs`, 8 and 9 `access.rs`, 10 `limit.rs`,
//! 11 `usage.rs`.
//!
//!
//! 1. credentials present and well formed (`unauthorized`, `invalid_request`): one
//!    `Authorization: Bearer <key>` header, the scheme case-insensitive; none is 401
//!    with `WWW-Authenticate: Bearer realm="api"`, two, an over-long or a non-ASCII
//!    value 400;
//! 2. key format and checksum, with no I/O (`invalid_api_key`; a token outside RFC 6750's
//!    `b64token` is `invalid_request`);
//! 3. the environment named by the key's prefix, with no I/O (`wrong_environment`);
//! 4. cache, then store lookup (`invalid_api_key`, `store_unavailable`);
//! 5. constant-time digest comparison (`invalid_api_key`);
//! 6. revoked, disabled, expired, or the previous secret of a rolled key after its grace
//!    period (`revoked_api_key`, `disabled_api_key`, `expired_api_key`);
//! 7. the stored key's environment (`wrong_environment`);
//! 8. IP allowlist (`ip_not_allowed`);
//! 9. the layer's scope requirements and policies, all of which must hold, then
//!    read-only keys on unsafe methods (`insufficient_scope`);
//! 10. rate limit: the key's bucket, then its account's (`rate_limited`);
//! 11. usage: the key's quotas per period, then its credits, then its account's, all or
//!     nothing (`usage_exceeded`; see [`crate::metering`]).
//!
//! With a [credential verifier](crate::credential), a bearer that fails step 2 and
//! starts with none of keygate's prefixes goes to the verifier instead of being refused
//! (`invalid_token`, `verifier_unavailable`); the principal it returns then takes steps
//! 8 to 10 like a key (it has no credits or quotas). The state machine in `layer/future.rs` has one more state for it,
//! which a keygate key never enters.
//!
//! Every response to a request that passed step 10 carries the rate-limit headers (a
//! `usage_exceeded` refusal of step 11 too), and
//! so do the refusals of steps 8 and 9 (403): those report the key's bucket without
//! taking from it. Refusals before the key is recognised carry none.
//!
//! # The answer
//!
//! An accepted request reaches the inner service with an [`Identity`](crate::Identity) in
//! its extensions (and, with the `axum` feature, as an extractor).
//!
//! Every refusal is `{"error":{"code":"…","message":"…"}}` with the status of its
//! [`AuthError`](crate::AuthError) code. [`KeygateLayer::renderer`] swaps the body, for
//! example for an envelope of `success`/`result`/`errors`; `WWW-Authenticate`,
//! `Retry-After` and the rate-limit headers are still added. A layer made with
//! [`KeygateLayer::grpc`] answers every refusal with HTTP 200, `grpc-status` and
//! `grpc-message`; any other layer keeps the HTTP status whatever `content-type` the
//! client sends, so a client cannot hide a refusal from status-based monitoring.
//!
//! # tonic, hyper and logs
//!
//! - tonic: `Server::builder().layer(gate.layer().grpc().exempt("/grpc.reflection.v1.ServerReflection/"))`;
//!   the key is read from the `authorization` metadata (`examples/grpc.rs`).
//! - hyper: insert [`PeerAddr`](crate::client_ip::PeerAddr)`(remote)` into each request for the
//!   client IP (`examples/hyper.rs`).
//! - Every decision is a `tracing` event on target `keygate::audit` with `outcome`,
//!   `key_id`, `account_id` and `client_ip` (accepted keys at DEBUG, refusals at INFO).
//!   Put keygate inside tower-http's `TraceLayer` and the events nest in its request
//!   span. No key, key body or digest is ever logged.

mod body;
mod future;
#[allow(clippy::module_inception)]
mod layer;
mod service;
mod settings;

pub use body::ResponseBody;
pub use future::ResponseFuture;
pub use layer::KeygateLayer;
pub use service::KeygateService;
