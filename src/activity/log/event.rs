//! [`ApiEvent`]: one request of a recognised key, as the API log keeps it.

use std::net::IpAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Serialize, Serializer};

use crate::key::KeyFormat;
use crate::store::record::{AccountId, KeyId};

/// Every outcome an event can have: `accepted`, then every refusal code the layer can
/// answer with once it has recognised a key.
pub const OUTCOMES: &[&str] = &[
    "accepted",
    "invalid_api_key",
    "revoked_api_key",
    "disabled_api_key",
    "expired_api_key",
    "wrong_environment",
    "ip_not_allowed",
    "insufficient_scope",
    "rate_limited",
    "usage_exceeded",
    "store_unavailable",
    "invalid_token",
    "verifier_unavailable",
];

/// Longest path kept, in bytes; a longer one is cut at a character boundary.
pub(crate) const MAX_PATH_LEN: usize = 512;

/// What replaces a path segment that is a key.
pub(crate) const REDACTED: &str = "[redacted]";

/// One request of a recognised key. Holds no secret: no plaintext, key body or digest.
///
/// Serialised as the management API shows it:
/// `{"time","key_id","account_id","outcome","method","path","client_ip","status"}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(
    feature = "admin",
    derive(utoipa::ToSchema),
    schema(description = "One request of a recognised key")
)]
#[non_exhaustive]
pub struct ApiEvent {
    /// When the request was decided, to the microsecond (RFC 3339 in UTC, milliseconds
    /// shown).
    #[serde(serialize_with = "rfc3339")]
    #[cfg_attr(feature = "admin", schema(value_type = String, format = DateTime))]
    pub time: SystemTime,
    /// The key's id (for a verified credential, its subject).
    #[cfg_attr(feature = "admin", schema(value_type = String))]
    pub key_id: KeyId,
    /// The key's account.
    #[cfg_attr(feature = "admin", schema(value_type = String))]
    pub account_id: AccountId,
    /// `accepted`, or the refusal's code (one of [`OUTCOMES`]).
    pub outcome: String,
    /// The request method.
    pub method: String,
    /// The request path, without its query string.
    pub path: String,
    /// The client's IP address, as the gate's resolver found it.
    #[cfg_attr(feature = "admin", schema(value_type = Option<String>))]
    pub client_ip: Option<IpAddr>,
    /// The response status.
    pub status: u16,
    /// The store's order of insertion: unique within a store, growing. Set by the store.
    #[serde(skip)]
    pub seq: u64,
}

fn rfc3339<S: Serializer>(at: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&crate::manage::rfc3339(*at))
}

impl ApiEvent {
    /// An event, for a store that reads events back; `seq` 0 (see [`ApiEvent::seq`]).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        time: SystemTime,
        key_id: KeyId,
        account_id: AccountId,
        outcome: impl Into<String>,
        method: impl Into<String>,
        path: impl Into<String>,
        client_ip: Option<IpAddr>,
        status: u16,
    ) -> Self {
        Self {
            time: to_micros(time),
            key_id,
            account_id,
            outcome: outcome.into(),
            method: method.into(),
            path: path.into(),
            client_ip,
            status,
            seq: 0,
        }
    }

    /// The same event with the store's sequence number.
    pub fn with_seq(mut self, seq: u64) -> Self {
        self.seq = seq;
        self
    }
}

/// `at` truncated to the microsecond, as PostgreSQL keeps it, so both stores page alike.
pub(crate) fn to_micros(at: SystemTime) -> SystemTime {
    match at.duration_since(UNIX_EPOCH) {
        Ok(d) => UNIX_EPOCH + Duration::from_micros(u64::try_from(d.as_micros()).unwrap_or(0)),
        Err(_) => UNIX_EPOCH,
    }
}

/// The path as the log keeps it: at most [`MAX_PATH_LEN`] bytes, any segment that is a
/// key of `format` replaced by [`REDACTED`]. The query string is never part of it.
pub(crate) fn clean_path(path: &str, format: &KeyFormat) -> String {
    let mut out = String::with_capacity(path.len().min(MAX_PATH_LEN));
    for (i, segment) in path.split('/').enumerate() {
        if i > 0 {
            out.push('/');
        }
        if looks_like_key(segment, format) {
            out.push_str(REDACTED);
        } else {
            out.push_str(segment);
        }
        if out.len() > MAX_PATH_LEN {
            break;
        }
    }
    if out.len() > MAX_PATH_LEN {
        let mut end = MAX_PATH_LEN;
        while !out.is_char_boundary(end) {
            end -= 1;
        }
        out.truncate(end);
    }
    out
}

/// Whether `segment` is, or percent-decodes to something starting with, a key prefix of
/// `format` followed by more characters: a key or a mistyped one, never kept.
fn looks_like_key(segment: &str, format: &KeyFormat) -> bool {
    format.prefixes().iter().any(|p| {
        let prefix = p.as_str();
        segment.len() > prefix.len() && segment.contains(prefix)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_in_the_path_is_redacted_and_long_paths_are_cut() {
        let format = KeyFormat::default();
        let key = format.generate(format.prefix("sk_live_").unwrap()).unwrap();
        let path = format!("/v1/keys/{}/x", key.expose_secret());
        let clean = clean_path(&path, &format);
        assert_eq!(clean, "/v1/keys/[redacted]/x");
        let long = format!("/{}", "é".repeat(600));
        let clean = clean_path(&long, &format);
        assert!(clean.len() <= MAX_PATH_LEN && long.starts_with(&clean));
        assert_eq!(clean_path("/v1/sk_live_", &format), "/v1/sk_live_");
    }

    #[test]
    fn every_refusal_after_recognition_is_a_known_outcome() {
        for e in crate::documented_codes::every_refusal() {
            let before_recognition = matches!(
                e,
                crate::error::AuthError::MissingCredentials
                    | crate::error::AuthError::InvalidRequest(_)
            );
            if !before_recognition {
                assert!(OUTCOMES.contains(&e.code()), "{}", e.code());
            }
        }
    }
}
