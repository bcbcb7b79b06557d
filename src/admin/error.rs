//! [`AdminError`]: why a management request failed after the keygate layer let it
//! through, rendered by the router's [`Envelope`] like every other answer.

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::Path;
use http::{Response, StatusCode};

use super::envelope::{Envelope, ErrorReply, Reply};
use crate::manage::ManageError;
use crate::store::record::KeyId;

/// Why a management request failed after the keygate layer let it through.
///
/// A custom handler maps its failures to one and renders it with
/// [`AdminError::render`], so its refusals look like the router's.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AdminError {
    /// The management call failed, or the request is bad
    /// ([`ManageError::InvalidRequest`], whose message names the field).
    #[error(transparent)]
    Manage(#[from] ManageError),
    /// The body is longer than the router's limit, in bytes.
    #[error("The request body is larger than {0} bytes")]
    BodyTooLarge(usize),
    /// The route has no such method; the value lists the allowed ones, as for `Allow`.
    #[error("This method is not allowed here; use {0}")]
    MethodNotAllowed(String),
    /// No [`crate::Identity`] on the request: keygate's layer does not run in front
    /// of the route. A server mistake, never the client's.
    #[error("no keygate Identity on this request: add keygate's layer in front of this route")]
    MissingIdentity,
}

impl AdminError {
    /// A 400 `invalid_request`; `message` should start with the field's name.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::Manage(ManageError::InvalidRequest(message.into()))
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            AdminError::Manage(e) => e.status(),
            AdminError::BodyTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            AdminError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            AdminError::MissingIdentity => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            AdminError::Manage(e) => e.code(),
            AdminError::BodyTooLarge(_) => "body_too_large",
            AdminError::MethodNotAllowed(_) => "method_not_allowed",
            AdminError::MissingIdentity => "keygate_layer_missing",
        }
    }

    /// The response, rendered by `envelope`. A 405 carries `Allow`.
    pub fn render(&self, envelope: &dyn Envelope) -> Response<Bytes> {
        let message = self.to_string();
        let reply = ErrorReply::new(self.status(), self.code(), &message);
        let mut res = envelope.render(Reply::Error(reply));
        if let AdminError::MethodNotAllowed(allow) = self {
            if let Ok(v) = http::HeaderValue::from_str(allow) {
                res.headers_mut().insert(http::header::ALLOW, v);
            }
        }
        res
    }
}

/// The body, or a refusal: 413 `body_too_large` past `limit`, 400 otherwise (axum's own
/// refusals are plain text, which no envelope allows).
pub(crate) fn read_body(
    body: Result<Bytes, BytesRejection>,
    limit: usize,
) -> Result<Bytes, AdminError> {
    body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            AdminError::BodyTooLarge(limit)
        } else {
            AdminError::invalid("body: could not be read")
        }
    })
}

/// The key id in the path. Text that cannot be a key id (including a segment that is
/// not UTF-8 once percent-decoded) names no key: 404 `not_found`.
pub(crate) fn key_id(path: Result<Path<String>, PathRejection>) -> Result<KeyId, AdminError> {
    path.ok()
        .and_then(|Path(raw)| KeyId::parse(&raw))
        .ok_or(AdminError::Manage(ManageError::NotFound))
}
