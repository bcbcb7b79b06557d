//! Managing keys over their lifetime: create, get, list, update, revoke, roll.

mod acting;
mod confine;
pub(crate) mod validate;

pub use acting::ActingManager;
pub use validate::parse_rfc3339;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::StatusCode;
use serde::Serialize;

use crate::client_ip::IpAllowlist;
use crate::identity::Identity;
use crate::key::{new_public_id, ApiKey, Environment, KeyPrefix};
mod builder;

pub use builder::Managed;

use crate::keygate::Keygate;
use crate::scope::ScopeSet;
use crate::store::record::{AccountId, GraceDigest, KeyId, KeyRecord, RateLimit};
use crate::store::{KeyStoreWrite, StoreError};

use confine::Actor;
use validate::{parse_ips, validate_metadata, validate_name, validate_rate_limit};

/// Longest key name, in characters.
pub const MAX_NAME_LEN: usize = 50;
/// Default page size of [`KeyManager::list`].
pub const DEFAULT_PAGE_SIZE: usize = 25;
/// Largest page size of [`KeyManager::list`].
pub const MAX_PAGE_SIZE: usize = 100;
/// Default of [`ManagerConfig::max_metadata_bytes`]: 4 KiB.
pub const DEFAULT_MAX_METADATA_BYTES: usize = 4096;

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
    /// The acting key tried to grant scopes or an environment it does not hold, or to
    /// manage a key that holds more scopes than it does.
    #[error("{0}")]
    Escalation(String),
    /// The acting key tried to make or touch a key less restricted than itself: a wider
    /// IP allowlist, a later (or no) expiry, or a higher (or the default) rate limit.
    #[error("{0}")]
    Widening(String),
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
            ManageError::Widening(_) => "widening_refused",
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
            ManageError::Escalation(_) | ManageError::Widening(_) => StatusCode::FORBIDDEN,
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
#[non_exhaustive]
pub struct NewKey {
    /// 1 to 50 characters, at least one of them visible, with no control or
    /// bidirectional-formatting characters.
    pub name: String,
    /// Scope names.
    pub scopes: Vec<String>,
    /// Addresses and CIDR networks; empty for any (or, through an [`ActingManager`],
    /// for the acting key's own allowlist).
    pub ips: Vec<String>,
    /// Expiry (through an [`ActingManager`], `None` is the acting key's own).
    pub expires_at: Option<SystemTime>,
    /// Per-key quota; `None` for the deployment default (through an [`ActingManager`],
    /// the acting key's own quota when it has one).
    pub rate_limit: Option<RateLimit>,
    /// Free-form metadata, at most [`ManagerConfig::max_metadata_bytes`] as JSON.
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
///
/// ```
/// use keygate::KeyUpdate;
///
/// let update = KeyUpdate::default().name("renamed").disabled(true);
/// assert_eq!(update.disabled, Some(true));
/// ```
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
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

impl KeyUpdate {
    /// Renames the key.
    #[must_use]
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Replaces the scopes.
    #[must_use]
    pub fn scopes<I: IntoIterator<Item = S>, S: Into<String>>(mut self, scopes: I) -> Self {
        self.scopes = Some(scopes.into_iter().map(Into::into).collect());
        self
    }

    /// Replaces the IP allowlist (empty for any address).
    #[must_use]
    pub fn ips<I: IntoIterator<Item = S>, S: Into<String>>(mut self, ips: I) -> Self {
        self.ips = Some(ips.into_iter().map(Into::into).collect());
        self
    }

    /// Sets (`Some`) or removes (`None`) the expiry.
    #[must_use]
    pub fn expires_at(mut self, at: Option<SystemTime>) -> Self {
        self.expires_at = Some(at);
        self
    }

    /// Sets (`Some`) or removes (`None`) the per-key quota.
    #[must_use]
    pub fn rate_limit(mut self, limit: Option<RateLimit>) -> Self {
        self.rate_limit = Some(limit);
        self
    }

    /// Replaces the metadata.
    #[must_use]
    pub fn metadata(mut self, metadata: serde_json::Map<String, serde_json::Value>) -> Self {
        self.metadata = Some(metadata);
        self
    }

    /// Disables (`true`) or enables (`false`) the key.
    #[must_use]
    pub fn disabled(mut self, disabled: bool) -> Self {
        self.disabled = Some(disabled);
        self
    }
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

/// Settings for a [`KeyManager`], given to [`crate::KeygateBuilder::manager_config`].
///
/// It reads from configuration files; missing fields keep their defaults.
#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct ManagerConfig {
    /// Most active keys per account; `None` for no cap. Default: 50 (Bytekit).
    pub max_active_keys: Option<usize>,
    /// Prefix of public key ids. Default: `ak_`.
    pub id_prefix: String,
    /// When set, only these scopes may be given to keys.
    pub allowed_scopes: Option<ScopeSet>,
    /// Largest metadata of a key, in bytes of its JSON form. Default: 4096
    /// ([`DEFAULT_MAX_METADATA_BYTES`]).
    pub max_metadata_bytes: usize,
}

impl ManagerConfig {
    /// Sets [`ManagerConfig::max_active_keys`].
    #[must_use]
    pub fn max_active_keys(mut self, cap: Option<usize>) -> Self {
        self.max_active_keys = cap;
        self
    }

    /// Sets [`ManagerConfig::id_prefix`].
    #[must_use]
    pub fn id_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.id_prefix = prefix.into();
        self
    }

    /// Sets [`ManagerConfig::max_metadata_bytes`].
    #[must_use]
    pub fn max_metadata_bytes(mut self, bytes: usize) -> Self {
        self.max_metadata_bytes = bytes;
        self
    }

    /// Sets [`ManagerConfig::allowed_scopes`].
    #[must_use]
    pub fn allowed_scopes(mut self, scopes: Option<ScopeSet>) -> Self {
        self.allowed_scopes = scopes;
        self
    }
}

impl Default for ManagerConfig {
    fn default() -> Self {
        Self {
            max_active_keys: Some(50),
            id_prefix: "ak_".to_owned(),
            allowed_scopes: None,
            max_metadata_bytes: DEFAULT_MAX_METADATA_BYTES,
        }
    }
}

/// Creates and changes keys in a writable store, keeping the cache of its [`Keygate`]
/// in step: every change invalidates the key's cache entries before the call returns.
///
/// Its own methods are for server-side code and are not confined to what any key may
/// do (see [`KeyManager::acting_as`] for that), with one exception: when the
/// [`Keygate`] serves one environment, keys of another are never issued and are treated
/// as absent (`NotFound`, left out of lists), so deployments sharing a store stay apart.
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
    /// A manager over `store` keeping `gate`'s cache in step. Built only by
    /// [`Keygate::managed`], so the two always share one store.
    pub(crate) fn new(gate: Keygate, store: Arc<dyn KeyStoreWrite>, config: ManagerConfig) -> Self {
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

    /// Acts on behalf of an authenticated key, confined to it: it sees only keys of its
    /// own account and environment, and never makes or touches a key less restricted
    /// than itself (scopes, environment, IP allowlist, expiry, rate limit). See
    /// [`ActingManager`].
    pub fn acting_as<'a>(&'a self, actor: &'a Identity) -> ActingManager<'a> {
        ActingManager::new(self, actor)
    }

    pub(crate) fn actor<'a>(&'a self, identity: &'a Identity) -> Actor<'a> {
        Actor {
            identity,
            gate: &self.gate,
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

    /// Whether this deployment serves `record`: a deployment restricted to one
    /// environment treats keys of any other as absent (environment-neutral keys, which
    /// it accepts, stay visible).
    fn serves(&self, record: &KeyRecord) -> bool {
        match (self.gate.environment(), record.environment) {
            (Some(expected), Some(env)) => env == expected,
            _ => true,
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

    /// Creates a key in `account`. Returns the plaintext, once.
    pub async fn create(&self, account: AccountId, new: NewKey) -> Result<CreatedKey, ManageError> {
        self.create_as(account, new, None).await
    }

    pub(crate) async fn create_as(
        &self,
        account: AccountId,
        new: NewKey,
        actor: Option<&Actor<'_>>,
    ) -> Result<CreatedKey, ManageError> {
        let name = validate_name(&new.name)?;
        let scopes = self.scopes(&new.scopes)?;
        let ips = parse_ips(&new.ips)?;
        validate_rate_limit(new.rate_limit.as_ref())?;
        self.check_metadata(&new.metadata)?;
        let prefix = self.prefix(&new)?;
        let now = self.now();
        if new.expires_at.is_some_and(|t| t <= now) {
            return Err(ManageError::InvalidRequest(
                "expires_at: must be in the future".into(),
            ));
        }
        let key = self.gate.format().generate(&prefix);
        let mut record = KeyRecord {
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
        };
        if let Some(actor) = actor {
            actor.inherit(&mut record);
            actor.bounds(&record)?;
        }
        self.store
            .insert(record.clone(), self.config.max_active_keys, now)
            .await?;
        // A "not found" may be cached for this digest by a guess; it is not any more.
        self.gate.invalidate_local(&record);
        tracing::info!(target: "keygate::audit", action = "create", key_id = record.id.as_str(), account_id = record.account_id.as_str(), "api key created");
        Ok(CreatedKey {
            view: KeyView::from(&record),
            key,
        })
    }

    async fn record_in(
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
        self.record_in(account, id, actor)
            .await
            .map(|r| KeyView::from(&r))
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
        self.list_as(account, limit, cursor, None).await
    }

    pub(crate) async fn list_as(
        &self,
        account: &AccountId,
        limit: Option<usize>,
        cursor: Option<&str>,
        actor: Option<&Actor<'_>>,
    ) -> Result<Page, ManageError> {
        let limit = limit.unwrap_or(DEFAULT_PAGE_SIZE);
        if !(1..=MAX_PAGE_SIZE).contains(&limit) {
            return Err(ManageError::InvalidRequest(format!(
                "limit: must be between 1 and {MAX_PAGE_SIZE}"
            )));
        }
        let mut after = match cursor {
            None | Some("") => None,
            Some(c) => Some(decode_cursor(c)?),
        };
        // Keys this caller may not see are skipped, so a page may take several store
        // reads of a page and one key each.
        let mut records = Vec::with_capacity(limit + 1);
        loop {
            let want = limit + 1;
            let batch = self.store.list(account, after.as_ref(), want).await?;
            let exhausted = batch.len() < want;
            after = batch.last().map(|r| r.id.clone()).or(after);
            records.extend(
                batch
                    .into_iter()
                    .filter(|r| self.visible(account, r, actor)),
            );
            if exhausted || records.len() > limit {
                break;
            }
        }
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
        self.update_as(account, id, update, None).await
    }

    pub(crate) async fn update_as(
        &self,
        account: &AccountId,
        id: &KeyId,
        update: KeyUpdate,
        actor: Option<&Actor<'_>>,
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
        if let Some(metadata) = &update.metadata {
            self.check_metadata(metadata)?;
        }
        let _write = self.write.lock().await;
        let old = self.record_in(account, id, actor).await?;
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
        if let Some(actor) = actor {
            actor.bounds(&old)?;
            actor.bounds(&new)?;
        }
        new.updated_at = self.now();
        self.store.replace(new.clone()).await?;
        self.gate.invalidate_local(&old);
        tracing::info!(target: "keygate::audit", action = "update", key_id = id.as_str(), account_id = account.as_str(), "api key updated");
        Ok(KeyView::from(&new))
    }

    /// Revokes key `id` of `account`. Idempotent: revoking a revoked key succeeds and
    /// changes nothing. Once this returns, the key fails on the very next request in
    /// this process.
    pub async fn revoke(&self, account: &AccountId, id: &KeyId) -> Result<Revoked, ManageError> {
        self.revoke_as(account, id, None).await
    }

    pub(crate) async fn revoke_as(
        &self,
        account: &AccountId,
        id: &KeyId,
        actor: Option<&Actor<'_>>,
    ) -> Result<Revoked, ManageError> {
        let _write = self.write.lock().await;
        let old = self.record_in(account, id, actor).await?;
        if old.revoked_at.is_some() {
            self.gate.invalidate_local(&old);
            return Ok(Revoked::Already);
        }
        if let Some(actor) = actor {
            actor.bounds(&old)?;
        }
        let mut new = old.clone();
        let now = self.now();
        new.revoked_at = Some(now);
        new.updated_at = now;
        new.previous = None;
        self.store.replace(new).await?;
        self.gate.invalidate_local(&old);
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
        self.roll_as(account, id, grace, None).await
    }

    pub(crate) async fn roll_as(
        &self,
        account: &AccountId,
        id: &KeyId,
        grace: Option<Duration>,
        actor: Option<&Actor<'_>>,
    ) -> Result<CreatedKey, ManageError> {
        let _write = self.write.lock().await;
        let old = self.record_in(account, id, actor).await?;
        if old.revoked_at.is_some() {
            return Err(ManageError::Revoked);
        }
        if let Some(actor) = actor {
            actor.bounds(&old)?;
        }
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
        self.gate.invalidate_local(&old);
        self.gate.invalidate_local(&new);
        tracing::info!(target: "keygate::audit", action = "roll", key_id = id.as_str(), account_id = account.as_str(), grace_seconds = grace.map(|g| g.as_secs()), "api key rolled");
        Ok(CreatedKey {
            view: KeyView::from(&new),
            key,
        })
    }
}

fn truncate(s: &str) -> String {
    s.chars().take(32).collect()
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
