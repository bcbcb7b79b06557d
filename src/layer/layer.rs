//! The tower [`Layer`]: a cheap, cloneable configuration.

use std::sync::Arc;

use tower_layer::Layer;

use super::service::KeygateService;
use super::settings::LayerSettings;
use crate::gate::Keygate;
use crate::refusal::{AnswerForm, LayerRenderer, RenderRefusal};
use crate::scope::policy::ScopePolicy;
use crate::scope::ScopeRequirement;

/// Requires a valid API key, and optionally scopes, on every request.
///
/// Made by [`Keygate::layer`]. Cloning is cheap: every clone shares one cache and one
/// set of rate limiters. See [the module docs](crate::layer) for the request path and
/// the order of checks. Layers of one [`Keygate`] nest: an inner layer on a request an
/// outer one already admitted applies only its own scope rules.
#[derive(Clone, Debug)]
#[must_use]
pub struct KeygateLayer {
    gate: Keygate,
    settings: Arc<LayerSettings>,
}

impl KeygateLayer {
    /// A layer of `gate` with no settings of its own: see [`Keygate::layer`].
    pub(crate) fn new(gate: Keygate) -> Self {
        Self {
            gate,
            settings: Arc::new(LayerSettings::default()),
        }
    }

    fn with_settings(mut self, f: impl FnOnce(&mut LayerSettings)) -> Self {
        f(Arc::make_mut(&mut self.settings));
        self
    }

    /// Also requires `requirement`: every requirement and policy added must hold. Use
    /// one layer per route with axum's `route_layer`:
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
        // Precompiled into bits of the deployment's scope table: one AND per request.
        let mask = self.gate.scope_implications().bits.compile(&requirement);
        self.with_settings(|s| s.scopes.require(requirement, mask))
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
        self.with_settings(|s| s.scopes.policies.push(policy))
    }

    /// What a request this layer admits costs in credits and quotas (see
    /// [`crate::metering`]); default 1. On an inner layer of the same gate (a route's
    /// `route_layer` under a router-wide layer), the inner cost wins: the difference is
    /// spent (or refunded) when the request reaches it. A cost of 0 spends nothing.
    ///
    /// ```
    /// use axum::{routing::post, Router};
    /// use keygate::{Keygate, MemoryStore};
    ///
    /// let gate = Keygate::builder(MemoryStore::new()).build();
    /// let app: Router = Router::new()
    ///     .route("/v1/render", post(|| async { "done" }).route_layer(gate.layer().cost(10)))
    ///     .layer(gate.layer());
    /// ```
    pub fn cost(self, units: u64) -> Self {
        self.with_settings(|s| s.scopes.cost = Some(units))
    }

    /// Lets requests without credentials through without an [`crate::Identity`].
    /// Requests with bad credentials are still refused.
    pub fn allow_anonymous(self) -> Self {
        self.with_settings(|s| s.anonymous = true)
    }

    /// Also lets every request under `prefix` through untouched, with no identity: for
    /// health checks or gRPC reflection, such as `"/grpc.reflection.v1.ServerReflection/"`.
    /// Matching is by whole path segments: `"/health"` exempts `/health` and
    /// `/health/live` but not `/healthz`.
    pub fn exempt(self, prefix: impl Into<String>) -> Self {
        let prefix = prefix.into();
        self.with_settings(|s| s.exempt.push(prefix))
    }

    /// Answers refusals in gRPC form (HTTP 200 with `grpc-status` 16, 7, 8 or 14), for
    /// a tonic server. Without it a refusal keeps its HTTP status whatever
    /// `content-type` the client sends, so a client can never turn a 401 into a 200.
    pub fn grpc(self) -> Self {
        self.with_settings(|s| s.answer.form = AnswerForm::Grpc)
    }

    /// Renders this layer's refusals with `renderer` instead of the core's
    /// ([`crate::KeygateBuilder::renderer`]): for routes whose API answers in another
    /// shape, such as a management API with its own envelope. keygate still adds
    /// `WWW-Authenticate`, `Retry-After` and the rate-limit headers, and gRPC answers
    /// stay gRPC.
    pub fn renderer(self, renderer: impl RenderRefusal) -> Self {
        let renderer = LayerRenderer(Arc::new(renderer));
        self.with_settings(|s| s.answer.renderer = Some(renderer))
    }

    /// The core this layer uses.
    pub fn keygate(&self) -> &Keygate {
        &self.gate
    }
}

impl<S> Layer<S> for KeygateLayer {
    type Service = KeygateService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        KeygateService::new(inner, self.gate.clone(), self.settings.clone())
    }
}
