//! Reading the presented key from the request headers, before any I/O.

use http::header::{HeaderMap, HeaderName, AUTHORIZATION};

use crate::error::AuthError;

/// Longest credential header value read. Anything longer is refused with 400 before it
/// is parsed or hashed. With a [credential verifier](crate::credential) the limit is
/// [`crate::credential::MAX_VERIFIED_CREDENTIAL_LEN`] instead.
pub const MAX_CREDENTIAL_LEN: usize = 512;

/// Where keys are read from.
#[derive(Clone, Debug)]
pub(crate) struct KeySource {
    /// An extra header holding the bare key, such as `X-API-Key`. Opt-in.
    pub(crate) alt_header: Option<HeaderName>,
    /// Longest credential header value read: [`MAX_CREDENTIAL_LEN`], or more with a
    /// credential verifier.
    pub(crate) max_len: usize,
}

impl Default for KeySource {
    fn default() -> Self {
        Self {
            alt_header: None,
            max_len: MAX_CREDENTIAL_LEN,
        }
    }
}

impl KeySource {
    /// The presented token's bytes, `Ok(None)` when the request carries no credentials.
    ///
    /// The scheme, the blanks and the header count are checked here; the token's
    /// characters are not, and it is not converted to text. A key format checks them
    /// anyway (its alphabet is narrower than RFC 6750's `b64token`, and ASCII), so the
    /// value is scanned once on the way to a key. Only a token the format refuses is
    /// checked with [`check_token68`], to tell a malformed request (400) from a wrong key
    /// (401), and only then does it become text.
    #[inline]
    pub(crate) fn token<'h>(&self, headers: &'h HeaderMap) -> Result<Option<&'h [u8]>, AuthError> {
        let bearer = single(headers, &AUTHORIZATION, self.max_len)?;
        let alt = match &self.alt_header {
            Some(name) => single(headers, name, self.max_len)?,
            None => None,
        };
        match (bearer, alt) {
            (Some(_), Some(_)) => Err(AuthError::InvalidRequest(
                "Send the API key in one header only, not in both Authorization and the API key header",
            )),
            (Some(value), None) => bearer_token(value).map(Some),
            (None, Some(value)) => nonempty(trim_blanks(value)).map(Some),
            (None, None) => Ok(None),
        }
    }
}

/// The only value of `name`, as bytes; 400 for two or more, or for one too long.
#[inline]
fn single<'h>(
    headers: &'h HeaderMap,
    name: &HeaderName,
    max_len: usize,
) -> Result<Option<&'h [u8]>, AuthError> {
    let mut values = headers.get_all(name).iter();
    let Some(first) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(AuthError::InvalidRequest(
            "Send exactly one Authorization header",
        ));
    }
    if first.len() > max_len {
        return Err(AuthError::InvalidRequest(
            "The credential header is too long",
        ));
    }
    Ok(Some(first.as_bytes()))
}

/// Parses an `Authorization` value of the form `Bearer <token>` and returns the token.
///
/// The scheme is matched case-insensitively; spaces and tabs around either part are
/// allowed. Anything else — another scheme, an empty token, characters outside RFC 6750's
/// `b64token` — is [`AuthError::InvalidRequest`]. The token is not checked against a
/// [`crate::key::KeyFormat`].
pub fn parse_bearer(value: &str) -> Result<&str, AuthError> {
    let token = bearer_token(value.as_bytes())?;
    token68(token)
}

/// The token of a `Bearer` value's bytes (which need not be ASCII), its characters not
/// yet checked.
#[inline]
fn bearer_token(value: &[u8]) -> Result<&[u8], AuthError> {
    // The common shape first: `Bearer ` in any case, one space, then a token with no
    // blank at either end. One word compare for the scheme; OR-ing 0x20 into a byte
    // yields a lowercase letter only from that letter in either case.
    const SCHEME: u64 = u64::from_le_bytes(*b"bearer \0");
    const LOWER: u64 = u64::from_le_bytes([0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0, 0]);
    const FIRST7: u64 = u64::from_le_bytes([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0]);
    if let (Some(head), Some(&last)) = (value.first_chunk::<8>(), value.last()) {
        let word = u64::from_le_bytes(*head);
        if (word | LOWER) & FIRST7 == SCHEME
            && !head[7].is_ascii_whitespace()
            && !last.is_ascii_whitespace()
        {
            return Ok(&value[7..]);
        }
    }
    bearer_token_slow(value)
}

/// [`bearer_token`] for every other shape: blanks around either part, tabs.
fn bearer_token_slow(value: &[u8]) -> Result<&[u8], AuthError> {
    let value = value.trim_ascii();
    // "bearer", then at least one space or tab.
    let scheme_ok = value.len() > 6
        && value[..6].eq_ignore_ascii_case(b"bearer")
        && matches!(value[6], b' ' | b'\t');
    if !scheme_ok {
        return Err(if value.eq_ignore_ascii_case(b"bearer") {
            AuthError::InvalidRequest("The Bearer token is empty")
        } else {
            AuthError::InvalidRequest("Use the Bearer scheme: Authorization: Bearer <api key>")
        });
    }
    nonempty(value[7..].trim_ascii_start())
}

/// 400 for an empty token.
#[inline]
fn nonempty(token: &[u8]) -> Result<&[u8], AuthError> {
    if token.is_empty() {
        Err(AuthError::InvalidRequest("The Bearer token is empty"))
    } else {
        Ok(token)
    }
}

fn not_b64token() -> AuthError {
    AuthError::InvalidRequest("The Bearer token holds characters that are not allowed")
}

/// A token the key format refused, as text when it is at least RFC 6750's `b64token`;
/// if not, the request is malformed (400) rather than carrying a wrong key (401).
pub(crate) fn check_token68(token: &[u8]) -> Result<&str, AuthError> {
    token68(token)
}

/// `value` without leading and trailing spaces and tabs.
fn trim_blanks(value: &[u8]) -> &[u8] {
    let start = value.iter().position(|b| !matches!(b, b' ' | b'\t'));
    let end = value.iter().rposition(|b| !matches!(b, b' ' | b'\t'));
    match (start, end) {
        (Some(start), Some(end)) => &value[start..=end],
        _ => &[],
    }
}

/// The bytes RFC 6750's `b64token` allows before its `=` padding.
static B64TOKEN: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = c.is_ascii_alphanumeric()
            || c == b'-'
            || c == b'.'
            || c == b'_'
            || c == b'~'
            || c == b'+'
            || c == b'/';
        b += 1;
    }
    table
};

/// RFC 6750's `b64token`: `1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`.
/// One pass over the bytes; what passes is ASCII.
fn token68(token: &[u8]) -> Result<&str, AuthError> {
    let token = nonempty(token)?;
    let padding = token.iter().rev().take_while(|&&b| b == b'=').count();
    let body = &token[..token.len() - padding];
    let ok = !body.is_empty() && body.iter().all(|&b| B64TOKEN[usize::from(b)]);
    match std::str::from_utf8(token) {
        Ok(text) if ok => Ok(text),
        _ => Err(not_b64token()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    /// What the layer makes of the headers before the key format: the token, checked
    /// against `b64token` as it is when the format refuses it.
    fn checked(src: &KeySource, headers: &HeaderMap) -> Result<Option<String>, AuthError> {
        match src.token(headers)? {
            Some(token) => Ok(Some(check_token68(token)?.to_owned())),
            None => Ok(None),
        }
    }

    fn headers(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(AUTHORIZATION, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn scheme_is_case_insensitive_and_whitespace_tolerated() {
        let src = KeySource::default();
        for v in [
            "Bearer abc",
            "bearer abc",
            "BEARER   abc",
            " \tBearer\t abc  ",
        ] {
            assert_eq!(
                src.token(&headers(&[v])).unwrap(),
                Some(&b"abc"[..]),
                "{v:?}"
            );
            assert_eq!(parse_bearer(v).unwrap(), "abc", "{v:?}");
        }
    }

    #[test]
    fn malformed_values_are_invalid_requests() {
        let src = KeySource::default();
        for v in [
            "Basic abc",
            "Bearer",
            "Bearer ",
            "Bearer a b",
            "Bearer %73k",
            "Bearerabc",
        ] {
            let err = checked(&src, &headers(&[v])).unwrap_err();
            assert_eq!(err.code(), "invalid_request", "{v:?}");
            assert_eq!(parse_bearer(v).unwrap_err().code(), "invalid_request");
        }
        let err = src.token(&headers(&["Bearer a", "Bearer b"])).unwrap_err();
        assert_eq!(err.code(), "invalid_request");
    }

    #[test]
    fn non_ascii_and_control_bytes_are_invalid_requests() {
        let src = KeySource::default();
        for v in [
            &b"Bearer sk_\xc3\xa9"[..],
            b"Bearer abc\x80",
            b"Bearer =",
            b"Bearer \xff",
        ] {
            let mut h = HeaderMap::new();
            h.append(AUTHORIZATION, HeaderValue::from_bytes(v).unwrap());
            let err = checked(&src, &h).unwrap_err();
            assert_eq!(err.code(), "invalid_request", "{v:?}");
        }
    }

    #[test]
    fn alternative_header_is_trimmed_and_checked() {
        let src = KeySource {
            alt_header: Some(HeaderName::from_static("x-api-key")),
            ..KeySource::default()
        };
        let mut h = HeaderMap::new();
        h.insert("x-api-key", HeaderValue::from_static(" \tabc== "));
        assert_eq!(checked(&src, &h).unwrap().as_deref(), Some("abc=="));
        h.insert("x-api-key", HeaderValue::from_static("a b"));
        assert!(checked(&src, &h).is_err());
        h.insert("x-api-key", HeaderValue::from_static("  "));
        assert!(src.token(&h).is_err());
    }

    proptest::proptest! {
        #[test]
        fn the_common_shape_shortcut_agrees_with_the_full_parse(
            scheme in "[bB][eE][aA][rR][eE][rR]|Basic|bearer[a-z]",
            blanks in "[ \t\n]{0,3}",
            token in "[ \t]?[A-Za-z0-9_=-]{0,12}[ \t\r]?",
        ) {
            let value = format!("{scheme}{blanks}{token}");
            let fast = bearer_token(value.as_bytes()).map_err(|e| e.to_string());
            let slow = bearer_token_slow(value.as_bytes()).map_err(|e| e.to_string());
            proptest::prop_assert_eq!(fast, slow, "{:?}", value);
        }
    }

    #[test]
    fn missing_header_is_no_credentials() {
        assert_eq!(KeySource::default().token(&HeaderMap::new()).unwrap(), None);
    }
}
