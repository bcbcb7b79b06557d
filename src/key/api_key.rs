//! [`ApiKey`]: a plaintext key, as handed to its owner once.

use std::fmt;

use zeroize::Zeroizing;

/// A plaintext API key, as returned once at creation or roll.
///
/// Its memory is zeroed when dropped. `Debug` and `Display` show only the prefix; call
/// [`ApiKey::expose_secret`] to read the key itself, once, to hand it to its owner.
#[derive(Clone)]
pub struct ApiKey {
    pub(super) text: Zeroizing<String>,
    pub(super) prefix_len: usize,
}

impl ApiKey {
    /// The full key. Show it to its owner once; never log or store it.
    pub fn expose_secret(&self) -> &str {
        &self.text
    }

    /// The key's prefix, such as `sk_live_`.
    pub fn prefix(&self) -> &str {
        &self.text[..self.prefix_len]
    }

    /// The prefix and the first four characters after it: enough to recognise a key in a
    /// list, far too little to guess it.
    pub fn start(&self) -> &str {
        &self.text[..(self.prefix_len + 4).min(self.text.len())]
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiKey")
            .field("prefix", &self.prefix())
            .field("secret", &"[redacted]")
            .finish()
    }
}

impl fmt::Display for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}[redacted]", self.prefix())
    }
}
