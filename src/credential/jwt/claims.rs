//! A verified token's claims: its time window, and what it names (subject, account,
//! scopes).

use std::borrow::Cow;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value};

use crate::credential::{CredentialError, Principal};
use crate::scope::{Scope, ScopeSet};
use crate::store::record::{AccountId, KeyId};

/// Longest subject or account a token may name, in bytes.
const MAX_NAME_LEN: usize = 256;

/// Which claims name the subject, the account and the scopes.
#[derive(Clone, Debug)]
pub(super) struct ClaimNames {
    pub(super) subject: String,
    pub(super) account: String,
    /// `None`: `scope` (space-separated), else `scp` (an array or space-separated).
    pub(super) scopes: Option<String>,
}

impl Default for ClaimNames {
    fn default() -> Self {
        Self {
            subject: "sub".into(),
            account: "sub".into(),
            scopes: None,
        }
    }
}

fn refused(message: impl Into<Cow<'static, str>>) -> CredentialError {
    CredentialError::refused(message)
}

/// A NumericDate claim (RFC 7519 §2) as a time; `Err` when present but not a number.
fn numeric_date(claims: &Map<String, Value>, name: &str) -> Result<Option<SystemTime>, ()> {
    match claims.get(name) {
        None => Ok(None),
        Some(Value::Number(n)) => {
            let secs = n.as_f64().filter(|s| s.is_finite()).ok_or(())?;
            // Before 1970 or beyond any real date: clamp rather than overflow.
            let secs = secs.clamp(0.0, 1e12);
            Ok(Some(UNIX_EPOCH + Duration::from_secs_f64(secs)))
        }
        Some(_) => Err(()),
    }
}

/// `exp` (required) and `nbf` (when present) against `now`, with `leeway` either way:
/// the expiry (without the leeway) when the token is valid now.
pub(super) fn check_time(
    claims: &Map<String, Value>,
    now: SystemTime,
    leeway: Duration,
) -> Result<SystemTime, CredentialError> {
    let exp = numeric_date(claims, "exp")
        .map_err(|()| refused("The token's 'exp' claim is not a number"))?
        .ok_or_else(|| refused("The token has no expiry ('exp' claim)"))?;
    // Past the end of time (a huge leeway) means never.
    if exp.checked_add(leeway).is_some_and(|end| now >= end) {
        return Err(refused("The token has expired"));
    }
    let nbf = numeric_date(claims, "nbf")
        .map_err(|()| refused("The token's 'nbf' claim is not a number"))?;
    if nbf.is_some_and(|nbf| now.checked_add(leeway).is_some_and(|late| late < nbf)) {
        return Err(refused("The token is not valid yet ('nbf' claim)"));
    }
    Ok(exp)
}

/// A string claim that must be present, non-empty and short.
fn name_claim<'c>(claims: &'c Map<String, Value>, name: &str) -> Result<&'c str, CredentialError> {
    match claims.get(name) {
        Some(Value::String(s)) if !s.is_empty() && s.len() <= MAX_NAME_LEN => Ok(s),
        Some(Value::String(s)) if !s.is_empty() => Err(refused(format!(
            "The token's '{name}' claim is longer than {MAX_NAME_LEN} bytes"
        ))),
        _ => Err(refused(format!("The token has no '{name}' claim"))),
    }
}

/// Scope names from a space-separated string or an array of strings. Names keygate
/// cannot hold as a [`Scope`] are left out: they could only grant, never restrict.
fn scope_names(value: &Value) -> Vec<Scope> {
    let names: Vec<&str> = match value {
        Value::String(s) => s.split_ascii_whitespace().collect(),
        Value::Array(items) => items.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    names
        .into_iter()
        .filter_map(|n| Scope::new(n).ok())
        .collect()
}

/// The principal the claims name.
pub(super) fn principal(
    claims: Map<String, Value>,
    names: &ClaimNames,
) -> Result<Principal, CredentialError> {
    let subject = KeyId::new(name_claim(&claims, &names.subject)?);
    let account = AccountId::new(name_claim(&claims, &names.account)?);
    let scopes = match &names.scopes {
        Some(name) => claims.get(name).map(scope_names),
        None => claims
            .get("scope")
            .or_else(|| claims.get("scp"))
            .map(scope_names),
    };
    let scopes = ScopeSet::parse(scopes.unwrap_or_default().iter().map(Scope::as_str))
        .expect("every name was a valid scope");
    Ok(Principal::new(subject, account)
        .scopes(scopes)
        .metadata(claims))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    const NOW: u64 = 1_700_000_000;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn expiry_is_exclusive_and_leeway_extends_it() {
        let claims = map(json!({ "exp": NOW }));
        let none = Duration::ZERO;
        assert!(check_time(&claims, at(NOW - 1), none).is_ok());
        assert_eq!(
            check_time(&claims, at(NOW), none),
            Err(refused("The token has expired"))
        );
        assert!(check_time(&claims, at(NOW + 29), Duration::from_secs(30)).is_ok());
        assert!(check_time(&claims, at(NOW + 30), Duration::from_secs(30)).is_err());
    }

    #[test]
    fn not_before_is_checked_with_leeway() {
        let claims = map(json!({ "exp": NOW + 100, "nbf": NOW + 10 }));
        assert!(check_time(&claims, at(NOW), Duration::ZERO).is_err());
        assert!(check_time(&claims, at(NOW), Duration::from_secs(10)).is_ok());
        assert!(check_time(&claims, at(NOW + 10), Duration::ZERO).is_ok());
    }

    #[test]
    fn missing_or_malformed_times_are_refused() {
        for claims in [
            json!({}),
            json!({ "exp": "tomorrow" }),
            json!({ "exp": NOW + 100, "nbf": [1] }),
        ] {
            assert!(check_time(&map(claims), at(NOW), Duration::ZERO).is_err());
        }
        let huge = map(json!({ "exp": 1e300, "nbf": -1e300 }));
        assert!(check_time(&huge, at(NOW), Duration::ZERO).is_ok());
        let past = map(json!({ "exp": NOW - 1, "nbf": NOW + 1 }));
        assert!(check_time(&past, at(NOW), Duration::MAX).is_ok());
    }

    #[test]
    fn scopes_come_from_scope_or_scp_and_bad_names_are_left_out() {
        let names = ClaimNames::default();
        let p = principal(map(json!({ "sub": "u", "scope": "a b:c  d" })), &names).unwrap();
        assert_eq!(p.scopes, ScopeSet::parse(["a", "b:c", "d"]).unwrap());
        let p = principal(
            map(json!({ "sub": "u", "scp": ["x", "bad scope!", 3] })),
            &names,
        )
        .unwrap();
        assert_eq!(p.scopes, ScopeSet::parse(["x"]).unwrap());
        let custom = ClaimNames {
            scopes: Some("perms".into()),
            ..ClaimNames::default()
        };
        let p = principal(
            map(json!({ "sub": "u", "scope": "a", "perms": ["p"] })),
            &custom,
        )
        .unwrap();
        assert_eq!(p.scopes, ScopeSet::parse(["p"]).unwrap());
    }

    #[test]
    fn subject_and_account_must_be_short_strings() {
        let names = ClaimNames {
            account: "org".into(),
            ..ClaimNames::default()
        };
        let p = principal(map(json!({ "sub": "u1", "org": "o1" })), &names).unwrap();
        assert_eq!((p.subject.as_str(), p.account.as_str()), ("u1", "o1"));
        assert_eq!(p.metadata["org"], "o1");
        for claims in [
            json!({ "sub": "u1" }),
            json!({ "sub": "", "org": "o1" }),
            json!({ "sub": 7, "org": "o1" }),
            json!({ "sub": "x".repeat(MAX_NAME_LEN + 1), "org": "o1" }),
        ] {
            assert!(principal(map(claims), &names).is_err());
        }
    }
}
