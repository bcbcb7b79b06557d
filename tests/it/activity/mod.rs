//! Key activity: exact usage counters per key, account and deployment, read through the
//! manager and the management API, surviving whatever happens to cache entries, and
//! summed over instances on one PostgreSQL.

mod flushing;
mod http_counts;
#[cfg(feature = "postgres")]
mod postgres;
mod survival;

use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use keygate::activity::{Granularity, Outcome, UsageBucket, UsageQuery};
use keygate::client_ip::PeerAddr;
use keygate::store::{AccountId, KeyId};
use keygate::KeyManager;

/// `req` as if it came from `ip`.
pub(crate) fn from(mut req: Request<Full<Bytes>>, ip: &str) -> Request<Full<Bytes>> {
    req.extensions_mut()
        .insert(PeerAddr(SocketAddr::new(ip.parse().unwrap(), 40_000)));
    req
}

/// The minute bucket holding `at`.
pub(crate) fn minute_of(at: SystemTime) -> SystemTime {
    Granularity::Minute.floor(at)
}

/// `id`'s minute buckets from `from`'s minute for `minutes` minutes.
pub(crate) async fn minutes(
    manager: &KeyManager,
    account: &str,
    id: &KeyId,
    from: SystemTime,
    minutes: u64,
) -> Vec<UsageBucket> {
    let from = minute_of(from);
    let query = UsageQuery::new(Granularity::Minute)
        .from(from)
        .to(from + Duration::from_secs(60 * minutes));
    manager
        .usage(&AccountId::from(account), id, &query)
        .await
        .expect("usage")
}

/// The total of `outcome` over `buckets`.
pub(crate) fn total(buckets: &[UsageBucket], outcome: Outcome) -> u64 {
    buckets.iter().map(|b| b.get(outcome)).sum()
}
