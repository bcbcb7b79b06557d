//! The API log in process memory: [`crate::MemoryStore`]'s events.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::SystemTime;

use async_trait::async_trait;

use super::{ApiEvent, ApiLogLimits, ApiLogStore, EventFilter};
use crate::store::record::AccountId;
use crate::store::{MemoryStore, StoreError};

/// Events per account, oldest first, each account bounded by the limits of the last
/// append. Memory: at most `max_events_per_account` events (each under 1 KiB: the path is
/// cut at 512 bytes) per account that has events.
#[derive(Default)]
pub(crate) struct EventBuffer {
    inner: Mutex<Buffer>,
}

#[derive(Default)]
struct Buffer {
    accounts: HashMap<AccountId, VecDeque<ApiEvent>>,
    next_seq: u64,
}

impl EventBuffer {
    fn lock(&self) -> std::sync::MutexGuard<'_, Buffer> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn append(&self, events: &[ApiEvent], limits: &ApiLogLimits, now: SystemTime) {
        let cutoff = now.checked_sub(limits.retention);
        let mut buffer = self.lock();
        let buffer = &mut *buffer;
        let mut touched: Vec<AccountId> = Vec::new();
        for event in events {
            buffer.next_seq += 1;
            let account = event.account_id.clone();
            let queue = buffer.accounts.entry(event.account_id.clone()).or_default();
            // Kept in (time, seq) order, so that the oldest is always at the front.
            let event = event.clone().with_seq(buffer.next_seq);
            let at = queue.partition_point(|e| e.time <= event.time);
            queue.insert(at, event);
            if !touched.contains(&account) {
                touched.push(account);
            }
        }
        for account in touched {
            let Some(queue) = buffer.accounts.get_mut(&account) else {
                continue;
            };
            while queue.len() > limits.max_events_per_account {
                queue.pop_front();
            }
            if let Some(cutoff) = cutoff {
                while queue.front().is_some_and(|e| e.time < cutoff) {
                    queue.pop_front();
                }
            }
            if queue.is_empty() {
                buffer.accounts.remove(&account);
            }
        }
    }

    pub(crate) fn prune(&self, before: SystemTime) -> u64 {
        let mut buffer = self.lock();
        let mut gone = 0;
        buffer.accounts.retain(|_, queue| {
            while queue.front().is_some_and(|e| e.time < before) {
                queue.pop_front();
                gone += 1;
            }
            !queue.is_empty()
        });
        gone
    }

    pub(crate) fn query(&self, filter: &EventFilter) -> Vec<ApiEvent> {
        let buffer = self.lock();
        let Some(queue) = buffer.accounts.get(&filter.account_id) else {
            return Vec::new();
        };
        queue
            .iter()
            .rev()
            .filter(|e| filter.matches(e))
            .take(filter.limit)
            .cloned()
            .collect()
    }

    pub(crate) fn erase(&self, account: &AccountId) -> u64 {
        self.lock()
            .accounts
            .remove(account)
            .map_or(0, |q| q.len() as u64)
    }
}

#[async_trait]
impl ApiLogStore for MemoryStore {
    async fn append_events(
        &self,
        events: &[ApiEvent],
        limits: &ApiLogLimits,
        now: SystemTime,
    ) -> Result<(), StoreError> {
        self.api_events().append(events, limits, now);
        Ok(())
    }

    async fn prune_events(&self, before: SystemTime) -> Result<u64, StoreError> {
        Ok(self.api_events().prune(before))
    }

    async fn query_events(&self, filter: &EventFilter) -> Result<Vec<ApiEvent>, StoreError> {
        Ok(self.api_events().query(filter))
    }

    async fn erase_account_events(&self, account: &AccountId) -> Result<u64, StoreError> {
        Ok(self.api_events().erase(account))
    }
}
