//! Where an outgoing request goes: a URL checked once (`https`, or `http` when allowed;
//! a host; no user information), and a connection to it, TLS (rustls) or plain.

use std::sync::Arc;

use http::Uri;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::rustls::{ClientConfig, RootCertStore};
use tokio_rustls::TlsConnector;

use super::{roots, FetchConfigError};

/// A connection to an [`Endpoint`]: TCP, or TLS over it.
pub(crate) trait Connection: AsyncRead + AsyncWrite + Unpin + Send + 'static {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Connection for T {}

/// Why no connection was made.
#[derive(Debug)]
pub(crate) enum ConnectError {
    /// The TCP connection failed.
    Connect(std::io::Error),
    /// The TLS handshake failed.
    Tls(std::io::Error),
}

/// A checked URL and how to reach it.
pub(crate) struct Endpoint {
    /// `scheme://host[:port]`, for logs and `Debug`: never the path or query, which
    /// some URLs use for a token.
    pub(crate) origin: String,
    /// The connection's host: a name, or an IP address without brackets.
    host: String,
    port: u16,
    /// The `Host` header.
    pub(crate) authority: String,
    /// The request target: the path and query.
    pub(crate) path: String,
    /// `None` for plain HTTP.
    tls: Option<(TlsConnector, ServerName<'static>)>,
}

impl Endpoint {
    /// Checks `url`: `https`, or `http` when `allow_http`; a host; no user information.
    /// `roots` are the trusted authorities for `https` (the system's when `None`).
    pub(crate) fn new(
        url: &str,
        allow_http: bool,
        roots: Option<RootCertStore>,
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
        let tls = if https {
            let roots = match roots {
                Some(roots) => roots,
                None => roots::system()?,
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
        })
    }

    /// A new connection: TCP, then the TLS handshake for `https`.
    pub(crate) async fn connect(&self) -> Result<Box<dyn Connection>, ConnectError> {
        let tcp = TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(ConnectError::Connect)?;
        match &self.tls {
            None => Ok(Box::new(tcp)),
            Some((connector, name)) => {
                let tls = connector
                    .connect(name.clone(), tcp)
                    .await
                    .map_err(ConnectError::Tls)?;
                Ok(Box::new(tls))
            }
        }
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
