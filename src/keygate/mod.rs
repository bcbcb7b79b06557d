//! [`Keygate`]: the shared core behind the layer and the key manager.

use std::fmt;
use std::future::Future;
use std::net::IpAddr;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use dashmap::DashMap;
use futures_util::FutureExt;
use http::header::HeaderName;
use http::{Extensions, HeaderMap, Method};
use moka::sync::Cache;
use tokio::sync::OnceCell;

use crate::client_ip::{ClientIpResolver, PeerIp};
use crate::clock::Clock;
use crate::error::AuthError;
use crate::identity::{Identity, ResolvedKey};
use crate::key::digest::{DigestHasher, KeyDigest, KeyHasher};
use crate::key::{Environment, KeyFormat};
use crate::layer::KeygateLayer;
use crate::ratelimit::{RateLimitConfig, RateLimitKey, RateLimitStatus, RateLimits};
use crate::scope::policy::{PolicyDecision, ScopePolicy};
use crate::scope::{ScopeImplications, ScopeRequirement, ScopeSet};
use crate::store::record::KeyRecord;
use crate::store::{KeyStore, KeyStoreWrite, StoreError};
use crate::verify::credentials::KeySource;
use crate::verify::render::{self, JsonRenderer, Rejection, RenderRejection};

/// Cache settings.
#[derive(Clone, Debug)]
pub struct CacheConfig {
    /// Most keys held.
    pub max_entries: u64,
    /// Most "no such key" answers held. Kept apart from found keys, so a flood of
    /// well-formed but unknown keys can never push real keys out of the cache.
    pub max_negative_entries: u64,
    /// How long a found key is trusted without asking the store again. Changes made
    /// through this process's [`crate::KeyManager`] apply at once regardless; this bounds
    /// how late changes made elsewhere (another process, the database) are seen.
    pub positive_ttl: Duration,
    /// How long "no such key" is remembered.
    pub negative_ttl: Duration,
    /// Opt-in "serve stale" window: while the store fails, a key that was verified
    /// against the store within this window keeps working. Off (`None`) by default.
    /// Never applies to a key this process knows is revoked: revocation through a
    /// [`crate::KeyManager`] drops the stale copy too, and a stale copy is checked for
    /// revocation, expiry and everything else like a fresh one.
    pub serve_stale: Option<Duration>,
}

impl Default for CacheConfig {
    /// 100,000 keys for 30 s, 10,000 unknown keys for 5 s, no stale serving.
    fn default() -> Self {
        Self {
            max_entries: 100_000,
            max_negative_entries: 10_000,
            positive_ttl: Duration::from_secs(30),
            negative_ttl: Duration::from_secs(5),
            serve_stale: None,
        }
    }
}

/// A lookup's answer: the key, or `None` for "no such key".
type Entry = Option<Arc<ResolvedKey>>;

/// One store lookup shared by every request waiting on the same digest: `Ok(None)` when
/// an invalidation raced it (retry), `Err` when the store failed.
type Inflight = OnceCell<Result<Option<Entry>, ()>>;

struct EntryExpiry {
    clock: Clock,
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

static NEXT_GATE_ID: AtomicU64 = AtomicU64::new(1);

/// A rendered refusal kept for reuse: status, headers, body.
type Prerendered = (http::StatusCode, HeaderMap, bytes::Bytes);

/// Number of invalidation counters; a digest maps to one by its bits.
const EPOCH_STRIPES: usize = 64;

/// Builds a [`Keygate`].
pub struct KeygateBuilder {
    store: Arc<dyn KeyStore>,
    format: KeyFormat,
    hasher: KeyHasher,
    environment: Option<Environment>,
    realm: String,
    clock: Clock,
    cache: CacheConfig,
    rate_limits: RateLimitConfig,
    implications: ScopeImplications,
    read_only_scopes: ScopeSet,
    ip_resolver: Arc<dyn ClientIpResolver>,
    renderer: Arc<dyn RenderRejection>,
    key_source: KeySource,
    store_timeout: Duration,
    last_used_interval: Duration,
}

impl KeygateBuilder {
    /// Accepted prefixes. Default: `sk_live_`, `sk_test_`, `tc_`.
    pub fn format(mut self, format: KeyFormat) -> Self {
        self.format = format;
        self
    }

    /// How keys are digested. Default: plain SHA-256 (see [`KeyHasher`] on peppers).
    pub fn hasher(mut self, hasher: KeyHasher) -> Self {
        self.hasher = hasher;
        self
    }

    /// Accept only keys of this environment (and environment-neutral keys). Default:
    /// any environment.
    pub fn environment(mut self, environment: Environment) -> Self {
        self.environment = Some(environment);
        self
    }

    /// The realm named in `WWW-Authenticate`. Default: `api`.
    pub fn realm(mut self, realm: impl Into<String>) -> Self {
        self.realm = realm.into();
        self
    }

    /// The time source. Default: the system clock.
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Cache settings.
    pub fn cache(mut self, cache: CacheConfig) -> Self {
        self.cache = cache;
        self
    }

    /// Rate-limit settings. Default: 1000/s, burst 2000, per key.
    pub fn rate_limits(mut self, config: RateLimitConfig) -> Self {
        self.rate_limits = config;
        self
    }

    /// How scopes imply one another. Default: `admin` grants every scope.
    pub fn scope_implications(mut self, implications: ScopeImplications) -> Self {
        self.implications = implications;
        self
    }

    /// Scopes that make a key read-only: it may then use only GET, HEAD and OPTIONS.
    /// Default: `read-only` (Tenuo). Vidbeo's equivalent is `fetch`.
    pub fn read_only_scopes(mut self, scopes: ScopeSet) -> Self {
        self.read_only_scopes = scopes;
        self
    }

    /// How the client IP is found. Default: [`PeerIp`].
    pub fn client_ip(mut self, resolver: impl ClientIpResolver) -> Self {
        self.ip_resolver = Arc::new(resolver);
        self
    }

    /// How refusals are rendered. Default: [`JsonRenderer`].
    pub fn renderer(mut self, renderer: impl RenderRejection) -> Self {
        self.renderer = Arc::new(renderer);
        self
    }

    /// Also read a bare key from this header, such as `x-api-key`. Off by default.
    /// A request carrying both this header and `Authorization` is refused with 400.
    pub fn api_key_header(mut self, name: HeaderName) -> Self {
        self.key_source.alt_header = Some(name);
        self
    }

    /// Longest a store lookup may take before the request fails with 503. Default: 2 s.
    pub fn store_timeout(mut self, timeout: Duration) -> Self {
        self.store_timeout = timeout;
        self
    }

    /// How often `last_used_at` may be written per key. Default: 60 s. Tracking starts
    /// when a [`crate::KeyManager`] is attached; writes happen off the request path.
    pub fn last_used_interval(mut self, interval: Duration) -> Self {
        self.last_used_interval = interval;
        self
    }

    /// Builds the core.
    pub fn build(self) -> Keygate {
        let expiry = EntryExpiry {
            clock: self.clock.clone(),
        };
        let cache = Cache::builder()
            .max_capacity(self.cache.max_entries)
            .expire_after(expiry)
            .build_with_hasher(DigestHasher);
        let negative = Cache::builder()
            .max_capacity(self.cache.max_negative_entries)
            .time_to_live(self.cache.negative_ttl)
            .build_with_hasher(DigestHasher);
        let stale = self.cache.serve_stale.map(|window| {
            Cache::builder()
                .max_capacity(self.cache.max_entries)
                .time_to_live(window + self.cache.positive_ttl)
                .build_with_hasher(DigestHasher)
        });
        let realm: String = self
            .realm
            .chars()
            .filter(|c| (' '..='~').contains(c) && *c != '"' && *c != '\\')
            .collect();
        Keygate {
            inner: Arc::new(Inner {
                store: self.store,
                writer: OnceLock::new(),
                format: self.format,
                hasher: self.hasher,
                environment: self.environment,
                realm,
                limits: RateLimits::new(self.rate_limits, self.clock.clone()),
                clock: self.clock,
                id: NEXT_GATE_ID.fetch_add(1, Ordering::Relaxed),
                prerendered: Default::default(),
                positive_ttl: self.cache.positive_ttl,
                cache,
                negative,
                stale,
                stale_window: self.cache.serve_stale.unwrap_or_default(),
                inflight: DashMap::with_hasher(DigestHasher),
                epochs: std::array::from_fn(|_| AtomicU64::new(0)),
                implications: self.implications,
                read_only_scopes: self.read_only_scopes,
                ip_resolver: self.ip_resolver,
                renderer: self.renderer,
                key_source: self.key_source,
                store_timeout: self.store_timeout,
                last_used_interval: self.last_used_interval,
                store_calls: AtomicU64::new(0),
            }),
        }
    }
}

/// The shared core: configuration, cache and limiters. Cheap to clone.
///
/// Build one per deployment with [`Keygate::builder`], then get a tower layer from
/// [`Keygate::layer`] and, for writable stores, a [`crate::KeyManager`].
#[derive(Clone)]
pub struct Keygate {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    store: Arc<dyn KeyStore>,
    writer: OnceLock<Arc<dyn KeyStoreWrite>>,
    pub(crate) format: KeyFormat,
    pub(crate) hasher: KeyHasher,
    environment: Option<Environment>,
    pub(crate) realm: String,
    pub(crate) clock: Clock,
    /// Tells this core's entries apart in the per-thread front cache.
    id: u64,
    /// `unauthorized` and `invalid_api_key`, rendered once (HTTP, then gRPC), when the
    /// renderer is deterministic.
    prerendered: [[OnceLock<Prerendered>; 2]; 2],
    positive_ttl: Duration,
    cache: Cache<KeyDigest, Arc<ResolvedKey>, DigestHasher>,
    negative: Cache<KeyDigest, (), DigestHasher>,
    /// Keys last verified against the store, with when: for serving stale.
    stale: Option<Cache<KeyDigest, (Arc<ResolvedKey>, SystemTime), DigestHasher>>,
    stale_window: Duration,
    inflight: DashMap<KeyDigest, Arc<Inflight>, DigestHasher>,
    epochs: [AtomicU64; EPOCH_STRIPES],
    pub(crate) limits: RateLimits,
    implications: ScopeImplications,
    read_only_scopes: ScopeSet,
    ip_resolver: Arc<dyn ClientIpResolver>,
    pub(crate) renderer: Arc<dyn RenderRejection>,
    pub(crate) key_source: KeySource,
    store_timeout: Duration,
    last_used_interval: Duration,
    store_calls: AtomicU64,
}

/// What a route asks of a key beyond being valid.
#[derive(Clone, Debug, Default)]
pub(crate) struct Rules {
    pub(crate) requirement: Option<ScopeRequirement>,
    pub(crate) policy: Option<ScopePolicy>,
    pub(crate) anonymous: bool,
    pub(crate) exempt: Vec<String>,
}

impl Rules {
    /// Whether `path` bypasses keygate entirely.
    ///
    /// A prefix matches whole path segments: `/health` exempts `/health` and
    /// `/health/live`, not `/healthz`. A prefix ending in `/` exempts what is below it.
    pub(crate) fn is_exempt(&self, path: &str) -> bool {
        !self.exempt.is_empty()
            && self
                .exempt
                .iter()
                .any(|p| match path.strip_prefix(p.as_str()) {
                    Some(rest) => p.ends_with('/') || rest.is_empty() || rest.starts_with('/'),
                    None => false,
                })
    }
}

/// The parts of a request the checks read.
struct RequestView<'a> {
    method: &'a Method,
    path: &'a str,
    headers: &'a HeaderMap,
    extensions: &'a Extensions,
}

/// The outcome of [`Keygate::admit`].
pub(crate) enum Admission {
    /// Every check passed; the identity is attached. Carries the rate-limit state to
    /// report, when limiting applies.
    Admitted(Option<RateLimitStatus>),
    /// Refused, with the rendered response.
    Refused(http::Response<bytes::Bytes>),
}

/// A refusal, with the rate-limit state when the limiter was reached.
type Refusal = (AuthError, Option<RateLimitStatus>);

/// The first, synchronous step of checking a request.
pub(crate) enum Start {
    /// Refused without I/O.
    Refused(AuthError),
    /// No credentials, and the route allows anonymous callers.
    Anonymous,
    /// Found in the cache (positively), at this time.
    Cached(Arc<ResolvedKey>, KeyDigest, SystemTime),
    /// Needs a store lookup.
    Lookup(KeyDigest),
}

impl Keygate {
    /// Starts building a core over `store`.
    pub fn builder(store: impl KeyStore) -> KeygateBuilder {
        Self::builder_arc(Arc::new(store))
    }

    /// Starts building a core over a shared store.
    pub fn builder_arc(store: Arc<dyn KeyStore>) -> KeygateBuilder {
        KeygateBuilder {
            store,
            format: KeyFormat::default(),
            hasher: KeyHasher::default(),
            environment: None,
            realm: "api".to_owned(),
            clock: Clock::default(),
            cache: CacheConfig::default(),
            rate_limits: RateLimitConfig::default(),
            implications: ScopeImplications::new().grants_all("admin"),
            read_only_scopes: ScopeSet::parse(["read-only"]).expect("valid"),
            ip_resolver: Arc::new(PeerIp),
            renderer: Arc::new(JsonRenderer),
            key_source: KeySource::default(),
            store_timeout: Duration::from_secs(2),
            last_used_interval: Duration::from_secs(60),
        }
    }

    /// Starts `last_used_at` tracking through `writer` (called by [`crate::KeyManager`]).
    pub(crate) fn attach_writer(&self, writer: Arc<dyn KeyStoreWrite>) {
        let _ = self.inner.writer.set(writer);
    }

    /// A tower layer that requires a valid key on every request.
    pub fn layer(&self) -> KeygateLayer {
        KeygateLayer::new(self.clone())
    }

    /// The key format.
    pub fn format(&self) -> &KeyFormat {
        &self.inner.format
    }

    /// The digest function.
    pub fn hasher(&self) -> &KeyHasher {
        &self.inner.hasher
    }

    /// The clock.
    pub fn clock(&self) -> &Clock {
        &self.inner.clock
    }

    /// The environment this deployment accepts, if restricted.
    pub fn environment(&self) -> Option<Environment> {
        self.inner.environment
    }

    /// Drops the cache entry for `digest`, so the next request asks the store.
    pub fn invalidate_digest(&self, digest: &KeyDigest) {
        self.inner.epochs[stripe(digest)].fetch_add(1, Ordering::AcqRel);
        self.inner.cache.invalidate(digest);
        self.inner.negative.invalidate(digest);
        if let Some(stale) = &self.inner.stale {
            stale.invalidate(digest);
        }
    }

    /// Drops every cache entry, so each next request asks the store.
    pub fn invalidate_all(&self) {
        for epoch in &self.inner.epochs {
            epoch.fetch_add(1, Ordering::AcqRel);
        }
        self.inner.cache.invalidate_all();
        self.inner.negative.invalidate_all();
        if let Some(stale) = &self.inner.stale {
            stale.invalidate_all();
        }
    }

    /// Drops the cache entries for every digest of `record`.
    pub fn invalidate(&self, record: &KeyRecord) {
        for digest in record.digests() {
            self.invalidate_digest(&digest);
        }
    }

    /// Drops idle rate-limiter state and applies pending cache evictions. Runs by itself
    /// every [`RateLimitConfig::maintenance_interval`]; call it to force it.
    pub fn run_maintenance(&self) {
        self.inner.limits.maintain();
        self.inner.cache.run_pending_tasks();
        self.inner.negative.run_pending_tasks();
        if let Some(stale) = &self.inner.stale {
            stale.run_pending_tasks();
        }
    }

    /// Counters for monitoring and tests.
    pub fn stats(&self) -> KeygateStats {
        KeygateStats {
            cached_entries: self.inner.cache.entry_count(),
            cached_unknown: self.inner.negative.entry_count(),
            inflight_lookups: self.inner.inflight.len(),
            rate_limit_buckets: self.inner.limits.tracked(),
            store_lookups: self.inner.store_calls.load(Ordering::Relaxed),
        }
    }

    /// Verifies a bare key with no request around it: format, lookup, status and
    /// environment. No IP, scope or rate-limit check. For non-HTTP uses and tests.
    pub async fn verify_key(&self, key: &str) -> Result<Identity, AuthError> {
        let parsed = self
            .inner
            .format
            .parse(key)
            .map_err(|_| AuthError::InvalidKey)?;
        let digest = self.inner.hasher.digest(parsed.expose_secret());
        let resolved = self.load(digest).await?.ok_or(AuthError::InvalidKey)?;
        self.check_status(&resolved, &digest, self.inner.clock.now())?;
        Ok(Identity(resolved))
    }

    /// Step one: everything that needs no I/O.
    pub(crate) fn start(&self, headers: &HeaderMap, rules: &Rules) -> Start {
        let token = match self.inner.key_source.token(headers) {
            Ok(Some(token)) => token,
            Ok(None) if rules.anonymous => return Start::Anonymous,
            Ok(None) => return Start::Refused(AuthError::MissingCredentials),
            Err(e) => return Start::Refused(e),
        };
        let Ok(parsed) = self.inner.format.parse(token) else {
            return Start::Refused(AuthError::InvalidKey);
        };
        let digest = self.inner.hasher.digest(parsed.expose_secret());
        let now = self.inner.clock.now();
        let epoch = self.inner.epochs[stripe(&digest)].load(Ordering::Acquire);
        if let Some(key) = front::get(self.inner.id, &digest, epoch, now) {
            return Start::Cached(key, digest, now);
        }
        match self.cached(&digest) {
            Some(Some(resolved)) => {
                front::put(self.inner.id, digest, epoch, &resolved, now);
                Start::Cached(resolved, digest, now)
            }
            Some(None) => Start::Refused(AuthError::InvalidKey),
            None => Start::Lookup(digest),
        }
    }

    /// The current time on this core's clock.
    pub(crate) fn now(&self) -> SystemTime {
        self.inner.clock.now()
    }

    /// The cached answer for `digest`, if any.
    fn cached(&self, digest: &KeyDigest) -> Option<Entry> {
        if let Some(key) = self.inner.cache.get(digest) {
            return Some(Some(key));
        }
        self.inner.negative.contains_key(digest).then_some(None)
    }

    /// Step two, on a miss: the store lookup, coalesced, timed out, panic-isolated.
    pub(crate) fn load(
        &self,
        digest: KeyDigest,
    ) -> impl Future<Output = Result<Entry, AuthError>> + Send + 'static {
        let gate = self.clone();
        async move {
            for _ in 0..3 {
                if let Some(hit) = gate.cached(&digest) {
                    return Ok(hit);
                }
                let cell = gate
                    .inner
                    .inflight
                    .entry(digest)
                    .or_insert_with(|| Arc::new(OnceCell::new()))
                    .clone();
                let outcome = cell.get_or_init(|| gate.fetch(digest)).await.clone();
                gate.inner
                    .inflight
                    .remove_if(&digest, |_, v| Arc::ptr_eq(v, &cell));
                match outcome {
                    Err(()) => return Err(AuthError::StoreUnavailable),
                    Ok(Some(entry)) => return Ok(entry),
                    // Invalidated while loading: the answer may predate a revoke.
                    Ok(None) => continue,
                }
            }
            Err(AuthError::StoreUnavailable)
        }
    }

    /// One store call. `Ok(None)` when an invalidation raced it (retry), `Err` on failure.
    async fn fetch(&self, digest: KeyDigest) -> Result<Option<Entry>, ()> {
        // A lookup that finished between our cache miss and our joining it left its
        // answer in the cache: use it rather than asking the store again.
        if let Some(hit) = self.cached(&digest) {
            return Ok(Some(hit));
        }
        let epoch = &self.inner.epochs[stripe(&digest)];
        let before = epoch.load(Ordering::Acquire);
        self.inner.store_calls.fetch_add(1, Ordering::Relaxed);
        let call = AssertUnwindSafe(self.inner.store.find_by_digest(&digest)).catch_unwind();
        let result = match tokio::time::timeout(self.inner.store_timeout, call).await {
            Ok(Ok(result)) => result,
            Ok(Err(_panic)) => Err(StoreError::Panicked),
            Err(_) => Err(StoreError::Timeout(self.inner.store_timeout)),
        };
        let record = match result {
            Ok(record) => record,
            Err(error) => {
                if let Some(key) = self.stale_copy(&digest) {
                    tracing::warn!(target: "keygate", %error, key_id = key.record.id.as_str(), "key store lookup failed; serving a recently verified key");
                    return Ok(Some(Some(key)));
                }
                tracing::error!(target: "keygate", %error, "key store lookup failed; refusing the request");
                return Err(());
            }
        };
        if epoch.load(Ordering::Acquire) != before {
            return Ok(None);
        }
        let entry = record
            .filter(|r| r.digests().any(|d| d == digest))
            .map(|record| Arc::new(self.resolve(record, &digest)));
        match &entry {
            Some(key) => self.inner.cache.insert(digest, key.clone()),
            None => self.inner.negative.insert(digest, ()),
        }
        if let Some(stale) = &self.inner.stale {
            match &entry {
                Some(key) => stale.insert(digest, (key.clone(), self.inner.clock.now())),
                None => stale.invalidate(&digest),
            }
        }
        if epoch.load(Ordering::Acquire) != before {
            self.inner.cache.invalidate(&digest);
            self.inner.negative.invalidate(&digest);
            return Ok(None);
        }
        Ok(Some(entry))
    }

    /// A copy verified within the serve-stale window, if that is on.
    fn stale_copy(&self, digest: &KeyDigest) -> Option<Arc<ResolvedKey>> {
        let (key, verified_at) = self.inner.stale.as_ref()?.get(digest)?;
        let age = self
            .inner
            .clock
            .now()
            .duration_since(verified_at)
            .unwrap_or_default();
        (age <= self.inner.stale_window).then_some(key)
    }

    fn resolve(&self, record: KeyRecord, digest: &KeyDigest) -> ResolvedKey {
        // Trusted for the positive lifetime, but never past the key's expiry or, when
        // found by its previous digest, past the grace deadline.
        let now = self.inner.clock.now();
        let mut fresh_until = now + self.inner.positive_ttl;
        if let Some(expires) = record.expires_at {
            fresh_until = fresh_until.min(expires);
        }
        if let Some(prev) = record.previous.filter(|p| p.digest == *digest) {
            fresh_until = fresh_until.min(prev.until);
        }
        let granted = self.inner.implications.expand(&record.scopes);
        let read_only = record
            .scopes
            .iter()
            .any(|s| self.inner.read_only_scopes.contains(s.as_str()));
        let tier = self.inner.limits.tier_for(record.rate_limit);
        let limit_key: Arc<str> = match self.inner.limits.config().key {
            RateLimitKey::PerKey => record.id.as_str().into(),
            RateLimitKey::PerAccount => record.account_id.as_str().into(),
        };
        let last_used = record
            .last_used_at
            .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_secs());
        ResolvedKey {
            record,
            granted,
            read_only,
            tier,
            limit_key,
            last_used_written: AtomicU64::new(last_used),
            fresh_until,
        }
    }

    /// Digest match (constant time), then revoked, disabled, expired, environment.
    fn check_status(
        &self,
        key: &ResolvedKey,
        presented: &KeyDigest,
        now: SystemTime,
    ) -> Result<(), AuthError> {
        let record = &key.record;
        let current = record.digest.ct_eq(presented);
        let previous = record.previous.is_some_and(|p| p.digest.ct_eq(presented));
        if !current && !previous {
            return Err(AuthError::InvalidKey);
        }
        if record.revoked_at.is_some() {
            return Err(AuthError::RevokedKey);
        }
        if record.disabled {
            return Err(AuthError::DisabledKey);
        }
        if record.expires_at.is_some_and(|t| now >= t) {
            return Err(AuthError::ExpiredKey);
        }
        if !current && record.previous.is_some_and(|p| now >= p.until) {
            return Err(AuthError::RolledKey);
        }
        if let (Some(expected), Some(key_env)) = (self.inner.environment, record.environment) {
            if expected != key_env {
                return Err(AuthError::WrongEnvironment {
                    key: key_env,
                    expected,
                });
            }
        }
        Ok(())
    }

    /// Runs every check after the lookup on `req`. On success it attaches the identity;
    /// on refusal it renders the response. Both outcomes are audited.
    pub(crate) fn admit<B>(
        &self,
        key: Arc<ResolvedKey>,
        digest: &KeyDigest,
        req: &mut http::Request<B>,
        rules: &Rules,
        now: SystemTime,
        grpc: bool,
    ) -> Admission {
        let view = RequestView {
            method: req.method(),
            path: req.uri().path(),
            headers: req.headers(),
            extensions: req.extensions(),
        };
        match self.authorize(&key, digest, &view, rules, now) {
            Ok(status) => {
                self.audit_allowed(&key, req.headers(), req.extensions());
                req.extensions_mut().insert(Identity(key));
                Admission::Admitted(status)
            }
            Err((error, status)) => {
                self.audit_refused(&error, Some(&key), req.headers(), req.extensions());
                Admission::Refused(self.refusal(&error, status.as_ref(), grpc))
            }
        }
    }

    /// Audits and renders a refusal made before any key was found.
    pub(crate) fn refuse<B>(
        &self,
        error: &AuthError,
        req: &http::Request<B>,
        grpc: bool,
    ) -> http::Response<bytes::Bytes> {
        self.audit_refused(error, None, req.headers(), req.extensions());
        self.refusal(error, None, grpc)
    }

    /// Every check after the lookup, in the documented order; the limiter only when all
    /// others pass.
    fn authorize(
        &self,
        key: &ResolvedKey,
        presented: &KeyDigest,
        req: &RequestView<'_>,
        rules: &Rules,
        now: SystemTime,
    ) -> Result<Option<RateLimitStatus>, Refusal> {
        self.check_status(key, presented, now)
            .map_err(|e| (e, None))?;
        if !key.record.ips.is_empty() {
            let ip: Option<IpAddr> = self
                .inner
                .ip_resolver
                .client_ip(req.headers, req.extensions);
            if !ip.is_some_and(|ip| key.record.ips.allows(ip)) {
                return Err((AuthError::IpNotAllowed, None));
            }
        }
        if let Some(req_scopes) = &rules.requirement {
            if !req_scopes.is_met_by(&key.granted) {
                return Err((AuthError::InsufficientScope(req_scopes.clone()), None));
            }
        }
        if let Some(policy) = &rules.policy {
            match policy.decide(req.method, req.path) {
                PolicyDecision::Allow => {}
                PolicyDecision::Require(r) if r.is_met_by(&key.granted) => {}
                PolicyDecision::Require(r) => {
                    return Err((AuthError::InsufficientScope(r.clone()), None))
                }
                PolicyDecision::Deny => {
                    return Err((
                        AuthError::InsufficientScope(ScopeRequirement::AnyOf(vec![])),
                        None,
                    ))
                }
            }
        }
        // After the route's scopes, so that a read-only key on a route it lacks the scope
        // for hears which scope the route requires (Tenuo's wording), as any other key would.
        if key.read_only && !is_safe(req.method) {
            return Err((AuthError::ReadOnlyKey, None));
        }
        let status = match &key.tier {
            None => None,
            Some(tier) => match self.inner.limits.check(tier, &key.limit_key, now) {
                Ok(status) => Some(status),
                Err((retry_after, status)) => {
                    return Err((AuthError::RateLimited { retry_after }, Some(status)))
                }
            },
        };
        self.touch(key, now);
        Ok(status)
    }

    /// Schedules a coalesced `last_used_at` write, never waiting for it.
    fn touch(&self, key: &ResolvedKey, now: SystemTime) {
        let Some(writer) = self.inner.writer.get() else {
            return;
        };
        let now_secs = now
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let last = key.last_used_written.load(Ordering::Relaxed);
        if now_secs.saturating_sub(last) < self.inner.last_used_interval.as_secs().max(1)
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

    /// The response for a refusal.
    fn refusal(
        &self,
        error: &AuthError,
        status: Option<&RateLimitStatus>,
        grpc: bool,
    ) -> http::Response<bytes::Bytes> {
        let slot = match error {
            AuthError::MissingCredentials => Some(0),
            AuthError::InvalidKey => Some(1),
            _ => None,
        }
        .filter(|_| status.is_none() && self.inner.renderer.is_deterministic());
        let render = || {
            let rejection = Rejection {
                error,
                realm: &self.inner.realm,
                rate_limit: status,
            };
            render::finish(&*self.inner.renderer, &rejection, grpc, self.ietf_headers())
        };
        match slot {
            Some(i) => {
                let (code, headers, body) = self.inner.prerendered[usize::from(grpc)][i]
                    .get_or_init(|| {
                        let (parts, body) = render().into_parts();
                        (parts.status, parts.headers, body)
                    });
                let mut res = http::Response::new(body.clone());
                *res.status_mut() = *code;
                *res.headers_mut() = headers.clone();
                res
            }
            None => render(),
        }
    }

    /// Audit event for an accepted key. Never carries key material.
    fn audit_allowed(&self, key: &ResolvedKey, headers: &HeaderMap, extensions: &Extensions) {
        tracing::debug!(
            target: "keygate::audit",
            outcome = "ok",
            key_id = key.record.id.as_str(),
            account_id = key.record.account_id.as_str(),
            client_ip = self
                .inner
                .ip_resolver
                .client_ip(headers, extensions)
                .map(tracing::field::display),
            "api key accepted"
        );
    }

    /// Audit event for a refusal. Never carries key material.
    fn audit_refused(
        &self,
        error: &AuthError,
        key: Option<&ResolvedKey>,
        headers: &HeaderMap,
        extensions: &Extensions,
    ) {
        tracing::info!(
            target: "keygate::audit",
            outcome = error.code(),
            status = error.status().as_u16(),
            key_id = key.map(|k| k.record.id.as_str()),
            account_id = key.map(|k| k.record.account_id.as_str()),
            client_ip = self
                .inner
                .ip_resolver
                .client_ip(headers, extensions)
                .map(tracing::field::display),
            "api key refused"
        );
    }

    pub(crate) fn ietf_headers(&self) -> bool {
        self.inner.limits.config().ietf_headers
    }
}

/// A small per-thread front for the moka cache.
///
/// moka's `get` records every read for its eviction policy, which costs more than every
/// other step of a cached check together. Each thread therefore keeps the last key seen
/// in each of 256 slots (chosen by digest bits). A slot answers only while its core's
/// invalidation counter for that digest is unchanged since the slot was filled, and
/// while the entry is fresh, so invalidation and expiry work exactly as with moka alone.
/// Misses fall through to moka, which stays the bounded, authoritative cache.
mod front {
    use super::*;
    use std::cell::RefCell;

    const SLOTS: usize = 256;

    struct Slot {
        gate: u64,
        digest: KeyDigest,
        epoch: u64,
        key: Arc<ResolvedKey>,
    }

    thread_local! {
        static FRONT: RefCell<[Option<Slot>; SLOTS]> = const { RefCell::new([const { None }; SLOTS]) };
    }

    fn index(digest: &KeyDigest) -> usize {
        usize::from(digest.as_bytes()[1])
    }

    pub(super) fn get(
        gate: u64,
        digest: &KeyDigest,
        epoch: u64,
        now: SystemTime,
    ) -> Option<Arc<ResolvedKey>> {
        FRONT
            .try_with(|front| {
                let front = front.borrow();
                let slot = front[index(digest)].as_ref()?;
                (slot.gate == gate
                    && slot.epoch == epoch
                    && slot.digest == *digest
                    && now < slot.key.fresh_until)
                    .then(|| slot.key.clone())
            })
            .ok()
            .flatten()
    }

    pub(super) fn put(
        gate: u64,
        digest: KeyDigest,
        epoch: u64,
        key: &Arc<ResolvedKey>,
        now: SystemTime,
    ) {
        if now >= key.fresh_until {
            return;
        }
        let _ = FRONT.try_with(|front| {
            front.borrow_mut()[index(&digest)] = Some(Slot {
                gate,
                digest,
                epoch,
                key: key.clone(),
            });
        });
    }
}

fn is_safe(method: &Method) -> bool {
    method == Method::GET || method == Method::HEAD || method == Method::OPTIONS
}

fn stripe(digest: &KeyDigest) -> usize {
    digest.as_bytes()[31] as usize % EPOCH_STRIPES
}

impl fmt::Debug for Keygate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keygate")
            .field("format", &self.inner.format)
            .field("environment", &self.inner.environment)
            .field("realm", &self.inner.realm)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

/// Counters from [`Keygate::stats`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeygateStats {
    /// Keys in the cache (approximate until maintenance runs).
    pub cached_entries: u64,
    /// "No such key" answers in the cache (approximate until maintenance runs).
    pub cached_unknown: u64,
    /// Store lookups under way.
    pub inflight_lookups: usize,
    /// Rate-limit buckets held.
    pub rate_limit_buckets: usize,
    /// Store lookups made since start.
    pub store_lookups: u64,
}
