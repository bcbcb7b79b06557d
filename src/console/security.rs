//! The console's response headers, cookies and request checks.
//!
//! Every response carries a strict `Content-Security-Policy`: nothing is allowed by
//! default (`default-src 'none'`), the stylesheet and script load only from the
//! console's own asset routes and only with the response's nonce, images only from the
//! host's origin (the logo), forms post only to the same origin, and no page may be
//! framed (`frame-ancestors 'none'`, `X-Frame-Options: DENY`). Responses are never
//! cached (`Cache-Control: no-store`), so the back button cannot bring a shown secret
//! back, and send no referrer, so a login link never leaks through one.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use http::header::{self, HeaderMap, HeaderValue};
use http::Response;
use rand::RngCore as _;

/// The console's cookie.
pub(crate) const COOKIE: &str = "keygate_console";

/// A fresh nonce for one response's script and style elements.
pub(crate) fn nonce() -> String {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The policy of a page whose elements carry `nonce`.
pub(crate) fn csp(nonce: &str) -> String {
    format!(
        "default-src 'none'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; \
         img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    )
}

/// The policy of a response with no page (redirects, assets).
const CSP_NONE: &str = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'";

/// Adds the headers every console response carries; a page's own policy (with its
/// nonce) is kept.
pub(crate) fn harden<B>(mut res: Response<B>) -> Response<B> {
    let h = res.headers_mut();
    if !h.contains_key(header::CONTENT_SECURITY_POLICY) {
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP_NONE),
        );
    }
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    h.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        "cross-origin-resource-policy",
        HeaderValue::from_static("same-origin"),
    );
    res
}

/// The `Set-Cookie` value of a session cookie living `max_age_secs`.
pub(crate) fn session_cookie(value: &str, path: &str, secure: bool, max_age_secs: u64) -> String {
    format!(
        "{COOKIE}={value}; Path={path}; Max-Age={max_age_secs}; HttpOnly; SameSite=Strict{}",
        if secure { "; Secure" } else { "" }
    )
}

/// The `Set-Cookie` value that removes the session cookie.
pub(crate) fn clear_cookie(path: &str, secure: bool) -> String {
    session_cookie("", path, secure, 0)
}

/// The session cookie's value, if the request carries one.
pub(crate) fn read_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value)
        .filter(|v| !v.is_empty())
}

/// Whether the browser says the request comes from another site (`Sec-Fetch-Site:
/// cross-site`): such a form post is refused even before its form token is checked.
pub(crate) fn is_cross_site(headers: &HeaderMap) -> bool {
    headers
        .get("sec-fetch-site")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"cross-site"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cookie_is_http_only_strict_and_secure_unless_turned_off() {
        let c = session_cookie("abc", "/console", true, 60);
        assert_eq!(
            c,
            "keygate_console=abc; Path=/console; Max-Age=60; HttpOnly; SameSite=Strict; Secure"
        );
        assert!(!session_cookie("abc", "/", false, 60).contains("Secure"));
    }

    #[test]
    fn the_cookie_is_found_among_others() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; keygate_console=tok; b=2"),
        );
        assert_eq!(read_cookie(&h), Some("tok"));
        h.insert(header::COOKIE, HeaderValue::from_static("keygate_console="));
        assert_eq!(read_cookie(&h), None);
    }

    #[test]
    fn the_policy_allows_only_nonced_elements() {
        let p = csp("n0");
        assert!(p.starts_with("default-src 'none'"));
        assert!(p.contains("script-src 'nonce-n0'"));
        assert!(p.contains("frame-ancestors 'none'"));
        assert!(!p.contains("unsafe"));
    }
}
