//! Helpers of the key console's browser tests: a host application serving the console
//! and a protected API on a manual clock, headless Chromium through chromedriver, and a
//! raw HTTP/1.1 request to the API.
//!
//! The tests never skip: without `chromedriver` and `chromium` on the machine they fail
//! and say how to install them.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use fantoccini::{Client, ClientBuilder};
use keygate::clock::{Clock, ManualClock};
use keygate::console::usage::{LogEntry, MemoryUsage};
use keygate::console::{Console, Permission, SessionGrant};
use keygate::scope::ScopeSet;
use keygate::{Environment, Identity, KeyManager, Keygate, MemoryStore};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The host application: the console at `/console`, a protected API at `/v1/…`.
pub struct Host {
    pub addr: SocketAddr,
    pub gate: Keygate,
    pub manager: KeyManager,
    pub console: Console,
    pub usage: Arc<MemoryUsage>,
    pub time: ManualClock,
}

/// Records each request the gate admitted, as the host's own activity log would.
async fn record(usage: Arc<MemoryUsage>, clock: Clock, req: Request, next: Next) -> Response {
    let identity = req.extensions().get::<Identity>().cloned();
    let method = req.method().to_string();
    let path = req.uri().path().to_owned();
    let res = next.run(req).await;
    if let Some(identity) = identity {
        usage.record(LogEntry {
            at: clock.now(),
            key: identity.key_id().clone(),
            account: identity.account_id().clone(),
            outcome: "ok".into(),
            method,
            path,
            status: res.status().as_u16(),
        });
    }
    res
}

impl Host {
    /// Starts the host on a loopback port, its clock standing at the current time.
    pub async fn start() -> Self {
        let (clock, time) = Clock::manual(SystemTime::now());
        let (gate, manager) = Keygate::managed(MemoryStore::new())
            .clock(clock.clone())
            .build();
        let usage = Arc::new(MemoryUsage::default());
        let console = Console::builder(manager.clone())
            .mount_path("/console")
            .usage_shared(usage.clone())
            .build();
        let recorder = {
            let (usage, clock) = (usage.clone(), clock.clone());
            axum::middleware::from_fn(move |req, next| {
                record(usage.clone(), clock.clone(), req, next)
            })
        };
        let api = Router::new()
            .route("/v1/orders", get(|| async { "[]" }))
            .layer(recorder)
            .layer(gate.layer());
        // A route for the `admin` scope alone: keys without it are refused (403).
        let admin = Router::new()
            .route("/v1/admin", get(|| async { "{}" }))
            .layer(gate.layer().require_any(["admin"]));
        let app = Router::new()
            .merge(api)
            .merge(admin)
            .nest("/console", console.router());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self {
            addr,
            gate,
            manager,
            console,
            usage,
            time,
        }
    }

    /// `http://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// A one-time login URL for a session with every permission in `account`'s test
    /// environment, granting `read` and `write`, lasting a day.
    pub fn login_url(&self, account: &str) -> String {
        let grant = SessionGrant::new(account.into(), Some(Environment::Test))
            .user("ada@example.com")
            .permit(Permission::ALL)
            .grantable_scopes(ScopeSet::parse(["read", "write"]).unwrap())
            .ttl(Duration::from_secs(24 * 3600));
        self.url(self.console.session(grant).expose_path())
    }

    /// The status of `GET <path>` with `key` as a bearer token.
    pub async fn call(&self, path: &str, key: &str) -> u16 {
        let mut stream = tokio::net::TcpStream::connect(self.addr).await.unwrap();
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {key}\r\nConnection: close\r\n\r\n",
            self.addr
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).await.unwrap();
        response
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no status in {response:?}"))
    }
}

/// A chromedriver process, ended when dropped.
pub struct Driver {
    child: Child,
    pub port: u16,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const CHROMEDRIVER: &str = "chromedriver";
const INSTALL: &str = "install them with `apt-get install -y chromium chromium-driver`";

/// Starts chromedriver on a free port and opens headless Chromium through it, its
/// window 1280×860.
pub async fn browser() -> (Driver, Client) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start chromedriver ({e}): {INSTALL}"));
    let driver = Driver { child, port };
    let chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .unwrap_or_else(|| panic!("no chromium binary: {INSTALL}"));
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "binary": chromium,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                     "--disable-background-networking", "--no-first-run",
                     "--disable-dev-shm-usage", "--window-size=1280,860",
                     "--force-device-scale-factor=1"],
        }),
    );
    let url = format!("http://127.0.0.1:{port}");
    let mut last = None;
    for _ in 0..100 {
        match ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps.clone())
            .connect(&url)
            .await
        {
            Ok(client) => return (driver, client),
            Err(e) => {
                last = Some(e.to_string());
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    panic!("chromedriver did not open a session: {last:?}");
}
