//! The management API's refusals: every error code with its status, the error schema,
//! and the reusable responses that carry each status's codes.

use axum::http::StatusCode;
use utoipa::openapi::content::Content;
use utoipa::openapi::header::Header;
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::schema::{AllOfBuilder, ObjectBuilder, Ref, Schema, Type};
use utoipa::openapi::RefOr;
use utoipa::ToResponse;

/// Every error code the management API answers with: its status and when.
pub(super) const ERROR_CODES: &[(StatusCode, &str, &str)] = &[
    (
        StatusCode::BAD_REQUEST,
        "invalid_request",
        "malformed credentials (two `Authorization` headers, another scheme than Bearer, an \
         over-long or non-ASCII value), or a bad request: the message names the field",
    ),
    (
        StatusCode::BAD_REQUEST,
        "read_only_field",
        "the body writes or erases a field the server records, such as who created or last \
         changed a key, as a field or in `metadata`",
    ),
    (
        StatusCode::BAD_REQUEST,
        "unknown_granularity",
        "the usage granularity is not `minute`, `hour` or `day`",
    ),
    (
        StatusCode::BAD_REQUEST,
        "usage_range_reversed",
        "the usage range's `from` is after its `to`",
    ),
    (
        StatusCode::BAD_REQUEST,
        "usage_range_too_large",
        "the usage range holds more than 1,500 buckets",
    ),
    (
        StatusCode::BAD_REQUEST,
        "usage_range_beyond_retention",
        "the usage range starts before the oldest bucket of its granularity that is kept",
    ),
    (
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "no credentials were sent",
    ),
    (
        StatusCode::UNAUTHORIZED,
        "invalid_api_key",
        "the key has a bad checksum or is unknown",
    ),
    (
        StatusCode::UNAUTHORIZED,
        "revoked_api_key",
        "the key was revoked",
    ),
    (
        StatusCode::UNAUTHORIZED,
        "disabled_api_key",
        "the key is disabled",
    ),
    (
        StatusCode::UNAUTHORIZED,
        "expired_api_key",
        "the key expired, or was rolled and its grace period ended",
    ),
    (
        StatusCode::UNAUTHORIZED,
        "wrong_environment",
        "a `test` key on a `live` deployment, or the reverse",
    ),
    (
        StatusCode::UNAUTHORIZED,
        "invalid_token",
        "the configured credential verifier refused a bearer token that is not an API key",
    ),
    (
        StatusCode::FORBIDDEN,
        "ip_not_allowed",
        "the client IP is not on the key's allowlist, or unknown",
    ),
    (
        StatusCode::FORBIDDEN,
        "insufficient_scope",
        "the key lacks the scope the route needs or is read-only, or the change would \
         grant scopes or an environment the calling key does not hold",
    ),
    (
        StatusCode::FORBIDDEN,
        "widening_refused",
        "the change would make a key less restricted than the calling key: a wider IP \
         allowlist, a later (or no) expiry, a higher (or the default) rate limit",
    ),
    (
        StatusCode::FORBIDDEN,
        "environment_required",
        "a verified credential (a JWT) that names no environment, on a deployment serving \
         several: it may not manage keys, reads included",
    ),
    (
        StatusCode::NOT_FOUND,
        "not_found",
        "no key with that id in the calling key's account and environment",
    ),
    (
        StatusCode::CONFLICT,
        "api_key_limit_reached",
        "the account has its maximum number of active keys",
    ),
    (
        StatusCode::CONFLICT,
        "api_key_revoked",
        "the key is revoked and cannot be changed",
    ),
    (
        StatusCode::PAYLOAD_TOO_LARGE,
        "body_too_large",
        "the body is larger than 64 KiB",
    ),
    (
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
        "the calling key's quota is used up",
    ),
    (
        StatusCode::SERVICE_UNAVAILABLE,
        "store_unavailable",
        "the key store failed or timed out; retry later",
    ),
    (
        StatusCode::SERVICE_UNAVAILABLE,
        "verifier_unavailable",
        "the configured credential verifier failed or timed out; retry later",
    ),
];

/// Declares a reusable error response that carries exactly `codes`.
macro_rules! error_response {
    ($($(#[$doc:meta])* $name:ident: $summary:literal [$($code:literal),+];)+) => {$(
        $(#[$doc])*
        pub(super) struct $name;

        impl<'r> ToResponse<'r> for $name {
            fn response() -> (&'r str, RefOr<Response>) {
                (stringify!($name), error_response($summary, &[$($code),+]).into())
            }
        }
    )+};
}

error_response! {
    /// 400, from the layer or the handler.
    BadRequest: "Bad request" ["invalid_request", "read_only_field"];
    /// 400 of a usage query.
    BadUsageQuery: "Bad request or usage range"
        ["invalid_request", "unknown_granularity", "usage_range_reversed",
         "usage_range_too_large", "usage_range_beyond_retention"];
    /// 401, from the layer.
    Unauthorized: "The key is missing or not usable"
        ["unauthorized", "invalid_api_key", "revoked_api_key", "disabled_api_key",
         "expired_api_key", "wrong_environment", "invalid_token"];
    /// 403 of a read, from the layer.
    Forbidden: "The key may not make this request"
        ["ip_not_allowed", "insufficient_scope", "environment_required"];
    /// 403 of a change, from the layer or the no-widening rules.
    ForbiddenChange: "The key may not make this request or this change"
        ["ip_not_allowed", "insufficient_scope", "widening_refused", "environment_required"];
    /// 404.
    NotFound: "No such key" ["not_found"];
    /// 409 of a creation.
    LimitReached: "Too many active keys" ["api_key_limit_reached"];
    /// 409 of a change.
    RevokedConflict: "The key is revoked" ["api_key_revoked"];
    /// 413.
    BodyTooLarge: "The body is too large" ["body_too_large"];
    /// 429, from the layer.
    RateLimited: "Too many requests" ["rate_limited"];
    /// 503, from the layer or the store.
    Unavailable: "The key store or the credential verifier is unavailable"
        ["store_unavailable", "verifier_unavailable"];
}

/// The error body, `{"error":{"code":…,"message":…}}`, with `code` one of `codes`.
fn error_response(summary: &str, codes: &[&str]) -> Response {
    let mut description = format!("{summary}. `error.code` is");
    for (i, code) in codes.iter().enumerate() {
        let (_, _, when) = ERROR_CODES
            .iter()
            .find(|(_, c, _)| c == code)
            .expect("every code of a response is in ERROR_CODES");
        let sep = if i == 0 { " " } else { "; or " };
        description.push_str(&format!("{sep}`{code}`: {when}"));
    }
    description.push('.');
    let detail = ObjectBuilder::new()
        .property(
            "code",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some(codes.iter().copied())),
        )
        .required("code");
    let schema = AllOfBuilder::new()
        .item(Ref::from_schema_name("Error"))
        .item(
            ObjectBuilder::new()
                .property("error", detail)
                .required("error"),
        );
    let mut response = ResponseBuilder::new()
        .description(description)
        .content("application/json", Content::new(Some(schema)));
    if codes.contains(&"unauthorized") {
        let challenge = Header::new(ObjectBuilder::new().schema_type(Type::String));
        response = response.header("WWW-Authenticate", challenge);
    }
    if codes.contains(&"rate_limited") {
        let wait = ObjectBuilder::new()
            .schema_type(Type::Integer)
            .minimum(Some(1));
        response = response.header("Retry-After", Header::new(wait));
    }
    response.build()
}

/// `{"error":{"code":"…","message":"…"}}`.
pub(super) fn error_schema() -> Schema {
    let code = ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(ERROR_CODES.iter().map(|(_, code, _)| *code)))
        .description(Some("A stable, machine-readable code"));
    let message = ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some("What went wrong and what to do next, for people"));
    let detail = ObjectBuilder::new()
        .property("code", code)
        .property("message", message)
        .required("code")
        .required("message");
    ObjectBuilder::new()
        .property("error", detail)
        .required("error")
        .description(Some("Every refusal, from the keygate layer or the handler"))
        .into()
}
