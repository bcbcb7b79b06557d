//! The in-process outbox used without PostgreSQL: a bounded queue, lost when the
//! process ends.

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use async_trait::async_trait;

use super::event::{EventType, WebhookEvent};
use super::outbox::{Claimed, EventQuery, EventRecord, EventStatus, Outbox, Outcome};
use crate::store::record::{AccountId, KeyId, KeyRecord};
use crate::store::{MemoryStore, StoreError};

/// An event in the in-process queue.
struct Entry {
    event: WebhookEvent,
    status: EventStatus,
    attempts: u32,
    next_attempt_at: SystemTime,
    deadline: SystemTime,
    lease: Option<(String, SystemTime)>,
    last_error: Option<String>,
    finished_at: Option<SystemTime>,
}

impl Entry {
    fn record(&self) -> EventRecord {
        EventRecord {
            id: self.event.id.clone(),
            event_type: self.event.event_type.as_str().to_owned(),
            status: self.status,
            attempts: self.attempts,
            account_id: self.event.account_id.clone(),
            key_id: self.event.key_id.clone(),
            created_at: self.event.created_at,
            next_attempt_at: self.next_attempt_at,
            last_error: self.last_error.clone(),
            payload: serde_json::from_str(&self.event.body).unwrap_or_default(),
        }
    }
}

/// The in-process queue: bounded, and lost when the process ends.
pub(crate) struct MemoryOutbox {
    state: Mutex<MemoryState>,
    capacity: usize,
    keys: Option<Arc<MemoryStore>>,
}

#[derive(Default)]
struct MemoryState {
    entries: VecDeque<Entry>,
    /// Expiry notices queued: (key, expiry); forgotten once the expiry has passed.
    noticed: HashSet<(KeyId, SystemTime)>,
}

impl MemoryOutbox {
    pub(crate) fn new(capacity: usize, keys: Option<Arc<MemoryStore>>) -> Self {
        Self {
            state: Mutex::default(),
            capacity: capacity.max(1),
            keys,
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, MemoryState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[async_trait]
impl Outbox for MemoryOutbox {
    async fn enqueue(&self, events: &[WebhookEvent]) -> Result<usize, StoreError> {
        let mut state = self.state();
        let mut queued = 0;
        for event in events {
            let notice = match (event.event_type, &event.key_id, event.subject_at) {
                (EventType::KeyExpiring, Some(key), Some(at)) => Some((key.clone(), at)),
                _ => None,
            };
            if notice.as_ref().is_some_and(|n| state.noticed.contains(n)) {
                continue;
            }
            if state.entries.len() >= self.capacity {
                // Finished entries make room first; pending ones are never dropped.
                let finished = state
                    .entries
                    .iter()
                    .position(|e| e.status != EventStatus::Pending);
                match finished {
                    Some(at) => {
                        state.entries.remove(at);
                    }
                    None => {
                        return Err(StoreError::LimitReached {
                            limit: self.capacity,
                        })
                    }
                }
            }
            if let Some(notice) = notice {
                state.noticed.insert(notice);
            }
            state.entries.push_back(Entry {
                event: event.clone(),
                status: EventStatus::Pending,
                attempts: 0,
                next_attempt_at: event.created_at,
                deadline: event.deadline,
                lease: None,
                last_error: None,
                finished_at: None,
            });
            queued += 1;
        }
        Ok(queued)
    }

    async fn claim(
        &self,
        now: SystemTime,
        limit: usize,
        owner: &str,
        lease_until: SystemTime,
    ) -> Result<Vec<Claimed>, StoreError> {
        let mut state = self.state();
        let mut claimed = Vec::new();
        for entry in state.entries.iter_mut() {
            if claimed.len() >= limit {
                break;
            }
            let leased = entry.lease.as_ref().is_some_and(|(_, until)| *until > now);
            if entry.status == EventStatus::Pending && entry.next_attempt_at <= now && !leased {
                entry.lease = Some((owner.to_owned(), lease_until));
                claimed.push(Claimed {
                    id: entry.event.id.clone(),
                    body: entry.event.body.clone(),
                    attempts: entry.attempts,
                    deadline: entry.deadline,
                });
            }
        }
        Ok(claimed)
    }

    async fn finish(
        &self,
        id: &str,
        owner: &str,
        outcome: Outcome,
        now: SystemTime,
    ) -> Result<(), StoreError> {
        let mut state = self.state();
        let Some(entry) = state
            .entries
            .iter_mut()
            .find(|e| e.event.id == id && e.lease.as_ref().is_some_and(|(o, _)| o == owner))
        else {
            return Ok(());
        };
        entry.lease = None;
        entry.attempts += 1;
        match outcome {
            Outcome::Delivered => {
                entry.status = EventStatus::Delivered;
                entry.finished_at = Some(now);
                entry.last_error = None;
            }
            Outcome::Retry { at, error } => {
                entry.next_attempt_at = at;
                entry.last_error = Some(error);
            }
            Outcome::Failed { error } => {
                entry.status = EventStatus::Failed;
                entry.finished_at = Some(now);
                entry.last_error = Some(error);
            }
        }
        Ok(())
    }

    async fn list(&self, query: &EventQuery) -> Result<Vec<EventRecord>, StoreError> {
        let state = self.state();
        let start = match &query.after {
            Some(after) => state
                .entries
                .iter()
                .position(|e| &e.event.id == after)
                .map_or(state.entries.len(), |i| i + 1),
            None => 0,
        };
        Ok(state
            .entries
            .iter()
            .skip(start)
            .filter(|e| e.status == query.status)
            .filter(|e| {
                query
                    .account
                    .as_ref()
                    .is_none_or(|a| *a == e.event.account_id)
            })
            .take(query.limit)
            .map(Entry::record)
            .collect())
    }

    async fn retry(
        &self,
        id: &str,
        account: Option<&AccountId>,
        now: SystemTime,
        deadline: SystemTime,
    ) -> Result<bool, StoreError> {
        let mut state = self.state();
        let found = state.entries.iter_mut().find(|e| {
            e.event.id == id
                && e.status == EventStatus::Failed
                && account.is_none_or(|a| *a == e.event.account_id)
        });
        Ok(match found {
            Some(entry) => {
                entry.status = EventStatus::Pending;
                entry.next_attempt_at = now;
                entry.deadline = deadline;
                entry.finished_at = None;
                true
            }
            None => false,
        })
    }

    async fn expiring(
        &self,
        now: SystemTime,
        until: SystemTime,
    ) -> Result<Vec<KeyRecord>, StoreError> {
        let Some(keys) = &self.keys else {
            return Ok(Vec::new());
        };
        let candidates = keys.expiring_between(now, until);
        let state = self.state();
        Ok(candidates
            .into_iter()
            .filter(|k| {
                k.expires_at
                    .is_some_and(|at| !state.noticed.contains(&(k.id.clone(), at)))
            })
            .collect())
    }

    async fn trim(
        &self,
        before: SystemTime,
        failed_before: SystemTime,
        now: SystemTime,
    ) -> Result<u64, StoreError> {
        let mut state = self.state();
        let len = state.entries.len();
        state.entries.retain(|e| match (e.status, e.finished_at) {
            (EventStatus::Delivered, Some(at)) => at >= before,
            (EventStatus::Failed, Some(at)) => at >= failed_before,
            _ => true,
        });
        state.noticed.retain(|(_, at)| *at > now);
        Ok((len - state.entries.len()) as u64)
    }
}
