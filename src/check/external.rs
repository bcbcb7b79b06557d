//! The credential hook's branch: a bearer that is not a keygate key goes to the
//! configured [`CredentialVerifier`], and its principal through the same checks as a key
//! from the IP allowlist on. Nothing here runs for a keygate key.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;
use http::header::AUTHORIZATION;
use http::HeaderMap;

use super::access::Rules;
use super::lookup::Resolver;
use crate::cache::entry::ResolvedKey;
use crate::credential::{BearerCredential, CredentialError, CredentialVerifier};
use crate::error::AuthError;
use crate::gate::request::{Admission, Verifier};
use crate::identity::Identity;

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

impl Verifier {
    /// `token`, which is not a valid keygate key, as a credential for the hook: only
    /// when a verifier is configured, the token came in `Authorization`, and it does not
    /// start with one of keygate's prefixes (a malformed key stays `invalid_api_key`).
    pub(crate) fn hand_off(&self, token: &str, headers: &HeaderMap) -> Option<BearerCredential> {
        self.credentials.as_ref()?;
        let ours = self
            .format
            .prefixes()
            .iter()
            .any(|p| token.starts_with(p.as_str()));
        (!ours && headers.contains_key(AUTHORIZATION))
            .then(|| BearerCredential::new(token, self.clock.now()))
    }

    /// Runs the verifier on `credential`, isolated: a panic, an error or no answer
    /// within the timeout is 503 `verifier_unavailable`; a refusal is 401 `invalid_token`.
    pub(crate) fn verify_credential(&self, credential: BearerCredential) -> CredentialFuture {
        let hook = self
            .credentials
            .clone()
            .expect("hand_off only hands off with a verifier configured");
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

    /// Finishes a request carrying a verified credential, or the verifier's refusal: the
    /// same checks as a key's after its status (IP, scopes, read-only, rate limit), the
    /// same audit events and the same rendering.
    pub(crate) fn admit_credential<B>(
        &self,
        verified: Result<Arc<ResolvedKey>, AuthError>,
        req: &mut http::Request<B>,
        rules: &Rules,
    ) -> Admission {
        let key = match verified {
            Ok(key) => key,
            Err(error) => return Admission::Refused(self.refuse(&error, req, rules)),
        };
        let now = self.clock.now();
        let checked = self
            .check_access(&key, req, rules)
            .map_err(|e| (e, self.peek(&key, now)))
            .and_then(|()| self.limit(&key, now));
        match checked {
            Ok(status) => {
                self.audit_allowed(&key, req.headers(), req.extensions());
                req.extensions_mut().insert(Identity(key));
                Admission::Admitted(status)
            }
            Err((error, status)) => {
                self.audit_refused(&error, Some(&key), req.headers(), req.extensions());
                Admission::Refused(self.refusal(&error, status.as_ref(), rules))
            }
        }
    }
}
