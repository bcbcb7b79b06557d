//! Outgoing HTTP: an [`Endpoint`] (a URL checked once, and a connection to it over HTTPS
//! with rustls or, when allowed, plain HTTP), shared by webhook deliveries and by the
//! [`Fetcher`]: one GET of a small document from a configured URL (a JWKS, a list of
//! public keys), bounded in time and size, with the lifetime its `Cache-Control` gives
//! it. Redirects are not followed.

// With webhooks alone, only the endpoint is used: the document fetch is for JWKS and
// secret-scanning keys.
#![cfg_attr(not(any(feature = "jwks", feature = "scanning")), allow(dead_code))]

pub(crate) mod endpoint;
pub(crate) mod roots;

use std::pin::pin;
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::{select, Either};
use http::header::{ACCEPT, AGE, CACHE_CONTROL, CONTENT_LENGTH, HOST, USER_AGENT};
use http::{HeaderMap, Request, StatusCode};
use http_body_util::{BodyExt, Empty, LengthLimitError, Limited};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio_rustls::rustls::RootCertStore;

pub(crate) use endpoint::{ConnectError, Connection, Endpoint};

/// Why a URL and its transport settings are unusable.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FetchConfigError {
    #[error("{0}")]
    InvalidUrl(String),
    #[error("plain http is not allowed")]
    PlainHttp,
    #[error("{0}")]
    InvalidRootCertificates(String),
    #[error("{0}")]
    NoSystemRoots(String),
    #[error("{0}")]
    Tls(String),
}

/// Where and how to fetch: checked once, when the source is built.
pub(crate) struct Fetcher {
    endpoint: Endpoint,
    /// `scheme://host[:port]`, for logs and `Debug` (never the path or query).
    pub(crate) origin: String,
    /// The `Accept` header.
    accept: &'static str,
    pub(crate) timeout: Duration,
    pub(crate) max_size: usize,
}

/// A fetched document: its body, and the lifetime the server gave it.
pub(crate) struct Fetched {
    pub(crate) body: Bytes,
    /// `max-age` less `Age`; zero for `no-store` or `no-cache`; `None` when not given.
    pub(crate) max_age: Option<Duration>,
}

/// Why a fetch produced no document. Logged; never sent to a client.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FetchError {
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("cannot connect: {0}")]
    Connect(std::io::Error),
    #[error("TLS handshake failed: {0}")]
    Tls(std::io::Error),
    #[error("HTTP exchange failed: {0}")]
    Http(#[from] hyper::Error),
    #[error("answered {0}, not 200")]
    Status(StatusCode),
    #[error("the document is larger than the {0}-byte limit")]
    TooLarge(usize),
    #[error("reading the document failed: {0}")]
    Body(String),
}

impl Fetcher {
    /// Checks `url` (see [`Endpoint::new`]); `accept` is the `Accept` header sent.
    pub(crate) fn new(
        url: &str,
        allow_http: bool,
        roots: Option<RootCertStore>,
        timeout: Duration,
        max_size: usize,
        accept: &'static str,
    ) -> Result<Self, FetchConfigError> {
        let endpoint = Endpoint::new(url, allow_http, roots)?;
        Ok(Self {
            origin: endpoint.origin.clone(),
            endpoint,
            accept,
            timeout,
            max_size,
        })
    }

    /// The document, or why not, within the timeout.
    pub(crate) async fn fetch(&self) -> Result<Fetched, FetchError> {
        tokio::time::timeout(self.timeout, self.fetch_unbounded())
            .await
            .map_err(|_| FetchError::Timeout(self.timeout))?
    }

    async fn fetch_unbounded(&self) -> Result<Fetched, FetchError> {
        let stream = self.endpoint.connect().await.map_err(|e| match e {
            ConnectError::Connect(e) => FetchError::Connect(e),
            ConnectError::Tls(e) => FetchError::Tls(e),
        })?;
        self.exchange(stream).await
    }

    /// One GET over `stream`, driving the connection and the response together so
    /// that dropping this future (the timeout) closes everything.
    async fn exchange(&self, stream: Box<dyn Connection>) -> Result<Fetched, FetchError> {
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake::<_, Empty<Bytes>>(TokioIo::new(stream)).await?;
        let request = Request::get(self.endpoint.path.as_str())
            .header(HOST, self.endpoint.authority.as_str())
            .header(ACCEPT, self.accept)
            .header(USER_AGENT, concat!("keygate/", env!("CARGO_PKG_VERSION")))
            .body(Empty::new())
            .map_err(|e| FetchError::Body(e.to_string()))?;
        let exchange = pin!(async {
            let response = sender.send_request(request).await?;
            self.read(response).await
        });
        match select(exchange, pin!(connection)).await {
            Either::Left((document, _)) => document,
            // The connection ended (closed, or failed): the exchange then has all the
            // body there is, or fails too.
            Either::Right((_, exchange)) => exchange.await,
        }
    }

    /// The body of a 200 answer, refused unread when it declares more than the limit,
    /// and refused as soon as it grows past it otherwise.
    async fn read(&self, response: http::Response<Incoming>) -> Result<Fetched, FetchError> {
        if response.status() != StatusCode::OK {
            return Err(FetchError::Status(response.status()));
        }
        let declared = response
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|len| len > self.max_size as u64) {
            return Err(FetchError::TooLarge(self.max_size));
        }
        let max_age = max_age(response.headers());
        let body = collect(
            Limited::new(response.into_body(), self.max_size),
            self.max_size,
        )
        .await?;
        Ok(Fetched { body, max_age })
    }
}

/// The whole body, or `TooLarge` as soon as it passes `limit`.
async fn collect(body: Limited<Incoming>, limit: usize) -> Result<Bytes, FetchError> {
    match body.collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => {
            Err(FetchError::TooLarge(limit))
        }
        Err(e) => Err(FetchError::Body(e.to_string())),
    }
}

/// The freshness lifetime of RFC 9111: the smallest `max-age` (a repeated directive is
/// invalid; the smaller is the safe reading) less the `Age` already spent; zero for
/// `no-store` and `no-cache`; `None` when no `max-age` is given.
pub(crate) fn max_age(headers: &HeaderMap) -> Option<Duration> {
    let mut max_age: Option<u64> = None;
    let directives = headers
        .get_all(CACHE_CONTROL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','));
    for directive in directives {
        let (name, argument) = match directive.split_once('=') {
            Some((name, argument)) => (name.trim(), Some(argument.trim().trim_matches('"'))),
            None => (directive.trim(), None),
        };
        if name.eq_ignore_ascii_case("no-store") || name.eq_ignore_ascii_case("no-cache") {
            return Some(Duration::ZERO);
        }
        if name.eq_ignore_ascii_case("max-age") {
            if let Some(secs) = argument.and_then(|a| a.parse::<u64>().ok()) {
                max_age = Some(max_age.map_or(secs, |m| m.min(secs)));
            }
        }
    }
    let age = headers
        .get(AGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(0);
    max_age.map(|m| Duration::from_secs(m.saturating_sub(age)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, value.parse().unwrap());
        }
        map
    }

    #[test]
    fn max_age_reads_the_directive_less_the_age() {
        let h = headers(&[("cache-control", "public, Max-Age=600"), ("age", "100")]);
        assert_eq!(max_age(&h), Some(Duration::from_secs(500)));
        let h = headers(&[("cache-control", "max-age=\"60\"")]);
        assert_eq!(max_age(&h), Some(Duration::from_secs(60)));
    }

    #[test]
    fn max_age_takes_the_smaller_of_two_and_zero_for_no_store() {
        let h = headers(&[
            ("cache-control", "max-age=600"),
            ("cache-control", "max-age=30"),
        ]);
        assert_eq!(max_age(&h), Some(Duration::from_secs(30)));
        let h = headers(&[("cache-control", "max-age=600, no-store")]);
        assert_eq!(max_age(&h), Some(Duration::ZERO));
    }

    #[test]
    fn max_age_is_absent_without_a_usable_directive() {
        assert_eq!(max_age(&headers(&[])), None);
        let h = headers(&[("cache-control", "max-age=soon, public")]);
        assert_eq!(max_age(&h), None);
    }
}
