//! The tower [`Service`]: cheap synchronous checks first, the store only on a miss.

use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};
use tower_service::Service;

use super::body::ResponseBody;
use super::future::ResponseFuture;
use super::settings::LayerSettings;
use crate::gate::{Admission, Keygate, Start};

/// The service made by [`crate::KeygateLayer`].
#[derive(Clone, Debug)]
pub struct KeygateService<S> {
    inner: S,
    gate: Keygate,
    settings: Arc<LayerSettings>,
}

impl<S> KeygateService<S> {
    pub(crate) fn new(inner: S, gate: Keygate, settings: Arc<LayerSettings>) -> Self {
        Self {
            inner,
            gate,
            settings,
        }
    }

    /// The service that `poll_ready` prepared, leaving a fresh clone for the next request
    /// (tower's "be careful when cloning inner services").
    fn take_ready<R>(&mut self) -> S
    where
        S: Service<R> + Clone,
    {
        let fresh = self.inner.clone();
        std::mem::replace(&mut self.inner, fresh)
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
        let settings = &*self.settings;
        if settings.is_exempt(req.uri()) {
            return ResponseFuture::called(self.inner.call(req), None, false, None, None);
        }
        let gate = &self.gate;
        let (scopes, answer) = (&settings.scopes, &settings.answer);
        match gate.start(req.headers(), req.extensions(), settings.anonymous) {
            Start::Refused(error) => ResponseFuture::refused(gate.refuse(&error, &req, answer)),
            Start::Anonymous => {
                ResponseFuture::called(self.inner.call(req), None, false, None, None)
            }
            Start::Verified => match gate.admit_verified(&mut req, scopes, answer) {
                None => ResponseFuture::called(self.inner.call(req), None, false, None, None),
                Some(refusal) => ResponseFuture::refused(refusal),
            },
            Start::Cached(key, digest, now) => {
                match gate.admit(key, &digest, &mut req, scopes, answer, now) {
                    Admission::Admitted(status, event, quotas) => ResponseFuture::called(
                        self.inner.call(req),
                        status,
                        gate.ietf_headers(),
                        event,
                        quotas,
                    ),
                    Admission::Refused(refusal) => ResponseFuture::refused(refusal),
                    Admission::AwaitLease(awaiting) => {
                        let (gate, settings) = (gate.clone(), self.settings.clone());
                        ResponseFuture::lease(awaiting, req, self.take_ready(), gate, settings)
                    }
                }
            }
            Start::Credential(credential) => {
                let verify = gate.verify_credential(credential);
                let (gate, settings) = (gate.clone(), self.settings.clone());
                ResponseFuture::credential(verify, req, self.take_ready(), gate, settings)
            }
            Start::Lookup(digest) => {
                let lookup = gate.lookup(digest);
                let (gate, settings) = (gate.clone(), self.settings.clone());
                ResponseFuture::lookup(lookup, req, self.take_ready(), gate, settings, digest)
            }
        }
    }
}
