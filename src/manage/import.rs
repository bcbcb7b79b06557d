//! Importing keys that keygate did not generate.

use std::time::SystemTime;

use zeroize::Zeroizing;

use super::validate::{parse_ips, validate_name};
use super::{millis, KeyManager, KeyView, ManageError};
use crate::key::{Environment, KeyDigest};
use crate::store::record::{AccountId, KeyId, KeyRecord, RateLimit};
use crate::store::StoreError;

/// The secret of an [`ImportedKey`].
#[derive(Clone)]
enum Secret {
    /// The key itself.
    Plaintext(Zeroizing<String>),
    /// Only its SHA-256, from a system that stored nothing else, with its prefix.
    Digest { digest: KeyDigest, prefix: String },
}

/// A key made by another system, for [`KeyManager::import`]: its plaintext, or only its
/// SHA-256 digest, and what it keeps (id, name, scopes, creation time, environment).
///
/// `Debug` never shows the plaintext or the digest.
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use keygate::key::{Alphabet, Checksum, KeyBody};
/// use keygate::{Environment, Keygate, MemoryStore};
/// use keygate::key::{KeyFormat, KeyPrefix};
/// use keygate::manage::ImportedKey;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), keygate::ManageError> {
/// // Keys made elsewhere: `sk_live_` and 16 hex characters.
/// let body = KeyBody::new(Alphabet::Hex, 16..=16, Checksum::Off).unwrap();
/// let prefix = KeyPrefix::new("sk_live_", Some(Environment::Live)).unwrap().with_body(body);
/// let (gate, manager) = Keygate::managed(MemoryStore::new())
///     .format(KeyFormat::new([prefix]).unwrap())
///     .build();
/// let imported = ImportedKey::plaintext("CDN (migrated)", "sk_live_1234567890abcdef")
///     .id("key_42".into())
///     .scopes(["cdn:read"])
///     .created_at(UNIX_EPOCH + Duration::from_secs(1_600_000_000));
/// let view = manager.import("acct_1".into(), imported).await?;
/// assert_eq!(view.id.as_str(), "key_42");
/// assert_eq!(view.environment, Some(Environment::Live));
/// assert!(gate.verify_key("sk_live_1234567890abcdef").await.is_ok());
/// # Ok(()) }
/// ```
#[derive(Clone)]
#[non_exhaustive]
pub struct ImportedKey {
    secret: Secret,
    /// The key's id in the other system, kept as it is (1 to 64 ASCII letters, digits and
    /// `_`); `None` for a new keygate id.
    pub id: Option<KeyId>,
    /// Name, 1 to 50 characters.
    pub name: String,
    /// Scope names.
    pub scopes: Vec<String>,
    /// Creation time; `None` for now.
    pub created_at: Option<SystemTime>,
    /// Environment. When the key's prefix (a plaintext's, or the one given with a digest)
    /// is one of the deployment's, it must agree with the prefix's and defaults to it.
    pub environment: Option<Environment>,
    /// Expiry, if any.
    pub expires_at: Option<SystemTime>,
    /// IP allowlist; empty for any address.
    pub ips: Vec<String>,
    /// Per-key quota.
    pub rate_limit: Option<RateLimit>,
    /// Metadata.
    pub metadata: serde_json::Map<String, serde_json::Value>,
}

impl std::fmt::Debug for ImportedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let secret = match &self.secret {
            Secret::Plaintext(_) => "plaintext [redacted]",
            Secret::Digest { .. } => "digest [redacted]",
        };
        f.debug_struct("ImportedKey")
            .field("secret", &secret)
            .field("id", &self.id)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl ImportedKey {
    fn with(secret: Secret, name: impl Into<String>) -> Self {
        Self {
            secret,
            id: None,
            name: name.into(),
            scopes: Vec::new(),
            created_at: None,
            environment: None,
            expires_at: None,
            ips: Vec::new(),
            rate_limit: None,
            metadata: serde_json::Map::new(),
        }
    }

    /// A key given in plaintext. It must match one of the deployment's formats
    /// ([`crate::key::KeyFormat::parse`]), which gives its prefix and environment.
    pub fn plaintext(name: impl Into<String>, key: impl Into<String>) -> Self {
        Self::with(Secret::Plaintext(Zeroizing::new(key.into())), name)
    }

    /// A key known only by the SHA-256 of its plaintext, as systems that hashed keys
    /// store them; `prefix` is shown in listings. When `prefix` starts with one of the
    /// deployment's prefixes, the key's environment is that prefix's, as for a plaintext.
    /// Refused by a deployment with a pepper ([`crate::key::KeyHasher::with_pepper`]), whose
    /// digests are not plain SHA-256.
    pub fn sha256_digest(
        name: impl Into<String>,
        digest: KeyDigest,
        prefix: impl Into<String>,
    ) -> Self {
        let prefix = prefix.into();
        Self::with(Secret::Digest { digest, prefix }, name)
    }

    /// Keeps this id.
    #[must_use]
    pub fn id(mut self, id: KeyId) -> Self {
        self.id = Some(id);
        self
    }

    /// Sets the scopes.
    #[must_use]
    pub fn scopes<I: IntoIterator<Item = S>, S: Into<String>>(mut self, scopes: I) -> Self {
        self.scopes = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// Keeps this creation time.
    #[must_use]
    pub fn created_at(mut self, at: SystemTime) -> Self {
        self.created_at = Some(at);
        self
    }

    /// Sets the environment.
    #[must_use]
    pub fn environment(mut self, environment: Environment) -> Self {
        self.environment = Some(environment);
        self
    }

    /// Sets the expiry.
    #[must_use]
    pub fn expires_at(mut self, at: SystemTime) -> Self {
        self.expires_at = Some(at);
        self
    }

    /// Sets the IP allowlist (addresses and CIDR networks).
    #[must_use]
    pub fn ips<I: IntoIterator<Item = S>, S: Into<String>>(mut self, ips: I) -> Self {
        self.ips = ips.into_iter().map(Into::into).collect();
        self
    }

    /// Sets a per-key quota.
    #[must_use]
    pub fn rate_limit(mut self, limit: RateLimit) -> Self {
        self.rate_limit = Some(limit);
        self
    }

    /// Sets the metadata.
    #[must_use]
    pub fn metadata(mut self, metadata: serde_json::Map<String, serde_json::Value>) -> Self {
        self.metadata = metadata;
        self
    }
}

fn invalid(message: impl Into<String>) -> ManageError {
    ManageError::InvalidRequest(message.into())
}

impl KeyManager {
    /// Stores a key made by another system, so that it verifies from now on, keeping
    /// its id, name, scopes, creation time and environment.
    ///
    /// A plaintext must match one of the deployment's formats (a per-prefix
    /// [`crate::key::KeyBody`] describes keys of other shapes); its environment is its
    /// prefix's. A digest import needs a deployment without a pepper; when its prefix is
    /// one of the deployment's, its environment is that prefix's too, and a digest
    /// labelled with another environment is refused. Either way the
    /// deployment's environment rules apply as for [`create`](Self::create), and so does
    /// the cap on active keys. A key whose id or secret is already stored is refused with
    /// [`ManageError::AlreadyExists`] and nothing is written. The plaintext is never
    /// returned, logged or stored.
    pub async fn import(
        &self,
        account: AccountId,
        key: ImportedKey,
    ) -> Result<KeyView, ManageError> {
        let name = validate_name(&key.name)?;
        let scopes = self.scopes(&key.scopes)?;
        let ips = parse_ips(&key.ips)?;
        super::validate::validate_rate_limit(key.rate_limit.as_ref())?;
        self.check_metadata(&key.metadata)?;
        let (digest, prefix, start, prefix_env) = match &key.secret {
            Secret::Plaintext(text) => {
                let parsed = self
                    .gate
                    .format()
                    .parse(text)
                    .map_err(|e| invalid(format!("key: not in any accepted format ({e})")))?;
                let prefix = parsed.prefix();
                let start_len = (prefix.as_str().len() + 4).min(text.len());
                (
                    self.gate.hasher().digest(text),
                    prefix.as_str().to_owned(),
                    text[..start_len].to_owned(),
                    Some(prefix.environment()),
                )
            }
            Secret::Digest { digest, prefix } => {
                if self.gate.hasher().is_peppered() {
                    return Err(invalid(
                        "key: this deployment peppers its digests; import the plaintext",
                    ));
                }
                let given: String = prefix.chars().take(crate::key::MAX_PREFIX_LEN).collect();
                // One of the deployment's prefixes decides the key's environment, as a
                // plaintext's does: the key verifies, rolls and is managed as that.
                match self.gate.format().matching_prefix(&given) {
                    Some(known) => (
                        *digest,
                        known.as_str().to_owned(),
                        given,
                        Some(known.environment()),
                    ),
                    None => (*digest, given.clone(), given, None),
                }
            }
        };
        let environment = match (prefix_env, key.environment) {
            (Some(from_prefix), Some(given)) if from_prefix != Some(given) => {
                let belongs =
                    from_prefix.map_or("environment-neutral keys".into(), |e| format!("{e} keys"));
                return Err(invalid(format!(
                    "environment: the key's prefix '{prefix}' is for {belongs}, not {given} \
                     keys; import it with the prefix's environment or none"
                )));
            }
            (Some(from_prefix), _) => from_prefix,
            (None, given) => given,
        };
        match (environment, self.gate.environment()) {
            (Some(e), Some(expected)) if e != expected => {
                return Err(invalid(format!(
                    "environment: this deployment only accepts {expected} keys"
                )))
            }
            (None, Some(expected)) if !self.gate.accepts_environment_neutral_keys() => {
                return Err(invalid(format!(
                    "environment: this deployment only accepts {expected} keys, not \
                     environment-neutral ones"
                )))
            }
            _ => {}
        }
        let now = self.now();
        let created_at = key.created_at.unwrap_or(now);
        if created_at > now {
            return Err(invalid("created_at: must not be in the future"));
        }
        if created_at < std::time::UNIX_EPOCH {
            return Err(invalid("created_at: must be after 1970"));
        }
        let id = match key.id {
            Some(id) => KeyId::parse(id.as_str())
                .ok_or_else(|| invalid("id: use 1 to 64 ASCII letters, digits and '_'"))?,
            None => KeyId::new(self.ids.next(&self.config.id_prefix, millis(now))),
        };
        let mut record = KeyRecord::new(id, account, digest, created_at);
        record.name = name;
        record.prefix = prefix;
        record.start = start;
        record.environment = environment;
        record.scopes = scopes;
        record.ips = ips;
        record.expires_at = key.expires_at;
        record.rate_limit = key.rate_limit;
        record.metadata = key.metadata;
        record.updated_at = now;
        // Clear refusals for the usual duplicates; the store's own check below catches
        // a concurrent import of the same key.
        if self.store.get(&record.id).await?.is_some() {
            return Err(ManageError::AlreadyExists(
                "id: a key with this id exists".into(),
            ));
        }
        if self.store.find_by_digest(&record.digest).await?.is_some() {
            return Err(ManageError::AlreadyExists(
                "key: this key is already stored".into(),
            ));
        }
        match self
            .store_insert(record.clone(), self.config.max_active_keys, now, None)
            .await
        {
            Err(StoreError::Conflict(_)) => {
                return Err(ManageError::AlreadyExists(
                    "a key with this id or secret already exists".into(),
                ))
            }
            other => other?,
        }
        // A "not found" may be cached for this digest; it is not any more.
        self.gate.invalidate_local(&record);
        tracing::info!(target: "keygate::audit", action = "import", key_id = record.id.as_str(), account_id = record.account_id.as_str(), "api key imported");
        Ok(KeyView::from(&record))
    }
}
