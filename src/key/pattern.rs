//! The regular expression of a prefix's keys, for registering the format with a secret
//! scanner.

use super::{Alphabet, KeyFormat, KeyPrefix};

impl Alphabet {
    /// The alphabet as a regular-expression character class, such as `[0-9A-Za-z]`.
    pub fn pattern_class(self) -> &'static str {
        match self {
            Alphabet::Base62 => "[0-9A-Za-z]",
            Alphabet::Base64Url => "[0-9A-Za-z_-]",
            Alphabet::Hex => "[0-9a-f]",
            Alphabet::LowercaseAlnum => "[0-9a-z]",
        }
    }
}

/// What may stand next to a key in text: anything but a character of any alphabet or
/// of a prefix.
const BOUNDARY: &str = "[^0-9A-Za-z_-]";

impl KeyPrefix {
    /// A regular expression (RE2, PCRE and Rust `regex` syntax) finding the keys of this
    /// prefix in running text, the key being its first capture group:
    /// `(?:^|[^0-9A-Za-z_-])(<prefix><alphabet>{<length>})(?:[^0-9A-Za-z_-]|$)`. A key
    /// run into a longer word, or one character too long or short, is not found.
    ///
    /// A regular expression cannot check a CRC32, so a key with a wrong checksum
    /// character still matches; keygate refuses it offline, and a secret-scanning alert
    /// for it is answered `false_positive` without touching the store.
    ///
    /// ```
    /// use keygate::key::KeyFormat;
    ///
    /// let format = KeyFormat::default();
    /// let live = format.prefix("sk_live_").unwrap();
    /// assert_eq!(
    ///     live.pattern(),
    ///     r"(?:^|[^0-9A-Za-z_-])(sk_live_[0-9A-Za-z]{38})(?:[^0-9A-Za-z_-]|$)"
    /// );
    /// ```
    pub fn pattern(&self) -> String {
        let body = self.body();
        let lengths = body.lengths();
        let count = if lengths.start() == lengths.end() {
            format!("{{{}}}", lengths.start())
        } else {
            format!("{{{},{}}}", lengths.start(), lengths.end())
        };
        // Prefixes are `a-z`, `0-9` and `_`: nothing to escape.
        format!(
            "(?:^|{BOUNDARY})({}{}{count})(?:{BOUNDARY}|$)",
            self.as_str(),
            body.alphabet().pattern_class()
        )
    }
}

impl KeyFormat {
    /// Each prefix and the regular expression of its keys ([`KeyPrefix::pattern`]),
    /// longest prefix first.
    pub fn patterns(&self) -> Vec<(&KeyPrefix, String)> {
        self.prefixes().iter().map(|p| (p, p.pattern())).collect()
    }
}
