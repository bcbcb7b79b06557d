//! What the request-path benches share: the trivial inner service, the request every
//! case sends, and polling a future that must be ready at once.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::AUTHORIZATION;
use http::{Request, Response};
use http_body_util::Full;
use keygate::PeerAddr;
use tower::Service;

/// The trivial inner service: a small fixed response.
pub fn inner(
) -> impl Service<Request<()>, Response = Response<Full<Bytes>>, Error = Infallible> + Clone {
    tower::service_fn(|_req: Request<()>| async {
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"ok"))))
    })
}

/// The request every case sends: `GET /v1/whoami` with the key, from 127.0.0.1.
pub fn request(token: &str) -> Request<()> {
    let peer: SocketAddr = "127.0.0.1:40000".parse().expect("valid address");
    Request::builder()
        .uri("/v1/whoami")
        .header(AUTHORIZATION, format!("Bearer {token}"))
        .extension(PeerAddr(peer))
        .body(())
        .expect("valid request")
}

/// Polls a future that must be ready at once.
pub fn now<F: Future>(fut: F) -> F::Output {
    let mut fut = pin!(fut);
    let mut cx = Context::from_waker(futures_util::task::noop_waker_ref());
    match fut.as_mut().poll(&mut cx) {
        Poll::Ready(out) => out,
        Poll::Pending => panic!("the benchmarked future was not ready at once"),
    }
}
