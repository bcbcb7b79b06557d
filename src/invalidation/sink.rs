//! [`Keygate`] as an [`InvalidationSink`].

use super::InvalidationSink;
use crate::gate::Keygate;
use crate::key::digest::KeyDigest;

impl InvalidationSink for Keygate {
    fn invalidate_digest(&self, digest: &KeyDigest) {
        Keygate::invalidate_digest(self, digest);
    }

    fn invalidate_all(&self) {
        Keygate::invalidate_all(self);
    }

    /// Cuts the positive lifetime to [`crate::gate::CacheConfig::degraded_ttl`] while the
    /// subscription is down (see [`Keygate::set_degraded`]).
    fn set_degraded(&self, degraded: bool) {
        Keygate::set_degraded(self, degraded);
        if degraded {
            tracing::warn!(target: "keygate", "invalidation subscription down; changes made elsewhere are not heard of until it is back");
        } else {
            tracing::info!(target: "keygate", "invalidation subscription back and caught up");
        }
    }
}
