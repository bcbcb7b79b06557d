//! A secret-scanning partner endpoint (feature `scanning`): GitHub reports keys it
//! finds in public places, and keygate revokes them.
//!
//! GitHub's secret-scanning partner program scans public pushes, gists, issues and
//! packages for registered token formats (`keygate pattern` prints the regular
//! expression of each of the deployment's prefixes) and POSTs each match to the
//! issuer's endpoint. [`SecretScanning`] is that endpoint, mounted at a path of your
//! choice:
//!
//! 1. **Body.** At most [`SecretScanningBuilder::max_body_bytes`] (1 MiB by default,
//!    which a batch of 1,000 matches fits); a longer one answers 413 `body_too_large`.
//! 2. **Signature, over the raw body, before anything is parsed.** The
//!    `Github-Public-Key-Signature` header (base64 of an ASN.1 DER ECDSA P-256 /
//!    SHA-256 signature) must verify with the public key that
//!    `Github-Public-Key-Identifier` names in the [`ScanningKeys`]. A missing header
//!    answers 401 `missing_signature`, an identifier not listed 401
//!    `unknown_public_key`, and anything else that does not verify (a wrong or
//!    malformed signature, a tampered body) 401 `invalid_signature`; nothing changes.
//!    With no public keys to check against (a URL never fetched), 503
//!    `public_keys_unavailable`.
//! 3. **Matches.** The body must be a JSON array of `{"token","type","url","source"}`
//!    (400 `invalid_request` otherwise). Each token is handled in order by
//!    [`crate::KeyManager::report_leak`] under the [`LeakPolicy`] (revoke by default):
//!    checked offline, looked up by digest in every account, the policy applied and
//!    the leak recorded on the key (see [`crate::leaks`]). A store failure answers 503
//!    `store_unavailable`, so that GitHub retries; the tokens handled before it stay
//!    handled, and handling is idempotent, so the retry applies each once.
//! 4. **Answer.** GitHub's feedback, one entry per match in the order received:
//!    `[{"token_hash":"<SHA-256 hex of the token>","token_type":"<type>","label":"true_positive"}]`;
//!    `false_positive` for a token that is malformed or no key of this deployment.
//!
//! Refusals are `{"error":{"code":"...","message":"..."}}` as in the management API;
//! another method than POST answers 405 `method_not_allowed`.
//!
//! ```
//! use keygate::admin::scanning::{ScanningKeys, SecretScanning};
//! use keygate::leaks::LeakPolicy;
//! use keygate::{Keygate, MemoryStore};
//!
//! let (_gate, manager) = Keygate::managed(MemoryStore::new()).build();
//! let keys = ScanningKeys::fetch("https://api.github.com/meta/public_keys/secret_scanning")
//!     .build()?;
//! let scanning = SecretScanning::builder(manager, keys)
//!     .policy(LeakPolicy::Revoke)
//!     .build();
//! let app: axum::Router = axum::Router::new().route("/v1/secret-scanning", scanning.route());
//! # Ok::<(), keygate::admin::scanning::ScanningKeysError>(())
//! ```
//!
//! The endpoint is not behind keygate's layer: GitHub calls it with no API key, and the
//! signature is its authentication. See `SECURITY.md` for what a caller can do.

mod alert;
mod keys;

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::rejection::BytesRejection;
use axum::extract::DefaultBodyLimit;
use axum::routing::{self, MethodRouter};
use axum::Router;
use http::{HeaderMap, Response, StatusCode};

pub use keys::{ScanningKeys, ScanningKeysBuilder, ScanningKeysError};

use super::envelope::{json_response, Envelope, ErrorReply, JsonEnvelope, Reply};
use crate::leaks::{LeakOutcome, LeakPolicy, LeakReport, SecretScanningConfig};
use crate::manage::KeyManager;
use alert::{decode_signature, parse_alert, verifies, Feedback, Label};
use keys::KeyMissing;

/// Default of [`SecretScanningBuilder::max_body_bytes`]: 1 MiB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;

/// The header naming the public key.
pub const KEY_IDENTIFIER_HEADER: &str = "github-public-key-identifier";
/// The header carrying the signature.
pub const SIGNATURE_HEADER: &str = "github-public-key-signature";

/// The secret-scanning partner endpoint: see [the module docs](self). Cheap to clone.
#[derive(Clone, Debug)]
pub struct SecretScanning {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    manager: KeyManager,
    keys: ScanningKeys,
    policy: LeakPolicy,
    max_body: usize,
}

/// Builds a [`SecretScanning`]; from [`SecretScanning::builder`].
#[derive(Debug)]
#[must_use = "a builder does nothing until `build` is called"]
pub struct SecretScanningBuilder {
    manager: KeyManager,
    keys: ScanningKeys,
    policy: LeakPolicy,
    max_body: usize,
}

impl SecretScanningBuilder {
    /// What is done with a reported key. Default: [`LeakPolicy::Revoke`].
    pub fn policy(mut self, policy: LeakPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Largest alert body, in bytes; longer ones answer 413 `body_too_large`. Default:
    /// [`DEFAULT_MAX_BODY_BYTES`] (1 MiB).
    pub fn max_body_bytes(mut self, bytes: usize) -> Self {
        self.max_body = bytes;
        self
    }

    /// The endpoint.
    pub fn build(self) -> SecretScanning {
        SecretScanning {
            inner: Arc::new(Inner {
                manager: self.manager,
                keys: self.keys,
                policy: self.policy,
                max_body: self.max_body,
            }),
        }
    }
}

impl SecretScanning {
    /// An endpoint handling alerts signed by `keys` with `manager`'s keys.
    pub fn builder(manager: KeyManager, keys: ScanningKeys) -> SecretScanningBuilder {
        SecretScanningBuilder {
            manager,
            keys,
            policy: LeakPolicy::default(),
            max_body: DEFAULT_MAX_BODY_BYTES,
        }
    }

    /// The endpoint as `config` describes it: its public keys from
    /// [`SecretScanningConfig::public_keys_file`] or else
    /// [`SecretScanningConfig::public_keys_url`] (with [`ScanningKeys::fetch`]'s
    /// defaults), its policy and its body limit. Mount it at [`SecretScanningConfig::path`].
    /// Fails when neither source is given or the source is unusable.
    pub fn from_config(
        manager: KeyManager,
        config: &SecretScanningConfig,
    ) -> Result<Self, ScanningKeysError> {
        let keys = match (&config.public_keys_file, &config.public_keys_url) {
            (Some(path), _) => ScanningKeys::from_file(path)?,
            (None, Some(url)) => ScanningKeys::fetch(url.clone()).build()?,
            (None, None) => {
                return Err(ScanningKeysError::Document(
                    "give public_keys_file or public_keys_url".into(),
                ))
            }
        };
        Ok(Self::builder(manager, keys)
            .policy(config.policy)
            .max_body_bytes(config.max_body_bytes.unwrap_or(DEFAULT_MAX_BODY_BYTES))
            .build())
    }

    /// The endpoint as an axum route, to mount at a path of your choice:
    /// `Router::new().route("/v1/secret-scanning", scanning.route())`. POST only.
    pub fn route<S: Clone + Send + Sync + 'static>(&self) -> MethodRouter<S> {
        let inner = self.inner.clone();
        let max_body = inner.max_body;
        routing::post(
            move |headers: HeaderMap, body: Result<Bytes, BytesRejection>| async move {
                inner.handle(&headers, body).await.map(Body::from)
            },
        )
        .fallback(|| async {
            let mut res = refuse(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "This method is not allowed here; use POST",
            );
            res.headers_mut()
                .insert(http::header::ALLOW, http::HeaderValue::from_static("POST"));
            res.map(Body::from)
        })
        .layer(DefaultBodyLimit::max(max_body))
    }

    /// A router serving the endpoint at `path` alone.
    pub fn router(&self, path: &str) -> Router {
        Router::new().route(path, self.route())
    }
}

fn refuse(status: StatusCode, code: &str, message: &str) -> Response<Bytes> {
    JsonEnvelope.render(Reply::Error(ErrorReply::new(status, code, message)))
}

impl Inner {
    async fn handle(
        &self,
        headers: &HeaderMap,
        body: Result<Bytes, BytesRejection>,
    ) -> Response<Bytes> {
        let body = match body {
            Ok(body) => body,
            Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                return refuse(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "body_too_large",
                    &format!("The alert is larger than {} bytes", self.max_body),
                )
            }
            Err(_) => {
                return refuse(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "body: could not be read",
                )
            }
        };
        if let Err(res) = self.verify(headers, &body).await {
            return res;
        }
        let matches = match parse_alert(&body) {
            Ok(matches) => matches,
            Err(e) => return refuse(StatusCode::BAD_REQUEST, "invalid_request", &e.to_string()),
        };
        let mut feedback = Vec::with_capacity(matches.len());
        let mut real = 0usize;
        for m in &matches {
            let report = LeakReport::new(&*m.token_type, &*m.url, &*m.source);
            let outcome = match self
                .manager
                .report_leak(&m.token, &report, self.policy)
                .await
            {
                Ok(outcome) => outcome,
                Err(error) => {
                    tracing::warn!(target: "keygate::scanning", %error, handled = feedback.len(), "a secret-scanning alert could not be handled; the scanner will retry");
                    return refuse(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "store_unavailable",
                        "The key store is unavailable; retry later",
                    );
                }
            };
            let label = match outcome {
                LeakOutcome::Found { .. } => {
                    real += 1;
                    Label::TruePositive
                }
                _ => Label::FalsePositive,
            };
            feedback.push(Feedback::new(m, label));
        }
        tracing::info!(target: "keygate::scanning", tokens = matches.len(), true_positives = real, "secret-scanning alert handled");
        let body = serde_json::to_value(&feedback).unwrap_or_default();
        json_response(StatusCode::OK, &body)
    }

    /// Checks the signature headers against the raw body.
    async fn verify(&self, headers: &HeaderMap, body: &[u8]) -> Result<(), Response<Bytes>> {
        let unauthorized = |code: &str, message: &str| {
            tracing::warn!(target: "keygate::scanning", code, "secret-scanning alert refused");
            refuse(StatusCode::UNAUTHORIZED, code, message)
        };
        let (Some(identifier), Some(signature)) = (
            headers.get(KEY_IDENTIFIER_HEADER),
            headers.get(SIGNATURE_HEADER),
        ) else {
            return Err(unauthorized(
                "missing_signature",
                "Github-Public-Key-Identifier and Github-Public-Key-Signature are required",
            ));
        };
        let identifier = identifier
            .to_str()
            .ok()
            .filter(|id| !id.is_empty() && id.len() <= alert::MAX_IDENTIFIER_HEADER);
        let Some(identifier) = identifier else {
            return Err(unauthorized(
                "unknown_public_key",
                "Github-Public-Key-Identifier names no listed public key",
            ));
        };
        let now = self.manager.keygate().clock().now();
        let key = match self.keys.key(identifier, now).await {
            Ok(key) => key,
            Err(KeyMissing::Unknown) => {
                return Err(unauthorized(
                    "unknown_public_key",
                    "Github-Public-Key-Identifier names no listed public key",
                ))
            }
            Err(KeyMissing::Unavailable) => {
                return Err(refuse(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "public_keys_unavailable",
                    "The public keys alerts are signed with could not be fetched; retry later",
                ))
            }
        };
        match decode_signature(signature.as_bytes()) {
            Some(sig) if verifies(&key, body, &sig) => Ok(()),
            _ => Err(unauthorized(
                "invalid_signature",
                "Github-Public-Key-Signature does not verify over this body",
            )),
        }
    }
}
