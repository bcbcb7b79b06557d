//! The API log's cursor: an opaque token naming a place in the log's order.
//!
//! A cursor is 16 bytes in unpadded base64url (22 characters): the position's time in
//! microseconds since the Unix epoch and its sequence number, each a big-endian `u64`.
//! Every text that matches [`CURSOR_PATTERN`] is a cursor (some position, whether or not
//! an event sits there) and every other text is refused, so the management API's
//! document can state exactly what it accepts. Clients must treat it as opaque.

use std::time::{Duration, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

use super::EventPosition;
use crate::manage::ManageError;

/// The regular expression every cursor matches, and nothing else: 21 base64url
/// characters, then one whose low four bits are zero.
#[cfg(test)]
pub(crate) const CURSOR_PATTERN: &str = "^[A-Za-z0-9_-]{21}[AQgw]$";

/// The cursor of `position`.
pub(crate) fn encode(position: &EventPosition) -> String {
    let micros = position
        .time
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&micros.to_be_bytes());
    bytes[8..].copy_from_slice(&position.seq.to_be_bytes());
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The position `cursor` names; `invalid_request` naming `cursor` unless it is one.
pub(crate) fn decode(cursor: &str) -> Result<EventPosition, ManageError> {
    let bad = || ManageError::InvalidRequest("cursor: not a cursor returned by this API".into());
    if cursor.len() != 22 {
        return Err(bad());
    }
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| bad())?;
    let bytes: [u8; 16] = bytes.try_into().map_err(|_| bad())?;
    let micros = u64::from_be_bytes(bytes[..8].try_into().expect("8 bytes"));
    let seq = u64::from_be_bytes(bytes[8..].try_into().expect("8 bytes"));
    let time = UNIX_EPOCH + Duration::from_micros(micros);
    Ok(EventPosition::new(time, seq))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn texts_that_are_not_cursors_are_refused_naming_the_cursor() {
        for bad in [
            "",
            "x",
            "AAAAAAAAAAAAAAAAAAAAAB",
            "AAAAAAAAAAAAAAAAAAAAA=",
            "é",
        ] {
            let err = decode(bad).unwrap_err();
            assert_eq!(err.code(), "invalid_request", "{bad:?}");
            assert!(err.to_string().contains("cursor"), "{bad:?}");
        }
    }

    proptest! {
        #[test]
        fn every_position_round_trips(micros in any::<u64>(), seq in any::<u64>()) {
            let p = EventPosition::new(UNIX_EPOCH + Duration::from_micros(micros), seq);
            let cursor = encode(&p);
            prop_assert_eq!(cursor.len(), 22);
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
}
