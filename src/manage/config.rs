//! [`ManagerConfig`]: the settings of a [`crate::KeyManager`].

use serde::Serialize;

use super::DEFAULT_MAX_METADATA_BYTES;
use crate::scope::ScopeSet;

/// Settings for a [`crate::KeyManager`], given to [`crate::gate::KeygateBuilder::manager_config`].
///
/// It reads from configuration files; missing fields keep their defaults.
#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct ManagerConfig {
    /// Most active keys per account; `None` for no cap. Default: 50.
    ///
    /// A key counts while it is neither revoked nor expired
    /// ([`crate::store::KeyRecord::counts_towards_cap`]). A disabled key counts: it can be enabled
    /// again at any time, so enabling it never takes the account past the cap, and a
    /// create at the cap is refused (409 `api_key_limit_reached`) until a key is revoked
    /// or expires, whether or not some of the keys are disabled.
    pub max_active_keys: Option<usize>,
    /// Prefix of public key ids. Default: `ak_`.
    pub id_prefix: String,
    /// When set, only these scopes may be given to keys.
    pub allowed_scopes: Option<ScopeSet>,
    /// Largest metadata of a key, in bytes of its JSON form. Default: 4096
    /// ([`DEFAULT_MAX_METADATA_BYTES`]).
    pub max_metadata_bytes: usize,
    /// Whether an external principal with no environment (a JWT whose verifier maps
    /// none) may manage keys on a deployment serving several environments, seeing and
    /// changing keys of all of them. Default: `false`: every management action of such a
    /// principal, reads included, is refused with 403 `environment_required`. Give the
    /// verifier an environment instead where you can
    /// (`JwtVerifierBuilder::environment_claim`, feature `jwt`). A
    /// deployment of one environment never refuses: the principal acts in it.
    pub environment_neutral_principals: bool,
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

    /// Sets [`ManagerConfig::environment_neutral_principals`].
    #[must_use]
    pub fn environment_neutral_principals(mut self, allow: bool) -> Self {
        self.environment_neutral_principals = allow;
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
            environment_neutral_principals: false,
        }
    }
}
