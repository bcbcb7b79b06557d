//! The handlers, each with the OpenAPI description of its operation in the default
//! router's configuration. The refusals of the keygate layer in front of every route
//! (400, 401, 403, 429, 503) are added to every operation by [`super::openapi`].

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;

use crate::identity::Identity;
use crate::manage::{KeyView, Page};
use crate::store::KeyStatusFilter;

use super::body::{parse_json, RollBody, WithPlaintext};
use super::body::{CreateBody, UpdateBody};
use super::envelope::Reply;
use super::error::{key_id, read_body, AdminError};
use super::refusals::{
    BadRequest, BodyTooLarge, ForbiddenChange, LimitReached, NotFound, RevokedConflict,
};
use super::settings::{AdminApi, DeleteMode};
use super::MAX_GRACE_SECONDS;

type Api = State<Arc<AdminApi>>;

impl AdminApi {
    /// The answer, rendered by the envelope.
    fn answer(&self, outcome: Result<Reply<'_>, AdminError>) -> Response {
        let res = match outcome {
            Ok(reply) => self.envelope.render(reply),
            Err(e) => e.render(&*self.envelope),
        };
        res.map(Body::from)
    }
}

fn actor(identity: Option<Identity>) -> Result<Identity, AdminError> {
    identity.ok_or(AdminError::MissingIdentity)
}

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
    State(api): Api,
    identity: Option<Identity>,
    raw: Result<Bytes, BytesRejection>,
) -> Response {
    let outcome = async {
        let actor = actor(identity)?;
        let new = api
            .fields
            .parse_create(&read_body(raw, api.max_body)?, &actor)?;
        let acting = api.manager.acting_as(&actor);
        let created = acting
            .create(new)
            .await
            .map_err(|e| api.fields.named(e.into()))?;
        let key = api
            .fields
            .render(&created.view, Some(created.key.expose_secret()));
        Ok(Reply::Key {
            status: StatusCode::CREATED,
            key,
        })
    };
    api.answer(outcome.await)
}

/// Lists the calling key's account's keys of its environment, oldest first: by
/// default the active ones (not revoked).
#[utoipa::path(
    get,
    path = "/v1/api-keys",
    operation_id = "listApiKeys",
    tag = "api-keys",
    params(
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 100,
            description = "Keys per page, 1 to 100 (default 25)"),
        ("cursor" = Option<String>, Query,
            pattern = r"^([A-Za-z0-9_-]{12}[A-Za-z0-9_]{1,64})?$",
            description = "The `next_cursor` of the previous page: an opaque token; \
                           empty or left out for the first page"),
        ("status" = Option<KeyStatusFilter>, Query,
            description = "Which keys: `active` (not revoked; the default), `revoked` or `all`"),
    ),
    responses(
        (status = 200, description = "One page of keys", body = Page),
        (status = 400, response = BadRequest),
    ),
)]
pub(super) async fn list(
    State(api): Api,
    identity: Option<Identity>,
    RawQuery(query): RawQuery,
) -> Response {
    let outcome = async {
        let actor = actor(identity)?;
        let acting = api.manager.acting_as(&actor);
        api.pagination
            .page(&acting, &api.fields, &api.links_base, query.as_deref())
            .await
    };
    api.answer(outcome.await)
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
    State(api): Api,
    identity: Option<Identity>,
    id: Result<Path<String>, PathRejection>,
) -> Response {
    let outcome = async {
        let actor = actor(identity)?;
        let view = api.manager.acting_as(&actor).get(&key_id(id)?).await?;
        Ok(Reply::Key {
            status: StatusCode::OK,
            key: api.fields.render(&view, None),
        })
    };
    api.answer(outcome.await)
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
    State(api): Api,
    identity: Option<Identity>,
    id: Result<Path<String>, PathRejection>,
    raw: Result<Bytes, BytesRejection>,
) -> Response {
    let outcome = async {
        let actor = actor(identity)?;
        let id = key_id(id)?;
        let update = api
            .fields
            .parse_update(&read_body(raw, api.max_body)?, &actor)?;
        let acting = api.manager.acting_as(&actor);
        let view = (acting.update(&id, update).await).map_err(|e| api.fields.named(e.into()))?;
        Ok(Reply::Key {
            status: StatusCode::OK,
            key: api.fields.render(&view, None),
        })
    };
    api.answer(outcome.await)
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
pub(super) async fn remove(
    State(api): Api,
    identity: Option<Identity>,
    id: Result<Path<String>, PathRejection>,
) -> Response {
    let outcome = async {
        let actor = actor(identity)?;
        let id = key_id(id)?;
        let acting = api
            .manager
            .acting_as(&actor)
            .recording_updates_in(api.fields.updated_by());
        match api.delete {
            DeleteMode::Revoke => {
                acting.revoke(&id).await?;
            }
            DeleteMode::Delete => acting.delete(&id).await?,
        }
        Ok(Reply::Removed { mode: api.delete })
    };
    api.answer(outcome.await)
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
    State(api): Api,
    identity: Option<Identity>,
    id: Result<Path<String>, PathRejection>,
    raw: Result<Bytes, BytesRejection>,
) -> Response {
    let outcome = async {
        let actor = actor(identity)?;
        let id = key_id(id)?;
        let raw = read_body(raw, api.max_body)?;
        // The body may be left out, or be `null`.
        let first = raw.iter().find(|b| !b.is_ascii_whitespace());
        let body = if first.is_none() {
            RollBody::default()
        } else if first != Some(&b'{') && !raw.trim_ascii().eq(b"null") {
            // serde would read a JSON array as the struct's fields in order.
            return Err(AdminError::invalid(
                "the body must be a JSON object, null, or left out",
            ));
        } else {
            parse_json::<Option<RollBody>>(&raw)?.unwrap_or_default()
        };
        let grace = match body.grace_seconds {
            Some(s) if s > MAX_GRACE_SECONDS => {
                return Err(AdminError::invalid(format!(
                    "grace_seconds: must be at most {MAX_GRACE_SECONDS}"
                )))
            }
            Some(s) => Some(Duration::from_secs(s)),
            None => None,
        };
        let created = api
            .manager
            .acting_as(&actor)
            .recording_updates_in(api.fields.updated_by())
            .roll(&id, grace)
            .await?;
        let key = api
            .fields
            .render(&created.view, Some(created.key.expose_secret()));
        Ok(Reply::Key {
            status: StatusCode::OK,
            key,
        })
    };
    api.answer(outcome.await)
}

/// Any other method on a route: 405 `method_not_allowed` with `Allow`.
pub(super) async fn not_allowed(api: Arc<AdminApi>, allow: String) -> Response {
    api.answer(Err(AdminError::MethodNotAllowed(allow)))
}
