//! Quotas per period in responses: items of the IETF draft's fields beside the
//! per-second policy, and `X-…` headers of the deployment's choosing.

use std::collections::HashSet;
use std::sync::Mutex;

use http::header::{HeaderMap, HeaderName, HeaderValue};

use super::status::number;
use crate::metering::report::{QuotaReport, QuotaState};

/// The names of the headers that report a quota per period (see [`crate::metering`]):
/// its limit, what remains of it, and when it resets (Unix seconds, like
/// `X-RateLimit-Reset`). Off unless set with [`super::RateLimitConfig::quota_headers`].
///
/// When several quotas apply to a request (a key's and its account's, or a day's and
/// a month's), the headers report **the one with the least remaining**; on a tie, the
/// one that resets first. They are sent on admitted requests and on 429
/// `usage_exceeded` refusals, gRPC ones included (as metadata). What "remaining" means
/// with several instances is explained in [`crate::metering`]: this instance's
/// knowledge, approximate by at most the other instances' leases.
///
/// In configuration files, under `[rate_limits]`:
/// `quota_headers = { limit = "X-Quota-Limit", remaining = "X-Quota-Remaining", reset = "X-Quota-Reset" }`.
///
/// ```
/// use keygate::ratelimit::{QuotaHeaders, RateLimitConfig};
///
/// let limits = RateLimitConfig::default().quota_headers(Some(QuotaHeaders::x_quota()));
/// let own = QuotaHeaders::new("X-Plan-Limit", "X-Plan-Remaining", "X-Plan-Reset").unwrap();
/// assert_eq!(own.remaining().as_str(), "x-plan-remaining");
/// assert!(QuotaHeaders::new("X-RateLimit-Limit", "a", "b").is_err());
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuotaHeaders {
    limit: HeaderName,
    remaining: HeaderName,
    reset: HeaderName,
}

/// Header names keygate writes itself, which a quota header may not take.
const RESERVED: [&str; 8] = [
    "x-ratelimit-limit",
    "x-ratelimit-remaining",
    "x-ratelimit-reset",
    "ratelimit",
    "ratelimit-policy",
    "retry-after",
    "www-authenticate",
    "content-type",
];

impl QuotaHeaders {
    /// Headers named `limit`, `remaining` and `reset` (case-insensitive). Refuses a
    /// name that is not a valid header name, one that keygate writes itself
    /// (`X-RateLimit-*`, `RateLimit`, `RateLimit-Policy`, `Retry-After`, …), or the
    /// same name twice; the message says which.
    pub fn new(limit: &str, remaining: &str, reset: &str) -> Result<Self, String> {
        let [limit, remaining, reset] = [limit, remaining, reset].map(checked);
        let (limit, remaining, reset) = (limit?, remaining?, reset?);
        if limit == remaining || limit == reset || remaining == reset {
            return Err(
                "quota_headers: limit, remaining and reset need three different names".into(),
            );
        }
        Ok(Self {
            limit,
            remaining,
            reset,
        })
    }

    /// `X-Quota-Limit`, `X-Quota-Remaining` and `X-Quota-Reset`.
    pub fn x_quota() -> Self {
        Self {
            limit: HeaderName::from_static("x-quota-limit"),
            remaining: HeaderName::from_static("x-quota-remaining"),
            reset: HeaderName::from_static("x-quota-reset"),
        }
    }

    /// The limit's header.
    pub fn limit(&self) -> &HeaderName {
        &self.limit
    }

    /// The remaining count's header.
    pub fn remaining(&self) -> &HeaderName {
        &self.remaining
    }

    /// The reset's header (Unix seconds).
    pub fn reset(&self) -> &HeaderName {
        &self.reset
    }
}

/// Distinct header names, kept for the life of the process: a name made from a static
/// string is cloned with no reference count, so writing it on each response costs no
/// atomic operation. At most one copy per distinct name.
static NAMES: Mutex<Option<HashSet<&'static str>>> = Mutex::new(None);

fn checked(name: &str) -> Result<HeaderName, String> {
    let lower = name.trim().to_ascii_lowercase();
    if HeaderName::from_bytes(lower.as_bytes()).is_err() || lower.is_empty() {
        return Err(format!(
            "quota_headers: {name:?} is not a valid header name"
        ));
    }
    if RESERVED.contains(&lower.as_str()) {
        return Err(format!(
            "quota_headers: {name:?} is written by keygate itself; choose another name"
        ));
    }
    let mut names = NAMES.lock().unwrap_or_else(|p| p.into_inner());
    let names = names.get_or_insert_with(HashSet::new);
    let kept: &'static str = match names.get(lower.as_str()) {
        Some(kept) => kept,
        None => {
            let kept: &'static str = Box::leak(lower.into_boxed_str());
            names.insert(kept);
            kept
        }
    };
    Ok(HeaderName::from_static(kept))
}

impl serde::Serialize for QuotaHeaders {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("QuotaHeaders", 3)?;
        st.serialize_field("limit", self.limit.as_str())?;
        st.serialize_field("remaining", self.remaining.as_str())?;
        st.serialize_field("reset", self.reset.as_str())?;
        st.end()
    }
}

impl<'de> serde::Deserialize<'de> for QuotaHeaders {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Names {
            limit: String,
            remaining: String,
            reset: String,
        }
        let n = Names::deserialize(d)?;
        QuotaHeaders::new(&n.limit, &n.remaining, &n.reset).map_err(serde::de::Error::custom)
    }
}

/// What a response writes of the quotas: the IETF items, the `X-…` headers, or both.
#[derive(Clone, Debug)]
pub(crate) struct QuotaFields {
    pub(crate) report: QuotaReport,
    pub(crate) ietf: bool,
    pub(crate) names: Option<QuotaHeaders>,
}

impl QuotaFields {
    /// Writes the quotas into `headers`, after the per-second policy's fields (which it
    /// extends: the quota items follow the `"default"` item in the same list). Each
    /// field is built in one allocation of its exact length.
    pub(crate) fn write(&self, headers: &mut HeaderMap) {
        headers.reserve(if self.names.is_some() { 5 } else { 2 });
        if self.ietf {
            extend(headers, "ratelimit-policy", &self.report, |q| {
                ((b"q=", q.limit), (b"w=", q.window))
            });
            extend(headers, "ratelimit", &self.report, |q| {
                ((b"r=", q.remaining), (b"t=", q.reset_after))
            });
        }
        if let (Some(names), Some(q)) = (&self.names, self.report.tightest()) {
            headers.insert(names.limit.clone(), number(q.limit));
            headers.insert(names.remaining.clone(), number(q.remaining));
            headers.insert(names.reset.clone(), number(q.reset_at));
        }
    }
}

/// Decimal digits of `n`.
fn digits(n: u64) -> usize {
    n.checked_ilog10().map_or(1, |d| d as usize + 1)
}

/// Appends the decimal text of `n`.
fn push_number(out: &mut Vec<u8>, n: u64) {
    let start = out.len();
    out.resize(start + digits(n), b'0');
    let mut rest = n;
    for byte in out[start..].iter_mut().rev() {
        *byte = b'0' + (rest % 10) as u8;
        rest /= 10;
    }
}

/// One item's parameters: two `(name=, value)` pairs.
type Params = ((&'static [u8], u64), (&'static [u8], u64));

/// The length of `"<name>";<a><x>;<b><y>`.
fn item_len(name: &str, ((a, x), (b, y)): Params) -> usize {
    name.len() + 3 + a.len() + digits(x) + 1 + b.len() + digits(y)
}

/// Appends the Structured-Fields item `"<name>";<a><x>;<b><y>`.
fn item(out: &mut Vec<u8>, name: &str, ((a, x), (b, y)): Params) {
    out.push(b'"');
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\";");
    out.extend_from_slice(a);
    push_number(out, x);
    out.push(b';');
    out.extend_from_slice(b);
    push_number(out, y);
}

/// Sets field `name` to its current list followed by an item per quota (one field
/// line, as clients that read only the first line expect).
fn extend(
    headers: &mut HeaderMap,
    name: &'static str,
    report: &QuotaReport,
    params: impl Fn(&QuotaState) -> Params,
) {
    let existing = headers
        .get(name)
        .map(HeaderValue::as_bytes)
        .unwrap_or_default();
    let mut len = existing.len();
    for q in report.iter() {
        len += usize::from(len > 0) * 2 + item_len(q.policy_name(), params(q));
    }
    if len == 0 {
        return;
    }
    // Exactly its length: an allocation `bytes` keeps as a plain vector, with no shared
    // reference count (see `status::formatted`).
    let mut out = Vec::with_capacity(len);
    out.extend_from_slice(existing);
    for q in report.iter() {
        if !out.is_empty() {
            out.extend_from_slice(b", ");
        }
        item(&mut out, q.policy_name(), params(q));
    }
    debug_assert_eq!(out.len(), len);
    if let Ok(v) = HeaderValue::from_maybe_shared(bytes::Bytes::from(out)) {
        headers.insert(HeaderName::from_static(name), v);
    }
}
