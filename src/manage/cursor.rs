//! The list cursor: an opaque token naming a place in an account's listing order.
//!
//! A cursor is the [`ListPosition`]'s creation time, as nanoseconds since the Unix
//! epoch in 9 big-endian bytes written in unpadded base64url (12 characters), followed
//! by the position's key id. Clients must treat it as opaque; its form may change.
//!
//! Every text that matches [`CURSOR_PATTERN`] is a cursor (some position, whether or not
//! a key sits there), and every other text is refused, so the management API's OpenAPI
//! document can state exactly what it accepts.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

use super::ManageError;
use crate::store::record::KeyId;
use crate::store::ListPosition;

/// The regular expression every cursor matches, and nothing else: 12 base64url
/// characters, then a key id (1 to 64 ASCII letters, digits and `_`). The management
/// API's document states it (a test compares them).
#[cfg(test)]
pub(crate) const CURSOR_PATTERN: &str = "^[A-Za-z0-9_-]{12}[A-Za-z0-9_]{1,64}$";

/// Bytes of the encoded time: 72 bits of nanoseconds reach past the year 150,000.
const TIME_BYTES: usize = 9;
/// Characters of the encoded time.
const TIME_CHARS: usize = 12;

/// The cursor of `position`.
pub(crate) fn encode(position: &ListPosition) -> String {
    let nanos = position
        .created_at
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
        .min((1 << (8 * TIME_BYTES)) - 1);
    let bytes = nanos.to_be_bytes();
    let mut cursor = URL_SAFE_NO_PAD.encode(&bytes[bytes.len() - TIME_BYTES..]);
    cursor.push_str(position.id.as_str());
    cursor
}

/// The position `cursor` names; `invalid_request` naming `cursor` unless it is one.
pub(crate) fn decode(cursor: &str) -> Result<ListPosition, ManageError> {
    let bad = || ManageError::InvalidRequest("cursor: not a cursor returned by this API".into());
    let (time, id) = (cursor.get(..TIME_CHARS), cursor.get(TIME_CHARS..));
    let (Some(time), Some(id)) = (time, id) else {
        return Err(bad());
    };
    let bytes = URL_SAFE_NO_PAD.decode(time).map_err(|_| bad())?;
    let mut wide = [0u8; 16];
    wide[16 - TIME_BYTES..].copy_from_slice(&bytes);
    let nanos = u128::from_be_bytes(wide);
    // At most 2^72 ns: the seconds fit a u64, and the time a `SystemTime`.
    let secs = u64::try_from(nanos / 1_000_000_000).map_err(|_| bad())?;
    let sub = u32::try_from(nanos % 1_000_000_000).map_err(|_| bad())?;
    let created_at: SystemTime = UNIX_EPOCH
        .checked_add(Duration::new(secs, sub))
        .ok_or_else(bad)?;
    let id = KeyId::parse(id).ok_or_else(bad)?;
    Ok(ListPosition::new(created_at, id))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn position(nanos: u64, id: &str) -> ListPosition {
        ListPosition::new(UNIX_EPOCH + Duration::from_nanos(nanos), KeyId::new(id))
    }

    #[test]
    fn a_cursor_is_not_readable_as_a_time() {
        let p = position(1_767_225_600_123_456_789, "ak_0Q5kR2xv");
        let cursor = encode(&p);
        assert!(!cursor.contains("1767225600"), "{cursor}");
        assert_eq!(cursor.len(), TIME_CHARS + "ak_0Q5kR2xv".len());
        assert_eq!(decode(&cursor).unwrap(), p);
    }

    #[test]
    fn texts_that_are_not_cursors_are_refused_naming_the_cursor() {
        for bad in [
            "",
            "__main__",
            "AAAAAAAAAAAA",
            "AAAAAAAAAAA=x",
            "AAAAAAAAAAAAak-1",
            "AAAAAAAAAAA\u{e9}x",
            "é",
            "17672256001_ak-1",
        ] {
            let err = decode(bad).unwrap_err();
            assert_eq!(err.code(), "invalid_request", "{bad:?}");
            assert!(err.to_string().contains("cursor"), "{bad:?}");
        }
        let long = format!("AAAAAAAAAAAA{}", "a".repeat(65));
        assert!(decode(&long).is_err());
    }

    proptest! {
        #[test]
        fn every_position_round_trips(nanos in any::<u64>(), id in "[A-Za-z0-9_]{1,64}") {
            let p = position(nanos, &id);
            let cursor = encode(&p);
            prop_assert!(regex_lite_match(&cursor));
            prop_assert_eq!(decode(&cursor).unwrap(), p);
        }

        #[test]
        fn every_text_of_the_pattern_is_a_cursor(
            text in CURSOR_PATTERN.trim_start_matches('^').trim_end_matches('$')
        ) {
            let p = decode(&text).unwrap();
            prop_assert_eq!(encode(&p), text);
        }
    }

    /// The pattern, checked by hand (the crate has no regex engine).
    fn regex_lite_match(text: &str) -> bool {
        let b64 = |c: u8| c.is_ascii_alphanumeric() || c == b'_' || c == b'-';
        let id = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
        text.len() > TIME_CHARS
            && text.len() <= TIME_CHARS + 64
            && text.bytes().take(TIME_CHARS).all(b64)
            && text.bytes().skip(TIME_CHARS).all(id)
    }
}
