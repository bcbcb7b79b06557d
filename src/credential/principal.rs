//! [`Principal`]: who a verified credential names.

use crate::client_ip::IpAllowlist;
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
}

impl Principal {
    /// `subject` acting for `account`, with no name, scopes, IP restriction, quota
    /// override or metadata.
    pub fn new(subject: KeyId, account: AccountId) -> Self {
        Self {
            subject,
            account,
            name: String::new(),
            scopes: ScopeSet::new(),
            ips: IpAllowlist::any(),
            rate_limit: None,
            metadata: serde_json::Map::new(),
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
}
