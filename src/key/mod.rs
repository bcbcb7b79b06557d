//! Key formats: `<prefix><body>`, where each prefix has its own body shape.
//!
//! keygate's own keys are `sk_live_` (or another prefix) followed by 38 base62 characters.
//! The first 32 carry about 190 bits from a CSPRNG; the last six are the CRC32 of
//! everything before them, in base62, as in GitHub's token format. The checksum lets
//! keygate refuse a mistyped or made-up key before it touches the cache, the store or a
//! rate limiter, and lets secret scanners recognise real keys.
//!
//! Keys made elsewhere have other shapes: a prefix can carry its own [`KeyBody`] (length
//! or range of lengths, [`Alphabet`], and a [`Checksum`] that is on, off or verified
//! only when present). Whatever the shape, the prefix, length and alphabet are checked
//! before any lookup.
//!
//! The default prefixes are `sk_live_` (live), `sk_test_` (test) and `tc_` (any
//! environment); `KeyFormat::new([KeyPrefix::new("ak_live_", Some(Environment::Live))?, …])`
//! sets your own. Each key also has a public id (`ak_…`, time-ordered) that management,
//! logs and identities use instead of the secret. In a configuration file a prefix with
//! its own shape reads `[[prefixes]] prefix = "tc_"  length = 43  alphabet = "base64url"
//! checksum = "off"` (`length = { min = 16, max = 48 }` for a range; see
//! [`crate::config::KeygateConfig`]).
//!
//! # Environments
//!
//! A deployment built with `.environment(Environment::Live)` accepts only live keys: a
//! test key is refused with `wrong_environment`, by its prefix, before any lookup, and
//! the message names the key's environment. Environment-neutral keys (`tc_`) pass only
//! when the deployment says so with `accept_environment_neutral_keys(true)` (or
//! `accept_environment_neutral_keys = true` in the configuration file); otherwise the
//! manager neither issues nor shows them. A key created without an environment gets the
//! deployment's default (`Keygate::default_environment`): its own environment; or, for a
//! deployment of any environment whose prefixes all name one environment, that one; or
//! else an environment-neutral prefix.
//!
//! # Stored as digests
//!
//! Only the SHA-256 of a key is stored ([`KeyDigest`]; with a pepper, HMAC-SHA-256, see
//! [`KeyHasher`]). [`ApiKey`] zeroes its memory on drop, and nothing that holds a secret
//! or a digest prints it in `Debug` or `Display`.
//!
//! **Why looking a key up by its digest leaks nothing useful.** A store finds a key by
//! the digest of the presented key, in a map or a database index, and that lookup's
//! timing may depend on the digest's bytes. But an attacker controls only the key they
//! send, and SHA-256 gives related inputs unrelated digests, so timing that reveals how
//! close a digest came to a stored one cannot be turned into a step towards any stored
//! key, unlike comparing the secret itself with `==`, which leaks it prefix by prefix. The
//! one comparison against the stored secret, after the lookup, is constant-time
//! (`subtle`) on fixed `[u8; 32]` digests. The threat model is in `SECURITY.md`.

mod api_key;
mod body;
pub(crate) mod digest;
mod heads;
mod pattern;
mod public_id;

pub use api_key::ApiKey;
pub use body::{Alphabet, Checksum, InvalidBody, KeyBody, MAX_BODY_LEN, MIN_GENERATED_BITS};
pub use digest::{KeyDigest, KeyHasher};
pub(crate) use public_id::IdSequence;

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// Number of random base62 characters in a key of the default [`KeyBody`].
pub const SECRET_LEN: usize = 32;
/// Number of checksum characters at the end of a key of the default [`KeyBody`].
pub const CHECKSUM_LEN: usize = 6;
/// Longest prefix accepted by [`KeyPrefix::new`].
pub const MAX_PREFIX_LEN: usize = 24;

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// The environment a key belongs to: `live` (production) or `test`.
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

/// One accepted key prefix, the environment its keys belong to, and the shape of their
/// body ([`KeyBody`], keygate's own by default).
///
/// ```
/// use keygate::key::{Alphabet, Checksum, KeyBody};
/// use keygate::Environment;
/// use keygate::key::{KeyFormat, KeyPrefix};
///
/// // Keys made elsewhere, such as `sk_live_1234567890abcdef`: 16 lowercase hex
/// // characters, no checksum.
/// let body = KeyBody::new(Alphabet::Hex, 16..=16, Checksum::Off).unwrap();
/// let prefix = KeyPrefix::new("sk_live_", Some(Environment::Live)).unwrap().with_body(body);
/// let format = KeyFormat::new([prefix]).unwrap();
/// assert!(format.parse("sk_live_1234567890abcdef").is_ok());
/// assert!(format.parse("sk_live_1234567890abcdeg").is_err()); // not hex
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyPrefix {
    prefix: Arc<str>,
    environment: Option<Environment>,
    body: KeyBody,
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
                body: KeyBody::default(),
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
    /// such as `tc_`.
    pub fn environment(&self) -> Option<Environment> {
        self.environment
    }

    /// Accepts (and generates) bodies of this shape after the prefix instead of
    /// keygate's own.
    #[must_use]
    pub fn with_body(mut self, body: KeyBody) -> Self {
        self.body = body;
        self
    }

    /// The shape of the body after the prefix.
    pub fn body(&self) -> &KeyBody {
        &self.body
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
    /// The prefixes' first words, in the same order, for matching.
    heads: Arc<[heads::Head]>,
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

/// Why a [`KeyFormat`] could not be built, or could not generate a key.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidFormat {
    /// The prefix's body is too short to carry [`MIN_GENERATED_BITS`] random bits: its
    /// keys can be imported, not generated.
    #[error("keys with prefix '{0}' are too short to generate securely; import them instead")]
    CannotGenerate(String),
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
            heads: list.iter().map(heads::Head::of).collect(),
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
        self.prefixes
            .iter()
            .map(|p| p.prefix.len() + p.body.lengths().end())
            .max()
            .unwrap_or(0)
    }

    /// Creates a new random key with `prefix`, in its body's shape. Fails with
    /// [`InvalidFormat::CannotGenerate`] for a shape too short to carry
    /// [`MIN_GENERATED_BITS`] random bits (see [`KeyBody::generates`]).
    pub fn generate(&self, prefix: &KeyPrefix) -> Result<ApiKey, InvalidFormat> {
        if !prefix.body.generates() {
            return Err(InvalidFormat::CannotGenerate(prefix.prefix.to_string()));
        }
        let mut text = Zeroizing::new(String::with_capacity(
            prefix.prefix.len() + prefix.body.lengths().end(),
        ));
        text.push_str(&prefix.prefix);
        prefix.body.generate_into(&mut text);
        Ok(ApiKey {
            text,
            prefix_len: prefix.prefix.len(),
        })
    }

    /// Checks a presented key's shape without any I/O: a known prefix (the longest that
    /// matches), then that prefix's body length, alphabet and checksum.
    ///
    /// This runs before the cache, the store or a limiter sees the key.
    pub fn parse<'k>(&'k self, key: &'k str) -> Result<ParsedKey<'k>, MalformedKey> {
        let prefix = self.check(key.as_bytes())?;
        Ok(ParsedKey { key, prefix })
    }

    /// [`KeyFormat::parse`] on the bytes of a header value, which need not be text: what
    /// passes is ASCII. Returns the prefix matched.
    #[inline]
    pub(crate) fn check(&self, key: &[u8]) -> Result<&KeyPrefix, MalformedKey> {
        let at =
            heads::find(&self.prefixes, &self.heads, key).ok_or(MalformedKey::UnknownPrefix)?;
        let prefix = &self.prefixes[at];
        prefix.body.check(key, &key[prefix.prefix.len()..])?;
        Ok(prefix)
    }

    /// The prefix `text` starts with, if any: the cheap "is this one of our keys?" test,
    /// with no check of the body.
    pub fn matching_prefix(&self, text: &str) -> Option<&KeyPrefix> {
        let at = heads::find(&self.prefixes, &self.heads, text.as_bytes())?;
        Some(&self.prefixes[at])
    }
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
    /// It holds characters outside its prefix's alphabet.
    #[error("the key holds characters outside its format's alphabet")]
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

#[cfg(test)]
mod tests;

#[cfg(test)]
mod body_tests;
