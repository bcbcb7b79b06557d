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
    /// The presented token, `Ok(None)` when the request carries no credentials.
    pub(crate) fn token<'h>(&self, headers: &'h HeaderMap) -> Result<Option<&'h str>, AuthError> {
        let bearer = single(headers, &AUTHORIZATION, self.max_len)?;
        let alt = match &self.alt_header {
            Some(name) => single(headers, name, self.max_len)?,
            None => None,
        };
        match (bearer, alt) {
            (Some(_), Some(_)) => Err(AuthError::InvalidRequest(
                "Send the API key in one header only, not in both Authorization and the API key header",
            )),
            (Some(value), None) => parse_bearer(value).map(Some),
            (None, Some(value)) => token68(value.trim_matches([' ', '\t'])).map(Some),
            (None, None) => Ok(None),
        }
    }
}

/// The only value of `name`; 400 for two or more.
fn single<'h>(
    headers: &'h HeaderMap,
    name: &HeaderName,
    max_len: usize,
) -> Result<Option<&'h str>, AuthError> {
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
    first
        .to_str()
        .map(Some)
        .map_err(|_| AuthError::InvalidRequest("The credential header must be printable ASCII"))
}

/// Parses an `Authorization` value of the form `Bearer <token>` and returns the token.
///
/// The scheme is matched case-insensitively; spaces and tabs around either part are
/// allowed. Anything else — another scheme, an empty token, characters outside RFC 6750's
/// `b64token` — is [`AuthError::InvalidRequest`]. The token is not checked against a
/// [`crate::KeyFormat`].
pub fn parse_bearer(value: &str) -> Result<&str, AuthError> {
    let value = value.trim_ascii();
    let bytes = value.as_bytes();
    // "bearer", then at least one space or tab.
    let scheme_ok = bytes.len() > 6
        && bytes[..6].eq_ignore_ascii_case(b"bearer")
        && matches!(bytes[6], b' ' | b'\t');
    if !scheme_ok {
        return Err(if value.eq_ignore_ascii_case("bearer") {
            AuthError::InvalidRequest("The Bearer token is empty")
        } else {
            AuthError::InvalidRequest("Use the Bearer scheme: Authorization: Bearer <api key>")
        });
    }
    // `value` is ASCII up to here, so byte 7 is a character boundary.
    token68(value[7..].trim_ascii_start())
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
fn token68(token: &str) -> Result<&str, AuthError> {
    if token.is_empty() {
        return Err(AuthError::InvalidRequest("The Bearer token is empty"));
    }
    let body = token.trim_end_matches('=');
    let ok = !body.is_empty() && body.bytes().all(|b| B64TOKEN[usize::from(b)]);
    if ok {
        Ok(token)
    } else {
        Err(AuthError::InvalidRequest(
            "The Bearer token holds characters that are not allowed",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

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
            assert_eq!(src.token(&headers(&[v])).unwrap(), Some("abc"), "{v:?}");
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
            let err = src.token(&headers(&[v])).unwrap_err();
            assert_eq!(err.code(), "invalid_request", "{v:?}");
        }
        let err = src.token(&headers(&["Bearer a", "Bearer b"])).unwrap_err();
        assert_eq!(err.code(), "invalid_request");
    }

    #[test]
    fn missing_header_is_no_credentials() {
        assert_eq!(KeySource::default().token(&HeaderMap::new()).unwrap(), None);
    }
}
