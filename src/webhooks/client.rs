//! One delivery: a POST over HTTPS (rustls) or, when allowed, plain HTTP, bounded in
//! time. The answer's body is never read.

use std::pin::pin;
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::{select, Either};
use http::header::{CONTENT_TYPE, HOST, RETRY_AFTER, USER_AGENT};
use http::{Request, StatusCode};
use http_body_util::Full;
use hyper_util::rt::TokioIo;

use super::WebhookConfigError;
use crate::fetch::{roots, ConnectError, Connection, Endpoint, FetchConfigError};

/// The receiver: checked once, when [`super::Webhooks`] is built.
pub(crate) struct Receiver {
    endpoint: Endpoint,
    /// `scheme://host[:port]`, for logs and `Debug` (never the path or query, which
    /// some receivers use for a token).
    pub(crate) origin: String,
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
    /// `roots_pem` are the trusted authorities (the system's when empty).
    pub(crate) fn new(
        url: &str,
        allow_http: bool,
        roots_pem: &[Vec<u8>],
        timeout: Duration,
    ) -> Result<Self, WebhookConfigError> {
        let roots = if roots_pem.is_empty() {
            None
        } else {
            Some(roots::from_pem(roots_pem).map_err(config_error)?)
        };
        let endpoint = Endpoint::new(url, allow_http, roots).map_err(config_error)?;
        Ok(Self {
            origin: endpoint.origin.clone(),
            endpoint,
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
        let stream = self.endpoint.connect().await.map_err(|e| match e {
            ConnectError::Connect(e) => DeliveryError::Connect(e),
            ConnectError::Tls(e) => DeliveryError::Tls(e),
        })?;
        self.exchange(stream, signed).await
    }

    async fn exchange(
        &self,
        stream: Box<dyn Connection>,
        signed: &Signed<'_>,
    ) -> Result<StatusCode, DeliveryError> {
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake::<_, Full<Bytes>>(TokioIo::new(stream)).await?;
        let request = Request::post(self.endpoint.path.as_str())
            .header(HOST, self.endpoint.authority.as_str())
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

/// The webhook settings' reading of why a URL or its roots are unusable.
fn config_error(error: FetchConfigError) -> WebhookConfigError {
    match error {
        FetchConfigError::InvalidUrl(why) => WebhookConfigError::InvalidUrl(why),
        FetchConfigError::PlainHttp => WebhookConfigError::PlainHttp,
        FetchConfigError::InvalidRootCertificates(why)
        | FetchConfigError::NoSystemRoots(why)
        | FetchConfigError::Tls(why) => WebhookConfigError::Tls(why),
    }
}
