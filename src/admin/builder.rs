//! [`RouterBuilder`]: the management API fitted to the user's API: paths, scopes per
//! action, field names, envelope, pagination and what `DELETE` does.

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::routing::{self, MethodRouter};
use axum::Router;

use super::envelope::{Envelope, EnvelopeRefusals, JsonEnvelope};
use super::fields::KeyFields;
use super::handlers::{create, list, not_allowed, remove, roll, show, update};
use super::pagination::Pagination;
use super::settings::{Access, Action, AdminApi, DeleteMode};
use super::MAX_BODY_BYTES;
use crate::layer::KeygateLayer;
use crate::manage::KeyManager;

/// Builds the management API's axum router: see [the module docs](super).
///
/// ```
/// use keygate::admin::{self, Access, Action, Pagination};
/// use keygate::{Keygate, MemoryStore};
///
/// let (_gate, manager) = Keygate::managed(MemoryStore::new()).build();
/// let app: axum::Router = admin::builder(manager)
///     .base_path("/v1/account/api-keys")
///     .any_key()
///     .access(Action::Roll, Access::any_of(["admin"]))
///     .pagination(Pagination::offset().default_limit(20))
///     .build();
/// ```
#[must_use = "a builder does nothing until `build` is called"]
pub struct RouterBuilder {
    manager: KeyManager,
    base_path: String,
    public_base_url: Option<String>,
    access: [Access; 7],
    fields: KeyFields,
    envelope: Option<Arc<dyn Envelope>>,
    pagination: Pagination,
    delete: DeleteMode,
    max_body: usize,
}

impl std::fmt::Debug for RouterBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RouterBuilder")
            .field("base_path", &self.base_path)
            .field("public_base_url", &self.public_base_url)
            .field("access", &self.access)
            .field("fields", &self.fields)
            .field("pagination", &self.pagination)
            .field("delete", &self.delete)
            .finish_non_exhaustive()
    }
}

impl RouterBuilder {
    /// The default configuration, that of [`super::router`]: base path `/v1/api-keys`;
    /// `admin` or `read-only` to list and get, `admin` for the rest; keygate's field
    /// names; [`JsonEnvelope`]; cursor pagination; `DELETE` revokes; bodies up to
    /// [`MAX_BODY_BYTES`].
    pub fn new(manager: KeyManager) -> Self {
        let reader = Access::any_of(["admin", "read-only"]);
        let admin = Access::any_of(["admin"]);
        Self {
            manager,
            base_path: "/v1/api-keys".to_owned(),
            public_base_url: None,
            access: [
                reader.clone(),
                reader.clone(),
                admin.clone(),
                admin.clone(),
                admin.clone(),
                admin,
                reader,
            ],
            fields: KeyFields::default(),
            envelope: None,
            pagination: Pagination::default(),
            delete: DeleteMode::default(),
            max_body: MAX_BODY_BYTES,
        }
    }

    /// The collection's path, such as `/v2/keys`; a key is at `{base}/{id}`. Panics
    /// unless it starts with `/`, does not end with one, and has no `{` or `}`.
    pub fn base_path(mut self, path: impl Into<String>) -> Self {
        let path = path.into();
        assert!(
            path.starts_with('/') && !path.ends_with('/') && !path.contains(['{', '}']),
            "a base path starts with '/', does not end with '/' and has no '{{' or '}}': {path:?}"
        );
        self.base_path = path;
        self
    }

    /// Makes the links to next pages ([`super::NextPage::url`], a `links.next`)
    /// absolute: `url` followed by the base path, such as
    /// `https://api.example.com/v1/api-keys?limit=25&cursor=…`. Default: relative links
    /// (the base path and query only).
    ///
    /// Panics unless `url` is an absolute `http` or `https` URL with a host, without a
    /// query, a fragment, user information, whitespace or a trailing `/`
    /// (`https://api.example.com`, `https://example.com/api`).
    ///
    /// ```
    /// use keygate::{Keygate, MemoryStore};
    ///
    /// let (_gate, manager) = Keygate::managed(MemoryStore::new()).build();
    /// let app: axum::Router = keygate::admin::builder(manager)
    ///     .public_base_url("https://api.example.com")
    ///     .build();
    /// ```
    pub fn public_base_url(mut self, url: impl Into<String>) -> Self {
        let url = url.into();
        let rest = url
            .strip_prefix("https://")
            .or_else(|| url.strip_prefix("http://"));
        let host = rest.map(|r| r.split('/').next().unwrap_or(""));
        let valid = rest.is_some_and(|r| {
            !r.is_empty()
                && !r.ends_with('/')
                && !r.contains(['?', '#', '@', '{', '}'])
                && !r.chars().any(|c| c.is_whitespace() || c.is_control())
        }) && host.is_some_and(|h| !h.is_empty());
        assert!(
            valid,
            "a public base URL is an absolute http(s) URL with a host, without a query, \
             fragment, user information or trailing '/': {url:?}"
        );
        self.public_base_url = Some(url);
        self
    }

    /// Which keys may take `action`.
    pub fn access(mut self, action: Action, access: Access) -> Self {
        self.access[action.index()] = access;
        self
    }

    /// Any authenticated key of the account may take every served action ("any key of
    /// the account manages keys"). Actions turned [`Access::Off`] stay off.
    pub fn any_key(mut self) -> Self {
        for access in &mut self.access {
            if *access != Access::Off {
                *access = Access::AnyKey;
            }
        }
        self
    }

    /// The fields of keys and bodies, and their names. Default: keygate's.
    pub fn fields(mut self, fields: KeyFields) -> Self {
        self.fields = fields;
        self
    }

    /// Renders every answer, including the keygate layer's refusals on these routes.
    /// Default: [`JsonEnvelope`], with the layer's refusals rendered by the core's
    /// renderer ([`crate::KeygateBuilder::renderer`]).
    pub fn envelope(mut self, envelope: impl Envelope) -> Self {
        self.envelope = Some(Arc::new(envelope));
        self
    }

    /// How lists are paged. Default: [`Pagination::cursor`].
    pub fn pagination(mut self, pagination: Pagination) -> Self {
        self.pagination = pagination;
        self
    }

    /// What `DELETE` does. Default: [`DeleteMode::Revoke`].
    pub fn delete(mut self, mode: DeleteMode) -> Self {
        self.delete = mode;
        self
    }

    /// Largest request body, in bytes; longer ones answer 413 `body_too_large`.
    /// Default: [`MAX_BODY_BYTES`].
    pub fn max_body_bytes(mut self, bytes: usize) -> Self {
        self.max_body = bytes;
        self
    }

    /// The router, ready to `merge` or `nest`. Every route carries its own keygate
    /// layer from the manager's [`crate::Keygate`]; mount it without another keygate
    /// layer in front.
    pub fn build(self) -> Router {
        let gate = self.manager.keygate().clone();
        let refusals = self.envelope.clone();
        let layer = |action: Action| -> Option<KeygateLayer> {
            let mut layer = gate.layer();
            if let Some(envelope) = &refusals {
                layer = layer.renderer(EnvelopeRefusals(envelope.clone()));
            }
            match &self.access[action.index()] {
                Access::Off => None,
                Access::AnyKey => Some(layer),
                Access::Scopes(requirement) => Some(layer.require(requirement.clone())),
            }
        };
        let base = self.base_path.clone();
        let api = Arc::new(AdminApi {
            manager: self.manager.clone(),
            links_base: format!(
                "{}{}",
                self.public_base_url.as_deref().unwrap_or(""),
                self.base_path
            ),
            fields: self.fields.clone(),
            envelope: self
                .envelope
                .clone()
                .unwrap_or_else(|| Arc::new(JsonEnvelope)),
            pagination: self.pagination.clone(),
            delete: self.delete,
            max_body: self.max_body,
        });
        let served = Action::ALL.map(|action| layer(action).map(|l| (action, l)));
        let mut routes = [
            (base.clone(), MethodSet::default()),
            (format!("{base}/{{id}}"), MethodSet::default()),
            (format!("{base}/{{id}}/roll"), MethodSet::default()),
            (format!("{base}/{{id}}/usage"), MethodSet::default()),
        ];
        for (action, layer) in served.into_iter().flatten() {
            let (at, method, route): (usize, &str, MethodRouter<Arc<AdminApi>>) = match action {
                Action::List => (0, "GET", routing::get(list)),
                Action::Create => (0, "POST", routing::post(create)),
                Action::Get => (1, "GET", routing::get(show)),
                Action::Update => (1, "PATCH", routing::patch(update)),
                Action::Delete => (1, "DELETE", routing::delete(remove)),
                Action::Roll => (2, "POST", routing::post(roll)),
                Action::Usage => (3, "GET", routing::get(super::usage::usage)),
            };
            routes[at].1.add(method, route.route_layer(layer));
        }
        let mut router = Router::new();
        for (path, set) in routes {
            if let Some(methods) = set.finish(api.clone()) {
                router = router.route(&path, methods);
            }
        }
        router
            .layer(DefaultBodyLimit::max(self.max_body))
            .with_state(api)
    }
}

/// The methods of one path, with a 405 for any other.
#[derive(Default)]
struct MethodSet {
    allow: Vec<&'static str>,
    router: Option<MethodRouter<Arc<AdminApi>>>,
}

impl MethodSet {
    fn add(&mut self, method: &'static str, route: MethodRouter<Arc<AdminApi>>) {
        self.allow.push(method);
        self.router = Some(match self.router.take() {
            Some(router) => router.merge(route),
            None => route,
        });
    }

    fn finish(self, api: Arc<AdminApi>) -> Option<MethodRouter<Arc<AdminApi>>> {
        let allow = self.allow.join(", ");
        let router = self.router?;
        Some(router.fallback(move || not_allowed(api.clone(), allow.clone())))
    }
}
