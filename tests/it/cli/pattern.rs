//! `keygate pattern`: the regular expression of each configured prefix, for registering
//! the key format with a secret scanner. Every key the crate can generate matches it;
//! near-misses of the wrong shape do not, and a changed checksum character (which no
//! regular expression can see) is refused by the offline check.
#![cfg(feature = "cli")]

use std::process::Command;

use keygate::config::KeygateConfig;
use keygate::key::KeyFormat;
use regex::Regex;

/// `keygate pattern` with these arguments: (prefix, environment, regex) per line.
fn patterns(args: &[&str]) -> Vec<(String, String, Regex)> {
    let out = Command::new(env!("CARGO_BIN_EXE_keygate"))
        .arg("pattern")
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|line| {
            let mut fields = line.split('\t');
            let prefix = fields.next().unwrap().to_owned();
            let environment = fields.next().unwrap().to_owned();
            let regex = Regex::new(fields.next().unwrap()).unwrap();
            (prefix, environment, regex)
        })
        .collect()
}

/// What `regex` finds in `text`: its first capture group.
fn found(regex: &Regex, text: &str) -> Option<String> {
    regex.captures(text).map(|c| c[1].to_owned())
}

/// The whole of `key`, found in lines of text.
fn finds(regex: &Regex, key: &str) -> bool {
    [
        format!("API_KEY={key}\n"),
        key.to_owned(),
        format!("\"{key}\","),
    ]
    .iter()
    .all(|text| found(regex, text).as_deref() == Some(key))
}

/// Keys of the wrong shape for their prefix: one character short or long, a character
/// outside the alphabet, a prefix run into a word.
fn shape_misses(key: &str, prefix: &str) -> Vec<String> {
    let body = &key[prefix.len()..];
    vec![
        key[..key.len() - 1].to_owned(),
        format!("{key}0"),
        format!("{prefix}{}!{}", &body[..3], &body[4..]),
        format!("x{key}"),
    ]
}

fn check(format: &KeyFormat, lines: &[(String, String, Regex)]) {
    assert_eq!(lines.len(), format.prefixes().len());
    for (prefix_text, _, regex) in lines {
        let prefix = format.prefix(prefix_text).unwrap();
        if !prefix.body().generates() {
            continue;
        }
        for _ in 0..300 {
            let key = format.generate(prefix).unwrap();
            let key = key.expose_secret();
            assert!(finds(regex, key), "{regex} misses {prefix_text}…");
            for miss in shape_misses(key, prefix_text) {
                let hit = found(regex, &format!(" {miss} "));
                assert_eq!(hit, None, "{regex} finds something in a near-miss");
            }
            // A changed checksum character keeps the shape: the pattern finds it, and
            // the offline check refuses it.
            if prefix.body().checksum() != keygate::key::Checksum::Off {
                let mut near = key.to_owned();
                let last = near.pop().unwrap();
                near.push(if last == '0' { '1' } else { '0' });
                assert!(
                    format.parse(&near).is_err(),
                    "a changed checksum is refused"
                );
            }
        }
    }
}

#[test]
fn every_generated_key_matches_its_prefix_pattern_and_near_misses_do_not() {
    let lines = patterns(&[]);
    let envs: Vec<&str> = lines.iter().map(|(_, e, _)| e.as_str()).collect();
    assert_eq!(envs, ["live", "test", "any"]);
    assert_eq!(
        lines[0].2.as_str(),
        r"(?:^|[^0-9A-Za-z_-])(sk_live_[0-9A-Za-z]{38})(?:[^0-9A-Za-z_-]|$)"
    );
    check(&KeyFormat::default(), &lines);
}

#[test]
fn the_patterns_follow_the_configured_prefixes_and_shapes() {
    let toml = r#"
        [[prefixes]]
        prefix = "ak_live_"
        environment = "live"

        [[prefixes]]
        prefix = "tok_"
        length = 43
        alphabet = "base64url"
        checksum = "off"

        [[prefixes]]
        prefix = "hx_"
        length = 40
        alphabet = "hex"
    "#;
    let dir = std::env::temp_dir().join(format!("keygate-pattern-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("keygate.toml");
    std::fs::write(&path, toml).unwrap();
    let lines = patterns(&["--config", path.to_str().unwrap()]);
    let config: KeygateConfig = toml::from_str(toml).unwrap();
    let format = config.key_format().unwrap();
    let prefixes: Vec<&str> = lines.iter().map(|(p, _, _)| p.as_str()).collect();
    assert_eq!(prefixes, ["ak_live_", "tok_", "hx_"]);
    check(&format, &lines);
    std::fs::remove_dir_all(&dir).unwrap();
}
