//! Coalesced `last_used_at` tracking, off the request path.

use std::sync::atomic::Ordering;

use super::Keygate;
use crate::cache::entry::ResolvedKey;
use crate::clock::Now;

impl Keygate {
    /// Schedules a `last_used_at` write at most once per interval per key, never
    /// waiting for it.
    pub(super) fn touch(&self, key: &ResolvedKey, now: Now) {
        let Some(writer) = &self.inner.writer else {
            return;
        };
        let last = key.last_used_written.load(Ordering::Relaxed);
        let interval = self.inner.last_used_interval.as_secs().max(1);
        // Whole seconds: the request's time is read as an integer once for every step.
        let now_secs = now.unix_secs();
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
            if let Err(error) = writer.record_last_used(&id, now.at).await {
                tracing::warn!(target: "keygate", key_id = %id, %error, "could not record last use");
            }
        });
    }
}
