//! [`JwksSource`]: a [`super::JwtVerifier`]'s keys, fetched from the issuer's JWKS URL
//! (feature `jwks`).
//!
//! The details are on [`JwksSource`].

mod cache;
mod fetch;

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::credential::CredentialError;
use cache::{JwksCache, Policy};
use fetch::Fetcher;

use super::JwtKey;

/// A JWKS URL a [`super::JwtVerifier`] takes its keys from. Cheap to clone; clones
/// share the keys fetched and the fetches.
///
/// - **Transport.** HTTPS with rustls (the `ring` provider), trusting the operating
///   system's root certificates, or only the CA certificates given with
///   [`JwksSourceBuilder::root_certificates_pem`]. Plain `http` is refused when the
///   source is built, unless [`JwksSourceBuilder::allow_plain_http_for_development`]
///   says otherwise. Redirects are not followed: any answer but 200 is a failed fetch.
/// - **Bounds.** Each fetch (connect, TLS, request and body) must finish within
///   [`JwksSourceBuilder::timeout`] (1.5 s by default, under the gate's 2 s
///   store timeout). A document that declares more than
///   [`JwksSourceBuilder::max_document_size`] (64 KiB by default) is refused unread,
///   and one that grows past it is refused as soon as it does.
/// - **Lifetime.** A document is used for its `Cache-Control: max-age` (less `Age`),
///   clamped between [`JwksSourceBuilder::min_lifetime`] (5 min) and
///   [`JwksSourceBuilder::max_lifetime`] (1 h); without `max-age`, for the floor.
///   Lifetimes run on keygate's clock (the request time handed to the verifier, see
///   [`crate::KeygateBuilder::clock`]), so tests drive them with a
///   [`crate::clock::ManualClock`]. The next token after the lifetime waits for a
///   refetch; a key that is gone from the new document no longer verifies.
/// - **Unknown `kid`.** A token naming a `kid` the document lacks makes the source
///   fetch again (a key may just have been rotated in), but at most once per
///   [`JwksSourceBuilder::min_refetch_interval`] (30 s): tokens with made-up key ids
///   cannot make keygate hammer the issuer. Tokens that arrive while a fetch is in
///   flight wait for that one fetch; none starts a second.
/// - **Outages.** When a refetch fails (timeout, refused connection, TLS failure, an
///   error status, an oversized or invalid document) the keys held stay in use for
///   [`JwksSourceBuilder::stale_while_unreachable`] (1 h) past their lifetime, and the
///   source tries again at most once per refetch interval. After that, or when no
///   document has ever been fetched, tokens are answered with 503
///   `verifier_unavailable` ([`crate::credential::CredentialError::Unavailable`]):
///   keygate fails closed. Failures are logged at `warn`, with the URL's origin only.
///
/// The first document is fetched by the first token, not when the source is built.
///
/// ```
/// use std::time::Duration;
/// use keygate::credential::jwt::{JwksSource, JwtVerifier};
///
/// let jwks = JwksSource::builder("https://auth.example.com/.well-known/jwks.json")
///     .timeout(Duration::from_secs(1))
///     .max_lifetime(Duration::from_secs(15 * 60))
///     .build()?;
/// let jwt = JwtVerifier::builder()
///     .jwks(jwks)
///     .issuer("https://auth.example.com/")
///     .audience("streams-api")
///     .build()?;
/// # let _ = jwt;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct JwksSource {
    cache: Arc<JwksCache>,
}

/// Builds a [`JwksSource`]; from [`JwksSource::builder`].
///
/// ```
/// use std::time::Duration;
/// use keygate::credential::jwt::{JwksConfigError, JwksSource};
///
/// let plain = JwksSource::builder("http://127.0.0.1:8080/jwks.json").build();
/// assert!(matches!(plain, Err(JwksConfigError::PlainHttp)));
/// let dev = JwksSource::builder("http://127.0.0.1:8080/jwks.json")
///    .allow_plain_http_for_development()
///    .min_refetch_interval(Duration::from_secs(5))
///    .build()?;
/// # let _ = dev;
/// # Ok::<(), JwksConfigError>(())
/// ```
#[derive(Clone)]
#[must_use = "a builder does nothing until `build` is called"]
pub struct JwksSourceBuilder {
    url: String,
    roots_pem: Vec<Vec<u8>>,
    allow_http: bool,
    timeout: Duration,
    max_size: usize,
    policy: Policy,
}

/// A mistake found while building a [`JwksSource`].
///
/// ```
/// use std::time::Duration;
/// use keygate::credential::jwt::{JwksConfigError, JwksSource};
///
/// let upside_down = JwksSource::builder("https://auth.example.com/.well-known/jwks.json")
///     .min_lifetime(Duration::from_secs(600))
///     .max_lifetime(Duration::from_secs(60))
///     .build();
/// assert!(matches!(upside_down, Err(JwksConfigError::LifetimeBounds { .. })));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JwksConfigError {
    /// The URL cannot be parsed, has no host, carries user information, or has a
    /// scheme other than `https` (or `http`, when allowed).
    #[error("not a usable JWKS URL: {0}")]
    InvalidUrl(String),
    /// The URL is plain `http`, and
    /// [`JwksSourceBuilder::allow_plain_http_for_development`] was not called.
    #[error("a JWKS URL must be https; plain http needs `allow_plain_http_for_development`")]
    PlainHttp,
    /// A PEM document given as root certificates holds none, or one that is not a
    /// usable trust anchor.
    #[error("invalid root certificates: {0}")]
    InvalidRootCertificates(String),
    /// No root certificates were configured, and none could be loaded from the
    /// operating system.
    #[error("no system root certificates could be loaded ({0}); configure some")]
    NoSystemRoots(String),
    /// The TLS configuration could not be built.
    #[error("TLS configuration failed: {0}")]
    Tls(String),
    /// The lifetime floor is above its ceiling.
    #[error("the minimum lifetime ({min:?}) is above the maximum ({max:?})")]
    LifetimeBounds {
        /// [`JwksSourceBuilder::min_lifetime`].
        min: Duration,
        /// [`JwksSourceBuilder::max_lifetime`].
        max: Duration,
    },
}

impl JwksSource {
    /// Starts a source for the JWKS document at `url` (usually an identity provider's
    /// `https://…/.well-known/jwks.json`), with the defaults given at [`JwksSource`].
    pub fn builder(url: impl Into<String>) -> JwksSourceBuilder {
        JwksSourceBuilder {
            url: url.into(),
            roots_pem: Vec::new(),
            allow_http: false,
            timeout: Duration::from_millis(1500),
            max_size: 64 * 1024,
            policy: Policy {
                min_lifetime: Duration::from_secs(5 * 60),
                max_lifetime: Duration::from_secs(60 * 60),
                min_refetch_interval: Duration::from_secs(30),
                stale_while_unreachable: Duration::from_secs(60 * 60),
            },
        }
    }

    /// The keys for a token naming `kid`, at `now` (fetching first when needed).
    pub(super) async fn keys_for(
        &self,
        kid: Option<&str>,
        now: SystemTime,
    ) -> Result<Arc<[JwtKey]>, CredentialError> {
        self.cache.keys_for(kid, now).await
    }
}

impl fmt::Debug for JwksSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cache = &self.cache;
        f.debug_struct("JwksSource")
            .field("origin", &cache.fetcher.origin)
            .field("timeout", &cache.fetcher.timeout)
            .field("max_document_size", &cache.fetcher.max_size)
            .field("policy", &cache.policy)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for JwksSourceBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwksSourceBuilder")
            .field("root_certificate_documents", &self.roots_pem.len())
            .field("allow_http", &self.allow_http)
            .field("timeout", &self.timeout)
            .field("max_document_size", &self.max_size)
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl JwksSourceBuilder {
    /// Trusts the CA certificates in `pem` (one or more `BEGIN CERTIFICATE` blocks)
    /// instead of the operating system's roots; calling it again also trusts those.
    /// For an issuer behind a private CA, and for tests.
    ///
    /// ```no_run
    /// use keygate::credential::jwt::JwksSource;
    ///
    /// let source = JwksSource::builder("https://idp.internal/.well-known/jwks.json")
    ///     .root_certificates_pem(std::fs::read("/etc/idp/ca.pem")?)
    ///     .build()?;
    /// # let _ = source;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn root_certificates_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.roots_pem.push(pem.into());
        self
    }

    /// Accepts a plain `http` URL. The keys then travel unauthenticated, so anyone on
    /// the path can substitute their own and mint tokens: for development only.
    pub fn allow_plain_http_for_development(mut self) -> Self {
        self.allow_http = true;
        self
    }

    /// How long one fetch may take, from connecting to the last byte. Default: 1.5 s.
    /// Keep it under the gate's [`crate::KeygateBuilder::store_timeout`], or a token
    /// waiting on a hung issuer is answered 503 before stale keys can be used.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The largest document accepted, in bytes. Default: 64 KiB.
    pub fn max_document_size(mut self, bytes: usize) -> Self {
        self.max_size = bytes;
        self
    }

    /// The shortest time a document is used before it is fetched again, whatever its
    /// `max-age` says; also its lifetime when it gives none. Default: 5 min.
    pub fn min_lifetime(mut self, lifetime: Duration) -> Self {
        self.policy.min_lifetime = lifetime;
        self
    }

    /// The longest time a document is used before it is fetched again, whatever its
    /// `max-age` says: a key removed from the JWKS stops verifying within this.
    /// Default: 1 h.
    pub fn max_lifetime(mut self, lifetime: Duration) -> Self {
        self.policy.max_lifetime = lifetime;
        self
    }

    /// The least time between two fetches, for an unknown `kid` or after a failure.
    /// Default: 30 s.
    pub fn min_refetch_interval(mut self, interval: Duration) -> Self {
        self.policy.min_refetch_interval = interval;
        self
    }

    /// How long past its lifetime a document is still used while every refetch
    /// fails. After that, tokens are refused with 503. Default: 1 h.
    pub fn stale_while_unreachable(mut self, bound: Duration) -> Self {
        self.policy.stale_while_unreachable = bound;
        self
    }

    /// The source. Refuses a URL that is not `https` (or allowed `http`), root
    /// certificates that do not parse, no system roots when none are configured, and
    /// a lifetime floor above its ceiling. Fetches nothing yet.
    pub fn build(self) -> Result<JwksSource, JwksConfigError> {
        let Policy {
            min_lifetime: min,
            max_lifetime: max,
            ..
        } = self.policy;
        if min > max {
            return Err(JwksConfigError::LifetimeBounds { min, max });
        }
        let roots = if self.roots_pem.is_empty() {
            None
        } else {
            Some(crate::fetch::roots::from_pem(&self.roots_pem)?)
        };
        let fetcher = Fetcher::new(
            &self.url,
            self.allow_http,
            roots,
            self.timeout,
            self.max_size,
        )?;
        Ok(JwksSource {
            cache: Arc::new(JwksCache::new(fetcher, self.policy)),
        })
    }
}
