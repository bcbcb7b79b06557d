//! The demo server as a separate process: it starts from the example configuration file,
//! prints its admin key, serves the Tenuo routes and the management API, and exposes
//! Prometheus metrics at `/metrics`.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};

use crate::common::*;

/// A running demo server, killed on drop.
struct Server {
    child: Child,
    addr: SocketAddr,
    admin_key: String,
    console_url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The example binary `cargo test` built next to this test's own binary.
fn example(name: &str) -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap();
    let path = dir.join("examples").join(name);
    assert!(path.exists(), "{} is built by `cargo test`", path.display());
    path
}

fn start(args: &[&str]) -> Server {
    let mut child = Command::new(example("server"))
        .args(["--addr", "127.0.0.1:0"])
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the demo server starts");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut addr = None;
    let mut admin_key = None;
    let mut console_url = None;
    while admin_key.is_none() || console_url.is_none() {
        let line = lines
            .next()
            .expect("the server prints its address and key")
            .unwrap();
        if let Some(rest) = line.strip_prefix("listening on http://") {
            addr = Some(rest.split_whitespace().next().unwrap().parse().unwrap());
        }
        if let Some(key) = line.strip_prefix("admin key: ") {
            admin_key = Some(key.to_owned());
        }
        if let Some(url) = line.strip_prefix("console: ") {
            console_url = Some(url.to_owned());
        }
    }
    Server {
        child,
        addr: addr.expect("an address line"),
        admin_key: admin_key.unwrap(),
        console_url: console_url.unwrap(),
    }
}

#[tokio::test]
async fn the_server_starts_from_the_example_config_and_exports_metrics() {
    let server = start(&["--config", "examples/keygate.toml"]);
    let auth = bearer(&server.admin_key);
    let me = http(
        server.addr,
        http::Method::GET,
        "/v1/whoami",
        &[("authorization", &auth)],
        "",
    )
    .await;
    assert_eq!(me.status, 200, "{me:?}");
    assert_eq!(me.json()["environment"], "test");
    let refused = http(server.addr, http::Method::GET, "/v1/whoami", &[], "").await;
    assert_eq!(refused.status, 401);

    let metrics = http(server.addr, http::Method::GET, "/metrics", &[], "").await;
    assert_eq!(metrics.status, 200);
    assert!(
        metrics
            .body
            .contains("keygate_decisions_total{outcome=\"ok\"} 1"),
        "{}",
        metrics.body
    );
    assert!(metrics
        .body
        .contains("keygate_decisions_total{outcome=\"unauthorized\"} 1"));
    assert!(metrics.body.contains("keygate_store_call_seconds"));
    assert!(!metrics.body.contains(&server.admin_key));
}

#[tokio::test]
async fn a_bad_config_file_stops_the_server_with_a_message() {
    let dir = std::env::temp_dir().join(format!("keygate-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bad.toml");
    std::fs::write(&path, "[cache]\npositive_tll = \"1s\"\n").unwrap();
    let out = Command::new(example("server"))
        .args(["--addr", "127.0.0.1:0", "--config", path.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("positive_tll"), "{stderr}");
}

#[tokio::test]
async fn the_health_route_answers_200_with_every_component_as_json() {
    let server = start(&["--config", "examples/keygate.toml"]);
    let health = http(server.addr, http::Method::GET, "/health", &[], "").await;
    assert_eq!(health.status, 200, "{health:?}");
    assert_eq!(
        health.json(),
        serde_json::json!({
            "status": "ok",
            "healthy": true,
            "store": "reachable",
            "listener": "not_configured",
            "shared_limiter": "not_configured",
        })
    );
}

#[cfg(feature = "redis")]
#[tokio::test]
async fn the_health_route_answers_503_once_the_shared_limiters_redis_is_found_down() {
    use crate::common::redis_support::{shared_url, Proxy};

    let proxy = Proxy::start(&shared_url()).await;
    proxy.cut();
    let url = proxy.url();
    let server = start(&["--config", "examples/keygate.toml", "--redis-url", &url]);
    let auth = bearer(&server.admin_key);
    let before = http(server.addr, http::Method::GET, "/health", &[], "").await;
    assert_eq!(before.status, 200, "no refill tried yet: {before:?}");
    assert_eq!(before.json()["shared_limiter"], "up");

    // Requests make the refills that fail; after three the breaker opens.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let health = loop {
        let me = http(
            server.addr,
            http::Method::GET,
            "/v1/whoami",
            &[("authorization", &auth)],
            "",
        )
        .await;
        assert_ne!(me.status, 500, "{me:?}");
        let health = http(server.addr, http::Method::GET, "/health", &[], "").await;
        if health.status != 200 {
            break health;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the health route never reported Redis down"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    };
    assert_eq!(health.status, 503, "{health:?}");
    let body = health.json();
    assert_eq!(body["status"], "unavailable");
    assert_eq!(body["healthy"], false);
    assert_eq!(body["store"], "reachable");
    assert!(
        matches!(body["shared_limiter"].as_str(), Some("down" | "probing")),
        "{body}"
    );
}

#[tokio::test]
async fn the_demo_server_revokes_a_key_reported_to_its_secret_scanning_endpoint() {
    use crate::scanning::support::{alert, document, labels, GithubKey};
    let github = GithubKey::new("github-demo-key");
    let dir = std::env::temp_dir().join(crate::common::services::unique("keygate-scanning-keys"));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("keys.json");
    std::fs::write(&file, document(&[&github])).unwrap();
    let server = start(&["--scanning-keys", file.to_str().unwrap()]);
    let whoami = |key: String| async move {
        http(
            server.addr,
            http::Method::GET,
            "/v1/whoami",
            &[("authorization", &bearer(&key))],
            "",
        )
        .await
    };
    assert_eq!(whoami(server.admin_key.clone()).await.status, 200);
    let body = alert(&[&server.admin_key]);
    let signature = github.sign(body.as_bytes());
    let headers = [
        ("content-type", "application/json"),
        ("github-public-key-identifier", github.id.as_str()),
        ("github-public-key-signature", signature.as_str()),
    ];
    let answer = http(
        server.addr,
        http::Method::POST,
        "/v1/secret-scanning",
        &headers,
        &body,
    )
    .await;
    assert_eq!(labels(&answer), ["true_positive"]);
    let refused = whoami(server.admin_key.clone()).await;
    assert_eq!(
        (refused.status.as_u16(), refused.code().as_str()),
        (401, "revoked_api_key")
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn the_server_prints_a_one_time_console_url_for_the_demo_account() {
    let server = start(&["--config", "examples/keygate.toml"]);
    let prefix = format!("http://{}/console/login/", server.addr);
    let path = server
        .console_url
        .strip_prefix(&format!("http://{}", server.addr))
        .unwrap_or_else(|| panic!("{} under {prefix}", server.console_url));
    let login = http(server.addr, http::Method::GET, path, &[], "").await;
    assert_eq!(login.status, 303, "{login:?}");
    let cookie = login.header("set-cookie").unwrap().to_owned();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"));
    let cookie = cookie.split(';').next().unwrap().to_owned();
    let keys = http(
        server.addr,
        http::Method::GET,
        "/console/keys",
        &[("cookie", &cookie)],
        "",
    )
    .await;
    assert_eq!(keys.status, 200);
    assert!(keys.body.contains("demo admin key"), "{}", keys.body);
    let again = http(server.addr, http::Method::GET, path, &[], "").await;
    assert_eq!(again.status, 401, "the link works once");
}
