//! The demo server meters a key created with `credits` through its admin API: in memory
//! (the in-process ledger), and in cluster mode (two processes sharing PostgreSQL's
//! ledger), with 429 `usage_exceeded` and `Retry-After` until the next refill at zero,
//! and the unspent leases returned to the ledger when a server stops on SIGTERM.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::Method;
use serde_json::json;

use crate::common::{bearer, http, Answer};

/// A running demo server, killed on drop.
struct Server {
    child: Child,
    addr: SocketAddr,
    admin_key: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(args: &[&str]) -> Server {
    let exe = std::env::current_exe().unwrap();
    let path = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples/server");
    assert!(path.exists(), "{} is built by `cargo test`", path.display());
    let mut child = Command::new(path)
        .args(["--addr", "127.0.0.1:0"])
        .args(args)
        .env("RUST_LOG", "error")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the demo server starts");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let (mut addr, mut admin_key) = (None, None);
    while admin_key.is_none() {
        let line = lines.next().expect("the server prints its key").unwrap();
        if let Some(rest) = line.strip_prefix("listening on http://") {
            addr = Some(rest.split_whitespace().next().unwrap().parse().unwrap());
        }
        if let Some(key) = line.strip_prefix("admin key: ") {
            admin_key = Some(key.to_owned());
        }
    }
    Server {
        child,
        addr: addr.unwrap(),
        admin_key: admin_key.unwrap(),
    }
}

/// Creates a key with `credits` (refilled monthly) through `server`'s admin API.
async fn create_metered(server: &Server, credits: u64) -> (String, String) {
    let body = json!({
        "name": "metered",
        "scopes": ["read-only"],
        "credits": {"remaining": credits, "refill": {"amount": credits, "interval": "month"}},
    });
    let created = http(
        server.addr,
        Method::POST,
        "/v1/api-keys",
        &[
            ("authorization", &bearer(&server.admin_key)),
            ("content-type", "application/json"),
        ],
        &body.to_string(),
    )
    .await;
    assert_eq!(created.status, 201, "{created:?}");
    let v = created.json();
    assert_eq!(v["usage"]["credits"]["remaining"], credits);
    (
        v["id"].as_str().unwrap().to_owned(),
        v["key"].as_str().unwrap().to_owned(),
    )
}

async fn whoami(server: &Server, key: &str) -> Answer {
    http(
        server.addr,
        Method::GET,
        "/v1/whoami",
        &[("authorization", &bearer(key))],
        "",
    )
    .await
}

/// Seconds from now to the start of next month (UTC): the monthly refill.
fn to_next_month() -> u64 {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let days = now / 86_400;
    // Howard Hinnant's civil_from_days, then the first of the next month.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
    let (yy, mm) = if nm <= 2 {
        (ny - 1, nm + 9)
    } else {
        (ny, nm - 3)
    };
    let era = yy.div_euclid(400);
    let yoe = yy - era * 400;
    let doy = (153 * mm + 2) / 5;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let next = (era * 146_097 + doe - 719_468) as u64 * 86_400;
    next - now
}

/// A refusal at zero: 429 `usage_exceeded`, `Retry-After` until the monthly refill.
fn assert_used_up(a: &Answer) {
    assert_eq!(a.status, 429, "{a:?}");
    assert_eq!(a.code(), "usage_exceeded");
    let retry: u64 = a
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .unwrap();
    let expected = to_next_month();
    assert!(
        retry.abs_diff(expected) <= 5,
        "Retry-After {retry}, the refill is in {expected} s"
    );
}

#[tokio::test]
async fn in_memory_a_key_created_with_credits_spends_them_and_is_refused_at_zero() {
    let server = start(&[]);
    let (id, key) = create_metered(&server, 3).await;
    for _ in 0..3 {
        assert_eq!(whoami(&server, &key).await.status, 200);
    }
    assert_used_up(&whoami(&server, &key).await);
    let shown = http(
        server.addr,
        Method::GET,
        &format!("/v1/api-keys/{id}"),
        &[("authorization", &bearer(&server.admin_key))],
        "",
    )
    .await;
    assert_eq!(shown.json()["usage"]["credits"]["remaining"], 0);
}

#[cfg(feature = "postgres")]
mod cluster {
    use super::*;
    use crate::common::pg;
    use crate::common::services::{self, pg_admin};

    fn instance(schema: &str, lease: &str) -> Server {
        start(&[
            "--database-url",
            &services::postgres_url(),
            "--schema",
            schema,
            "--usage-lease",
            lease,
        ])
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_servers_share_a_keys_credits_exactly() {
        let schema = pg::schema_name("demo_credits");
        let a = instance(&schema, "2");
        let b = instance(&schema, "2");
        let (_, key) = create_metered(&a, 6).await;
        let (mut admitted, mut used_up) = (0, [false, false]);
        // Alternate; a `Retry-After: 1` means a lease is on its way: ask again. Bounded.
        for round in 0..2_000 {
            let (i, server) = if round % 2 == 0 { (0, &a) } else { (1, &b) };
            let answer = whoami(server, &key).await;
            match (answer.status.as_u16(), answer.header("retry-after")) {
                (200, _) => admitted += 1,
                (429, Some("1")) => tokio::time::sleep(Duration::from_millis(5)).await,
                (429, _) => {
                    assert_used_up(&answer);
                    used_up[i] = true;
                }
                other => panic!("unexpected answer {other:?}: {answer:?}"),
            }
            assert!(admitted <= 6, "never more than the credits");
            if admitted == 6 && used_up == [true, true] {
                break;
            }
        }
        assert_eq!((admitted, used_up), (6, [true, true]));
        drop((a, b));
        pg::drop_schema(&schema).await;
    }

    /// The balance of record of key `id`'s credits.
    async fn key_credits(schema: &str, id: &str) -> i64 {
        pg_admin()
            .await
            .query_one(
                &format!(
                    "SELECT balance FROM \"{schema}\".meters WHERE owner_kind = 'key' \
                     AND owner_id = $1 AND meter = 'credits'"
                ),
                &[&id],
            )
            .await
            .unwrap()
            .get(0)
    }

    #[tokio::test]
    async fn a_server_stopped_with_sigterm_returns_its_unspent_lease() {
        let schema = pg::schema_name("demo_return");
        let a = instance(&schema, "64");
        let (id, key) = create_metered(&a, 10).await;
        assert_eq!(whoami(&a, &key).await.status, 200);
        // The server holds a lease: a fair share of the ten (a quarter of the balance at
        // each reservation), less the one unit spent.
        let held_out = key_credits(&schema, &id).await;
        assert!(
            held_out < 9,
            "the server holds leased units: {held_out} left in the ledger"
        );
        let mut a = a;
        let stopped = Command::new("kill")
            .args(["-TERM", &a.child.id().to_string()])
            .status()
            .unwrap();
        assert!(stopped.success());
        assert!(a.child.wait().unwrap().success(), "a clean exit");
        assert_eq!(
            key_credits(&schema, &id).await,
            9,
            "the nine unspent units are back in the ledger"
        );
        pg::drop_schema(&schema).await;
    }
}
