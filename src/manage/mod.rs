//! Managing keys over their lifetime: create, get, list, update, revoke, roll.
//!
//! [`KeyManager`] works over any [`crate::KeyStoreWrite`]: create (the plaintext is
//! returned once), get, list, update, revoke (idempotent), delete, import and roll (a new
//! secret for the same id, with an optional grace period for the old one). Every change
//! invalidates the cache at once, so a revoked or rolled-out key fails on the very next
//! request.
//!
//! - [`KeyManager::list`] pages oldest first, by creation time and then by id, which
//!   grows with creation even within one millisecond (`limit` 1-100, default 25, an
//!   opaque `cursor`, stable under concurrent writes and deletes). [`ListQuery::status`]
//!   picks active keys (the default: every key not revoked, including disabled and
//!   expired ones, which can still be changed), revoked ones, or all.
//! - [`KeyManager::delete`] is a hard delete, distinct from revoke: the key and its
//!   digests are removed from the store, it is gone from `get` and every listing, its
//!   secret answers as unknown (401 `invalid_api_key`, not `revoked_api_key`), and its
//!   cached copies are dropped before `delete` returns. Deleting it again is `NotFound`.
//! - [`KeyManager::import`] stores a key made by another system, keeping its id, name,
//!   scopes, creation time and environment: [`ImportedKey::plaintext`] (the key must
//!   match one of the deployment's formats, which gives its prefix and environment) or,
//!   for systems that kept only hashes, [`ImportedKey::sha256_digest`] (not with a
//!   pepper). The environment rules and the active-key cap apply; an id or secret already
//!   stored is refused (409 `api_key_exists`) and nothing is written.
//! - [`KeyUpdate::merge_metadata`] applies an RFC 7396 JSON merge patch to the metadata
//!   (`null` removes a member, objects merge, anything else replaces) on the record read
//!   in the same compare-and-set as the rest of the update, so concurrent patches of
//!   different members all survive. [`KeyUpdate::metadata`] replaces.
//!
//! Each account may hold 50 active keys by default (409 `api_key_limit_reached`). Names
//! are 1-50 characters with at least one visible one, and no control or
//! bidirectional-formatting characters; `expires_at` is any RFC 3339 time
//! (`2099-01-01T00:00:00+14:00`), shown back in UTC; metadata is at most 4 KiB of JSON
//! ([`ManagerConfig::max_metadata_bytes`]). `last_used_at` is written at most once per key
//! per `last_used_interval` (60 s), off the request path. [`crate::MemoryStore`] deletes
//! revoked keys 30 days after revocation and keeps at most 1,000 ended (revoked or
//! expired) keys per account, so create-and-revoke loops cannot grow memory without bound.
//!
//! # Acting for a key
//!
//! [`KeyManager::acting_as`] acts for a key, and the admin API does so for its caller:
//!
//! - it sees only keys of its own account and, for a key of one environment, of that
//!   environment; any other key answers 404 `not_found`, as if absent, and is not listed;
//! - it never makes or touches a key less restricted than itself: the key's scopes grant
//!   nothing the caller lacks (403 `insufficient_scope`), and its IP allowlist lies
//!   inside the caller's, its expiry is no later and its rate limit no higher (403
//!   `widening_refused`), so a restricted key cannot lift its own restrictions either;
//! - a key it creates that leaves `ips`, `expires_at` or `rate_limit` open inherits the
//!   caller's own, rather than being refused;
//! - read-only scopes restrict rather than grant: any caller may give them, and a
//!   read-only caller manages only keys that keep its read-only scopes;
//! - a verified credential (a JWT, say) is confined exactly like a key, by its
//!   principal's expiry (the token's `exp`: a key it mints expires no later),
//!   environment, scopes, IP allowlist and quota. One that names no environment acts in
//!   the deployment's environment when it serves one; on a deployment serving several,
//!   every management action it tries, reads included, is refused with 403
//!   `environment_required`, unless [`ManagerConfig::environment_neutral_principals`]
//!   is on. It is recorded as `external:<subject>`, which no key id can be.
//!
//! The plain [`KeyManager`] methods are for server-side code and are not confined,
//! except that a deployment restricted to one environment never issues or returns a key
//! of another.

mod acting;
mod change;
mod config;
mod confine;
mod create;
pub(crate) mod cursor;
mod error;
mod import;
mod leak;
mod limits;
mod listing;
mod merge_patch;
mod page;
mod plans;
mod search;
mod types;
mod usage;
pub(crate) mod validate;
mod webhooks;

pub use acting::ActingManager;
pub use config::ManagerConfig;
pub use error::ManageError;
pub use import::ImportedKey;
pub use limits::{QuotaView, UsageView};
pub use page::{ListQuery, Page};
pub use search::MAX_HINT_MATCHES;
pub(crate) use types::rfc3339;
pub use types::{CreatedKey, KeyUpdate, KeyView, NewKey, Revoked};
#[cfg(feature = "admin")]
pub(crate) use validate::parse_rfc3339;

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::identity::Identity;
use crate::key::{IdSequence, KeyPrefix};

use crate::gate::Keygate;
use crate::scope::ScopeSet;
use crate::store::record::{AccountId, KeyId, KeyRecord};
use crate::store::{KeyStoreWrite, StoreError};

#[cfg(feature = "admin")]
pub(crate) use confine::actor_label;
use confine::Actor;
use validate::validate_metadata;

/// Longest key name, in characters.
pub const MAX_NAME_LEN: usize = 50;
/// Default page size of [`KeyManager::list`].
pub const DEFAULT_PAGE_SIZE: usize = 25;
/// Largest page size of [`KeyManager::list`].
pub const MAX_PAGE_SIZE: usize = 100;
/// Default of [`ManagerConfig::max_metadata_bytes`]: 4 KiB.
pub const DEFAULT_MAX_METADATA_BYTES: usize = 4096;

/// Creates and changes keys in a writable store, keeping the cache of its [`Keygate`]
/// in step: every change invalidates the key's cache entries before the call returns.
///
/// Its own methods are for server-side code and are not confined to what any key may
/// do (see [`KeyManager::acting_as`] for that), with one exception: when the
/// [`Keygate`] serves one environment, keys of another are never issued and are treated
/// as absent (`NotFound`, left out of lists), so deployments sharing a store stay apart.
///
/// ```
/// use std::time::Duration;
/// use keygate::{Keygate, MemoryStore, NewKey};
/// use keygate::manage::KeyUpdate;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), keygate::ManageError> {
/// let (gate, manager) = Keygate::managed(MemoryStore::new()).build();
/// let account = "acct_1".into();
/// let created = manager.create(account, NewKey::named("CI").scopes(["read"])).await?;
/// let account = "acct_1".into();
/// let id = created.view.id.clone();
/// manager.update(&account, &id, KeyUpdate::default().name("CI (main)")).await?;
/// // A new secret; the old one keeps working for an hour.
/// let rolled = manager.roll(&account, &id, Some(Duration::from_secs(3600))).await?;
/// assert!(gate.verify_key(created.key.expose_secret()).await.is_ok());
/// manager.revoke(&account, &id).await?;
/// assert!(gate.verify_key(rolled.key.expose_secret()).await.is_err());
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct KeyManager {
    gate: Keygate,
    store: Arc<dyn KeyStoreWrite>,
    config: Arc<ManagerConfig>,
    /// Serialises read-modify-write changes in this process so none is lost.
    write: Arc<tokio::sync::Mutex<()>>,
    /// Makes the ids of new keys.
    ids: Arc<IdSequence>,
    /// Where the changes' webhook events go, when sent.
    #[cfg(feature = "webhooks")]
    webhooks: Option<crate::webhooks::Webhooks>,
}

impl std::fmt::Debug for KeyManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyManager")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl KeyManager {
    /// A manager over `store` keeping `gate`'s cache in step. Built only by
    /// [`Keygate::managed`], so the two always share one store.
    pub(crate) fn new(gate: Keygate, store: Arc<dyn KeyStoreWrite>, config: ManagerConfig) -> Self {
        Self {
            gate,
            store,
            config: Arc::new(config),
            write: Arc::new(tokio::sync::Mutex::new(())),
            ids: Arc::default(),
            #[cfg(feature = "webhooks")]
            webhooks: None,
        }
    }

    /// Sends the changes' webhook events through `webhooks`.
    #[cfg(feature = "webhooks")]
    pub(crate) fn set_webhooks(&mut self, webhooks: crate::webhooks::Webhooks) {
        self.send_low_credits(&webhooks);
        self.webhooks = Some(webhooks);
    }

    /// The core whose cache this manager keeps in step.
    pub fn keygate(&self) -> &Keygate {
        &self.gate
    }

    /// Acts on behalf of an authenticated key, confined to it: it sees only keys of its
    /// own account and environment, and never makes or touches a key less restricted
    /// than itself (scopes, environment, IP allowlist, expiry, rate limit). See
    /// [`ActingManager`].
    pub fn acting_as<'a>(&'a self, actor: &'a Identity) -> ActingManager<'a> {
        ActingManager::new(self, actor)
    }

    /// `identity` as an actor on this manager's keys, or the refusal of an external
    /// principal that may not manage keys here.
    pub(crate) fn actor<'a>(&'a self, identity: &'a Identity) -> Result<Actor<'a>, ManageError> {
        Actor::new(
            identity,
            &self.gate,
            self.config.environment_neutral_principals,
        )
    }

    fn now(&self) -> SystemTime {
        self.gate.clock().now()
    }

    fn scopes(&self, names: &[String]) -> Result<ScopeSet, ManageError> {
        let set = ScopeSet::parse(names)
            .map_err(|e| ManageError::InvalidRequest(format!("scopes: {e}")))?;
        if let Some(allowed) = &self.config.allowed_scopes {
            if let Some(bad) = set.iter().find(|s| !allowed.contains(s.as_str())) {
                return Err(ManageError::InvalidRequest(format!(
                    "scopes: unknown scope '{bad}'"
                )));
            }
        }
        Ok(set)
    }

    fn prefix(&self, new: &NewKey) -> Result<KeyPrefix, ManageError> {
        let format = self.gate.format();
        let prefix = match (&new.prefix, new.environment) {
            (Some(text), _) => format.prefix(text).ok_or_else(|| {
                ManageError::InvalidRequest(format!(
                    "prefix: '{}' is not an accepted prefix",
                    truncate(text)
                ))
            })?,
            (None, env) => {
                let env = env.or(self.gate.default_environment());
                format.prefix_for(env).ok_or_else(|| {
                    ManageError::InvalidRequest(
                        "environment: no prefix is configured for it".into(),
                    )
                })?
            }
        };
        match (prefix.environment(), self.gate.environment()) {
            (Some(e), Some(expected)) if e != expected => Err(ManageError::InvalidRequest(
                format!("environment: this deployment only accepts {expected} keys"),
            )),
            (None, Some(expected)) if !self.gate.accepts_environment_neutral_keys() => {
                Err(ManageError::InvalidRequest(format!(
                    "prefix: this deployment only accepts {expected} keys, not \
                     environment-neutral ones"
                )))
            }
            _ => Ok(prefix.clone()),
        }
    }

    /// Whether this deployment serves `record`: a deployment restricted to one
    /// environment treats keys of any other as absent, and environment-neutral keys too
    /// unless it accepts them.
    fn serves(&self, record: &KeyRecord) -> bool {
        match (self.gate.environment(), record.environment) {
            (Some(expected), Some(env)) => env == expected,
            (Some(_), None) => self.gate.accepts_environment_neutral_keys(),
            (None, _) => true,
        }
    }

    /// Whether `record` is in `account`, served here and, for an actor, visible to it.
    fn visible(&self, account: &AccountId, record: &KeyRecord, actor: Option<&Actor<'_>>) -> bool {
        &record.account_id == account && self.serves(record) && actor.is_none_or(|a| a.sees(record))
    }

    fn check_metadata(
        &self,
        metadata: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<(), ManageError> {
        validate_metadata(metadata, self.config.max_metadata_bytes)
    }

    pub(crate) async fn record_in(
        &self,
        account: &AccountId,
        id: &KeyId,
        actor: Option<&Actor<'_>>,
    ) -> Result<KeyRecord, ManageError> {
        match self.store.get(id).await? {
            Some(r) if self.visible(account, &r, actor) => Ok(r),
            _ => Err(ManageError::NotFound),
        }
    }

    /// The key `id` of `account`.
    pub async fn get(&self, account: &AccountId, id: &KeyId) -> Result<KeyView, ManageError> {
        self.get_as(account, id, None).await
    }

    pub(crate) async fn get_as(
        &self,
        account: &AccountId,
        id: &KeyId,
        actor: Option<&Actor<'_>>,
    ) -> Result<KeyView, ManageError> {
        let record = self.record_in(account, id, actor).await?;
        Ok(self.view(&record).await)
    }
}

/// How many times a read-modify-write change is tried in all.
const WRITE_ATTEMPTS: usize = 5;

/// Runs `attempt` (read the key, change it, [`KeyStoreWrite::replace`] it) again while it
/// fails with [`StoreError::VersionConflict`], that is while another writer (another
/// instance) changed the key between the read and the replace. Each try re-reads and
/// re-applies the change, so concurrent changes are applied one after the other and none
/// is lost. After [`WRITE_ATTEMPTS`] conflicts the error is returned (a 503, retryable).
async fn retry_on_conflict<T, F, Fut>(mut attempt: F) -> Result<T, ManageError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, ManageError>>,
{
    let mut tries = 1;
    loop {
        match attempt().await {
            Err(ManageError::Store(StoreError::VersionConflict)) if tries < WRITE_ATTEMPTS => {
                tries += 1;
            }
            other => return other,
        }
    }
}

fn truncate(s: &str) -> String {
    s.chars().take(32).collect()
}

fn millis(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
