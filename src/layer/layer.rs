//! The tower [`Layer`]: a cheap, cloneable configuration.

use std::sync::Arc;

use tower_layer::Layer;

use crate::keygate::{Keygate, Rules};
use crate::layer::service::KeygateService;
use crate::scope::policy::ScopePolicy;
use crate::scope::ScopeRequirement;

/// Requires a valid API key, and optionally scopes, on every request.
///
/// Made by [`Keygate::layer`]. Cloning is cheap: every clone shares one cache and one
/// set of rate limiters.
///
/// The checks run in this order, and a refused request reaches nothing after its refusal,
/// so it consumes no rate-limit quota:
///
/// 1. credentials present and well formed (`unauthorized`, `invalid_request`);
/// 2. key format and checksum, with no I/O (`invalid_api_key`);
/// 3. cache, then store lookup (`invalid_api_key`, `store_unavailable`);
/// 4. constant-time digest comparison (`invalid_api_key`);
/// 5. revoked, disabled, expired (`revoked_api_key`, `disabled_api_key`, `expired_api_key`);
/// 6. environment (`wrong_environment`);
/// 7. IP allowlist (`ip_not_allowed`);
/// 8. the route's scopes, then read-only keys on unsafe methods (`insufficient_scope`);
/// 9. rate limit (`rate_limited`).
#[derive(Clone, Debug)]
pub struct KeygateLayer {
    gate: Keygate,
    rules: Arc<Rules>,
}

impl KeygateLayer {
    pub(crate) fn new(gate: Keygate) -> Self {
        Self {
            gate,
            rules: Arc::new(Rules::default()),
        }
    }

    fn with_rules(mut self, f: impl FnOnce(&mut Rules)) -> Self {
        f(Arc::make_mut(&mut self.rules));
        self
    }

    /// Also requires `requirement`. Use one layer per route with axum's `route_layer`:
    ///
    /// ```
    /// use axum::{routing::post, Router};
    /// use keygate::{Keygate, MemoryStore, ScopeRequirement};
    ///
    /// let gate = Keygate::builder(MemoryStore::new()).build();
    /// let app: Router = Router::new().route(
    ///     "/v1/keys",
    ///     post(|| async { "created" })
    ///         .route_layer(gate.layer().require(ScopeRequirement::scope("admin"))),
    /// );
    /// ```
    pub fn require(self, requirement: ScopeRequirement) -> Self {
        self.with_rules(|r| r.requirement = Some(requirement))
    }

    /// Also requires at least one of `scopes`. Panics on an invalid scope name.
    pub fn require_any<I, S>(self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.require(ScopeRequirement::any_of(scopes))
    }

    /// Also requires every one of `scopes`. Panics on an invalid scope name.
    pub fn require_all<I, S>(self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.require(ScopeRequirement::all_of(scopes))
    }

    /// Also applies a method-and-path table of requirements.
    pub fn policy(self, policy: ScopePolicy) -> Self {
        self.with_rules(|r| r.policy = Some(policy))
    }

    /// Lets requests without credentials through without an [`crate::Identity`].
    /// Requests with bad credentials are still refused.
    pub fn allow_anonymous(self) -> Self {
        self.with_rules(|r| r.anonymous = true)
    }

    /// Lets every request under `prefix` through untouched, with no identity: for health
    /// checks or gRPC reflection, such as `"/grpc.reflection.v1.ServerReflection/"`.
    /// Matching is by whole path segments: `"/health"` exempts `/health` and
    /// `/health/live` but not `/healthz`.
    pub fn exempt(self, prefix: impl Into<String>) -> Self {
        let prefix = prefix.into();
        self.with_rules(|r| r.exempt.push(prefix))
    }

    /// The core this layer uses.
    pub fn keygate(&self) -> &Keygate {
        &self.gate
    }
}

impl<S> Layer<S> for KeygateLayer {
    type Service = KeygateService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        KeygateService::new(inner, self.gate.clone(), self.rules.clone())
    }
}
