//! Coalesced `last_used_at` tracking, off the request path.

use std::sync::atomic::Ordering;
use std::time::{SystemTime, UNIX_EPOCH};

use super::Keygate;
use crate::cache::entry::ResolvedKey;

impl Keygate {
    /// Schedules a `last_used_at` write at most once per interval per key, never
    /// waiting for it.
    pub(super) fn touch(&self, key: &ResolvedKey, now: SystemTime) {
        let Some(writer) = &self.inner.writer else {
            return;
        };
        // Whole seconds throughout: the last write and the interval are whole seconds,
        // so the common case (written recently) is one subtraction and one comparison.
        let now_secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let last = key.last_used_written.load(Ordering::Relaxed);
        let interval = self.inner.last_used_interval.as_secs().max(1);
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
