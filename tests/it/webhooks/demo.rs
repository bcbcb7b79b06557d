//! The demo server with `--webhook-url` and `--webhook-secret`: its key events reach a
//! receiver over TLS, and it serves the failed-events API and documents it.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};

use http::Method;
use keygate::webhooks::WebhookSecret;

use super::*;
use crate::common::services::unique;

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn the_demo_server_sends_signed_webhooks_to_the_url_it_is_given() {
    let ca = TestCa::new();
    let secret = WebhookSecret::generate();
    let text = secret.expose_secret();
    let rx = Receiver::start(&ca, &[&text], SystemTime::now, &[], Answer::Status(200)).await;
    // The server trusts the system's roots: here, this test's CA.
    let roots = std::env::temp_dir().join(format!("{}.pem", unique("webhook_ca")));
    std::fs::write(&roots, &ca.pem).unwrap();
    let exe = std::env::current_exe().unwrap();
    let server = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples/server");
    assert!(
        server.exists(),
        "{} is built by `cargo test`",
        server.display()
    );
    let mut child = Command::new(server)
        .args(["--addr", "127.0.0.1:0", "--webhook-url", &rx.url])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("KEYGATE_WEBHOOK_SECRET", &text)
        .env("SSL_CERT_FILE", &roots)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let _server = Server(child);
    let mut addr: Option<SocketAddr> = None;
    let mut key = None;
    while key.is_none() {
        let line = lines.next().expect("address and key").unwrap();
        if let Some(rest) = line.strip_prefix("listening on http://") {
            addr = Some(rest.split_whitespace().next().unwrap().parse().unwrap());
        }
        key = line.strip_prefix("admin key: ").map(str::to_owned);
    }
    let (addr, key) = (addr.unwrap(), key.unwrap());
    // The admin key's creation is the first event.
    assert!(rx.wait_for(1, Duration::from_secs(30)).await);
    let got = rx.deliveries();
    assert_eq!(got[0].verified, Ok(()));
    let body = payload(&got[0].body);
    assert_eq!(body["type"], "key.created");
    assert_eq!(body["data"]["account_id"], "acct_demo");

    let auth = format!("Bearer {key}");
    let headers = [("authorization", auth.as_str())];
    let failed = crate::common::http(addr, Method::GET, "/v1/webhook-events", &headers, "").await;
    assert_eq!(failed.status, 200, "{}", failed.body);
    assert_eq!(failed.json()["data"], serde_json::json!([]));
    let doc = crate::common::http(addr, Method::GET, "/openapi.json", &[], "").await;
    assert!(doc.json()["paths"]["/v1/webhook-events/{id}/retry"]["post"].is_object());
    let _ = std::fs::remove_file(roots);
}
