//! The handlers, each with the OpenAPI description of its operation. The refusals of the
//! keygate layer in front of every route (400, 401, 403, 429, 503) are added to every
//! operation by [`super::openapi`].

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::identity::Identity;
use crate::manage::{KeyManager, KeyUpdate, KeyView, ListQuery, NewKey, Page};

use super::body::{
    json_body, parse_time, with_plaintext, CreateBody, RollBody, UpdateBody, WithPlaintext,
};
use super::error::{bad_request, body, key_id, ApiError};
use super::refusals::{
    BadRequest, BodyTooLarge, ForbiddenChange, LimitReached, NotFound, RevokedConflict,
};
use super::MAX_GRACE_SECONDS;

/// Creates a key in the calling key's account, no less restricted than the caller.
#[utoipa::path(
    post,
    path = "/v1/api-keys",
    operation_id = "createApiKey",
    tag = "api-keys",
    request_body(content = CreateBody, content_type = "application/json"),
    responses(
        (status = 201, description = "The new key, with its plaintext shown this once",
            body = WithPlaintext,
            links(
                ("GetKey" = (operation_id = "getApiKey", parameters(("id" = "$response.body#/id")))),
                ("UpdateKey" = (operation_id = "updateApiKey", parameters(("id" = "$response.body#/id")))),
                ("RollKey" = (operation_id = "rollApiKey", parameters(("id" = "$response.body#/id")))),
                ("RevokeKey" = (operation_id = "revokeApiKey", parameters(("id" = "$response.body#/id")))),
            )),
        (status = 400, response = BadRequest),
        (status = 403, response = ForbiddenChange),
        (status = 409, response = LimitReached),
        (status = 413, response = BodyTooLarge),
    ),
)]
pub(super) async fn create(
    State(manager): State<KeyManager>,
    actor: Identity,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body: CreateBody = json_body(&body(raw)?)?;
    let expires_at = body
        .expires_at
        .as_deref()
        .map(|t| parse_time("expires_at", t))
        .transpose()?;
    let new = NewKey {
        name: body.name,
        scopes: body.scopes,
        ips: body.ips,
        expires_at,
        rate_limit: body.rate_limit,
        metadata: body.metadata.unwrap_or_default(),
        environment: body.environment,
        prefix: body.prefix,
    };
    let created = manager.acting_as(&actor).create(new).await?;
    Ok(with_plaintext(StatusCode::CREATED, &created))
}

/// Lists the calling key's account's keys of its environment, oldest first.
#[utoipa::path(
    get,
    path = "/v1/api-keys",
    operation_id = "listApiKeys",
    tag = "api-keys",
    params(
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 100,
            description = "Keys per page, 1 to 100 (default 20)"),
        ("cursor" = Option<String>, Query,
            description = "The `next_cursor` of the previous page"),
    ),
    responses(
        (status = 200, description = "One page of keys", body = Page),
        (status = 400, response = BadRequest),
    ),
)]
pub(super) async fn list(
    State(manager): State<KeyManager>,
    actor: Identity,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let mut limit = None;
    let mut cursor = None;
    for (name, value) in form_urlencoded::parse(query.as_deref().unwrap_or("").as_bytes()).take(32)
    {
        match name.as_ref() {
            "limit" => {
                limit = Some(value.parse::<usize>().map_err(|_| {
                    bad_request("limit: must be a whole number between 1 and 100".into())
                })?)
            }
            "cursor" => cursor = Some(value.into_owned()),
            _ => {}
        }
    }
    let query = ListQuery {
        limit,
        cursor,
        ..ListQuery::default()
    };
    let page = manager.acting_as(&actor).list(&query).await?;
    Ok(axum::Json(page).into_response())
}

/// One key of the calling key's account and environment.
#[utoipa::path(
    get,
    path = "/v1/api-keys/{id}",
    operation_id = "getApiKey",
    tag = "api-keys",
    params(("id" = String, Path, description = "The key's id")),
    responses(
        (status = 200, description = "The key", body = KeyView),
        (status = 404, response = NotFound),
    ),
)]
pub(super) async fn show(
    State(manager): State<KeyManager>,
    actor: Identity,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let view = manager.acting_as(&actor).get(&key_id(id)?).await?;
    Ok(axum::Json(view).into_response())
}

/// Changes a key no less restricted than the caller, keeping it so.
#[utoipa::path(
    patch,
    path = "/v1/api-keys/{id}",
    operation_id = "updateApiKey",
    tag = "api-keys",
    params(("id" = String, Path, description = "The key's id")),
    request_body(content = UpdateBody, content_type = "application/json"),
    responses(
        (status = 200, description = "The key as changed", body = KeyView),
        (status = 400, response = BadRequest),
        (status = 403, response = ForbiddenChange),
        (status = 404, response = NotFound),
        (status = 409, response = RevokedConflict),
        (status = 413, response = BodyTooLarge),
    ),
)]
pub(super) async fn update(
    State(manager): State<KeyManager>,
    actor: Identity,
    id: Result<Path<String>, PathRejection>,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let id = key_id(id)?;
    let body: UpdateBody = json_body(&body(raw)?)?;
    let expires_at = match body.expires_at {
        None => None,
        Some(None) => Some(None),
        Some(Some(t)) => Some(Some(parse_time("expires_at", &t)?)),
    };
    let update = KeyUpdate {
        name: body.name,
        scopes: body.scopes,
        ips: body.ips,
        expires_at,
        rate_limit: body.rate_limit,
        metadata: None,
        metadata_patch: body.metadata,
        disabled: body.disabled,
    };
    let view = manager.acting_as(&actor).update(&id, update).await?;
    Ok(axum::Json(view).into_response())
}

/// Revokes a key no less restricted than the caller.
///
/// Revoking the calling key itself is allowed: its next request answers 401
/// `revoked_api_key`.
#[utoipa::path(
    delete,
    path = "/v1/api-keys/{id}",
    operation_id = "revokeApiKey",
    tag = "api-keys",
    params(("id" = String, Path, description = "The key's id")),
    responses(
        (status = 204, description = "Revoked, now or already"),
        (status = 403, response = ForbiddenChange),
        (status = 404, response = NotFound),
    ),
)]
pub(super) async fn revoke(
    State(manager): State<KeyManager>,
    actor: Identity,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    manager.acting_as(&actor).revoke(&key_id(id)?).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Issues a new secret for a key; the old one keeps working for `grace_seconds`.
#[utoipa::path(
    post,
    path = "/v1/api-keys/{id}/roll",
    operation_id = "rollApiKey",
    tag = "api-keys",
    params(("id" = String, Path, description = "The key's id")),
    request_body(content = Option<RollBody>, content_type = "application/json"),
    responses(
        (status = 200, description = "The key with its new plaintext, shown this once", body = WithPlaintext),
        (status = 400, response = BadRequest),
        (status = 403, response = ForbiddenChange),
        (status = 404, response = NotFound),
        (status = 409, response = RevokedConflict),
        (status = 413, response = BodyTooLarge),
    ),
)]
pub(super) async fn roll(
    State(manager): State<KeyManager>,
    actor: Identity,
    id: Result<Path<String>, PathRejection>,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let id = key_id(id)?;
    let raw = body(raw)?;
    // The body may be left out, or be `null`.
    let body = if raw.iter().all(u8::is_ascii_whitespace) {
        RollBody::default()
    } else {
        json_body::<Option<RollBody>>(&raw)?.unwrap_or_default()
    };
    let grace = match body.grace_seconds {
        Some(s) if s > MAX_GRACE_SECONDS => {
            return Err(bad_request(format!(
                "grace_seconds: must be at most {MAX_GRACE_SECONDS}"
            )))
        }
        Some(s) => Some(Duration::from_secs(s)),
        None => None,
    };
    let created = manager.acting_as(&actor).roll(&id, grace).await?;
    Ok(with_plaintext(StatusCode::OK, &created))
}
