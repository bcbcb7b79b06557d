//! [`ManageError`]: why a management call failed, with a stable code and status.

use http::StatusCode;

use crate::store::StoreError;

/// Why a management call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ManageError {
    /// No such key in this account.
    #[error("No API key with that id exists in this account")]
    NotFound,
    /// Bad input; the message names the field.
    #[error("{0}")]
    InvalidRequest(String),
    /// The account has its maximum number of active keys.
    #[error(
        "This account already has {limit} active API keys; revoke one before creating another"
    )]
    LimitReached {
        /// The cap.
        limit: usize,
    },
    /// The acting key tried to grant scopes or an environment it does not hold, or to
    /// manage a key that holds more scopes than it does.
    #[error("{0}")]
    Escalation(String),
    /// The acting key tried to make or touch a key less restricted than itself: a wider
    /// IP allowlist, a later (or no) expiry, or a higher (or the default) rate limit.
    #[error("{0}")]
    Widening(String),
    /// An external principal (a verified JWT, say) with no environment tried to manage
    /// keys on a deployment serving several environments, which it would reach all of.
    /// Refused for every action, reads included, unless
    /// [`crate::manage::ManagerConfig::environment_neutral_principals`] is on.
    #[error(
        "This credential names no environment, and this deployment serves several: it may \
         not manage keys. Use a credential that names its environment"
    )]
    EnvironmentRequired,
    /// A request tried to write a field the server keeps, such as who created a key
    /// (`created_by`, `updated_by` of the admin API's `KeyFields::record_actors`); the
    /// message names it.
    #[error("{0}")]
    ReadOnlyField(String),
    /// An imported key's id or secret is already stored; the message says which.
    #[error("{0}")]
    AlreadyExists(String),
    /// The key is revoked and cannot be rolled or changed.
    #[error("This API key has been revoked and cannot be changed")]
    Revoked,
    /// A usage query that cannot be answered (400, with the error's own code).
    #[error(transparent)]
    Usage(#[from] crate::activity::UsageQueryError),
    /// The store failed.
    #[error("The key store is unavailable; retry later")]
    Store(#[source] StoreError),
}

impl ManageError {
    /// The stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            ManageError::NotFound => "not_found",
            ManageError::InvalidRequest(_) => "invalid_request",
            ManageError::LimitReached { .. } => "api_key_limit_reached",
            ManageError::Escalation(_) => "insufficient_scope",
            ManageError::Widening(_) => "widening_refused",
            ManageError::EnvironmentRequired => "environment_required",
            ManageError::ReadOnlyField(_) => "read_only_field",
            ManageError::Revoked => "api_key_revoked",
            ManageError::AlreadyExists(_) => "api_key_exists",
            ManageError::Usage(e) => e.code(),
            ManageError::Store(_) => "store_unavailable",
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            ManageError::NotFound => StatusCode::NOT_FOUND,
            ManageError::InvalidRequest(_)
            | ManageError::ReadOnlyField(_)
            | ManageError::Usage(_) => StatusCode::BAD_REQUEST,
            ManageError::LimitReached { .. }
            | ManageError::Revoked
            | ManageError::AlreadyExists(_) => StatusCode::CONFLICT,
            ManageError::Escalation(_)
            | ManageError::Widening(_)
            | ManageError::EnvironmentRequired => StatusCode::FORBIDDEN,
            ManageError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

impl From<StoreError> for ManageError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => ManageError::NotFound,
            StoreError::LimitReached { limit } => ManageError::LimitReached { limit },
            other => ManageError::Store(other),
        }
    }
}
