//! [`KeygateBuilder`]: one call chain from a store to a core and its manager.

use std::sync::Arc;
use std::time::Duration;

use http::header::HeaderName;

use super::{Keygate, Shared};
use crate::activity::{UsageConfig, UsageCounters};
use crate::cache::{CacheConfig, KeyCache};
use crate::check::credentials::KeySource;
use crate::check::external::CredentialHook;
use crate::check::format::KeyCheck;
use crate::check::lookup::Resolver;
use crate::client_ip::{ClientIpResolver, PeerIp};
use crate::clock::Clock;
use crate::credential::{CredentialVerifier, MAX_VERIFIED_CREDENTIAL_LEN};
use crate::key::digest::KeyHasher;
use crate::key::{Environment, KeyFormat};
use crate::metering::{CreditLedger, Metering, MeteringSettings, Plan};
use crate::ratelimit::{RateLimitConfig, RateLimits};
use crate::refusal::{JsonRenderer, RenderRefusal};
use crate::scope::{ScopeImplications, ScopeSet};
use crate::store::{KeyStore, KeyStoreWrite};
use crate::telemetry::Metrics;

/// The builder state of [`Keygate::builder`]: a read-only store, no manager.
#[derive(Debug)]
pub struct ReadOnly(());

/// Builds a [`Keygate`] (and, from [`Keygate::managed`], its [`crate::KeyManager`]).
///
/// ```
/// use std::time::Duration;
/// use keygate::{Environment, Keygate, MemoryStore};
/// use keygate::gate::CacheConfig;
/// use keygate::ratelimit::RateLimitConfig;
/// use keygate::store::RateLimit;
///
/// let (gate, _manager) = Keygate::managed(MemoryStore::new())
///     .environment(Environment::Live)
///     .realm("payments")
///     .cache(CacheConfig::default().positive_ttl(Duration::from_secs(10)))
///     .rate_limits(RateLimitConfig::default().default_quota(Some(RateLimit::new(100, 200))))
///     .store_timeout(Duration::from_millis(500))
///     .build();
/// assert_eq!(gate.environment(), Some(Environment::Live));
/// ```
#[must_use = "a builder does nothing until `build` is called"]
pub struct KeygateBuilder<M = ReadOnly> {
    mode: M,
    store: Arc<dyn KeyStore>,
    format: KeyFormat,
    hasher: KeyHasher,
    environment: Option<Environment>,
    accept_neutral: bool,
    realm: String,
    clock: Clock,
    cache: CacheConfig,
    rate_limits: RateLimitConfig,
    implications: ScopeImplications,
    read_only_scopes: ScopeSet,
    ip_resolver: Arc<dyn ClientIpResolver>,
    renderer: Arc<dyn RenderRefusal>,
    key_source: KeySource,
    store_timeout: Duration,
    last_used_interval: Duration,
    credential_verifier: Option<Arc<dyn CredentialVerifier>>,
    usage: UsageConfig,
    api_log: Option<crate::activity::log::ApiLogConfig>,
    #[cfg(feature = "redis")]
    shared_limits: Option<crate::ratelimit::RedisLimiter>,
    pub(super) ledger: Option<Arc<dyn CreditLedger>>,
    pub(super) metering: MeteringSettings,
    pub(super) plans: Vec<Plan>,
}

impl Keygate {
    /// Starts building a core over a read-only `store` (a replica, a file of hashed
    /// keys). Use [`Keygate::managed`] to also manage keys.
    pub fn builder(store: impl KeyStore) -> KeygateBuilder<ReadOnly> {
        KeygateBuilder::new(Arc::new(store), ReadOnly(()))
    }
}

impl<M> KeygateBuilder<M> {
    pub(super) fn new(store: Arc<dyn KeyStore>, mode: M) -> Self {
        Self {
            mode,
            store,
            format: KeyFormat::default(),
            hasher: KeyHasher::default(),
            environment: None,
            accept_neutral: false,
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
            credential_verifier: None,
            usage: UsageConfig::default(),
            api_log: None,
            #[cfg(feature = "redis")]
            shared_limits: None,
            ledger: None,
            metering: MeteringSettings::default(),
            plans: Vec::new(),
        }
    }

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

    /// Accept only keys of this environment. A key whose prefix names another
    /// environment is refused before any lookup (`wrong_environment`), and so is a key
    /// with an environment-neutral prefix such as `tc_` (`invalid_api_key`) unless
    /// [`accept_environment_neutral_keys`](Self::accept_environment_neutral_keys) is on.
    /// New keys made without an explicit environment get this one. Default: any.
    pub fn environment(mut self, environment: Environment) -> Self {
        self.environment = Some(environment);
        self
    }

    /// Whether a deployment restricted to one [`environment`](Self::environment) also
    /// accepts, issues and manages environment-neutral keys (prefixes with no
    /// environment, such as `tc_`). Default: `false`. A deployment that serves
    /// any environment accepts them always.
    pub fn accept_environment_neutral_keys(mut self, accept: bool) -> Self {
        self.accept_neutral = accept;
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
    /// Default: `read-only`. An API may name its own, such as `fetch`.
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
    pub fn renderer(mut self, renderer: impl RenderRefusal) -> Self {
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

    /// How often `last_used_at` may be written per key. Default: 60 s. Tracked only
    /// over a writable store ([`Keygate::managed`]); writes happen off the request path.
    pub fn last_used_interval(mut self, interval: Duration) -> Self {
        self.last_used_interval = interval;
        self
    }

    /// Hands every bearer token that is not a keygate key to `verifier` (a JWT, say),
    /// instead of refusing it as `invalid_api_key`. Its principals then share the keys'
    /// checks, refusals, rate limits and audit events: see [`crate::credential`].
    /// Off by default.
    ///
    /// ```
    /// use keygate::credential::{BearerCredential, CredentialError, Principal};
    /// use keygate::{Keygate, MemoryStore};
    ///
    /// let gate = Keygate::builder(MemoryStore::new())
    ///     .credential_verifier(|_: BearerCredential| async {
    ///         Err::<Principal, _>(CredentialError::refused("Sessions are not accepted here"))
    ///     })
    ///     .build();
    /// # let _ = gate;
    /// ```
    pub fn credential_verifier(mut self, verifier: impl CredentialVerifier) -> Self {
        self.credential_verifier = Some(Arc::new(verifier));
        self
    }

    /// Records requests of recognised keys in an API log: every refusal, and accepted
    /// requests at the configured sample rate (none by default), bounded per account per
    /// minute, written off the request path. See [`crate::activity::log`]. Off by default.
    pub fn api_log(mut self, config: crate::activity::log::ApiLogConfig) -> Self {
        self.api_log = Some(config);
        self
    }

    /// Keep the rate-limit buckets in Redis, shared by every instance, instead of in
    /// this process. The quotas stay those of [`KeygateBuilder::rate_limits`]. Off by
    /// default.
    #[cfg(feature = "redis")]
    #[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
    pub fn shared_rate_limits(mut self, limiter: crate::ratelimit::RedisLimiter) -> Self {
        self.shared_limits = Some(limiter);
        self
    }

    /// The builder's state.
    pub(super) fn mode_mut(&mut self) -> &mut M {
        &mut self.mode
    }

    /// Usage counting: on by default over a store that keeps usage
    /// ([`crate::MemoryStore`], `PgStore`), flushed every 10 s. See
    /// [`crate::activity`] and [`UsageConfig`] (`UsageConfig::off()` turns it off,
    /// `UsageConfig::store` sends the counts elsewhere).
    pub fn usage(mut self, config: UsageConfig) -> Self {
        self.usage = config;
        self
    }

    /// Builds the core; `writer` turns on `last_used_at` tracking.
    pub(super) fn build_core(self, writer: Option<Arc<dyn KeyStoreWrite>>) -> (Keygate, M) {
        let id = Keygate::next_id();
        let limits = RateLimits::new(self.rate_limits, self.clock.clone());
        #[cfg(feature = "redis")]
        let limits = limits.with_shared(self.shared_limits);
        let limits = Arc::new(limits);
        let usage = match (self.usage.enabled, self.usage.store.clone()) {
            (false, _) => None,
            (true, Some(store)) => Some(store),
            (true, None) => self.store.usage_store(),
        }
        .map(|store| UsageCounters::handle(&self.usage, store, self.clock.clone()));
        let ledger = self.ledger.or_else(|| self.store.credit_ledger());
        let mut settings = self.metering;
        settings.wait = self.store_timeout;
        let metering = Metering::new(ledger, settings, self.clock.clone());
        for plan in self.plans {
            metering.plans.insert(plan);
        }
        if let Some(stored) = self.store.plan_store() {
            metering.plans.stored_in(stored);
        }
        let metering = Arc::new(metering);
        metering.start_leasing();
        let resolver = Resolver {
            gate: id,
            clock: self.clock.clone(),
            positive_ttl: self.cache.positive_ttl,
            implications: self.implications.clone(),
            read_only_scopes: self.read_only_scopes.clone(),
            limits: limits.clone(),
            usage: usage.as_ref().map(|u| u.counters.clone()),
            metering: metering.clone(),
        };
        let credentials = self.credential_verifier.map(|verifier| {
            Arc::new(CredentialHook {
                verifier,
                resolver: resolver.clone(),
                timeout: self.store_timeout,
            })
        });
        let mut key_source = self.key_source;
        if credentials.is_some() {
            key_source.max_len = key_source.max_len.max(MAX_VERIFIED_CREDENTIAL_LEN);
        }
        let cache = KeyCache::new(
            id,
            self.store,
            resolver.boxed(),
            self.clock.clone(),
            &self.cache,
            self.store_timeout,
            Arc::new(Metrics::new()),
        );
        let realm: String = self
            .realm
            .chars()
            .filter(|c| (' '..='~').contains(c) && *c != '"' && *c != '\\')
            .collect();
        let api_log = self
            .api_log
            .map(|config| crate::activity::log::ApiLog::new(config, self.clock.clone()));
        let gate = Keygate {
            inner: Arc::new(Shared {
                id,
                keys: KeyCheck {
                    format: self.format,
                    hasher: self.hasher,
                    environment: self.environment,
                    accept_neutral: self.accept_neutral || self.environment.is_none(),
                },
                realm,
                clock: self.clock,
                cache: Arc::new(cache),
                reports_quotas: limits.config().ietf_headers
                    || limits.config().quota_headers.is_some(),
                limits,
                metering,
                implications: self.implications,
                read_only_scopes: self.read_only_scopes,
                ip_resolver: self.ip_resolver,
                renderer: self.renderer,
                key_source,
                writer,
                last_used_interval: self.last_used_interval,
                prerendered: Default::default(),
                credentials,
                usage,
                api_log,
            }),
        };
        (gate, self.mode)
    }
}

impl KeygateBuilder<ReadOnly> {
    /// Builds the core.
    pub fn build(self) -> Keygate {
        self.build_core(None).0
    }
}
