//! [`Envelope`]: how every answer of the management API is rendered, successes and
//! refusals alike, and its default, [`JsonEnvelope`].

use std::sync::Arc;

use bytes::Bytes;
use http::header::{HeaderValue, CONTENT_TYPE};
use http::{Response, StatusCode};
use serde::Serialize;
use serde_json::{json, Value};

use crate::refusal::{Refusal, RenderRefusal};

/// What the management API answers, before the [`Envelope`] renders it.
///
/// Keys arrive already shaped by the router's [`super::KeyFields`] (names, hidden
/// fields, the plaintext once).
#[derive(Debug)]
#[non_exhaustive]
pub enum Reply<'a> {
    /// One key: `201 Created` from a creation, `200 OK` from a get, update or roll.
    Key {
        /// The status keygate proposes.
        status: StatusCode,
        /// The key.
        key: Value,
    },
    /// One page of keys (`200 OK`).
    Page {
        /// The keys, oldest first.
        keys: Vec<Value>,
        /// With offset pagination, this page's number (from 1); `None` with cursors.
        page: Option<u32>,
        /// The next page, when there is one.
        next: Option<NextPage>,
    },
    /// A key was revoked (also when it was already) or deleted.
    Removed {
        /// What `DELETE` did.
        mode: super::DeleteMode,
    },
    /// A key's usage buckets (`200 OK`), oldest first.
    Usage {
        /// The buckets.
        buckets: &'a [crate::activity::UsageBucket],
    },
    /// A refusal, from the keygate layer in front of a route or from the handler.
    Error(ErrorReply<'a>),
}

/// A refusal. Serializes as `{"code":"…","message":"…"}`.
#[derive(Clone, Copy, Debug, Serialize)]
#[non_exhaustive]
pub struct ErrorReply<'a> {
    /// The HTTP status.
    #[serde(skip)]
    pub status: StatusCode,
    /// The stable machine-readable code, such as `not_found`.
    pub code: &'a str,
    /// What went wrong, for people. Never holds a secret.
    pub message: &'a str,
}

impl<'a> ErrorReply<'a> {
    /// A refusal with this status, code and message.
    pub fn new(status: StatusCode, code: &'a str, message: &'a str) -> Self {
        Self {
            status,
            code,
            message,
        }
    }
}

/// Where the next page of a list is.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct NextPage {
    /// The path and query that fetch it, such as `/v2/keys?limit=25&cursor=…`: a
    /// relative reference to put in a `links.next`, or an absolute URL after the
    /// router's [`super::RouterBuilder::public_base_url`]. It starts with the router's
    /// base path, so a router mounted with `Router::nest` should have the whole path as
    /// its base path instead.
    pub url: String,
    /// With cursor pagination, the `cursor` parameter of that page.
    pub cursor: Option<String>,
    /// With offset pagination, the `page` parameter of that page.
    pub page: Option<u32>,
}

/// Renders every answer of the management API: keys, pages, removals and refusals.
/// The router also renders the keygate layer's refusals on its routes through it, so no
/// answer bypasses it.
///
/// Implemented for closures `Fn(Reply<'_>) -> R` where `R` is a whole
/// `Response<Bytes>` or a `(StatusCode, serde_json::Value)` JSON answer (see
/// [`IntoReplyResponse`]). [`Reply`] is non-exhaustive: hand the replies you do not
/// reshape to [`JsonEnvelope`].
///
/// ```
/// use bytes::Bytes;
/// use http::Response;
/// use keygate::admin::{json_response, Envelope, JsonEnvelope, Reply};
/// use serde_json::json;
///
/// // Every key wrapped in `{"data": …}`; everything else as by default.
/// let wrap = |reply: Reply<'_>| -> Response<Bytes> {
///     match reply {
///         Reply::Key { status, key } => json_response(status, &json!({ "data": key })),
///         other => JsonEnvelope.render(other),
///     }
/// };
/// # fn takes(_: impl Envelope) {}
/// # takes(wrap);
/// ```
pub trait Envelope: Send + Sync + 'static {
    /// The response for `reply`. keygate adds `WWW-Authenticate`, `Retry-After` and the
    /// rate-limit headers to the layer's refusals unless this sets them.
    fn render(&self, reply: Reply<'_>) -> Response<Bytes>;
}

impl<F, R> Envelope for F
where
    F: Fn(Reply<'_>) -> R + Send + Sync + 'static,
    R: IntoReplyResponse,
{
    fn render(&self, reply: Reply<'_>) -> Response<Bytes> {
        self(reply).into_reply_response()
    }
}

/// What an envelope closure may return.
pub trait IntoReplyResponse {
    /// The response.
    fn into_reply_response(self) -> Response<Bytes>;
}

impl IntoReplyResponse for Response<Bytes> {
    fn into_reply_response(self) -> Response<Bytes> {
        self
    }
}

impl IntoReplyResponse for (StatusCode, Value) {
    /// `Content-Type: application/json`, as [`json_response`].
    fn into_reply_response(self) -> Response<Bytes> {
        json_response(self.0, &self.1)
    }
}

/// The default envelope, that of [`super::router`]:
///
/// - a key: the key itself;
/// - a page: `{"data":[…],"next_cursor":…}` with cursors, `{"data":[…],"page":N,
///   "next_page":…}` with offsets (`null` on the last page);
/// - a removal: `204 No Content`, no body;
/// - a refusal: `{"error":{"code":"…","message":"…"}}`.
///
/// Every body is `Content-Type: application/json`.
#[derive(Clone, Copy, Debug, Default)]
pub struct JsonEnvelope;

impl Envelope for JsonEnvelope {
    fn render(&self, reply: Reply<'_>) -> Response<Bytes> {
        match reply {
            Reply::Key { status, key } => json_response(status, &key),
            Reply::Page {
                keys,
                page: None,
                next,
            } => {
                let next = next.and_then(|n| n.cursor);
                json_response(
                    StatusCode::OK,
                    &json!({ "data": keys, "next_cursor": next }),
                )
            }
            Reply::Page {
                keys,
                page: Some(page),
                next,
            } => {
                let next = next.and_then(|n| n.page);
                let body = json!({ "data": keys, "page": page, "next_page": next });
                json_response(StatusCode::OK, &body)
            }
            Reply::Removed { .. } => {
                let mut res = Response::new(Bytes::new());
                *res.status_mut() = StatusCode::NO_CONTENT;
                res
            }
            Reply::Usage { buckets } => json_response(StatusCode::OK, &json!({ "data": buckets })),
            Reply::Error(e) => crate::refusal::json_error(e.status, e.code, e.message),
        }
    }
}

/// A JSON response: `body` with `status` and `Content-Type: application/json`.
pub fn json_response(status: StatusCode, body: &Value) -> Response<Bytes> {
    let mut res = Response::new(Bytes::from(body.to_string()));
    *res.status_mut() = status;
    res.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    res
}

/// The keygate layer's refusals rendered by an [`Envelope`], as [`Reply::Error`]: a
/// [`crate::refusal::RenderRefusal`] for [`crate::KeygateLayer::renderer`].
///
/// The management router renders the layer's refusals on its own routes this way when
/// it has an envelope ([`super::RouterBuilder::envelope`]). Routes of your own mounted
/// beside it answer in the same shape with it, so that a client meets one error format
/// across the API. keygate still adds `WWW-Authenticate`, `Retry-After` and the
/// rate-limit headers.
///
/// ```
/// use axum::{routing::get, Router};
/// use bytes::Bytes;
/// use http::Response;
/// use keygate::admin::{self, json_response, EnvelopeRefusals, JsonEnvelope, Reply};
/// use keygate::{Keygate, MemoryStore};
/// use serde_json::json;
///
/// // `{"success": false, "errors": [{"code": …, "message": …}]}` for every refusal.
/// fn envelope(reply: Reply<'_>) -> Response<Bytes> {
///     match reply {
///         Reply::Error(e) => json_response(
///             e.status,
///             &json!({ "success": false, "errors": [{ "code": e.code, "message": e.message }] }),
///         ),
///         other => JsonEnvelope.render(other),
///     }
/// }
/// # use keygate::admin::Envelope as _;
///
/// let (gate, manager) = Keygate::managed(MemoryStore::new()).build();
/// let app: Router = Router::new()
///     .route(
///         "/v1/usage",
///         get(|| async { "ok" }).route_layer(gate.layer().renderer(EnvelopeRefusals::new(envelope))),
///     )
///     .merge(admin::builder(manager).envelope(envelope).build());
/// ```
#[derive(Clone)]
pub struct EnvelopeRefusals(pub(super) Arc<dyn Envelope>);

impl EnvelopeRefusals {
    /// Renders the layer's refusals with `envelope`.
    pub fn new(envelope: impl Envelope) -> Self {
        Self(Arc::new(envelope))
    }
}

impl std::fmt::Debug for EnvelopeRefusals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnvelopeRefusals").finish_non_exhaustive()
    }
}

impl RenderRefusal for EnvelopeRefusals {
    fn render(&self, refusal: &Refusal<'_>) -> Response<Bytes> {
        let error = refusal.error;
        let message = error.message();
        self.0.render(Reply::Error(ErrorReply::new(
            error.status(),
            error.code(),
            &message,
        )))
    }
}
