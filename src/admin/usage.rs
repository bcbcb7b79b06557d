//! `GET {base}/{id}/usage`: a key's usage counts (see [`crate::activity`]).

use std::sync::Arc;

use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use serde::Serialize;

use super::envelope::Reply;
use super::error::{key_id, AdminError};
use super::refusals::{BadUsageQuery, NotFound};
use super::settings::AdminApi;
use crate::activity::{Granularity, UsageBucket, UsageQuery, UsageQueryError};
use crate::identity::Identity;
use crate::manage::parse_rfc3339;

/// The span of each bucket.
#[derive(utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)] // Only its schema is used: the handler parses the text itself.
pub(super) enum UsageGranularity {
    /// One minute (the default).
    Minute,
    /// One hour.
    Hour,
    /// One day (UTC).
    Day,
}

/// A key's usage, one bucket per minute, hour or day of the range, oldest first.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct Usage {
    /// The buckets. A bucket's `outcomes` holds only the outcomes that happened in it:
    /// `accepted`, or a refusal's code.
    data: Vec<UsageBucket>,
}

/// The query, parsed: unknown parameters are ignored, a repeated one is refused.
fn parse(query: Option<&str>) -> Result<UsageQuery, AdminError> {
    let mut granularity = None;
    let mut from = None;
    let mut to = None;
    for (name, value) in form_urlencoded::parse(query.unwrap_or("").as_bytes()).take(32) {
        let slot = match name.as_ref() {
            "granularity" => &mut granularity,
            "from" => &mut from,
            "to" => &mut to,
            _ => continue,
        };
        if slot.is_some() {
            return Err(AdminError::invalid(format!("{name}: given more than once")));
        }
        *slot = Some(value.into_owned());
    }
    let granularity = match granularity.as_deref() {
        None => Granularity::Minute,
        Some(text) => Granularity::parse(text).ok_or(AdminError::Manage(
            UsageQueryError::UnknownGranularity.into(),
        ))?,
    };
    let time = |field: &str, text: Option<String>| match text {
        None => Ok(None),
        Some(text) => parse_rfc3339(&text).map(Some).ok_or_else(|| {
            AdminError::invalid(format!(
                "{field}: must be an RFC 3339 time, such as 2026-01-31T12:00:00Z"
            ))
        }),
    };
    let mut q = UsageQuery::new(granularity);
    q.from = time("from", from)?;
    q.to = time("to", to)?;
    Ok(q)
}

/// A key's usage: requests per outcome (`accepted`, or the refusal's code) in each
/// minute, hour or day, for a key of the calling key's account and environment.
///
/// Without `from` and `to`: the last 60 minutes by minute, 48 hours by hour, or 30 days
/// by day, up to and including the current bucket. `from` is rounded down to its
/// bucket's start; `to` is exclusive. At most 1,500 buckets; minute buckets are kept for
/// 48 hours, hour buckets for 30 days and day buckets for 13 months by default. A 400
/// names the problem: `unknown_granularity`, `usage_range_reversed`,
/// `usage_range_too_large`, `usage_range_beyond_retention`, or `invalid_request` for a
/// time that is not RFC 3339.
#[utoipa::path(
    get,
    path = "/v1/api-keys/{id}/usage",
    operation_id = "getApiKeyUsage",
    tag = "api-keys",
    params(
        ("id" = String, Path, description = "The key's id"),
        ("granularity" = Option<UsageGranularity>, Query,
            description = "Each bucket's span: `minute` (the default), `hour` or `day`"),
        ("from" = Option<String>, Query, format = DateTime,
            description = "The first bucket: the one holding this RFC 3339 time"),
        ("to" = Option<String>, Query, format = DateTime,
            description = "The end of the range, exclusive: an RFC 3339 time"),
    ),
    responses(
        (status = 200, description = "The key's usage, oldest bucket first", body = Usage),
        (status = 400, response = BadUsageQuery),
        (status = 404, response = NotFound),
    ),
)]
pub(super) async fn usage(
    State(api): State<Arc<AdminApi>>,
    identity: Option<Identity>,
    id: Result<Path<String>, PathRejection>,
    RawQuery(query): RawQuery,
) -> Response {
    let outcome = async {
        let actor = identity.ok_or(AdminError::MissingIdentity)?;
        let id = key_id(id)?;
        let query = parse(query.as_deref())?;
        let buckets = api.manager.acting_as(&actor).usage(&id, &query).await?;
        Ok::<_, AdminError>(buckets)
    };
    let res = match outcome.await {
        Ok(buckets) => api.envelope.render(Reply::Usage { buckets: &buckets }),
        Err(e) => e.render(&*api.envelope),
    };
    res.map(Body::from)
}
