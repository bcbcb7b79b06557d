//! A ready-made management HTTP API (feature `admin`), protected by keygate itself.
//!
//! | Request | Scope | Answer |
//! |---|---|---|
//! | `POST /v1/api-keys` | `admin` | 201 with the key and `"key": "<plaintext>"`, once |
//! | `GET /v1/api-keys?limit=&cursor=` | `admin` or `read-only` | `{"data":[...],"next_cursor":...}` |
//! | `GET /v1/api-keys/{id}` | `admin` or `read-only` | 200, or 404 `not_found` |
//! | `PATCH /v1/api-keys/{id}` | `admin` | 200, or 404 |
//! | `DELETE /v1/api-keys/{id}` | `admin` | 204, also when already revoked; 404 if it never existed |
//! | `POST /v1/api-keys/{id}/roll` | `admin` | 200 with the new plaintext, once; body `{"grace_seconds": N}` optional |
//!
//! Every route acts for the calling key through [`crate::ActingManager`]: it sees only its
//! own account's keys of its own environment (others answer 404 `not_found`), and never
//! makes or touches a key less restricted than itself (403 `insufficient_scope` for
//! scopes and environments, 403 `widening_refused` for IP allowlists, expiry and rate
//! limits). A key it creates without `ips`, `expires_at` or `rate_limit` inherits the
//! caller's own.
//!
//! `expires_at` is any RFC 3339 time with an offset, and is shown back in UTC. Names are
//! 1 to 50 characters, not only whitespace or invisible characters, with no control or
//! bidirectional-formatting characters. Metadata is at most
//! [`crate::ManagerConfig::max_metadata_bytes`] (4 KiB) of JSON.

use std::time::{Duration, SystemTime};

use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};

use crate::identity::Identity;
use crate::key::Environment;
use crate::manage::{CreatedKey, KeyManager, KeyUpdate, KeyView, ManageError, NewKey};
use crate::store::record::{KeyId, RateLimit};
use crate::verify::render::json_error;

/// Largest accepted request body.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// Longest roll grace period: 30 days.
pub const MAX_GRACE_SECONDS: u64 = 30 * 24 * 3600;

/// The management API as an axum router, ready to `merge` or `nest`.
///
/// Every route carries its own keygate layer from `manager`'s [`crate::Keygate`], with
/// the scope the table above names; mount it without another keygate layer in front.
pub fn router(manager: KeyManager) -> Router {
    let gate = manager.keygate().clone();
    let admin = || gate.layer().require_any(["admin"]);
    let reader = || gate.layer().require_any(["admin", "read-only"]);
    Router::new()
        .route(
            "/v1/api-keys",
            get(list)
                .route_layer(reader())
                .merge(post(create).route_layer(admin())),
        )
        .route(
            "/v1/api-keys/{id}",
            get(show).route_layer(reader()).merge(
                axum::routing::patch(update)
                    .delete(revoke)
                    .route_layer(admin()),
            ),
        )
        .route("/v1/api-keys/{id}/roll", post(roll).route_layer(admin()))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(manager)
}

struct ApiError(ManageError);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        json_error(self.0.status(), self.0.code(), &self.0.to_string()).map(Body::from)
    }
}

impl From<ManageError> for ApiError {
    fn from(e: ManageError) -> Self {
        Self(e)
    }
}

fn bad_request(message: String) -> ApiError {
    ApiError(ManageError::InvalidRequest(message))
}

/// Parses a JSON body with errors that name the field.
fn json_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
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
        bad_request(message)
    })
}

/// Any RFC 3339 time, with any offset, normalised to UTC.
fn parse_time(field: &str, value: &str) -> Result<SystemTime, ApiError> {
    crate::manage::parse_rfc3339(value).ok_or_else(|| {
        bad_request(format!(
            "{field}: expected an RFC 3339 time with an offset, such as \
             2030-01-01T00:00:00Z or 2030-01-01T09:00:00+09:00"
        ))
    })
}

fn key_id(raw: &str) -> Result<KeyId, ApiError> {
    KeyId::parse(raw).ok_or(ApiError(ManageError::NotFound))
}

/// Distinguishes an absent field (`None`) from `null` (`Some(None)`).
fn double_option<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    name: String,
    #[serde(default)]
    scopes: Vec<String>,
    #[serde(default)]
    ips: Vec<String>,
    #[serde(default)]
    expires_at: Option<String>,
    #[serde(default)]
    rate_limit: Option<RateLimit>,
    #[serde(default)]
    metadata: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(default)]
    environment: Option<Environment>,
    #[serde(default)]
    prefix: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateBody {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    scopes: Option<Vec<String>>,
    #[serde(default)]
    ips: Option<Vec<String>>,
    #[serde(default, deserialize_with = "double_option")]
    expires_at: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    rate_limit: Option<Option<RateLimit>>,
    #[serde(default)]
    metadata: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(default)]
    disabled: Option<bool>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RollBody {
    #[serde(default)]
    grace_seconds: Option<u64>,
}

/// A key view plus its one-time plaintext.
#[derive(Serialize)]
struct WithPlaintext<'a> {
    #[serde(flatten)]
    view: &'a KeyView,
    key: &'a str,
}

fn with_plaintext(status: StatusCode, created: &CreatedKey) -> Response {
    let body = WithPlaintext {
        view: &created.view,
        key: created.key.expose_secret(),
    };
    (status, axum::Json(body)).into_response()
}

async fn create(
    State(manager): State<KeyManager>,
    actor: Identity,
    body: Bytes,
) -> Result<Response, ApiError> {
    let body: CreateBody = json_body(&body)?;
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

async fn list(
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
    let page = manager
        .acting_as(&actor)
        .list(limit, cursor.as_deref())
        .await?;
    Ok(axum::Json(page).into_response())
}

async fn show(
    State(manager): State<KeyManager>,
    actor: Identity,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let view = manager.acting_as(&actor).get(&key_id(&id)?).await?;
    Ok(axum::Json(view).into_response())
}

async fn update(
    State(manager): State<KeyManager>,
    actor: Identity,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let id = key_id(&id)?;
    let body: UpdateBody = json_body(&body)?;
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
        metadata: body.metadata,
        disabled: body.disabled,
    };
    let view = manager.acting_as(&actor).update(&id, update).await?;
    Ok(axum::Json(view).into_response())
}

async fn revoke(
    State(manager): State<KeyManager>,
    actor: Identity,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    manager.acting_as(&actor).revoke(&key_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn roll(
    State(manager): State<KeyManager>,
    actor: Identity,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let id = key_id(&id)?;
    let body: RollBody = if body.iter().all(u8::is_ascii_whitespace) {
        RollBody::default()
    } else {
        json_body(&body)?
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
