//! [`PrivatePostgres`]: a server of the test process's own, started from the binaries
//! found on this machine.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::{find_binary, free_port, unique, WATCHDOGS};

fn postgres_bin_dirs() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.path().join("bin"))
                .collect()
        })
        .unwrap_or_default();
    dirs.sort();
    dirs.reverse(); // newest version first
    dirs
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

pub fn start_private_postgres() -> String {
    PrivatePostgres::new().url
}

/// A PostgreSQL of this test process's own, which a test may stop and start again. It is
/// stopped and its files removed when the process exits.
pub struct PrivatePostgres {
    pub url: String,
    pg_ctl: PathBuf,
    data: PathBuf,
    options: String,
    log: PathBuf,
    /// initdb and pg_ctl refuse to run as root: then they run as `postgres`.
    run_as: Option<&'static str>,
}

impl PrivatePostgres {
    /// Creates and starts one on a free loopback port, or fails saying what to install.
    pub fn new() -> Self {
        let dirs = postgres_bin_dirs();
        let (Some(initdb), Some(pg_ctl)) =
            (find_binary("initdb", &dirs), find_binary("pg_ctl", &dirs))
        else {
            panic!(
                "no initdb/pg_ctl binaries were found to run a private PostgreSQL. Start \
                 PostgreSQL on 127.0.0.1:5432 (trust auth, database `test`), set \
                 KEYGATE_TEST_DATABASE_URL to a reachable server, or install PostgreSQL \
                 (for example `apt-get install postgresql`)."
            );
        };
        let run_as = is_root().then_some("postgres");
        let dir = std::env::temp_dir().join(unique("keygate-pg"));
        std::fs::create_dir_all(&dir).expect("temp dir");
        if let Some(user) = run_as {
            let ok = Command::new("chown")
                .args([user, &dir.display().to_string()])
                .status()
                .is_ok_and(|s| s.success());
            assert!(
                ok,
                "running as root: could not hand {} to user {user}",
                dir.display()
            );
        }
        let port = free_port();
        let server = Self {
            url: format!("postgres://postgres@127.0.0.1:{port}/postgres"),
            pg_ctl,
            data: dir.join("data"),
            options: format!(
                "-p {port} -h 127.0.0.1 -k {} -c fsync=off -c max_connections=300",
                dir.display()
            ),
            log: dir.join("log"),
            run_as,
        };
        let data = server.data.display().to_string();
        server.run(
            &initdb,
            &["-D", &data, "-U", "postgres", "--auth=trust", "-E", "UTF8"],
        );
        server.start();
        // Stop it and remove its files once this process is gone.
        let script = format!(
            "while [ -d /proc/{parent} ]; do sleep 1; done; '{pg_ctl}' -D '{data}' stop -m immediate; rm -rf '{dir}'",
            parent = std::process::id(),
            pg_ctl = server.pg_ctl.display(),
            dir = dir.display(),
        );
        let mut watchdog = server.command(Path::new("sh"));
        let child = watchdog
            .args(["-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the private PostgreSQL's watchdog");
        WATCHDOGS.lock().unwrap().push(child);
        server
    }

    fn command(&self, program: &Path) -> Command {
        match self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(program);
                c
            }
            None => Command::new(program),
        }
    }

    fn run(&self, program: &Path, args: &[&str]) {
        let out = self
            .command(program)
            .args(args)
            .output()
            .expect("run pg tool");
        assert!(
            out.status.success(),
            "{} failed: {}",
            program.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Starts the server and waits until it accepts connections.
    pub fn start(&self) {
        let data = self.data.display().to_string();
        let log = self.log.display().to_string();
        self.run(
            &self.pg_ctl,
            &[
                "-D",
                &data,
                "-o",
                &self.options,
                "-l",
                &log,
                "-w",
                "-t",
                "30",
                "start",
            ],
        );
    }

    /// Stops the server (fast shutdown: sessions are disconnected) and waits for it.
    pub fn stop(&self) {
        let data = self.data.display().to_string();
        self.run(&self.pg_ctl, &["-D", &data, "-m", "fast", "-w", "stop"]);
    }
}
