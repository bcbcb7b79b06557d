//! [`EventsRouter`]: the webhook events of the management API (features `webhooks` and
//! `admin`): list them by status, and re-send a failed one.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use http::StatusCode;
use serde::{Deserialize, Serialize};

use super::{EventQuery, EventRecord, EventStatus, Webhooks};
use crate::admin::{Access, AdminError, JsonEnvelope};
use crate::identity::Identity;
use crate::manage::{KeyManager, ManageError};

/// Builds the router of webhook events:
///
/// - `GET {path}?status=failed&limit=25&after=<id>`: events in a status (`failed` by
///   default, `pending` or `delivered`), oldest first, as
///   `{"data":[…],"next_cursor":"<id>"|null}`; pass `next_cursor` as `after` for the
///   next page;
/// - `POST {path}/{id}/retry`: makes a failed event pending again, with a new retry
///   horizon (202 with the event); 404 `not_found` when there is no such failed event.
///
/// The default `path` is `/v1/webhook-events`, and only keys with the `admin` scope
/// are let through ([`EventsRouter::access`]). A key sees and re-sends only events
/// about keys of its own account, unless [`EventsRouter::all_accounts`] is set for an
/// operator's deployment. Refusals are the management API's (`invalid_request`,
/// `not_found`, `store_unavailable`).
///
/// ```
/// use keygate::webhooks::{EventsRouter, WebhookSecret, Webhooks};
/// use keygate::{Keygate, MemoryStore};
///
/// # fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let webhooks = Webhooks::builder("https://hooks.example.com/k", WebhookSecret::generate())
///     .build()?;
/// let (_gate, manager) = Keygate::managed(MemoryStore::new())
///     .webhooks(webhooks.clone())
///     .build();
/// let app: axum::Router = EventsRouter::new(webhooks, &manager)
///     .path("/v2/hooks/events")
///     .build();
/// # Ok(()) }
/// ```
#[must_use = "a builder does nothing until `build` is called"]
pub struct EventsRouter {
    webhooks: Webhooks,
    manager: KeyManager,
    path: String,
    access: Access,
    all_accounts: bool,
}

impl std::fmt::Debug for EventsRouter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventsRouter")
            .field("path", &self.path)
            .field("access", &self.access)
            .field("all_accounts", &self.all_accounts)
            .finish_non_exhaustive()
    }
}

struct EventsApi {
    webhooks: Webhooks,
    all_accounts: bool,
}

impl EventsRouter {
    /// The events of `webhooks`, behind the keygate layer of `manager`'s gate.
    pub fn new(webhooks: Webhooks, manager: &KeyManager) -> Self {
        Self {
            webhooks,
            manager: manager.clone(),
            path: "/v1/webhook-events".to_owned(),
            access: Access::any_of(["admin"]),
            all_accounts: false,
        }
    }

    /// The collection's path. Panics unless it starts with `/`, does not end with one,
    /// and has no `{` or `}`.
    pub fn path(mut self, path: impl Into<String>) -> Self {
        let path = path.into();
        assert!(
            path.starts_with('/') && !path.ends_with('/') && !path.contains(['{', '}']),
            "a path starts with '/', does not end with '/' and has no '{{' or '}}': {path:?}"
        );
        self.path = path;
        self
    }

    /// Which keys may list and re-send events. Default: `admin` scope.
    /// [`Access::Off`] serves no route.
    pub fn access(mut self, access: Access) -> Self {
        self.access = access;
        self
    }

    /// Lets callers see and re-send the events of every account: for a deployment whose
    /// management keys are the operator's own.
    pub fn all_accounts(mut self) -> Self {
        self.all_accounts = true;
        self
    }

    /// The router, ready to `merge`. Its routes carry their own keygate layer.
    pub fn build(self) -> Router {
        let layer = self.manager.keygate().layer();
        let layer = match self.access {
            Access::Off => return Router::new(),
            Access::AnyKey => layer,
            Access::Scopes(requirement) => layer.require(requirement),
        };
        let api = Arc::new(EventsApi {
            webhooks: self.webhooks,
            all_accounts: self.all_accounts,
        });
        Router::new()
            .route(&self.path, get(list))
            .route(&format!("{}/{{id}}/retry", self.path), post(retry))
            .route_layer(layer)
            .with_state(api)
    }

    /// The OpenAPI description of these routes at their default path, to merge into
    /// [`crate::admin::openapi_for`]'s document.
    pub fn openapi() -> utoipa::openapi::OpenApi {
        <EventsDoc as utoipa::OpenApi>::openapi()
    }
}

#[derive(Deserialize)]
struct ListParams {
    status: Option<String>,
    limit: Option<String>,
    after: Option<String>,
}

/// One page of events.
#[derive(Serialize, utoipa::ToSchema)]
struct EventPage {
    data: Vec<EventRecord>,
    /// The id to pass as `after` for the next page; `null` on the last one.
    next_cursor: Option<String>,
}

fn refuse(e: impl Into<AdminError>) -> Response {
    let e: AdminError = e.into();
    let (parts, body) = e.render(&JsonEnvelope).into_parts();
    Response::from_parts(parts, axum::body::Body::from(body))
}

fn unavailable(e: crate::store::StoreError) -> Response {
    refuse(ManageError::Store(e))
}

/// Lists webhook events in one status.
#[utoipa::path(
    get,
    path = "/v1/webhook-events",
    operation_id = "listWebhookEvents",
    tag = "webhook-events",
    params(
        ("status" = Option<EventStatus>, Query,
            description = "Which events: `failed` (the default), `pending` or `delivered`"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 100,
            description = "Events per page, 1 to 100 (default 25)"),
        ("after" = Option<String>, Query,
            description = "The `next_cursor` of the previous page"),
    ),
    responses(
        (status = 200, description = "One page of events, oldest first", body = EventPage),
        (status = 400, description = "A bad `status` or `limit` (`invalid_request`)"),
        (status = 503, description = "The outbox cannot be read (`store_unavailable`)"),
    ),
)]
async fn list(
    State(api): State<Arc<EventsApi>>,
    identity: Identity,
    Query(params): Query<ListParams>,
) -> Response {
    let status = match params.status.as_deref() {
        None => EventStatus::Failed,
        Some(s) => match EventStatus::parse(s) {
            Some(status) => status,
            None => {
                return refuse(AdminError::invalid(
                    "status: use failed, pending or delivered",
                ))
            }
        },
    };
    let limit = match params.limit.as_deref().map(str::parse::<usize>) {
        None => 25,
        Some(Ok(n)) if (1..=100).contains(&n) => n,
        Some(_) => return refuse(AdminError::invalid("limit: a whole number from 1 to 100")),
    };
    let mut query = EventQuery::default().status(status).limit(limit);
    if let Some(after) = params.after.filter(|a| !a.is_empty()) {
        query = query.after(after);
    }
    if !api.all_accounts {
        query = query.account(identity.account_id().clone());
    }
    match api.webhooks.events(&query).await {
        Ok(data) => {
            let next_cursor = (data.len() == limit)
                .then(|| data.last().map(|e| e.id.clone()))
                .flatten();
            Json(EventPage { data, next_cursor }).into_response()
        }
        Err(e) => unavailable(e),
    }
}

/// Sends a failed webhook event again.
#[utoipa::path(
    post,
    path = "/v1/webhook-events/{id}/retry",
    operation_id = "retryWebhookEvent",
    tag = "webhook-events",
    params(("id" = String, Path, description = "The event's `webhook-id`")),
    responses(
        (status = 202, description = "The event is pending again, with a new retry horizon"),
        (status = 404, description = "No failed event with this id (`not_found`)"),
        (status = 503, description = "The outbox cannot be written (`store_unavailable`)"),
    ),
)]
async fn retry(
    State(api): State<Arc<EventsApi>>,
    identity: Identity,
    Path(id): Path<String>,
) -> Response {
    let account = (!api.all_accounts).then(|| identity.account_id());
    match api.webhooks.retry(&id, account).await {
        Ok(true) => (
            StatusCode::ACCEPTED,
            Json(serde_json::json!({"id": id, "status": "pending"})),
        )
            .into_response(),
        Ok(false) => refuse(ManageError::NotFound),
        Err(e) => unavailable(e),
    }
}

#[derive(utoipa::OpenApi)]
#[openapi(
    paths(list, retry),
    components(schemas(EventPage, EventRecord, EventStatus)),
    tags((name = "webhook-events", description = "Webhook events: failed deliveries and re-sends")),
)]
struct EventsDoc;
