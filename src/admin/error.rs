//! [`ApiError`]: how a handler's failure reaches the client, always as the JSON error body.

use axum::body::{Body, Bytes};
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::manage::ManageError;
use crate::store::record::KeyId;
use crate::verify::render::json_error;

use super::MAX_BODY_BYTES;

/// Why a management request failed after the keygate layer let it through.
pub(super) enum ApiError {
    /// The management call failed.
    Manage(ManageError),
    /// The body is longer than [`MAX_BODY_BYTES`].
    BodyTooLarge,
}

impl ApiError {
    pub(super) fn status(&self) -> StatusCode {
        match self {
            ApiError::Manage(e) => e.status(),
            ApiError::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        }
    }

    pub(super) fn code(&self) -> &'static str {
        match self {
            ApiError::Manage(e) => e.code(),
            ApiError::BodyTooLarge => "body_too_large",
        }
    }

    fn message(&self) -> String {
        match self {
            ApiError::Manage(e) => e.to_string(),
            ApiError::BodyTooLarge => {
                format!("The request body is larger than {MAX_BODY_BYTES} bytes")
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        json_error(self.status(), self.code(), &self.message()).map(Body::from)
    }
}

impl From<ManageError> for ApiError {
    fn from(e: ManageError) -> Self {
        Self::Manage(e)
    }
}

pub(super) fn bad_request(message: String) -> ApiError {
    ApiError::Manage(ManageError::InvalidRequest(message))
}

/// The body, or a JSON refusal: 413 `body_too_large` past the limit, 400 otherwise
/// (axum's own rejections are plain text, which the contract does not allow).
pub(super) fn body(body: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
    body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::BodyTooLarge
        } else {
            bad_request("body: could not be read".into())
        }
    })
}

/// The key id in the path. Text that cannot be a key id (including a segment that is
/// not UTF-8 once percent-decoded) names no key: 404 `not_found`.
pub(super) fn key_id(path: Result<Path<String>, PathRejection>) -> Result<KeyId, ApiError> {
    path.ok()
        .and_then(|Path(raw)| KeyId::parse(&raw))
        .ok_or(ApiError::Manage(ManageError::NotFound))
}
