//! Console sessions: what the host grants, the one-time login link, and the live
//! sessions behind the browser's cookie.
//!
//! A session is a login, not a credential: it names an account, the environment it
//! works in (or every environment, when the host says so) and a set of [`Permission`]s.
//! Keys it creates are bounded by its [`SessionGrant`] (the scopes the host lets it
//! grant, an IP allowlist, a quota, a longest lifetime), never by the login's own expiry.
//!
//! Tokens (the login link's and the cookie's) are 256 random bits, kept only as SHA-256
//! digests and compared as fixed 32-byte digests.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rand::RngCore as _;
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;
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

/// A new random token: its text and digest.
pub(crate) fn new_token() -> (Zeroizing<String>, [u8; 32]) {
    let mut bytes = Zeroizing::new([0u8; 32]);
    rand::rng().fill_bytes(&mut *bytes);
    let text = Zeroizing::new(URL_SAFE_NO_PAD.encode(*bytes));
    let digest = token_digest(&text);
    (text, digest)
}

/// The SHA-256 digest of a token's text.
pub(crate) fn token_digest(text: &str) -> [u8; 32] {
    Sha256::digest(text.as_bytes()).into()
}

/// Whether two tokens are equal, compared as digests in constant time.
pub(crate) fn tokens_equal(given: &str, expected: &str) -> bool {
    token_digest(given).ct_eq(&token_digest(expected)).into()
}

/// A secret shown once on the next page the session loads, then forgotten.
pub(crate) struct Flash {
    pub(crate) key_id: KeyId,
    pub(crate) secret: Zeroizing<String>,
}

/// One live session.
pub(crate) struct Session {
    pub(crate) id: SessionId,
    pub(crate) grant: SessionGrant,
    pub(crate) expires_at: SystemTime,
    /// The form token, per session.
    pub(crate) csrf: Zeroizing<String>,
    /// Whether the login link was exchanged (the cookie token is set then).
    pub(crate) cookie: Option<[u8; 32]>,
    pub(crate) flash: Option<Flash>,
}

/// What a request's cookie resolves to.
#[derive(Clone)]
pub(crate) struct SessionView {
    pub(crate) id: SessionId,
    pub(crate) grant: Arc<SessionGrant>,
    pub(crate) csrf: Arc<Zeroizing<String>>,
}

/// The live sessions of one console, in this process.
#[derive(Default)]
pub(crate) struct Sessions {
    inner: Mutex<SessionMaps>,
}

#[derive(Default)]
struct SessionMaps {
    by_id: HashMap<String, Session>,
    /// Login-link digest -> session id, until exchanged.
    logins: HashMap<[u8; 32], (String, SystemTime)>,
    /// Cookie digest -> session id.
    cookies: HashMap<[u8; 32], String>,
}

/// Default of how long a login link stays usable: 5 minutes.
pub const DEFAULT_LOGIN_LINK_TTL: Duration = Duration::from_secs(5 * 60);
/// Most live sessions one console keeps; the oldest-expiring go first beyond it.
pub(crate) const MAX_SESSIONS: usize = 10_000;

impl Sessions {
    fn lock(&self) -> std::sync::MutexGuard<'_, SessionMaps> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Mints a session and its login token.
    pub(crate) fn mint(
        &self,
        grant: SessionGrant,
        now: SystemTime,
        link_ttl: Duration,
    ) -> (SessionId, Zeroizing<String>, SystemTime) {
        let (session_token, _) = new_token();
        let id = SessionId(KeyId::new(format!(
            "cs_{}",
            &hex::encode(token_digest(&session_token))[..24]
        )));
        let (login, login_digest) = new_token();
        let (csrf, _) = new_token();
        let expires_at = now + grant.ttl;
        let login_expires = now + link_ttl.min(grant.ttl);
        let mut maps = self.lock();
        maps.purge(now);
        maps.logins
            .insert(login_digest, (id.as_str().to_owned(), login_expires));
        maps.by_id.insert(
            id.as_str().to_owned(),
            Session {
                id: id.clone(),
                grant,
                expires_at,
                csrf,
                cookie: None,
                flash: None,
            },
        );
        (id, login, login_expires)
    }

    /// Exchanges a login token, once, for a cookie token.
    pub(crate) fn exchange(
        &self,
        login: &str,
        now: SystemTime,
    ) -> Option<(Zeroizing<String>, SystemTime)> {
        let mut maps = self.lock();
        let (id, until) = maps.logins.remove(&token_digest(login))?;
        if now >= until {
            return None;
        }
        let (cookie, digest) = new_token();
        let session = maps.by_id.get_mut(&id).filter(|s| now < s.expires_at)?;
        session.cookie = Some(digest);
        let expires = session.expires_at;
        maps.cookies.insert(digest, id);
        Some((cookie, expires))
    }

    /// The live session behind a cookie token.
    pub(crate) fn find(&self, cookie: &str, now: SystemTime) -> Option<SessionView> {
        let maps = self.lock();
        let id = maps.cookies.get(&token_digest(cookie))?;
        let s = maps.by_id.get(id).filter(|s| now < s.expires_at)?;
        Some(SessionView {
            id: s.id.clone(),
            grant: Arc::new(s.grant.clone()),
            csrf: Arc::new(s.csrf.clone()),
        })
    }

    /// Ends a session: its cookie and any unused login link stop working at once.
    pub(crate) fn revoke(&self, id: &SessionId) -> bool {
        let mut maps = self.lock();
        let Some(s) = maps.by_id.remove(id.as_str()) else {
            return false;
        };
        if let Some(digest) = s.cookie {
            maps.cookies.remove(&digest);
        }
        maps.logins.retain(|_, (sid, _)| sid != id.as_str());
        true
    }

    /// Ends every session of `account`; how many there were.
    pub(crate) fn revoke_account(&self, account: &AccountId) -> usize {
        let ids: Vec<SessionId> = self
            .lock()
            .by_id
            .values()
            .filter(|s| &s.grant.account == account)
            .map(|s| s.id.clone())
            .collect();
        ids.iter().filter(|id| self.revoke(id)).count()
    }

    /// Keeps `secret` to show once on the session's next secret page.
    pub(crate) fn set_flash(&self, id: &SessionId, key_id: KeyId, secret: &str) {
        if let Some(s) = self.lock().by_id.get_mut(id.as_str()) {
            s.flash = Some(Flash {
                key_id,
                secret: Zeroizing::new(secret.to_owned()),
            });
        }
    }

    /// Takes the secret kept for `key_id`, if any: it is gone afterwards.
    pub(crate) fn take_flash(&self, id: &SessionId, key_id: &KeyId) -> Option<Zeroizing<String>> {
        let mut maps = self.lock();
        let s = maps.by_id.get_mut(id.as_str())?;
        match s.flash.take() {
            Some(f) if &f.key_id == key_id => Some(f.secret),
            other => {
                s.flash = other;
                None
            }
        }
    }
}

impl SessionMaps {
    /// Drops expired sessions and links, and the oldest beyond [`MAX_SESSIONS`].
    fn purge(&mut self, now: SystemTime) {
        self.logins.retain(|_, (_, until)| now < *until);
        self.by_id.retain(|_, s| now < s.expires_at);
        if self.by_id.len() >= MAX_SESSIONS {
            let mut all: Vec<(SystemTime, String)> = self
                .by_id
                .values()
                .map(|s| (s.expires_at, s.id.as_str().to_owned()))
                .collect();
            all.sort();
            for (_, id) in all.into_iter().take(self.by_id.len() + 1 - MAX_SESSIONS) {
                self.by_id.remove(&id);
            }
        }
        let by_id = &self.by_id;
        self.cookies.retain(|_, id| by_id.contains_key(id));
        self.logins.retain(|_, (id, _)| by_id.contains_key(id));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant() -> SessionGrant {
        SessionGrant::new("acct_1".into(), None).permit([Permission::ReadKeys])
    }

    #[test]
    fn a_login_token_is_exchanged_once() {
        let sessions = Sessions::default();
        let now = SystemTime::now();
        let (_, login, _) = sessions.mint(grant(), now, DEFAULT_LOGIN_LINK_TTL);
        let (cookie, _) = sessions.exchange(&login, now).expect("first use");
        assert!(sessions.exchange(&login, now).is_none(), "second use");
        assert!(sessions.find(&cookie, now).is_some());
        assert!(
            sessions.find(&login, now).is_none(),
            "the login is no cookie"
        );
    }

    #[test]
    fn sessions_expire_and_can_be_revoked() {
        let sessions = Sessions::default();
        let now = SystemTime::now();
        let (id, login, _) = sessions.mint(
            grant().ttl(Duration::from_secs(60)),
            now,
            DEFAULT_LOGIN_LINK_TTL,
        );
        let (cookie, _) = sessions.exchange(&login, now).unwrap();
        assert!(sessions
            .find(&cookie, now + Duration::from_secs(60))
            .is_none());
        assert!(sessions.revoke(&id));
        assert!(sessions.find(&cookie, now).is_none());
    }

    #[test]
    fn an_unused_login_link_expires() {
        let sessions = Sessions::default();
        let now = SystemTime::now();
        let (_, login, until) = sessions.mint(grant(), now, DEFAULT_LOGIN_LINK_TTL);
        assert!(sessions.exchange(&login, until).is_none());
    }

    #[test]
    fn a_flash_is_shown_once_and_only_for_its_key() {
        let sessions = Sessions::default();
        let now = SystemTime::now();
        let (id, _, _) = sessions.mint(grant(), now, DEFAULT_LOGIN_LINK_TTL);
        sessions.set_flash(&id, KeyId::new("ak_1"), "sk_test_secret");
        assert!(sessions.take_flash(&id, &KeyId::new("ak_2")).is_none());
        assert_eq!(
            sessions.take_flash(&id, &KeyId::new("ak_1")).as_deref(),
            Some(&"sk_test_secret".to_owned())
        );
        assert!(sessions.take_flash(&id, &KeyId::new("ak_1")).is_none());
    }

    #[test]
    fn tokens_compare_by_digest() {
        assert!(tokens_equal("abc", "abc"));
        assert!(!tokens_equal("abc", "abd"));
        assert!(!tokens_equal("", "abc"));
    }
}
