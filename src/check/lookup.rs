//! Step 3: the lookup. The cache answers first (`crate::cache`), then one shared store
//! lookup; a found record becomes a cache entry here, once per lookup.

use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::activity::{KeyUsage, UsageCounters};
use crate::cache::entry::ResolvedKey;
use crate::cache::Resolve;
use crate::clock::Clock;
use crate::credential::Principal;
use crate::key::digest::KeyDigest;
use crate::ratelimit::{Namespace, RateLimitKey, RateLimits};
use crate::scope::{ScopeImplications, ScopeSet};
use crate::store::record::KeyRecord;

/// What a resolver needs.
#[derive(Clone)]
pub(crate) struct Resolver {
    pub(crate) gate: u64,
    pub(crate) clock: Clock,
    pub(crate) positive_ttl: Duration,
    pub(crate) implications: ScopeImplications,
    pub(crate) read_only_scopes: ScopeSet,
    pub(crate) limits: Arc<RateLimits>,
    /// The gate's usage counters, when it counts.
    pub(crate) usage: Option<Arc<UsageCounters>>,
}

impl Resolver {
    pub(crate) fn boxed(self) -> Box<Resolve> {
        Box::new(move |record, digest, epoch| self.resolve(record, digest, epoch))
    }

    pub(crate) fn resolve(&self, record: KeyRecord, digest: &KeyDigest, epoch: u64) -> ResolvedKey {
        self.resolve_in(record, digest, epoch, Namespace::Key)
    }

    /// [`resolve`](Self::resolve), with the record's own bucket found by its id in
    /// `namespace`.
    fn resolve_in(
        &self,
        record: KeyRecord,
        digest: &KeyDigest,
        epoch: u64,
        namespace: Namespace,
    ) -> ResolvedKey {
        // Trusted for the positive lifetime. Expiry and a roll's grace deadline are
        // checked on every request, so an expired key is refused from its cached copy
        // rather than sending every attempt to the store.
        let _ = digest;
        let verified_at = self.clock.now();
        let fresh_until = verified_at + self.positive_ttl;
        let granted = self.implications.expand(&record.scopes);
        let read_only = record
            .scopes
            .iter()
            .any(|s| self.read_only_scopes.contains(s.as_str()));
        let default = self.limits.config().default_quota;
        let key_id = record.id.shared();
        let (limit, account_limit) = match self.limits.config().key {
            RateLimitKey::PerKey => (
                self.limits
                    .bucket(record.rate_limit.or(default), namespace, key_id),
                None,
            ),
            // One bucket per account at the deployment quota; an override is the key's
            // own, lower, limit inside it.
            RateLimitKey::PerAccount => (
                self.limits.bucket(record.rate_limit, namespace, key_id),
                self.limits
                    .bucket(default, Namespace::Account, record.account_id.shared()),
            ),
        };
        let last_used = record
            .last_used_at
            .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_secs());
        // A principal's subject is no key id: never counted as one.
        let usage = match (&self.usage, namespace) {
            (Some(counters), Namespace::Key) => KeyUsage::new(Some(counters.cell(&record))),
            _ => KeyUsage::default(),
        };
        ResolvedKey {
            usage,
            record,
            granted,
            read_only,
            limit,
            account_limit,
            last_used_written: AtomicU64::new(last_used),
            fresh_until,
            verified_at,
            epoch,
            gate: self.gate,
            external: false,
        }
    }

    /// A verified credential's principal as an entry like a key's, for one request
    /// (never cached). Its subject is rate-limited in the external namespace, which no
    /// key id or account id can reach, so it never draws on another tenant's bucket.
    pub(crate) fn resolve_principal(&self, principal: Principal) -> ResolvedKey {
        let digest = KeyDigest::from_bytes([0; 32]);
        let mut record = KeyRecord::new(
            principal.subject,
            principal.account,
            digest,
            self.clock.now(),
        );
        record.name = principal.name;
        record.scopes = principal.scopes;
        record.ips = principal.ips;
        record.rate_limit = principal.rate_limit;
        record.metadata = principal.metadata;
        // Management confines it by these, as it confines a key by its own.
        record.expires_at = principal.expires_at;
        record.environment = principal.environment;
        let mut key = self.resolve_in(record, &digest, 0, Namespace::External);
        key.external = true;
        key
    }
}
