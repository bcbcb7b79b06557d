//! Coalesced `last_used_at` tracking, off the request path.

use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use super::Keygate;
use crate::cache::entry::ResolvedKey;

impl Keygate {
    /// Schedules a `last_used_at` write at most once per interval per key, never
    /// waiting for it.
    pub(super) fn touch(&self, key: &ResolvedKey, now: SystemTime) {
        let Some(writer) = &self.inner.writer else {
            return;
        };
        let last = key.last_used_written.load(Ordering::Relaxed);
        let interval = self.inner.last_used_interval.as_secs().max(1);
        // The last write and the interval are whole seconds, so the next write is due at
        // a whole second: compared with the request's time as it is, so that the common
        // case (written recently) converts nothing (a conversion of `now` to seconds
        // costs more than building the due time).
        let due =
            SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs(last.saturating_add(interval)));
        if due.is_none_or(|due| now < due) {
            return;
        }
        let now_secs = now
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        if now_secs.saturating_sub(last) < interval
            || key
                .last_used_written
                .compare_exchange(last, now_secs, Ordering::AcqRel, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let writer = writer.clone();
        let id = key.record.id.clone();
        runtime.spawn(async move {
            if let Err(error) = writer.record_last_used(&id, now).await {
                tracing::warn!(target: "keygate", key_id = %id, %error, "could not record last use");
            }
        });
    }
}
