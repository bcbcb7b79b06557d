//! Matching a presented key's prefix by whole words: each prefix's first eight bytes are
//! precompiled into a word and a mask, so the common case (a prefix of up to eight
//! bytes, such as `sk_live_`) is one load, one XOR and one AND per prefix tried, with no
//! call to `memcmp`.

use super::KeyPrefix;

/// A prefix's first (up to) eight bytes, little-endian, and the mask of those bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Head {
    word: u64,
    mask: u64,
    len: usize,
}

impl Head {
    pub(super) fn of(prefix: &KeyPrefix) -> Self {
        let bytes = prefix.as_str().as_bytes();
        let n = bytes.len().min(8);
        let mut word = [0u8; 8];
        word[..n].copy_from_slice(&bytes[..n]);
        let mask = if n == 8 {
            u64::MAX
        } else {
            (1u64 << (n * 8)) - 1
        };
        Self {
            word: u64::from_le_bytes(word),
            mask,
            len: bytes.len(),
        }
    }
}

/// The first prefix of `prefixes` (longest first, `heads` in the same order) that `key`
/// starts with.
#[inline]
pub(super) fn find(prefixes: &[KeyPrefix], heads: &[Head], key: &[u8]) -> Option<usize> {
    let Some(first) = key.first_chunk::<8>() else {
        // Shorter than eight bytes: no body fits after most prefixes; compare bytes.
        return prefixes
            .iter()
            .position(|p| key.starts_with(p.as_str().as_bytes()));
    };
    let word = u64::from_le_bytes(*first);
    heads.iter().zip(prefixes).position(|(head, prefix)| {
        (word ^ head.word) & head.mask == 0
            && key.len() >= head.len
            && (head.len <= 8 || key[8..head.len] == prefix.as_str().as_bytes()[8..])
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::KeyFormat;
    use proptest::prelude::*;

    fn format() -> KeyFormat {
        KeyFormat::new(
            [
                "sk_live_",
                "sk_test_",
                "tc_",
                "a_",
                "a_very_long_prefix_xyz_",
            ]
            .map(|p| KeyPrefix::new(p, None).unwrap()),
        )
        .unwrap()
    }

    proptest! {
        #[test]
        fn finds_what_starts_with_finds(tail in "[a-z_]{0,30}", pick in 0usize..6) {
            let format = format();
            let prefixes = format.prefixes();
            let heads: Vec<Head> = prefixes.iter().map(Head::of).collect();
            let text = match prefixes.get(pick) {
                Some(p) => format!("{}{tail}", p.as_str()),
                None => tail.clone(),
            };
            for cut in 0..=text.len() {
                let key = &text.as_bytes()[..cut];
                let expected = prefixes.iter().position(|p| key.starts_with(p.as_str().as_bytes()));
                prop_assert_eq!(find(prefixes, &heads, key), expected, "{:?}", &text[..cut]);
            }
        }
    }
}
