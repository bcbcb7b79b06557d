//! The JSON bodies of the management API, and how requests are parsed: errors name the
//! field.

use std::time::SystemTime;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;

use crate::key::Environment;
use crate::manage::{KeyUpdate, KeyView, NewKey};
use crate::scope::Scope;
use crate::store::record::RateLimit;

use super::error::AdminError;

/// Parses a JSON body into `T`, refusing trailing data, with 400 `invalid_request`
/// errors that name the field (`rate_limit.burst: invalid type: …`) or say what is
/// wrong with the body (`body: malformed JSON: …`).
pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, AdminError> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let parsed = serde_path_to_error::deserialize(&mut de)
        .map_err(|e| (e.path().to_string(), e.into_inner()))
        .and_then(|v| de.end().map(|()| v).map_err(|e| (".".to_owned(), e)));
    parsed.map_err(|(path, e)| {
        use serde_json::error::Category;
        let message = match e.classify() {
            Category::Data if path != "." => format!("{path}: {e}"),
            Category::Data => format!("body: {e}"),
            Category::Eof => format!("body: truncated JSON: {e}"),
            Category::Syntax | Category::Io => format!("body: malformed JSON: {e}"),
        };
        AdminError::invalid(message)
    })
}

/// Deserializes `T` from an already parsed JSON value, with errors that name the field.
pub(super) fn from_value<T: DeserializeOwned>(value: serde_json::Value) -> Result<T, AdminError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let e = e.into_inner();
        AdminError::invalid(if path == "." {
            format!("body: {e}")
        } else {
            format!("{path}: {e}")
        })
    })
}

/// Any RFC 3339 time, with any offset, normalised to UTC.
pub(super) fn parse_time(field: &str, value: &str) -> Result<SystemTime, AdminError> {
    crate::manage::parse_rfc3339(value).ok_or_else(|| {
        AdminError::invalid(format!(
            "{field}: expected an RFC 3339 time with an offset, such as \
             2030-01-01T00:00:00Z or 2030-01-01T09:00:00+09:00"
        ))
    })
}

/// Distinguishes an absent field (`None`) from `null` (`Some(None)`).
fn double_option<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// A new key. Left out, `ips`, `expires_at` and `rate_limit` are the calling key's own.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = NewApiKey)]
pub(super) struct CreateBody {
    /// 1 to 50 characters, at least one visible, with no control or
    /// bidirectional-formatting characters.
    #[schema(min_length = 1, max_length = 50, example = "CI pipeline key")]
    pub(super) name: String,
    /// Scope names; none of them more than the calling key holds.
    #[serde(default)]
    #[schema(value_type = Vec<Scope>)]
    pub(super) scopes: Vec<String>,
    /// Addresses and CIDR networks the key may be used from.
    #[serde(default)]
    pub(super) ips: Vec<String>,
    /// Expiry: an RFC 3339 time with an offset.
    #[serde(default)]
    #[schema(format = DateTime)]
    pub(super) expires_at: Option<String>,
    /// The key's own quota.
    #[serde(default)]
    pub(super) rate_limit: Option<RateLimit>,
    /// Free-form JSON, at most 4 KiB.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub(super) metadata: Option<serde_json::Map<String, serde_json::Value>>,
    /// The environment, which picks the prefix; the calling key's by default.
    #[serde(default)]
    pub(super) environment: Option<Environment>,
    /// An explicit prefix the deployment accepts, overriding `environment`.
    #[serde(default)]
    pub(super) prefix: Option<String>,
}

/// Changes to a key: a field left out stays as it is.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = ApiKeyUpdate)]
pub(super) struct UpdateBody {
    /// New name (1 to 50 characters).
    #[serde(default)]
    #[schema(min_length = 1, max_length = 50)]
    pub(super) name: Option<String>,
    /// New scopes.
    #[serde(default)]
    #[schema(value_type = Option<Vec<Scope>>)]
    pub(super) scopes: Option<Vec<String>>,
    /// New IP allowlist; empty for any address.
    #[serde(default)]
    pub(super) ips: Option<Vec<String>>,
    /// New expiry (RFC 3339); `null` removes it.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub(super) expires_at: Option<Option<String>>,
    /// New quota; `null` returns to the deployment default.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<RateLimit>)]
    pub(super) rate_limit: Option<Option<RateLimit>>,
    /// An RFC 7396 JSON merge patch of the metadata: members set to `null` are removed,
    /// objects are merged, other values replace (patch and result at most 4 KiB of JSON).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub(super) metadata: Option<serde_json::Map<String, serde_json::Value>>,
    /// Disable (`true`) or enable (`false`) the key.
    #[serde(default)]
    pub(super) disabled: Option<bool>,
}

/// How to roll a key. The body may be left out.
#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = ApiKeyRoll)]
pub(super) struct RollBody {
    /// How long the old secret keeps working, in seconds (at most 30 days); none or 0
    /// ends it at once.
    #[serde(default)]
    #[schema(maximum = 2_592_000)]
    pub(super) grace_seconds: Option<u64>,
}

/// A key and its plaintext, shown this once: it cannot be retrieved again.
#[derive(Serialize, ToSchema)]
#[schema(as = ApiKeyWithSecret)]
pub(super) struct WithPlaintext<'a> {
    #[serde(flatten)]
    view: &'a KeyView,
    /// The plaintext key.
    key: &'a str,
}

/// The fields of [`CreateBody`], keygate's names.
pub(super) const CREATE_FIELDS: &[&str] = &[
    "name",
    "scopes",
    "ips",
    "expires_at",
    "rate_limit",
    "metadata",
    "environment",
    "prefix",
];

/// The fields of [`UpdateBody`], keygate's names.
pub(super) const UPDATE_FIELDS: &[&str] = &[
    "name",
    "scopes",
    "ips",
    "expires_at",
    "rate_limit",
    "metadata",
    "disabled",
];

impl CreateBody {
    pub(super) fn into_new_key(self) -> Result<NewKey, AdminError> {
        let expires_at = self
            .expires_at
            .as_deref()
            .map(|t| parse_time("expires_at", t))
            .transpose()?;
        Ok(NewKey {
            name: self.name,
            scopes: self.scopes,
            ips: self.ips,
            expires_at,
            rate_limit: self.rate_limit,
            metadata: self.metadata.unwrap_or_default(),
            environment: self.environment,
            prefix: self.prefix,
            ..NewKey::default()
        })
    }
}

impl UpdateBody {
    pub(super) fn into_update(self) -> Result<KeyUpdate, AdminError> {
        let expires_at = match self.expires_at {
            None => None,
            Some(None) => Some(None),
            Some(Some(t)) => Some(Some(parse_time("expires_at", &t)?)),
        };
        Ok(KeyUpdate {
            name: self.name,
            scopes: self.scopes,
            ips: self.ips,
            expires_at,
            rate_limit: self.rate_limit,
            metadata_patch: self.metadata,
            disabled: self.disabled,
            ..KeyUpdate::default()
        })
    }
}
