//! A small per-thread front for the moka cache.
//!
//! moka's `get` records every read for its eviction policy, which costs more than every
//! other step of a cached check together. Each thread therefore keeps recently seen keys
//! in a set-associative table: 64 sets of 8 ways, the set chosen by digest bits, the
//! least recently used way replaced. With 64 keys in use on a thread, every set holds
//! its keys without evictions in all but rare layouts, so repeat hits stay here (a
//! direct-mapped table of 256 slots sent about a fifth of them on to moka).
//!
//! A way answers only under the same rule as moka: its copy's own epoch (read before
//! the store call that produced it) equals the digest's current epoch, and the copy is
//! fresh. A copy is never re-stamped with a newer epoch when it is copied here, so a
//! store answer that raced an invalidation can never be revived by this front.

use std::cell::RefCell;
use std::sync::Arc;
use std::time::SystemTime;

use super::entry::ResolvedKey;
use crate::key::digest::KeyDigest;

const SETS: usize = 64;
const WAYS: usize = 8;

/// One set: each way's tag (the digest's first word, 0 for empty), its copy, and the
/// ways in order of use (most recent first).
struct Set {
    tags: [u64; WAYS],
    slots: [Option<(KeyDigest, Arc<ResolvedKey>)>; WAYS],
    order: [u8; WAYS],
}

impl Set {
    const EMPTY: Set = Set {
        tags: [0; WAYS],
        slots: [const { None }; WAYS],
        order: [0, 1, 2, 3, 4, 5, 6, 7],
    };

    /// The way holding `digest`: the most recently used way first (a thread that
    /// serves one key finds it there at once), then the others.
    #[inline]
    fn find(&self, tag: u64, digest: &KeyDigest) -> Option<usize> {
        let recent = usize::from(self.order[0]);
        if self.holds(recent, tag, digest) {
            return Some(recent);
        }
        (0..WAYS).find(|&way| way != recent && self.holds(way, tag, digest))
    }

    /// Whether `way` holds `digest` (whose first word is `tag`).
    #[inline]
    fn holds(&self, way: usize, tag: u64, digest: &KeyDigest) -> bool {
        // A plain comparison, word by word: whether a presented digest equals a cached
        // one is no secret (finding a key from its digest is a SHA-256 preimage), and the
        // admitting check compares the key's digest in constant time anyway.
        self.tags[way] == tag
            && self.slots[way]
                .as_ref()
                .is_some_and(|(held, _)| held.words() == digest.words())
    }

    /// Marks `way` most recently used.
    #[inline]
    fn touch(&mut self, way: usize) {
        let way = way as u8;
        if self.order[0] == way {
            return;
        }
        let at = self
            .order
            .iter()
            .position(|&w| w == way)
            .unwrap_or(WAYS - 1);
        self.order.copy_within(0..at, 1);
        self.order[0] = way;
    }
}

thread_local! {
    static FRONT: RefCell<[Set; SETS]> = const { RefCell::new([Set::EMPTY; SETS]) };
}

/// The set and the tag of `digest`. The epoch stripes use the last byte, so the set
/// comes from other bits: the second byte.
#[inline]
fn place(digest: &KeyDigest) -> (usize, u64) {
    let bytes = digest.as_bytes();
    let mut word = [0u8; 8];
    word.copy_from_slice(&bytes[..8]);
    // A tag of 0 marks an empty way; a digest whose first word is 0 is simply never
    // found here (it goes to moka), which costs nothing but a miss.
    (usize::from(bytes[1]) % SETS, u64::from_le_bytes(word))
}

/// The copy of `digest` for gate `gate`, if this thread holds a valid one.
#[inline]
pub(crate) fn get(
    gate: u64,
    digest: &KeyDigest,
    epoch: u64,
    now: SystemTime,
) -> Option<Arc<ResolvedKey>> {
    let (set, tag) = place(digest);
    FRONT
        .try_with(|front| {
            let mut front = front.borrow_mut();
            let set = &mut front[set];
            let way = set.find(tag, digest)?;
            let (_, key) = set.slots[way].as_ref()?;
            if key.gate != gate || !key.is_valid(epoch, now) {
                return None;
            }
            let key = key.clone();
            set.touch(way);
            Some(key)
        })
        .ok()
        .flatten()
}

/// Keeps `key` (found under `digest`) in this thread's front, with its own epoch: in
/// the way that already holds the digest, else in the least recently used way.
pub(crate) fn put(digest: KeyDigest, key: &Arc<ResolvedKey>) {
    let (set, tag) = place(&digest);
    if tag == 0 {
        return;
    }
    let _ = FRONT.try_with(|front| {
        let mut front = front.borrow_mut();
        let set = &mut front[set];
        let way = set
            .find(tag, &digest)
            .unwrap_or_else(|| usize::from(set.order[WAYS - 1]));
        set.tags[way] = tag;
        set.slots[way] = Some((digest, key.clone()));
        set.touch(way);
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::digest::KeyHasher;
    use crate::store::record::KeyRecord;
    use std::time::{Duration, UNIX_EPOCH};

    fn entry(digest: KeyDigest, gate: u64) -> Arc<ResolvedKey> {
        let t0 = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let record = KeyRecord::new("ak_1".into(), "acct_1".into(), digest, t0);
        Arc::new(ResolvedKey {
            granted: crate::scope::ScopeImplications::new().expand(&record.scopes),
            record,
            read_only: false,
            limit: None,
            account_limit: None,
            usage: Default::default(),
            metering: None,
            last_used_written: Default::default(),
            fresh_until: t0 + Duration::from_secs(60),
            verified_at: t0,
            epoch: 0,
            gate,
            external: false,
        })
    }

    fn now() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_700_000_001)
    }

    #[test]
    fn sixty_four_keys_are_answered_here_after_the_first_round() {
        // Run on a thread of its own: the front is per thread.
        std::thread::spawn(|| {
            let hasher = KeyHasher::sha256();
            let digests: Vec<KeyDigest> = (0..64)
                .map(|i| hasher.digest(&format!("sk_live_front_{i}")))
                .collect();
            for digest in &digests {
                put(*digest, &entry(*digest, 1));
            }
            let (mut hits, mut lookups) = (0, 0);
            for _ in 0..100 {
                for digest in &digests {
                    lookups += 1;
                    match get(1, digest, 0, now()) {
                        Some(key) => {
                            assert!(key.record.digest == *digest);
                            hits += 1;
                        }
                        None => put(*digest, &entry(*digest, 1)),
                    }
                }
            }
            assert!(hits * 100 >= lookups * 99, "{hits} of {lookups}");
        })
        .join()
        .unwrap();
    }

    #[test]
    fn a_copy_answers_only_for_its_gate_epoch_and_lifetime() {
        std::thread::spawn(|| {
            let digest = KeyHasher::sha256().digest("sk_live_front_rules");
            put(digest, &entry(digest, 1));
            assert!(get(1, &digest, 0, now()).is_some());
            assert!(get(2, &digest, 0, now()).is_none(), "another gate");
            assert!(get(1, &digest, 1, now()).is_none(), "a newer epoch");
            let later = now() + Duration::from_secs(120);
            assert!(get(1, &digest, 0, later).is_none(), "past its lifetime");
            let other = KeyHasher::sha256().digest("sk_live_front_other");
            assert!(get(1, &other, 0, now()).is_none(), "never stored");
        })
        .join()
        .unwrap();
    }

    #[test]
    fn a_full_set_replaces_its_least_recently_used_way() {
        std::thread::spawn(|| {
            let hasher = KeyHasher::sha256();
            // Nine digests of one set.
            let same_set: Vec<KeyDigest> = (0..)
                .map(|i| hasher.digest(&format!("sk_live_set_{i}")))
                .filter(|d| place(d).0 == 5)
                .take(WAYS + 1)
                .collect();
            for digest in &same_set[..WAYS] {
                put(*digest, &entry(*digest, 1));
            }
            // Use the first again, so that the second is the least recently used.
            assert!(get(1, &same_set[0], 0, now()).is_some());
            put(same_set[WAYS], &entry(same_set[WAYS], 1));
            assert!(get(1, &same_set[1], 0, now()).is_none(), "evicted");
            for digest in same_set.iter().take(1).chain(&same_set[2..]) {
                assert!(get(1, digest, 0, now()).is_some());
            }
        })
        .join()
        .unwrap();
    }
}
