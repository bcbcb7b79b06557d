//! What the cache holds: a key record plus what keygate derives from it once.

use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::clock::Clock;
use crate::key::digest::KeyDigest;
use crate::ratelimit::Bucket;
use crate::scope::GrantedScopes;
use crate::store::record::KeyRecord;

/// A key as the cache holds it.
pub(crate) struct ResolvedKey {
    pub(crate) record: KeyRecord,
    pub(crate) granted: GrantedScopes,
    pub(crate) read_only: bool,
    /// The key's own bucket, counted against its id. The same cell survives refreshes
    /// of this entry (see [`crate::ratelimit`]).
    pub(crate) limit: Option<Bucket>,
    /// With `PerAccount` limits, the account's one shared bucket: every key of the
    /// account draws from it, and a per-key override (in `limit`) can only lower a key's
    /// own share.
    pub(crate) account_limit: Option<Bucket>,
    /// The key's usage counters: the same cells across refreshes and replacements.
    pub(crate) usage: crate::activity::KeyUsage,
    /// Unix seconds of the last `last_used_at` write this process started.
    pub(crate) last_used_written: AtomicU64,
    /// Until when this copy may be used without asking the store again.
    pub(crate) fresh_until: SystemTime,
    /// When the store answered with it.
    pub(crate) verified_at: SystemTime,
    /// The digest's invalidation epoch read before the store call that produced this
    /// copy. The copy is valid only while the digest's epoch still equals it.
    pub(crate) epoch: u64,
    /// The [`crate::Keygate`] that resolved it.
    pub(crate) gate: u64,
    /// Made from a credential verifier's principal rather than a stored key: never
    /// cached, never written back (`last_used_at`).
    pub(crate) external: bool,
}

impl ResolvedKey {
    /// Whether this copy may answer a request at `now`, with the digest at `epoch`.
    #[inline]
    pub(crate) fn is_valid(&self, epoch: u64, now: SystemTime) -> bool {
        self.epoch == epoch && now < self.fresh_until
    }

    /// Approximate heap bytes held, for the cache's byte budget.
    pub(crate) fn weight(&self) -> u32 {
        let r = &self.record;
        let scopes: usize = r.scopes.iter().map(|s| s.as_str().len() + 32).sum();
        let metadata = serde_json::to_vec(&r.metadata).map_or(0, |v| v.len() * 3);
        let counters = if self.usage.is_counted() { 320 } else { 0 };
        let total = 512
            + counters
            + r.id.as_str().len()
            + r.account_id.as_str().len()
            + r.name.len()
            + r.prefix.len()
            + r.start.len()
            + scopes * 2
            + r.ips.entries().len() * 40
            + metadata;
        u32::try_from(total).unwrap_or(u32::MAX)
    }
}

/// moka expiry: a found key lives until its `fresh_until`, measured on keygate's clock.
pub(crate) struct EntryExpiry {
    pub(crate) clock: Clock,
}

impl EntryExpiry {
    fn ttl(&self, key: &ResolvedKey) -> Duration {
        key.fresh_until
            .duration_since(self.clock.now())
            .unwrap_or(Duration::ZERO)
    }
}

impl moka::Expiry<KeyDigest, Arc<ResolvedKey>> for EntryExpiry {
    fn expire_after_create(
        &self,
        _: &KeyDigest,
        value: &Arc<ResolvedKey>,
        _: std::time::Instant,
    ) -> Option<Duration> {
        Some(self.ttl(value))
    }
    fn expire_after_update(
        &self,
        _: &KeyDigest,
        value: &Arc<ResolvedKey>,
        _: std::time::Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        Some(self.ttl(value))
    }
}
