//! A small per-thread front for the moka cache.
//!
//! moka's `get` records every read for its eviction policy, which costs more than every
//! other step of a cached check together. Each thread therefore keeps the last key seen
//! in each of 256 slots (chosen by digest bits). A slot answers only under the same rule
//! as moka: its copy's own epoch (read before the store call that produced it) equals
//! the digest's current epoch, and the copy is fresh. A copy is never re-stamped with a
//! newer epoch when it is copied here, so a store answer that raced an invalidation can
//! never be revived by this front.

use std::cell::RefCell;
use std::sync::Arc;
use std::time::SystemTime;

use super::entry::ResolvedKey;
use crate::key::digest::KeyDigest;

const SLOTS: usize = 256;

struct Slot {
    digest: KeyDigest,
    key: Arc<ResolvedKey>,
}

thread_local! {
    static FRONT: RefCell<[Option<Slot>; SLOTS]> = const { RefCell::new([const { None }; SLOTS]) };
}

fn index(digest: &KeyDigest) -> usize {
    usize::from(digest.as_bytes()[1])
}

/// The copy of `digest` for gate `gate`, if this thread holds a valid one.
#[inline]
pub(crate) fn get(
    gate: u64,
    digest: &KeyDigest,
    epoch: u64,
    now: SystemTime,
) -> Option<Arc<ResolvedKey>> {
    FRONT
        .try_with(|front| {
            let front = front.borrow();
            let slot = front[index(digest)].as_ref()?;
            (slot.key.gate == gate && slot.key.is_valid(epoch, now) && slot.digest == *digest)
                .then(|| slot.key.clone())
        })
        .ok()
        .flatten()
}

/// Keeps `key` (found under `digest`) in this thread's front, with its own epoch.
pub(crate) fn put(digest: KeyDigest, key: &Arc<ResolvedKey>) {
    let _ = FRONT.try_with(|front| {
        front.borrow_mut()[index(&digest)] = Some(Slot {
            digest,
            key: key.clone(),
        });
    });
}
