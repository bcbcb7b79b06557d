//! The live sessions of one console: login links, cookies, form tokens and the
//! one-time secret shown after a create or a roll. Tokens are 256 random bits, kept
//! only as SHA-256 digests and compared as fixed 32-byte digests.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rand::RngCore as _;
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;
use zeroize::Zeroizing;

#[cfg(test)]
use super::session::{Permission, DEFAULT_LOGIN_LINK_TTL};
use super::session::{SessionGrant, SessionId};
use crate::store::record::{AccountId, KeyId};

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
