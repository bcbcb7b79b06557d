//! The key format: `<prefix><32 random base62 characters><6-character checksum>`.
//!
//! A key looks like `sk_live_` followed by 38 base62 characters. The first 32 carry about
//! 190 bits from a CSPRNG; the last six are the CRC32 of everything before them, in
//! base62, as in GitHub's token format. The checksum lets keygate reject a mistyped or
//! made-up key before it touches the cache, the store or a rate limiter, and lets secret
//! scanners recognise real keys.

pub(crate) mod digest;
mod public_id;

pub use digest::{DigestHasher, KeyDigest, KeyHasher, PassThroughHasher};
pub(crate) use public_id::IdSequence;

use std::fmt;
use std::sync::Arc;

use rand::distr::{Alphanumeric, Distribution};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// Number of random base62 characters in a key.
pub const SECRET_LEN: usize = 32;
/// Number of checksum characters at the end of a key.
pub const CHECKSUM_LEN: usize = 6;
/// Longest prefix accepted by [`KeyPrefix::new`].
pub const MAX_PREFIX_LEN: usize = 24;

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// The environment a key belongs to, as in Stripe's and Bytekit's `live`/`test` keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "admin", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Environment {
    /// Production.
    Live,
    /// Staging and development.
    Test,
}

impl Environment {
    /// `"live"` or `"test"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Environment::Live => "live",
            Environment::Test => "test",
        }
    }
}

impl fmt::Display for Environment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Environment {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "live" => Ok(Environment::Live),
            "test" => Ok(Environment::Test),
            other => Err(format!(
                "unknown environment '{other}': expected 'live' or 'test'"
            )),
        }
    }
}

/// One accepted key prefix, and the environment its keys belong to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyPrefix {
    prefix: Arc<str>,
    environment: Option<Environment>,
}

impl KeyPrefix {
    /// A prefix such as `sk_live_`. It must be 2 to 24 characters of `a-z`, `0-9` and
    /// `_`, and end with `_`, so that the prefix and the key body can never run together.
    pub fn new(prefix: &str, environment: Option<Environment>) -> Result<Self, InvalidPrefix> {
        let ok = (2..=MAX_PREFIX_LEN).contains(&prefix.len())
            && prefix.ends_with('_')
            && prefix
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if ok {
            Ok(Self {
                prefix: prefix.into(),
                environment,
            })
        } else {
            Err(InvalidPrefix(
                prefix.chars().take(MAX_PREFIX_LEN + 1).collect(),
            ))
        }
    }

    /// The prefix text.
    pub fn as_str(&self) -> &str {
        &self.prefix
    }

    /// The environment of keys with this prefix; `None` for environment-neutral prefixes
    /// such as Tenuo's `tc_`.
    pub fn environment(&self) -> Option<Environment> {
        self.environment
    }
}

/// A prefix that [`KeyPrefix::new`] refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid key prefix '{0}': use 2-24 characters of a-z, 0-9 and '_', ending in '_'")]
pub struct InvalidPrefix(String);

/// The set of prefixes a deployment issues and accepts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyFormat {
    /// Sorted longest first, so that the most specific prefix matches.
    prefixes: Arc<[KeyPrefix]>,
}

impl Default for KeyFormat {
    /// `sk_live_` (live), `sk_test_` (test) and `tc_` (no environment).
    fn default() -> Self {
        Self::new([
            KeyPrefix::new("sk_live_", Some(Environment::Live)).expect("valid"),
            KeyPrefix::new("sk_test_", Some(Environment::Test)).expect("valid"),
            KeyPrefix::new("tc_", None).expect("valid"),
        ])
        .expect("valid")
    }
}

/// Why a [`KeyFormat`] could not be built.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InvalidFormat {
    /// No prefixes at all.
    #[error("a key format needs at least one prefix")]
    Empty,
    /// The same prefix twice.
    #[error("duplicate key prefix '{0}'")]
    Duplicate(String),
}

impl KeyFormat {
    /// A format accepting exactly these prefixes.
    pub fn new(prefixes: impl IntoIterator<Item = KeyPrefix>) -> Result<Self, InvalidFormat> {
        let mut list: Vec<KeyPrefix> = prefixes.into_iter().collect();
        if list.is_empty() {
            return Err(InvalidFormat::Empty);
        }
        list.sort_by(|a, b| {
            b.prefix
                .len()
                .cmp(&a.prefix.len())
                .then(a.prefix.cmp(&b.prefix))
        });
        if let Some(w) = list.windows(2).find(|w| w[0].prefix == w[1].prefix) {
            return Err(InvalidFormat::Duplicate(w[0].prefix.to_string()));
        }
        Ok(Self {
            prefixes: list.into(),
        })
    }

    /// The accepted prefixes, longest first.
    pub fn prefixes(&self) -> &[KeyPrefix] {
        &self.prefixes
    }

    /// The prefix with this exact text.
    pub fn prefix(&self, text: &str) -> Option<&KeyPrefix> {
        self.prefixes.iter().find(|p| &*p.prefix == text)
    }

    /// The first prefix of `environment`, or the first environment-neutral prefix when
    /// `environment` is `None`.
    pub fn prefix_for(&self, environment: Option<Environment>) -> Option<&KeyPrefix> {
        self.prefixes.iter().find(|p| p.environment == environment)
    }

    /// Longest key this format accepts, in bytes.
    pub fn max_key_len(&self) -> usize {
        self.prefixes[0].prefix.len() + SECRET_LEN + CHECKSUM_LEN
    }

    /// Creates a new random key with `prefix`.
    pub fn generate(&self, prefix: &KeyPrefix) -> ApiKey {
        let mut text = Zeroizing::new(String::with_capacity(
            prefix.prefix.len() + SECRET_LEN + CHECKSUM_LEN,
        ));
        text.push_str(&prefix.prefix);
        let mut rng = rand::rng();
        for _ in 0..SECRET_LEN {
            text.push(char::from(Alphanumeric.sample(&mut rng)));
        }
        let sum = checksum(text.as_bytes());
        text.push_str(std::str::from_utf8(&sum).expect("base62 is ASCII"));
        ApiKey {
            text,
            prefix_len: prefix.prefix.len(),
        }
    }

    /// Checks a presented key's shape and checksum without any I/O.
    ///
    /// This runs before the cache, the store or a limiter sees the key.
    pub fn parse<'k>(&'k self, key: &'k str) -> Result<ParsedKey<'k>, MalformedKey> {
        let prefix = self
            .prefixes
            .iter()
            .find(|p| key.starts_with(&*p.prefix))
            .ok_or(MalformedKey::UnknownPrefix)?;
        let rest = &key.as_bytes()[prefix.prefix.len()..];
        if rest.len() != SECRET_LEN + CHECKSUM_LEN {
            return Err(MalformedKey::Length);
        }
        if !rest.iter().all(u8::is_ascii_alphanumeric) {
            return Err(MalformedKey::Charset);
        }
        let body_len = key.len() - CHECKSUM_LEN;
        let expected = checksum(&key.as_bytes()[..body_len]);
        if expected != key.as_bytes()[body_len..] {
            return Err(MalformedKey::Checksum);
        }
        Ok(ParsedKey { key, prefix })
    }
}

/// CRC32 of `body`, as six base62 digits (62^6 > 2^32, so the encoding is exact).
fn checksum(body: &[u8]) -> [u8; CHECKSUM_LEN] {
    let mut n = crc32fast::hash(body);
    let mut out = [b'0'; CHECKSUM_LEN];
    for slot in out.iter_mut().rev() {
        *slot = BASE62[(n % 62) as usize];
        n /= 62;
    }
    out
}

/// Why a presented key was refused before any lookup.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MalformedKey {
    /// It starts with no accepted prefix.
    #[error("the key does not start with a known prefix")]
    UnknownPrefix,
    /// It is too long or too short.
    #[error("the key has the wrong length")]
    Length,
    /// It holds characters other than base62.
    #[error("the key holds characters that are not base62")]
    Charset,
    /// Its checksum does not match: a typo or a forgery.
    #[error("the key's checksum does not match")]
    Checksum,
}

/// A presented key that passed [`KeyFormat::parse`]. Borrowed from the request.
#[derive(Clone, Copy)]
pub struct ParsedKey<'k> {
    key: &'k str,
    prefix: &'k KeyPrefix,
}

impl<'k> ParsedKey<'k> {
    /// The whole key text. Secret: never log it.
    pub fn expose_secret(&self) -> &'k str {
        self.key
    }

    /// The prefix the key matched.
    pub fn prefix(&self) -> &'k KeyPrefix {
        self.prefix
    }
}

impl fmt::Debug for ParsedKey<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ParsedKey")
            .field("prefix", &self.prefix.as_str())
            .field("secret", &"[redacted]")
            .finish()
    }
}

/// A plaintext API key, as returned once at creation or roll.
///
/// Its memory is zeroed when dropped. `Debug` and `Display` show only the prefix; call
/// [`ApiKey::expose_secret`] to read the key itself, once, to hand it to its owner.
#[derive(Clone)]
pub struct ApiKey {
    text: Zeroizing<String>,
    prefix_len: usize,
}

impl ApiKey {
    /// The full key. Show it to its owner once; never log or store it.
    pub fn expose_secret(&self) -> &str {
        &self.text
    }

    /// The key's prefix, such as `sk_live_`.
    pub fn prefix(&self) -> &str {
        &self.text[..self.prefix_len]
    }

    /// The prefix and the first four characters after it: enough to recognise a key in a
    /// list, far too little to guess it.
    pub fn start(&self) -> &str {
        &self.text[..self.prefix_len + 4]
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiKey")
            .field("prefix", &self.prefix())
            .field("secret", &"[redacted]")
            .finish()
    }
}

impl fmt::Display for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}[redacted]", self.prefix())
    }
}

#[cfg(test)]
mod tests;
