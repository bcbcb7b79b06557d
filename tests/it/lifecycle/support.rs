//! Helpers shared by the tests of this binary.

use crate::common::*;
use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use keygate::client_ip::PeerAddr;
use keygate::manage::ManagerConfig;
use keygate::store::AccountId;
use keygate::{Identity, ManageError};
use std::net::SocketAddr;

pub(crate) fn acct(name: &str) -> AccountId {
    AccountId::from(name)
}

/// A harness whose manager has another configuration.
pub(crate) fn harness_with(config: ManagerConfig) -> Harness {
    Harness::with(|b| b.manager_config(config))
}

pub(crate) fn uncapped() -> Harness {
    harness_with(ManagerConfig::default().max_active_keys(None))
}

pub(crate) async fn identity(h: &Harness, key: &str) -> Identity {
    h.gate.verify_key(key).await.expect("key verifies")
}

pub(crate) fn invalid_field(result: Result<impl std::fmt::Debug, ManageError>, field: &str) {
    match result {
        Err(ManageError::InvalidRequest(message)) => assert!(
            message.starts_with(&format!("{field}:")),
            "message should name '{field}': {message}"
        ),
        other => panic!("expected InvalidRequest naming {field}, got {other:?}"),
    }
}

pub(crate) fn is_escalation<T: std::fmt::Debug>(result: Result<T, ManageError>) -> ManageError {
    match result {
        Err(e @ ManageError::Escalation(_)) => {
            assert_eq!(e.code(), "insufficient_scope");
            assert_eq!(e.status(), 403);
            e
        }
        other => panic!("expected Escalation, got {other:?}"),
    }
}

pub(crate) fn from_ip(mut req: Request<Full<Bytes>>, ip: &str) -> Request<Full<Bytes>> {
    let addr: SocketAddr = format!("{ip}:40000").parse().unwrap();
    req.extensions_mut().insert(PeerAddr(addr));
    req
}

/// Lets spawned last-used writes run.
pub(crate) async fn settle() {
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
}
