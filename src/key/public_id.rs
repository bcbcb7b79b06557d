//! Public key identifiers that sort by creation.

use std::sync::Mutex;

use rand::distr::{Alphanumeric, Distribution};

use super::BASE62;

/// Makes public identifiers: `prefix`, 8 base62 characters of the creation time in
/// milliseconds, then 14 base62 characters, so identifiers sort by creation time.
///
/// The 14 are random, except in the same millisecond as the previous identifier this
/// sequence made: then they are that one's plus one (as ULID's monotonic mode does), so
/// identifiers made in one millisecond still sort in the order they were made.
#[derive(Debug, Default)]
pub(crate) struct IdSequence {
    /// The millisecond and the 14 characters of the latest identifier.
    last: Mutex<Option<(u64, [u8; 14])>>,
}

impl IdSequence {
    /// A new identifier with `prefix`, made at `now_millis`.
    pub(crate) fn next(&self, prefix: &str, now_millis: u64) -> String {
        let mut time = [b'0'; 8];
        let mut n = now_millis;
        for slot in time.iter_mut().rev() {
            *slot = BASE62[(n % 62) as usize];
            n /= 62;
        }
        let tail = {
            let mut last = self
                .last
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let next = match *last {
                Some((ms, tail)) if ms == now_millis => increment_base62(tail),
                _ => None,
            };
            let tail = next.unwrap_or_else(|| {
                let mut rng = rand::rng();
                std::array::from_fn(|_| Alphanumeric.sample(&mut rng))
            });
            *last = Some((now_millis, tail));
            tail
        };
        let mut id = String::with_capacity(prefix.len() + 22);
        id.push_str(prefix);
        id.push_str(std::str::from_utf8(&time).expect("ASCII"));
        id.push_str(std::str::from_utf8(&tail).expect("ASCII"));
        id
    }
}

/// `digits` (base62, most significant first) plus one; `None` when it overflows, and
/// then the caller starts from fresh random characters.
fn increment_base62(mut digits: [u8; 14]) -> Option<[u8; 14]> {
    for slot in digits.iter_mut().rev() {
        let value = BASE62.iter().position(|b| b == slot)?;
        if value + 1 < BASE62.len() {
            *slot = BASE62[value + 1];
            return Some(digits);
        }
        *slot = BASE62[0];
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_ids_sort_by_time() {
        let ids = IdSequence::default();
        let a = ids.next("ak_", 1_000);
        let b = ids.next("ak_", 2_000);
        assert!(a < b);
        assert_eq!(a.len(), 3 + 22);
    }

    #[test]
    fn public_ids_made_in_one_millisecond_sort_in_the_order_they_were_made() {
        let ids = IdSequence::default();
        let made: Vec<String> = (0..500).map(|_| ids.next("ak_", 1_000)).collect();
        for pair in made.windows(2) {
            assert!(pair[0] < pair[1], "{} then {}", pair[0], pair[1]);
        }
        assert!(made.last().unwrap() < &ids.next("ak_", 1_001));
    }

    #[test]
    fn base62_increment_carries_and_reports_overflow() {
        let mut digits = [b'0'; 14];
        digits[13] = b'z';
        let next = increment_base62(digits).unwrap();
        assert_eq!(&next[12..], b"10");
        assert_eq!(increment_base62([b'z'; 14]), None);
    }
}
