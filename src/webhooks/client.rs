//! One delivery: a POST over HTTPS (rustls) or, when allowed, plain HTTP, bounded in
//! time. The answer's body is never read.

use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::{select, Either};
use http::header::{CONTENT_TYPE, HOST, RETRY_AFTER, USER_AGENT};
use http::{Request, StatusCode, Uri};
use http_body_util::Full;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{ClientConfig, RootCertStore};
use tokio_rustls::TlsConnector;

use super::WebhookConfigError;

/// The receiver: checked once, when [`super::Webhooks`] is built.
pub(crate) struct Receiver {
    /// `scheme://host[:port]`, for logs and `Debug` (never the path or query, which
    /// some receivers use for a token).
    pub(crate) origin: String,
    host: String,
    port: u16,
    authority: String,
    path: String,
    tls: Option<(TlsConnector, ServerName<'static>)>,
    timeout: Duration,
}

/// The headers of one try.
pub(crate) struct Signed<'a> {
    pub(crate) id: &'a str,
    pub(crate) timestamp: u64,
    pub(crate) signature: String,
    pub(crate) body: &'a str,
}

/// How a try ended without a 2xx. Recorded on the event; never holds the URL's path.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DeliveryError {
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("cannot connect: {0}")]
    Connect(std::io::Error),
    #[error("TLS handshake failed: {0}")]
    Tls(std::io::Error),
    #[error("HTTP exchange failed: {0}")]
    Http(#[from] hyper::Error),
    #[error("answered {status}")]
    Status {
        status: StatusCode,
        retry_after: Option<Duration>,
    },
}

impl Receiver {
    /// Checks `url`: `https`, or `http` when `allow_http`; a host; no user information.
    pub(crate) fn new(
        url: &str,
        allow_http: bool,
        roots_pem: &[Vec<u8>],
        timeout: Duration,
    ) -> Result<Self, WebhookConfigError> {
        let invalid = |why: &str| WebhookConfigError::InvalidUrl(why.to_owned());
        let uri = Uri::try_from(url).map_err(|e| invalid(&e.to_string()))?;
        let authority = uri.authority().ok_or_else(|| invalid("no host"))?;
        if authority.as_str().contains('@') {
            return Err(invalid(
                "user information in a webhook URL is not supported",
            ));
        }
        let https = match uri.scheme_str() {
            Some("https") => true,
            Some("http") if allow_http => false,
            Some("http") => return Err(WebhookConfigError::PlainHttp),
            _ => return Err(invalid("the scheme must be https")),
        };
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let port = authority.port_u16().unwrap_or(if https { 443 } else { 80 });
        let tls = if https {
            let roots = if roots_pem.is_empty() {
                system_roots()?
            } else {
                roots_from_pem(roots_pem)?
            };
            let name = ServerName::try_from(host.clone())
                .map_err(|_| invalid("the host is not a valid TLS server name"))?;
            Some((TlsConnector::from(Arc::new(client_config(roots)?)), name))
        } else {
            None
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
            timeout,
        })
    }

    /// POSTs one signed payload; `Ok` only for a 2xx answer within the timeout.
    pub(crate) async fn post(&self, signed: &Signed<'_>) -> Result<StatusCode, DeliveryError> {
        tokio::time::timeout(self.timeout, self.post_unbounded(signed))
            .await
            .map_err(|_| DeliveryError::Timeout(self.timeout))?
    }

    async fn post_unbounded(&self, signed: &Signed<'_>) -> Result<StatusCode, DeliveryError> {
        let tcp = TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(DeliveryError::Connect)?;
        match &self.tls {
            None => self.exchange(tcp, signed).await,
            Some((connector, name)) => {
                let tls = connector
                    .connect(name.clone(), tcp)
                    .await
                    .map_err(DeliveryError::Tls)?;
                self.exchange(tls, signed).await
            }
        }
    }

    async fn exchange<S>(&self, stream: S, signed: &Signed<'_>) -> Result<StatusCode, DeliveryError>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake::<_, Full<Bytes>>(TokioIo::new(stream)).await?;
        let request = Request::post(self.path.as_str())
            .header(HOST, self.authority.as_str())
            .header(CONTENT_TYPE, "application/json")
            .header(USER_AGENT, concat!("keygate/", env!("CARGO_PKG_VERSION")))
            .header("webhook-id", signed.id)
            .header("webhook-timestamp", signed.timestamp.to_string())
            .header("webhook-signature", signed.signature.as_str())
            .body(Full::new(Bytes::copy_from_slice(signed.body.as_bytes())));
        let Ok(request) = request else {
            unreachable!("every header value is ASCII made here")
        };
        let exchange = pin!(async { sender.send_request(request).await });
        let response = match select(exchange, pin!(connection)).await {
            Either::Left((response, _)) => response?,
            Either::Right((_, exchange)) => exchange.await?,
        };
        let status = response.status();
        if status.is_success() {
            return Ok(status);
        }
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        Err(DeliveryError::Status {
            status,
            retry_after,
        })
    }
}

fn client_config(roots: RootCertStore) -> Result<ClientConfig, WebhookConfigError> {
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    Ok(ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| WebhookConfigError::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// The operating system's trusted roots; refused when none can be loaded.
fn system_roots() -> Result<RootCertStore, WebhookConfigError> {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    roots.add_parsable_certificates(found.certs);
    if roots.is_empty() {
        return Err(WebhookConfigError::Tls(
            "no trusted root certificates found on this system".into(),
        ));
    }
    Ok(roots)
}

/// Every `CERTIFICATE` in the PEM documents; each must hold at least one.
fn roots_from_pem(documents: &[Vec<u8>]) -> Result<RootCertStore, WebhookConfigError> {
    let invalid = |why: String| WebhookConfigError::Tls(why);
    let mut roots = RootCertStore::empty();
    for pem in documents {
        let certs = CertificateDer::pem_slice_iter(pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| invalid(e.to_string()))?;
        if certs.is_empty() {
            return Err(invalid("no CERTIFICATE in the PEM document".into()));
        }
        for cert in certs {
            roots.add(cert).map_err(|e| invalid(e.to_string()))?;
        }
    }
    Ok(roots)
}
