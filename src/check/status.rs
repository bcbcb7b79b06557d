//! Step 4: the found key's status. Digest match (constant time), then revoked,
//! disabled, expired, rolled, and the stored key's environment.

use std::time::SystemTime;

use crate::cache::entry::ResolvedKey;
use crate::error::AuthError;
use crate::key::digest::KeyDigest;
use crate::key::Environment;

/// Whether `key`, found for the `presented` digest, may be used at `now` by a
/// deployment of `environment`.
pub(crate) fn check(
    key: &ResolvedKey,
    presented: &KeyDigest,
    now: SystemTime,
    environment: Option<Environment>,
) -> Result<(), AuthError> {
    let record = &key.record;
    let current = record.digest.ct_eq(presented);
    let previous = record.previous.is_some_and(|p| p.digest.ct_eq(presented));
    if !current && !previous {
        return Err(AuthError::InvalidKey);
    }
    if record.revoked_at.is_some() {
        return Err(AuthError::RevokedKey);
    }
    if record.disabled {
        return Err(AuthError::DisabledKey);
    }
    if record.expires_at.is_some_and(|t| now >= t) {
        return Err(AuthError::ExpiredKey);
    }
    if !current && record.previous.is_some_and(|p| now >= p.until) {
        return Err(AuthError::RolledKey);
    }
    if let (Some(expected), Some(key_env)) = (environment, record.environment) {
        if expected != key_env {
            return Err(AuthError::WrongEnvironment {
                key: key_env,
                expected,
            });
        }
    }
    Ok(())
}
