//! Coalesced `last_used_at` tracking, off the request path.

use std::sync::atomic::Ordering;
use std::time::SystemTime;

use super::Verifier;
use crate::cache::entry::ResolvedKey;

impl Verifier {
    /// Schedules a `last_used_at` write at most once per interval per key, never
    /// waiting for it.
    pub(super) fn touch(&self, key: &ResolvedKey, now: SystemTime) {
        let Some(writer) = &self.writer else {
            return;
        };
        let now_secs = now
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let last = key.last_used_written.load(Ordering::Relaxed);
        if now_secs.saturating_sub(last) < self.last_used_interval.as_secs().max(1)
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
