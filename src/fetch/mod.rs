//! One GET of a small document from a configured URL (a JWKS, a list of public keys):
//! HTTPS (rustls) or, when allowed, plain HTTP; bounded in time and size; with the
//! lifetime its `Cache-Control` gives it. Redirects are not followed.

pub(crate) mod roots;

use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::{select, Either};
use http::header::{ACCEPT, AGE, CACHE_CONTROL, CONTENT_LENGTH, HOST, USER_AGENT};
use http::{HeaderMap, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Empty, LengthLimitError, Limited};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::rustls::{ClientConfig, RootCertStore};
use tokio_rustls::TlsConnector;

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
    /// `scheme://host[:port]`, for logs and `Debug` (never the path or query).
    pub(crate) origin: String,
    /// The connection's host: a name, or an IP address without brackets.
    host: String,
    port: u16,
    /// The `Host` header.
    authority: String,
    path: String,
    /// `None` for plain HTTP.
    tls: Option<(TlsConnector, ServerName<'static>)>,
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
    /// Checks `url`: `https`, or `http` when `allow_http`; a host; no user information.
    /// `accept` is the `Accept` header sent.
    pub(crate) fn new(
        url: &str,
        allow_http: bool,
        roots: Option<RootCertStore>,
        timeout: Duration,
        max_size: usize,
        accept: &'static str,
    ) -> Result<Self, FetchConfigError> {
        let invalid = |why: &str| FetchConfigError::InvalidUrl(why.to_owned());
        let uri = Uri::try_from(url).map_err(|e| invalid(&e.to_string()))?;
        let authority = uri.authority().ok_or_else(|| invalid("no host"))?;
        if authority.as_str().contains('@') {
            return Err(invalid("user information in the URL is not supported"));
        }
        let https = match uri.scheme_str() {
            Some("https") => true,
            Some("http") if allow_http => false,
            Some("http") => return Err(FetchConfigError::PlainHttp),
            _ => return Err(invalid("the scheme must be https")),
        };
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let port = authority.port_u16().unwrap_or(if https { 443 } else { 80 });
        let tls = match (https, roots) {
            (false, _) => None,
            (true, roots) => {
                let roots = match roots {
                    Some(roots) => roots,
                    None => roots::system()?,
                };
                let name = ServerName::try_from(host.clone())
                    .map_err(|_| invalid("the host is not a valid TLS server name"))?;
                Some((TlsConnector::from(Arc::new(client_config(roots)?)), name))
            }
        };
        let scheme = if https { "https" } else { "http" };
        Ok(Self {
            origin: format!("{scheme}://{authority}"),
            host,
            port,
            authority: authority.as_str().to_owned(),
            path: uri
                .path_and_query()
                .map_or_else(|| "/".to_owned(), |p| p.as_str().to_owned()),
            tls,
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
        let tcp = TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(FetchError::Connect)?;
        match &self.tls {
            None => self.exchange(tcp).await,
            Some((connector, name)) => {
                let tls = connector
                    .connect(name.clone(), tcp)
                    .await
                    .map_err(FetchError::Tls)?;
                self.exchange(tls).await
            }
        }
    }

    /// One GET over `stream`, driving the connection and the response together so
    /// that dropping this future (the timeout) closes everything.
    async fn exchange<S>(&self, stream: S) -> Result<Fetched, FetchError>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake::<_, Empty<Bytes>>(TokioIo::new(stream)).await?;
        let request = Request::get(self.path.as_str())
            .header(HOST, self.authority.as_str())
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

fn client_config(roots: RootCertStore) -> Result<ClientConfig, FetchConfigError> {
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    Ok(ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| FetchConfigError::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth())
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
