//! The ordered indexes behind [`super::MemoryStore`], guarded by its write lock.

use std::collections::{BTreeMap, BTreeSet};
use std::time::SystemTime;

use crate::store::record::{AccountId, KeyId, KeyRecord};

/// What the write lock guards.
#[derive(Default)]
pub(super) struct Index {
    pub(super) accounts: BTreeMap<AccountId, AccountKeys>,
    /// Every revoked key, by revocation time: for the retention.
    pub(super) revoked: BTreeSet<(SystemTime, KeyId)>,
}

/// One account's keys.
#[derive(Default)]
pub(super) struct AccountKeys {
    /// All of them, in listing order (creation time, then id).
    pub(super) listed: BTreeSet<(SystemTime, KeyId)>,
    /// The revoked ones, by revocation time.
    pub(super) revoked: BTreeSet<(SystemTime, KeyId)>,
    /// The unrevoked ones with an expiry, by expiry.
    pub(super) expiring: BTreeSet<(SystemTime, KeyId)>,
}

impl AccountKeys {
    /// Adds (`add`) or removes the entries `record` implies.
    pub(super) fn set(&mut self, record: &KeyRecord, add: bool) {
        let id = &record.id;
        let entry = match (record.revoked_at, record.expires_at) {
            (Some(t), _) => Some((&mut self.revoked, t)),
            (None, Some(t)) => Some((&mut self.expiring, t)),
            (None, None) => None,
        };
        let listed = (record.created_at, id.clone());
        if add {
            self.listed.insert(listed);
            if let Some((set, t)) = entry {
                set.insert((t, id.clone()));
            }
        } else {
            self.listed.remove(&listed);
            if let Some((set, t)) = entry {
                set.remove(&(t, id.clone()));
            }
        }
    }

    /// The account's ended keys at `now`, oldest end first: revoked by revocation time,
    /// expired by expiry.
    pub(super) fn ended(&self, now: SystemTime) -> impl Iterator<Item = &(SystemTime, KeyId)> {
        let expired = self.expiring.iter().take_while(move |(t, _)| *t <= now);
        MergeOrdered {
            a: self.revoked.iter().peekable(),
            b: expired.peekable(),
        }
    }

    pub(super) fn ended_count(&self, now: SystemTime) -> usize {
        self.revoked.len() + self.expiring.iter().take_while(|(t, _)| *t <= now).count()
    }
}

/// Two ordered iterators merged in order.
struct MergeOrdered<A: Iterator, B: Iterator> {
    a: std::iter::Peekable<A>,
    b: std::iter::Peekable<B>,
}

impl<'a, A, B> Iterator for MergeOrdered<A, B>
where
    A: Iterator<Item = &'a (SystemTime, KeyId)>,
    B: Iterator<Item = &'a (SystemTime, KeyId)>,
{
    type Item = &'a (SystemTime, KeyId);
    fn next(&mut self) -> Option<Self::Item> {
        match (self.a.peek(), self.b.peek()) {
            (Some(x), Some(y)) if y < x => self.b.next(),
            (Some(_), _) => self.a.next(),
            (None, _) => self.b.next(),
        }
    }
}
