//! The tower layer: [`KeygateLayer`], its [`KeygateService`], the [`ResponseFuture`] and
//! the [`ResponseBody`].
//!
//! # The request path
//!
//! A request goes through three files, in this order:
//!
//! 1. `layer/service.rs`: [`KeygateService::call`](tower_service::Service::call) skips
//!    exempt paths, then asks the verifier to start.
//! 2. `verify/mod.rs`: `Verifier::start` does everything without I/O: credentials,
//!    format and checksum, the environment the prefix names, and the cache (the front,
//!    then moka, then "no such key"). A request an outer layer of the same `Keygate`
//!    already admitted skips all of that and gets only this layer's scope rules.
//! 3. `cache/lookup.rs`: on a miss, one shared store lookup; then `layer/future.rs`
//!    finishes the request with `Verifier::admit`.
//!
//! # The order of checks
//!
//! A refused request reaches nothing after its refusal, so it consumes no quota:
//!
//! 1. credentials present and well formed (`unauthorized`, `invalid_request`);
//! 2. key format and checksum, with no I/O (`invalid_api_key`; a token outside RFC 6750's
//!    `b64token` is `invalid_request`);
//! 3. the environment named by the key's prefix, with no I/O (`wrong_environment`);
//! 4. cache, then store lookup (`invalid_api_key`, `store_unavailable`);
//! 5. constant-time digest comparison (`invalid_api_key`);
//! 6. revoked, disabled, expired, rolled (`revoked_api_key`, `disabled_api_key`,
//!    `expired_api_key`, `rolled_api_key`);
//! 7. the stored key's environment (`wrong_environment`);
//! 8. IP allowlist (`ip_not_allowed`);
//! 9. the layer's scope requirements and policies, all of which must hold, then
//!    read-only keys on unsafe methods (`insufficient_scope`);
//! 10. rate limit: the key's bucket, then its account's (`rate_limited`).
//!
//! With a [credential verifier](crate::credential), a bearer that fails step 2 and
//! starts with none of keygate's prefixes goes to the verifier instead of being refused
//! (`invalid_token`, `verifier_unavailable`); the principal it returns then takes steps
//! 8 to 10 like a key. The state machine in `layer/future.rs` has one more state for it,
//! which a keygate key never enters.
//!
//! Every response to a request that passed step 10 carries the rate-limit headers, and
//! so do the refusals of steps 8 and 9 (403): those report the key's bucket without
//! taking from it. Refusals before the key is recognised carry none.

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
