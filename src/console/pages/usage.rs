//! The usage page of one key: its chart and its recent API log, with filters.

use maud::{html, Markup};

use super::Frame;
use crate::console::chart::usage_chart;
use crate::console::usage::{Granularity, LogEntry, UsageBucket};
use crate::manage::KeyView;

/// The filters the page was asked for.
pub(crate) struct UsageFilters<'a> {
    pub(crate) granularity: Granularity,
    /// Outcome filter of the log; empty for any.
    pub(crate) outcome: &'a str,
}

/// Outcomes offered by the log's filter.
const OUTCOMES: [&str; 8] = [
    "ok",
    "rate_limited",
    "insufficient_scope",
    "ip_not_allowed",
    "revoked_api_key",
    "expired_api_key",
    "disabled_api_key",
    "invalid_api_key",
];

/// What the API log part of the page shows.
pub(crate) enum LogState {
    /// No log is connected to the console.
    NotConnected,
    /// The log failed to answer.
    Unavailable,
    /// The matching entries, newest first.
    Entries(Vec<LogEntry>),
}

/// The page; `chart` is `None` when the counts could not be read.
pub(crate) fn page(
    frame: &Frame<'_>,
    key: &KeyView,
    filters: &UsageFilters<'_>,
    chart: Option<&[UsageBucket]>,
    log: &LogState,
) -> Markup {
    let by_hour = filters.granularity == Granularity::Hour;
    let base = format!("/keys/{}", key.id);
    frame.page(
        &format!("Usage of {}", key.name),
        html! {
            p { a href=(frame.url(&base)) { "← " (key.name) } }
            h1 { "Usage of “" (key.name) "”" }
            form.filters.card method="get" action=(frame.url(&format!("{base}/usage"))) aria-label="Filters" {
                div {
                    label for="by" { "Chart" }
                    select id="by" name="by" {
                        option value="hour" selected[by_hour] { "Per hour, last 24 hours" }
                        option value="day" selected[!by_hour] { "Per day, last 30 days" }
                    }
                }
                div {
                    label for="outcome" { "Log: outcome" }
                    select id="outcome" name="outcome" {
                        option value="" selected[filters.outcome.is_empty()] { "Any" }
                        @for o in OUTCOMES { option value=(o) selected[filters.outcome == o] { (o) } }
                    }
                }
                div { button.btn.secondary type="submit" { "Apply" } }
            }
            section.card aria-labelledby="chart-heading" {
                h2 #chart-heading { "Requests " (if by_hour { "per hour" } else { "per day" }) }
                @match chart {
                    Some(buckets) => {
                        (usage_chart(&format!("Requests of {} {}", key.name, if by_hour { "per hour" } else { "per day" }), buckets, filters.granularity))
                    }
                    None => {
                        div.notice.error role="alert" { "Usage is unavailable right now. Try again in a moment." }
                    }
                }
            }
            section.card aria-labelledby="log-heading" {
                h2 #log-heading { "Recent requests" }
                @match log {
                    LogState::NotConnected => { p.muted { "The API log is not connected to this console." } }
                    LogState::Unavailable => { div.notice.error role="alert" { "The API log is unavailable right now." } }
                    LogState::Entries(entries) if entries.is_empty() => { p.muted #no-requests { "No requests match." } }
                    LogState::Entries(entries) => {
                        div.table-wrap {
                            table #api-log {
                                caption.sr-only { "Recent requests with this key, newest first" }
                                thead { tr { th scope="col" { "Time" } th scope="col" { "Request" } th scope="col" { "Status" } th scope="col" { "Outcome" } } }
                                tbody {
                                    @for e in entries {
                                        tr {
                                            td { (humantime::format_rfc3339_seconds(e.at).to_string()) }
                                            td { code { (e.method) " " (e.path) } }
                                            td { (e.status) }
                                            td { span class={"chip outcome-" (if e.outcome == "ok" { "ok" } else { "refused" })} { (e.outcome) } }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        },
    )
}
