//! The embeddable key console (feature `console`): the pages where an API's customers
//! manage their keys and see their use, as an axum router the host mounts.
//!
//! ```
//! use std::time::Duration;
//! use axum::Router;
//! use keygate::console::{Console, Permission, SessionGrant};
//! use keygate::scope::ScopeSet;
//! use keygate::{Environment, Keygate, MemoryStore};
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let (gate, manager) = Keygate::managed(MemoryStore::new())
//!     .environment(Environment::Live)
//!     .build();
//! let console = Console::builder(manager).mount_path("/console").build();
//! let app: Router = Router::new().nest("/console", console.router());
//!
//! // The host already knows its logged-in user: it mints a short session for them
//! // and sends the browser to the one-time link.
//! let grant = SessionGrant::new("acct_42".into(), Some(Environment::Live))
//!     .user("ada@example.com")
//!     .permit(Permission::ALL)
//!     .grantable_scopes(ScopeSet::parse(["read", "write"]).unwrap())
//!     .ttl(Duration::from_secs(30 * 60));
//! let link = console.session(grant);
//! assert!(link.expose_path().starts_with("/console/login/"));
//! # });
//! ```
//!
//! # Pages
//!
//! - **Keys** (`/keys`): every key of the session's account and environment with its
//!   name, prefix and a short hint, environment, scopes, IP allowlist, expiry, status,
//!   creation and last use; a form to create one. A new key's (or a rolled key's)
//!   plaintext is shown exactly once, on the page the form redirects to
//!   (post-redirect-get): the server keeps it for that one page load, so reloading or
//!   going back shows a note instead. No secret ever appears in a URL.
//! - **One key** (`/keys/{id}`): edit its name, scopes, IP allowlist and expiry; roll
//!   it with a grace period; revoke it; delete it.
//! - **Usage** (`/keys/{id}/usage`): requests per hour (24 hours) or per day (30 days),
//!   split by outcome, drawn on the server as inline SVG, and the recent API log with
//!   filters, read from a [`usage::UsageSource`] the host connects
//!   ([`ConsoleBuilder::usage`]); without one the page is not offered.
//!
//! Every action runs through [`crate::KeyManager::acting_as`] for the session, with the
//! management API's confinement: the session sees only its account's keys (and its
//! environment's, unless the host grants every environment), and a key it makes or
//! changes never carries a scope outside [`SessionGrant::grantable_scopes`], an IP
//! allowlist wider than [`SessionGrant::key_ips`], a quota above
//! [`SessionGrant::key_rate_limit`], or a lifetime beyond
//! [`SessionGrant::max_key_lifetime`]. A key it makes that leaves those open gets the
//! session's bound, never the login's own expiry. Each action also needs its
//! [`Permission`]; the pages offer only those the session holds.
//!
//! # Sessions
//!
//! [`Console::session`] mints a session and returns a one-time login link (a 256-bit
//! token, usable once, for 5 minutes unless [`ConsoleBuilder::login_link_ttl`] says otherwise). Opening it sets the session cookie,
//! `HttpOnly`, `SameSite=Strict` and `Secure` (turn `Secure` off only for plain-HTTP
//! development, [`ConsoleBuilder::secure_cookies`]), and redirects to the keys page.
//! Sessions end at their [`SessionGrant::ttl`], at sign-out, or when the host calls
//! [`Console::revoke_session`] or [`Console::revoke_sessions_of`]. Tokens are kept only
//! as SHA-256 digests. Sessions live in the process that minted them: with several
//! instances, route a session's requests to the instance that minted it.
//!
//! # Safe by construction
//!
//! Pages are maud templates (checked at compile time, every value escaped). Every form
//! carries the session's form token, compared in constant time; a post without it, or
//! one the browser marks `Sec-Fetch-Site: cross-site`, is refused (403) before anything
//! changes. Every response carries a strict `Content-Security-Policy`
//! (`default-src 'none'`, the stylesheet and
//! script only from the console's own routes with the response's nonce,
//! `frame-ancestors 'none'`), `X-Frame-Options: DENY`, `nosniff`, `no-referrer` and
//! `Cache-Control: no-store`. The stylesheet and script are compiled into the crate; the
//! pages work without the script, which only adds a copy button.
//!
//! The look follows the host through a few CSS variables ([`Theme`]); pages are
//! responsive, keyboard-usable and labelled for screen readers.

mod chart;
mod forms;
// A handler's early return is the response itself, handed straight to axum: boxing it
// would only add an allocation.
#[allow(clippy::result_large_err)]
mod handlers;
mod pages;
mod security;
pub mod session;
mod sessions;
mod theme;
pub mod usage;

pub use session::{LoginLink, Permission, SessionGrant, SessionId};
pub use theme::Theme;

use std::sync::Arc;
use std::time::Duration;

use axum::routing::{get, post};
use axum::Router;

use crate::cache::entry::ResolvedKey;
use crate::identity::Identity;
use crate::key::digest::KeyDigest;
use crate::manage::{ActingManager, KeyManager};
use crate::store::record::{AccountId, KeyRecord};
use sessions::{SessionView, Sessions};
use usage::UsageSource;

/// The console: its settings, its live sessions and its router.
#[derive(Clone)]
pub struct Console {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    manager: KeyManager,
    sessions: Sessions,
    usage: Option<Arc<dyn UsageSource>>,
    base: String,
    secure_cookies: bool,
    theme: Theme,
    login_link_ttl: Duration,
}

impl std::fmt::Debug for Console {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Console")
            .field("mount_path", &self.inner.base)
            .field("secure_cookies", &self.inner.secure_cookies)
            .finish_non_exhaustive()
    }
}

/// Builds a [`Console`]: see [`Console::builder`].
#[must_use]
pub struct ConsoleBuilder {
    manager: KeyManager,
    usage: Option<Arc<dyn UsageSource>>,
    base: String,
    secure_cookies: bool,
    theme: Theme,
    login_link_ttl: Duration,
}

impl ConsoleBuilder {
    /// Where the host nests the console's router (`Router::nest`): links, redirects and
    /// the cookie's `Path` use it. Default `/console`.
    pub fn mount_path(mut self, path: impl Into<String>) -> Self {
        let path = path.into();
        self.base = format!("/{}", path.trim_matches('/'));
        if self.base == "/" {
            self.base.clear();
        }
        self
    }

    /// Connects key activity: the usage pages read it from `source`.
    pub fn usage(mut self, source: impl UsageSource) -> Self {
        self.usage = Some(Arc::new(source));
        self
    }

    /// Connects key activity from a shared source.
    pub fn usage_shared(mut self, source: Arc<dyn UsageSource>) -> Self {
        self.usage = Some(source);
        self
    }

    /// Whether the session cookie is marked `Secure` (default `true`). Turn it off only
    /// to try the console over plain HTTP on a development machine.
    pub fn secure_cookies(mut self, secure: bool) -> Self {
        self.secure_cookies = secure;
        self
    }

    /// How long a login link stays usable unless used (never longer than its session):
    /// 5 minutes by default.
    pub fn login_link_ttl(mut self, ttl: Duration) -> Self {
        self.login_link_ttl = ttl;
        self
    }

    /// Sets the pages' colours, font, product name and logo.
    pub fn theme(mut self, theme: Theme) -> Self {
        self.theme = theme;
        self
    }

    /// The console.
    pub fn build(self) -> Console {
        Console {
            inner: Arc::new(Inner {
                manager: self.manager,
                sessions: Sessions::default(),
                usage: self.usage,
                base: self.base,
                secure_cookies: self.secure_cookies,
                theme: self.theme,
                login_link_ttl: self.login_link_ttl,
            }),
        }
    }
}

impl Console {
    /// A console over `manager`'s keys, mounted at `/console`, with secure cookies, the
    /// default theme and no usage source.
    pub fn builder(manager: KeyManager) -> ConsoleBuilder {
        ConsoleBuilder {
            manager,
            usage: None,
            base: "/console".into(),
            secure_cookies: true,
            theme: Theme::default(),
            login_link_ttl: session::DEFAULT_LOGIN_LINK_TTL,
        }
    }

    /// Mints a session for `grant` and returns its one-time login link.
    pub fn session(&self, grant: SessionGrant) -> LoginLink {
        let now = self.inner.manager.keygate().clock().now();
        let (session, token, expires_at) =
            self.inner
                .sessions
                .mint(grant, now, self.inner.login_link_ttl);
        tracing::info!(target: "keygate::audit", action = "console_session", session = session.as_str(), "console session minted");
        LoginLink {
            session,
            path: zeroize::Zeroizing::new(format!("{}/login/{}", self.inner.base, &*token)),
            expires_at,
        }
    }

    /// Ends a session at once: its cookie and unused login link stop working. Returns
    /// whether it was live.
    pub fn revoke_session(&self, session: &SessionId) -> bool {
        self.inner.sessions.revoke(session)
    }

    /// Ends every session of `account`; returns how many were live.
    pub fn revoke_sessions_of(&self, account: &AccountId) -> usize {
        self.inner.sessions.revoke_account(account)
    }

    /// The console's routes, to nest at [`ConsoleBuilder::mount_path`].
    pub fn router<S: Clone + Send + Sync + 'static>(&self) -> Router<S> {
        use handlers as h;
        Router::new()
            .route("/", get(h::index))
            .route("/login/{token}", get(h::login))
            .route("/logout", post(h::logout))
            .route("/keys", get(h::keys).post(h::create))
            .route("/keys/{id}", get(h::key).post(h::update))
            .route("/keys/{id}/secret", get(h::secret))
            .route("/keys/{id}/roll", post(h::roll))
            .route("/keys/{id}/revoke", post(h::revoke))
            .route("/keys/{id}/delete", post(h::delete))
            .route("/keys/{id}/usage", get(h::usage))
            .route("/assets/console.css", get(h::css))
            .route("/assets/console.js", get(h::js))
            .fallback(h::not_found)
            .layer(axum::extract::DefaultBodyLimit::max(forms::MAX_FORM_BYTES))
            .layer(axum::middleware::map_response(h::harden))
            .with_state(self.inner.clone())
    }
}

impl Inner {
    /// Whether the usage page has anything to show: the gate's usage counters or a
    /// connected source.
    fn has_usage(&self) -> bool {
        self.usage.is_some()
            || self.manager.keygate().usage_counters().is_some()
            || self.manager.keygate().api_log().is_some()
    }

    /// The session as an actor for key management: a principal of the session's
    /// account and environment holding the grantable scopes (read-only ones aside: any
    /// actor may give those) and the bounds of keys it makes.
    fn actor(&self, session: &SessionView) -> Identity {
        let gate = self.manager.keygate();
        let grant = &session.grant;
        let now = gate.clock().now();
        let mut record = KeyRecord::new(
            session.id.0.clone(),
            grant.account.clone(),
            KeyDigest::from_bytes([0; 32]),
            now,
        );
        record.name = format!("console session of {}", grant.user);
        let read_only = gate.read_only_scopes();
        for scope in grant.grantable_scopes.iter() {
            if !read_only.contains(scope.as_str()) {
                record.scopes.insert(scope.clone());
            }
        }
        record.ips = grant.key_ips.clone();
        record.rate_limit = grant.key_rate_limit;
        record.expires_at = grant.max_key_lifetime.map(|d| now + d);
        record.environment = grant.environment;
        Identity::new(Arc::new(ResolvedKey {
            granted: gate.scope_implications().expand(&record.scopes),
            record,
            read_only: false,
            limit: None,
            account_limit: None,
            last_used_written: std::sync::atomic::AtomicU64::new(0),
            fresh_until: now,
            verified_at: now,
            epoch: 0,
            gate: 0,
            external: true,
            usage: Default::default(),
            metering: None,
        }))
    }

    /// The manager acting for `identity`, a session's actor: a session granted every
    /// environment acts in all of them.
    fn acting<'a>(&'a self, identity: &'a Identity) -> ActingManager<'a> {
        let acting = self.manager.acting_as(identity);
        if identity.environment().is_none() {
            acting.in_every_environment()
        } else {
            acting
        }
    }
}
