//! Real PostgreSQL and Redis for tests.
//!
//! Each server is found at `KEYGATE_TEST_DATABASE_URL` / `KEYGATE_TEST_REDIS_URL`
//! (default `postgres://postgres@127.0.0.1:5432/test` and `redis://127.0.0.1:6379`). When
//! it does not answer, a private one is started from the binaries found on this machine
//! (`initdb` and `postgres` under `/usr/lib/postgresql/*/bin` or on `PATH`;
//! `redis-server`) on a free loopback port, and stopped when the test process exits.
//! When neither works the test fails, saying what to install or set: these tests never
//! pass by skipping.
#![allow(dead_code, unreachable_pub)]

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

#[cfg(feature = "postgres")]
#[path = "pg_server.rs"]
mod pg_server;
#[cfg(feature = "postgres")]
#[allow(unused_imports)]
pub use pg_server::PrivatePostgres;

#[cfg(feature = "postgres")]
const DEFAULT_PG: &str = "postgres://postgres@127.0.0.1:5432/test";
#[cfg(feature = "redis")]
const DEFAULT_REDIS: &str = "redis://127.0.0.1:6379";

#[cfg(feature = "postgres")]
/// The server's URL, or why none could be had (kept, so later tests fail fast too).
static PG_URL: OnceLock<Result<String, String>> = OnceLock::new();
#[cfg(feature = "redis")]
static REDIS_URL: OnceLock<Result<String, String>> = OnceLock::new();

/// Runs `start` once; its panic message becomes every caller's failure.
fn once(cell: &'static OnceLock<Result<String, String>>, start: fn() -> String) -> String {
    let outcome = cell.get_or_init(|| {
        std::panic::catch_unwind(start).map_err(|panic| {
            panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "could not start a test server".into())
        })
    });
    match outcome {
        Ok(url) => url.clone(),
        Err(why) => panic!("{why}"),
    }
}
static NEXT: AtomicU64 = AtomicU64::new(0);
/// The private servers' watchdog shells, kept so they are not dropped unwaited.
static WATCHDOGS: Mutex<Vec<Child>> = Mutex::new(Vec::new());

/// A name no other test (in this or another process) uses: `{prefix}_{pid}_{n}_{t}`.
pub fn unique(prefix: &str) -> String {
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_micros();
    format!("{prefix}_{}_{n}_{t}", std::process::id())
}

#[cfg(feature = "postgres")]
/// The URL of a PostgreSQL that answers (superuser, trust authentication).
pub fn postgres_url() -> String {
    once(&PG_URL, || {
        let url =
            std::env::var("KEYGATE_TEST_DATABASE_URL").unwrap_or_else(|_| DEFAULT_PG.to_owned());
        let config: tokio_postgres::Config = url.parse().unwrap_or_else(|e| {
            panic!("KEYGATE_TEST_DATABASE_URL is not a postgres URL ({e}): {url}")
        });
        if pg_answers(&config) {
            return url;
        }
        eprintln!("no PostgreSQL at {url}; starting a private one");
        pg_server::start_private_postgres()
    })
}

#[cfg(feature = "redis")]
/// The URL of a Redis that answers.
pub fn redis_url() -> String {
    once(&REDIS_URL, || {
        let url =
            std::env::var("KEYGATE_TEST_REDIS_URL").unwrap_or_else(|_| DEFAULT_REDIS.to_owned());
        if redis_answers(&url) {
            return url;
        }
        eprintln!("no Redis at {url}; starting a private one");
        start_private_redis()
    })
}

#[cfg(feature = "postgres")]
/// Connection settings for the test database.
pub fn pg_config() -> tokio_postgres::Config {
    postgres_url().parse().expect("checked URL")
}

#[cfg(feature = "postgres")]
/// A superuser connection for setting up and inspecting.
pub async fn pg_admin() -> tokio_postgres::Client {
    let (client, connection) = pg_config()
        .connect(tokio_postgres::NoTls)
        .await
        .expect("connect to the test database");
    tokio::spawn(connection);
    client
}

fn socket_of(host: &str, port: u16) -> Option<SocketAddr> {
    use std::net::ToSocketAddrs;
    (host, port).to_socket_addrs().ok()?.next()
}

fn tcp_answers(addr: Option<SocketAddr>) -> bool {
    addr.is_some_and(|a| TcpStream::connect_timeout(&a, Duration::from_secs(1)).is_ok())
}

#[cfg(feature = "postgres")]
fn pg_answers(config: &tokio_postgres::Config) -> bool {
    let host = match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
        _ => "127.0.0.1".to_owned(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    if !tcp_answers(socket_of(&host, port)) {
        return false;
    }
    // A real login, on a runtime of its own (callers may be inside one).
    let config = config.clone();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            match config.connect(tokio_postgres::NoTls).await {
                Ok((client, conn)) => {
                    tokio::spawn(conn);
                    client.simple_query("SELECT 1").await.is_ok()
                }
                Err(_) => false,
            }
        })
    })
    .join()
    .unwrap_or(false)
}

#[cfg(feature = "redis")]
fn redis_answers(url: &str) -> bool {
    let Ok(client) = redis::Client::open(url) else {
        return false;
    };
    let info = client.get_connection_info();
    let addr = match &info.addr {
        redis::ConnectionAddr::Tcp(host, port) => socket_of(host, *port),
        _ => None,
    };
    tcp_answers(addr)
        && client
            .get_connection_with_timeout(Duration::from_secs(2))
            .and_then(|mut c| redis::cmd("PING").query::<String>(&mut c))
            .is_ok()
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// Runs `program args` in the background, stopped when this process exits: a shell
/// watches our pid and kills the server once we are gone.
/// `cleanup`, if given, is removed after the server stops.
fn spawn_watched(run_as: Option<&str>, program: &Path, args: &[String], cleanup: Option<&Path>) {
    let mut command = String::new();
    for part in std::iter::once(program.display().to_string()).chain(args.iter().cloned()) {
        command.push_str(&format!("'{}' ", part.replace('\'', r"'\''")));
    }
    let script = format!(
        "{command} >/dev/null 2>&1 & child=$!; \
         while [ -d /proc/{parent} ] && kill -0 $child 2>/dev/null; do sleep 1; done; \
         kill $child 2>/dev/null; wait $child; {remove}",
        parent = std::process::id(),
        remove = cleanup.map_or(String::new(), |d| format!("rm -rf '{}'", d.display())),
    );
    let mut cmd = match run_as {
        Some(user) => {
            let mut c = Command::new("runuser");
            c.args(["-u", user, "--", "sh", "-c", &script]);
            c
        }
        None => {
            let mut c = Command::new("sh");
            c.args(["-c", &script]);
            c
        }
    };
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("could not start {}: {e}", program.display()));
    WATCHDOGS.lock().unwrap().push(child);
}

fn find_binary(name: &str, dirs: &[PathBuf]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    dirs.iter()
        .cloned()
        .chain(std::env::split_paths(&path))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

#[cfg(feature = "redis")]
fn start_private_redis() -> String {
    let Some(server) = find_binary("redis-server", &[]) else {
        panic!(
            "Redis is not reachable and no redis-server binary was found. Start Redis on \
             127.0.0.1:6379, set KEYGATE_TEST_REDIS_URL to a reachable server, or install \
             Redis (for example `apt-get install redis-server`)."
        );
    };
    let port = free_port();
    spawn_watched(
        None,
        &server,
        &[
            "--port".into(),
            port.to_string(),
            "--bind".into(),
            "127.0.0.1".into(),
            "--save".into(),
            String::new(),
            "--appendonly".into(),
            "no".into(),
        ],
        None,
    );
    let url = format!("redis://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !redis_answers(&url) {
        assert!(
            Instant::now() < deadline,
            "the private Redis on port {port} did not start within 30 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    url
}

/// Waits for `check` to hold, polling every 5 ms, for at most `limit`.
pub async fn eventually<F, Fut>(limit: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if check().await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
