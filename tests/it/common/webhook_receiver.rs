//! A webhook receiver on loopback, over TLS with a certificate from a CA made here, that
//! checks every delivery with a Standard Webhooks verifier written from the
//! specification (not keygate's signer), answers as the test scripts it, and records
//! what it got.
#![allow(dead_code, unreachable_pub)]

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use bytes::Bytes;
use hmac::{Hmac, Mac};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};
use sha2::Sha256;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio_rustls::rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::TlsAcceptor;

/// Checks one delivery as the Standard Webhooks specification says a receiver must:
/// the timestamp within five minutes of `now`, and one of the space-separated
/// `v1,<base64>` signatures equal (in constant time) to the HMAC-SHA256, keyed with the
/// base64-decoded part of the `whsec_` secret, of `{id}.{timestamp}.{body}`.
pub fn verify(
    secret: &str,
    id: &str,
    timestamp: &str,
    signatures: &str,
    body: &[u8],
    now: SystemTime,
) -> Result<(), String> {
    let key = STANDARD
        .decode(secret.strip_prefix("whsec_").ok_or("not a whsec_ secret")?)
        .map_err(|e| e.to_string())?;
    let ts: u64 = timestamp.parse().map_err(|_| "bad timestamp")?;
    let now = now.duration_since(UNIX_EPOCH).unwrap().as_secs();
    if now.abs_diff(ts) > 300 {
        return Err(format!("timestamp {ts} is more than 5 minutes from {now}"));
    }
    let mut signed = Vec::new();
    signed.extend_from_slice(format!("{id}.{ts}.").as_bytes());
    signed.extend_from_slice(body);
    for entry in signatures.split(' ') {
        let Some(("v1", sig)) = entry.split_once(',') else {
            continue;
        };
        let Ok(sig) = STANDARD.decode(sig) else {
            continue;
        };
        let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
        mac.update(&signed);
        if mac.verify_slice(&sig).is_ok() {
            return Ok(());
        }
    }
    Err("no signature matches".into())
}

/// A CA made for one test, and a certificate it issued for `127.0.0.1`.
pub struct TestCa {
    pub pem: String,
    acceptor: TlsAcceptor,
}

impl TestCa {
    pub fn new() -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "webhook test CA");
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        let leaf_key = KeyPair::generate().unwrap();
        let leaf = CertificateParams::new(vec!["127.0.0.1".to_owned()])
            .unwrap()
            .signed_by(&leaf_key, &ca)
            .unwrap();
        let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
        let config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![leaf.der().clone()],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der())),
            )
            .unwrap();
        Self {
            pem: ca.pem(),
            acceptor: TlsAcceptor::from(Arc::new(config)),
        }
    }
}

/// What the receiver answers.
#[derive(Clone, Copy, Debug)]
pub enum Answer {
    Status(u16),
    /// Never answers.
    Hang,
}

/// One delivery as received.
#[derive(Clone, Debug)]
pub struct Delivery {
    pub id: String,
    pub timestamp: String,
    pub signature: String,
    pub body: String,
    /// The verifier's verdict.
    pub verified: Result<(), String>,
    /// What the receiver answered.
    pub answer: Answer,
}

struct State {
    secrets: Vec<String>,
    now: Box<dyn Fn() -> SystemTime + Send + Sync>,
    script: Mutex<VecDeque<Answer>>,
    then: Answer,
    got: Mutex<Vec<Delivery>>,
    arrived: Notify,
}

/// The running receiver.
pub struct Receiver {
    pub url: String,
    state: Arc<State>,
}

impl Receiver {
    /// Serves over TLS with a certificate of `ca`, verifying with any of `secrets` at
    /// the time `now` gives; answers `script` in order, then `then` for ever.
    pub async fn start(
        ca: &TestCa,
        secrets: &[&str],
        now: impl Fn() -> SystemTime + Send + Sync + 'static,
        script: &[Answer],
        then: Answer,
    ) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(State {
            secrets: secrets.iter().map(|s| (*s).to_owned()).collect(),
            now: Box::new(now),
            script: Mutex::new(script.iter().copied().collect()),
            then,
            got: Mutex::default(),
            arrived: Notify::new(),
        });
        let server = state.clone();
        let acceptor = ca.acceptor.clone();
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let state = server.clone();
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let service = service_fn(move |req| handle(state.clone(), req));
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(tls), service)
                        .await;
                });
            }
        });
        Self {
            url: format!("https://127.0.0.1:{port}/hooks/keygate?token=in-the-url"),
            state,
        }
    }

    /// Every delivery so far.
    pub fn deliveries(&self) -> Vec<Delivery> {
        self.state.got.lock().unwrap().clone()
    }

    /// Waits (bounded by `limit`) until at least `n` deliveries have arrived.
    pub async fn wait_for(&self, n: usize, limit: Duration) -> bool {
        let wait = async {
            loop {
                let arrived = self.state.arrived.notified();
                if self.state.got.lock().unwrap().len() >= n {
                    return;
                }
                arrived.await;
            }
        };
        tokio::time::timeout(limit, wait).await.is_ok()
    }
}

async fn handle(
    state: Arc<State>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    let (id, timestamp, signature) = (
        header("webhook-id"),
        header("webhook-timestamp"),
        header("webhook-signature"),
    );
    let body = req.into_body().collect().await.unwrap().to_bytes();
    let now = (state.now)();
    let verified = state
        .secrets
        .iter()
        .map(|s| verify(s, &id, &timestamp, &signature, &body, now))
        .find(Result::is_ok)
        .unwrap_or_else(|| Err("no secret verifies it".into()));
    let answer = state
        .script
        .lock()
        .unwrap()
        .pop_front()
        .unwrap_or(state.then);
    state.got.lock().unwrap().push(Delivery {
        id,
        timestamp,
        signature,
        body: String::from_utf8_lossy(&body).into_owned(),
        verified,
        answer,
    });
    state.arrived.notify_waiters();
    match answer {
        Answer::Status(code) => Ok(Response::builder()
            .status(StatusCode::from_u16(code).unwrap())
            .body(Full::new(Bytes::from_static(b"ok")))
            .unwrap()),
        Answer::Hang => std::future::pending().await,
    }
}
