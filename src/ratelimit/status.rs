//! [`RateLimitStatus`]: the rate-limit state reported to the client, and its headers.

use std::sync::LazyLock;

use http::header::{HeaderMap, HeaderName, HeaderValue};

use crate::store::record::RateLimit;

/// What `X-RateLimit-Limit` reports, and so what `X-RateLimit-Remaining` counts down
/// from. In configuration files: `"burst"` or `"per_second"`.
///
/// For 1000 requests/s with a burst of 2000, the first request of a full bucket reports
/// `2000`/`1999` with [`ReportedLimit::Burst`] and `1000`/`999` with [`ReportedLimit::PerSecond`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ReportedLimit {
    /// The burst: `Remaining` is the requests the bucket holds right now.
    #[default]
    Burst,
    /// The rate per one-second window. `Remaining` is the requests the bucket holds
    /// beyond the burst's extra (burst minus rate), so it goes from the rate down to 0
    /// while that extra is still available. It never promises more than the bucket
    /// holds: while it is above 0, the next request is admitted.
    PerSecond,
}

/// The rate-limit state reported to the client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RateLimitStatus {
    /// The quota in force.
    pub quota: RateLimit,
    /// What `X-RateLimit-Limit` reports: the burst, or the rate (see [`ReportedLimit`]).
    pub limit: u32,
    /// Requests left right now, counted down from `limit`.
    pub remaining: u32,
    /// When the bucket is full again, in Unix seconds (rounded up).
    pub reset_at: u64,
    /// Seconds until then (rounded up).
    pub reset_after: u64,
}

impl RateLimitStatus {
    /// The state of a bucket under `quota` holding `remaining` requests, full again at
    /// `reset_at` (Unix seconds), `reset_after` seconds from now; reported as the burst.
    pub fn new(quota: RateLimit, remaining: u32, reset_at: u64, reset_after: u64) -> Self {
        Self {
            quota,
            limit: quota.burst,
            remaining,
            reset_at,
            reset_after,
        }
    }

    /// The same state reported in `form`.
    #[must_use]
    pub fn reported_as(self, form: ReportedLimit) -> Self {
        let quota = self.quota;
        match form {
            ReportedLimit::Burst => Self {
                limit: quota.burst,
                ..self
            },
            ReportedLimit::PerSecond => {
                let extra = quota.burst.saturating_sub(quota.per_second);
                Self {
                    limit: quota.per_second,
                    remaining: self.remaining.saturating_sub(extra).min(quota.per_second),
                    ..self
                }
            }
        }
    }

    /// Writes `X-RateLimit-Limit`, `X-RateLimit-Remaining` and `X-RateLimit-Reset` (Unix
    /// seconds), and with `ietf` also the draft's
    /// `RateLimit-Policy` (`q` is [`RateLimitStatus::limit`], `w` the seconds the bucket
    /// takes to refill that many) and `RateLimit` fields.
    ///
    /// The values below 10,000 are static: writing them touches no shared reference
    /// count. The reset second is formatted on each call.
    pub fn write_headers(&self, headers: &mut HeaderMap, ietf: bool) {
        static LIMIT: HeaderName = HeaderName::from_static("x-ratelimit-limit");
        static REMAINING: HeaderName = HeaderName::from_static("x-ratelimit-remaining");
        static RESET: HeaderName = HeaderName::from_static("x-ratelimit-reset");
        headers.reserve(if ietf { 5 } else { 3 });
        headers.insert(LIMIT.clone(), number(u64::from(self.limit)));
        headers.insert(REMAINING.clone(), number(u64::from(self.remaining)));
        headers.insert(RESET.clone(), number(self.reset_at));
        if ietf {
            let window = u64::from(self.limit).div_ceil(u64::from(self.quota.per_second.max(1)));
            if let Ok(v) =
                HeaderValue::from_str(&format!("\"default\";q={};w={}", self.limit, window.max(1)))
            {
                headers.insert("ratelimit-policy", v);
            }
            if let Ok(v) = HeaderValue::from_str(&format!(
                "\"default\";r={};t={}",
                self.remaining, self.reset_after
            )) {
                headers.insert("ratelimit", v);
            }
        }
    }
}

/// Numbers below this have a static header value.
const STATIC_BELOW: u64 = 10_000;
/// Length of the decimal text of 0 to 9,999, concatenated.
const DIGITS_LEN: usize = 10 + 90 * 2 + 900 * 3 + 9000 * 4;
/// The decimal text of 0 to 9,999, concatenated; built at compile time.
static DIGITS: &str = match std::str::from_utf8(&digit_bytes()) {
    Ok(text) => text,
    Err(_) => panic!("decimal digits are ASCII"),
};

const fn digit_bytes() -> [u8; DIGITS_LEN] {
    let mut out = [0u8; DIGITS_LEN];
    let (mut n, mut at) = (0usize, 0usize);
    while n < STATIC_BELOW as usize {
        let len = digits(n);
        let mut rest = n;
        let mut i = len;
        while i > 0 {
            out[at + i - 1] = b'0' + (rest % 10) as u8;
            rest /= 10;
            i -= 1;
        }
        at += len;
        n += 1;
    }
    out
}

/// Decimal digits of `n` below 10,000.
const fn digits(n: usize) -> usize {
    if n < 10 {
        1
    } else if n < 100 {
        2
    } else if n < 1000 {
        3
    } else {
        4
    }
}

/// The header values of 0 to 9,999, built once on first use: a value below 10,000 is a
/// clone of one of them (a static `Bytes`: no allocation, no reference count, no
/// validation of its text again).
static SMALL: LazyLock<Box<[HeaderValue]>> = LazyLock::new(|| {
    (0..STATIC_BELOW as usize)
        .map(|n| {
            let start = match n {
                0..=9 => n,
                10..=99 => 10 + (n - 10) * 2,
                100..=999 => 190 + (n - 100) * 3,
                _ => 2890 + (n - 1000) * 4,
            };
            HeaderValue::from_static(&DIGITS[start..start + digits(n)])
        })
        .collect()
});

/// A header value for `n`. Below 10,000 it is a static value (no allocation, and
/// cloning or dropping it touches no reference count); above, it is formatted into a
/// buffer of its own, which no other request or thread shares.
#[inline]
pub(super) fn number(n: u64) -> HeaderValue {
    if n < STATIC_BELOW {
        // In range: `n` < 10,000 fits a usize.
        if let Some(value) = SMALL.get(n as usize) {
            return value.clone();
        }
    }
    formatted(n)
}

/// `n` formatted into one allocation of exactly its length: `bytes` then keeps it as a
/// plain vector, with no shared reference count (`HeaderValue::from(u64)` over-allocates,
/// which makes `bytes` add a shared, counted header on top).
fn formatted(n: u64) -> HeaderValue {
    let mut buf = [0u8; 20];
    let mut at = buf.len();
    let mut rest = n;
    loop {
        at -= 1;
        buf[at] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    let bytes = bytes::Bytes::from(buf[at..].to_vec());
    HeaderValue::from_maybe_shared(bytes).unwrap_or_else(|_| HeaderValue::from(n))
}
