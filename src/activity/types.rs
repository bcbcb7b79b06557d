//! What is counted, by whom, per what span of time.

use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Serialize, Serializer};

use super::Outcome;
use crate::store::record::{AccountId, KeyId};

/// Whose requests a count is for.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum UsageSubject {
    /// One key, by id.
    Key(KeyId),
    /// Every key of one account.
    Account(AccountId),
    /// The whole deployment: refusals that came before any key was recognised.
    Deployment,
}

impl UsageSubject {
    /// The kind's name: `key`, `account` or `deployment`.
    pub fn kind(&self) -> &'static str {
        match self {
            UsageSubject::Key(_) => "key",
            UsageSubject::Account(_) => "account",
            UsageSubject::Deployment => "deployment",
        }
    }

    /// The key's or account's id; empty for the deployment.
    pub fn id(&self) -> &str {
        match self {
            UsageSubject::Key(id) => id.as_str(),
            UsageSubject::Account(id) => id.as_str(),
            UsageSubject::Deployment => "",
        }
    }
}

/// The span of one bucket of counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Granularity {
    /// One minute.
    Minute,
    /// One hour.
    Hour,
    /// One day (UTC).
    Day,
}

impl Granularity {
    /// Every granularity, finest first.
    pub const ALL: [Granularity; 3] = [Granularity::Minute, Granularity::Hour, Granularity::Day];

    /// `minute`, `hour` or `day`.
    pub fn as_str(self) -> &'static str {
        match self {
            Granularity::Minute => "minute",
            Granularity::Hour => "hour",
            Granularity::Day => "day",
        }
    }

    /// The granularity named `text` (`minute`, `hour` or `day`).
    pub fn parse(text: &str) -> Option<Granularity> {
        Granularity::ALL.into_iter().find(|g| g.as_str() == text)
    }

    /// A bucket's length.
    pub fn span(self) -> Duration {
        Duration::from_secs(self.seconds())
    }

    pub(crate) fn seconds(self) -> u64 {
        match self {
            Granularity::Minute => 60,
            Granularity::Hour => 3600,
            Granularity::Day => 86_400,
        }
    }

    /// The start of the bucket holding `at` (times before 1970 go to 1970).
    pub fn floor(self, at: SystemTime) -> SystemTime {
        let secs = unix_secs(at);
        UNIX_EPOCH + Duration::from_secs(secs - secs % self.seconds())
    }

    /// The default answer's length: 60 minutes, 48 hours or 30 days.
    pub fn default_range(self) -> Duration {
        match self {
            Granularity::Minute => Duration::from_secs(3600),
            Granularity::Hour => Duration::from_secs(48 * 3600),
            Granularity::Day => Duration::from_secs(30 * 86_400),
        }
    }
}

impl fmt::Display for Granularity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

pub(crate) fn unix_secs(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// How long a [`crate::activity::UsageStore`] keeps buckets of each granularity.
///
/// By default minute buckets for 48 hours, hour buckets for 30 days and day buckets
/// for 13 months (395 days).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct UsageRetention {
    /// How long minute buckets are kept.
    pub minute: Duration,
    /// How long hour buckets are kept.
    pub hour: Duration,
    /// How long day buckets are kept.
    pub day: Duration,
}

impl Default for UsageRetention {
    fn default() -> Self {
        Self {
            minute: Duration::from_secs(48 * 3600),
            hour: Duration::from_secs(30 * 86_400),
            day: Duration::from_secs(395 * 86_400),
        }
    }
}

impl UsageRetention {
    /// Sets how long buckets of `granularity` are kept (at least one bucket's span).
    #[must_use]
    pub fn keep(mut self, granularity: Granularity, for_: Duration) -> Self {
        let for_ = for_.max(granularity.span());
        match granularity {
            Granularity::Minute => self.minute = for_,
            Granularity::Hour => self.hour = for_,
            Granularity::Day => self.day = for_,
        }
        self
    }

    /// How long buckets of `granularity` are kept.
    pub fn of(&self, granularity: Granularity) -> Duration {
        match granularity {
            Granularity::Minute => self.minute,
            Granularity::Hour => self.hour,
            Granularity::Day => self.day,
        }
    }
}

/// Requests of one outcome in one minute, for one subject: what a flush hands to a
/// [`crate::activity::UsageSink`]. Each count is new: a sink adds it to what it holds.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct UsageCount {
    /// Whose requests.
    pub subject: UsageSubject,
    /// The account of the key or account subject (for erasure); `None` for the
    /// deployment.
    pub account: Option<AccountId>,
    /// The start of the minute.
    pub minute: SystemTime,
    /// What became of them.
    pub outcome: Outcome,
    /// How many.
    pub count: u64,
}

impl UsageCount {
    /// A count (for tests and custom sinks).
    pub fn new(
        subject: UsageSubject,
        account: Option<AccountId>,
        minute: SystemTime,
        outcome: Outcome,
        count: u64,
    ) -> Self {
        Self {
            subject,
            account,
            minute: Granularity::Minute.floor(minute),
            outcome,
            count,
        }
    }
}

/// The counts of one bucket: `{"start": "<RFC 3339>", "outcomes": {"accepted": N, ...}}`,
/// with only the outcomes that happened.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "admin", derive(utoipa::ToSchema))]
#[non_exhaustive]
pub struct UsageBucket {
    /// The bucket's start.
    #[serde(serialize_with = "rfc3339")]
    #[cfg_attr(feature = "admin", schema(value_type = String, format = DateTime))]
    pub start: SystemTime,
    /// Requests per outcome code.
    #[cfg_attr(feature = "admin", schema(value_type = BTreeMap<String, u64>))]
    pub outcomes: BTreeMap<Outcome, u64>,
}

impl UsageBucket {
    /// An empty bucket starting at `start`.
    pub fn new(start: SystemTime) -> Self {
        Self {
            start,
            outcomes: BTreeMap::new(),
        }
    }

    /// The requests of `outcome` in it.
    pub fn get(&self, outcome: Outcome) -> u64 {
        self.outcomes.get(&outcome).copied().unwrap_or(0)
    }

    /// Every request in it.
    pub fn total(&self) -> u64 {
        self.outcomes.values().sum()
    }
}

fn rfc3339<S: Serializer>(at: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&humantime::format_rfc3339_seconds(*at).to_string())
}
