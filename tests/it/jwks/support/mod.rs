//! An issuer for the JWKS tests: a JWKS endpoint on loopback, over TLS with a
//! certificate from a CA made here (or over plain HTTP), answering as each test sets
//! it to, and counting the fetches. Its HTTP/1.1 is written by hand from RFC 9112, so
//! that it can misbehave precisely (hang, declare or stream too much).
#![allow(dead_code, unreachable_pub)]

pub mod tokens;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, Notify};
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::TlsAcceptor;

/// What the issuer answers to the next fetches.
#[derive(Clone, Debug)]
pub enum Answer {
    /// 200 with this JWKS document and, when given, this `Cache-Control`.
    Jwks {
        body: String,
        cache_control: Option<String>,
    },
    /// This status with this body, and `Location` pointing at the same URL.
    Status(u16, String),
    /// Reads the request, then never answers (and never closes).
    Hang,
    /// 200 declaring a `Content-Length` of this many bytes, then nothing more.
    Declares(u64),
    /// 200 with a chunked body that never ends; the bytes written are reported on
    /// [`Issuer::streamed`] when the client goes away.
    Endless,
}

/// A CA made for one test, and a server certificate it issued for `127.0.0.1`.
pub struct TestCa {
    pub pem: String,
    cert: CertificateDer<'static>,
    key: PrivatePkcs8KeyDer<'static>,
}

impl TestCa {
    pub fn new(name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        let leaf_key = KeyPair::generate().unwrap();
        let leaf = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
            .unwrap()
            .signed_by(&leaf_key, &ca)
            .unwrap();
        Self {
            pem: ca.pem(),
            cert: leaf.der().clone(),
            key: PrivatePkcs8KeyDer::from(leaf_key.serialize_der()),
        }
    }

    fn acceptor(&self) -> TlsAcceptor {
        let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
        let config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![self.cert.clone()],
                PrivateKeyDer::Pkcs8(self.key.clone_key()),
            )
            .unwrap();
        TlsAcceptor::from(Arc::new(config))
    }
}

/// The running issuer.
pub struct Issuer {
    /// The JWKS URL.
    pub url: String,
    state: Arc<State>,
    streamed: tokio::sync::Mutex<mpsc::UnboundedReceiver<usize>>,
}

struct State {
    fetches: AtomicUsize,
    answer: Mutex<Answer>,
    fetched: Notify,
    streamed: mpsc::UnboundedSender<usize>,
}

impl Issuer {
    /// Serves over TLS with a certificate from `ca`.
    pub async fn tls(ca: &TestCa, answer: Answer) -> Self {
        Self::start(Some(ca.acceptor()), answer).await
    }

    /// Serves over plain HTTP.
    pub async fn plain(answer: Answer) -> Self {
        Self::start(None, answer).await
    }

    async fn start(tls: Option<TlsAcceptor>, answer: Answer) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let scheme = if tls.is_some() { "https" } else { "http" };
        let (tx, rx) = mpsc::unbounded_channel();
        let state = Arc::new(State {
            fetches: AtomicUsize::new(0),
            answer: Mutex::new(answer),
            fetched: Notify::new(),
            streamed: tx,
        });
        let server = state.clone();
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let state = server.clone();
                let tls = tls.clone();
                tokio::spawn(async move {
                    match tls {
                        None => serve(tcp, &state).await,
                        Some(tls) => {
                            // A client that refuses the certificate ends here.
                            if let Ok(stream) = tls.accept(tcp).await {
                                serve(stream, &state).await;
                            }
                        }
                    }
                });
            }
        });
        Self {
            url: format!("{scheme}://127.0.0.1:{port}/.well-known/jwks.json"),
            state,
            streamed: tokio::sync::Mutex::new(rx),
        }
    }

    /// Requests for the JWKS document received so far.
    pub fn fetches(&self) -> usize {
        self.state.fetches.load(Ordering::SeqCst)
    }

    /// Waits until at least `n` requests have been received.
    pub async fn wait_for_fetches(&self, n: usize) {
        loop {
            let notified = self.state.fetched.notified();
            if self.fetches() >= n {
                return;
            }
            notified.await;
        }
    }

    /// Answers later fetches with `answer`.
    pub fn answer(&self, answer: Answer) {
        *self.state.answer.lock().unwrap() = answer;
    }

    /// Serves `jwks` with `Cache-Control: max-age=<max_age>`.
    pub fn serve(&self, jwks: &serde_json::Value, max_age: u64) {
        self.answer(Answer::Jwks {
            body: jwks.to_string(),
            cache_control: Some(format!("public, max-age={max_age}")),
        });
    }

    /// The bytes an [`Answer::Endless`] body had written when its client went away.
    pub async fn streamed(&self) -> usize {
        self.streamed.lock().await.recv().await.unwrap()
    }
}

/// One request, answered as the state says, then the connection is closed.
async fn serve<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S, state: &State) {
    let mut request = Vec::new();
    let mut buf = [0u8; 1024];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => request.extend_from_slice(&buf[..n]),
        }
    }
    assert!(request.starts_with(b"GET /.well-known/jwks.json HTTP/1.1\r\n"));
    let answer = state.answer.lock().unwrap().clone();
    state.fetches.fetch_add(1, Ordering::SeqCst);
    state.fetched.notify_waiters();
    match answer {
        Answer::Jwks {
            body,
            cache_control,
        } => {
            let cache = cache_control
                .map(|c| format!("cache-control: {c}\r\n"))
                .unwrap_or_default();
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n{cache}\
                 content-length: {}\r\nconnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(head.as_bytes()).await;
            let _ = stream.write_all(body.as_bytes()).await;
            let _ = stream.shutdown().await;
        }
        Answer::Status(code, body) => {
            let head = format!(
                "HTTP/1.1 {code} Whatever\r\nlocation: /.well-known/jwks.json\r\n\
                 content-length: {}\r\nconnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(head.as_bytes()).await;
            let _ = stream.write_all(body.as_bytes()).await;
            let _ = stream.shutdown().await;
        }
        Answer::Hang => std::future::pending::<()>().await,
        Answer::Declares(length) => {
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\
                 content-length: {length}\r\n\r\n{{\"keys\":["
            );
            let _ = stream.write_all(head.as_bytes()).await;
            let _ = stream.flush().await;
            std::future::pending::<()>().await
        }
        Answer::Endless => {
            let head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\
                        transfer-encoding: chunked\r\n\r\n";
            let _ = stream.write_all(head.as_bytes()).await;
            let chunk = format!("4000\r\n{}\r\n", " ".repeat(0x4000));
            let mut written = 0;
            while stream.write_all(chunk.as_bytes()).await.is_ok() && stream.flush().await.is_ok() {
                written += 0x4000;
            }
            let _ = state.streamed.send(written);
        }
    }
}
