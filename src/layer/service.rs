//! The tower [`Service`]: cheap synchronous checks first, the store only on a miss.

use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};
use tower_service::Service;

use super::body::ResponseBody;
use super::future::ResponseFuture;
use crate::check::access::Rules;
use crate::gate::request::{Admission, Start};
use crate::gate::Keygate;

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
        let verifier = &self.gate.inner;
        match verifier.start(req.headers(), req.extensions(), &self.rules) {
            Start::Refused(error) => {
                ResponseFuture::refused(verifier.refuse(&error, &req, &self.rules))
            }
            Start::Anonymous => ResponseFuture::called(self.inner.call(req), None, false),
            Start::Verified => match verifier.admit_verified(&req, &self.rules) {
                None => ResponseFuture::called(self.inner.call(req), None, false),
                Some(refusal) => ResponseFuture::refused(refusal),
            },
            Start::Cached(key, digest, now) => {
                match verifier.admit(key, &digest, &mut req, &self.rules, now) {
                    Admission::Admitted(status) => ResponseFuture::called(
                        self.inner.call(req),
                        status,
                        verifier.ietf_headers(),
                    ),
                    Admission::Refused(refusal) => ResponseFuture::refused(refusal),
                }
            }
            Start::Credential(credential) => {
                let fresh = self.inner.clone();
                let ready = std::mem::replace(&mut self.inner, fresh);
                ResponseFuture::credential(
                    verifier.verify_credential(credential),
                    req,
                    ready,
                    self.gate.clone(),
                    self.rules.clone(),
                )
            }
            Start::Lookup(digest) => {
                // Call the service that `poll_ready` prepared, and keep a fresh clone for
                // the next request (tower's "be careful when cloning inner services").
                let fresh = self.inner.clone();
                let ready = std::mem::replace(&mut self.inner, fresh);
                ResponseFuture::lookup(
                    Box::pin(verifier.cache.load(digest)),
                    req,
                    ready,
                    self.gate.clone(),
                    self.rules.clone(),
                    digest,
                )
            }
        }
    }
}
