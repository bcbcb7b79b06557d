//! The inputs and outputs of management calls.

use std::time::SystemTime;

use serde::Serialize;

use crate::client_ip::IpAllowlist;
use crate::key::{ApiKey, Environment};
use crate::leaks::LeakView;
use crate::scope::ScopeSet;
use crate::store::record::{AccountId, KeyId, KeyRecord, RateLimit};

/// The input of [`crate::KeyManager::create`].
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct NewKey {
    /// 1 to 50 characters, at least one of them visible, with no control or
    /// bidirectional-formatting characters.
    pub name: String,
    /// Scope names.
    pub scopes: Vec<String>,
    /// Addresses and CIDR networks; empty for any (or, through an [`crate::manage::ActingManager`],
    /// for the acting key's own allowlist).
    pub ips: Vec<String>,
    /// Expiry (through an [`crate::manage::ActingManager`], `None` is the acting key's own). A
    /// time already past is accepted, as in [`KeyUpdate::expires_at`]: the key is created
    /// expired (`expired_api_key`) and does not count towards the active-key cap.
    pub expires_at: Option<SystemTime>,
    /// Per-key quota; `None` for the deployment default (through an [`crate::manage::ActingManager`],
    /// the acting key's own quota when it has one).
    pub rate_limit: Option<RateLimit>,
    /// Free-form metadata, at most [`crate::manage::ManagerConfig::max_metadata_bytes`] as JSON.
    pub metadata: serde_json::Map<String, serde_json::Value>,
    /// The environment, which picks the prefix. `None` picks the deployment's default
    /// ([`crate::Keygate::default_environment`]): its environment when it has one, the
    /// one environment of its prefixes when they name only one and none is neutral, and
    /// otherwise an environment-neutral prefix.
    pub environment: Option<Environment>,
    /// An explicit prefix, overriding `environment`.
    pub prefix: Option<String>,
    /// Credits, quotas and plan (see [`crate::metering`]); through an
    /// [`crate::manage::ActingManager`], a metered caller's key draws from the caller's
    /// own balances or the creation is refused.
    pub usage: crate::metering::UsageLimits,
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

    /// Gives the key its own credits.
    pub fn credits(mut self, credits: crate::metering::Credits) -> Self {
        self.usage.credits = Some(credits);
        self
    }

    /// Also limits the key's requests per period (replacing a quota of that period).
    pub fn quota(mut self, quota: crate::metering::Quota) -> Self {
        self.usage.quotas.retain(|q| q.period != quota.period);
        self.usage.quotas.push(quota);
        self
    }

    /// Puts the key on a plan, by name.
    pub fn plan(mut self, plan: impl Into<String>) -> Self {
        self.usage.plan = Some(plan.into());
        self
    }
}

/// The input of [`crate::KeyManager::update`]: `None` leaves a field as it is.
///
/// ```
/// use keygate::manage::KeyUpdate;
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
    /// New metadata, replacing the old.
    pub metadata: Option<serde_json::Map<String, serde_json::Value>>,
    /// An RFC 7396 JSON merge patch applied to the metadata (after `metadata`, when both
    /// are set): a member set to `null` is removed, an object is merged recursively, any
    /// other value replaces the member. It is applied to the stored metadata as read in
    /// the same compare-and-set as the rest of the update, so concurrent patches of
    /// different members all survive. The patch and the result are each held to
    /// [`crate::manage::ManagerConfig::max_metadata_bytes`].
    pub metadata_patch: Option<serde_json::Map<String, serde_json::Value>>,
    /// Disable (`true`) or enable (`false`) the key.
    pub disabled: Option<bool>,
    /// New credits, `Some(None)` to remove them. New credits restart the balance at
    /// their `remaining`.
    pub credits: Option<Option<crate::metering::Credits>>,
    /// New quotas, replacing the old (empty for none).
    pub quotas: Option<Vec<crate::metering::Quota>>,
    /// New plan, `Some(None)` to leave any plan.
    pub plan: Option<Option<String>>,
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

    /// Merges `patch` into the metadata as an RFC 7396 JSON merge patch (see
    /// [`KeyUpdate::metadata_patch`]).
    ///
    /// ```
    /// use keygate::manage::KeyUpdate;
    /// use serde_json::json;
    ///
    /// let patch = json!({"team": "payments", "old": null});
    /// let update = KeyUpdate::default().merge_metadata(patch.as_object().unwrap().clone());
    /// assert!(update.metadata_patch.is_some());
    /// ```
    #[must_use]
    pub fn merge_metadata(mut self, patch: serde_json::Map<String, serde_json::Value>) -> Self {
        self.metadata_patch = Some(patch);
        self
    }

    /// Disables (`true`) or enables (`false`) the key.
    #[must_use]
    pub fn disabled(mut self, disabled: bool) -> Self {
        self.disabled = Some(disabled);
        self
    }

    /// Sets (`Some`, restarting the balance) or removes (`None`) the key's own credits.
    #[must_use]
    pub fn credits(mut self, credits: Option<crate::metering::Credits>) -> Self {
        self.credits = Some(credits);
        self
    }

    /// Replaces the key's own quotas.
    #[must_use]
    pub fn quotas(mut self, quotas: Vec<crate::metering::Quota>) -> Self {
        self.quotas = Some(quotas);
        self
    }

    /// Moves the key to a plan (`Some`) or off any plan (`None`).
    #[must_use]
    pub fn plan(mut self, plan: Option<String>) -> Self {
        self.plan = Some(plan);
        self
    }
}

/// A key as management shows it: no plaintext and no digest, ever.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(feature = "admin", derive(utoipa::ToSchema))]
pub struct KeyView {
    /// Public id.
    #[cfg_attr(feature = "admin", schema(value_type = String, example = "ak_0Q5kR2xvT9mB7cW3"))]
    pub id: KeyId,
    /// Owning account.
    #[cfg_attr(feature = "admin", schema(value_type = String))]
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
    #[cfg_attr(feature = "admin", schema(value_type = Vec<crate::scope::Scope>))]
    pub scopes: ScopeSet,
    /// IP allowlist: addresses and CIDR networks; empty for any address.
    #[cfg_attr(feature = "admin", schema(value_type = Vec<String>))]
    pub ips: IpAllowlist,
    /// Expiry (RFC 3339).
    #[cfg_attr(feature = "admin", schema(format = DateTime))]
    pub expires_at: Option<String>,
    /// Last use (RFC 3339), tracked coarsely.
    #[cfg_attr(feature = "admin", schema(format = DateTime))]
    pub last_used_at: Option<String>,
    /// Creation (RFC 3339).
    #[cfg_attr(feature = "admin", schema(format = DateTime))]
    pub created_at: String,
    /// Last change (RFC 3339).
    #[cfg_attr(feature = "admin", schema(format = DateTime))]
    pub updated_at: String,
    /// Revocation (RFC 3339).
    #[cfg_attr(feature = "admin", schema(format = DateTime))]
    pub revoked_at: Option<String>,
    /// Whether the key is disabled.
    pub disabled: bool,
    /// Per-key quota; `null` for the deployment default.
    pub rate_limit: Option<RateLimit>,
    /// Metadata.
    #[cfg_attr(feature = "admin", schema(value_type = Object))]
    pub metadata: serde_json::Map<String, serde_json::Value>,
    /// The key's own credits, quotas and plan, with balances as of now; `null` when it
    /// has none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<super::limits::UsageView>,
    /// Its account's, read-only (set by server-side code only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account_usage: Option<super::limits::UsageView>,
    /// The first report of the key's secret as leaked, by a secret scanner; `null` when
    /// none (see [`crate::leaks`]).
    pub leak: Option<LeakView>,
}

/// RFC 3339 with milliseconds, UTC. Times before 1970 (an expiry far in the past is
/// accepted) are written too.
pub(crate) fn rfc3339(at: SystemTime) -> String {
    match at.duration_since(std::time::UNIX_EPOCH) {
        Ok(_) => humantime::format_rfc3339_millis(at).to_string(),
        Err(e) => super::validate::rfc3339_before_epoch(e.duration()),
    }
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
            usage: None,
            account_usage: None,
            leak: r.leak.as_ref().map(LeakView::from),
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

/// Whether [`crate::KeyManager::revoke`] changed anything.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Revoked {
    /// The key is now revoked.
    Now,
    /// It was revoked already; nothing changed.
    Already,
}
