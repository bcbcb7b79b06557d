//! Refusals: rendered once where possible, and audited.

use std::sync::OnceLock;

use http::{Extensions, HeaderMap};

use super::Keygate;
use crate::cache::entry::ResolvedKey;
use crate::error::AuthError;
use crate::ratelimit::{QuotaFields, RateLimitStatus};
use crate::refusal::{self as render, Refusal, RefusalAnswer, RenderRefusal};

/// A rendered refusal kept for reuse: status, headers, body.
type Rendered = (http::StatusCode, HeaderMap, bytes::Bytes);

/// `unauthorized` and `invalid_api_key`, rendered once (HTTP, then gRPC), when the
/// renderer is deterministic.
pub(crate) type Prerendered = [[OnceLock<Rendered>; 2]; 2];

impl Keygate {
    /// The response for a refusal, by the layer's own renderer when it has one.
    pub(super) fn render(
        &self,
        error: &AuthError,
        status: Option<&RateLimitStatus>,
        answer: &RefusalAnswer,
    ) -> http::Response<bytes::Bytes> {
        self.render_reporting(error, status, None, answer)
    }

    /// [`Keygate::render`], also reporting `quotas` (a `usage_exceeded` refusal).
    pub(super) fn render_reporting(
        &self,
        error: &AuthError,
        status: Option<&RateLimitStatus>,
        quotas: Option<&QuotaFields>,
        answer: &RefusalAnswer,
    ) -> http::Response<bytes::Bytes> {
        let v = &*self.inner;
        let grpc = answer.grpc();
        let renderer: &dyn RenderRefusal = match &answer.renderer {
            Some(own) => &*own.0,
            None => &*v.renderer,
        };
        // Only the core's renderer has prerendered slots.
        let slot = match error {
            AuthError::MissingCredentials => Some(0),
            AuthError::InvalidKey => Some(1),
            _ => None,
        }
        .filter(|_| {
            status.is_none()
                && quotas.is_none()
                && answer.renderer.is_none()
                && v.renderer.is_deterministic()
        });
        let render = || {
            let refusal = Refusal {
                error,
                realm: &v.realm,
                rate_limit: status,
            };
            render::finish(renderer, &refusal, grpc, self.ietf_headers(), quotas)
        };
        match slot {
            Some(i) => {
                let (code, headers, body) = v.prerendered[usize::from(grpc)][i].get_or_init(|| {
                    let (parts, body) = render().into_parts();
                    (parts.status, parts.headers, body)
                });
                let mut res = http::Response::new(body.clone());
                *res.status_mut() = *code;
                *res.headers_mut() = headers.clone();
                res
            }
            None => render(),
        }
    }

    /// Audit event for an accepted key. Never carries key material.
    pub(super) fn audit_allowed(
        &self,
        key: &ResolvedKey,
        headers: &HeaderMap,
        extensions: &Extensions,
    ) {
        let metrics = &self.inner.cache.metrics;
        if tracing::level_filters::LevelFilter::current()
            == tracing::level_filters::LevelFilter::OFF
        {
            // No subscriber enables anything: neither the event nor a span to fill.
            metrics.count_admitted();
            return;
        }
        metrics.admitted(key);
        tracing::debug!(
            target: "keygate::audit",
            outcome = "ok",
            credential = credential_kind(key),
            key_id = key.record.id.as_str(),
            account_id = key.record.account_id.as_str(),
            client_ip = self
                .inner
                .ip_resolver
                .client_ip(headers, extensions)
                .map(tracing::field::display),
            "api key accepted"
        );
    }

    /// Audit event for a refusal. Never carries key material.
    pub(super) fn audit_refused(
        &self,
        error: &AuthError,
        key: Option<&ResolvedKey>,
        headers: &HeaderMap,
        extensions: &Extensions,
    ) {
        self.inner.cache.metrics.refused(error.code(), key);
        tracing::info!(
            target: "keygate::audit",
            outcome = error.code(),
            status = error.status().as_u16(),
            credential = key.map(credential_kind),
            key_id = key.map(|k| k.record.id.as_str()),
            account_id = key.map(|k| k.record.account_id.as_str()),
            client_ip = self
                .inner
                .ip_resolver
                .client_ip(headers, extensions)
                .map(tracing::field::display),
            "api key refused"
        );
    }
}

/// The audit events' `credential` field: `api_key`, or `external` for a principal from
/// the credential verifier (whose `key_id` is its subject).
fn credential_kind(key: &ResolvedKey) -> &'static str {
    if key.external {
        "external"
    } else {
        "api_key"
    }
}
