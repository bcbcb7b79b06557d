//! [`RedisLimiter`]: quotas held in Redis and shared by every instance, taken in small
//! leases so that the request path never waits for Redis.
//!
//! Each bucket lives in Redis under
//! `<prefix>:<per_second>-<burst>:<key|account|external>:<id>`
//! as a token bucket updated by one Lua script on Redis's own clock (`TIME`), so the
//! instances' clocks never matter. The script expires a bucket once it would be full
//! again, so idle buckets vanish. How an instance spends its lease is in
//! [`super::lease`]; the circuit breaker is in [`super::breaker`].
//!
//! The accuracy bound and the throughput per lease are documented on [`RedisLimiter`].

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use dashmap::DashMap;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use super::breaker::{Breaker, BreakerState};
use super::lease::{Bucket, Take};
use super::redis_config::{OutagePolicy, RedisLimiterConfig};
use super::script::SCRIPT;
use super::{status, Namespace, RateLimitStatus, Refusal};
use crate::clock::Clock;
use crate::error::AuthError;
use crate::store::record::RateLimit;

/// Counters from [`RedisLimiter::stats`], since the limiter was created.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RedisLimiterStats {
    /// Leases Redis answered.
    pub refills: u64,
    /// Tokens Redis granted over all leases.
    pub tokens_leased: u64,
    /// Redis calls that failed or timed out (connection attempts included).
    pub redis_errors: u64,
    /// Refills not sent because the breaker was open.
    pub refills_skipped: u64,
    /// How many times the breaker opened.
    pub breaker_trips: u64,
    /// The breaker now.
    pub breaker: BreakerState,
    /// Requests decided by the [`OutagePolicy`].
    pub outage_decisions: u64,
    /// Requests admitted on an advance before their bucket's lease arrived.
    pub advances: u64,
    /// Requests refused because both the lease and the advance were used up before
    /// Redis answered.
    pub pending_refusals: u64,
    /// Buckets held by this instance.
    pub buckets: usize,
}

/// A bucket's identity: the quota, what is counted, and its id.
#[derive(Clone, PartialEq, Eq, Hash)]
struct BucketKey {
    quota: RateLimit,
    namespace: Namespace,
    id: Arc<str>,
}

#[derive(Default)]
struct Counters {
    refills: AtomicU64,
    tokens: AtomicU64,
    errors: AtomicU64,
    skipped: AtomicU64,
    outage: AtomicU64,
    advances: AtomicU64,
    pending: AtomicU64,
}

struct Inner {
    config: RedisLimiterConfig,
    client: redis::Client,
    connection: tokio::sync::OnceCell<ConnectionManager>,
    runtime: tokio::runtime::Handle,
    buckets: DashMap<BucketKey, Arc<Bucket>>,
    breaker: Breaker,
    counters: Counters,
}

/// Rate limits shared by every instance through Redis. Cheap to clone; give it to
/// [`crate::KeygateBuilder::shared_rate_limits`].
///
/// Quotas, overrides and [`crate::ratelimit::RateLimitKey`] stay as configured with
/// [`crate::ratelimit::RateLimitConfig`]; only where the buckets live changes. The request path
/// stays synchronous: each instance spends tokens it leased from Redis beforehand and
/// refills in the background. See [`OutagePolicy`] on what happens while Redis is
/// down.
///
/// # Accuracy
///
/// With `n` instances and a lease of `L` tokens, the instances together admit at most
/// `n × L` more than the quota (each can be one advance ahead of Redis when the bucket
/// runs out; advances stop once Redis reports fewer than `n × L` left, so in practice
/// the overshoot is near zero) and at most `n × 1.5 L` fewer (tokens leased to an
/// instance whose traffic then stops). The default lease, `max(1, burst / (40 n))`,
/// keeps both within 2.5% and 3.75% of the burst; four instances hammering one key
/// with a burst of 2000 admitted 2000 to 2012 in the tests. A larger lease means fewer
/// Redis calls and a wider band; a lease of 1 is exact to one token per instance but
/// costs a Redis call per request.
///
/// An instance can admit about two leases per bucket per Redis round trip; requests
/// beyond that within one round trip get 429 (`Retry-After: 1`) until the lease lands.
/// With the default lease (12 for a burst of 2000 over four instances) and a 0.1 ms
/// round trip that is some 240,000 requests per second per key per instance; raise
/// [`RedisLimiterConfig::lease_size`] for keys that really arrive faster.
///
/// # Example
///
/// ```no_run
/// use keygate::{Keygate, MemoryStore};
/// use keygate::ratelimit::{RedisLimiter, RedisLimiterConfig};
///
/// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let limiter = RedisLimiter::new(
///     "redis://127.0.0.1:6379",
///     RedisLimiterConfig::default().instances(4),
/// )?;
/// let (gate, manager) = Keygate::managed(MemoryStore::new())
///     .shared_rate_limits(limiter.clone())
///     .build();
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct RedisLimiter {
    inner: Arc<Inner>,
}

impl RedisLimiter {
    /// A limiter on the Redis at `url` (`redis://[user:password@]host:port[/db]`).
    /// Must be called inside a Tokio runtime, which then runs the refills. It does not
    /// connect yet: the first refill does, so an instance starts even while Redis is
    /// down (the outage policy applies until Redis answers). Fails on a malformed URL
    /// or outside a runtime.
    pub fn new(url: &str, config: RedisLimiterConfig) -> Result<Self, redis::RedisError> {
        let client = redis::Client::open(url)?;
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
            redis::RedisError::from((
                redis::ErrorKind::ClientError,
                "a RedisLimiter must be created inside a Tokio runtime",
            ))
        })?;
        Ok(Self {
            inner: Arc::new(Inner {
                breaker: Breaker::new(config.breaker_threshold, config.breaker_cool_down),
                config,
                client,
                connection: tokio::sync::OnceCell::new(),
                runtime,
                buckets: DashMap::new(),
                counters: Counters::default(),
            }),
        })
    }

    /// The settings.
    pub fn config(&self) -> &RedisLimiterConfig {
        &self.inner.config
    }

    /// Counters for monitoring and tests.
    pub fn stats(&self) -> RedisLimiterStats {
        let c = &self.inner.counters;
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        RedisLimiterStats {
            refills: load(&c.refills),
            tokens_leased: load(&c.tokens),
            redis_errors: load(&c.errors),
            refills_skipped: load(&c.skipped),
            breaker_trips: self.inner.breaker.trips(),
            breaker: self.inner.breaker.state(),
            outage_decisions: load(&c.outage),
            advances: load(&c.advances),
            pending_refusals: load(&c.pending),
            buckets: self.inner.buckets.len(),
        }
    }

    /// Takes one request from the bucket of `id` in `namespace` under `quota`.
    /// `fallback` enforces a local share during an outage.
    pub(super) fn take(
        &self,
        quota: RateLimit,
        namespace: Namespace,
        id: &Arc<str>,
        clock: &Clock,
        now: SystemTime,
        fallback: impl FnOnce(RateLimit) -> Result<Option<RateLimitStatus>, Refusal>,
    ) -> Result<Option<RateLimitStatus>, Refusal> {
        let now_ms = unix_ms(now);
        let key = BucketKey {
            quota,
            namespace,
            id: id.clone(),
        };
        let bucket = match self.inner.buckets.get(&key) {
            Some(bucket) => bucket,
            None => {
                let bucket = Arc::new(self.new_bucket(&key, now_ms));
                self.inner.buckets.entry(key).or_insert(bucket).downgrade()
            }
        };
        let interval = bucket.interval();
        let counters = &self.inner.counters;
        match bucket.take(now_ms, self.inner.breaker.is_closed()) {
            Take::Admitted {
                remaining,
                refill,
                advance,
            } => {
                if advance {
                    counters.advances.fetch_add(1, Ordering::Relaxed);
                }
                if refill {
                    self.refill(&bucket, clock, now_ms);
                }
                let to_full = interval * quota.burst.saturating_sub(remaining);
                Ok(Some(status(quota, remaining, now + to_full, now)))
            }
            Take::Empty { wait, refill } => {
                if refill {
                    self.refill(&bucket, clock, now_ms);
                }
                Err(refused(quota, wait, interval, now))
            }
            Take::Pending => {
                self.refill(&bucket, clock, now_ms);
                counters.pending.fetch_add(1, Ordering::Relaxed);
                Err(refused(quota, interval, interval, now))
            }
            Take::Unavailable => {
                // A probe, when the breaker allows one.
                self.refill(&bucket, clock, now_ms);
                drop(bucket);
                counters.outage.fetch_add(1, Ordering::Relaxed);
                match self.inner.config.outage {
                    OutagePolicy::Open => Ok(None),
                    OutagePolicy::Closed => Err((AuthError::StoreUnavailable, None)),
                    OutagePolicy::LocalFallback => fallback(self.config().local_share(quota)),
                }
            }
        }
    }

    fn new_bucket(&self, key: &BucketKey, now_ms: u64) -> Bucket {
        let config = &self.inner.config;
        let redis_key = redis_key(&config.key_prefix, key.quota, key.namespace, &key.id);
        let lease = config.lease_for(key.quota);
        Bucket::new(redis_key, key.quota, lease, config.instances, now_ms)
    }

    /// Starts a refill of `bucket` in the background, unless one is under way or the
    /// breaker refuses.
    fn refill(&self, bucket: &Arc<Bucket>, clock: &Clock, now_ms: u64) {
        let Some(want) = bucket.begin_refill() else {
            return;
        };
        if !self.inner.breaker.try_acquire(now_ms) {
            bucket.cancel_refill();
            self.inner.counters.skipped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let inner = self.inner.clone();
        let bucket = bucket.clone();
        let clock = clock.clone();
        self.inner.runtime.spawn(async move {
            inner.lease(&bucket, want, &clock).await;
        });
    }

    /// Drops buckets unused for long enough that Redis holds them full again.
    pub(super) fn maintain(&self, now: SystemTime) {
        let now_ms = unix_ms(now);
        self.inner.buckets.retain(|_, bucket| {
            let q = bucket.quota;
            let to_full_ms = u64::from(q.burst) * 1_000 / u64::from(q.per_second.max(1));
            !bucket.is_idle(now_ms, to_full_ms.max(1_000) + 1_000)
        });
        self.inner.buckets.shrink_to_fit();
    }

    /// Buckets held.
    pub(super) fn tracked(&self) -> usize {
        self.inner.buckets.len()
    }
}

/// A bucket's key in Redis. The namespace sits at a fixed place before the id, which
/// comes last, so no id can make one namespace's key equal another's.
pub(super) fn redis_key(prefix: &str, quota: RateLimit, namespace: Namespace, id: &str) -> String {
    let (rate, burst) = (quota.per_second, quota.burst);
    format!("{prefix}:{rate}-{burst}:{}:{id}", namespace.as_str())
}

impl Inner {
    /// One script call, connecting first if this instance never has.
    async fn call(&self, bucket: &Bucket, want: u32) -> redis::RedisResult<(i64, i64, i64)> {
        let connection = self
            .connection
            .get_or_try_init(|| {
                let config = ConnectionManagerConfig::new()
                    .set_number_of_retries(0)
                    .set_connection_timeout(self.config.timeout)
                    .set_response_timeout(self.config.timeout);
                ConnectionManager::new_with_config(self.client.clone(), config)
            })
            .await?;
        let quota = bucket.quota;
        SCRIPT
            .key(&bucket.redis_key)
            .arg(quota.per_second.max(1))
            .arg(quota.burst.max(1))
            .arg(want)
            .invoke_async(&mut connection.clone())
            .await
    }

    /// Asks Redis for `want` tokens of `bucket` and records the answer.
    async fn lease(&self, bucket: &Bucket, want: u32, clock: &Clock) {
        let probe = self.breaker.state() == BreakerState::HalfOpen;
        // The connection's own timeouts apply; this bounds the whole, script reload
        // included.
        let limit = self.config.timeout * 3;
        let mut answer = tokio::time::timeout(limit, self.call(bucket, want)).await;
        if probe && matches!(&answer, Ok(Err(e)) if e.is_io_error() || e.is_unrecoverable_error()) {
            // The connection manager reconnects only after a call failed on the dead
            // connection: a probe waits for that reconnection once.
            answer = tokio::time::timeout(limit, self.call(bucket, want)).await;
        }
        let now_ms = unix_ms(clock.now());
        match answer {
            Ok(Ok((granted, left, wait_us))) => {
                self.breaker.on_success();
                let wait = Duration::from_micros(u64::try_from(wait_us).unwrap_or(0));
                bucket.refilled(granted, left, wait, now_ms);
                let c = &self.counters;
                c.refills.fetch_add(1, Ordering::Relaxed);
                #[cfg(feature = "metrics")]
                metrics::counter!("keygate_ratelimit_lease_refills_total").increment(1);
                c.tokens
                    .fetch_add(u64::try_from(granted).unwrap_or(0), Ordering::Relaxed);
            }
            failed => {
                self.breaker.on_failure(now_ms);
                bucket.failed();
                self.counters.errors.fetch_add(1, Ordering::Relaxed);
                #[cfg(feature = "metrics")]
                metrics::counter!("keygate_ratelimit_redis_errors_total").increment(1);
                match failed {
                    Ok(Err(e)) => tracing::warn!(
                        target: "keygate::ratelimit",
                        error = %e,
                        "shared rate limit: Redis call failed"
                    ),
                    _ => tracing::warn!(
                        target: "keygate::ratelimit",
                        "shared rate limit: Redis call timed out"
                    ),
                }
            }
        }
    }
}

/// A 429 after `wait`, reporting an empty bucket.
fn refused(quota: RateLimit, wait: Duration, interval: Duration, now: SystemTime) -> Refusal {
    let to_full = wait + interval * quota.burst.saturating_sub(1);
    (
        AuthError::RateLimited { retry_after: wait },
        Some(status(quota, 0, now + to_full, now)),
    )
}

fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl fmt::Debug for RedisLimiter {
    /// Never shows the URL, which may hold a password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisLimiter")
            .field("key_prefix", &self.inner.config.key_prefix)
            .field("instances", &self.inner.config.instances)
            .field("outage", &self.inner.config.outage)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}
