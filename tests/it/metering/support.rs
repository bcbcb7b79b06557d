//! A gate over a `MemoryStore` (which is also its ledger) on a manual clock that starts
//! where a test needs it.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::common::*;
use keygate::clock::{Clock, ManualClock};
use keygate::gate::Managed;
use keygate::layer::KeygateLayer;
use keygate::manage::KeyView;
use keygate::store::{AccountId, KeyId};
use keygate::{KeyManager, Keygate, KeygateBuilder, MemoryStore, NewKey};

pub(super) struct Metered {
    pub(super) gate: Keygate,
    pub(super) manager: KeyManager,
    pub(super) time: ManualClock,
}

impl Metered {
    pub(super) fn at(start: SystemTime) -> Self {
        Self::with(start, |b| b)
    }

    pub(super) fn with(
        start: SystemTime,
        configure: impl FnOnce(KeygateBuilder<Managed>) -> KeygateBuilder<Managed>,
    ) -> Self {
        let (clock, time) = Clock::manual(start);
        let (gate, manager) = configure(Keygate::managed(MemoryStore::new()).clock(clock)).build();
        Self {
            gate,
            manager,
            time,
        }
    }

    pub(super) async fn key(&self, account: &str, new: NewKey) -> (KeyId, String) {
        let created = self
            .manager
            .create(AccountId::from(account), new)
            .await
            .expect("key created");
        (created.view.id, created.key.expose_secret().to_owned())
    }

    pub(super) async fn view(&self, account: &str, id: &KeyId) -> KeyView {
        self.manager
            .get(&AccountId::from(account), id)
            .await
            .unwrap()
    }

    /// Credits remaining as management shows them now.
    pub(super) async fn credits(&self, account: &str, id: &KeyId) -> i64 {
        let view = self.view(account, id).await;
        view.usage
            .and_then(|u| u.credits)
            .expect("credits")
            .remaining
    }

    pub(super) async fn send(&self, key: &str) -> Answer {
        self.send_through(self.gate.layer(), key).await
    }

    pub(super) async fn send_through(&self, layer: KeygateLayer, key: &str) -> Answer {
        let mut svc = tower::Layer::layer(&layer, Echo);
        send(&mut svc, get("/", Some(key))).await
    }

    pub(super) fn advance(&self, by: Duration) {
        self.time.advance(by);
    }
}

/// The time `secs` seconds into `y`-`m`-`d`, UTC.
pub(super) fn utc(y: i32, m: u32, d: u32, secs: u64) -> SystemTime {
    // Days from 1970-01-01 (Howard Hinnant's days_from_civil).
    let (y, m) = if m <= 2 {
        (i64::from(y) - 1, m + 9)
    } else {
        (i64::from(y), m - 3)
    };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let doy = (153 * i64::from(m) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    UNIX_EPOCH + Duration::from_secs(days as u64 * 86_400 + secs)
}

pub(super) fn assert_usage_exceeded(a: &Answer, retry_after: Option<&str>) {
    assert_eq!(a.status, http::StatusCode::TOO_MANY_REQUESTS, "{}", a.body);
    assert_eq!(a.code(), "usage_exceeded", "{}", a.body);
    assert_eq!(a.header("retry-after"), retry_after, "Retry-After");
    assert!(a.header("www-authenticate").is_none());
}
