//! [`SecretScanningConfig`]: the secret-scanning endpoint's settings in a configuration
//! file.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::LeakPolicy;

/// Where the secret-scanning endpoint's settings live in a
/// [`crate::config::KeygateConfig`] (`[secret_scanning]`), for servers that mount it
/// from configuration (`keygate::admin::scanning::SecretScanning::from_config`, feature
/// `scanning`).
///
/// ```
/// use keygate::config::KeygateConfig;
/// use keygate::leaks::LeakPolicy;
///
/// let config: KeygateConfig = toml::from_str(r#"
///     [secret_scanning]
///     public_keys_url = "https://api.github.com/meta/public_keys/secret_scanning"
///     policy = "disable"
/// "#).unwrap();
/// let scanning = config.secret_scanning.unwrap();
/// assert_eq!(scanning.policy, LeakPolicy::Disable);
/// assert_eq!(scanning.path, "/v1/secret-scanning");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct SecretScanningConfig {
    /// A file holding the public-key document (`{"public_keys":[…]}`), read at start.
    #[serde(default)]
    pub public_keys_file: Option<PathBuf>,
    /// An HTTPS URL to fetch the public-key document from (GitHub's is
    /// `https://api.github.com/meta/public_keys/secret_scanning`). Used when no file is
    /// given.
    #[serde(default)]
    pub public_keys_url: Option<String>,
    /// What is done with a reported key. Default: `revoke`.
    #[serde(default)]
    pub policy: LeakPolicy,
    /// Where the endpoint is mounted. Default: `/v1/secret-scanning`.
    #[serde(default = "default_path")]
    pub path: String,
    /// Largest alert body, in bytes. Default: 1 MiB.
    #[serde(default)]
    pub max_body_bytes: Option<usize>,
}

impl Default for SecretScanningConfig {
    fn default() -> Self {
        Self {
            public_keys_file: None,
            public_keys_url: None,
            policy: LeakPolicy::default(),
            path: default_path(),
            max_body_bytes: None,
        }
    }
}

fn default_path() -> String {
    "/v1/secret-scanning".to_owned()
}
