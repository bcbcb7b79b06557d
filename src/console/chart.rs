//! The usage chart: stacked bars drawn on the server as inline SVG, readable without
//! JavaScript and labelled for screen readers.

use std::time::SystemTime;

use maud::{html, Markup};

use super::usage::{Granularity, UsageBucket};

const WIDTH: u32 = 720;
const HEIGHT: u32 = 220;
const LEFT: u32 = 44;
const BOTTOM: u32 = 28;
const TOP: u32 = 10;

/// The series a bar's segment belongs to: success, rate limited, or any other refusal.
fn series_of(outcome: &str) -> (&'static str, &'static str) {
    match outcome {
        "ok" | "accepted" => ("ok", "Succeeded"),
        "rate_limited" | "usage_exceeded" | "quota_exceeded" => ("limited", "Rate limited"),
        _ => ("refused", "Refused"),
    }
}

const SERIES: [(&str, &str); 3] = [
    ("ok", "Succeeded"),
    ("limited", "Rate limited"),
    ("refused", "Refused"),
];

/// A bucket's requests per series, in [`SERIES`] order.
fn split(bucket: &UsageBucket) -> [u64; 3] {
    let mut out = [0u64; 3];
    for (outcome, n) in &bucket.outcomes {
        let (class, _) = series_of(outcome);
        let i = SERIES.iter().position(|(c, _)| *c == class).unwrap_or(2);
        out[i] += n;
    }
    out
}

/// The stacked segments of one bar: class, top and height, bottom series first.
fn segments(t: &[u64; 3], y_of: &dyn Fn(u64) -> u32) -> Vec<(&'static str, u32, u32)> {
    let mut base = 0u64;
    let mut out = Vec::new();
    for (s, (class, _)) in SERIES.iter().enumerate() {
        if t[s] > 0 {
            let top = y_of(base + t[s]);
            let bottom = y_of(base);
            out.push((*class, top, (bottom - top).max(1)));
            base += t[s];
        }
    }
    out
}

/// A round upper bound for the axis, at least 1.
fn nice_max(max: u64) -> u64 {
    let mut step = 1u64;
    loop {
        for m in [1, 2, 5] {
            let v = step.saturating_mul(m);
            if v >= max || v == u64::MAX {
                return v.max(1);
            }
        }
        step = step.saturating_mul(10);
    }
}

/// A bucket's label under its bar.
fn label(start: Option<SystemTime>, granularity: Granularity) -> String {
    let Some(start) = start else {
        return String::new();
    };
    let text = humantime::format_rfc3339_seconds(start).to_string();
    match granularity {
        // 2026-12-03T11:00:00Z
        Granularity::Hour => text.get(11..16).unwrap_or_default().to_owned(),
        Granularity::Day => text.get(5..10).unwrap_or_default().to_owned(),
    }
}

/// The chart of `buckets`, titled `title`.
pub(crate) fn usage_chart(
    title: &str,
    buckets: &[UsageBucket],
    granularity: Granularity,
) -> Markup {
    let totals: Vec<[u64; 3]> = buckets.iter().map(split).collect();
    let max = nice_max(totals.iter().map(|t| t.iter().sum()).max().unwrap_or(0));
    let all: u64 = totals.iter().flatten().sum();
    let n = u32::try_from(buckets.len().max(1)).unwrap_or(u32::MAX);
    let plot_w = WIDTH - LEFT - 8;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let slot = plot_w / n;
    let bar = (slot * 7 / 10).max(1);
    let y_of = |v: u64| -> u32 {
        let h = (u128::from(v) * u128::from(plot_h) / u128::from(max)) as u32;
        TOP + plot_h - h.min(plot_h)
    };
    let every = (buckets.len() / 8).max(1);
    html! {
        figure.chart {
            svg role="img" aria-labelledby="chart-title chart-desc" viewBox={"0 0 " (WIDTH) " " (HEIGHT)}
                preserveAspectRatio="xMidYMid meet" xmlns="http://www.w3.org/2000/svg" {
                title #chart-title { (title) }
                desc #chart-desc { (all) " requests in " (buckets.len()) " "
                    (if granularity == Granularity::Hour { "hours" } else { "days" }) "." }
                @for tick in [0, max / 2, max] {
                    line.grid x1=(LEFT) x2=(WIDTH - 8) y1=(y_of(tick)) y2=(y_of(tick)) {}
                    text.axis x=(LEFT - 6) y=(y_of(tick) + 4) text-anchor="end" { (tick) }
                }
                @for (i, (bucket, t)) in buckets.iter().zip(&totals).enumerate() {
                    @let x = LEFT + slot * i as u32 + (slot - bar) / 2;
                    @let when = label(bucket.start, granularity);
                    g.bar {
                        title { (when) ": " (t[0]) " succeeded, " (t[1]) " rate limited, " (t[2]) " refused" }
                        @for (class, top, height) in segments(t, &y_of) {
                            rect class={"s-" (class)} x=(x) y=(top) width=(bar) height=(height) {}
                        }
                    }
                    @if i % every == 0 {
                        text.axis x=(x + bar / 2) y=(HEIGHT - 8) text-anchor="middle" { (when) }
                    }
                }
            }
            figcaption.legend {
                @for (class, name) in SERIES {
                    span.legend-item { span class={"swatch s-" (class)} aria-hidden="true" {} (name) }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn axis_maxima_are_round() {
        assert_eq!(nice_max(0), 1);
        assert_eq!(nice_max(3), 5);
        assert_eq!(nice_max(11), 20);
        assert_eq!(nice_max(500), 500);
        assert_eq!(nice_max(u64::MAX), u64::MAX);
    }

    #[test]
    fn the_chart_stacks_outcomes_and_describes_itself() {
        let mut outcomes = BTreeMap::new();
        outcomes.insert("ok".to_owned(), 3);
        outcomes.insert("rate_limited".to_owned(), 1);
        let buckets = vec![
            UsageBucket {
                start: Some(SystemTime::UNIX_EPOCH),
                outcomes,
            },
            UsageBucket::default(),
        ];
        let svg = usage_chart("<b>", &buckets, Granularity::Hour).into_string();
        assert!(svg.contains("4 requests in 2 hours"));
        assert!(svg.contains("class=\"s-ok\""));
        assert!(svg.contains("class=\"s-limited\""));
        assert!(!svg.contains("s-refused\" x="));
        assert!(svg.contains("&lt;b&gt;"), "the title is escaped");
    }
}
