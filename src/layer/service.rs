//! The tower [`Service`]: cheap synchronous checks first, the store only on a miss.

use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};
use tower_service::Service;

use crate::keygate::{Admission, Keygate, Rules, Start};
use crate::layer::body::ResponseBody;
use crate::layer::future::ResponseFuture;
use crate::verify::render::is_grpc;

/// The service made by [`crate::KeygateLayer`].
#[derive(Clone, Debug)]
pub struct KeygateService<S> {
    inner: S,
    gate: Keygate,
    rules: Arc<Rules>,
}

impl<S> KeygateService<S> {
    pub(crate) fn new(inner: S, gate: Keygate, rules: Arc<Rules>) -> Self {
        Self { inner, gate, rules }
    }
}

impl<S, ReqB, ResB> Service<Request<ReqB>> for KeygateService<S>
where
    S: Service<Request<ReqB>, Response = Response<ResB>> + Clone,
{
    type Response = Response<ResponseBody<ResB>>;
    type Error = S::Error;
    type Future = ResponseFuture<S, ReqB>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<ReqB>) -> Self::Future {
        if self.rules.is_exempt(req.uri().path()) {
            return ResponseFuture::called(self.inner.call(req), None, false);
        }
        let gate = &self.gate;
        let grpc = is_grpc(req.headers());
        match gate.start(req.headers(), &self.rules) {
            Start::Refused(error) => ResponseFuture::refused(gate.refuse(&error, &req, grpc)),
            Start::Anonymous => ResponseFuture::called(self.inner.call(req), None, false),
            Start::Cached(key, digest, now) => {
                match gate.admit(key, &digest, &mut req, &self.rules, now, grpc) {
                    Admission::Admitted(status) => {
                        ResponseFuture::called(self.inner.call(req), status, gate.ietf_headers())
                    }
                    Admission::Refused(refusal) => ResponseFuture::refused(refusal),
                }
            }
            Start::Lookup(digest) => {
                // Call the service that `poll_ready` prepared, and keep a fresh clone for
                // the next request (tower's "be careful when cloning inner services").
                let fresh = self.inner.clone();
                let ready = std::mem::replace(&mut self.inner, fresh);
                ResponseFuture::lookup(
                    Box::pin(gate.load(digest)),
                    req,
                    ready,
                    gate.clone(),
                    self.rules.clone(),
                    digest,
                    grpc,
                )
            }
        }
    }
}

/// A rendered refusal in this layer's body type.
pub(crate) fn into_refusal<B>(res: Response<bytes::Bytes>) -> Response<ResponseBody<B>> {
    res.map(ResponseBody::refusal)
}
