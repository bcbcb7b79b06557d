//! The response future: refused already, waiting on the store, or waiting on the inner
//! service.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use http::{Request, Response};
use pin_project::pin_project;
use tower_service::Service;

use crate::body::ResponseBody;
use crate::digest::KeyDigest;
use crate::error::AuthError;
use crate::gate::{Keygate, RequestView, Rules};
use crate::identity::{Identity, ResolvedKey};
use crate::ratelimit::RateLimitStatus;
use crate::service::into_refusal;

type LookupFuture =
    Pin<Box<dyn Future<Output = Result<Option<Arc<ResolvedKey>>, AuthError>> + Send + 'static>>;

/// Everything needed to finish a request after the store answers.
struct Pending<S, ReqB> {
    req: Request<ReqB>,
    inner: S,
    gate: Keygate,
    rules: Arc<Rules>,
    digest: KeyDigest,
    grpc: bool,
}

/// The future returned by [`crate::KeygateService`].
#[pin_project]
pub struct ResponseFuture<S, ReqB>
where
    S: Service<Request<ReqB>>,
{
    #[pin]
    state: State<S, ReqB>,
}

#[pin_project(project = StateProj)]
enum State<S, ReqB>
where
    S: Service<Request<ReqB>>,
{
    Refused {
        response: Option<Response<bytes::Bytes>>,
    },
    Lookup {
        lookup: LookupFuture,
        pending: Option<Pending<S, ReqB>>,
    },
    Called {
        #[pin]
        future: S::Future,
        rate_limit: Option<RateLimitStatus>,
        ietf: bool,
    },
}

impl<S, ReqB> ResponseFuture<S, ReqB>
where
    S: Service<Request<ReqB>>,
{
    pub(crate) fn refused(response: Response<bytes::Bytes>) -> Self {
        Self {
            state: State::Refused {
                response: Some(response),
            },
        }
    }

    pub(crate) fn called(
        future: S::Future,
        rate_limit: Option<RateLimitStatus>,
        ietf: bool,
    ) -> Self {
        Self {
            state: State::Called {
                future,
                rate_limit,
                ietf,
            },
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn lookup(
        lookup: LookupFuture,
        req: Request<ReqB>,
        inner: S,
        gate: Keygate,
        rules: Arc<Rules>,
        digest: KeyDigest,
        grpc: bool,
    ) -> Self {
        Self {
            state: State::Lookup {
                lookup,
                pending: Some(Pending {
                    req,
                    inner,
                    gate,
                    rules,
                    digest,
                    grpc,
                }),
            },
        }
    }
}

impl<S, ReqB, ResB> Future for ResponseFuture<S, ReqB>
where
    S: Service<Request<ReqB>, Response = Response<ResB>>,
{
    type Output = Result<Response<ResponseBody<ResB>>, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                StateProj::Refused { response } => {
                    let res = response.take().expect("polled after completion");
                    return Poll::Ready(Ok(into_refusal(res)));
                }
                StateProj::Lookup { lookup, pending } => {
                    let found = ready!(lookup.as_mut().poll(cx));
                    let Pending {
                        mut req,
                        mut inner,
                        gate,
                        rules,
                        digest,
                        grpc,
                    } = pending.take().expect("polled after completion");
                    let key = match found {
                        Ok(Some(key)) => key,
                        Ok(None) => {
                            let error = AuthError::InvalidKey;
                            gate.audit_refused(&error, None, req.headers(), req.extensions());
                            return Poll::Ready(Ok(into_refusal(gate.refusal(&error, None, grpc))));
                        }
                        Err(error) => {
                            gate.audit_refused(&error, None, req.headers(), req.extensions());
                            return Poll::Ready(Ok(into_refusal(gate.refusal(&error, None, grpc))));
                        }
                    };
                    let view = RequestView {
                        method: req.method(),
                        path: req.uri().path(),
                        headers: req.headers(),
                        extensions: req.extensions(),
                    };
                    match gate.authorize(&key, &digest, &view, &rules, gate.now()) {
                        Ok(rate_limit) => {
                            gate.audit_allowed(&key, req.headers(), req.extensions());
                            req.extensions_mut().insert(Identity(key));
                            let future = inner.call(req);
                            this.state.set(State::Called {
                                future,
                                rate_limit,
                                ietf: gate.ietf_headers(),
                            });
                        }
                        Err((error, status)) => {
                            gate.audit_refused(&error, Some(&key), req.headers(), req.extensions());
                            let res = gate.refusal(&error, status.as_ref(), grpc);
                            return Poll::Ready(Ok(into_refusal(res)));
                        }
                    }
                }
                StateProj::Called {
                    future,
                    rate_limit,
                    ietf,
                } => {
                    let mut res = ready!(future.poll(cx))?;
                    if let Some(status) = rate_limit {
                        status.write_headers(res.headers_mut(), *ietf);
                    }
                    return Poll::Ready(Ok(res.map(ResponseBody::Inner)));
                }
            }
        }
    }
}
