//! Key activity: the API log (recording, its bounds, sampling, no secrets, reads through
//! the manager and the management API, erasure) and operators' key search.

mod http;
mod log;
#[cfg(feature = "postgres")]
mod postgres;
mod search;

use std::sync::Arc;

use keygate::activity::log::{ApiEvent, ApiLogConfig, ApiLogQuery};
use keygate::store::AccountId;
use keygate::{KeyManager, MemoryStore};

use crate::common::Harness;

/// A harness whose gate records its API log in a memory store of its own; `configure`
/// adjusts the log's settings.
pub fn logged(configure: impl FnOnce(ApiLogConfig) -> ApiLogConfig) -> (Harness, Arc<MemoryStore>) {
    let log = Arc::new(MemoryStore::new());
    let config = configure(ApiLogConfig::new(log.clone()));
    (Harness::with(|b| b.api_log(config)), log)
}

/// Every event of `account` the server-side manager reads, newest first.
pub async fn all_events(manager: &KeyManager, account: &str) -> Vec<ApiEvent> {
    let account = AccountId::from(account);
    let mut events = Vec::new();
    let mut query = ApiLogQuery::default().limit(100);
    loop {
        let page = manager.api_logs(&account, &query).await.unwrap();
        events.extend(page.data);
        match page.next_cursor {
            Some(c) => query = query.cursor(c),
            None => return events,
        }
    }
}

/// Fails if `haystack` holds the key `key`, its body (after the prefix), or its digest
/// (raw, hex in either case, base64).
pub fn assert_no_secret(haystack: &[u8], key: &str, digest: &[u8; 32]) {
    use base64::Engine as _;
    let body = key.rsplit('_').next().unwrap();
    assert!(body.len() >= 32, "{body}");
    let needles: Vec<(&str, Vec<u8>)> = vec![
        ("plaintext", key.as_bytes().to_vec()),
        ("key body", body.as_bytes().to_vec()),
        ("digest bytes", digest.to_vec()),
        ("digest hex", hex::encode(digest).into_bytes()),
        ("digest HEX", hex::encode_upper(digest).into_bytes()),
        (
            "digest base64",
            base64::engine::general_purpose::STANDARD
                .encode(digest)
                .into_bytes(),
        ),
        (
            "digest base64url",
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(digest)
                .into_bytes(),
        ),
    ];
    for (what, needle) in needles {
        assert!(
            !haystack
                .windows(needle.len())
                .any(|w| w == needle.as_slice()),
            "the {what} is stored"
        );
    }
}
