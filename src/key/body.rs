//! The shape of a key's body (everything after its prefix): length, alphabet, checksum.
//! Checked from lookup tables, with no I/O, before a key reaches the cache or the store.

use std::ops::RangeInclusive;

use rand::Rng;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::MalformedKey;

/// Fewest random bits a generated key carries (NIST SP 800-63B allows a fast hash such
/// as SHA-256 for secrets of 112 bits or more).
pub const MIN_GENERATED_BITS: u32 = 128;

/// Longest body a [`KeyBody`] may accept.
pub const MAX_BODY_LEN: usize = 256;

/// The characters a key body may hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Alphabet {
    /// `0-9A-Za-z` (keygate's own keys, GitHub's tokens).
    Base62,
    /// `A-Za-z0-9-_` (RFC 4648 §5, unpadded). `base64url` in
    /// configuration files.
    #[serde(rename = "base64url")]
    Base64Url,
    /// `0-9a-f`, lowercase.
    Hex,
    /// `0-9a-z`.
    LowercaseAlnum,
}

const fn table(chars: &[u8]) -> [bool; 256] {
    let mut t = [false; 256];
    let mut i = 0;
    while i < chars.len() {
        t[chars[i] as usize] = true;
        i += 1;
    }
    t
}

const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const BASE64URL: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
const HEX: &[u8] = b"0123456789abcdef";
const LOWER_ALNUM: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";

static BASE62_TABLE: [bool; 256] = table(BASE62);
static BASE64URL_TABLE: [bool; 256] = table(BASE64URL);
static HEX_TABLE: [bool; 256] = table(HEX);
static LOWER_ALNUM_TABLE: [bool; 256] = table(LOWER_ALNUM);

/// The value of each byte as a digit of `chars`, [`NOT_A_DIGIT`] for bytes outside it.
const fn digit_values(chars: &[u8]) -> [u8; 256] {
    let mut t = [NOT_A_DIGIT; 256];
    let mut i = 0;
    while i < chars.len() {
        t[chars[i] as usize] = i as u8;
        i += 1;
    }
    t
}

/// Marks a byte that is not a digit of the alphabet in a digit table. Every alphabet
/// has fewer than 128 digits, so one bit tells digits from the rest.
const NOT_A_DIGIT: u8 = 0x80;

static BASE62_DIGITS: [u8; 256] = digit_values(BASE62);
static BASE64URL_DIGITS: [u8; 256] = digit_values(BASE64URL);
static HEX_DIGITS: [u8; 256] = digit_values(HEX);
static LOWER_ALNUM_DIGITS: [u8; 256] = digit_values(LOWER_ALNUM);

impl Alphabet {
    /// Its characters, in digit order (for checksums).
    pub fn chars(self) -> &'static [u8] {
        match self {
            Alphabet::Base62 => BASE62,
            Alphabet::Base64Url => BASE64URL,
            Alphabet::Hex => HEX,
            Alphabet::LowercaseAlnum => LOWER_ALNUM,
        }
    }

    fn table(self) -> &'static [bool; 256] {
        match self {
            Alphabet::Base62 => &BASE62_TABLE,
            Alphabet::Base64Url => &BASE64URL_TABLE,
            Alphabet::Hex => &HEX_TABLE,
            Alphabet::LowercaseAlnum => &LOWER_ALNUM_TABLE,
        }
    }

    /// The alphabet's digit table: each byte's digit value, or [`NOT_A_DIGIT`].
    fn digits(self) -> &'static [u8; 256] {
        match self {
            Alphabet::Base62 => &BASE62_DIGITS,
            Alphabet::Base64Url => &BASE64URL_DIGITS,
            Alphabet::Hex => &HEX_DIGITS,
            Alphabet::LowercaseAlnum => &LOWER_ALNUM_DIGITS,
        }
    }

    /// Whether every byte of `text` is in the alphabet.
    pub fn contains_all(self, text: &[u8]) -> bool {
        let table = self.table();
        text.iter().all(|b| table[usize::from(*b)])
    }

    /// [`Alphabet::contains_all`] for the request path: one table load and one OR per
    /// byte, with no branch per byte (a key that fails is refused whole anyway, so
    /// stopping early saves nothing worth a branch), eight bytes per step.
    #[inline]
    fn scan(self, text: &[u8]) -> bool {
        let digits = self.digits();
        let mut seen = 0u8;
        let mut chunks = text.chunks_exact(8);
        for chunk in &mut chunks {
            for &b in chunk {
                seen |= digits[usize::from(b)];
            }
        }
        for &b in chunks.remainder() {
            seen |= digits[usize::from(b)];
        }
        seen & NOT_A_DIGIT == 0
    }

    /// Characters needed to write a CRC32 in this alphabet: the least `n` with
    /// `radix^n >= 2^32` (6 for base62 and base64url, 7 for lowercase alnum, 8 for hex).
    pub fn checksum_len(self) -> usize {
        // 62^6, 64^6, 16^8 and 36^7 are the first powers at or above 2^32 (tested).
        match self {
            Alphabet::Base62 | Alphabet::Base64Url => 6,
            Alphabet::Hex => 8,
            Alphabet::LowercaseAlnum => 7,
        }
    }

    /// Random bits per character, rounded down.
    fn bits_per_char(self) -> u32 {
        self.chars().len().ilog2()
    }
}

/// Whether a key body ends in a checksum.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Checksum {
    /// Every body ends in the CRC32 of the key before it, written in the body's alphabet
    /// ([`Alphabet::checksum_len`] characters). A mistyped or made-up key is refused
    /// before any lookup.
    #[default]
    On,
    /// No checksum: only the prefix, length and alphabet are checked before the lookup.
    Off,
    /// Bodies of the longest accepted length (the length keygate generates) must end in
    /// a valid checksum; shorter ones, such as keys migrated from another system, are
    /// accepted without one.
    VerifyIfPresent,
}

/// The shape of a key's body, everything after its prefix: accepted lengths (checksum
/// included), alphabet and [`Checksum`]. Every check is a table lookup or a comparison;
/// none does I/O.
///
/// **Trade-off without a checksum.** With [`Checksum::Off`] (or a short body under
/// [`Checksum::VerifyIfPresent`]), a made-up key of the right length and alphabet cannot
/// be told from a real one offline: it reaches the cache and, once per digest, the
/// store, which answer "no such key" (and the negative cache then holds that answer
/// briefly). An attacker can so make the store do one indexed lookup per new guess,
/// which rate limiting in front of keygate, or keeping the checksum on for the keys
/// keygate issues ([`Checksum::VerifyIfPresent`]), bounds. Junk of the wrong shape is
/// still refused before any lookup.
///
/// ```
/// use keygate::key::{Alphabet, Checksum, KeyBody};
///
/// // 43 base64url characters, no checksum (256 random bits).
/// let base64url = KeyBody::new(Alphabet::Base64Url, 43..=43, Checksum::Off).unwrap();
/// assert!(base64url.generates());
/// // 16 hex characters: too short to generate (64 bits), such keys can only be imported.
/// let short_hex = KeyBody::new(Alphabet::Hex, 16..=16, Checksum::Off).unwrap();
/// assert!(!short_hex.generates());
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct KeyBody {
    min: usize,
    max: usize,
    alphabet: Alphabet,
    checksum: Checksum,
}

/// A [`KeyBody`] that [`KeyBody::new`] refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid key body: {0}")]
pub struct InvalidBody(String);

impl Default for KeyBody {
    /// keygate's own: 38 base62 characters, the last 6 a checksum.
    fn default() -> Self {
        Self {
            min: 38,
            max: 38,
            alphabet: Alphabet::Base62,
            checksum: Checksum::On,
        }
    }
}

impl KeyBody {
    /// Bodies of `lengths` characters (checksum included) of `alphabet`. Lengths run from
    /// 4 to [`MAX_BODY_LEN`]; with a checksum, bodies that carry one must be longer than
    /// it.
    pub fn new(
        alphabet: Alphabet,
        lengths: RangeInclusive<usize>,
        checksum: Checksum,
    ) -> Result<Self, InvalidBody> {
        let (min, max) = (*lengths.start(), *lengths.end());
        if min < 4 || min > max || max > MAX_BODY_LEN {
            return Err(InvalidBody(format!(
                "lengths {min}..={max}: use 4 to {MAX_BODY_LEN} characters, shortest first"
            )));
        }
        let sum = alphabet.checksum_len();
        let shortest_checked = match checksum {
            Checksum::On => min,
            Checksum::VerifyIfPresent => max,
            Checksum::Off => usize::MAX,
        };
        if shortest_checked <= sum {
            return Err(InvalidBody(format!(
                "a checksummed body must be longer than its {sum}-character checksum"
            )));
        }
        Ok(Self {
            min,
            max,
            alphabet,
            checksum,
        })
    }

    /// The accepted body lengths, checksum included.
    pub fn lengths(&self) -> RangeInclusive<usize> {
        self.min..=self.max
    }

    /// The alphabet.
    pub fn alphabet(&self) -> Alphabet {
        self.alphabet
    }

    /// The checksum mode.
    pub fn checksum(&self) -> Checksum {
        self.checksum
    }

    /// Random characters of a generated body: the longest length, less the checksum.
    fn random_len(&self) -> usize {
        match self.checksum {
            Checksum::Off => self.max,
            Checksum::On | Checksum::VerifyIfPresent => self.max - self.alphabet.checksum_len(),
        }
    }

    /// Whether keygate can generate keys of this shape: the longest body, less its
    /// checksum, carries at least [`MIN_GENERATED_BITS`] random bits. Shapes that cannot
    /// are for imported keys only.
    pub fn generates(&self) -> bool {
        self.random_len() as u64 * u64::from(self.alphabet.bits_per_char())
            >= u64::from(MIN_GENERATED_BITS)
    }

    /// Checks `body`, the part of `key` after its prefix: length, alphabet, checksum.
    pub(crate) fn check(&self, key: &[u8], body: &[u8]) -> Result<(), MalformedKey> {
        if body.len() < self.min || body.len() > self.max {
            return Err(MalformedKey::Length);
        }
        if !self.alphabet.scan(body) {
            return Err(MalformedKey::Charset);
        }
        let checked = match self.checksum {
            Checksum::On => true,
            Checksum::Off => false,
            Checksum::VerifyIfPresent => body.len() == self.max,
        };
        if checked {
            let split = key.len() - self.alphabet.checksum_len();
            if self.read_checksum(&key[split..]) != u64::from(crc32fast::hash(&key[..split])) {
                return Err(MalformedKey::Checksum);
            }
        }
        Ok(())
    }

    /// The number the checksum characters write, most significant digit first: decoded
    /// and compared with the CRC32, rather than the CRC32 encoded and compared as text.
    /// Every CRC32 has exactly one encoding of [`Alphabet::checksum_len`] digits (the
    /// radix to that power is at least 2^32), and the digits decode to less than 2^48,
    /// so equal numbers mean equal text. The characters are digits already (scanned).
    #[inline]
    pub(super) fn read_checksum(&self, text: &[u8]) -> u64 {
        let digits = self.alphabet.digits();
        let radix = self.alphabet.chars().len() as u64;
        text.iter()
            .fold(0u64, |n, &c| n * radix + u64::from(digits[usize::from(c)]))
    }

    /// Appends a random body to `text` (which holds the prefix).
    pub(crate) fn generate_into(&self, text: &mut Zeroizing<String>) {
        let chars = self.alphabet.chars();
        let mut rng = rand::rng();
        for _ in 0..self.random_len() {
            text.push(char::from(chars[rng.random_range(0..chars.len())]));
        }
        if self.checksum != Checksum::Off {
            let mut buf = [0u8; 8];
            let sum = self.write_checksum(text.as_bytes(), &mut buf);
            text.push_str(std::str::from_utf8(sum).expect("alphabets are ASCII"));
        }
    }

    /// The CRC32 of `head`, in this alphabet, most significant digit first.
    pub(super) fn write_checksum<'b>(&self, head: &[u8], buf: &'b mut [u8; 8]) -> &'b [u8] {
        let chars = self.alphabet.chars();
        let radix = chars.len() as u32;
        let len = self.alphabet.checksum_len();
        let mut n = crc32fast::hash(head);
        for slot in buf[..len].iter_mut().rev() {
            *slot = chars[(n % radix) as usize];
            n /= radix;
        }
        &buf[..len]
    }
}
