//! [`KeygateConfig`]: a whole deployment's settings, read from a file.
//!
//! ```
//! use keygate::{Keygate, MemoryStore};
//! use keygate::config::KeygateConfig;
//!
//! let config: KeygateConfig = toml::from_str(r#"
//!     environment = "live"
//!     realm = "payments"
//!
//!     [[prefixes]]
//!     prefix = "sk_live_"
//!     environment = "live"
//!
//!     [cache]
//!     positive_ttl = "10s"
//!     serve_stale = "5m"
//!
//!     [rate_limits]
//!     default_quota = { per_second = 100, burst = 200 }
//!     key = "per_account"
//!
//!     [management]
//!     max_active_keys = 50
//! "#).unwrap();
//! let (gate, _manager) = Keygate::managed(MemoryStore::new()).config(&config).unwrap().build();
//! assert_eq!(gate.rate_limits().default_quota.unwrap().burst, 200);
//! ```

use std::time::Duration;

use http::header::HeaderName;
use serde::{Deserialize, Serialize};

use crate::cache::CacheConfig;
use crate::client_ip::{IpAllowlist, TrustedProxies};
use crate::gate::{KeygateBuilder, Managed, ReadOnly};
use crate::key::{Alphabet, Checksum, Environment, KeyBody, KeyFormat, KeyPrefix};
use crate::manage::ManagerConfig;
use crate::ratelimit::RateLimitConfig;
use crate::scope::ScopeSet;

/// Every setting of a deployment, for configuration files (any serde format; durations
/// in human form such as `"30s"`). Missing fields keep the builder's defaults; unknown
/// fields are refused, so a typo is an error rather than a silent default.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct KeygateConfig {
    /// Accept only keys of this environment.
    pub environment: Option<Environment>,
    /// With `environment`, also accept environment-neutral keys (such as `tc_`).
    pub accept_environment_neutral_keys: bool,
    /// The realm named in `WWW-Authenticate`.
    pub realm: Option<String>,
    /// The accepted prefixes; empty for the default `sk_live_`, `sk_test_`, `tc_`.
    pub prefixes: Vec<PrefixConfig>,
    /// Cache settings.
    pub cache: CacheConfig,
    /// Rate-limit settings.
    pub rate_limits: RateLimitConfig,
    /// Proxies whose `X-Forwarded-For` is trusted; absent: the TCP peer is the client.
    pub trusted_proxies: Option<Vec<String>>,
    /// Scopes that make a key read-only.
    pub read_only_scopes: Option<ScopeSet>,
    /// Also read a bare key from this header, such as `x-api-key`.
    pub api_key_header: Option<String>,
    /// Longest a store lookup may take.
    #[serde(with = "humantime_serde")]
    pub store_timeout: Option<Duration>,
    /// How often `last_used_at` may be written per key.
    #[serde(with = "humantime_serde")]
    pub last_used_interval: Option<Duration>,
    /// Key management settings (used by [`crate::Keygate::managed`]).
    pub management: ManagerConfig,
    /// Named plans (`[[plans]]` with `name`, and any of `rate_limit`, `credits`,
    /// `quotas`); see [`crate::metering::Plan`].
    pub plans: Vec<crate::metering::Plan>,
    /// The secret-scanning endpoint's settings, for servers that mount it from
    /// configuration (see [`crate::leaks::SecretScanningConfig`]).
    pub secret_scanning: Option<crate::leaks::SecretScanningConfig>,
}

/// One accepted prefix in a [`KeygateConfig`], with the shape of its keys' bodies
/// (absent fields: keygate's own, 38 base62 characters with a checksum).
///
/// ```
/// use keygate::config::KeygateConfig;
///
/// let config: KeygateConfig = toml::from_str(r#"
///     [[prefixes]]
///     prefix = "tc_"
///     length = 43
///     alphabet = "base64url"
///     checksum = "off"
///
///     [[prefixes]]
///     prefix = "sk_live_"
///     environment = "live"
///     length = { min = 16, max = 48 }
///     alphabet = "hex"
///     checksum = "verify_if_present"
/// "#).unwrap();
/// let gate = keygate::Keygate::builder(keygate::MemoryStore::new())
///     .config(&config)
///     .unwrap()
///     .build();
/// assert!(gate.format().parse("sk_live_1234567890abcdef").is_ok());
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct PrefixConfig {
    /// The prefix, such as `sk_live_`.
    pub prefix: String,
    /// Its environment; absent for an environment-neutral prefix such as `tc_`.
    #[serde(default)]
    pub environment: Option<Environment>,
    /// The body's length after the prefix, checksum included: a number, or
    /// `{ min = .., max = .. }`.
    #[serde(default)]
    pub length: Option<BodyLength>,
    /// The body's alphabet: `base62` (default), `base64url`, `hex` or `lowercase_alnum`.
    #[serde(default)]
    pub alphabet: Option<Alphabet>,
    /// `on` (default), `off` or `verify_if_present`: see [`Checksum`].
    #[serde(default)]
    pub checksum: Option<Checksum>,
}

impl PrefixConfig {
    /// A prefix of keygate's own body shape.
    pub fn new(prefix: impl Into<String>, environment: Option<Environment>) -> Self {
        Self {
            prefix: prefix.into(),
            environment,
            length: None,
            alphabet: None,
            checksum: None,
        }
    }

    fn key_prefix(&self) -> Result<KeyPrefix, String> {
        let prefix = KeyPrefix::new(&self.prefix, self.environment).map_err(|e| e.to_string())?;
        if self.length.is_none() && self.alphabet.is_none() && self.checksum.is_none() {
            return Ok(prefix);
        }
        let lengths = match self.length {
            Some(BodyLength::Exact(n)) => n..=n,
            Some(BodyLength::Range { min, max }) => min..=max,
            None => KeyBody::default().lengths(),
        };
        let body = KeyBody::new(
            self.alphabet.unwrap_or(Alphabet::Base62),
            lengths,
            self.checksum.unwrap_or_default(),
        )
        .map_err(|e| format!("{}: {e}", self.prefix))?;
        Ok(prefix.with_body(body))
    }
}

/// The length of a key body in a [`PrefixConfig`]: exact, or a range.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum BodyLength {
    /// Exactly this many characters.
    Exact(usize),
    /// From `min` to `max` characters.
    Range {
        /// Fewest characters.
        min: usize,
        /// Most characters.
        max: usize,
    },
}

impl KeygateConfig {
    /// The key format of `prefixes`, or keygate's default ([`KeyFormat::default`]) when
    /// none are given.
    pub fn key_format(&self) -> Result<KeyFormat, ConfigError> {
        if self.prefixes.is_empty() {
            return Ok(KeyFormat::default());
        }
        let prefixes = self
            .prefixes
            .iter()
            .map(PrefixConfig::key_prefix)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| ConfigError(format!("prefixes: {e}")))?;
        KeyFormat::new(prefixes).map_err(|e| ConfigError(format!("prefixes: {e}")))
    }
}

/// A [`KeygateConfig`] that cannot be applied; the message names the field.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid keygate configuration: {0}")]
pub struct ConfigError(String);

fn apply<M>(
    mut b: KeygateBuilder<M>,
    config: &KeygateConfig,
) -> Result<KeygateBuilder<M>, ConfigError> {
    if let Some(environment) = config.environment {
        b = b.environment(environment);
    }
    b = b.accept_environment_neutral_keys(config.accept_environment_neutral_keys);
    if let Some(realm) = &config.realm {
        b = b.realm(realm.clone());
    }
    if !config.prefixes.is_empty() {
        b = b.format(config.key_format()?);
    }
    b = b.cache(config.cache.clone());
    b = b.rate_limits(config.rate_limits.clone());
    for plan in &config.plans {
        b = b.plan(plan.clone());
    }
    if let Some(proxies) = &config.trusted_proxies {
        let proxies = IpAllowlist::parse(proxies)
            .map_err(|e| ConfigError(format!("trusted_proxies: {e}")))?;
        b = b.client_ip(TrustedProxies::new(proxies));
    }
    if let Some(scopes) = &config.read_only_scopes {
        b = b.read_only_scopes(scopes.clone());
    }
    if let Some(name) = &config.api_key_header {
        let name = HeaderName::try_from(name.as_str())
            .map_err(|_| ConfigError(format!("api_key_header: '{name}' is not a header name")))?;
        b = b.api_key_header(name);
    }
    if let Some(timeout) = config.store_timeout {
        b = b.store_timeout(timeout);
    }
    if let Some(interval) = config.last_used_interval {
        b = b.last_used_interval(interval);
    }
    Ok(b)
}

impl KeygateBuilder<ReadOnly> {
    /// Applies every setting of `config` (its `management` part has no effect on a
    /// read-only store).
    pub fn config(self, config: &KeygateConfig) -> Result<Self, ConfigError> {
        apply(self, config)
    }
}

impl KeygateBuilder<Managed> {
    /// Applies every setting of `config`, the manager's included.
    pub fn config(self, config: &KeygateConfig) -> Result<Self, ConfigError> {
        Ok(apply(self, config)?.manager_config(config.management.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_in_human_form_and_typos_are_refused() {
        let config: KeygateConfig =
            toml::from_str("[cache]\npositive_ttl = \"1m 30s\"\nserve_stale = \"2h\"\n").unwrap();
        assert_eq!(config.cache.positive_ttl, Duration::from_secs(90));
        assert_eq!(config.cache.serve_stale, Some(Duration::from_secs(7200)));
        assert_eq!(config.cache.max_entries, CacheConfig::default().max_entries);
        let typo = toml::from_str::<KeygateConfig>("[cache]\npositive_tll = \"1s\"\n");
        assert!(typo.unwrap_err().to_string().contains("positive_tll"));
    }

    #[test]
    fn bad_values_name_their_field() {
        let config: KeygateConfig =
            toml::from_str("trusted_proxies = [\"10.0.0.0/33\"]\n").unwrap();
        let err = crate::Keygate::builder(crate::MemoryStore::new())
            .config(&config)
            .err()
            .unwrap();
        assert!(err.to_string().contains("trusted_proxies"), "{err}");
        let config: KeygateConfig = toml::from_str("[[prefixes]]\nprefix = \"Bad-\"\n").unwrap();
        let err = crate::Keygate::builder(crate::MemoryStore::new())
            .config(&config)
            .err()
            .unwrap();
        assert!(err.to_string().contains("prefixes"), "{err}");
    }

    #[test]
    fn prefix_body_shapes_read_from_toml_and_bad_ones_name_the_prefix() {
        let config: KeygateConfig = toml::from_str(
            "[[prefixes]]\nprefix = \"tc_\"\nlength = 43\nalphabet = \"base64url\"\n\
             checksum = \"off\"\n",
        )
        .unwrap();
        let gate = crate::Keygate::builder(crate::MemoryStore::new())
            .config(&config)
            .unwrap()
            .build();
        let body = gate.format().prefixes()[0].body();
        assert_eq!(body.lengths(), 43..=43);
        assert_eq!(body.alphabet(), Alphabet::Base64Url);
        assert_eq!(body.checksum(), Checksum::Off);
        assert!(gate
            .format()
            .parse(&format!("tc_{}", "a".repeat(43)))
            .is_ok());

        for bad in [
            "length = 2",
            "length = { min = 40, max = 20 }",
            "alphabet = \"base32\"",
            "checksum = \"maybe\"",
        ] {
            let text = format!("[[prefixes]]\nprefix = \"tc_\"\n{bad}\n");
            let err = match toml::from_str::<KeygateConfig>(&text) {
                Err(e) => e.to_string(),
                Ok(config) => crate::Keygate::builder(crate::MemoryStore::new())
                    .config(&config)
                    .err()
                    .expect("refused")
                    .to_string(),
            };
            assert!(
                err.contains("tc_") || err.contains("alphabet") || err.contains("checksum"),
                "{bad}: {err}"
            );
        }
    }
}
