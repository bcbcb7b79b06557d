//! Why a request was refused: one enum, each variant with a stable code and status.

use std::borrow::Cow;
use std::time::Duration;

use http::StatusCode;

use crate::key::Environment;
use crate::scope::ScopeRequirement;

/// Why keygate refused a request.
///
/// | code | status | when |
/// |---|---|---|
/// | `unauthorized` | 401 | no credentials were sent |
/// | `invalid_request` | 400 | the credentials are malformed: two `Authorization` headers, a bad scheme, an over-long or non-ASCII value |
/// | `invalid_api_key` | 401 | the key has a bad checksum or is unknown |
/// | `revoked_api_key` | 401 | the key was revoked |
/// | `disabled_api_key` | 401 | the key is disabled |
/// | `expired_api_key` | 401 | the key expired, or was rolled and its grace period ended |
/// | `wrong_environment` | 401 | a `test` key on a `live` deployment, or the reverse |
/// | `ip_not_allowed` | 403 | the client IP is not on the key's allowlist, or unknown |
/// | `insufficient_scope` | 403 | the key lacks the scope the route needs, or is read-only and the method is not |
/// | `rate_limited` | 429 | the key's quota is used up |
/// | `usage_exceeded` | 429 | the request would spend more credits or quota than remain |
/// | `store_unavailable` | 503 | the key store failed or timed out (fail closed) |
/// | `invalid_token` | 401 | the [credential verifier](crate::credential) refused a bearer that is not a keygate key |
/// | `verifier_unavailable` | 503 | the credential verifier failed, panicked or timed out (fail closed) |
///
/// Messages never contain a key, a digest or a store's error text.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// No credentials.
    #[error("Authorization header is required")]
    MissingCredentials,
    /// Malformed credentials.
    #[error("{0}")]
    InvalidRequest(&'static str),
    /// Bad checksum, or no such key.
    #[error("The provided API key is invalid")]
    InvalidKey,
    /// Revoked.
    #[error("The provided API key has been revoked")]
    RevokedKey,
    /// Disabled.
    #[error("The provided API key is disabled")]
    DisabledKey,
    /// Past its expiry.
    #[error("The provided API key has expired")]
    ExpiredKey,
    /// The previous secret of a rolled key, after the grace period.
    #[error("The provided API key was rolled and its grace period has ended; use the new key")]
    RolledKey,
    /// The key belongs to another environment.
    #[error("This is a {key} API key; this endpoint only accepts {expected} keys")]
    WrongEnvironment {
        /// The key's environment.
        key: Environment,
        /// The environment this deployment accepts.
        expected: Environment,
    },
    /// The client IP is not allowed, or unknown while the key has an allowlist.
    #[error("This API key cannot be used from this IP address")]
    IpNotAllowed,
    /// A scope the route requires is missing.
    #[error("{}", .0.describe())]
    InsufficientScope(ScopeRequirement),
    /// A read-only key on a method that is not safe.
    #[error("This API key is read-only and can only be used with GET, HEAD and OPTIONS")]
    ReadOnlyKey,
    /// Over quota.
    #[error("Too many requests have been sent with this key; retry after {} s", retry_after_secs(*.retry_after))]
    RateLimited {
        /// How long until one more request would be allowed.
        retry_after: Duration,
    },
    /// The request would spend more credits, or more of a quota, than remain (see
    /// [`crate::metering`]). Nothing was spent.
    #[error("{}", usage_message(*.retry_after))]
    UsageExceeded {
        /// How long until the next refill or reset, if one is due.
        retry_after: Option<Duration>,
    },
    /// The store failed.
    #[error("The key store is unavailable; retry later")]
    StoreUnavailable,
    /// The [credential verifier](crate::credential) refused a bearer token that is not a
    /// keygate key; the message is the verifier's.
    #[error("{0}")]
    InvalidToken(Cow<'static, str>),
    /// The credential verifier failed, panicked or timed out.
    #[error("The credential verifier is unavailable; retry later")]
    VerifierUnavailable,
}

fn usage_message(retry_after: Option<Duration>) -> String {
    match retry_after {
        Some(wait) => format!(
            "The usage this API key may draw is used up; it is refilled in {} s",
            retry_after_secs(wait)
        ),
        None => "The usage this API key may draw is used up".to_owned(),
    }
}

/// `Retry-After` in whole seconds: rounded up, never 0 (RFC 6585 §4).
pub(crate) fn retry_after_secs(wait: Duration) -> u64 {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    secs.max(1)
}

impl AuthError {
    /// The stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            AuthError::MissingCredentials => "unauthorized",
            AuthError::InvalidRequest(_) => "invalid_request",
            AuthError::InvalidKey => "invalid_api_key",
            AuthError::RevokedKey => "revoked_api_key",
            AuthError::DisabledKey => "disabled_api_key",
            AuthError::ExpiredKey | AuthError::RolledKey => "expired_api_key",
            AuthError::WrongEnvironment { .. } => "wrong_environment",
            AuthError::IpNotAllowed => "ip_not_allowed",
            AuthError::InsufficientScope(_) | AuthError::ReadOnlyKey => "insufficient_scope",
            AuthError::RateLimited { .. } => "rate_limited",
            AuthError::UsageExceeded { .. } => "usage_exceeded",
            AuthError::StoreUnavailable => "store_unavailable",
            AuthError::InvalidToken(_) => "invalid_token",
            AuthError::VerifierUnavailable => "verifier_unavailable",
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            AuthError::InvalidRequest(_) => StatusCode::BAD_REQUEST,
            AuthError::MissingCredentials
            | AuthError::InvalidKey
            | AuthError::RevokedKey
            | AuthError::DisabledKey
            | AuthError::ExpiredKey
            | AuthError::RolledKey
            | AuthError::WrongEnvironment { .. }
            | AuthError::InvalidToken(_) => StatusCode::UNAUTHORIZED,
            AuthError::IpNotAllowed | AuthError::InsufficientScope(_) | AuthError::ReadOnlyKey => {
                StatusCode::FORBIDDEN
            }
            AuthError::RateLimited { .. } | AuthError::UsageExceeded { .. } => {
                StatusCode::TOO_MANY_REQUESTS
            }
            AuthError::StoreUnavailable | AuthError::VerifierUnavailable => {
                StatusCode::SERVICE_UNAVAILABLE
            }
        }
    }

    /// The human message: what went wrong and what to do.
    pub fn message(&self) -> Cow<'static, str> {
        match self {
            AuthError::InvalidRequest(m) => Cow::Borrowed(m),
            AuthError::InvalidToken(m) => m.clone(),
            AuthError::MissingCredentials => Cow::Borrowed("Authorization header is required"),
            AuthError::InvalidKey => Cow::Borrowed("The provided API key is invalid"),
            other => Cow::Owned(other.to_string()),
        }
    }

    /// The gRPC status code a gRPC client receives.
    pub fn grpc_status(&self) -> u16 {
        match self.status() {
            StatusCode::BAD_REQUEST => 3,          // INVALID_ARGUMENT
            StatusCode::FORBIDDEN => 7,            // PERMISSION_DENIED
            StatusCode::TOO_MANY_REQUESTS => 8,    // RESOURCE_EXHAUSTED
            StatusCode::SERVICE_UNAVAILABLE => 14, // UNAVAILABLE
            _ => 16,                               // UNAUTHENTICATED
        }
    }

    /// The RFC 6750 `error` attribute for `WWW-Authenticate`, if any.
    pub fn bearer_error(&self) -> Option<&'static str> {
        match self {
            AuthError::MissingCredentials => None,
            AuthError::InvalidRequest(_) => Some("invalid_request"),
            AuthError::InsufficientScope(_) | AuthError::ReadOnlyKey => Some("insufficient_scope"),
            e if e.status() == StatusCode::UNAUTHORIZED => Some("invalid_token"),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_rounds_up_and_is_never_zero() {
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(1000)), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(1001)), 2);
    }

    #[test]
    fn wrong_environment_names_both_sides() {
        let e = AuthError::WrongEnvironment {
            key: Environment::Test,
            expected: Environment::Live,
        };
        assert_eq!(
            e.message(),
            "This is a test API key; this endpoint only accepts live keys"
        );
        assert_eq!(e.code(), "wrong_environment");
        assert_eq!(e.status(), StatusCode::UNAUTHORIZED);
    }
}
