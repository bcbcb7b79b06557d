//! `GET /v1/api-logs`: the API log of the calling key's account
//! ([`crate::activity::log`]), newest first, filtered and paged.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::response::Response;
use http::StatusCode;

use super::envelope::json_response;
use super::error::AdminError;
use super::refusals::{BadRequest, NotFound};
use super::settings::AdminApi;
use crate::activity::log::{ApiLogPage, ApiLogQuery, MAX_PAGE_SIZE};
use crate::identity::Identity;
use crate::manage::parse_rfc3339;
use crate::store::record::KeyId;

/// Reads the query: `key_id`, `outcome`, `from`, `to`, `cursor`, `limit`; other
/// parameters are ignored. A value that cannot be one is refused naming the parameter;
/// the rest (a known outcome, `from` not after `to`, the cursor) the manager checks.
fn parse(query: Option<&str>) -> Result<ApiLogQuery, AdminError> {
    let mut out = ApiLogQuery::default();
    let time = |name: &str, value: &str| {
        parse_rfc3339(value).ok_or_else(|| {
            AdminError::invalid(format!(
                "{name}: must be an RFC 3339 time, such as 2026-01-01T00:00:00Z"
            ))
        })
    };
    let pairs = form_urlencoded::parse(query.unwrap_or("").as_bytes()).take(32);
    for (name, value) in pairs {
        match name.as_ref() {
            "key_id" => {
                out.key_id = Some(KeyId::parse(&value).ok_or_else(|| {
                    AdminError::invalid("key_id: must be a key id (letters, digits and _)")
                })?);
            }
            "outcome" => out.outcome = Some(value.into_owned()),
            "from" => out.from = Some(time("from", &value)?),
            "to" => out.to = Some(time("to", &value)?),
            "cursor" => out.cursor = Some(value.into_owned()).filter(|c| !c.is_empty()),
            "limit" => {
                out.limit = Some(
                    value
                        .parse::<usize>()
                        .ok()
                        .filter(|l| (1..=MAX_PAGE_SIZE).contains(l))
                        .ok_or_else(|| {
                            AdminError::invalid(format!(
                                "limit: must be a whole number between 1 and {MAX_PAGE_SIZE}"
                            ))
                        })?,
                );
            }
            _ => {}
        }
    }
    Ok(out)
}

/// The API log of the calling key's account: requests of the keys it may see (its
/// account, its environment), newest first. Every refusal of a recognised key is
/// recorded; accepted requests when the deployment samples them.
#[utoipa::path(
    get,
    path = "/v1/api-logs",
    operation_id = "listApiLogs",
    tag = "api-logs",
    params(
        ("key_id" = Option<String>, Query, pattern = r"^[A-Za-z0-9_]{1,64}$",
            description = "Only this key's events; a key the caller may not see answers 404"),
        ("outcome" = Option<ApiLogOutcome>, Query,
            description = "Only events with this outcome: `accepted` or a refusal code"),
        ("from" = Option<String>, Query, format = DateTime,
            description = "Only events at or after this time (RFC 3339)"),
        ("to" = Option<String>, Query, format = DateTime,
            description = "Only events before this time (RFC 3339); a `to` not after \
                           `from` selects nothing"),
        ("cursor" = Option<String>, Query, pattern = r"^([A-Za-z0-9_-]{21}[AQgw])?$",
            description = "The `next_cursor` of the previous page: an opaque token; \
                           empty or left out for the first page"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 100,
            description = "Events per page, 1 to 100 (default 50)"),
    ),
    responses(
        (status = 200, description = "One page of events, newest first", body = ApiLogPage),
        (status = 400, response = BadRequest),
        (status = 404, response = NotFound),
    ),
)]
pub(super) async fn api_logs(
    State(api): State<Arc<AdminApi>>,
    identity: Option<Identity>,
    RawQuery(query): RawQuery,
) -> Response {
    let outcome = async {
        let actor = identity.ok_or(AdminError::MissingIdentity)?;
        let query = parse(query.as_deref())?;
        let page = api.manager.acting_as(&actor).api_logs(&query).await?;
        let body = serde_json::to_value(&page).unwrap_or_default();
        Ok::<_, AdminError>(json_response(StatusCode::OK, &body))
    };
    match outcome.await {
        Ok(res) => res.map(Body::from),
        Err(e) => e.render(&*api.envelope).map(Body::from),
    }
}

/// The outcomes of the API log, for the document: `accepted` and the refusal codes.
#[derive(utoipa::ToSchema)]
#[schema(as = ApiLogOutcome)]
#[allow(dead_code, non_camel_case_types)]
pub(super) enum ApiLogOutcome {
    accepted,
    invalid_api_key,
    revoked_api_key,
    disabled_api_key,
    expired_api_key,
    wrong_environment,
    ip_not_allowed,
    insufficient_scope,
    rate_limited,
    usage_exceeded,
    store_unavailable,
    invalid_token,
    verifier_unavailable,
}

#[cfg(test)]
mod tests {
    use utoipa::OpenApi as _;

    use super::*;
    use crate::activity::log::OUTCOMES;

    fn parameter(name: &str) -> serde_json::Value {
        let doc = serde_json::to_value(super::super::openapi::ApiDoc::openapi()).unwrap();
        let params = doc["paths"]["/v1/api-logs"]["get"]["parameters"].clone();
        let found = params
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name);
        let mut param = found.unwrap().clone();
        if let Some(r) = param["schema"]["$ref"].as_str() {
            let pointer = r.strip_prefix('#').unwrap();
            param["schema"] = doc.pointer(pointer).unwrap().clone();
        }
        param
    }

    #[test]
    fn the_documented_outcomes_are_the_ones_the_manager_accepts() {
        let schema = parameter("outcome")["schema"].clone();
        let listed: Vec<&str> = schema["enum"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|v| v.as_str())
            .collect();
        assert_eq!(listed, OUTCOMES);
    }

    #[test]
    fn the_documented_cursor_pattern_is_the_one_the_manager_decodes() {
        let inner = crate::activity::log::cursor::CURSOR_PATTERN
            .trim_start_matches('^')
            .trim_end_matches('$');
        assert_eq!(
            parameter("cursor")["schema"]["pattern"].as_str(),
            Some(format!("^({inner})?$").as_str())
        );
    }

    #[test]
    fn bad_parameters_are_refused_naming_them() {
        for (query, field) in [
            ("key_id=a-b", "key_id"),
            ("from=yesterday", "from"),
            ("to=2026-13-01T00:00:00Z", "to"),
            ("limit=0", "limit"),
            ("limit=101", "limit"),
        ] {
            let err = parse(Some(query)).unwrap_err();
            assert_eq!(err.code(), "invalid_request", "{query}");
            assert!(err.to_string().starts_with(field), "{query}: {err}");
        }
        let ok = parse(Some("key_id=ak_1&outcome=rate_limited&limit=5&cursor=")).unwrap();
        assert_eq!(ok.key_id.unwrap().as_str(), "ak_1");
        assert_eq!(ok.cursor, None);
    }
}
