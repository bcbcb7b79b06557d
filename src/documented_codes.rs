//! The docs' tables of refusal codes agree with [`AuthError`]: every code a table names
//! exists, with the status the table gives, and every code exists in every table.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use crate::error::AuthError;
use crate::key::Environment;
use crate::scope::ScopeRequirement;

/// One of every variant. The `match` makes a new variant a compile error here until it
/// is added, so the tables cannot silently miss it.
pub(crate) fn every_refusal() -> Vec<AuthError> {
    let all = vec![
        AuthError::MissingCredentials,
        AuthError::InvalidRequest("two Authorization headers"),
        AuthError::InvalidKey,
        AuthError::RevokedKey,
        AuthError::DisabledKey,
        AuthError::ExpiredKey,
        AuthError::RolledKey,
        AuthError::WrongEnvironment {
            key: Environment::Test,
            expected: Environment::Live,
        },
        AuthError::IpNotAllowed,
        AuthError::InsufficientScope(ScopeRequirement::scope("admin")),
        AuthError::ReadOnlyKey,
        AuthError::RateLimited {
            retry_after: Duration::from_secs(1),
        },
        AuthError::UsageExceeded {
            retry_after: Some(Duration::from_secs(1)),
        },
        AuthError::StoreUnavailable,
        AuthError::InvalidToken("expired".into()),
        AuthError::VerifierUnavailable,
    ];
    for refusal in &all {
        match refusal {
            AuthError::MissingCredentials
            | AuthError::InvalidRequest(_)
            | AuthError::InvalidKey
            | AuthError::RevokedKey
            | AuthError::DisabledKey
            | AuthError::ExpiredKey
            | AuthError::RolledKey
            | AuthError::WrongEnvironment { .. }
            | AuthError::IpNotAllowed
            | AuthError::InsufficientScope(_)
            | AuthError::ReadOnlyKey
            | AuthError::RateLimited { .. }
            | AuthError::UsageExceeded { .. }
            | AuthError::StoreUnavailable
            | AuthError::InvalidToken(_)
            | AuthError::VerifierUnavailable => {}
        }
    }
    all
}

/// Every code with its HTTP status and gRPC status.
fn codes() -> BTreeMap<&'static str, (u16, u16)> {
    let mut codes = BTreeMap::new();
    for refusal in every_refusal() {
        let answer = (refusal.status().as_u16(), refusal.grpc_status());
        let previous = codes.insert(refusal.code(), answer);
        assert!(
            previous.is_none_or(|p| p == answer),
            "`{}` has one status",
            refusal.code()
        );
    }
    codes
}

/// The lines of the doc comments in `source` (`///` or `//!`), without the marker.
fn doc_lines(source: &str) -> Vec<&str> {
    source
        .lines()
        .filter_map(|line| {
            let line = line.trim_start();
            line.strip_prefix("///")
                .or_else(|| line.strip_prefix("//!"))
                .map(|rest| rest.strip_prefix(' ').unwrap_or(rest))
        })
        .collect()
}

/// The rows of the first Markdown table whose first column is headed `code`, as cells.
fn code_table<'a>(lines: impl IntoIterator<Item = &'a str>) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut inside = false;
    for line in lines {
        let cells: Vec<String> = line
            .trim()
            .trim_matches('|')
            .split('|')
            .map(|cell| cell.trim().to_owned())
            .collect();
        if !line.trim_start().starts_with('|') {
            if inside {
                break;
            }
            continue;
        }
        if cells[0] == "code" {
            inside = true;
        } else if inside && !cells[0].starts_with("---") {
            rows.push(cells);
        }
    }
    assert!(!rows.is_empty(), "a table headed `| code |` is there");
    rows
}

/// The backticked words of `text` that look like codes (`lower_snake_case`).
fn code_words(text: &str) -> Vec<String> {
    text.split('`')
        .skip(1)
        .step_by(2)
        .filter(|word| !word.is_empty() && word.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
        .map(str::to_owned)
        .collect()
}

/// Checks a table: every code it names exists with the status (and gRPC status) it
/// gives, and every code is named.
fn check_table(name: &str, rows: &[Vec<String>], grpc_column: bool) {
    let codes = codes();
    let mut named = BTreeSet::new();
    for row in rows {
        let row_codes = code_words(&row[0]);
        assert!(
            !row_codes.is_empty(),
            "{name}: a row without a code: {row:?}"
        );
        for code in row_codes {
            let Some(&(status, grpc)) = codes.get(code.as_str()) else {
                panic!("{name} names `{code}`, which AuthError does not have");
            };
            assert_eq!(row[1], status.to_string(), "{name}: the status of `{code}`");
            if grpc_column {
                assert_eq!(
                    row[2],
                    grpc.to_string(),
                    "{name}: the gRPC status of `{code}`"
                );
            }
            named.insert(code);
        }
    }
    for code in codes.keys() {
        assert!(named.contains(*code), "{name} does not document `{code}`");
    }
}

#[test]
fn readme_refusal_table_matches_the_codes() {
    let readme = include_str!("../README.md");
    let section = readme
        .split("\n## ")
        .find(|section| section.starts_with("Refusals"))
        .expect("the README has a Refusals section");
    check_table("README.md", &code_table(section.lines()), true);
}

#[test]
fn auth_error_table_matches_the_codes() {
    check_table(
        "AuthError's docs",
        &code_table(doc_lines(include_str!("error.rs"))),
        false,
    );
}

#[test]
fn the_order_of_checks_names_every_code_and_only_codes() {
    let docs = doc_lines(include_str!("layer/mod.rs")).join("\n");
    let section = docs
        .split("\n# ")
        .find(|section| section.starts_with("The order of checks"))
        .expect("layer's docs have `# The order of checks`");
    let codes = codes();
    let named: BTreeSet<String> = code_words(section).into_iter().collect();
    for code in &named {
        assert!(
            codes.contains_key(code.as_str()),
            "layer's order of checks names `{code}`, which AuthError does not have"
        );
    }
    for code in codes.keys() {
        assert!(
            named.contains(*code),
            "layer's order of checks does not name `{code}`"
        );
    }
}

#[test]
fn a_code_that_does_not_exist_is_caught() {
    let rows = code_table([
        "| code | status | when |",
        "|---|---|---|",
        "| `rolled_api_key` | 401 | x |",
    ]);
    let caught = std::panic::catch_unwind(|| check_table("a bad table", &rows, false));
    assert!(caught.is_err(), "an unknown code fails the check");
}
