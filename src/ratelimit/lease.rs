//! One bucket's lease: the tokens this instance took from Redis and has not used yet,
//! and what Redis said last. Every decision here is synchronous and lock-free.
//!
//! A request takes one leased token (an atomic decrement). Below the low-water mark
//! (half a lease) a refill is started, at most one in flight per bucket. When the lease
//! is used up:
//!
//! - if Redis's last answer said the bucket is empty, the request is refused with the
//!   wait Redis gave (plus the time to repay any advance, below); once that wait has
//!   passed, one refill asks again;
//! - if Redis is not answering (a failed refill, or the breaker is not closed), the
//!   outage policy decides;
//! - otherwise the lease has simply not arrived yet (the bucket is new here, or traffic
//!   outran the refill in flight). The request is admitted on an **advance** of at most
//!   one lease, which the next refill repays by asking for that much more. This is
//!   what bounds the error: an instance is never more than one lease ahead of Redis.
//!   Near exhaustion, once Redis last reported fewer than one lease per instance left,
//!   no advance is given at all, which keeps the overshoot near zero in practice.
//!   When the advance is used up or withheld before Redis answers, the request is
//!   refused with 429 (see [`Take::Pending`]). An advance Redis cannot repay stays owed: the instance admits
//!   nothing more until Redis has granted it, and its `Retry-After` includes it.
//!   (Letting the advance grow with what Redis last reported left was tried: with
//!   four instances hammering one key it over-admitted by 7%.)

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicU8, Ordering};
use std::time::Duration;

use crate::store::record::RateLimit;

/// No answer from Redis yet.
const FRESH: u8 = 0;
/// Redis's last answer left tokens in the bucket.
const AVAILABLE: u8 = 1;
/// Redis's last answer said the bucket is empty.
const EXHAUSTED: u8 = 2;
/// The last refill failed.
const FAILED: u8 = 3;

/// What one request gets from a bucket.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Take {
    /// Admitted, with this many requests left (Redis's last answer plus this instance's
    /// unused lease). `advance` when the token was advanced against the next refill.
    Admitted {
        remaining: u32,
        refill: bool,
        advance: bool,
    },
    /// Redis said the bucket is empty; one more request is allowed after `wait`.
    Empty { wait: Duration, refill: bool },
    /// No lease, and Redis is not answering: the outage policy decides.
    Unavailable,
    /// Lease and advance both used up (or the advance withheld near exhaustion) and
    /// Redis has not answered yet. Refused with 429 for one token interval, so that no
    /// instance runs more than one lease ahead. The caller starts a refill if none is
    /// under way.
    Pending,
}

/// One bucket as this instance holds it.
pub(super) struct Bucket {
    /// `<prefix>:<per_second>-<burst>:<key|account|external>:<id>`.
    pub(super) redis_key: String,
    pub(super) quota: RateLimit,
    lease: i64,
    low_water: i64,
    /// Advances are given only while Redis last reported at least this many left: one
    /// lease per instance.
    reserve: i64,
    /// Leased tokens not yet used; negative while an advance is outstanding.
    local: AtomicI64,
    /// Tokens Redis had left after its last grant.
    redis_left: AtomicI64,
    state: AtomicU8,
    /// With `EXHAUSTED`: when Redis said one token is back, Unix ms on keygate's clock.
    retry_at_ms: AtomicU64,
    refilling: AtomicBool,
    last_used_ms: AtomicU64,
}

impl Bucket {
    pub(super) fn new(
        redis_key: String,
        quota: RateLimit,
        lease: u32,
        instances: u32,
        now_ms: u64,
    ) -> Self {
        let lease = i64::from(lease.max(1));
        Self {
            redis_key,
            quota,
            lease,
            low_water: (lease / 2).max(1),
            reserve: lease * i64::from(instances.max(1)),
            local: AtomicI64::new(0),
            redis_left: AtomicI64::new(i64::from(quota.burst)),
            state: AtomicU8::new(FRESH),
            retry_at_ms: AtomicU64::new(0),
            refilling: AtomicBool::new(false),
            last_used_ms: AtomicU64::new(now_ms),
        }
    }

    /// Takes one token for a request at `now_ms`. `redis_up`: the breaker is closed.
    #[inline]
    pub(super) fn take(&self, now_ms: u64, redis_up: bool) -> Take {
        self.touch(now_ms);
        let leased = self
            .local
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |v| {
                (v > 0).then(|| v - 1)
            });
        let state = self.state.load(Ordering::Acquire);
        if let Ok(before) = leased {
            let after = before - 1;
            let may_ask = state != EXHAUSTED || now_ms >= self.retry_at_ms.load(Ordering::Acquire);
            return Take::Admitted {
                remaining: self.remaining(after),
                refill: after < self.low_water && may_ask,
                advance: false,
            };
        }
        if state == EXHAUSTED {
            let retry_at = self.retry_at_ms.load(Ordering::Acquire);
            // An unpaid advance must be repaid before this instance admits again.
            let debt = u64::try_from(-self.local.load(Ordering::Acquire)).unwrap_or(0);
            let wait = Duration::from_millis(retry_at.saturating_sub(now_ms))
                + self.interval() * u32::try_from(debt).unwrap_or(u32::MAX);
            return Take::Empty {
                wait,
                refill: now_ms >= retry_at,
            };
        }
        if !redis_up || state == FAILED {
            return Take::Unavailable;
        }
        if state != FRESH && self.redis_left.load(Ordering::Acquire) < self.reserve {
            return Take::Pending;
        }
        let limit = self.lease;
        match self
            .local
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |v| {
                (v > -limit).then(|| v - 1)
            }) {
            Ok(before) => Take::Admitted {
                remaining: self.remaining(before - 1),
                refill: true,
                advance: true,
            },
            Err(_) => Take::Pending,
        }
    }

    /// Time for one token to come back.
    pub(super) fn interval(&self) -> Duration {
        Duration::from_secs(1) / self.quota.per_second.max(1)
    }

    fn remaining(&self, local: i64) -> u32 {
        let total = self
            .redis_left
            .load(Ordering::Acquire)
            .saturating_add(local);
        u32::try_from(total.clamp(0, i64::from(self.quota.burst))).unwrap_or(0)
    }

    fn touch(&self, now_ms: u64) {
        // Written at most once a second, so that hot keys do not all write one line.
        if now_ms >= self.last_used_ms.load(Ordering::Relaxed) + 1_000 {
            self.last_used_ms.store(now_ms, Ordering::Relaxed);
        }
    }

    /// Claims the one refill slot; returns how many tokens to ask for (a lease plus
    /// any outstanding advance), or `None` when a refill is already under way.
    pub(super) fn begin_refill(&self) -> Option<u32> {
        self.refilling
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .ok()?;
        let debt = (-self.local.load(Ordering::Acquire)).max(0);
        Some(u32::try_from(self.lease + debt).unwrap_or(u32::MAX))
    }

    /// Gives the refill slot back without asking Redis.
    pub(super) fn cancel_refill(&self) {
        self.refilling.store(false, Ordering::Release);
    }

    /// Redis granted `granted` tokens, had `left` after that and, when `left < 1`,
    /// said one token is back after `wait`.
    pub(super) fn refilled(&self, granted: i64, left: i64, wait: Duration, now_ms: u64) {
        self.local.fetch_add(granted.max(0), Ordering::AcqRel);
        self.redis_left.store(left.max(0), Ordering::Release);
        if left >= 1 {
            self.state.store(AVAILABLE, Ordering::Release);
        } else {
            let wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX);
            self.retry_at_ms
                .store(now_ms.saturating_add(wait_ms), Ordering::Release);
            self.state.store(EXHAUSTED, Ordering::Release);
        }
        self.refilling.store(false, Ordering::Release);
    }

    /// The refill failed: until one succeeds, an empty lease means the outage policy.
    pub(super) fn failed(&self) {
        self.state.store(FAILED, Ordering::Release);
        self.refilling.store(false, Ordering::Release);
    }

    /// Whether the bucket has been unused for `idle_ms` and has no refill under way.
    pub(super) fn is_idle(&self, now_ms: u64, idle_ms: u64) -> bool {
        !self.refilling.load(Ordering::Acquire)
            && now_ms.saturating_sub(self.last_used_ms.load(Ordering::Relaxed)) >= idle_ms
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bucket(lease: u32) -> Bucket {
        Bucket::new("t".into(), RateLimit::new(10, 100), lease, 2, 0)
    }

    fn admitted(t: Take) -> (u32, bool, bool) {
        match t {
            Take::Admitted {
                remaining,
                refill,
                advance,
            } => (remaining, refill, advance),
            other => panic!("expected admission, got {other:?}"),
        }
    }

    #[test]
    fn a_new_bucket_admits_on_an_advance_of_at_most_one_lease_then_waits() {
        let b = bucket(4);
        for _ in 0..4 {
            let (_, refill, advance) = admitted(b.take(0, true));
            assert!(refill && advance);
        }
        assert_eq!(b.take(0, true), Take::Pending);
        assert_eq!(b.begin_refill(), Some(8), "a lease plus the advance");
        assert_eq!(b.begin_refill(), None, "one refill at a time");
        b.refilled(8, 50, Duration::ZERO, 0);
        // The advance is repaid: 4 of the 8 tokens are left here, 50 in Redis.
        assert_eq!(admitted(b.take(0, true)), (53, false, false));
    }

    #[test]
    fn the_advance_stays_one_lease_after_redis_answered() {
        let b = bucket(4);
        b.begin_refill();
        b.refilled(4, 90, Duration::ZERO, 0);
        for _ in 0..8 {
            admitted(b.take(0, true));
        }
        assert_eq!(b.take(0, true), Take::Pending);
    }

    #[test]
    fn no_advance_once_redis_holds_less_than_a_lease_per_instance() {
        let b = bucket(4);
        b.begin_refill();
        b.refilled(4, 7, Duration::ZERO, 0);
        for _ in 0..4 {
            admitted(b.take(0, true));
        }
        assert_eq!(b.take(0, true), Take::Pending, "7 left, 2 instances × 4");
    }

    #[test]
    fn leased_tokens_are_used_first_and_refill_starts_below_half_a_lease() {
        let b = bucket(4);
        assert_eq!(b.begin_refill(), Some(4));
        b.refilled(4, 90, Duration::ZERO, 0);
        assert_eq!(admitted(b.take(0, true)), (93, false, false));
        assert_eq!(admitted(b.take(0, true)), (92, false, false));
        assert_eq!(admitted(b.take(0, true)), (91, true, false));
    }

    #[test]
    fn an_empty_answer_refuses_with_redis_wait_until_it_has_passed() {
        let b = bucket(4);
        b.begin_refill();
        b.refilled(1, 0, Duration::from_millis(700), 1_000);
        let (remaining, refill, _) = admitted(b.take(1_000, true));
        assert_eq!(remaining, 0);
        assert!(!refill, "Redis said empty: no refill before its wait");
        assert_eq!(
            b.take(1_200, true),
            Take::Empty {
                wait: Duration::from_millis(500),
                refill: false
            }
        );
        assert_eq!(
            b.take(1_700, true),
            Take::Empty {
                wait: Duration::ZERO,
                refill: true
            }
        );
    }

    #[test]
    fn an_unpaid_advance_lengthens_the_wait() {
        let b = bucket(4);
        admitted(b.take(0, true));
        admitted(b.take(0, true));
        assert_eq!(b.begin_refill(), Some(6));
        // Redis had nothing: the two advanced tokens are still owed (100 ms each).
        b.refilled(0, 0, Duration::from_millis(100), 0);
        assert_eq!(
            b.take(0, true),
            Take::Empty {
                wait: Duration::from_millis(300),
                refill: false
            }
        );
    }

    #[test]
    fn without_redis_an_empty_lease_is_unavailable_but_leased_tokens_still_count() {
        let b = bucket(4);
        b.begin_refill();
        b.refilled(2, 90, Duration::ZERO, 0);
        admitted(b.take(0, false));
        admitted(b.take(0, false));
        assert_eq!(b.take(0, false), Take::Unavailable);
        b.begin_refill();
        b.failed();
        assert_eq!(b.take(0, true), Take::Unavailable, "the last refill failed");
    }
}
