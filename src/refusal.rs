//! Turning a refusal into a response: JSON by default, pluggable, gRPC-aware.

use bytes::Bytes;
use http::header::{HeaderValue, CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE};
use http::{Response, StatusCode};

use crate::error::{retry_after_secs, AuthError};
use crate::ratelimit::{QuotaFields, RateLimitStatus};

/// A refusal about to be rendered.
#[derive(Debug)]
#[non_exhaustive]
pub struct Refusal<'a> {
    /// Why the request was refused.
    pub error: &'a AuthError,
    /// The configured realm.
    pub realm: &'a str,
    /// The key's rate-limit state: when the limiter refused, and on the refusals after
    /// the key was recognised (IP, scopes, read-only), which take no token.
    pub rate_limit: Option<&'a RateLimitStatus>,
}

/// Renders refusals. Implemented for closures `Fn(&Refusal) -> Response<Bytes>`.
///
/// The renderer chooses the status and body. keygate then adds, unless the renderer set
/// them itself, `WWW-Authenticate` (RFC 6750 §3), `Retry-After` and the rate-limit
/// headers. gRPC requests bypass the renderer: they always get a gRPC status.
///
/// ```
/// use bytes::Bytes;
/// use http::Response;
/// use keygate::refusal::Refusal;
///
/// // An envelope of success/result/errors instead of the default `{"error":{...}}`.
/// let envelope = |r: &Refusal<'_>| {
///     let body = serde_json::json!({
///         "success": false,
///         "result": null,
///         "errors": [{"code": r.error.code(), "message": r.error.message()}],
///     });
///     Response::builder()
///         .status(r.error.status())
///         .header("content-type", "application/json")
///         .body(Bytes::from(body.to_string()))
///         .unwrap()
/// };
/// # fn takes<R: keygate::refusal::RenderRefusal>(_: R) {}
/// # takes(envelope);
/// ```
pub trait RenderRefusal: Send + Sync + 'static {
    /// The response for `refusal`.
    fn render(&self, refusal: &Refusal<'_>) -> Response<Bytes>;

    /// Whether the response depends only on the refusal (the same error and realm
    /// always render the same response). keygate then renders the refusals that floods
    /// of junk produce (`unauthorized`, `invalid_api_key`) once and reuses them.
    /// Default: `false`.
    fn is_deterministic(&self) -> bool {
        false
    }
}

impl<F> RenderRefusal for F
where
    F: Fn(&Refusal<'_>) -> Response<Bytes> + Send + Sync + 'static,
{
    fn render(&self, refusal: &Refusal<'_>) -> Response<Bytes> {
        self(refusal)
    }
}

/// The default renderer: `{"error":{"code":"...","message":"..."}}`, with `Content-Type: application/json`.
#[derive(Clone, Copy, Debug, Default)]
pub struct JsonRenderer;

impl RenderRefusal for JsonRenderer {
    fn render(&self, refusal: &Refusal<'_>) -> Response<Bytes> {
        json_error(
            refusal.error.status(),
            refusal.error.code(),
            &refusal.error.message(),
        )
    }

    fn is_deterministic(&self) -> bool {
        true
    }
}

/// A JSON error response in the default shape.
pub fn json_error(status: StatusCode, code: &str, message: &str) -> Response<Bytes> {
    let body = serde_json::json!({ "error": { "code": code, "message": message } });
    let mut res = Response::new(Bytes::from(body.to_string()));
    *res.status_mut() = status;
    res.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    res
}

/// How one layer answers its refusals: in HTTP or gRPC form, by its own renderer or
/// by the core's.
#[derive(Clone, Debug, Default)]
pub(crate) struct RefusalAnswer {
    pub(crate) form: AnswerForm,
    /// Renders this layer's refusals instead of the core's renderer.
    pub(crate) renderer: Option<LayerRenderer>,
}

impl RefusalAnswer {
    /// Whether the answer is in gRPC form.
    pub(crate) fn grpc(&self) -> bool {
        self.form == AnswerForm::Grpc
    }
}

/// The form of a layer's refusals.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum AnswerForm {
    /// HTTP status, JSON body, `WWW-Authenticate`: whatever the client sends.
    #[default]
    Http,
    /// HTTP 200 with `grpc-status` and `grpc-message` (tonic servers).
    Grpc,
}

/// A layer's own refusal renderer.
#[derive(Clone)]
pub(crate) struct LayerRenderer(pub(crate) std::sync::Arc<dyn RenderRefusal>);

impl std::fmt::Debug for LayerRenderer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LayerRenderer")
    }
}

/// A trailers-only gRPC response: HTTP 200 with `grpc-status` and `grpc-message`.
pub(crate) fn grpc_response(error: &AuthError) -> Response<Bytes> {
    let mut res = Response::new(Bytes::new());
    let headers = res.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
    headers.insert("grpc-status", HeaderValue::from(error.grpc_status()));
    let message = percent_encode_grpc(&format!("{}: {}", error.code(), error.message()));
    if let Ok(v) = HeaderValue::from_str(&message) {
        headers.insert("grpc-message", v);
    }
    res
}

/// gRPC's percent-encoding for `grpc-message`: bytes outside 0x20..=0x7E, and `%`.
fn percent_encode_grpc(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    for b in message.bytes() {
        if (0x20..=0x7e).contains(&b) && b != b'%' {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The RFC 6750 challenge for `error`, or `None` where no challenge applies.
pub(crate) fn www_authenticate(error: &AuthError, realm: &str) -> Option<HeaderValue> {
    let status = error.status();
    let challenge_applies = status == StatusCode::UNAUTHORIZED
        || error.bearer_error().is_some() && status != StatusCode::TOO_MANY_REQUESTS;
    if !challenge_applies {
        return None;
    }
    let mut value = format!("Bearer realm=\"{}\"", quoted_safe(realm));
    if let Some(code) = error.bearer_error() {
        value.push_str(&format!(
            ", error=\"{code}\", error_description=\"{}\"",
            quoted_safe(&error.message())
        ));
    }
    if let AuthError::InsufficientScope(req) = error {
        let scopes: Vec<&str> = req.scopes().iter().map(|s| s.as_str()).collect();
        value.push_str(&format!(", scope=\"{}\"", scopes.join(" ")));
    }
    HeaderValue::from_str(&value).ok()
}

/// RFC 6750's `error_description` allows %x20-21 / %x23-5B / %x5D-7E.
fn quoted_safe(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '"' | '\\' => '\'',
            c if (' '..='~').contains(&c) => c,
            _ => '?',
        })
        .collect()
}

/// Builds the final refusal: rendered (or gRPC) response plus standard headers.
pub(crate) fn finish(
    renderer: &dyn RenderRefusal,
    refusal: &Refusal<'_>,
    grpc: bool,
    ietf_headers: bool,
    quotas: Option<&QuotaFields>,
) -> Response<Bytes> {
    let mut res = if grpc {
        grpc_response(refusal.error)
    } else {
        renderer.render(refusal)
    };
    let headers = res.headers_mut();
    if !grpc && !headers.contains_key(WWW_AUTHENTICATE) {
        if let Some(v) = www_authenticate(refusal.error, refusal.realm) {
            headers.insert(WWW_AUTHENTICATE, v);
        }
    }
    let retry_after = match refusal.error {
        AuthError::RateLimited { retry_after } => Some(*retry_after),
        AuthError::UsageExceeded { retry_after } => *retry_after,
        _ => None,
    };
    if let Some(wait) = retry_after {
        if !headers.contains_key(RETRY_AFTER) {
            headers.insert(RETRY_AFTER, HeaderValue::from(retry_after_secs(wait)));
        }
    }
    if let Some(status) = refusal.rate_limit {
        status.write_headers(headers, ietf_headers);
    }
    if let Some(quotas) = quotas {
        quotas.write(headers);
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scope::ScopeRequirement;

    #[test]
    fn missing_credentials_challenge_has_no_error_code() {
        let v = www_authenticate(&AuthError::MissingCredentials, "api").unwrap();
        assert_eq!(v, "Bearer realm=\"api\"");
    }

    #[test]
    fn invalid_key_challenge_is_invalid_token() {
        let v = www_authenticate(&AuthError::InvalidKey, "api").unwrap();
        assert_eq!(
            v,
            "Bearer realm=\"api\", error=\"invalid_token\", error_description=\"The provided API key is invalid\""
        );
    }

    #[test]
    fn scope_challenge_names_the_scopes() {
        let e = AuthError::InsufficientScope(ScopeRequirement::any_of(["admin", "read-only"]));
        let v = www_authenticate(&e, "api").unwrap();
        assert!(v.to_str().unwrap().ends_with(
            "error=\"insufficient_scope\", error_description=\"This endpoint requires 'admin' or 'read-only' scope\", scope=\"admin read-only\""
        ));
    }

    #[test]
    fn no_challenge_for_ip_rate_or_store() {
        assert!(www_authenticate(&AuthError::IpNotAllowed, "api").is_none());
        assert!(www_authenticate(&AuthError::StoreUnavailable, "api").is_none());
        let limited = AuthError::RateLimited {
            retry_after: std::time::Duration::from_secs(1),
        };
        assert!(www_authenticate(&limited, "api").is_none());
    }

    #[test]
    fn grpc_message_is_percent_encoded() {
        assert_eq!(percent_encode_grpc("a%b\né"), "a%25b%0A%C3%A9");
    }
}
