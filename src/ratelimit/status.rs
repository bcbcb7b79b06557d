//! [`RateLimitStatus`]: the rate-limit state reported to the client, and its headers.

use std::cell::RefCell;
use std::sync::OnceLock;

use http::header::{HeaderMap, HeaderName, HeaderValue};

use crate::store::record::RateLimit;

/// The rate-limit state reported to the client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimitStatus {
    /// The quota in force.
    pub quota: RateLimit,
    /// Requests left right now.
    pub remaining: u32,
    /// When the bucket is full again, in Unix seconds (rounded up).
    pub reset_at: u64,
    /// Seconds until then (rounded up).
    pub reset_after: u64,
}

impl RateLimitStatus {
    /// Writes `X-RateLimit-Limit`, `X-RateLimit-Remaining` and `X-RateLimit-Reset` (Unix
    /// seconds, as in the Tenuo documentation), and with `ietf` also the draft's
    /// `RateLimit-Policy` and `RateLimit` fields.
    ///
    /// `X-RateLimit-Limit` is the burst: the number that `Remaining` counts down from.
    pub fn write_headers(&self, headers: &mut HeaderMap, ietf: bool) {
        static LIMIT: HeaderName = HeaderName::from_static("x-ratelimit-limit");
        static REMAINING: HeaderName = HeaderName::from_static("x-ratelimit-remaining");
        static RESET: HeaderName = HeaderName::from_static("x-ratelimit-reset");
        headers.reserve(if ietf { 5 } else { 3 });
        headers.insert(LIMIT.clone(), number(u64::from(self.quota.burst)));
        headers.insert(REMAINING.clone(), number(u64::from(self.remaining)));
        headers.insert(RESET.clone(), number(self.reset_at));
        if ietf {
            let window =
                u64::from(self.quota.burst).div_ceil(u64::from(self.quota.per_second.max(1)));
            if let Ok(v) = HeaderValue::from_str(&format!(
                "\"default\";q={};w={}",
                self.quota.burst,
                window.max(1)
            )) {
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

/// A header value for `n`, without allocating in the common case: numbers below 4096
/// come from a table built on first use, and each thread remembers the last few larger
/// ones (such as the current reset second). Cloning a built value only bumps a count.
pub(super) fn number(n: u64) -> HeaderValue {
    const SMALL: usize = 4096;
    static TABLE: [OnceLock<HeaderValue>; SMALL] = [const { OnceLock::new() }; SMALL];
    /// The last four large values built on this thread, and the next slot to replace.
    type Recent = ([(u64, Option<HeaderValue>); 4], usize);
    thread_local! {
        static RECENT: RefCell<Recent> =
            const { RefCell::new(([(0, None), (0, None), (0, None), (0, None)], 0)) };
    }
    if let Some(slot) = usize::try_from(n).ok().and_then(|i| TABLE.get(i)) {
        return slot.get_or_init(|| HeaderValue::from(n)).clone();
    }
    RECENT.with(|recent| {
        let mut recent = recent.borrow_mut();
        if let Some(v) = recent.0.iter().find(|(k, v)| *k == n && v.is_some()) {
            return v.1.clone().expect("checked");
        }
        let value = HeaderValue::from(n);
        let next = recent.1;
        recent.0[next] = (n, Some(value.clone()));
        recent.1 = (next + 1) % 4;
        value
    })
}
