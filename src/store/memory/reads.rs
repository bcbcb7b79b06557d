//! What other parts of the crate read from a [`MemoryStore`] besides the store traits:
//! records with their account's settings, the API log's events, keys about to expire.

#[cfg(feature = "webhooks")]
use std::time::SystemTime;

use super::MemoryStore;
use crate::store::record::KeyRecord;

impl MemoryStore {
    /// A stored record as a read returns it: with its account's usage settings.
    pub(super) fn read(&self, stored: &KeyRecord) -> KeyRecord {
        let mut record = stored.clone();
        record.usage.account = self.accounts.get(&record.account_id).map(|u| u.clone());
        record
    }

    /// The API log's events kept here (see [`crate::activity::log`]).
    pub(crate) fn api_events(&self) -> &crate::activity::log::EventBuffer {
        &self.api_events
    }

    /// Keys not revoked whose `expires_at` is in `(after, until]`.
    #[cfg(feature = "webhooks")]
    pub(crate) fn expiring_between(&self, after: SystemTime, until: SystemTime) -> Vec<KeyRecord> {
        self.records
            .iter()
            .filter(|r| {
                r.revoked_at.is_none() && r.expires_at.is_some_and(|at| at > after && at <= until)
            })
            .map(|r| r.value().clone())
            .collect()
    }
}
