//! [`Keygate`] as an [`InvalidationSink`].

use super::InvalidationSink;
use crate::key::digest::KeyDigest;
use crate::keygate::Keygate;

impl InvalidationSink for Keygate {
    fn invalidate_digest(&self, digest: &KeyDigest) {
        Keygate::invalidate_digest(self, digest);
    }

    fn invalidate_all(&self) {
        Keygate::invalidate_all(self);
    }

    /// Logged. Until the cache learns to shorten its positive lifetime while degraded,
    /// changes made elsewhere during an outage reach this instance when the listener
    /// reconnects and catches up, or when `positive_ttl` runs out, whichever is first.
    fn set_degraded(&self, degraded: bool) {
        if degraded {
            tracing::warn!(target: "keygate", "invalidation subscription down; changes made elsewhere are not heard of until it is back");
        } else {
            tracing::info!(target: "keygate", "invalidation subscription back and caught up");
        }
    }
}
