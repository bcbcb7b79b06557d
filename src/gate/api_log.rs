//! Recording requests of recognised keys in the API log ([`crate::activity::log`]).

use http::Request;

use super::Keygate;
use crate::activity::log::event::clean_path;
use crate::activity::log::{ApiEvent, ApiLog};
use crate::cache::entry::ResolvedKey;
use crate::error::AuthError;

/// An accepted request's event, waiting for the service's response status.
pub(crate) struct PendingEvent {
    log: ApiLog,
    event: ApiEvent,
}

impl PendingEvent {
    /// Records the event with the response's `status`.
    pub(crate) fn finish(self, status: http::StatusCode) {
        let PendingEvent { log, mut event } = self;
        event.status = status.as_u16();
        log.record(event);
    }
}

impl Keygate {
    /// The API log, when [`crate::KeygateBuilder::api_log`] turned it on.
    pub fn api_log(&self) -> Option<&ApiLog> {
        self.inner.api_log.as_ref()
    }

    /// The event of an accepted request, when accepted requests are sampled and this one
    /// is picked. Off by default: then this is one branch.
    #[inline]
    pub(super) fn sample_accepted<B>(
        &self,
        key: &ResolvedKey,
        req: &Request<B>,
    ) -> Option<Box<PendingEvent>> {
        match &self.inner.api_log {
            Some(log) if log.samples_accepted() => self.accepted_event(log, key, req),
            _ => None,
        }
    }

    #[cold]
    fn accepted_event<B>(
        &self,
        log: &ApiLog,
        key: &ResolvedKey,
        req: &Request<B>,
    ) -> Option<Box<PendingEvent>> {
        if !log.sample_accepted() {
            return None;
        }
        let event = self.event(log, key, req, "accepted", http::StatusCode::OK);
        Some(Box::new(PendingEvent {
            log: log.clone(),
            event,
        }))
    }

    /// Records the refusal of a recognised key, answered with `status`.
    pub(super) fn log_refusal<B>(
        &self,
        key: &ResolvedKey,
        req: &Request<B>,
        error: &AuthError,
        status: http::StatusCode,
    ) {
        if let Some(log) = &self.inner.api_log {
            log.record(self.event(log, key, req, error.code(), status));
        }
    }

    fn event<B>(
        &self,
        log: &ApiLog,
        key: &ResolvedKey,
        req: &Request<B>,
        outcome: &str,
        status: http::StatusCode,
    ) -> ApiEvent {
        let v = &*self.inner;
        ApiEvent::new(
            log.now(),
            key.record.id.clone(),
            key.record.account_id.clone(),
            outcome,
            req.method().as_str(),
            clean_path(req.uri().path(), &v.keys.format),
            v.ip_resolver.client_ip(req.headers(), req.extensions()),
            status.as_u16(),
        )
    }
}
