//! Which keys a listing returns, and in which order.

use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::store::record::{KeyId, KeyRecord};

/// Which keys a listing returns, by revocation. The default is [`KeyStatusFilter::Active`].
///
/// "Active" here means *not revoked*: a disabled or expired key is still listed under
/// `Active`, since it can still be enabled or given a new expiry, while a revoked key is
/// final and is listed only on request.
///
/// ```
/// use keygate::store::KeyStatusFilter;
///
/// assert_eq!(KeyStatusFilter::default(), KeyStatusFilter::Active);
/// assert_eq!("revoked".parse::<KeyStatusFilter>(), Ok(KeyStatusFilter::Revoked));
/// assert!("deleted".parse::<KeyStatusFilter>().is_err());
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "admin", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum KeyStatusFilter {
    /// Keys that are not revoked (usable, disabled or expired).
    #[default]
    Active,
    /// Revoked keys only.
    Revoked,
    /// Every key.
    All,
}

impl KeyStatusFilter {
    /// `"active"`, `"revoked"` or `"all"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            KeyStatusFilter::Active => "active",
            KeyStatusFilter::Revoked => "revoked",
            KeyStatusFilter::All => "all",
        }
    }

    /// Whether `record` belongs in a listing with this filter.
    pub fn matches(self, record: &KeyRecord) -> bool {
        match self {
            KeyStatusFilter::Active => record.revoked_at.is_none(),
            KeyStatusFilter::Revoked => record.revoked_at.is_some(),
            KeyStatusFilter::All => true,
        }
    }
}

impl std::fmt::Display for KeyStatusFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for KeyStatusFilter {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "active" => Ok(KeyStatusFilter::Active),
            "revoked" => Ok(KeyStatusFilter::Revoked),
            "all" => Ok(KeyStatusFilter::All),
            other => Err(format!(
                "unknown status '{}': expected 'active', 'revoked' or 'all'",
                other.chars().take(32).collect::<String>()
            )),
        }
    }
}

/// A place in an account's listing order, which is by creation time, then by id.
///
/// The ids one [`crate::KeyManager`] makes grow with creation, also within one
/// millisecond, so keys created at the same instant list in the order they were created.
/// A position holds both values, so a page can continue after a key that was deleted
/// since.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub struct ListPosition {
    /// The creation time of the last key listed.
    pub created_at: SystemTime,
    /// Its id.
    pub id: KeyId,
}

impl ListPosition {
    /// The position of a key created at `created_at` with id `id`.
    pub fn new(created_at: SystemTime, id: KeyId) -> Self {
        Self { created_at, id }
    }

    /// The position of `record`.
    pub fn of(record: &KeyRecord) -> Self {
        Self::new(record.created_at, record.id.clone())
    }

    /// Whether `record` lists after this position.
    pub fn precedes(&self, record: &KeyRecord) -> bool {
        (self.created_at, &self.id) < (record.created_at, &record.id)
    }
}
