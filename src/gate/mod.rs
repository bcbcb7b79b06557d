//! [`Keygate`]: the one core behind the layer and the key manager, with its builder
//! ([`KeygateBuilder`]). Every `impl Keygate` is in this module: its settings and
//! maintenance here, its construction in `builder.rs` and `managed.rs`, and the request
//! path the layer drives in `request.rs` (the checks, in order, from
//! [`crate::check`]), with `refusal.rs` (rendering and auditing refusals) and
//! `last_used.rs`; `health.rs` reports on its dependencies ([`Keygate::health`]).

mod api_log;
mod builder;
mod builder_metering;
mod health;
mod last_used;
mod lease_wait;
mod managed;
mod metering;
mod quota;
mod refusal;
mod request;
#[cfg(test)]
mod tests;

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// The cache settings of [`KeygateBuilder::cache`].
pub use crate::cache::CacheConfig;
pub(crate) use api_log::PendingEvent;
pub use builder::{KeygateBuilder, ReadOnly};
pub use health::{Health, ListenerHealth, SharedLimiterHealth, StoreHealth};
pub(crate) use lease_wait::AwaitingLease;
pub use managed::Managed;
pub(crate) use request::{Admission, LookupFuture, Start};

use std::time::Duration;

use crate::cache::KeyCache;
use crate::check::credentials::KeySource;
use crate::check::external::CredentialHook;
use crate::check::format::KeyCheck;
use crate::check::status;
use crate::client_ip::ClientIpResolver;
use crate::clock::Clock;
use crate::error::AuthError;
use crate::identity::Identity;
use crate::key::digest::{KeyDigest, KeyHasher};
use crate::key::{Environment, KeyFormat};
use crate::layer::KeygateLayer;
use crate::metering::Metering;
use crate::ratelimit::RateLimits;
use crate::refusal::RenderRefusal;
use crate::scope::{ScopeImplications, ScopeSet};
use crate::store::record::KeyRecord;
use crate::store::KeyStoreWrite;
use refusal::Prerendered;

static NEXT_GATE_ID: AtomicU64 = AtomicU64::new(1);

/// The shared core: configuration, cache and limiters. Cheap to clone.
///
/// Build one per deployment: [`Keygate::managed`] over a writable store gives the core
/// and its [`crate::KeyManager`] together (one store, given once); [`Keygate::builder`]
/// over a read-only store gives the core alone. Then add [`Keygate::layer`] to a
/// service.
///
/// ```
/// use keygate::{Environment, Keygate, MemoryStore, NewKey};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let (gate, manager) = Keygate::managed(MemoryStore::new())
///     .environment(Environment::Test)
///     .build();
/// let created = manager.create("acct_1".into(), NewKey::named("CI")).await?;
/// let identity = gate.verify_key(created.key.expose_secret()).await?;
/// assert_eq!(identity.key_id(), &created.view.id);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Keygate {
    inner: Arc<Shared>,
}

/// What every clone of one [`Keygate`] shares. Its fields are read in this module only.
struct Shared {
    /// Tells this core's identities from another's (nested layers).
    id: u64,
    keys: KeyCheck,
    realm: String,
    clock: Clock,
    cache: Arc<KeyCache>,
    limits: Arc<RateLimits>,
    /// Whether any quota header is on (the IETF fields or `X-…` quota headers).
    reports_quotas: bool,
    /// Credits, quotas and plans.
    metering: Arc<Metering>,
    implications: ScopeImplications,
    read_only_scopes: ScopeSet,
    ip_resolver: Arc<dyn ClientIpResolver>,
    renderer: Arc<dyn RenderRefusal>,
    key_source: KeySource,
    /// Set over a writable store: `last_used_at` tracking.
    writer: Option<Arc<dyn KeyStoreWrite>>,
    last_used_interval: Duration,
    prerendered: Prerendered,
    /// The credential hook, when a verifier is configured.
    credentials: Option<Arc<CredentialHook>>,
    /// Usage counters, when counting is on. Dropped with the last clone, which makes
    /// the background flusher flush one last time.
    usage: Option<crate::activity::UsageHandle>,
    /// The API log, when turned on.
    api_log: Option<crate::activity::log::ApiLog>,
}

impl Keygate {
    /// A tower layer that requires a valid key on every request.
    pub fn layer(&self) -> KeygateLayer {
        KeygateLayer::new(self.clone())
    }

    /// The key format.
    pub fn format(&self) -> &KeyFormat {
        &self.inner.keys.format
    }

    /// The digest function.
    pub fn hasher(&self) -> &KeyHasher {
        &self.inner.keys.hasher
    }

    /// The clock.
    pub fn clock(&self) -> &Clock {
        &self.inner.clock
    }

    /// The environment this deployment accepts, if restricted.
    pub fn environment(&self) -> Option<Environment> {
        self.inner.keys.environment
    }

    /// Whether this deployment accepts environment-neutral keys: always when it serves
    /// any environment, otherwise only when
    /// [`KeygateBuilder::accept_environment_neutral_keys`] is on.
    pub fn accepts_environment_neutral_keys(&self) -> bool {
        self.inner.keys.accept_neutral
    }

    /// The environment of keys made without an explicit one: this deployment's
    /// environment; for a deployment of any environment whose format has no
    /// environment-neutral prefix and the prefixes of one environment only, that
    /// environment; otherwise none (an environment-neutral key).
    pub fn default_environment(&self) -> Option<Environment> {
        if self.inner.keys.environment.is_some() {
            return self.inner.keys.environment;
        }
        let mut envs = self
            .inner
            .keys
            .format
            .prefixes()
            .iter()
            .map(|p| p.environment());
        let first = envs.next().flatten()?;
        envs.all(|e| e == Some(first)).then_some(first)
    }

    /// How scopes imply one another.
    pub fn scope_implications(&self) -> &crate::scope::ScopeImplications {
        &self.inner.implications
    }

    /// The scopes that make a key read-only.
    pub fn read_only_scopes(&self) -> &crate::scope::ScopeSet {
        &self.inner.read_only_scopes
    }

    /// The quota of keys without an override (`None`: unlimited), for management's
    /// no-widening rules.
    pub(crate) fn default_quota(&self) -> Option<crate::store::record::RateLimit> {
        self.inner.limits.config().default_quota
    }

    /// The rate-limit settings.
    pub fn rate_limits(&self) -> &crate::ratelimit::RateLimitConfig {
        self.inner.limits.config()
    }

    /// Drops every cached copy of `digest`: once this returns, no request that starts
    /// afterwards is answered from a copy made before (see the coherence protocol in
    /// the crate's `cache` module docs).
    pub fn invalidate_digest(&self, digest: &KeyDigest) {
        self.inner.cache.metrics.invalidation(false, false);
        self.inner.cache.invalidate(digest);
    }

    /// [`Keygate::invalidate`] for the [`crate::KeyManager`]'s own changes.
    pub(crate) fn invalidate_local(&self, record: &KeyRecord) {
        for digest in record.digests() {
            self.inner.cache.metrics.invalidation(false, true);
            self.inner.cache.invalidate(&digest);
        }
    }

    /// Drops the cache entries for every digest of `record`.
    pub fn invalidate(&self, record: &KeyRecord) {
        for digest in record.digests() {
            self.invalidate_digest(&digest);
        }
    }

    /// Drops every cached key and answer: the next request for any key asks the store,
    /// and the first miss reads the stored plans again. For an instance that lost its
    /// invalidation channel and cannot tell what it missed, or that heard of a plan
    /// change.
    pub fn invalidate_all(&self) {
        self.inner.metering.plans.mark_stale();
        self.inner.cache.metrics.invalidation(true, false);
        self.inner.cache.invalidate_all();
    }

    /// Tells the cache whether the invalidation channel is down. While it is, a found
    /// key is trusted for [`crate::gate::CacheConfig::degraded_ttl`] only (1 s by default)
    /// instead of the positive lifetime, and "no such key" answers are not used.
    pub fn set_degraded(&self, degraded: bool) {
        self.inner.cache.set_degraded(degraded);
    }

    /// Drops idle rate-limiter state and applies pending cache evictions. Runs by itself
    /// every [`crate::ratelimit::RateLimitConfig::maintenance_interval`]; call it to force it.
    pub fn run_maintenance(&self) {
        // Evictions first, so that the cells only evicted entries held can go.
        self.inner.cache.run_pending_tasks();
        self.inner.limits.maintain();
    }

    /// Counters for monitoring and tests.
    pub fn stats(&self) -> KeygateStats {
        let cache = &self.inner.cache;
        KeygateStats {
            cached_entries: cache.entries(),
            cached_bytes: cache.weighted_bytes(),
            cached_unknown: cache.unknown_entries(),
            inflight_lookups: cache.inflight(),
            rate_limit_buckets: self.inner.limits.tracked(),
            store_lookups: cache.store_calls(),
            usage_cells: self.usage_counters().map_or(0, |u| u.cells()),
        }
    }

    /// Verifies a bare key with no request around it: format, environment, lookup and
    /// status. No IP, scope or rate-limit check. For non-HTTP uses and tests.
    pub async fn verify_key(&self, key: &str) -> Result<Identity, AuthError> {
        let v = &self.inner;
        let digest = v.keys.digest_of(key.as_bytes())?;
        // Through `lookup`, which reads the stored plans first when they may have changed.
        let resolved = self.lookup(digest).await?.ok_or(AuthError::InvalidKey)?;
        status::check(&resolved, &digest, v.clock.now(), v.keys.environment)?;
        Ok(Identity::new(resolved))
    }

    /// Writes every usage count this gate made so far into its usage store, at once
    /// (the background task does so every [`crate::activity::UsageConfig::flush_interval`]).
    /// Await it before a clean shutdown so that nothing is lost. `Ok` when counting is
    /// off; on `Err` the counts are kept for the next flush.
    pub async fn flush_usage(&self) -> Result<(), crate::StoreError> {
        match &self.inner.usage {
            Some(usage) => usage.counters.flush().await,
            None => Ok(()),
        }
    }

    /// Whether this gate counts usage (see [`crate::activity`]).
    pub fn counts_usage(&self) -> bool {
        self.inner.usage.is_some()
    }

    /// The usage counters, when counting is on.
    pub(crate) fn usage_counters(&self) -> Option<&Arc<crate::activity::UsageCounters>> {
        self.inner.usage.as_ref().map(|u| &u.counters)
    }

    fn next_id() -> u64 {
        NEXT_GATE_ID.fetch_add(1, Ordering::Relaxed)
    }
}

impl fmt::Debug for Keygate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keygate")
            .field("format", &self.inner.keys.format)
            .field("environment", &self.inner.keys.environment)
            .field("realm", &self.inner.realm)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

/// Counters from [`Keygate::stats`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct KeygateStats {
    /// Keys in the cache (approximate until maintenance runs).
    pub cached_entries: u64,
    /// Bytes those keys weigh against [`crate::gate::CacheConfig::max_bytes`].
    pub cached_bytes: u64,
    /// "No such key" answers in the cache (approximate until maintenance runs).
    pub cached_unknown: u64,
    /// Store lookups under way.
    pub inflight_lookups: usize,
    /// Rate-limit buckets that hold state: not full again yet (a full bucket is the same
    /// as a new one). Their cells stay in their keys' cache entries, and are dropped by
    /// maintenance once no entry holds them and they are full.
    pub rate_limit_buckets: usize,
    /// Store lookups made since start.
    pub store_lookups: u64,
    /// Keys whose usage counters are held: by a cache entry, or with counts not yet
    /// flushed.
    pub usage_cells: usize,
}
