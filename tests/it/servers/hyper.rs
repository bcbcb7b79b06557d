//! keygate in front of a plain hyper 1.x server that inserts `PeerAddr` itself, called
//! over loopback TCP with a hyper client.

use crate::common::*;

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http::{Method, Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use keygate::client_ip::PeerAddr;
use keygate::{Identity, KeygateLayer, NewKey};
use tower::ServiceBuilder;

async fn whoami(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let body = match req.extensions().get::<Identity>() {
        Some(identity) => serde_json::to_string(identity).unwrap(),
        None => "\"anonymous\"".to_owned(),
    };
    Ok(Response::new(Full::new(Bytes::from(body))))
}

/// Serves `layer` over [`whoami`] with plain hyper on a random loopback port. When
/// `insert_peer` is set, the accept loop inserts [`PeerAddr`] as the example does.
async fn serve_hyper(layer: KeygateLayer, insert_peer: bool) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (stream, remote) = listener.accept().await.unwrap();
            let service = ServiceBuilder::new()
                .map_request(move |mut req: Request<Incoming>| {
                    if insert_peer {
                        req.extensions_mut().insert(PeerAddr(remote));
                    }
                    req
                })
                .layer(layer.clone())
                .service_fn(whoami);
            tokio::spawn(async move {
                let _ = auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), TowerToHyperService::new(service))
                    .await;
            });
        }
    });
    addr
}

async fn get_with(addr: SocketAddr, path: &str, key: Option<&str>) -> Answer {
    match key {
        Some(key) => {
            http(
                addr,
                Method::GET,
                path,
                &[("authorization", &bearer(key))],
                "",
            )
            .await
        }
        None => http(addr, Method::GET, path, &[], "").await,
    }
}

#[tokio::test]
async fn a_valid_key_reaches_the_service_with_its_identity_on_any_path() {
    let h = Harness::new();
    let (id, key) = h.key("acct_1", &["admin"]).await;
    let addr = serve_hyper(h.gate.layer(), true).await;
    for path in ["/", "/v1/whoami", "/any/other/path?x=1"] {
        let ok = get_with(addr, path, Some(&key)).await;
        assert_eq!(ok.status, 200, "{path}: {}", ok.body);
        let identity = ok.json();
        assert_eq!(identity["id"], id.as_str());
        assert_eq!(identity["account_id"], "acct_1");
        assert_eq!(identity["scopes"], serde_json::json!(["admin"]));
    }
}

#[tokio::test]
async fn an_invalid_or_missing_key_is_401_on_every_path() {
    let h = Harness::new();
    let (_, key) = h.key("acct_1", &["admin"]).await;
    let addr = serve_hyper(h.gate.layer(), true).await;
    let unknown = h
        .gate
        .format()
        .generate(&h.gate.format().prefixes()[0])
        .unwrap();
    assert_ne!(unknown.expose_secret(), key);

    let invalid = get_with(addr, "/v1/whoami", Some(unknown.expose_secret())).await;
    assert_eq!(invalid.status, 401);
    assert_eq!(invalid.code(), "invalid_api_key");
    assert!(invalid
        .header("www-authenticate")
        .unwrap()
        .contains("error=\"invalid_token\""));

    let missing = get_with(addr, "/elsewhere", None).await;
    assert_eq!(missing.status, 401);
    assert_eq!(missing.code(), "unauthorized");
}

#[tokio::test]
async fn the_ip_allowlist_uses_the_inserted_peer_addr() {
    let h = Harness::new();
    let (loopback_id, loopback) = h
        .key_with("acct_1", NewKey::named("loopback only").ips(["127.0.0.1"]))
        .await;
    let (_, private) = h
        .key_with("acct_1", NewKey::named("office only").ips(["10.0.0.0/8"]))
        .await;
    let addr = serve_hyper(h.gate.layer(), true).await;

    let ok = get_with(addr, "/", Some(&loopback)).await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(ok.json()["id"], loopback_id.as_str());

    let refused = get_with(addr, "/", Some(&private)).await;
    assert_eq!(refused.status, 403);
    assert_eq!(refused.code(), "ip_not_allowed");
}

#[tokio::test]
async fn without_an_inserted_peer_addr_an_allowlisted_key_fails_closed() {
    let h = Harness::new();
    let (_, loopback) = h
        .key_with("acct_1", NewKey::named("loopback only").ips(["127.0.0.1"]))
        .await;
    let (_, anywhere) = h.key("acct_1", &["admin"]).await;
    let addr = serve_hyper(h.gate.layer(), false).await;

    // hyper alone gives no peer address: the client IP is unknown, so a key restricted
    // to addresses is refused, while a key with no allowlist still works.
    let refused = get_with(addr, "/", Some(&loopback)).await;
    assert_eq!(refused.status, 403);
    assert_eq!(refused.code(), "ip_not_allowed");
    assert_eq!(get_with(addr, "/", Some(&anywhere)).await.status, 200);
}
