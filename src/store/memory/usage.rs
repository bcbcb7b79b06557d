//! [`MemoryStore`]'s usage buckets: minute, hour and day, with a retention each and a
//! bound on how many are held.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use async_trait::async_trait;

use super::MemoryStore;
use crate::activity::{
    Granularity, Outcome, UsageBucket, UsageCount, UsageRange, UsageRetention, UsageSink,
    UsageStore, UsageSubject,
};
use crate::store::record::AccountId;
use crate::store::StoreError;

/// Buckets of one subject at one granularity.
#[derive(Default)]
struct Series {
    account: Option<AccountId>,
    buckets: BTreeMap<SystemTime, BTreeMap<Outcome, u64>>,
}

#[derive(Default)]
struct Tables {
    series: HashMap<(UsageSubject, Granularity), Series>,
    /// Every bucket by start, per granularity: what retention and the bound drop first.
    order: [BTreeSet<(SystemTime, UsageSubject)>; 3],
    buckets: usize,
    newest: Option<SystemTime>,
}

impl Tables {
    fn remove(&mut self, g: Granularity, start: SystemTime, subject: &UsageSubject) {
        let key = (subject.clone(), g);
        if let Some(series) = self.series.get_mut(&key) {
            if series.buckets.remove(&start).is_some() {
                self.buckets -= 1;
            }
            if series.buckets.is_empty() {
                self.series.remove(&key);
            }
        }
    }
}

/// The usage half of a [`MemoryStore`].
pub(crate) struct MemoryUsage {
    tables: Mutex<Tables>,
    retention: UsageRetention,
    max_buckets: usize,
}

impl MemoryUsage {
    pub(crate) fn new(retention: UsageRetention, max_buckets: usize) -> Self {
        Self {
            tables: Mutex::default(),
            retention,
            max_buckets: max_buckets.max(1),
        }
    }

    fn tables(&self) -> std::sync::MutexGuard<'_, Tables> {
        // Every change below leaves the maps consistent between statements that could
        // panic only on allocation failure; a poisoned lock is safe to reuse.
        self.tables.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Buckets held, over every granularity.
    pub(crate) fn buckets(&self) -> usize {
        self.tables().buckets
    }
}

impl MemoryStore {
    /// Default of [`MemoryStore::max_usage_buckets`]: 250,000 (about 50 MiB).
    pub const DEFAULT_MAX_USAGE_BUCKETS: usize = 250_000;

    /// How long usage buckets are kept, per granularity (see [`UsageRetention`]). Ages
    /// are measured from the newest minute counted.
    pub fn usage_retention(mut self, retention: UsageRetention) -> Self {
        self.usage = Arc::new(MemoryUsage::new(retention, self.usage.max_buckets));
        self
    }

    /// Most usage buckets held (minute, hour and day buckets of every key, account and
    /// the deployment together); beyond it the oldest minute buckets go first, then the
    /// oldest hours, then days.
    pub fn max_usage_buckets(mut self, max: usize) -> Self {
        self.usage = Arc::new(MemoryUsage::new(self.usage.retention, max));
        self
    }

    /// Usage buckets held, over every granularity.
    pub fn usage_buckets(&self) -> usize {
        self.usage.buckets()
    }
}

#[async_trait]
impl UsageSink for MemoryUsage {
    async fn record(&self, counts: &[UsageCount]) -> Result<(), StoreError> {
        let mut t = self.tables();
        for c in counts {
            for (i, g) in Granularity::ALL.into_iter().enumerate() {
                let start = g.floor(c.minute);
                let key = (c.subject.clone(), g);
                let series = t.series.entry(key).or_default();
                series.account.clone_from(&c.account);
                let bucket = series.buckets.entry(start).or_default();
                let fresh = bucket.is_empty();
                *bucket.entry(c.outcome).or_default() += c.count;
                if fresh {
                    t.buckets += 1;
                    t.order[i].insert((start, c.subject.clone()));
                }
            }
            t.newest = t.newest.max(Some(c.minute));
        }
        let Some(newest) = t.newest else {
            return Ok(());
        };
        for (i, g) in Granularity::ALL.into_iter().enumerate() {
            let oldest = g.floor(newest.checked_sub(self.retention.of(g)).unwrap_or(newest));
            while let Some((start, subject)) = t.order[i].first().cloned() {
                if start >= oldest {
                    break;
                }
                t.order[i].pop_first();
                t.remove(g, start, &subject);
            }
        }
        for (i, g) in Granularity::ALL.into_iter().enumerate() {
            while t.buckets > self.max_buckets {
                let Some((start, subject)) = t.order[i].pop_first() else {
                    break;
                };
                t.remove(g, start, &subject);
            }
        }
        Ok(())
    }
}

#[async_trait]
impl UsageStore for MemoryUsage {
    fn retention(&self) -> UsageRetention {
        self.retention
    }

    async fn usage(
        &self,
        subject: &UsageSubject,
        range: &UsageRange,
    ) -> Result<Vec<UsageBucket>, StoreError> {
        let t = self.tables();
        let Some(series) = t.series.get(&(subject.clone(), range.granularity)) else {
            return Ok(Vec::new());
        };
        Ok(series
            .buckets
            .range(range.from..range.to)
            .map(|(start, outcomes)| {
                let mut bucket = UsageBucket::new(*start);
                bucket.outcomes.clone_from(outcomes);
                bucket
            })
            .collect())
    }

    async fn erase_account_usage(&self, account: &AccountId) -> Result<u64, StoreError> {
        let mut t = self.tables();
        let doomed: Vec<(UsageSubject, Granularity)> = t
            .series
            .iter()
            .filter(|(_, s)| s.account.as_ref() == Some(account))
            .map(|(k, _)| k.clone())
            .collect();
        let mut erased = 0;
        for (subject, g) in doomed {
            let Some(series) = t.series.remove(&(subject.clone(), g)) else {
                continue;
            };
            let i = Granularity::ALL.iter().position(|x| *x == g).unwrap_or(0);
            for start in series.buckets.keys() {
                t.order[i].remove(&(*start, subject.clone()));
            }
            erased += series.buckets.len();
            t.buckets -= series.buckets.len();
        }
        Ok(erased as u64)
    }
}
