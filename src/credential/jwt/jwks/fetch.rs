//! One fetch of a JWKS document, through the crate's bounded HTTPS fetcher.

use std::time::Duration;

use tokio_rustls::rustls::RootCertStore;

use super::JwksConfigError;
use crate::credential::jwt::keys::{self, JwtConfigError, JwtKey};
use crate::fetch::{self, FetchConfigError};

/// Where and how to fetch: checked once, when the source is built.
pub(super) struct Fetcher {
    inner: fetch::Fetcher,
    /// `scheme://host[:port]`, for logs and `Debug` (never the path or query).
    pub(super) origin: String,
    pub(super) timeout: Duration,
    pub(super) max_size: usize,
}

/// A fetched document: its signing keys, and the lifetime the server gave it.
pub(super) struct Document {
    pub(super) keys: Vec<JwtKey>,
    /// `max-age` less `Age`; zero for `no-store` or `no-cache`; `None` when not given.
    pub(super) max_age: Option<Duration>,
}

/// Why a fetch produced no document. Logged; never sent to a client.
#[derive(Debug, thiserror::Error)]
pub(super) enum FetchError {
    #[error(transparent)]
    Fetch(#[from] fetch::FetchError),
    #[error("the document is not UTF-8")]
    NotUtf8,
    #[error("the document is not a usable JWKS: {0}")]
    Jwks(#[from] JwtConfigError),
}

impl From<FetchConfigError> for JwksConfigError {
    fn from(e: FetchConfigError) -> Self {
        match e {
            FetchConfigError::InvalidUrl(why) => JwksConfigError::InvalidUrl(why),
            FetchConfigError::PlainHttp => JwksConfigError::PlainHttp,
            FetchConfigError::InvalidRootCertificates(why) => {
                JwksConfigError::InvalidRootCertificates(why)
            }
            FetchConfigError::NoSystemRoots(why) => JwksConfigError::NoSystemRoots(why),
            FetchConfigError::Tls(why) => JwksConfigError::Tls(why),
        }
    }
}

impl Fetcher {
    /// Checks `url`: `https`, or `http` when `allow_http`; a host; no user information.
    pub(super) fn new(
        url: &str,
        allow_http: bool,
        roots: Option<RootCertStore>,
        timeout: Duration,
        max_size: usize,
    ) -> Result<Self, JwksConfigError> {
        let inner = fetch::Fetcher::new(
            url,
            allow_http,
            roots,
            timeout,
            max_size,
            "application/jwk-set+json, application/json",
        )?;
        Ok(Self {
            origin: inner.origin.clone(),
            timeout,
            max_size,
            inner,
        })
    }

    /// The document, or why not, within the timeout.
    pub(super) async fn fetch(&self) -> Result<Document, FetchError> {
        let fetched = self.inner.fetch().await?;
        let text = std::str::from_utf8(&fetched.body).map_err(|_| FetchError::NotUtf8)?;
        let keys = JwtKey::from_jwks(text)?;
        keys::check_unique(&keys)?;
        Ok(Document {
            keys,
            max_age: fetched.max_age,
        })
    }
}
