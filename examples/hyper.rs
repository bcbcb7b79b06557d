//! keygate in front of a plain hyper 1.x server, with no framework.
//!
//! ```text
//! cargo run --example hyper [-- --addr 127.0.0.1:3001]
//! ```
//!
//! Every path requires a key. At start-up it creates one admin key and prints
//! `admin key: <key>`. Then:
//!
//! ```text
//! curl -H "Authorization: Bearer $KEY" http://127.0.0.1:3001/anything
//! ```
//!
//! hyper does not tell a service who its peer is, so the accept loop inserts
//! [`keygate::client_ip::PeerAddr`] into every request itself; keygate's default client-IP resolver
//! reads it for per-key IP allowlists and audit events.

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use keygate::client_ip::PeerAddr;
use keygate::{Environment, Identity, Keygate, MemoryStore, NewKey};
use tower::ServiceBuilder;

fn parse_args() -> Result<SocketAddr, String> {
    let mut addr: SocketAddr = "127.0.0.1:3001".parse().expect("valid");
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--addr" => {
                let v = args.next().ok_or("--addr needs a value")?;
                addr = v
                    .parse()
                    .map_err(|_| format!("--addr must be HOST:PORT, got '{v}'"))?;
            }
            "-h" | "--help" => return Err("usage: hyper [--addr HOST:PORT]".into()),
            other => return Err(format!("unknown argument '{other}'; try --help")),
        }
    }
    Ok(addr)
}

/// The application: answers every path with the caller's identity as JSON.
async fn whoami(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    // The layer only lets a request through with an identity attached.
    let body = match req.extensions().get::<Identity>() {
        Some(identity) => serde_json::to_vec(identity).expect("serializable"),
        None => b"null".to_vec(),
    };
    let mut res = Response::new(Full::new(Bytes::from(body)));
    res.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    Ok(res)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,keygate=info".into()),
        )
        .init();

    let (gate, manager) = Keygate::managed(MemoryStore::new())
        .environment(Environment::Test)
        .build();
    let admin = manager
        .create(
            "acct_demo".into(),
            NewKey::named("demo admin key").scopes(["admin"]),
        )
        .await?;

    let listener = match tokio::net::TcpListener::bind(addr).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("cannot listen on {addr}: {e}");
            std::process::exit(1);
        }
    };
    let local = listener.local_addr()?;
    println!("listening on http://{local} (test environment)");
    println!("admin key: {}", admin.key.expose_secret());

    let layer = gate.layer();
    loop {
        let (stream, remote) = match listener.accept().await {
            Ok(conn) => conn,
            Err(e) => {
                eprintln!("accept failed: {e}");
                continue;
            }
        };
        let service = ServiceBuilder::new()
            // hyper knows nothing of the peer: tell keygate who it is.
            .map_request(move |mut req: Request<Incoming>| {
                req.extensions_mut().insert(PeerAddr(remote));
                req
            })
            .layer(layer.clone())
            .service_fn(whoami);
        tokio::spawn(async move {
            let served = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), TowerToHyperService::new(service))
                .await;
            if let Err(e) = served {
                eprintln!("connection from {remote} failed: {e}");
            }
        });
    }
}
