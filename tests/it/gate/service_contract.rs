//! The tower `Service` contract: `poll_ready` and per-instance caches.

use crate::common::*;

// ---------------------------------------------------------------- tower semantics

/// An inner service that must be polled ready before every call; a clone starts unready,
/// like a service holding a concurrency permit.
struct MustBeReady {
    ready: bool,
}

impl Clone for MustBeReady {
    fn clone(&self) -> Self {
        Self { ready: false }
    }
}

impl tower::Service<http::Request<http_body_util::Full<bytes::Bytes>>> for MustBeReady {
    type Response = http::Response<http_body_util::Full<bytes::Bytes>>;
    type Error = std::convert::Infallible;
    type Future = std::future::Ready<Result<Self::Response, Self::Error>>;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.ready = true;
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: http::Request<http_body_util::Full<bytes::Bytes>>) -> Self::Future {
        assert!(
            self.ready,
            "called a service that poll_ready did not prepare"
        );
        self.ready = false;
        std::future::ready(Ok(http::Response::new(http_body_util::Full::default())))
    }
}

#[tokio::test]
async fn the_inner_service_called_is_the_one_poll_ready_prepared() {
    let h = Harness::new();
    let (_, key) = h.key("acct", &[]).await;
    let mut svc = tower::Layer::layer(&h.gate.layer(), MustBeReady { ready: false });
    // A miss (store lookup in the future) and then a hit (called from `call`).
    assert_eq!(send(&mut svc, get("/", Some(&key))).await.status, 200);
    assert_eq!(send(&mut svc, get("/", Some(&key))).await.status, 200);
    assert_eq!(h.store.lookups(), 1);
}

#[tokio::test]
async fn a_key_cached_by_one_keygate_is_unknown_to_another_on_the_same_thread() {
    let a = Harness::new();
    let b = Harness::new();
    let (_, key) = a.key("acct", &[]).await;
    let mut on_a = a.service();
    let mut on_b = b.service();
    for _ in 0..3 {
        assert_eq!(send(&mut on_a, get("/", Some(&key))).await.status, 200);
        let res = send(&mut on_b, get("/", Some(&key))).await;
        assert_eq!(res.status, 401);
        assert_eq!(res.code(), "invalid_api_key");
    }
}
