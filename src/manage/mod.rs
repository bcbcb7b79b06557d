//! Managing keys over their lifetime: create, get, list, update, revoke, roll.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::StatusCode;
use serde::Serialize;

use crate::client_ip::IpAllowlist;
use crate::identity::Identity;
use crate::key::{new_public_id, ApiKey, Environment, KeyPrefix};
use crate::keygate::Keygate;
use crate::scope::ScopeSet;
use crate::store::record::{AccountId, GraceDigest, KeyId, KeyRecord, RateLimit};
use crate::store::{KeyStoreWrite, StoreError};

/// Longest key name, in characters.
pub const MAX_NAME_LEN: usize = 50;
/// Default page size of [`KeyManager::list`].
pub const DEFAULT_PAGE_SIZE: usize = 25;
/// Largest page size of [`KeyManager::list`].
pub const MAX_PAGE_SIZE: usize = 100;

/// Why a management call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ManageError {
    /// No such key in this account.
    #[error("No API key with that id exists in this account")]
    NotFound,
    /// Bad input; the message names the field.
    #[error("{0}")]
    InvalidRequest(String),
    /// The account has its maximum number of active keys (Bytekit's 51st key).
    #[error(
        "This account already has {limit} active API keys; revoke one before creating another"
    )]
    LimitReached {
        /// The cap.
        limit: usize,
    },
    /// The acting key tried to grant more than it holds.
    #[error("{0}")]
    Escalation(String),
    /// The key is revoked and cannot be rolled or changed.
    #[error("This API key has been revoked and cannot be changed")]
    Revoked,
    /// The store failed.
    #[error("The key store is unavailable; retry later")]
    Store(#[source] StoreError),
}

impl ManageError {
    /// The stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            ManageError::NotFound => "not_found",
            ManageError::InvalidRequest(_) => "invalid_request",
            ManageError::LimitReached { .. } => "api_key_limit_reached",
            ManageError::Escalation(_) => "insufficient_scope",
            ManageError::Revoked => "api_key_revoked",
            ManageError::Store(_) => "store_unavailable",
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            ManageError::NotFound => StatusCode::NOT_FOUND,
            ManageError::InvalidRequest(_) => StatusCode::BAD_REQUEST,
            ManageError::LimitReached { .. } | ManageError::Revoked => StatusCode::CONFLICT,
            ManageError::Escalation(_) => StatusCode::FORBIDDEN,
            ManageError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

impl From<StoreError> for ManageError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => ManageError::NotFound,
            StoreError::LimitReached { limit } => ManageError::LimitReached { limit },
            other => ManageError::Store(other),
        }
    }
}

/// The input of [`KeyManager::create`].
#[derive(Clone, Debug, Default)]
pub struct NewKey {
    /// 1 to 50 characters.
    pub name: String,
    /// Scope names.
    pub scopes: Vec<String>,
    /// Addresses and CIDR networks; empty for any.
    pub ips: Vec<String>,
    /// Expiry.
    pub expires_at: Option<SystemTime>,
    /// Per-key quota; `None` for the deployment default.
    pub rate_limit: Option<RateLimit>,
    /// Free-form metadata.
    pub metadata: serde_json::Map<String, serde_json::Value>,
    /// The environment, which picks the prefix. `None` picks an environment-neutral
    /// prefix, or the deployment's environment when it has one.
    pub environment: Option<Environment>,
    /// An explicit prefix, overriding `environment`.
    pub prefix: Option<String>,
}

impl NewKey {
    /// A key with this name and nothing else.
    pub fn named(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            ..Self::default()
        }
    }

    /// Sets the scopes.
    pub fn scopes<I: IntoIterator<Item = S>, S: Into<String>>(mut self, scopes: I) -> Self {
        self.scopes = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the IP allowlist.
    pub fn ips<I: IntoIterator<Item = S>, S: Into<String>>(mut self, ips: I) -> Self {
        self.ips = ips.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the expiry.
    pub fn expires_at(mut self, at: SystemTime) -> Self {
        self.expires_at = Some(at);
        self
    }

    /// Sets a per-key quota.
    pub fn rate_limit(mut self, limit: RateLimit) -> Self {
        self.rate_limit = Some(limit);
        self
    }

    /// Sets the environment.
    pub fn environment(mut self, environment: Environment) -> Self {
        self.environment = Some(environment);
        self
    }

    /// Sets an explicit prefix.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = Some(prefix.into());
        self
    }

    /// Sets the metadata.
    pub fn metadata(mut self, metadata: serde_json::Map<String, serde_json::Value>) -> Self {
        self.metadata = metadata;
        self
    }
}

/// The input of [`KeyManager::update`]: `None` leaves a field as it is.
#[derive(Clone, Debug, Default)]
pub struct KeyUpdate {
    /// New name.
    pub name: Option<String>,
    /// New scopes.
    pub scopes: Option<Vec<String>>,
    /// New IP allowlist.
    pub ips: Option<Vec<String>>,
    /// New expiry; `Some(None)` removes it.
    pub expires_at: Option<Option<SystemTime>>,
    /// New quota; `Some(None)` returns to the deployment default.
    pub rate_limit: Option<Option<RateLimit>>,
    /// New metadata.
    pub metadata: Option<serde_json::Map<String, serde_json::Value>>,
    /// Disable (`true`) or enable (`false`) the key.
    pub disabled: Option<bool>,
}

/// A key as management shows it: no plaintext and no digest, ever.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct KeyView {
    /// Public id.
    pub id: KeyId,
    /// Owning account.
    pub account_id: AccountId,
    /// Name.
    pub name: String,
    /// Prefix, such as `sk_live_`.
    pub prefix: String,
    /// Prefix plus four characters, to recognise the key.
    pub start: String,
    /// Environment.
    pub environment: Option<Environment>,
    /// Scopes.
    pub scopes: ScopeSet,
    /// IP allowlist.
    pub ips: IpAllowlist,
    /// Expiry (RFC 3339).
    pub expires_at: Option<String>,
    /// Last use (RFC 3339), tracked coarsely.
    pub last_used_at: Option<String>,
    /// Creation (RFC 3339).
    pub created_at: String,
    /// Last change (RFC 3339).
    pub updated_at: String,
    /// Revocation (RFC 3339).
    pub revoked_at: Option<String>,
    /// Whether the key is disabled.
    pub disabled: bool,
    /// Per-key quota; `null` for the deployment default.
    pub rate_limit: Option<RateLimit>,
    /// Metadata.
    pub metadata: serde_json::Map<String, serde_json::Value>,
}

/// RFC 3339 with milliseconds, UTC.
pub fn rfc3339(at: SystemTime) -> String {
    humantime::format_rfc3339_millis(at).to_string()
}

impl From<&KeyRecord> for KeyView {
    fn from(r: &KeyRecord) -> Self {
        Self {
            id: r.id.clone(),
            account_id: r.account_id.clone(),
            name: r.name.clone(),
            prefix: r.prefix.clone(),
            start: r.start.clone(),
            environment: r.environment,
            scopes: r.scopes.clone(),
            ips: r.ips.clone(),
            expires_at: r.expires_at.map(rfc3339),
            last_used_at: r.last_used_at.map(rfc3339),
            created_at: rfc3339(r.created_at),
            updated_at: rfc3339(r.updated_at),
            revoked_at: r.revoked_at.map(rfc3339),
            disabled: r.disabled,
            rate_limit: r.rate_limit,
            metadata: r.metadata.clone(),
        }
    }
}

/// A new key, or a rolled one: the record and its plaintext, shown this once.
#[derive(Debug)]
pub struct CreatedKey {
    /// The key's public view.
    pub view: KeyView,
    /// The plaintext. It cannot be retrieved again from anywhere.
    pub key: ApiKey,
}

/// One page of [`KeyManager::list`].
#[derive(Clone, Debug, Serialize)]
pub struct Page {
    /// The keys, oldest first.
    pub data: Vec<KeyView>,
    /// Pass as `cursor` for the next page; `None` on the last page.
    pub next_cursor: Option<String>,
}

/// Whether [`KeyManager::revoke`] changed anything.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Revoked {
    /// The key is now revoked.
    Now,
    /// It was revoked already; nothing changed.
    Already,
}

/// Settings for a [`KeyManager`].
#[derive(Clone, Debug)]
pub struct ManagerConfig {
    /// Most active keys per account; `None` for no cap. Default: 50 (Bytekit).
    pub max_active_keys: Option<usize>,
    /// Prefix of public key ids. Default: `ak_`.
    pub id_prefix: String,
    /// When set, only these scopes may be given to keys.
    pub allowed_scopes: Option<ScopeSet>,
}

impl Default for ManagerConfig {
    fn default() -> Self {
        Self {
            max_active_keys: Some(50),
            id_prefix: "ak_".to_owned(),
            allowed_scopes: None,
        }
    }
}

/// Creates and changes keys in a writable store, keeping the cache of its [`Keygate`]
/// in step: every change invalidates the key's cache entries before the call returns.
#[derive(Clone)]
pub struct KeyManager {
    gate: Keygate,
    store: Arc<dyn KeyStoreWrite>,
    config: Arc<ManagerConfig>,
    /// Serialises read-modify-write changes in this process so none is lost.
    write: Arc<tokio::sync::Mutex<()>>,
}

impl std::fmt::Debug for KeyManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyManager")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl KeyManager {
    /// A manager with the default settings. Also starts `last_used_at` tracking on
    /// `gate` through `store`.
    pub fn new<S: KeyStoreWrite>(gate: Keygate, store: Arc<S>) -> Self {
        Self::with_config(gate, store, ManagerConfig::default())
    }

    /// A manager with explicit settings.
    pub fn with_config<S: KeyStoreWrite>(
        gate: Keygate,
        store: Arc<S>,
        config: ManagerConfig,
    ) -> Self {
        let store: Arc<dyn KeyStoreWrite> = store;
        gate.attach_writer(store.clone());
        Self {
            gate,
            store,
            config: Arc::new(config),
            write: Arc::new(tokio::sync::Mutex::new(())),
        }
    }

    /// The core whose cache this manager keeps in step.
    pub fn keygate(&self) -> &Keygate {
        &self.gate
    }

    /// Acts on behalf of an authenticated key: confined to its account, and unable to
    /// grant scopes, environments or write access it does not hold itself.
    pub fn acting_as<'a>(&'a self, actor: &'a Identity) -> ActingManager<'a> {
        ActingManager {
            manager: self,
            actor,
        }
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
                let env = env.or(self.gate.environment());
                format.prefix_for(env).ok_or_else(|| {
                    ManageError::InvalidRequest(
                        "environment: no prefix is configured for it".into(),
                    )
                })?
            }
        };
        if let (Some(e), Some(expected)) = (prefix.environment(), self.gate.environment()) {
            if e != expected {
                return Err(ManageError::InvalidRequest(format!(
                    "environment: this deployment only accepts {expected} keys"
                )));
            }
        }
        Ok(prefix.clone())
    }

    /// Creates a key in `account`. Returns the plaintext, once.
    pub async fn create(&self, account: AccountId, new: NewKey) -> Result<CreatedKey, ManageError> {
        let name = validate_name(&new.name)?;
        let scopes = self.scopes(&new.scopes)?;
        let ips = parse_ips(&new.ips)?;
        validate_rate_limit(new.rate_limit.as_ref())?;
        let prefix = self.prefix(&new)?;
        let now = self.now();
        if new.expires_at.is_some_and(|t| t <= now) {
            return Err(ManageError::InvalidRequest(
                "expires_at: must be in the future".into(),
            ));
        }
        let key = self.gate.format().generate(&prefix);
        let record = KeyRecord {
            id: KeyId::new(new_public_id(&self.config.id_prefix, millis(now))),
            account_id: account,
            name,
            prefix: prefix.as_str().to_owned(),
            start: key.start().to_owned(),
            environment: prefix.environment(),
            scopes,
            ips,
            expires_at: new.expires_at,
            revoked_at: None,
            disabled: false,
            rate_limit: new.rate_limit,
            metadata: new.metadata,
            digest: self.gate.hasher().digest(key.expose_secret()),
            previous: None,
            created_at: now,
            updated_at: now,
            last_used_at: None,
            version: 0,
        };
        self.store
            .insert(record.clone(), self.config.max_active_keys, now)
            .await?;
        // A "not found" may be cached for this digest by a guess; it is not any more.
        self.gate.invalidate(&record);
        tracing::info!(target: "keygate::audit", action = "create", key_id = record.id.as_str(), account_id = record.account_id.as_str(), "api key created");
        Ok(CreatedKey {
            view: KeyView::from(&record),
            key,
        })
    }

    async fn record_in(&self, account: &AccountId, id: &KeyId) -> Result<KeyRecord, ManageError> {
        match self.store.get(id).await? {
            Some(r) if &r.account_id == account => Ok(r),
            _ => Err(ManageError::NotFound),
        }
    }

    /// The key `id` of `account`.
    pub async fn get(&self, account: &AccountId, id: &KeyId) -> Result<KeyView, ManageError> {
        self.record_in(account, id).await.map(|r| KeyView::from(&r))
    }

    /// A page of `account`'s keys, oldest first. `limit` defaults to 25 and may be at
    /// most 100; `cursor` is the `next_cursor` of the previous page. Keys are paged by
    /// their time-ordered id, so keys created or revoked meanwhile never make another
    /// key appear twice or be skipped.
    pub async fn list(
        &self,
        account: &AccountId,
        limit: Option<usize>,
        cursor: Option<&str>,
    ) -> Result<Page, ManageError> {
        let limit = limit.unwrap_or(DEFAULT_PAGE_SIZE);
        if !(1..=MAX_PAGE_SIZE).contains(&limit) {
            return Err(ManageError::InvalidRequest(format!(
                "limit: must be between 1 and {MAX_PAGE_SIZE}"
            )));
        }
        let after = match cursor {
            None | Some("") => None,
            Some(c) => Some(decode_cursor(c)?),
        };
        let mut records = self.store.list(account, after.as_ref(), limit + 1).await?;
        let more = records.len() > limit;
        records.truncate(limit);
        let next_cursor = if more {
            records.last().map(|r| encode_cursor(&r.id))
        } else {
            None
        };
        Ok(Page {
            data: records.iter().map(KeyView::from).collect(),
            next_cursor,
        })
    }

    /// Changes fields of key `id` of `account`.
    pub async fn update(
        &self,
        account: &AccountId,
        id: &KeyId,
        update: KeyUpdate,
    ) -> Result<KeyView, ManageError> {
        self.update_checked(account, id, update, |_, _| Ok(()))
            .await
    }

    async fn update_checked(
        &self,
        account: &AccountId,
        id: &KeyId,
        update: KeyUpdate,
        guard: impl Fn(&KeyRecord, &KeyRecord) -> Result<(), ManageError>,
    ) -> Result<KeyView, ManageError> {
        retry_on_conflict(|| self.update_once(account, id, update.clone(), &guard)).await
    }

    async fn update_once(
        &self,
        account: &AccountId,
        id: &KeyId,
        update: KeyUpdate,
        guard: impl FnOnce(&KeyRecord, &KeyRecord) -> Result<(), ManageError>,
    ) -> Result<KeyView, ManageError> {
        let name = update.name.as_deref().map(validate_name).transpose()?;
        let scopes = update
            .scopes
            .as_deref()
            .map(|s| self.scopes(s))
            .transpose()?;
        let ips = update.ips.as_deref().map(parse_ips).transpose()?;
        if let Some(limit) = &update.rate_limit {
            validate_rate_limit(limit.as_ref())?;
        }
        let _write = self.write.lock().await;
        let old = self.record_in(account, id).await?;
        if old.revoked_at.is_some() {
            return Err(ManageError::Revoked);
        }
        let mut new = old.clone();
        if let Some(v) = name {
            new.name = v;
        }
        if let Some(v) = scopes {
            new.scopes = v;
        }
        if let Some(v) = ips {
            new.ips = v;
        }
        if let Some(v) = update.expires_at {
            new.expires_at = v;
        }
        if let Some(v) = update.rate_limit {
            new.rate_limit = v;
        }
        if let Some(v) = update.metadata {
            new.metadata = v;
        }
        if let Some(v) = update.disabled {
            new.disabled = v;
        }
        guard(&old, &new)?;
        new.updated_at = self.now();
        self.store.replace(new.clone()).await?;
        self.gate.invalidate(&old);
        tracing::info!(target: "keygate::audit", action = "update", key_id = id.as_str(), account_id = account.as_str(), "api key updated");
        Ok(KeyView::from(&new))
    }

    /// Revokes key `id` of `account`. Idempotent: revoking a revoked key succeeds and
    /// changes nothing. Once this returns, the key fails on the very next request in
    /// this process.
    pub async fn revoke(&self, account: &AccountId, id: &KeyId) -> Result<Revoked, ManageError> {
        self.revoke_checked(account, id, |_| Ok(())).await
    }

    async fn revoke_checked(
        &self,
        account: &AccountId,
        id: &KeyId,
        guard: impl Fn(&KeyRecord) -> Result<(), ManageError>,
    ) -> Result<Revoked, ManageError> {
        retry_on_conflict(|| self.revoke_once(account, id, &guard)).await
    }

    async fn revoke_once(
        &self,
        account: &AccountId,
        id: &KeyId,
        guard: impl FnOnce(&KeyRecord) -> Result<(), ManageError>,
    ) -> Result<Revoked, ManageError> {
        let _write = self.write.lock().await;
        let old = self.record_in(account, id).await?;
        if old.revoked_at.is_some() {
            self.gate.invalidate(&old);
            return Ok(Revoked::Already);
        }
        guard(&old)?;
        let mut new = old.clone();
        let now = self.now();
        new.revoked_at = Some(now);
        new.updated_at = now;
        new.previous = None;
        self.store.replace(new).await?;
        self.gate.invalidate(&old);
        tracing::info!(target: "keygate::audit", action = "revoke", key_id = id.as_str(), account_id = account.as_str(), "api key revoked");
        Ok(Revoked::Now)
    }

    /// Issues a new secret for key `id`, returned once. The old secret keeps working for
    /// `grace` (Stripe's roll, Tenbyte's reset-key); `None` or zero ends it at once.
    pub async fn roll(
        &self,
        account: &AccountId,
        id: &KeyId,
        grace: Option<Duration>,
    ) -> Result<CreatedKey, ManageError> {
        self.roll_checked(account, id, grace, |_| Ok(())).await
    }

    async fn roll_checked(
        &self,
        account: &AccountId,
        id: &KeyId,
        grace: Option<Duration>,
        guard: impl Fn(&KeyRecord) -> Result<(), ManageError>,
    ) -> Result<CreatedKey, ManageError> {
        retry_on_conflict(|| self.roll_once(account, id, grace, &guard)).await
    }

    async fn roll_once(
        &self,
        account: &AccountId,
        id: &KeyId,
        grace: Option<Duration>,
        guard: impl FnOnce(&KeyRecord) -> Result<(), ManageError>,
    ) -> Result<CreatedKey, ManageError> {
        let _write = self.write.lock().await;
        let old = self.record_in(account, id).await?;
        if old.revoked_at.is_some() {
            return Err(ManageError::Revoked);
        }
        guard(&old)?;
        let prefix = self
            .gate
            .format()
            .prefix(&old.prefix)
            .cloned()
            .ok_or_else(|| ManageError::InvalidRequest("prefix: no longer accepted".into()))?;
        let key = self.gate.format().generate(&prefix);
        let now = self.now();
        let mut new = old.clone();
        new.digest = self.gate.hasher().digest(key.expose_secret());
        new.start = key.start().to_owned();
        new.previous = grace.filter(|g| !g.is_zero()).map(|g| GraceDigest {
            digest: old.digest,
            until: now + g,
        });
        new.updated_at = now;
        self.store.replace(new.clone()).await?;
        self.gate.invalidate(&old);
        self.gate.invalidate(&new);
        tracing::info!(target: "keygate::audit", action = "roll", key_id = id.as_str(), account_id = account.as_str(), grace_seconds = grace.map(|g| g.as_secs()), "api key rolled");
        Ok(CreatedKey {
            view: KeyView::from(&new),
            key,
        })
    }
}

/// A [`KeyManager`] acting for one key: see [`KeyManager::acting_as`].
#[derive(Debug)]
pub struct ActingManager<'a> {
    manager: &'a KeyManager,
    actor: &'a Identity,
}

impl ActingManager<'_> {
    fn account(&self) -> &AccountId {
        self.actor.account_id()
    }

    /// Refuses scopes the actor lacks, and read-write keys from read-only actors.
    fn may_hold(&self, scopes: &ScopeSet) -> Result<(), ManageError> {
        if let Some(s) = scopes.iter().find(|s| !self.actor.has_scope(s.as_str())) {
            return Err(ManageError::Escalation(format!(
                "This API key cannot grant the '{s}' scope, which it does not hold itself"
            )));
        }
        if self.actor.is_read_only()
            && !self
                .actor
                .scopes()
                .iter()
                .all(|s| scopes.iter().any(|t| t == s))
        {
            return Err(ManageError::Escalation(
                "A read-only API key can only manage read-only keys".into(),
            ));
        }
        Ok(())
    }

    fn may_manage(&self, target: &KeyRecord) -> Result<(), ManageError> {
        self.may_hold(&target.scopes)
    }

    /// Creates a key in the actor's account, holding no more than the actor.
    pub async fn create(&self, mut new: NewKey) -> Result<CreatedKey, ManageError> {
        let scopes = self.manager.scopes(&new.scopes)?;
        self.may_hold(&scopes)?;
        if let Some(env) = self.actor.environment() {
            let asked = match &new.prefix {
                Some(p) => self
                    .manager
                    .gate
                    .format()
                    .prefix(p)
                    .map(KeyPrefix::environment),
                None => Some(new.environment.or(Some(env))),
            };
            if let Some(asked) = asked {
                if asked != Some(env) {
                    return Err(ManageError::Escalation(format!(
                        "A {env} API key can only create {env} keys"
                    )));
                }
            }
            new.environment.get_or_insert(env);
        }
        self.manager.create(self.account().clone(), new).await
    }

    /// A key of the actor's account.
    pub async fn get(&self, id: &KeyId) -> Result<KeyView, ManageError> {
        self.manager.get(self.account(), id).await
    }

    /// A page of the actor's account's keys.
    pub async fn list(
        &self,
        limit: Option<usize>,
        cursor: Option<&str>,
    ) -> Result<Page, ManageError> {
        self.manager.list(self.account(), limit, cursor).await
    }

    /// Changes a key of the actor's account, never beyond the actor's own scopes.
    pub async fn update(&self, id: &KeyId, update: KeyUpdate) -> Result<KeyView, ManageError> {
        self.manager
            .update_checked(self.account(), id, update, |old, new| {
                self.may_manage(old)?;
                self.may_hold(&new.scopes)
            })
            .await
    }

    /// Revokes a key of the actor's account.
    pub async fn revoke(&self, id: &KeyId) -> Result<Revoked, ManageError> {
        self.manager
            .revoke_checked(self.account(), id, |old| self.may_manage(old))
            .await
    }

    /// Rolls a key of the actor's account that holds no more than the actor.
    pub async fn roll(
        &self,
        id: &KeyId,
        grace: Option<Duration>,
    ) -> Result<CreatedKey, ManageError> {
        self.manager
            .roll_checked(self.account(), id, grace, |old| self.may_manage(old))
            .await
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

fn validate_name(name: &str) -> Result<String, ManageError> {
    let count = name.chars().count();
    if count == 0 || name.trim().is_empty() {
        return Err(ManageError::InvalidRequest(
            "name: must not be empty".into(),
        ));
    }
    if count > MAX_NAME_LEN {
        return Err(ManageError::InvalidRequest(format!(
            "name: must be at most {MAX_NAME_LEN} characters"
        )));
    }
    if name.chars().any(char::is_control) {
        return Err(ManageError::InvalidRequest(
            "name: must not contain control characters".into(),
        ));
    }
    Ok(name.to_owned())
}

fn parse_ips(ips: &[String]) -> Result<IpAllowlist, ManageError> {
    if ips.len() > 100 {
        return Err(ManageError::InvalidRequest(
            "ips: at most 100 entries".into(),
        ));
    }
    IpAllowlist::parse(ips).map_err(|e| ManageError::InvalidRequest(format!("ips: {e}")))
}

fn validate_rate_limit(limit: Option<&RateLimit>) -> Result<(), ManageError> {
    match limit {
        Some(l) if !l.is_valid() => Err(ManageError::InvalidRequest(
            "rate_limit: per_second and burst must both be at least 1".into(),
        )),
        _ => Ok(()),
    }
}

fn millis(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn encode_cursor(id: &KeyId) -> String {
    id.as_str().to_owned()
}

fn decode_cursor(cursor: &str) -> Result<KeyId, ManageError> {
    KeyId::parse(cursor).ok_or_else(|| {
        ManageError::InvalidRequest("cursor: not a cursor returned by this API".into())
    })
}
