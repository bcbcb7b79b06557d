//! SHA-256 digests of keys: the only form in which a key is ever stored.

use std::fmt;
use std::hash::{BuildHasher, Hash, Hasher};

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The 32-byte SHA-256 (or peppered HMAC-SHA-256) digest of a key.
///
/// Stores index keys by this value. Its `Debug` output is redacted: a digest is not the
/// key, but it is what an attacker would need to recognise a key in a stolen dump, so it
/// stays out of logs too.
///
/// Equality (`==`) is constant-time, so every comparison of digests, including the ones
/// hash maps and caches make internally, leaks nothing through timing.
#[derive(Clone, Copy, Eq)]
pub struct KeyDigest([u8; 32]);

impl PartialEq for KeyDigest {
    fn eq(&self, other: &Self) -> bool {
        self.ct_eq(other)
    }
}

impl KeyDigest {
    /// Wraps raw digest bytes, for stores that persist them.
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The raw digest bytes, for stores that persist them.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Compares two digests in constant time.
    pub fn ct_eq(&self, other: &KeyDigest) -> bool {
        // Four 64-bit words rather than 32 bytes: the same constant-time comparison
        // (`subtle`, no early exit) in an eighth of the steps.
        self.words().ct_eq(&other.words()).into()
    }

    /// The digest as four words, for comparisons without a call to `memcmp`.
    #[inline]
    pub(crate) fn words(&self) -> [u64; 4] {
        std::array::from_fn(|i| {
            let mut word = [0u8; 8];
            word.copy_from_slice(&self.0[i * 8..i * 8 + 8]);
            u64::from_le_bytes(word)
        })
    }

    /// Lower-case hex, for stores that persist digests as text.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses 64 hex characters.
    pub fn from_hex(text: &str) -> Option<Self> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(text, &mut out).ok()?;
        Some(Self(out))
    }
}

impl Hash for KeyDigest {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // The digest is uniformly random already: eight of its bytes are a perfect hash.
        let mut word = [0u8; 8];
        word.copy_from_slice(&self.0[..8]);
        state.write_u64(u64::from_le_bytes(word));
    }
}

impl fmt::Debug for KeyDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeyDigest([redacted])")
    }
}

/// A [`BuildHasher`] for maps keyed by [`KeyDigest`]: it passes the digest's own
/// randomness through instead of hashing it again.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct DigestHasher;

/// The [`Hasher`] built by [`DigestHasher`].
#[derive(Default)]
pub(crate) struct PassThroughHasher(u64);

impl BuildHasher for DigestHasher {
    type Hasher = PassThroughHasher;
    fn build_hasher(&self) -> PassThroughHasher {
        PassThroughHasher(0)
    }
}

impl Hasher for PassThroughHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Only reached for key types other than `KeyDigest`; stay correct for them.
        for &b in bytes {
            self.0 = (self.0.rotate_left(5) ^ u64::from(b)).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
        }
    }
    fn write_u64(&mut self, word: u64) {
        self.0 ^= word;
    }
}

/// Turns a presented key into its [`KeyDigest`].
///
/// By default this is plain SHA-256 of the whole key, prefix included. That is safe for
/// keygate's keys because each carries at least 190 random bits: no dictionary or brute
/// force can invert the digest (NIST SP 800-63B allows a fast hash for secrets of 112 bits
/// or more). A deployment may add a server-side *pepper*, making the digest
/// HMAC-SHA-256 under a secret that lives outside the database. Then a stolen copy of the
/// store cannot even confirm a guessed or leaked key. Changing or losing the pepper
/// invalidates every stored key, so it is opt-in.
#[derive(Clone, Default)]
pub struct KeyHasher {
    pepper: Option<Hmac<Sha256>>,
}

impl KeyHasher {
    /// Plain SHA-256.
    pub fn sha256() -> Self {
        Self { pepper: None }
    }

    /// HMAC-SHA-256 keyed with a server-side pepper.
    pub fn with_pepper(pepper: &[u8]) -> Self {
        let mac =
            <Hmac<Sha256> as Mac>::new_from_slice(pepper).expect("HMAC accepts keys of any length");
        Self { pepper: Some(mac) }
    }

    /// Whether a pepper is configured.
    pub fn is_peppered(&self) -> bool {
        self.pepper.is_some()
    }

    /// The digest of `key`.
    pub fn digest(&self, key: &str) -> KeyDigest {
        self.digest_bytes(key.as_bytes())
    }

    /// The digest of a key's bytes, as the request path has them.
    #[inline]
    pub(crate) fn digest_bytes(&self, key: &[u8]) -> KeyDigest {
        match &self.pepper {
            None => KeyDigest(Sha256::digest(key).into()),
            Some(mac) => {
                let mut mac = mac.clone();
                mac.update(key);
                KeyDigest(mac.finalize().into_bytes().into())
            }
        }
    }
}

impl fmt::Debug for KeyHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyHasher")
            .field("peppered", &self.is_peppered())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_matches_known_vector() {
        let d = KeyHasher::sha256().digest("abc");
        assert_eq!(
            d.to_hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(KeyDigest::from_hex(&d.to_hex()), Some(d));
    }

    #[test]
    fn ct_eq_compares_every_byte() {
        let a = KeyHasher::sha256().digest("a");
        assert!(a.ct_eq(&a));
        for i in 0..32 {
            let mut bytes = *a.as_bytes();
            bytes[i] ^= 0x80;
            assert!(!a.ct_eq(&KeyDigest::from_bytes(bytes)), "byte {i}");
        }
    }

    #[test]
    fn pepper_changes_the_digest_and_is_not_printed() {
        let plain = KeyHasher::sha256().digest("sk_test_x");
        let peppered = KeyHasher::with_pepper(b"pepper-secret").digest("sk_test_x");
        assert!(!plain.ct_eq(&peppered));
        let shown = format!("{:?}", KeyHasher::with_pepper(b"pepper-secret"));
        assert!(!shown.contains("pepper-secret"));
        assert_eq!(format!("{plain:?}"), "KeyDigest([redacted])");
    }
}
