//! An alert as GitHub sends it, its signature, and the feedback keygate answers with.
//! Everything here reads untrusted bytes and must never panic (see the property tests
//! and the fuzz target).

use base64::Engine as _;
use p256::ecdsa::signature::Verifier as _;
use p256::ecdsa::{Signature, VerifyingKey};
use serde::Serialize;
use sha2::{Digest as _, Sha256};

/// Longest `Github-Public-Key-Signature` header read; a DER P-256 signature is at most
/// 72 bytes, 96 characters of base64.
const MAX_SIGNATURE_HEADER: usize = 256;
/// Longest `Github-Public-Key-Identifier` header read.
pub(super) const MAX_IDENTIFIER_HEADER: usize = 256;

/// One reported match: `{"token","type","url","source"}`.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Match {
    pub(crate) token: String,
    pub(crate) token_type: String,
    pub(crate) url: String,
    pub(crate) source: String,
}

/// Why a body is not an alert.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum AlertError {
    #[error("body: not a JSON array of matches")]
    NotAnArray,
    #[error("body[{0}]: not an object with a string `token`")]
    BadMatch(usize),
}

/// The matches of an alert body: a JSON array of objects, each with a string `token`;
/// `type`, `url` and `source` are strings when present (empty when absent or of
/// another type); other members are ignored.
pub(crate) fn parse_alert(body: &[u8]) -> Result<Vec<Match>, AlertError> {
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|_| AlertError::NotAnArray)?;
    let serde_json::Value::Array(items) = value else {
        return Err(AlertError::NotAnArray);
    };
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| {
            let serde_json::Value::Object(mut fields) = item else {
                return Err(AlertError::BadMatch(i));
            };
            let mut text = |name: &str| match fields.remove(name) {
                Some(serde_json::Value::String(s)) => Some(s),
                _ => None,
            };
            let token = text("token").ok_or(AlertError::BadMatch(i))?;
            Ok(Match {
                token,
                token_type: text("type").unwrap_or_default(),
                url: text("url").unwrap_or_default(),
                source: text("source").unwrap_or_default(),
            })
        })
        .collect()
}

/// The signature in a `Github-Public-Key-Signature` header: base64 (standard alphabet,
/// padded or not) of an ASN.1 DER ECDSA signature.
pub(crate) fn decode_signature(header: &[u8]) -> Option<Signature> {
    if header.len() > MAX_SIGNATURE_HEADER {
        return None;
    }
    let text = std::str::from_utf8(header).ok()?.trim();
    let der = base64::engine::general_purpose::STANDARD
        .decode(text)
        .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(text))
        .ok()?;
    Signature::from_der(&der).ok()
}

/// Whether `signature` is `key`'s ECDSA P-256 / SHA-256 signature of the raw `body`.
pub(crate) fn verifies(key: &VerifyingKey, body: &[u8], signature: &Signature) -> bool {
    key.verify(body, signature).is_ok()
}

/// Whether a token is a real key: GitHub's labels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Label {
    TruePositive,
    FalsePositive,
}

/// One entry of the answer, in the order of the alert's matches.
#[derive(Debug, Serialize)]
pub(crate) struct Feedback {
    /// SHA-256 of the token, lowercase hex.
    pub(crate) token_hash: String,
    pub(crate) token_type: String,
    pub(crate) label: Label,
}

impl Feedback {
    pub(crate) fn new(m: &Match, label: Label) -> Self {
        Self {
            token_hash: hex::encode(Sha256::digest(m.token.as_bytes())),
            token_type: m.token_type.clone(),
            label,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn an_alert_is_an_array_of_matches() {
        let body =
            br#"[{"token":"a","type":"t","url":"u","source":"content","x":1},{"token":"b"}]"#;
        let matches = parse_alert(body).unwrap();
        assert_eq!(matches.len(), 2);
        assert_eq!(matches[0].source, "content");
        assert_eq!(matches[1].url, "");
        assert_eq!(parse_alert(b"{}"), Err(AlertError::NotAnArray));
        assert_eq!(
            parse_alert(br#"[{"type":"t"}]"#),
            Err(AlertError::BadMatch(0))
        );
        assert_eq!(
            parse_alert(br#"[{"token":1}]"#),
            Err(AlertError::BadMatch(0))
        );
        assert_eq!(parse_alert(b"[]"), Ok(Vec::new()));
    }

    #[test]
    fn a_signature_header_that_is_not_base64_der_decodes_to_nothing() {
        assert!(decode_signature(b"").is_none());
        assert!(decode_signature(b"not base64!").is_none());
        assert!(decode_signature(b"AAAA").is_none());
        assert!(decode_signature(&[b'A'; 400]).is_none());
    }

    #[test]
    fn the_token_hash_is_the_sha256_hex_of_the_token() {
        let m = Match {
            token: "abc".into(),
            token_type: "t".into(),
            url: String::new(),
            source: String::new(),
        };
        assert_eq!(
            Feedback::new(&m, Label::TruePositive).token_hash,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    proptest! {
        #[test]
        fn parsing_any_bytes_never_panics(body in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = parse_alert(&body);
            let _ = decode_signature(&body);
        }

        #[test]
        fn parsing_json_shaped_text_never_panics(text in r#"\[(\{("token"|"type"|"url"|"source"|"x"):("[a-z_]{0,8}"|[0-9]{1,3}|null|\[\]|\{\}),?\},?){0,4}\]"#) {
            let _ = parse_alert(text.as_bytes());
        }

        #[test]
        fn decoding_any_base64_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..90)) {
            let text = base64::engine::general_purpose::STANDARD.encode(&bytes);
            let _ = decode_signature(text.as_bytes());
        }
    }
}
