//! What a store keeps about a key.

use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::client_ip::IpAllowlist;
use crate::key::digest::KeyDigest;
use crate::key::Environment;
use crate::leaks::KeyLeak;
use crate::scope::ScopeSet;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Arc<str>);

        impl $name {
            /// Wraps an identifier.
            pub fn new(id: impl Into<Arc<str>>) -> Self {
                Self(id.into())
            }

            /// The identifier text.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// The shared identifier text (cloning it only bumps a count).
            pub(crate) fn shared(&self) -> &Arc<str> {
                &self.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&*self.0, f)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                Self::new(s)
            }
        }
    };
}

impl KeyId {
    /// Accepts text that can be a key id (1 to 64 characters of ASCII letters, digits
    /// and `_`), for ids and cursors that arrive from clients.
    pub fn parse(text: &str) -> Option<Self> {
        let ok = (1..=64).contains(&text.len())
            && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        ok.then(|| Self::new(text))
    }
}

id_type!(
    /// A key's public, non-secret identifier, such as `ak_0Q5kR2xv…`. It names the key in
    /// management calls, logs and identities, and survives a roll.
    KeyId
);
id_type!(
    /// The account (tenant) that owns a key.
    AccountId
);

/// A rate-limit quota: a sustained rate and a burst.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "admin", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    /// Requests replenished per second; at least 1.
    #[serde(deserialize_with = "super::whole_number::whole")]
    #[cfg_attr(feature = "admin", schema(minimum = 1))]
    pub per_second: u32,
    /// Requests that may be made at once from a full bucket; at least 1.
    #[serde(deserialize_with = "super::whole_number::whole")]
    #[cfg_attr(feature = "admin", schema(minimum = 1))]
    pub burst: u32,
}

impl RateLimit {
    /// The default quota: 1000 requests per second with a burst of 2000.
    pub const DEFAULT: RateLimit = RateLimit {
        per_second: 1000,
        burst: 2000,
    };

    /// A quota; both numbers must be at least 1 to be usable.
    pub const fn new(per_second: u32, burst: u32) -> Self {
        Self { per_second, burst }
    }

    /// Whether both numbers are at least 1.
    pub fn is_valid(&self) -> bool {
        self.per_second >= 1 && self.burst >= 1
    }
}

impl Default for RateLimit {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// An old digest that still verifies until a deadline, after a roll with a grace period.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GraceDigest {
    /// The digest of the previous secret.
    pub digest: KeyDigest,
    /// When the previous secret stops working.
    pub until: SystemTime,
}

/// Everything a store keeps about one key. Never holds the plaintext.
///
/// Build one with [`KeyRecord::new`] and set the other fields, which are public:
///
/// ```
/// use std::time::SystemTime;
/// use keygate::key::KeyHasher;
/// use keygate::store::KeyRecord;
///
/// let now = SystemTime::now();
/// let digest = KeyHasher::sha256().digest("sk_test_example");
/// let mut record = KeyRecord::new("ak_1".into(), "acct_1".into(), digest, now);
/// record.name = "imported key".into();
/// assert!(record.is_active(now));
/// ```
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct KeyRecord {
    /// Public identifier.
    pub id: KeyId,
    /// Owning account.
    pub account_id: AccountId,
    /// Human name, 1 to 50 characters.
    pub name: String,
    /// The key's prefix, such as `sk_live_`.
    pub prefix: String,
    /// The prefix and the first four secret characters, to recognise the key in a list.
    pub start: String,
    /// The environment; `None` for environment-neutral keys.
    pub environment: Option<Environment>,
    /// Scopes granted directly (implications are applied at check time).
    pub scopes: ScopeSet,
    /// Addresses the key may be used from; empty for any.
    pub ips: IpAllowlist,
    /// When the key stops working, if ever.
    pub expires_at: Option<SystemTime>,
    /// When the key was revoked, if it was.
    pub revoked_at: Option<SystemTime>,
    /// A disabled key is refused but can be enabled again.
    pub disabled: bool,
    /// This key's own quota; `None` for the deployment default.
    pub rate_limit: Option<RateLimit>,
    /// Free-form data for the application.
    pub metadata: serde_json::Map<String, serde_json::Value>,
    /// Credits, quotas and plan, the key's own and its account's (see
    /// [`crate::metering`]).
    pub usage: crate::metering::KeyUsage,
    /// SHA-256 digest of the current secret.
    pub digest: KeyDigest,
    /// The previous secret's digest, during a roll's grace period.
    pub previous: Option<GraceDigest>,
    /// Creation time.
    pub created_at: SystemTime,
    /// Last change.
    pub updated_at: SystemTime,
    /// Last successful authentication, tracked coarsely.
    pub last_used_at: Option<SystemTime>,
    /// Changes with every [`crate::KeyStoreWrite::replace`]: 0 for a new record, and the
    /// store adds one on each replace. A replace succeeds only when this equals the
    /// stored version (compare-and-set); see [`crate::StoreError::VersionConflict`].
    pub version: u64,
    /// The first report of this key's secret as leaked, if any (see [`crate::leaks`]);
    /// cleared by a roll.
    pub leak: Option<KeyLeak>,
}

impl KeyRecord {
    /// An active key with this id, account, digest and creation time, and nothing else:
    /// no name, prefix, scopes, IP restriction, expiry or quota override.
    pub fn new(
        id: KeyId,
        account_id: AccountId,
        digest: KeyDigest,
        created_at: SystemTime,
    ) -> Self {
        Self {
            id,
            account_id,
            name: String::new(),
            prefix: String::new(),
            start: String::new(),
            environment: None,
            scopes: ScopeSet::new(),
            ips: IpAllowlist::any(),
            expires_at: None,
            revoked_at: None,
            disabled: false,
            rate_limit: None,
            metadata: serde_json::Map::new(),
            usage: crate::metering::KeyUsage::default(),
            digest,
            previous: None,
            created_at,
            updated_at: created_at,
            last_used_at: None,
            version: 0,
            leak: None,
        }
    }

    /// Whether the key is usable at `now`: not revoked, disabled or expired.
    pub fn is_active(&self, now: SystemTime) -> bool {
        self.revoked_at.is_none() && !self.disabled && self.expires_at.is_none_or(|t| now < t)
    }

    /// Whether the key counts towards the cap on active keys at `now`: it is neither
    /// revoked nor expired. A disabled key counts, as it can be enabled again without a
    /// new key being created; see [`crate::manage::ManagerConfig::max_active_keys`].
    pub fn counts_towards_cap(&self, now: SystemTime) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|t| now < t)
    }

    /// The digests that currently index this key: the current one, and the previous one
    /// while its grace period lasts.
    pub fn digests(&self) -> impl Iterator<Item = KeyDigest> + '_ {
        std::iter::once(self.digest).chain(self.previous.map(|p| p.digest))
    }
}
