//! Step 2: the key's format and checksum, then the environment its prefix names, with
//! no I/O; then its digest, which the lookup uses.

use crate::error::AuthError;
use crate::key::digest::{KeyDigest, KeyHasher};
use crate::key::{Environment, KeyFormat};

/// What a token must be to count as one of this deployment's keys.
pub(crate) struct KeyCheck {
    pub(crate) format: KeyFormat,
    pub(crate) hasher: KeyHasher,
    /// The environment this deployment accepts, if restricted.
    pub(crate) environment: Option<Environment>,
    /// Whether environment-neutral keys are accepted (always, when `environment` is
    /// `None`).
    pub(crate) accept_neutral: bool,
}

impl KeyCheck {
    /// Format and checksum, then the environment the prefix names (another
    /// environment's key, or an environment-neutral key where those are not accepted, is
    /// refused before any lookup, as junk is), then the digest.
    ///
    /// The token is the header value's bytes, never converted to text: a token the
    /// format accepts is ASCII.
    #[inline]
    pub(crate) fn digest_of(&self, token: &[u8]) -> Result<KeyDigest, AuthError> {
        let prefix = self
            .format
            .check(token)
            .map_err(|_| AuthError::InvalidKey)?;
        match (self.environment, prefix.environment()) {
            (Some(expected), Some(key)) if key != expected => {
                return Err(AuthError::WrongEnvironment { key, expected });
            }
            (Some(_), None) if !self.accept_neutral => return Err(AuthError::InvalidKey),
            _ => {}
        }
        Ok(self.hasher.digest_bytes(token))
    }
}
