//! Signing secrets (`whsec_…`) and the Standard Webhooks signature.

use std::time::SystemTime;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use zeroize::Zeroizing;

use super::WebhookConfigError;

/// The prefix of a Standard Webhooks secret.
const PREFIX: &str = "whsec_";
/// Shortest and longest secret, in bytes, as the specification recommends.
const MIN_BYTES: usize = 24;
const MAX_BYTES: usize = 64;

/// A webhook signing secret: `whsec_` followed by the base64 of 24 to 64 random bytes,
/// as the Standard Webhooks specification defines it.
///
/// Its bytes are wiped when it is dropped, and never shown by `Debug`; only
/// [`WebhookSecret::expose_secret`] gives its text back, to hand to a receiver.
///
/// ```
/// use keygate::webhooks::WebhookSecret;
///
/// let secret = WebhookSecret::generate();
/// let text = secret.expose_secret();
/// assert!(text.starts_with("whsec_"));
/// assert_eq!(format!("{secret:?}"), "WebhookSecret(whsec_…)");
/// assert!(WebhookSecret::parse(&text).is_ok());
/// assert!(WebhookSecret::parse("whsec_short").is_err());
/// ```
#[derive(Clone)]
pub struct WebhookSecret {
    key: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret(whsec_…)")
    }
}

impl WebhookSecret {
    /// Parses `whsec_<base64>`. Refused (with a message that never quotes the text)
    /// without the prefix, when the rest is not standard base64, or when it decodes to
    /// fewer than 24 or more than 64 bytes.
    pub fn parse(text: &str) -> Result<Self, WebhookConfigError> {
        let encoded = text.trim().strip_prefix(PREFIX).ok_or_else(|| {
            WebhookConfigError::InvalidSecret("a webhook secret starts with whsec_".into())
        })?;
        let key = Zeroizing::new(STANDARD.decode(encoded).map_err(|_| {
            WebhookConfigError::InvalidSecret("the part after whsec_ is not base64".into())
        })?);
        if !(MIN_BYTES..=MAX_BYTES).contains(&key.len()) {
            return Err(WebhookConfigError::InvalidSecret(format!(
                "a webhook secret holds {MIN_BYTES} to {MAX_BYTES} bytes, not {}",
                key.len()
            )));
        }
        Ok(Self { key })
    }

    /// A new random secret of 32 bytes.
    pub fn generate() -> Self {
        let mut key = Zeroizing::new(vec![0u8; 32]);
        rand::rng().fill_bytes(&mut key);
        Self { key }
    }

    /// The secret's text, `whsec_…`, to configure a receiver with.
    pub fn expose_secret(&self) -> String {
        format!("{PREFIX}{}", STANDARD.encode(&*self.key))
    }

    /// The base64 HMAC-SHA256 of `{id}.{timestamp}.{body}` under this secret.
    pub(crate) fn sign(&self, id: &str, timestamp: u64, body: &[u8]) -> String {
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&self.key) else {
            unreachable!("HMAC takes keys of any length")
        };
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        STANDARD.encode(mac.finalize().into_bytes())
    }
}

/// The secrets a delivery is signed with: the current one and, while a rotation's
/// overlap lasts, the previous one too.
#[derive(Clone, Debug)]
pub(crate) struct Signing {
    pub(crate) current: WebhookSecret,
    pub(crate) previous: Option<(WebhookSecret, SystemTime)>,
}

impl Signing {
    /// The `webhook-signature` header value at `now`: `v1,<sig>`, and a second,
    /// space-separated entry under the previous secret while it is still valid.
    pub(crate) fn header(&self, id: &str, timestamp: u64, body: &[u8], now: SystemTime) -> String {
        let mut header = format!("v1,{}", self.current.sign(id, timestamp, body));
        if let Some((previous, until)) = &self.previous {
            if now < *until {
                header.push_str(" v1,");
                header.push_str(&previous.sign(id, timestamp, body));
            }
        }
        header
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_round_trips_through_its_text_and_never_shows_in_debug() {
        let secret = WebhookSecret::generate();
        let text = secret.expose_secret();
        let again = WebhookSecret::parse(&text).unwrap();
        assert_eq!(*again.key, *secret.key);
        assert!(!format!("{again:?}").contains(&text[6..]));
    }

    #[test]
    fn malformed_secrets_are_refused_without_quoting_them() {
        for bad in ["", "whsec_", "whsec_!!!!", "sk_abc", "whsec_c2hvcnQ="] {
            let err = WebhookSecret::parse(bad).unwrap_err().to_string();
            assert!(bad.len() < 7 || !err.contains(&bad[6..]), "{err}");
        }
    }

    #[test]
    fn the_previous_secret_signs_only_until_its_end() {
        let signing = Signing {
            current: WebhookSecret::generate(),
            previous: Some((
                WebhookSecret::generate(),
                SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(100),
            )),
        };
        let early = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(99);
        let late = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(100);
        assert_eq!(
            signing.header("msg_1", 1, b"{}", early).split(' ').count(),
            2
        );
        assert_eq!(
            signing.header("msg_1", 1, b"{}", late).split(' ').count(),
            1
        );
    }
}
