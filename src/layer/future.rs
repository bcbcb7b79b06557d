//! The response future: refused already, waiting on the store (or on the credential
//! verifier), or waiting on the inner service.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use http::{Request, Response};
use pin_project::pin_project;
use tower_service::Service;

use super::body::ResponseBody;
use super::settings::LayerSettings;
use crate::check::external::CredentialFuture;
use crate::gate::{Admission, Keygate, LookupFuture, PendingEvent};
use crate::key::digest::KeyDigest;
use crate::ratelimit::{QuotaFields, RateLimitStatus};

/// Everything needed to finish a request after the store answers.
struct Pending<S, ReqB> {
    req: Request<ReqB>,
    inner: S,
    gate: Keygate,
    settings: Arc<LayerSettings>,
    digest: KeyDigest,
}

/// Everything needed to finish a request after the credential verifier answers.
struct PendingCredential<S, ReqB> {
    req: Request<ReqB>,
    inner: S,
    gate: Keygate,
    settings: Arc<LayerSettings>,
}

/// The future returned by [`crate::layer::KeygateService`].
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
    /// Boxed, so that only misses pay for moving it: the hit path's future stays the
    /// size of the inner future plus the rate-limit state.
    Lookup {
        lookup: LookupFuture,
        pending: Option<Box<Pending<S, ReqB>>>,
    },
    Credential {
        verify: CredentialFuture,
        pending: Option<PendingCredential<S, ReqB>>,
    },
    Called {
        #[pin]
        future: S::Future,
        rate_limit: Option<RateLimitStatus>,
        ietf: bool,
        /// The API log's event of a sampled accepted request, for its response status.
        event: Option<Box<PendingEvent>>,
        /// The quotas to report, when quota headers are on.
        quotas: Option<Box<QuotaFields>>,
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
        event: Option<Box<PendingEvent>>,
        quotas: Option<Box<QuotaFields>>,
    ) -> Self {
        Self {
            state: State::Called {
                future,
                rate_limit,
                ietf,
                event,
                quotas,
            },
        }
    }

    pub(crate) fn credential(
        verify: CredentialFuture,
        req: Request<ReqB>,
        inner: S,
        gate: Keygate,
        settings: Arc<LayerSettings>,
    ) -> Self {
        Self {
            state: State::Credential {
                verify,
                pending: Some(PendingCredential {
                    req,
                    inner,
                    gate,
                    settings,
                }),
            },
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn lookup(
        lookup: LookupFuture,
        req: Request<ReqB>,
        inner: S,
        gate: Keygate,
        settings: Arc<LayerSettings>,
        digest: KeyDigest,
    ) -> Self {
        Self {
            state: State::Lookup {
                lookup,
                pending: Some(Box::new(Pending {
                    req,
                    inner,
                    gate,
                    settings,
                    digest,
                })),
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
                    return Poll::Ready(Ok(res.map(ResponseBody::refusal)));
                }
                StateProj::Lookup { lookup, pending } => {
                    let found = ready!(lookup.as_mut().poll(cx));
                    let Pending {
                        mut req,
                        mut inner,
                        gate,
                        settings,
                        digest,
                    } = *pending.take().expect("polled after completion");
                    let (scopes, answer) = (&settings.scopes, &settings.answer);
                    let next = match gate.admit_found(found, &digest, &mut req, scopes, answer) {
                        Admission::Admitted(rate_limit, event, quotas) => State::Called {
                            future: inner.call(req),
                            rate_limit,
                            ietf: gate.ietf_headers(),
                            event,
                            quotas,
                        },
                        Admission::Refused(response) => State::Refused {
                            response: Some(response),
                        },
                    };
                    this.state.set(next);
                }
                StateProj::Credential { verify, pending } => {
                    let verified = ready!(verify.as_mut().poll(cx));
                    let PendingCredential {
                        mut req,
                        mut inner,
                        gate,
                        settings,
                    } = pending.take().expect("polled after completion");
                    let (scopes, answer) = (&settings.scopes, &settings.answer);
                    let next = match gate.admit_credential(verified, &mut req, scopes, answer) {
                        Admission::Admitted(rate_limit, event, quotas) => State::Called {
                            future: inner.call(req),
                            rate_limit,
                            ietf: gate.ietf_headers(),
                            event,
                            quotas,
                        },
                        Admission::Refused(response) => State::Refused {
                            response: Some(response),
                        },
                    };
                    this.state.set(next);
                }
                StateProj::Called {
                    future,
                    rate_limit,
                    ietf,
                    event,
                    quotas,
                } => {
                    let mut res = ready!(future.poll(cx))?;
                    if let Some(event) = event.take() {
                        (*event).finish(res.status());
                    }
                    if let Some(status) = rate_limit {
                        status.write_headers(res.headers_mut(), *ietf);
                    }
                    if let Some(quotas) = quotas.take() {
                        quotas.write(res.headers_mut());
                    }
                    return Poll::Ready(Ok(res.map(ResponseBody::inner)));
                }
            }
        }
    }
}
