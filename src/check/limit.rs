//! Step 6, the last: the rate limit, reached only when every other check passed, so a
//! refused request consumes no quota.

use std::time::SystemTime;

use crate::cache::entry::ResolvedKey;
use crate::clock::Now;
use crate::error::AuthError;
use crate::ratelimit::{Namespace, RateLimitStatus, RateLimits};
use crate::telemetry::Metrics;

/// A refusal, with the rate-limit state to report with it.
pub(crate) type Refused = (AuthError, Option<RateLimitStatus>);

/// Takes one token from the key's own bucket, then from its account's shared bucket
/// (with `PerAccount` limits). Reports the bucket with fewer tokens left.
#[inline]
pub(crate) fn take(
    limits: &RateLimits,
    metrics: &Metrics,
    key: &ResolvedKey,
    now: Now,
) -> Result<Option<RateLimitStatus>, Refused> {
    let record = &key.record;
    // A verified credential's subject has a namespace of its own: it never names a
    // key's bucket, whatever its text.
    let own = if key.external {
        Namespace::External
    } else {
        Namespace::Key
    };
    if key.account_limit.is_none() {
        // One bucket at most (no account limit): its answer is the answer, with no loop
        // over buckets and no comparison of statuses.
        let Some(bucket) = &key.limit else {
            return Ok(None);
        };
        let taken = limits.take(bucket, own, record.id.shared(), now);
        metrics.rate_limit(taken.is_ok());
        return taken;
    }
    let mut reported: Option<RateLimitStatus> = None;
    let buckets = [
        (&key.limit, own, record.id.shared()),
        (
            &key.account_limit,
            Namespace::Account,
            record.account_id.shared(),
        ),
    ];
    for (bucket, namespace, id) in buckets {
        let Some(bucket) = bucket else { continue };
        let taken = limits.take(bucket, namespace, id, now);
        metrics.rate_limit(taken.is_ok());
        if let Some(status) = taken? {
            if reported.is_none_or(|r| status.remaining < r.remaining) {
                reported = Some(status);
            }
        }
    }
    Ok(reported)
}

/// The state [`take`] would report, without taking a token: for the refusals after the
/// key was recognised (IP, scopes, read-only).
pub(crate) fn peek(
    limits: &RateLimits,
    key: &ResolvedKey,
    now: SystemTime,
) -> Option<RateLimitStatus> {
    [&key.limit, &key.account_limit]
        .into_iter()
        .flatten()
        .filter_map(|bucket| limits.peek(bucket, now))
        .min_by_key(|status| status.remaining)
}
