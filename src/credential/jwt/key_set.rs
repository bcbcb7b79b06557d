//! Where a [`super::JwtVerifier`]'s keys come from: configured, or fetched from a JWKS URL.

use std::fmt;
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

#[cfg(feature = "jwks")]
use super::JwksSource;
use super::{JwtKey, JwtVerifierBuilder};
use crate::credential::CredentialError;

/// Where a verifier's keys come from.
pub(super) enum KeySet {
    /// Configured, replaced by [`super::JwtVerifier::replace_keys`].
    Fixed(RwLock<Arc<[JwtKey]>>),
    /// Fetched from a JWKS URL.
    #[cfg(feature = "jwks")]
    Jwks(JwksSource),
}

impl KeySet {
    /// The keys for a token naming `kid` at `now`.
    #[cfg_attr(not(feature = "jwks"), allow(unused_variables))]
    pub(super) async fn current(
        &self,
        kid: Option<&str>,
        now: SystemTime,
    ) -> Result<Arc<[JwtKey]>, CredentialError> {
        match self {
            KeySet::Fixed(keys) => Ok(keys.read().unwrap_or_else(|e| e.into_inner()).clone()),
            #[cfg(feature = "jwks")]
            KeySet::Jwks(source) => source.keys_for(kid, now).await,
        }
    }
}

impl fmt::Debug for KeySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeySet::Fixed(keys) => keys.read().unwrap_or_else(|e| e.into_inner()).fmt(f),
            #[cfg(feature = "jwks")]
            KeySet::Jwks(source) => source.fmt(f),
        }
    }
}

impl JwtVerifierBuilder {
    /// Takes the keys from a JWKS URL, fetched and refreshed as [`JwksSource`]
    /// describes, instead of configured keys (feature `jwks`).
    ///
    /// ```
    /// use keygate::credential::jwt::{JwksSource, JwtVerifier};
    ///
    /// let jwt = JwtVerifier::builder()
    ///     .jwks(JwksSource::builder("https://auth.example.com/.well-known/jwks.json").build()?)
    ///     .issuer("https://auth.example.com/")
    ///     .build()?;
    /// # let _ = jwt;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[cfg(feature = "jwks")]
    #[cfg_attr(docsrs, doc(cfg(feature = "jwks")))]
    pub fn jwks(mut self, source: JwksSource) -> Self {
        self.jwks = Some(source);
        self
    }
}
