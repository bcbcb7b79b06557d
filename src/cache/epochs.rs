//! Invalidation epochs: one counter per stripe of digests.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::key::digest::KeyDigest;

/// Number of counters; a digest maps to one by its last byte.
const STRIPES: usize = 256;

/// Per-stripe invalidation counters. An invalidation bumps its digest's counter *before*
/// it removes any cached copy; every cached copy records the counter read *before* its
/// store call, and is a miss once the counter has moved on.
pub(crate) struct Epochs {
    stripes: Box<[AtomicU64; STRIPES]>,
}

impl Default for Epochs {
    fn default() -> Self {
        Self {
            stripes: Box::new(std::array::from_fn(|_| AtomicU64::new(0))),
        }
    }
}

impl Epochs {
    fn slot(&self, digest: &KeyDigest) -> &AtomicU64 {
        &self.stripes[usize::from(digest.as_bytes()[31])]
    }

    /// The current epoch of `digest`'s stripe.
    #[inline]
    pub(crate) fn current(&self, digest: &KeyDigest) -> u64 {
        self.slot(digest).load(Ordering::SeqCst)
    }

    /// Moves `digest`'s stripe to a new epoch: every copy cached before now is stale.
    pub(crate) fn bump(&self, digest: &KeyDigest) {
        self.slot(digest).fetch_add(1, Ordering::SeqCst);
    }

    /// Moves every stripe to a new epoch.
    pub(crate) fn bump_all(&self) {
        for stripe in self.stripes.iter() {
            stripe.fetch_add(1, Ordering::SeqCst);
        }
    }
}
