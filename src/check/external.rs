//! Step 3, for a bearer that is not a keygate key: in place of the lookup, the
//! configured [`CredentialVerifier`] runs, and its principal then takes the same checks
//! as a key from access on. Nothing here runs for a keygate key.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;
use http::header::AUTHORIZATION;
use http::HeaderMap;

use super::lookup::Resolver;
use crate::cache::entry::ResolvedKey;
use crate::clock::Clock;
use crate::credential::{BearerCredential, CredentialError, CredentialVerifier};
use crate::error::AuthError;
use crate::key::KeyFormat;

/// A verifier's answer, as a key-like entry or a refusal.
pub(crate) type CredentialFuture =
    Pin<Box<dyn Future<Output = Result<Arc<ResolvedKey>, AuthError>> + Send + 'static>>;

/// The configured credential verifier and what turning its principals into identities
/// needs.
pub(crate) struct CredentialHook {
    pub(crate) verifier: Arc<dyn CredentialVerifier>,
    pub(crate) resolver: Resolver,
    /// Longest the verifier may take before the request fails with 503.
    pub(crate) timeout: Duration,
}

impl CredentialHook {
    /// `token`, which is not a valid keygate key, as a credential for the hook: only
    /// when the token came in `Authorization` and does not start with one of keygate's
    /// prefixes (a malformed key stays `invalid_api_key`).
    pub(crate) fn hand_off(
        &self,
        format: &KeyFormat,
        clock: &Clock,
        token: &str,
        headers: &HeaderMap,
    ) -> Option<BearerCredential> {
        let ours = format
            .prefixes()
            .iter()
            .any(|p| token.starts_with(p.as_str()));
        (!ours && headers.contains_key(AUTHORIZATION))
            .then(|| BearerCredential::new(token, clock.now()))
    }

    /// Runs the verifier on `credential`, isolated: a panic, an error or no answer
    /// within the timeout is 503 `verifier_unavailable`; a refusal is 401 `invalid_token`.
    pub(crate) fn verify(self: &Arc<Self>, credential: BearerCredential) -> CredentialFuture {
        let hook = self.clone();
        Box::pin(async move {
            let call = AssertUnwindSafe(hook.verifier.verify(credential)).catch_unwind();
            match tokio::time::timeout(hook.timeout, call).await {
                Ok(Ok(Ok(principal))) => Ok(Arc::new(hook.resolver.resolve_principal(principal))),
                Ok(Ok(Err(CredentialError::Refused(message)))) => {
                    Err(AuthError::InvalidToken(message))
                }
                Ok(Ok(Err(CredentialError::Unavailable(detail)))) => {
                    tracing::error!(target: "keygate", %detail, "credential verifier failed; refusing the request");
                    Err(AuthError::VerifierUnavailable)
                }
                Ok(Err(_panic)) => {
                    tracing::error!(target: "keygate", "credential verifier panicked; refusing the request");
                    Err(AuthError::VerifierUnavailable)
                }
                Err(_elapsed) => {
                    tracing::error!(target: "keygate", timeout = ?hook.timeout, "credential verifier timed out; refusing the request");
                    Err(AuthError::VerifierUnavailable)
                }
            }
        })
    }
}
