//! The response future: refused already, waiting on the store (or on the credential
//! verifier), waiting on a dry usage cell's lease, or waiting on the inner service.

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
use crate::gate::{Admission, AwaitingLease, Keygate, LookupFuture, PendingEvent};
use crate::key::digest::KeyDigest;
use crate::metering::LeaseWait;
use crate::ratelimit::{QuotaFields, RateLimitStatus};

/// Everything needed to finish a request after the store answers.
struct Pending<S, ReqB> {
    req: Request<ReqB>,
    inner: S,
    gate: Keygate,
    settings: Arc<LayerSettings>,
    digest: KeyDigest,
}

/// Everything needed to finish a request after a dry cell's lease came.
struct PendingLease<S, ReqB> {
    req: Request<ReqB>,
    inner: S,
    gate: Keygate,
    settings: Arc<LayerSettings>,
    awaiting: Box<AwaitingLease>,
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
    /// Admitted but for a meter whose cell is dry: awaiting its lease (see
    /// [`crate::metering`]). Boxed like a lookup; the steady state never comes here.
    Lease {
        wait: LeaseWait,
        pending: Option<Box<PendingLease<S, ReqB>>>,
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

    /// Awaits a dry cell's lease, then finishes the request.
    pub(crate) fn lease(
        awaiting: Box<AwaitingLease>,
        req: Request<ReqB>,
        inner: S,
        gate: Keygate,
        settings: Arc<LayerSettings>,
    ) -> Self {
        Self {
            state: State::lease(awaiting, req, inner, gate, settings),
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

impl<S, ReqB> State<S, ReqB>
where
    S: Service<Request<ReqB>>,
{
    fn lease(
        mut awaiting: Box<AwaitingLease>,
        req: Request<ReqB>,
        inner: S,
        gate: Keygate,
        settings: Arc<LayerSettings>,
    ) -> Self {
        State::Lease {
            wait: awaiting.take_wait(),
            pending: Some(Box::new(PendingLease {
                req,
                inner,
                gate,
                settings,
                awaiting,
            })),
        }
    }

    /// The state after an admission decided with the request in hand.
    fn after(
        admission: Admission,
        req: Request<ReqB>,
        mut inner: S,
        gate: Keygate,
        settings: Arc<LayerSettings>,
    ) -> Self {
        match admission {
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
            Admission::AwaitLease(awaiting) => State::lease(awaiting, req, inner, gate, settings),
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
                        inner,
                        gate,
                        settings,
                        digest,
                    } = *pending.take().expect("polled after completion");
                    let (scopes, answer) = (&settings.scopes, &settings.answer);
                    let admission = gate.admit_found(found, &digest, &mut req, scopes, answer);
                    this.state
                        .set(State::after(admission, req, inner, gate, settings));
                }
                StateProj::Credential { verify, pending } => {
                    let verified = ready!(verify.as_mut().poll(cx));
                    let PendingCredential {
                        mut req,
                        inner,
                        gate,
                        settings,
                    } = pending.take().expect("polled after completion");
                    let (scopes, answer) = (&settings.scopes, &settings.answer);
                    let admission = gate.admit_credential(verified, &mut req, scopes, answer);
                    this.state
                        .set(State::after(admission, req, inner, gate, settings));
                }
                StateProj::Lease { wait, pending } => {
                    let waited = ready!(wait.as_mut().poll(cx));
                    let PendingLease {
                        mut req,
                        inner,
                        gate,
                        settings,
                        awaiting,
                    } = *pending.take().expect("polled after completion");
                    let admission = gate.resume(awaiting, waited, &mut req, &settings.answer);
                    this.state
                        .set(State::after(admission, req, inner, gate, settings));
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
