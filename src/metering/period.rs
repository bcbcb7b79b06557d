//! Period edges: when a refill or a quota reset happens, computed from fixed edges of
//! time (never from a timer), so every instance agrees on them.

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

const DAY: i64 = 86_400;

/// A fixed offset from UTC, in seconds, for calendar periods (days, weeks, months).
///
/// ```
/// use keygate::metering::UtcOffset;
///
/// let cet = UtcOffset::from_seconds(3600).unwrap();
/// assert_eq!(cet.seconds(), 3600);
/// assert!(UtcOffset::from_seconds(20 * 3600).is_none());
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct UtcOffset(i32);

impl UtcOffset {
    /// UTC itself.
    pub const UTC: UtcOffset = UtcOffset(0);

    /// An offset of `seconds` east of UTC; `None` beyond ±18 hours.
    pub const fn from_seconds(seconds: i32) -> Option<Self> {
        if seconds.abs() <= 18 * 3600 {
            Some(Self(seconds))
        } else {
            None
        }
    }

    /// Seconds east of UTC.
    pub const fn seconds(self) -> i32 {
        self.0
    }
}

/// A calendar period of a quota: a day, a week (Monday to Sunday) or a month, in UTC or
/// the configured [`UtcOffset`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "admin", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum QuotaPeriod {
    /// From midnight to midnight.
    Day,
    /// From Monday midnight to the next Monday midnight (ISO weeks).
    Week,
    /// From the first of a month at midnight to the first of the next.
    Month,
}

impl QuotaPeriod {
    /// The period's name: `day`, `week` or `month`.
    pub fn as_str(self) -> &'static str {
        match self {
            QuotaPeriod::Day => "day",
            QuotaPeriod::Week => "week",
            QuotaPeriod::Month => "month",
        }
    }

    pub(crate) fn interval(self) -> RefillInterval {
        match self {
            QuotaPeriod::Day => RefillInterval::Day,
            QuotaPeriod::Week => RefillInterval::Week,
            QuotaPeriod::Month => RefillInterval::Month,
        }
    }
}

/// How often credits are refilled: a fixed duration (anchored at the Unix epoch or at a
/// refill's `anchor`), or a calendar day, week or month.
///
/// Written as a humantime duration (`"1h"`, `"30m"`) or `"day"`, `"week"`, `"month"`:
///
/// ```
/// use std::time::Duration;
/// use keygate::metering::RefillInterval;
///
/// assert_eq!("1h".parse::<RefillInterval>().unwrap(), RefillInterval::Every(Duration::from_secs(3600)));
/// assert_eq!("month".parse::<RefillInterval>().unwrap(), RefillInterval::Month);
/// assert!("0s".parse::<RefillInterval>().is_err());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RefillInterval {
    /// Every this long, in whole seconds (at least one).
    Every(Duration),
    /// At each calendar day's start.
    Day,
    /// At each calendar week's start (Monday).
    Week,
    /// At each calendar month's start.
    Month,
}

impl FromStr for RefillInterval {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "day" | "daily" => Ok(Self::Day),
            "week" | "weekly" => Ok(Self::Week),
            "month" | "monthly" => Ok(Self::Month),
            other => {
                let d = humantime::parse_duration(other).map_err(|_| {
                    "interval: expected \"day\", \"week\", \"month\" or a duration such as \"1h\""
                        .to_owned()
                })?;
                if d.as_secs() == 0 || d.subsec_nanos() != 0 {
                    return Err(
                        "interval: a duration must be a whole number of seconds, at least 1 s"
                            .into(),
                    );
                }
                Ok(Self::Every(d))
            }
        }
    }
}

impl fmt::Display for RefillInterval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Every(d) => write!(f, "{}", humantime::format_duration(*d)),
            Self::Day => f.write_str("day"),
            Self::Week => f.write_str("week"),
            Self::Month => f.write_str("month"),
        }
    }
}

impl Serialize for RefillInterval {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for RefillInterval {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Where the edges of an interval fall: its index at a time, and when an index starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Edges {
    pub(crate) interval: RefillInterval,
    /// Start of period 0 for duration intervals, as Unix seconds.
    pub(crate) anchor: i64,
    pub(crate) offset: UtcOffset,
}

impl Edges {
    /// The index of the period holding `at` (0 for times before the anchor).
    pub(crate) fn index(&self, at: SystemTime) -> u64 {
        let secs = unix_seconds(at);
        let local = secs + i64::from(self.offset.0);
        let index = match self.interval {
            RefillInterval::Every(d) => {
                let len = i64::try_from(d.as_secs()).unwrap_or(i64::MAX).max(1);
                (secs - self.anchor).div_euclid(len)
            }
            RefillInterval::Day => local.div_euclid(DAY),
            RefillInterval::Week => (local.div_euclid(DAY) + 3).div_euclid(7),
            RefillInterval::Month => {
                let (y, m, _) = civil_from_days(local.div_euclid(DAY));
                y * 12 + i64::from(m) - 1
            }
        };
        u64::try_from(index).unwrap_or(0)
    }

    /// When period `index` starts.
    pub(crate) fn start_of(&self, index: u64) -> SystemTime {
        let index = i64::try_from(index).unwrap_or(i64::MAX / DAY / 400);
        let local_start = match self.interval {
            RefillInterval::Every(d) => {
                let len = i64::try_from(d.as_secs()).unwrap_or(i64::MAX).max(1);
                return from_unix(self.anchor.saturating_add(index.saturating_mul(len)));
            }
            RefillInterval::Day => index.saturating_mul(DAY),
            RefillInterval::Week => (index.saturating_mul(7) - 3).saturating_mul(DAY),
            RefillInterval::Month => {
                let (y, m) = (index.div_euclid(12), index.rem_euclid(12) + 1);
                days_from_civil(y, m as u32, 1).saturating_mul(DAY)
            }
        };
        from_unix(local_start - i64::from(self.offset.0))
    }

    /// When the period holding `at` ends: the next edge.
    pub(crate) fn next_after(&self, at: SystemTime) -> SystemTime {
        self.start_of(self.index(at).saturating_add(1))
    }
}

fn unix_seconds(at: SystemTime) -> i64 {
    match at.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
    }
}

fn from_unix(secs: i64) -> SystemTime {
    match u64::try_from(secs) {
        Ok(s) => UNIX_EPOCH + Duration::from_secs(s),
        Err(_) => UNIX_EPOCH,
    }
}

/// Howard Hinnant's `civil_from_days`: (year, month 1-12, day 1-31) of a day count.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Howard Hinnant's `days_from_civil`.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(y: i64, m: u32, d: u32, secs: i64) -> SystemTime {
        from_unix(days_from_civil(y, m, d) * DAY + secs)
    }

    fn edges(interval: RefillInterval, offset: i32) -> Edges {
        Edges {
            interval,
            anchor: 0,
            offset: UtcOffset(offset),
        }
    }

    #[test]
    fn civil_dates_round_trip() {
        for z in [-1000, 0, 59, 60, 365, 10_957, 19_782, 20_000, 50_000] {
            let (y, m, d) = civil_from_days(z);
            assert_eq!(days_from_civil(y, m, d), z);
        }
        assert_eq!(civil_from_days(0), (1970, 1, 1));
    }

    #[test]
    fn months_of_28_30_and_31_days_end_on_the_first_of_the_next() {
        let month = edges(RefillInterval::Month, 0);
        // February 2026 has 28 days, April 30, January 31.
        for (y, m, next) in [
            (2026, 2, (2026, 3)),
            (2026, 4, (2026, 5)),
            (2026, 1, (2026, 2)),
            (2026, 12, (2027, 1)),
        ] {
            let inside = at(y, m, 15, 3600);
            assert_eq!(month.next_after(inside), at(next.0, next.1, 1, 0));
            assert_eq!(
                month.next_after(at(next.0, next.1, 1, 0) - Duration::from_secs(1)),
                at(next.0, next.1, 1, 0)
            );
            assert_eq!(
                month.index(at(next.0, next.1, 1, 0)),
                month.index(inside) + 1
            );
        }
    }

    #[test]
    fn weeks_start_on_monday_and_offsets_move_midnight() {
        let week = edges(RefillInterval::Week, 0);
        // 2026-12-03 is a Thursday; the next Monday is 2026-12-07.
        assert_eq!(week.next_after(at(2026, 12, 3, 0)), at(2026, 12, 7, 0));
        let day_east = edges(RefillInterval::Day, 3600);
        // At UTC+1, the day ends at 23:00 UTC.
        assert_eq!(
            day_east.next_after(at(2026, 12, 3, 12 * 3600)),
            at(2026, 12, 3, 23 * 3600)
        );
    }

    #[test]
    fn durations_count_from_their_anchor() {
        let e = Edges {
            interval: RefillInterval::Every(Duration::from_secs(3600)),
            anchor: 1800,
            offset: UtcOffset::UTC,
        };
        assert_eq!(e.index(from_unix(1799)), 0);
        assert_eq!(e.index(from_unix(1800 + 3600)), 1);
        assert_eq!(e.next_after(from_unix(1800 + 3599)), from_unix(1800 + 3600));
    }
}
