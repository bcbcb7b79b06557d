//! The public keys a [`super::JwtVerifier`] trusts: each with one algorithm, from PEM or
//! from a JWKS document, selected by `kid`.

use std::fmt;

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};

/// The signature algorithms a [`super::JwtVerifier`] accepts. Each configured key has
/// exactly one, so a token cannot choose another (no `alg: none`, no HMAC with a public
/// key as the secret).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum JwtAlgorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    Rs256,
    /// ECDSA on P-256 with SHA-256.
    Es256,
    /// EdDSA on Ed25519.
    EdDsa,
}

impl JwtAlgorithm {
    pub(super) fn to_jsonwebtoken(self) -> Algorithm {
        match self {
            JwtAlgorithm::Rs256 => Algorithm::RS256,
            JwtAlgorithm::Es256 => Algorithm::ES256,
            JwtAlgorithm::EdDsa => Algorithm::EdDSA,
        }
    }

    /// The `alg` header value.
    pub fn as_str(self) -> &'static str {
        match self {
            JwtAlgorithm::Rs256 => "RS256",
            JwtAlgorithm::Es256 => "ES256",
            JwtAlgorithm::EdDsa => "EdDSA",
        }
    }
}

impl fmt::Display for JwtAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A configuration mistake found while building a [`super::JwtVerifier`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JwtConfigError {
    /// A PEM document is not a public key of the algorithm's kind.
    #[error("not a {algorithm} public key in PEM form: {reason}")]
    InvalidPem {
        /// The algorithm the key was meant for.
        algorithm: JwtAlgorithm,
        /// What the parser said.
        reason: String,
    },
    /// The JWKS document is not a JSON object with a `keys` array.
    #[error("not a JWKS document: {0}")]
    InvalidJwks(String),
    /// The JWKS document holds no signing key of a supported algorithm.
    #[error("the JWKS document holds no RS256, ES256 or EdDSA signing key")]
    NoUsableJwk,
    /// Two keys have the same `kid`, or more than one key has none.
    #[error("two keys have the key id {0:?}")]
    DuplicateKid(Option<String>),
    /// No key was configured.
    #[error("a JwtVerifier needs at least one public key")]
    NoKeys,
    /// Keys were configured or replaced on a verifier whose keys come from a JWKS URL
    /// (feature `jwks`).
    #[error("the keys come from a JWKS URL; they cannot also be configured or replaced")]
    KeysFromJwks,
}

/// One public key a [`super::JwtVerifier`] trusts, with its algorithm and optional
/// `kid`.
///
/// ```
/// use keygate::credential::jwt::JwtKey;
///
/// let pem = "-----BEGIN PUBLIC KEY-----\n\
///            MCowBQYDK2VwAyEA8OOLKldapI6Ti63boo2whYFkQOvfWuiPS0hTlPsnTpc=\n\
///            -----END PUBLIC KEY-----\n";
/// let key = JwtKey::ed25519_pem(pem.as_bytes())?.kid("2024-06");
/// assert_eq!(key.key_id(), Some("2024-06"));
/// # Ok::<(), keygate::credential::jwt::JwtConfigError>(())
/// ```
#[derive(Clone)]
pub struct JwtKey {
    pub(super) kid: Option<String>,
    pub(super) algorithm: JwtAlgorithm,
    pub(super) decoding: DecodingKey,
}

impl JwtKey {
    /// An RSA public key (`BEGIN PUBLIC KEY` or `BEGIN RSA PUBLIC KEY`) for RS256.
    pub fn rs256_pem(pem: &[u8]) -> Result<Self, JwtConfigError> {
        Self::from_pem(JwtAlgorithm::Rs256, DecodingKey::from_rsa_pem(pem))
    }

    /// A P-256 public key (`BEGIN PUBLIC KEY`) for ES256.
    pub fn es256_pem(pem: &[u8]) -> Result<Self, JwtConfigError> {
        Self::from_pem(JwtAlgorithm::Es256, DecodingKey::from_ec_pem(pem))
    }

    /// An Ed25519 public key (`BEGIN PUBLIC KEY`) for EdDSA.
    pub fn ed25519_pem(pem: &[u8]) -> Result<Self, JwtConfigError> {
        Self::from_pem(JwtAlgorithm::EdDsa, DecodingKey::from_ed_pem(pem))
    }

    fn from_pem(
        algorithm: JwtAlgorithm,
        parsed: jsonwebtoken::errors::Result<DecodingKey>,
    ) -> Result<Self, JwtConfigError> {
        let decoding = parsed.map_err(|e| JwtConfigError::InvalidPem {
            algorithm,
            reason: e.to_string(),
        })?;
        Ok(Self {
            kid: None,
            algorithm,
            decoding,
        })
    }

    /// Names the key: tokens whose header carries this `kid` are checked with it.
    #[must_use]
    pub fn kid(mut self, kid: impl Into<String>) -> Self {
        self.kid = Some(kid.into());
        self
    }

    /// The key's `kid`, if it has one.
    pub fn key_id(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The one algorithm tokens checked with this key must use.
    pub fn algorithm(&self) -> JwtAlgorithm {
        self.algorithm
    }

    /// The signing keys of a JWKS document (RFC 7517), such as an identity provider's
    /// `/.well-known/jwks.json`. Keys for encryption (`"use": "enc"`), symmetric
    /// (`oct`) keys and keys of other algorithms are skipped; a document with no usable
    /// key is an error. A key's algorithm is its `alg`, or else follows from its type:
    /// `RSA` is RS256, `EC` on P-256 is ES256, `OKP` on Ed25519 is EdDSA.
    pub fn from_jwks(jwks: &str) -> Result<Vec<Self>, JwtConfigError> {
        let doc: serde_json::Value =
            serde_json::from_str(jwks).map_err(|e| JwtConfigError::InvalidJwks(e.to_string()))?;
        let entries = doc
            .get("keys")
            .and_then(serde_json::Value::as_array)
            .ok_or_else(|| JwtConfigError::InvalidJwks("no `keys` array".into()))?;
        let keys: Vec<Self> = entries
            .iter()
            .filter_map(|entry| serde_json::from_value::<Jwk>(entry.clone()).ok())
            .filter_map(|jwk| Self::from_jwk(&jwk))
            .collect();
        if keys.is_empty() {
            return Err(JwtConfigError::NoUsableJwk);
        }
        Ok(keys)
    }

    /// A signing key of a supported algorithm, or `None`.
    fn from_jwk(jwk: &Jwk) -> Option<Self> {
        if matches!(jwk.common.public_key_use, Some(ref u) if *u != PublicKeyUse::Signature) {
            return None;
        }
        let by_type = match &jwk.algorithm {
            AlgorithmParameters::RSA(_) => JwtAlgorithm::Rs256,
            AlgorithmParameters::EllipticCurve(p) if p.curve == EllipticCurve::P256 => {
                JwtAlgorithm::Es256
            }
            AlgorithmParameters::OctetKeyPair(p) if p.curve == EllipticCurve::Ed25519 => {
                JwtAlgorithm::EdDsa
            }
            _ => return None,
        };
        let declared = match jwk.common.key_algorithm {
            None => by_type,
            Some(KeyAlgorithm::RS256) => JwtAlgorithm::Rs256,
            Some(KeyAlgorithm::ES256) => JwtAlgorithm::Es256,
            Some(KeyAlgorithm::EdDSA) => JwtAlgorithm::EdDsa,
            Some(_) => return None,
        };
        if declared != by_type {
            return None;
        }
        let decoding = DecodingKey::from_jwk(jwk).ok()?;
        Some(Self {
            kid: jwk.common.key_id.clone(),
            algorithm: declared,
            decoding,
        })
    }
}

impl fmt::Debug for JwtKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtKey")
            .field("kid", &self.kid)
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

/// Why no key checks a token.
pub(super) enum KeyChoice<'k> {
    Key(&'k JwtKey),
    UnknownKid,
    NoKid,
}

/// Selects the key for a token's `kid`: the key with that `kid`; or, for a token with
/// none, the only key configured.
pub(super) fn choose<'k>(keys: &'k [JwtKey], kid: Option<&str>) -> KeyChoice<'k> {
    match kid {
        Some(kid) => keys
            .iter()
            .find(|k| k.kid.as_deref() == Some(kid))
            .map_or(KeyChoice::UnknownKid, KeyChoice::Key),
        None if keys.len() == 1 => KeyChoice::Key(&keys[0]),
        None => KeyChoice::NoKid,
    }
}

/// Refuses two keys with one `kid` (or two without), which would make the choice
/// ambiguous.
pub(super) fn check_unique(keys: &[JwtKey]) -> Result<(), JwtConfigError> {
    for (i, key) in keys.iter().enumerate() {
        if keys[..i].iter().any(|k| k.kid == key.kid) {
            return Err(JwtConfigError::DuplicateKid(key.kid.clone()));
        }
    }
    Ok(())
}
