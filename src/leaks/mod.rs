//! Leaked keys: what a secret scanner reported, what keygate does about it, and what
//! the key's record keeps.
//!
//! A secret scanner (GitHub's secret-scanning partner program, say) finds a key in a
//! public place and reports it. [`crate::KeyManager::report_leak`] handles one reported
//! token:
//!
//! 1. **Offline check.** The token must match one of the deployment's key formats
//!    (prefix, length, alphabet, checksum), so junk and near-misses never reach the store
//!    ([`LeakOutcome::Malformed`]).
//! 2. **Lookup by digest, in every account** and every environment: a leaked test key is
//!    a leaked key too. No key with that secret is [`LeakOutcome::Unknown`] (never
//!    issued, deleted, or rolled out of its grace period).
//! 3. **The [`LeakPolicy`]**: revoke the key (the default), disable it, or only record
//!    the leak. When the leaked secret is a rolled key's *previous* secret, still valid
//!    during its grace period, revoking or disabling ends that grace period instead: the
//!    leaked secret stops working and the current one keeps working.
//! 4. **The record.** The first report is kept on the key as a [`KeyLeak`] (time, token
//!    type, URL and source; never the token, its body or its digest: the token's text is
//!    cut out of the URL and source should it appear there), shown by the management
//!    API as `leak`, and emitted as an audit event (`keygate::audit`, `action = "leak"`).
//!
//! **Idempotent.** Scanners retry. A report for a key whose leak is already recorded and
//! whose policy is already applied changes nothing and emits nothing
//! ([`LeakChange::Unchanged`]); across instances the change is a compare-and-set on the
//! key's version, so two instances handling the same report at once apply it once.
//! Rolling a key clears its leak record: the leaked secret is gone (the audit log keeps
//! the history).
//!
//! Every found key, whatever its state, is a real key of this deployment: a scanner's
//! `true_positive`. The HTTP endpoint for GitHub's partner program is
//! `keygate::admin::scanning` (feature `scanning`).

mod config;

use std::time::SystemTime;

use serde::{Deserialize, Serialize};

pub use config::SecretScanningConfig;

use crate::store::record::{AccountId, KeyId};

/// Longest URL kept from a report, in characters; longer ones are cut.
pub const MAX_LEAK_URL_LEN: usize = 2048;
/// Longest token type or source kept from a report, in characters.
pub const MAX_LEAK_LABEL_LEN: usize = 100;

/// What keygate does with a key reported as leaked.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum LeakPolicy {
    /// Revoke the key: refused with 401 `revoked_api_key` from its very next request.
    /// The default.
    #[default]
    Revoke,
    /// Disable the key: refused with 401 `disabled_api_key` until enabled again.
    Disable,
    /// Only record the leak on the key (and emit the audit event); the key keeps
    /// working.
    RecordOnly,
}

impl LeakPolicy {
    /// `"revoke"`, `"disable"` or `"record_only"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            LeakPolicy::Revoke => "revoke",
            LeakPolicy::Disable => "disable",
            LeakPolicy::RecordOnly => "record_only",
        }
    }
}

impl std::str::FromStr for LeakPolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "revoke" => Ok(LeakPolicy::Revoke),
            "disable" => Ok(LeakPolicy::Disable),
            "record_only" => Ok(LeakPolicy::RecordOnly),
            other => Err(format!(
                "unknown leak policy '{}': expected revoke, disable or record_only",
                other.chars().take(32).collect::<String>()
            )),
        }
    }
}

/// Where a scanner found a token: its report, without the token.
///
/// ```
/// use keygate::leaks::LeakReport;
///
/// let report = LeakReport::new("keygate_api_key", "https://github.com/o/r/blob/main/x", "content");
/// assert_eq!(report.source(), "content");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeakReport {
    token_type: String,
    url: String,
    source: String,
}

impl LeakReport {
    /// A report of a token of `token_type` found at `url` (may be empty) in `source`
    /// (`content`, `commit`, `npm`, ...). Control characters are dropped and each value
    /// is cut to [`MAX_LEAK_URL_LEN`] or [`MAX_LEAK_LABEL_LEN`] characters.
    pub fn new(
        token_type: impl Into<String>,
        url: impl Into<String>,
        source: impl Into<String>,
    ) -> Self {
        Self {
            token_type: clean(&token_type.into(), MAX_LEAK_LABEL_LEN),
            url: clean(&url.into(), MAX_LEAK_URL_LEN),
            source: clean(&source.into(), MAX_LEAK_LABEL_LEN),
        }
    }

    /// The scanner's name for the token's kind.
    pub fn token_type(&self) -> &str {
        &self.token_type
    }

    /// Where the token was found; may be empty.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// What kind of place it was found in.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// This report as kept on a key found at `at`, with `token` cut out of every field.
    pub(crate) fn to_record(&self, token: &str, at: SystemTime) -> KeyLeak {
        KeyLeak {
            detected_at: at,
            token_type: redact(&self.token_type, token),
            url: redact(&self.url, token),
            source: redact(&self.source, token),
        }
    }
}

/// A leak as kept on a key's record ([`crate::store::KeyRecord::leak`]): the first
/// report of it. Holds no token, key body or digest.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct KeyLeak {
    /// When keygate handled the report.
    pub detected_at: SystemTime,
    /// The scanner's name for the token's kind.
    pub token_type: String,
    /// Where it was found; may be empty.
    pub url: String,
    /// What kind of place it was found in (`content`, `commit`, `npm`, ...).
    pub source: String,
}

impl KeyLeak {
    /// A leak record; for stores that read one back.
    pub fn new(detected_at: SystemTime, token_type: String, url: String, source: String) -> Self {
        Self {
            detected_at,
            token_type,
            url,
            source,
        }
    }
}

/// A [`KeyLeak`] as management shows it ([`crate::KeyView::leak`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "admin", derive(utoipa::ToSchema))]
#[non_exhaustive]
pub struct LeakView {
    /// When keygate handled the first report (RFC 3339).
    #[cfg_attr(feature = "admin", schema(format = DateTime))]
    pub detected_at: String,
    /// The scanner's name for the token's kind.
    pub token_type: String,
    /// Where it was found; may be empty.
    pub url: String,
    /// What kind of place it was found in (`content`, `commit`, `npm`, ...).
    pub source: String,
}

impl From<&KeyLeak> for LeakView {
    fn from(leak: &KeyLeak) -> Self {
        Self {
            detected_at: crate::manage::rfc3339(leak.detected_at),
            token_type: leak.token_type.clone(),
            url: leak.url.clone(),
            source: leak.source.clone(),
        }
    }
}

/// What [`crate::KeyManager::report_leak`] found and did.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum LeakOutcome {
    /// Not a key of this deployment's formats (prefix, length, alphabet or checksum):
    /// checked offline, the store was not asked.
    Malformed,
    /// Well-formed, but no key has this secret.
    Unknown,
    /// A real key.
    Found {
        /// The key's id.
        key_id: KeyId,
        /// Its account.
        account_id: AccountId,
        /// What this report changed.
        change: LeakChange,
    },
}

impl LeakOutcome {
    /// Whether the token is a real key of this deployment (a scanner's
    /// `true_positive`).
    pub fn is_real_key(&self) -> bool {
        matches!(self, LeakOutcome::Found { .. })
    }
}

/// What a report changed on a found key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum LeakChange {
    /// The key was revoked ([`LeakPolicy::Revoke`]).
    Revoked,
    /// The key was disabled ([`LeakPolicy::Disable`]).
    Disabled,
    /// The leaked secret was the previous one of a rolled key: its grace period ended.
    GraceEnded,
    /// Only the leak was recorded: by [`LeakPolicy::RecordOnly`], or because the key was
    /// already revoked (or disabled, for [`LeakPolicy::Disable`]).
    Recorded,
    /// A repeat: the leak was recorded and the policy applied already. Nothing changed
    /// and no event was emitted.
    Unchanged,
}

impl LeakChange {
    /// `"revoked"`, `"disabled"`, `"grace_ended"`, `"recorded"` or `"unchanged"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            LeakChange::Revoked => "revoked",
            LeakChange::Disabled => "disabled",
            LeakChange::GraceEnded => "grace_ended",
            LeakChange::Recorded => "recorded",
            LeakChange::Unchanged => "unchanged",
        }
    }
}

/// `text` without control characters, cut to `max` characters.
fn clean(text: &str, max: usize) -> String {
    text.chars().filter(|c| !c.is_control()).take(max).collect()
}

/// `text` with every occurrence of `token` replaced.
fn redact(text: &str, token: &str) -> String {
    if token.is_empty() {
        return text.to_owned();
    }
    text.replace(token, "[redacted]")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_drops_control_characters_and_is_bounded() {
        let long = "x".repeat(MAX_LEAK_URL_LEN + 10);
        let r = LeakReport::new("t\u{7}y\npe", long, "con\u{0}tent");
        assert_eq!(r.token_type(), "type");
        assert_eq!(r.source(), "content");
        assert_eq!(r.url().chars().count(), MAX_LEAK_URL_LEN);
    }

    #[test]
    fn the_token_is_cut_out_of_the_record() {
        let token = "sk_live_abc";
        let r = LeakReport::new("t", format!("https://x/{token}/y"), token);
        let kept = r.to_record(token, SystemTime::UNIX_EPOCH);
        assert_eq!(kept.url, "https://x/[redacted]/y");
        assert_eq!(kept.source, "[redacted]");
    }

    #[test]
    fn policies_parse_from_their_names() {
        for p in [
            LeakPolicy::Revoke,
            LeakPolicy::Disable,
            LeakPolicy::RecordOnly,
        ] {
            assert_eq!(p.as_str().parse::<LeakPolicy>(), Ok(p));
        }
        assert!("delete".parse::<LeakPolicy>().is_err());
    }
}
