//! Key activity: exact usage counters per key, per account and per deployment.
//!
//! Every request whose key was recognised is counted for that key and its account,
//! under its [`Outcome`]: `accepted`, or the code of its refusal (`revoked_api_key`,
//! `disabled_api_key`, `expired_api_key`, `wrong_environment`, `ip_not_allowed`,
//! `insufficient_scope`, `rate_limited`). Refusals that come before any key is known
//! (`unauthorized`, `invalid_request`, `invalid_api_key`, `store_unavailable`,
//! `invalid_token`, `verifier_unavailable`) are counted for the deployment only, never
//! for a key. Counts are kept per minute and rolled up into hours and days.
//!
//! # On the request path
//!
//! A key's cache entry holds its counters, so counting a request is one uncontended
//! atomic add into memory the entry already owns: no map lookup, no lock, no
//! allocation. The counters belong to the gate, not to the entry: a refreshed,
//! invalidated, replaced or evicted entry hands the same counters to the key's next
//! entry, and they are dropped only once a flush has taken their counts and no entry
//! holds them. Verified credentials that are not keys (a JWT, say) are not counted.
//! When an outer and an inner layer of one gate both check a request, the outer
//! layer's decision is the one counted.
//!
//! # Flushes
//!
//! A background task flushes every [`UsageConfig::flush_interval`] (10 s by default)
//! into the [`UsageSink`], with one call per flush holding every key's, account's and
//! the deployment's counts of each minute; [`crate::Keygate::flush_usage`] flushes at
//! once, and usage reads through the manager flush this instance's counts first, so
//! they include every request this instance has answered. A failed flush keeps its
//! counts for the next one (up to [`UsageConfig::max_pending_counts`]).
//!
//! - **Clean shutdown** loses and double-counts nothing: await
//!   [`crate::Keygate::flush_usage`] before exiting, or drop every clone of the gate
//!   while its runtime keeps running, which makes the background task flush one last
//!   time.
//! - **A crash** loses the counts made since the last flush: at most one flush
//!   interval.
//! - A flush more than two minutes late (a stalled runtime) still writes every count,
//!   but may date counts up to four minutes late.
//!
//! # Where counts are kept
//!
//! [`crate::MemoryStore`] keeps them in memory, with a retention per granularity
//! ([`UsageRetention`]: minutes for 48 hours, hours for 30 days, days for 13 months by
//! default) and a bound on the buckets held. `PgStore` adds each flush to the
//! `usage_counts` table with one batched `INSERT ... ON CONFLICT DO UPDATE SET n = n +
//! excluded.n`, so every instance reads the sum over all instances.
//!
//! # Reading them
//!
//! [`crate::KeyManager::usage`] (and [`crate::manage::ActingManager::usage`], confined
//! like every management call) answers a key's buckets for a [`UsageQuery`], and the
//! management API serves them at `GET {base}/{id}/usage?from=&to=&granularity=`:
//!
//! ```
//! use keygate::activity::{Granularity, Outcome, UsageQuery};
//! use keygate::{Keygate, MemoryStore, NewKey};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let (gate, manager) = Keygate::managed(MemoryStore::new()).build();
//! let account = "acct_1".into();
//! let created = manager.create("acct_1".into(), NewKey::named("CI")).await?;
//! // ... requests through `gate.layer()` ...
//! let buckets = manager
//!     .usage(&account, &created.view.id, &UsageQuery::new(Granularity::Hour))
//!     .await?;
//! assert_eq!(buckets.len(), 48);
//! assert_eq!(buckets.iter().map(|b| b.get(Outcome::Accepted)).sum::<u64>(), 0);
//! # Ok(()) }
//! ```
//!
//! [`crate::KeyManager::erase_account_usage`] deletes an account's counts, for a
//! customer who leaves.

mod cell;
mod config;
mod counters;
mod outcome;
mod query;
mod sink;
mod types;

pub(crate) use cell::KeyUsage;
pub use config::UsageConfig;
pub(crate) use counters::{UsageCounters, UsageHandle};
pub use outcome::Outcome;
pub use query::{UsageQuery, UsageQueryError, UsageRange, MAX_BUCKETS};
pub use sink::{UsageSink, UsageStore};
pub use types::{Granularity, UsageBucket, UsageCount, UsageRetention, UsageSubject};
