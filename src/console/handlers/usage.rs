//! The usage page of a key.

use axum::extract::{Path, Query, State};
use axum::response::Response;
use http::header::HeaderMap;
use http::StatusCode;
use serde::Deserialize;

use super::{signed_in, visible_key, Console, Ctx};
use crate::console::pages::usage::{self as usage_page, LogState, UsageFilters};
use crate::console::session::Permission;
use crate::console::usage::{Granularity, LogEntry, LogQuery, UsageBucket};
use crate::manage::KeyView;

#[derive(Deserialize)]
pub(in crate::console) struct UsageParams {
    by: Option<String>,
    outcome: Option<String>,
}

pub(in crate::console) async fn usage(
    State(inner): Console,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<UsageParams>,
) -> Response {
    let ctx = tri!(signed_in(&inner, &headers));
    if !ctx.session().grant.allows(Permission::ReadUsage) {
        return ctx.forbidden(Permission::ReadUsage);
    }
    if !inner.has_usage() {
        return ctx.message(
            StatusCode::NOT_FOUND,
            "Not found",
            "Usage is not connected to this console.",
        );
    }
    let key = tri!(visible_key(&ctx, &id).await);
    let granularity = match q.by.as_deref() {
        Some("day") => Granularity::Day,
        _ => Granularity::Hour,
    };
    let outcome = q.outcome.filter(|o| {
        !o.is_empty() && o.len() <= 64 && o.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
    });
    let filters = UsageFilters {
        granularity,
        outcome: outcome.as_deref().unwrap_or(""),
    };
    let chart = chart_of(&ctx, &key, granularity).await;
    let since = ctx.now() - granularity.width() * granularity.buckets() as u32;
    let log = match &inner.usage {
        None if inner.manager.keygate().api_log().is_some() => {
            api_log_of(&ctx, &key, outcome.as_deref(), since).await
        }
        None => LogState::NotConnected,
        Some(source) => {
            let query = LogQuery {
                key: Some(key.id.clone()),
                outcome: outcome.clone(),
                since: Some(since),
                limit: 50,
            };
            match source.log(&ctx.session().grant.account, &query).await {
                Ok(entries) => LogState::Entries(entries),
                Err(e) => {
                    tracing::error!(target: "keygate", error = %e, "console usage source failed");
                    LogState::Unavailable
                }
            }
        }
    };
    let status = if chart.is_none() || matches!(log, LogState::Unavailable) {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    let html = usage_page::page(&ctx.frame(), &key, &filters, chart.as_deref(), &log);
    ctx.html(status, html)
}

/// The key's newest API log entries from the gate's own API log (see
/// [`crate::activity::log`]), read through the session's actor like every management read.
async fn api_log_of(
    ctx: &Ctx<'_>,
    key: &KeyView,
    outcome: Option<&str>,
    since: std::time::SystemTime,
) -> LogState {
    let inner = ctx.inner;
    let mut query = crate::activity::log::ApiLogQuery::default()
        .key_id(key.id.clone())
        .from(since)
        .limit(50);
    // The console calls an accepted request `ok`, as its chart does.
    if let Some(outcome) = outcome {
        query = query.outcome(if outcome == "ok" { "accepted" } else { outcome });
    }
    let actor = inner.actor(ctx.session());
    match inner.acting(&actor).api_logs(&query).await {
        Ok(page) => LogState::Entries(
            page.data
                .into_iter()
                .map(|e| LogEntry {
                    at: e.time,
                    key: e.key_id,
                    account: e.account_id,
                    outcome: if e.outcome == "accepted" {
                        "ok".to_owned()
                    } else {
                        e.outcome
                    },
                    method: e.method,
                    path: e.path,
                    status: e.status,
                })
                .collect(),
        ),
        // An outcome the log does not know matches nothing.
        Err(crate::manage::ManageError::InvalidRequest(_)) => LogState::Entries(Vec::new()),
        Err(e) => {
            tracing::error!(target: "keygate", error = %e, "console API log unreadable");
            LogState::Unavailable
        }
    }
}

/// The key's chart buckets: from the gate's usage counters when it counts usage
/// (confined like every management read), otherwise from the connected source; `None`
/// when they are unavailable.
async fn chart_of(
    ctx: &Ctx<'_>,
    key: &KeyView,
    granularity: Granularity,
) -> Option<Vec<UsageBucket>> {
    let now = ctx.now();
    let last = granularity.floor(now);
    let since = last - granularity.width() * (granularity.buckets() as u32 - 1);
    let until = last + granularity.width();
    let inner = ctx.inner;
    if inner.manager.keygate().usage_counters().is_some() {
        let query = crate::activity::UsageQuery::new(match granularity {
            Granularity::Hour => crate::activity::Granularity::Hour,
            Granularity::Day => crate::activity::Granularity::Day,
        })
        .from(since)
        .to(until);
        let actor = inner.actor(ctx.session());
        return match inner.acting(&actor).usage(&key.id, &query).await {
            Ok(buckets) => Some(
                buckets
                    .into_iter()
                    .map(|b| UsageBucket {
                        start: Some(b.start),
                        outcomes: b
                            .outcomes
                            .iter()
                            .map(|(o, n)| (o.code().to_owned(), *n))
                            .collect(),
                    })
                    .collect(),
            ),
            Err(e) => {
                tracing::error!(target: "keygate", error = %e, "console usage counters unreadable");
                None
            }
        };
    }
    let source = inner.usage.as_ref()?;
    let account = &ctx.session().grant.account;
    match source
        .series(account, &key.id, granularity, since, until)
        .await
    {
        Ok(series) => Some(series),
        Err(e) => {
            tracing::error!(target: "keygate", error = %e, "console usage source failed");
            None
        }
    }
}
