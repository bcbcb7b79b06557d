//! [`UsageQuery`]: which buckets to read, checked against the retention and the
//! 1,500-bucket bound before any store is asked.

use std::time::{Duration, SystemTime};

use super::types::unix_secs;
use super::{Granularity, UsageRetention};

/// Most buckets in one answer.
pub const MAX_BUCKETS: u64 = 1500;

/// Which buckets of usage to read: a granularity and an optional range.
///
/// Without `from` and `to` the answer covers the last 60 minutes by minute, 48 hours by
/// hour or 30 days by day, up to and including the current bucket. `from` is rounded
/// down to its bucket's start and `to` is exclusive: a bucket is in the answer when its
/// start is at or after `from`'s bucket and before `to`. With only one end given, the
/// other is the default length away from it.
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use keygate::activity::{Granularity, UsageQuery};
///
/// let from = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
/// let query = UsageQuery::new(Granularity::Hour)
///     .from(from)
///     .to(from + Duration::from_secs(6 * 3600));
/// assert_eq!(query.granularity, Granularity::Hour);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct UsageQuery {
    /// The buckets' span.
    pub granularity: Granularity,
    /// The first bucket (rounded down to a bucket's start).
    pub from: Option<SystemTime>,
    /// The end, exclusive.
    pub to: Option<SystemTime>,
}

impl Default for UsageQuery {
    fn default() -> Self {
        Self::new(Granularity::Minute)
    }
}

impl UsageQuery {
    /// The default range of `granularity`.
    pub fn new(granularity: Granularity) -> Self {
        Self {
            granularity,
            from: None,
            to: None,
        }
    }

    /// Starts at the bucket holding `from`.
    #[must_use]
    pub fn from(mut self, from: SystemTime) -> Self {
        self.from = Some(from);
        self
    }

    /// Ends before `to`.
    #[must_use]
    pub fn to(mut self, to: SystemTime) -> Self {
        self.to = Some(to);
        self
    }

    /// The buckets to read at `now`, or why the query cannot be answered.
    pub fn resolve(
        &self,
        now: SystemTime,
        retention: &UsageRetention,
    ) -> Result<UsageRange, UsageQueryError> {
        let g = self.granularity;
        let length = g.default_range();
        let (from, to) = match (self.from, self.to) {
            (Some(from), Some(to)) => (from, to),
            (Some(from), None) => (from, from + length),
            (None, Some(to)) => (to.checked_sub(length).unwrap_or(to), to),
            (None, None) => {
                let to = g.floor(now) + g.span();
                (to - length, to)
            }
        };
        if from > to {
            return Err(UsageQueryError::Reversed);
        }
        let from = g.floor(from);
        let span = g.seconds();
        let buckets = (unix_secs(to).saturating_sub(unix_secs(from))).div_ceil(span);
        if buckets > MAX_BUCKETS {
            return Err(UsageQueryError::TooManyBuckets { buckets });
        }
        let kept = retention.of(g);
        let oldest = g.floor(now.checked_sub(kept).unwrap_or(SystemTime::UNIX_EPOCH));
        if from < oldest {
            return Err(UsageQueryError::BeyondRetention {
                granularity: g,
                retention: kept,
            });
        }
        Ok(UsageRange {
            granularity: g,
            from,
            to,
            buckets,
        })
    }
}

/// A checked [`UsageQuery`]: `buckets` buckets of `granularity` from `from` (a bucket's
/// start) up to `to` (exclusive).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct UsageRange {
    /// The buckets' span.
    pub granularity: Granularity,
    /// The first bucket's start.
    pub from: SystemTime,
    /// The end, exclusive.
    pub to: SystemTime,
    /// How many buckets.
    pub buckets: u64,
}

impl UsageRange {
    /// The start of every bucket in the range.
    pub fn starts(&self) -> impl Iterator<Item = SystemTime> + '_ {
        let span = self.granularity.span();
        (0..self.buckets).map(move |i| self.from + span * u32::try_from(i).unwrap_or(u32::MAX))
    }
}

/// Why a [`UsageQuery`] cannot be answered: each a 400 with its own code.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UsageQueryError {
    /// `granularity` is not `minute`, `hour` or `day` (`unknown_granularity`).
    #[error("granularity: must be minute, hour or day")]
    UnknownGranularity,
    /// `from` is after `to` (`usage_range_reversed`).
    #[error("from: must not be after to")]
    Reversed,
    /// More than 1,500 buckets (`usage_range_too_large`).
    #[error("The range holds {buckets} buckets; at most 1500 are answered at once: narrow it or use a coarser granularity")]
    TooManyBuckets {
        /// How many the range holds.
        buckets: u64,
    },
    /// The range starts before the oldest bucket kept (`usage_range_beyond_retention`).
    #[error("from: {granularity} buckets are kept for {} only; start later or use a coarser granularity", humantime::format_duration(*retention))]
    BeyondRetention {
        /// The granularity asked for.
        granularity: Granularity,
        /// How long it is kept.
        retention: Duration,
    },
}

impl UsageQueryError {
    /// The stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            UsageQueryError::UnknownGranularity => "unknown_granularity",
            UsageQueryError::Reversed => "usage_range_reversed",
            UsageQueryError::TooManyBuckets { .. } => "usage_range_too_large",
            UsageQueryError::BeyondRetention { .. } => "usage_range_beyond_retention",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    fn now() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_800_000_030)
    }

    #[test]
    fn defaults_cover_the_last_hour_two_days_and_month_up_to_the_current_bucket() {
        let r = &UsageRetention::default();
        let minute = UsageQuery::new(Granularity::Minute)
            .resolve(now(), r)
            .unwrap();
        assert_eq!(minute.buckets, 60);
        assert_eq!(
            minute.to,
            Granularity::Minute.floor(now()) + Duration::from_secs(60)
        );
        let hour = UsageQuery::new(Granularity::Hour)
            .resolve(now(), r)
            .unwrap();
        assert_eq!(hour.buckets, 48);
        let day = UsageQuery::new(Granularity::Day).resolve(now(), r).unwrap();
        assert_eq!(day.buckets, 30);
        assert_eq!(day.starts().count(), 30);
    }

    #[test]
    fn reversed_too_large_and_expired_ranges_are_refused_with_their_codes() {
        let r = &UsageRetention::default();
        let q = UsageQuery::new(Granularity::Minute);
        let e = q
            .from(now())
            .to(now() - Duration::from_secs(60))
            .resolve(now(), r);
        assert_eq!(e.unwrap_err().code(), "usage_range_reversed");
        let e = q
            .from(now() - Duration::from_secs(1501 * 60))
            .to(now())
            .resolve(now(), r);
        assert_eq!(e.unwrap_err().code(), "usage_range_too_large");
        let e = q
            .from(now() - Duration::from_secs(49 * 3600))
            .to(now() - Duration::from_secs(48 * 3600))
            .resolve(now(), r);
        assert_eq!(e.unwrap_err().code(), "usage_range_beyond_retention");
        // Exactly 1500 buckets, within the retention, are answered.
        let ok = q
            .from(now() - Duration::from_secs(1499 * 60))
            .to(now())
            .resolve(now(), r)
            .unwrap();
        assert_eq!(ok.buckets, 1500);
    }
}
