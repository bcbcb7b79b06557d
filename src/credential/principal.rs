//! [`Principal`]: who a verified credential names.

use std::time::SystemTime;

use crate::client_ip::IpAllowlist;
use crate::key::Environment;
use crate::scope::ScopeSet;
use crate::store::record::{AccountId, KeyId, RateLimit};

/// Who a credential accepted by a [`super::CredentialVerifier`] names: what a key record
/// is to an API key.
///
/// keygate turns it into an [`crate::Identity`]: `subject` is its
/// [`crate::Identity::key_id`], `account` its account, and scopes, IP allowlist and quota
/// are checked exactly as a key's are (the configured scope implications and read-only
/// scopes apply too).
///
/// In key management ([`crate::manage::ActingManager`], the admin API) it is confined like a key:
/// it sees and manages only keys of its `environment`, and every key it creates or
/// changes expires no later than it does (`expires_at`, a JWT's `exp`), with no wider
/// scopes, IP allowlist or quota. A principal with no environment acts in the
/// deployment's environment when it serves one; on a deployment serving several it may
/// not manage keys at all (403 `environment_required`) unless
/// [`crate::manage::ManagerConfig::environment_neutral_principals`] allows it. Keys it creates
/// or changes record it as `external:<subject>`, which no key id can be.
///
/// ```
/// use keygate::credential::Principal;
/// use keygate::scope::ScopeSet;
/// use keygate::store::RateLimit;
///
/// let principal = Principal::new("user_42".into(), "org_7".into())
///     .name("Ada (dashboard session)")
///     .scopes(ScopeSet::parse(["streams:write"]).unwrap())
///     .rate_limit(RateLimit::new(10, 20));
/// assert_eq!(principal.subject.as_str(), "user_42");
/// ```
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Principal {
    /// Who the credential names (a JWT's `sub`). Reported as the identity's key id and
    /// in audit events; the rate limit counts per subject.
    pub subject: KeyId,
    /// The account (tenant) it acts for.
    pub account: AccountId,
    /// A human-readable name; empty for none.
    pub name: String,
    /// The scopes it holds.
    pub scopes: ScopeSet,
    /// Addresses it may be used from; empty for any.
    pub ips: IpAllowlist,
    /// Its own quota; `None` for the deployment's default.
    pub rate_limit: Option<RateLimit>,
    /// Free-form data for the application (a JWT's claims), read with
    /// [`crate::Identity::metadata`].
    pub metadata: serde_json::Map<String, serde_json::Value>,
    /// When the credential stops being valid (a JWT's `exp`); `None` for never. Keys
    /// it creates or changes through management expire no later.
    pub expires_at: Option<SystemTime>,
    /// The environment it acts in, as a key's prefix gives a key's; `None` for none
    /// (see the type's docs for what management then allows).
    pub environment: Option<Environment>,
}

impl Principal {
    /// `subject` acting for `account`, with no name, scopes, IP restriction, quota
    /// override, metadata, expiry or environment.
    pub fn new(subject: KeyId, account: AccountId) -> Self {
        Self {
            subject,
            account,
            name: String::new(),
            scopes: ScopeSet::new(),
            ips: IpAllowlist::any(),
            rate_limit: None,
            metadata: serde_json::Map::new(),
            expires_at: None,
            environment: None,
        }
    }

    /// Sets the name.
    #[must_use]
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Sets the scopes.
    #[must_use]
    pub fn scopes(mut self, scopes: ScopeSet) -> Self {
        self.scopes = scopes;
        self
    }

    /// Sets the addresses it may be used from.
    #[must_use]
    pub fn ips(mut self, ips: IpAllowlist) -> Self {
        self.ips = ips;
        self
    }

    /// Sets its own quota.
    #[must_use]
    pub fn rate_limit(mut self, quota: RateLimit) -> Self {
        self.rate_limit = Some(quota);
        self
    }

    /// Sets the metadata.
    #[must_use]
    pub fn metadata(mut self, metadata: serde_json::Map<String, serde_json::Value>) -> Self {
        self.metadata = metadata;
        self
    }

    /// Sets when the credential stops being valid.
    #[must_use]
    pub fn expires_at(mut self, at: SystemTime) -> Self {
        self.expires_at = Some(at);
        self
    }

    /// Sets the environment it acts in.
    #[must_use]
    pub fn environment(mut self, environment: Environment) -> Self {
        self.environment = Some(environment);
        self
    }
}
