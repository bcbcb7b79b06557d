//! [`ScanningKeys`]: the public keys alerts are signed with, from a document, a file or
//! a URL.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use p256::ecdsa::VerifyingKey;
use p256::pkcs8::DecodePublicKey as _;
use serde::Deserialize;

use crate::fetch::{self, FetchConfigError, Fetcher};

/// The public keys that sign secret-scanning alerts, by key identifier: GitHub's
/// `{"public_keys":[{"key_identifier":"…","key":"-----BEGIN PUBLIC KEY-----…","is_current":true}]}`
/// document (served at `https://api.github.com/meta/public_keys/secret_scanning`).
///
/// Every listed key verifies, current or not (`is_current` marks the one GitHub signs
/// new alerts with; the others are kept through a rotation). Entries whose key is not
/// an ECDSA P-256 public key in PEM are skipped (and logged); a document without one
/// usable key, or with an identifier twice, is refused.
///
/// - [`ScanningKeys::from_document`] and [`ScanningKeys::from_file`] hold a fixed set.
/// - [`ScanningKeys::fetch`] fetches the document from a URL: HTTPS (rustls, the
///   system's roots or [`ScanningKeysBuilder::root_certificates_pem`]), within
///   [`ScanningKeysBuilder::timeout`] (2 s), at most
///   [`ScanningKeysBuilder::max_document_size`] (64 KiB). The first alert fetches it;
///   it is kept for its `Cache-Control: max-age` within the refetch interval and
///   [`ScanningKeysBuilder::refresh_after`] (1 h; that long without `max-age`) and
///   fetched again
///   when older, or when an alert names an identifier it lacks, but at most once per
///   [`ScanningKeysBuilder::min_refetch_interval`] (5 min), so made-up identifiers
///   cannot make keygate hammer the URL (which GitHub rate-limits). A failed fetch
///   keeps the keys held; with none ever fetched, alerts are answered 503
///   `public_keys_unavailable` and change nothing. Times run on the gate's clock.
///
/// ```
/// use keygate::admin::scanning::ScanningKeys;
///
/// let keys = ScanningKeys::fetch("https://api.github.com/meta/public_keys/secret_scanning")
///     .build()?;
/// # let _ = keys;
/// # Ok::<(), keygate::admin::scanning::ScanningKeysError>(())
/// ```
#[derive(Clone)]
pub struct ScanningKeys {
    source: Arc<Source>,
}

enum Source {
    Fixed(KeySet),
    Fetched(Box<Fetched>),
}

impl std::fmt::Debug for ScanningKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &*self.source {
            Source::Fixed(set) => f
                .debug_struct("ScanningKeys")
                .field("identifiers", &set.0.len())
                .finish(),
            Source::Fetched(fetched) => f
                .debug_struct("ScanningKeys")
                .field("origin", &fetched.fetcher.origin)
                .finish_non_exhaustive(),
        }
    }
}

/// Why a [`ScanningKeys`] could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScanningKeysError {
    /// The document is not a usable public-key document; the message says why.
    #[error("not a usable secret-scanning public-key document: {0}")]
    Document(String),
    /// The file could not be read.
    #[error("cannot read the public-key document: {0}")]
    Io(#[from] std::io::Error),
    /// The URL or its transport settings are unusable; the message says why.
    #[error("cannot fetch public keys from that URL: {0}")]
    Url(String),
}

impl From<FetchConfigError> for ScanningKeysError {
    fn from(e: FetchConfigError) -> Self {
        match e {
            FetchConfigError::PlainHttp => {
                ScanningKeysError::Url("plain http needs `allow_plain_http_for_development`".into())
            }
            other => ScanningKeysError::Url(other.to_string()),
        }
    }
}

/// Why no key could be found for an identifier.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum KeyMissing {
    /// No such identifier (after a refetch, where one was allowed).
    Unknown,
    /// No document was ever fetched.
    Unavailable,
}

/// Usable keys by identifier.
struct KeySet(HashMap<String, VerifyingKey>);

#[derive(Deserialize)]
struct Document {
    public_keys: Vec<Entry>,
}

#[derive(Deserialize)]
struct Entry {
    key_identifier: String,
    key: String,
}

impl KeySet {
    fn parse(document: &[u8]) -> Result<Self, ScanningKeysError> {
        let bad = |why: &str| ScanningKeysError::Document(why.to_owned());
        let doc: Document = serde_json::from_slice(document)
            .map_err(|e| bad(&format!("expected {{\"public_keys\":[…]}} ({e})")))?;
        let mut keys = HashMap::new();
        for entry in doc.public_keys {
            if keys.contains_key(&entry.key_identifier) {
                return Err(bad("a key identifier is listed twice"));
            }
            match VerifyingKey::from_public_key_pem(entry.key.trim()) {
                Ok(key) => {
                    keys.insert(entry.key_identifier, key);
                }
                Err(_) => tracing::warn!(
                    target: "keygate::scanning",
                    key_identifier = %entry.key_identifier.chars().take(80).collect::<String>(),
                    "skipped a public key that is not an ECDSA P-256 key in PEM"
                ),
            }
        }
        if keys.is_empty() {
            return Err(bad("no ECDSA P-256 public key in PEM"));
        }
        Ok(Self(keys))
    }
}

impl ScanningKeys {
    /// The keys of a public-key document.
    ///
    /// ```
    /// use keygate::admin::scanning::ScanningKeys;
    ///
    /// let doc = r#"{"public_keys":[{"key_identifier":"k1","is_current":true,
    ///   "key":"-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEYRsi1imQ2XSSPciipcXCRYcNZbgx\ngAfrir5siG4Z+IK9lIjciDUsbXFzOpCADVfOBWg89hnToXnvX3xf+JQySQ==\n-----END PUBLIC KEY-----"}]}"#;
    /// assert!(ScanningKeys::from_document(doc.as_bytes()).is_ok());
    /// assert!(ScanningKeys::from_document(b"{\"public_keys\":[]}").is_err());
    /// ```
    pub fn from_document(document: &[u8]) -> Result<Self, ScanningKeysError> {
        Ok(Self {
            source: Arc::new(Source::Fixed(KeySet::parse(document)?)),
        })
    }

    /// The keys of the public-key document in the file at `path`, read once.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, ScanningKeysError> {
        Self::from_document(&std::fs::read(path)?)
    }

    /// Keys fetched from the public-key document at `url`; see [`ScanningKeysBuilder`].
    pub fn fetch(url: impl Into<String>) -> ScanningKeysBuilder {
        ScanningKeysBuilder {
            url: url.into(),
            roots_pem: Vec::new(),
            allow_http: false,
            timeout: Duration::from_secs(2),
            max_size: 64 * 1024,
            refresh_after: Duration::from_secs(3600),
            min_refetch_interval: Duration::from_secs(300),
        }
    }

    /// The key named `identifier`, fetching the document when allowed.
    pub(super) async fn key(
        &self,
        identifier: &str,
        now: SystemTime,
    ) -> Result<VerifyingKey, KeyMissing> {
        match &*self.source {
            Source::Fixed(set) => set.0.get(identifier).copied().ok_or(KeyMissing::Unknown),
            Source::Fetched(fetched) => fetched.key(identifier, now).await,
        }
    }
}

/// Builds a [`ScanningKeys`] that fetches its document; from [`ScanningKeys::fetch`].
#[derive(Debug)]
#[must_use = "a builder does nothing until `build` is called"]
pub struct ScanningKeysBuilder {
    url: String,
    roots_pem: Vec<Vec<u8>>,
    allow_http: bool,
    timeout: Duration,
    max_size: usize,
    refresh_after: Duration,
    min_refetch_interval: Duration,
}

impl ScanningKeysBuilder {
    /// Trusts only the CA certificates in this PEM document (instead of the operating
    /// system's roots). Also adds: call it once per document.
    pub fn root_certificates_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.roots_pem.push(pem.into());
        self
    }

    /// Allows a plain `http` URL. For local development and tests only.
    pub fn allow_plain_http_for_development(mut self, allow: bool) -> Self {
        self.allow_http = allow;
        self
    }

    /// Longest a fetch (connect, TLS, request, body) may take. Default: 2 s.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Largest document accepted, in bytes. Default: 64 KiB.
    pub fn max_document_size(mut self, bytes: usize) -> Self {
        self.max_size = bytes;
        self
    }

    /// Longest a fetched document is used before it is fetched again (a shorter
    /// `Cache-Control: max-age` wins, down to the refetch interval). Default: 1 h.
    pub fn refresh_after(mut self, after: Duration) -> Self {
        self.refresh_after = after;
        self
    }

    /// Least time between two fetches, whatever asks for them. Default: 5 min.
    pub fn min_refetch_interval(mut self, interval: Duration) -> Self {
        self.min_refetch_interval = interval;
        self
    }

    /// The source. Fails for an unusable URL (not `https`, unless allowed; no host;
    /// user information) or root certificates. Fetches nothing yet.
    pub fn build(self) -> Result<ScanningKeys, ScanningKeysError> {
        let roots = if self.roots_pem.is_empty() {
            None
        } else {
            Some(fetch::roots::from_pem(&self.roots_pem)?)
        };
        let fetcher = Fetcher::new(
            &self.url,
            self.allow_http,
            roots,
            self.timeout,
            self.max_size,
            "application/json",
        )?;
        Ok(ScanningKeys {
            source: Arc::new(Source::Fetched(Box::new(Fetched {
                fetcher,
                refresh_after: self.refresh_after,
                min_refetch_interval: self.min_refetch_interval,
                state: Mutex::default(),
                fetching: tokio::sync::Mutex::new(()),
            }))),
        })
    }
}

/// A document fetched from a URL, and when.
struct Fetched {
    fetcher: Fetcher,
    refresh_after: Duration,
    min_refetch_interval: Duration,
    state: Mutex<State>,
    /// Held while fetching: one fetch at a time.
    fetching: tokio::sync::Mutex<()>,
}

#[derive(Default)]
struct State {
    keys: Option<Arc<KeySet>>,
    /// Until when the keys held are used without asking again.
    fresh_until: Option<SystemTime>,
    last_attempt: Option<SystemTime>,
}

impl Fetched {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether a fetch may start at `now`.
    fn may_fetch(&self, state: &State, now: SystemTime) -> bool {
        state.last_attempt.is_none_or(|at| {
            now.duration_since(at)
                .is_ok_and(|since| since >= self.min_refetch_interval)
        })
    }

    async fn key(&self, identifier: &str, now: SystemTime) -> Result<VerifyingKey, KeyMissing> {
        let (held, attempt) = {
            let state = self.state();
            let fresh = state.fresh_until.is_some_and(|until| now < until);
            let held = state
                .keys
                .as_ref()
                .and_then(|k| k.0.get(identifier).copied());
            if let (Some(key), true) = (held, fresh) {
                return Ok(key);
            }
            (held, state.last_attempt)
        };
        let _fetching = self.fetching.lock().await;
        {
            let mut state = self.state();
            // Another request fetched while this one waited: use its result.
            let fetched_meanwhile = state.last_attempt != attempt;
            if !fetched_meanwhile && self.may_fetch(&state, now) {
                state.last_attempt = Some(now);
            } else {
                drop(state);
                return self.lookup(identifier).or(held.ok_or(KeyMissing::Unknown));
            }
        }
        match self.fetcher.fetch().await {
            Ok(fetched) => match KeySet::parse(&fetched.body) {
                Ok(set) => {
                    tracing::debug!(target: "keygate::scanning", origin = %self.fetcher.origin, keys = set.0.len(), "secret-scanning public keys fetched");
                    // The server's `max-age`, within the refetch interval and the
                    // refresh period.
                    let lifetime = fetched.max_age.map_or(self.refresh_after, |age| {
                        age.max(self.min_refetch_interval).min(self.refresh_after)
                    });
                    let mut state = self.state();
                    state.keys = Some(Arc::new(set));
                    state.fresh_until = Some(now + lifetime);
                }
                Err(error) => {
                    tracing::warn!(target: "keygate::scanning", origin = %self.fetcher.origin, %error, "secret-scanning public keys unusable; the keys held stay in use")
                }
            },
            Err(error) => {
                tracing::warn!(target: "keygate::scanning", origin = %self.fetcher.origin, %error, "secret-scanning public keys could not be fetched; the keys held stay in use")
            }
        }
        self.lookup(identifier)
    }

    /// The key held for `identifier`, whatever the document's age.
    fn lookup(&self, identifier: &str) -> Result<VerifyingKey, KeyMissing> {
        let state = self.state();
        match &state.keys {
            None => Err(KeyMissing::Unavailable),
            Some(set) => set.0.get(identifier).copied().ok_or(KeyMissing::Unknown),
        }
    }
}
