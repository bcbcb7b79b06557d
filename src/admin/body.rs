//! The JSON bodies of the management API, and how requests are parsed: errors name the
//! field.

use std::time::SystemTime;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;

use crate::key::Environment;
use crate::manage::{KeyUpdate, KeyView, NewKey};
use crate::metering::{Credits, Quota, UsageLimits};
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

/// The pattern of a key's name, as [`crate::manage`] validates it: no control,
/// line-separator or bidirectional-formatting characters, and at least one character that
/// is neither whitespace nor invisible. (The supplementary-plane invisible characters are
/// written as themselves: JSON Schema's and Python's escapes for them differ.)
pub(super) const NAME_PATTERN: &str = concat!(
    r"^[^\u0000-\u001F\u007F-\u009F\u2028\u2029\u061C\u200E\u200F\u202A-\u202E\u2066-\u2069]*",
    r"[^\u0000-\u0020\u007F-\u00A0\u2028\u2029\u061C\u200E\u200F\u202A-\u202E\u2066-\u2069",
    r"\u00AD\u034F\u115F\u1160\u1680\u17B4\u17B5\u180B-\u180F\u2000-\u200F\u202F\u205F",
    r"\u2060-\u2064\u206A-\u206F\u3000\u3164\uFE00-\uFE0F\uFEFF\uFFA0\uFFF9-\uFFFB",
    "\u{1D173}-\u{1D17A}\u{E0000}-\u{E007F}\u{E0100}-\u{E01EF}",
    r"][^\u0000-\u001F\u007F-\u009F\u2028\u2029\u061C\u200E\u200F\u202A-\u202E\u2066-\u2069]*$",
);

/// The pattern of an IP allowlist entry: an IPv4 or IPv6 address (RFC 3986's grammar,
/// which the standard library's parser follows), optionally with a prefix length.
pub(super) const IP_ENTRY_PATTERN: &str = concat!(
    "^(?:(?:(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\\.){3}(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])(?:/(?:3[0-2]|[12]?[0-9]))?|(?:(?:[0-9A-Fa-f]{1,4}:){6}(?:[0-9A-Fa-f]{1,4}:[0-9A-Fa-f]{1,4}|(?:(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\\.){3}(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9]))|",
    "::(?:[0-9A-Fa-f]{1,4}:){5}(?:[0-9A-Fa-f]{1,4}:[0-9A-Fa-f]{1,4}|(?:(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\\.){3}(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9]))|",
    "(?:[0-9A-Fa-f]{1,4})?::(?:[0-9A-Fa-f]{1,4}:){4}(?:[0-9A-Fa-f]{1,4}:[0-9A-Fa-f]{1,4}|(?:(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\\.){3}(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9]))|",
    "(?:(?:[0-9A-Fa-f]{1,4}:){0,1}[0-9A-Fa-f]{1,4})?::(?:[0-9A-Fa-f]{1,4}:){3}(?:[0-9A-Fa-f]{1,4}:[0-9A-Fa-f]{1,4}|(?:(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\\.){3}(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9]))|",
    "(?:(?:[0-9A-Fa-f]{1,4}:){0,2}[0-9A-Fa-f]{1,4})?::(?:[0-9A-Fa-f]{1,4}:){2}(?:[0-9A-Fa-f]{1,4}:[0-9A-Fa-f]{1,4}|(?:(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\\.){3}(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9]))|",
    "(?:(?:[0-9A-Fa-f]{1,4}:){0,3}[0-9A-Fa-f]{1,4})?::[0-9A-Fa-f]{1,4}:(?:[0-9A-Fa-f]{1,4}:[0-9A-Fa-f]{1,4}|(?:(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\\.){3}(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9]))|",
    "(?:(?:[0-9A-Fa-f]{1,4}:){0,4}[0-9A-Fa-f]{1,4})?::(?:[0-9A-Fa-f]{1,4}:[0-9A-Fa-f]{1,4}|(?:(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\\.){3}(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9]))|",
    "(?:(?:[0-9A-Fa-f]{1,4}:){0,5}[0-9A-Fa-f]{1,4})?::[0-9A-Fa-f]{1,4}|(?:(?:[0-9A-Fa-f]{1,4}:){0,6}[0-9A-Fa-f]{1,4})?::)(?:/(?:12[0-8]|1[01][0-9]|[1-9]?[0-9]))?)$",
);

/// An entry of an IP allowlist, for the document only: an address or a CIDR network.
pub(super) struct IpEntry;

impl utoipa::PartialSchema for IpEntry {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .pattern(Some(IP_ENTRY_PATTERN))
            .description(Some(
                "An IPv4 or IPv6 address, or a CIDR network (`10.0.0.0/8`, `2001:db8::/32`)",
            ))
            .examples(["203.0.113.7", "10.0.0.0/8", "2001:db8::/32"])
            .into()
    }
}

impl ToSchema for IpEntry {}

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
    #[schema(value_type = Vec<IpEntry>, max_items = 100)]
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
    /// The key's own credits: `{"remaining": N, "refill": {"amount": M, "interval":
    /// "day" | "week" | "month" | a duration such as "1h"}, "low": T}`; `low`, optional,
    /// is the threshold of the `credits.low` webhook.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub(super) credits: Option<Credits>,
    /// The key's own quotas, at most one per period: `[{"limit": N, "period": "day"}]`.
    #[serde(default)]
    pub(super) quotas: Vec<Quota>,
    /// The plan, by name; the key's own settings may only narrow it.
    #[serde(default)]
    pub(super) plan: Option<String>,
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
    #[schema(value_type = Option<Vec<IpEntry>>, max_items = 100)]
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
    /// New credits, restarting the balance at their `remaining`; `null` removes them.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<Object>)]
    pub(super) credits: Option<Option<Credits>>,
    /// New quotas, replacing the old.
    #[serde(default)]
    pub(super) quotas: Option<Vec<Quota>>,
    /// New plan; `null` leaves any plan.
    #[serde(default, deserialize_with = "double_option")]
    pub(super) plan: Option<Option<String>>,
}

/// How to roll a key. The body may be left out.
#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = ApiKeyRoll)]
pub(super) struct RollBody {
    /// How long the old secret keeps working, in seconds (at most 30 days); none or 0
    /// ends it at once.
    #[serde(default, deserialize_with = "crate::store::whole_number::whole_opt")]
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
    "credits",
    "quotas",
    "plan",
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
    "credits",
    "quotas",
    "plan",
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
            usage: UsageLimits {
                plan: self.plan,
                credits: self.credits,
                quotas: self.quotas,
            },
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
            credits: self.credits,
            quotas: self.quotas,
            plan: self.plan,
            ..KeyUpdate::default()
        })
    }
}

#[cfg(test)]
mod ip_entry_tests {
    use proptest::prelude::*;

    use super::{IP_ENTRY_PATTERN, NAME_PATTERN};
    use crate::client_ip::IpAllowlist;

    fn unanchored() -> &'static str {
        IP_ENTRY_PATTERN
            .trim_start_matches('^')
            .trim_end_matches('$')
    }

    proptest! {
        #[test]
        fn every_entry_the_document_allows_is_accepted(entry in unanchored()) {
            prop_assert!(IpAllowlist::parse([&entry]).is_ok(), "{entry}");
        }
    }

    proptest! {
        #[test]
        fn every_name_the_document_allows_is_accepted(
            name in NAME_PATTERN.trim_start_matches('^').trim_end_matches('$')
        ) {
            let name: String = name.chars().take(50).collect();
            let visible = name.chars().any(|c| {
                !c.is_whitespace() && !crate::manage::validate::is_invisible(c)
            });
            // Cut to 50 characters, the one visible character may be gone.
            prop_assume!(visible);
            prop_assert!(crate::manage::validate::validate_name(&name).is_ok(), "{name:?}");
        }
    }

    #[test]
    fn the_pattern_matches_the_usual_forms() {
        let re = proptest::string::string_regex(unanchored()).unwrap();
        let _ = re; // compiles as a regular expression
        for ok in [
            "203.0.113.7",
            "10.0.0.0/8",
            "::1",
            "2001:db8::/32",
            "::ffff:1.2.3.4",
        ] {
            assert!(IpAllowlist::parse([ok]).is_ok(), "{ok}");
        }
    }
}
