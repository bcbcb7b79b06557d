//! Reading the console's form posts into management inputs.

use std::time::{Duration, SystemTime};

use crate::key::Environment;
use crate::manage::{KeyUpdate, NewKey};

/// Largest form body the console reads.
pub(crate) const MAX_FORM_BYTES: usize = 16 * 1024;

/// An `application/x-www-form-urlencoded` body, fields in order.
pub(crate) struct Form(Vec<(String, String)>);

impl Form {
    pub(crate) fn parse(body: &[u8]) -> Self {
        Self(
            form_urlencoded::parse(body)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    /// The first value of `name`.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `name`.
    pub(crate) fn all(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .collect()
    }
}

/// The longest expiry the form offers as a number of days.
const MAX_DAYS: u64 = 3650;

/// What the expiry fields ask for: keep it, none, or a time.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Expiry {
    Keep,
    Never,
    At(SystemTime),
}

/// Reads `expires_in` (`keep`, `never`, a number of days, or `date` with `expires_on`
/// as `YYYY-MM-DD`, meaning the end of that day in UTC).
pub(crate) fn expiry(form: &Form, now: SystemTime) -> Result<Expiry, String> {
    match form.get("expires_in").unwrap_or("never") {
        "keep" => Ok(Expiry::Keep),
        "never" | "" => Ok(Expiry::Never),
        "date" => {
            let day = form.get("expires_on").unwrap_or_default().trim();
            let ok = day.len() == 10
                && day.bytes().enumerate().all(|(i, b)| {
                    if i == 4 || i == 7 {
                        b == b'-'
                    } else {
                        b.is_ascii_digit()
                    }
                });
            ok.then(|| humantime::parse_rfc3339(&format!("{day}T23:59:59Z")).ok())
                .flatten()
                .map(Expiry::At)
                .ok_or_else(|| "Expiry: pick a date (YYYY-MM-DD).".to_owned())
        }
        days => match days.parse::<u64>() {
            Ok(d @ 1..=MAX_DAYS) => Ok(Expiry::At(now + Duration::from_secs(d * 86_400))),
            _ => Err("Expiry: choose one of the offered lifetimes.".to_owned()),
        },
    }
}

/// The IP allowlist field: one entry per line (commas and spaces also separate).
pub(crate) fn ips(form: &Form) -> Vec<String> {
    form.get("ips")
        .unwrap_or_default()
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The checked scopes, each of which must be one the session may grant.
pub(crate) fn scopes(form: &Form, grantable: &[String]) -> Result<Vec<String>, String> {
    let chosen = form.all("scopes");
    match chosen.iter().find(|s| !grantable.contains(s)) {
        Some(bad) => Err(format!(
            "Scopes: this session may not grant '{}'.",
            bad.chars().take(64).collect::<String>()
        )),
        None => Ok(chosen),
    }
}

/// The create form as a new key.
pub(crate) fn new_key(
    form: &Form,
    grantable: &[String],
    environments: &[String],
    now: SystemTime,
) -> Result<NewKey, String> {
    let mut new = NewKey::named(form.get("name").unwrap_or_default().trim())
        .scopes(scopes(form, grantable)?)
        .ips(ips(form));
    match expiry(form, now)? {
        Expiry::At(at) => new = new.expires_at(at),
        Expiry::Never | Expiry::Keep => {}
    }
    if let Some(env) = form.get("environment").filter(|e| !e.is_empty()) {
        if !environments.iter().any(|e| e == env) {
            return Err("Environment: choose one of the offered environments.".to_owned());
        }
        let env: Environment = env
            .parse()
            .map_err(|_| "Environment: unknown.".to_owned())?;
        new = new.environment(env);
    }
    Ok(new)
}

/// The edit form as an update.
pub(crate) fn update(
    form: &Form,
    grantable: &[String],
    now: SystemTime,
) -> Result<KeyUpdate, String> {
    let mut update = KeyUpdate::default()
        .name(form.get("name").unwrap_or_default().trim())
        .scopes(scopes(form, grantable)?)
        .ips(ips(form));
    match expiry(form, now)? {
        Expiry::Keep => {}
        Expiry::Never => update = update.expires_at(None),
        Expiry::At(at) => update = update.expires_at(Some(at)),
    }
    Ok(update)
}

/// The roll form's grace period: 0 to 30 days, in seconds.
pub(crate) fn grace(form: &Form) -> Result<Option<Duration>, String> {
    match form.get("grace").unwrap_or("0").parse::<u64>() {
        Ok(0) => Ok(None),
        Ok(s) if s <= 30 * 86_400 => Ok(Some(Duration::from_secs(s))),
        _ => Err("Grace period: choose one of the offered periods.".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_reads_days_dates_and_refuses_the_rest() {
        let now = SystemTime::UNIX_EPOCH;
        let f = |s: &str| Form::parse(s.as_bytes());
        assert_eq!(expiry(&f("expires_in=keep"), now), Ok(Expiry::Keep));
        assert_eq!(expiry(&f(""), now), Ok(Expiry::Never));
        assert_eq!(
            expiry(&f("expires_in=7"), now),
            Ok(Expiry::At(now + Duration::from_secs(7 * 86_400)))
        );
        assert_eq!(
            expiry(&f("expires_in=date&expires_on=1970-01-02"), now),
            Ok(Expiry::At(now + Duration::from_secs(86_400 + 86_399)))
        );
        assert!(expiry(&f("expires_in=date&expires_on=1970-13-02"), now).is_err());
        assert!(expiry(&f("expires_in=date&expires_on=<script>"), now).is_err());
        assert!(expiry(&f("expires_in=99999"), now).is_err());
        assert!(expiry(&f("expires_in=-1"), now).is_err());
    }

    #[test]
    fn scopes_outside_the_grant_are_refused() {
        let form = Form::parse(b"scopes=read&scopes=admin");
        let grantable = ["read".to_owned()];
        assert!(scopes(&form, &grantable).is_err());
        let form = Form::parse(b"scopes=read");
        assert_eq!(scopes(&form, &grantable).unwrap(), ["read"]);
    }

    #[test]
    fn ip_entries_split_on_lines_commas_and_spaces() {
        let form = Form::parse(b"ips=10.0.0.0%2F8%0D%0A192.168.1.1,+::1");
        assert_eq!(ips(&form), ["10.0.0.0/8", "192.168.1.1", "::1"]);
    }

    #[test]
    fn grace_is_bounded() {
        let f = |s: &str| grace(&Form::parse(s.as_bytes()));
        assert_eq!(f("grace=0"), Ok(None));
        assert_eq!(f("grace=3600"), Ok(Some(Duration::from_secs(3600))));
        assert!(f("grace=99999999").is_err());
        assert!(f("grace=x").is_err());
    }
}
