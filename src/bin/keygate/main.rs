//! `keygate`: mint, hash and check API keys offline (feature `cli`).
//!
//! ```text
//! keygate mint --prefix sk_live_          # a new key and its digest
//! keygate hash [--pepper-file FILE] < key # the digest of a key read on stdin
//! keygate check [KEY|-]                   # format and checksum, offline
//! keygate pattern [--config keygate.toml]  # each prefix's regular expression, for secret scanners
//! keygate import --database-url URL [--config keygate.toml] < keys.jsonl  # existing keys
//! ```
//!
//! Only `mint` prints a secret (the key it made). `hash` and `check` read the key from
//! standard input when it is not given (or given as `-`), so it never has to appear in the
//! process list; neither prints it back.

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use keygate::key::{KeyFormat, KeyHasher};

#[derive(Parser)]
#[command(
    name = "keygate",
    version,
    about = "Mint, hash and check keygate API keys offline"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Prints a new key (shown this once) and its digest.
    Mint {
        /// One of the default prefixes: sk_live_, sk_test_ or tc_.
        #[arg(long, default_value = "sk_test_")]
        prefix: String,
        /// Digest with HMAC-SHA-256 under the pepper in this file.
        #[arg(long)]
        pepper_file: Option<PathBuf>,
        /// Print JSON (`{"key":…,"digest":…}`) instead of two lines.
        #[arg(long)]
        json: bool,
    },
    /// Reads a key on stdin and prints its digest (hex).
    Hash {
        /// Digest with HMAC-SHA-256 under the pepper in this file.
        #[arg(long)]
        pepper_file: Option<PathBuf>,
    },
    /// Checks a key's prefix, length, alphabet and checksum without any store.
    Check {
        /// The key, or `-` (the default) to read it from stdin.
        #[arg(default_value = "-")]
        key: String,
    },
    /// Prints, for each configured prefix, the regular expression of its keys (tab
    /// separated: prefix, environment, expression), for registering the key format with
    /// a secret scanner such as GitHub's partner program. A regular expression cannot
    /// check the CRC32 checksum: keygate refuses a key with a wrong one offline.
    Pattern {
        /// The deployment's configuration (TOML, as `KeygateConfig`), for its
        /// `[[prefixes]]`. Default: keygate's prefixes.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Reads JSON lines of existing keys on stdin and writes them into a PostgreSQL store
    /// (migrating it first). Each line: `id`, `account_id`, `name`, either `key` (the
    /// plaintext, digested here) or `digest` (64 hex characters of its SHA-256), and
    /// optionally `prefix`, `environment`, `scopes`, `created_at`, `expires_at`. A key
    /// (or a digest's `prefix`) starting with `sk_live_`, `sk_test_` or `tc_` takes that
    /// prefix's environment; a line naming another `environment` is refused.
    #[cfg(feature = "postgres")]
    Import {
        /// The database, as `postgres://…`.
        #[arg(long, env = "DATABASE_URL")]
        database_url: String,
        /// The schema keygate's tables live in.
        #[arg(long, default_value = "keygate")]
        schema: String,
        /// Digest plaintext keys with HMAC-SHA-256 under the pepper in this file.
        #[arg(long)]
        pepper_file: Option<PathBuf>,
        /// The deployment's configuration (TOML, as `KeygateConfig`): the prefixes and
        /// key formats plaintext keys must match, the environment, and the management
        /// settings such as the active-key cap. Default: keygate's defaults.
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

fn hasher(pepper_file: Option<&PathBuf>) -> Result<KeyHasher, String> {
    match pepper_file {
        None => Ok(KeyHasher::sha256()),
        Some(path) => {
            let pepper = std::fs::read(path)
                .map_err(|e| format!("cannot read the pepper file {}: {e}", path.display()))?;
            let pepper = pepper.trim_ascii_end();
            if pepper.is_empty() {
                return Err(format!("the pepper file {} is empty", path.display()));
            }
            Ok(KeyHasher::with_pepper(pepper))
        }
    }
}

fn read_key() -> Result<String, String> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| format!("cannot read a key on stdin: {e}"))?;
    let key = line.trim();
    if key.is_empty() {
        return Err("no key on stdin".into());
    }
    Ok(key.to_owned())
}

fn run(cli: Cli) -> Result<(), String> {
    let format = KeyFormat::default();
    let mut out = std::io::stdout().lock();
    let print = |out: &mut std::io::StdoutLock<'_>, text: String| {
        writeln!(out, "{text}").map_err(|e| format!("cannot write to stdout: {e}"))
    };
    match cli.command {
        Command::Mint {
            prefix,
            pepper_file,
            json,
        } => {
            let hasher = hasher(pepper_file.as_ref())?;
            let prefix = format.prefix(&prefix).ok_or_else(|| {
                let known: Vec<&str> = format.prefixes().iter().map(|p| p.as_str()).collect();
                format!("unknown prefix '{prefix}': use one of {}", known.join(", "))
            })?;
            let key = format.generate(prefix).map_err(|e| e.to_string())?;
            let digest = hasher.digest(key.expose_secret()).to_hex();
            if json {
                let value = serde_json::json!({ "key": key.expose_secret(), "digest": digest });
                print(&mut out, value.to_string())
            } else {
                print(&mut out, format!("key: {}", key.expose_secret()))?;
                print(&mut out, format!("digest: {digest}"))
            }
        }
        Command::Hash { pepper_file } => {
            let hasher = hasher(pepper_file.as_ref())?;
            let key = read_key()?;
            print(&mut out, hasher.digest(&key).to_hex())
        }
        #[cfg(feature = "postgres")]
        Command::Import {
            database_url,
            schema,
            pepper_file,
            config,
        } => {
            let hasher = hasher(pepper_file.as_ref())?;
            let config = match config {
                None => keygate::config::KeygateConfig::default(),
                Some(path) => {
                    let text = std::fs::read_to_string(&path)
                        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
                    toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?
                }
            };
            let stdin = std::io::stdin().lock();
            let imported = import::run(&database_url, &schema, &config, hasher, stdin)?;
            print(&mut out, format!("imported {imported} keys"))
        }
        Command::Pattern { config } => {
            let format = match config {
                None => format,
                Some(path) => {
                    let text = std::fs::read_to_string(&path)
                        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
                    let config: keygate::config::KeygateConfig =
                        toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
                    config.key_format().map_err(|e| e.to_string())?
                }
            };
            for (prefix, pattern) in format.patterns() {
                let environment = prefix.environment().map_or("any", |e| e.as_str());
                print(
                    &mut out,
                    format!("{}\t{environment}\t{pattern}", prefix.as_str()),
                )?;
            }
            Ok(())
        }
        Command::Check { key } => {
            let key = if key == "-" { read_key()? } else { key };
            match format.parse(&key) {
                Ok(parsed) => print(
                    &mut out,
                    format!(
                        "ok: prefix {} ({})",
                        parsed.prefix().as_str(),
                        parsed
                            .prefix()
                            .environment()
                            .map_or("any environment", |e| e.as_str())
                    ),
                ),
                Err(e) => Err(format!("invalid key: {e}")),
            }
        }
    }
}

#[cfg(feature = "postgres")]
mod import;

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("keygate: {message}");
            ExitCode::FAILURE
        }
    }
}
