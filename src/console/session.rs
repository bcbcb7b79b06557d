//! Console sessions: what the host grants, the one-time login link, and the live
//! sessions behind the browser's cookie.
//!
//! A session is a login, not a credential: it names an account, the environment it
//! works in (or every environment, when the host says so) and a set of [`Permission`]s.
//! Keys it creates are bounded by its [`SessionGrant`] (the scopes the host lets it
//! grant, an IP allowlist, a quota, a longest lifetime), never by the login's own expiry.

use std::fmt;
use std::time::{Duration, SystemTime};

use zeroize::Zeroizing;

use crate::client_ip::IpAllowlist;
use crate::key::Environment;
use crate::scope::ScopeSet;
use crate::store::record::{AccountId, KeyId, RateLimit};

/// Something a console session may do. A session holds a set of them
/// ([`SessionGrant::permit`]); the pages offer only what it holds and the server refuses
/// the rest (403).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Permission {
    /// See the account's keys.
    ReadKeys,
    /// Create keys.
    CreateKeys,
    /// Change a key's name, scopes, IP allowlist and expiry.
    UpdateKeys,
    /// Roll a key: a new secret, the old one working for a grace period.
    RollKeys,
    /// Revoke a key.
    RevokeKeys,
    /// Delete a key for good.
    DeleteKeys,
    /// See a key's usage chart and API log.
    ReadUsage,
}

impl Permission {
    /// Every permission.
    pub const ALL: [Permission; 7] = [
        Permission::ReadKeys,
        Permission::CreateKeys,
        Permission::UpdateKeys,
        Permission::RollKeys,
        Permission::RevokeKeys,
        Permission::DeleteKeys,
        Permission::ReadUsage,
    ];

    /// Its name, as the pages and refusals show it (`keys:read`, `keys:create`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Permission::ReadKeys => "keys:read",
            Permission::CreateKeys => "keys:create",
            Permission::UpdateKeys => "keys:update",
            Permission::RollKeys => "keys:roll",
            Permission::RevokeKeys => "keys:revoke",
            Permission::DeleteKeys => "keys:delete",
            Permission::ReadUsage => "usage:read",
        }
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the host lets one console session do, given to [`super::Console::session`].
///
/// ```
/// use std::time::Duration;
/// use keygate::console::{Permission, SessionGrant};
/// use keygate::scope::ScopeSet;
/// use keygate::Environment;
///
/// let grant = SessionGrant::new("acct_42".into(), Some(Environment::Live))
///     .user("ada@example.com")
///     .permit([Permission::ReadKeys, Permission::CreateKeys, Permission::ReadUsage])
///     .grantable_scopes(ScopeSet::parse(["read", "write"]).unwrap())
///     .max_key_lifetime(Duration::from_secs(90 * 24 * 3600))
///     .ttl(Duration::from_secs(30 * 60));
/// assert!(grant.allows(Permission::CreateKeys));
/// assert!(!grant.allows(Permission::RevokeKeys));
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct SessionGrant {
    /// The account whose keys the session manages.
    pub account: AccountId,
    /// The environment it works in; `None` for every environment the deployment serves
    /// (only when the host says so).
    pub environment: Option<Environment>,
    /// Who is logged in, as the host knows them (shown on the pages, recorded in audit
    /// events); empty for nobody in particular.
    pub user: String,
    /// What the session may do.
    pub permissions: Vec<Permission>,
    /// The scopes keys made or changed through the session may carry (the configured
    /// implications apply): nothing beyond them.
    pub grantable_scopes: ScopeSet,
    /// The addresses keys made through the session are limited to (a key that names
    /// none gets this list); empty for any.
    pub key_ips: IpAllowlist,
    /// The highest quota a key made through the session may have (a key that names none
    /// gets this one); `None` for the deployment default.
    pub key_rate_limit: Option<RateLimit>,
    /// The longest a key made through the session may live, counted from when it is made
    /// (a key that names no expiry gets this one); `None` for no limit.
    pub max_key_lifetime: Option<Duration>,
    /// How long the session lasts from when it is minted: 15 minutes by default.
    pub ttl: Duration,
}

/// Default lifetime of a console session: 15 minutes.
pub const DEFAULT_SESSION_TTL: Duration = Duration::from_secs(15 * 60);

impl SessionGrant {
    /// A session for `account` in `environment` (`None`: every environment), with no
    /// permissions and no grantable scopes yet.
    pub fn new(account: AccountId, environment: Option<Environment>) -> Self {
        Self {
            account,
            environment,
            user: String::new(),
            permissions: Vec::new(),
            grantable_scopes: ScopeSet::new(),
            key_ips: IpAllowlist::any(),
            key_rate_limit: None,
            max_key_lifetime: None,
            ttl: DEFAULT_SESSION_TTL,
        }
    }

    /// Names who is logged in.
    #[must_use]
    pub fn user(mut self, user: impl Into<String>) -> Self {
        self.user = user.into();
        self
    }

    /// Also permits these actions.
    #[must_use]
    pub fn permit(mut self, permissions: impl IntoIterator<Item = Permission>) -> Self {
        for p in permissions {
            if !self.permissions.contains(&p) {
                self.permissions.push(p);
            }
        }
        self.permissions.sort();
        self
    }

    /// Sets the scopes keys made through the session may carry.
    #[must_use]
    pub fn grantable_scopes(mut self, scopes: ScopeSet) -> Self {
        self.grantable_scopes = scopes;
        self
    }

    /// Limits keys made through the session to these addresses.
    #[must_use]
    pub fn key_ips(mut self, ips: IpAllowlist) -> Self {
        self.key_ips = ips;
        self
    }

    /// Caps the quota of keys made through the session.
    #[must_use]
    pub fn key_rate_limit(mut self, limit: RateLimit) -> Self {
        self.key_rate_limit = Some(limit);
        self
    }

    /// Caps the lifetime of keys made through the session.
    #[must_use]
    pub fn max_key_lifetime(mut self, lifetime: Duration) -> Self {
        self.max_key_lifetime = Some(lifetime);
        self
    }

    /// Sets how long the session lasts.
    #[must_use]
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// Whether the session may do `permission`.
    pub fn allows(&self, permission: Permission) -> bool {
        self.permissions.contains(&permission)
    }
}

/// The id of a console session (not a secret): name it to
/// [`super::Console::revoke_session`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SessionId(pub(crate) KeyId);

impl SessionId {
    /// The id text, `cs_…`.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A minted session: its id and the one-time login link that opens it in a browser.
pub struct LoginLink {
    /// The session's id.
    pub session: SessionId,
    /// The link's path and token, under the console's mount path:
    /// `<mount>/login/<token>`. It works once, before [`LoginLink::expires_at`].
    pub(crate) path: Zeroizing<String>,
    /// When the link stops working unless used.
    pub expires_at: SystemTime,
}

impl LoginLink {
    /// The path to open (`/console/login/<token>`); prepend the host's origin for a
    /// full URL. It carries a one-time token: hand it only to the logged-in user.
    pub fn expose_path(&self) -> &str {
        &self.path
    }
}

impl fmt::Debug for LoginLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoginLink")
            .field("session", &self.session)
            .field("path", &"[redacted]")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// Default of how long a login link stays usable: 5 minutes.
pub const DEFAULT_LOGIN_LINK_TTL: Duration = Duration::from_secs(5 * 60);
