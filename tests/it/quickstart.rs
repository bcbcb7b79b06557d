//! The README's quick start is `examples/quickstart.rs`, byte for byte, and that example,
//! run as the binary `cargo test` builds, does what the README says: it prints a
//! `sk_test_` key and serves a route that answers 401 without it and 200 with it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const README: &str = include_str!("../../README.md");
const EXAMPLE: &str = include_str!("../../examples/quickstart.rs");
/// The address the quick start binds, as its code says.
const ADDR: &str = "127.0.0.1:3000";

/// The fenced block of `lang` that first follows the heading `heading`, without its
/// fences.
fn readme_block(heading: &str, lang: &str) -> String {
    let mut lines = README.lines().skip_while(|line| *line != heading);
    assert!(
        lines.next().is_some(),
        "the README has a `{heading}` heading"
    );
    let mut lines = lines.skip_while(|line| !line.starts_with(&format!("```{lang}")));
    assert!(
        lines.next().is_some(),
        "a ```{lang} block follows `{heading}`"
    );
    let mut block = String::new();
    for line in lines.by_ref() {
        if line == "```" {
            return block;
        }
        block.push_str(line);
        block.push('\n');
    }
    panic!("the ```{lang} block after `{heading}` is not closed");
}

#[test]
fn readme_quick_start_is_the_example_byte_for_byte() {
    let readme = readme_block("## Quick start", "rust");
    if readme != EXAMPLE {
        let first = readme
            .lines()
            .zip(EXAMPLE.lines())
            .position(|(a, b)| a != b)
            .map_or("one ends early".to_owned(), |n| format!("line {}", n + 1));
        panic!("the README's quick start and examples/quickstart.rs differ ({first})");
    }
    assert!(
        !readme
            .lines()
            .any(|line| line.trim_start().starts_with("# ")),
        "a copied main.rs has no rustdoc hidden lines"
    );
}

#[test]
fn readme_quick_start_dependencies_are_the_ones_it_needs() {
    let toml: toml::Table = readme_block("## Quick start", "toml")
        .parse()
        .expect("the README's dependency block is TOML");
    let deps = toml["dependencies"]
        .as_table()
        .expect("a [dependencies] table");
    let features = |name: &str| -> Vec<String> {
        deps[name]
            .get("features")
            .and_then(|f| f.as_array())
            .map(|f| {
                f.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    assert!(features("keygate").contains(&"axum".to_owned()));
    assert!(deps.contains_key("axum"));
    for needed in ["macros", "rt-multi-thread", "net"] {
        assert!(
            features("tokio").contains(&needed.to_owned()),
            "tokio {needed}"
        );
    }
}

/// The example binary, which `cargo test` builds next to the test executables.
fn example_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("the test executable's path");
    let debug = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>/deps/<test>");
    let path = debug
        .join("examples")
        .join(format!("quickstart{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.exists(),
        "{} is missing: `cargo test` builds it; after a narrower build run \
         `cargo build --example quickstart`",
        path.display()
    );
    path
}

/// Kills the example when the test ends, passed or failed.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Sends `GET /v1/whoami` with `key`, if any, and returns the status code.
fn whoami_status(key: Option<&str>) -> u16 {
    let mut stream = TcpStream::connect(ADDR).expect("the quick start is listening");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("a read timeout");
    let auth = key.map_or(String::new(), |k| format!("Authorization: Bearer {k}\r\n"));
    write!(
        stream,
        "GET /v1/whoami HTTP/1.1\r\nHost: {ADDR}\r\n{auth}Connection: close\r\n\r\n"
    )
    .expect("the request is sent");
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .expect("the response is read");
    response
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("an HTTP status line, got {response:?}"))
}

/// The running example and the key it printed.
struct Started {
    _running: Running,
    key: String,
}

/// Starts the example and waits until it listens. Port 3000 is fixed (it is the README's
/// code), so when another copy holds it, as when two test runs overlap, this one exits
/// at once; it is started again until the port is free, for at most a minute.
fn start_quick_start() -> Started {
    let wait = Duration::from_secs(60);
    for _attempt in 0..60 {
        let mut child = Command::new(example_binary())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the quick start starts");
        let stdout = child.stdout.take().expect("its stdout");
        let running = Running(child);

        let (lines_tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                if lines_tx.send(line.expect("utf-8 output")).is_err() {
                    break;
                }
            }
        });
        let key_line = lines.recv_timeout(wait).expect("the key line");
        let key = key_line
            .strip_prefix("key: ")
            .unwrap_or_else(|| panic!("`key: …` first, got {key_line:?}"))
            .to_owned();
        match lines.recv_timeout(wait) {
            Ok(line) => {
                assert_eq!(line, format!("listening on http://{ADDR}"));
                return Started {
                    _running: running,
                    key,
                };
            }
            // It exited without listening: the port is taken. Try again shortly.
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                drop(running);
                std::thread::sleep(Duration::from_secs(1));
            }
            Err(mpsc::RecvTimeoutError::Timeout) => panic!("the quick start never listened"),
        }
    }
    panic!("{ADDR} stayed taken for a minute; is another program listening there?");
}

#[test]
fn quick_start_prints_a_test_key_and_answers_401_without_it_and_200_with_it() {
    let Started { _running, key } = start_quick_start();
    assert!(
        key.starts_with("sk_test_"),
        "the README promises an sk_test_ key, got {}",
        &key[..key.len().min(8)]
    );

    assert_eq!(whoami_status(None), 401, "no key");
    assert_eq!(whoami_status(Some(&key)), 200, "the printed key");
    let mut wrong = key.clone();
    wrong.pop();
    assert_eq!(
        whoami_status(Some(&wrong)),
        401,
        "a key one character short"
    );
}
