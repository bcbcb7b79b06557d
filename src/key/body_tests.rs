//! The body shapes: a table of keys and verdicts, and properties of generated keys.

use proptest::prelude::*;

use super::*;

fn format_of(prefix: &str, body: KeyBody) -> KeyFormat {
    KeyFormat::new([KeyPrefix::new(prefix, None).unwrap().with_body(body)]).unwrap()
}

fn base64url_43_unchecked() -> KeyFormat {
    format_of(
        "tc_",
        KeyBody::new(Alphabet::Base64Url, 43..=43, Checksum::Off).unwrap(),
    )
}

fn hex_16_unchecked() -> KeyFormat {
    format_of(
        "sk_live_",
        KeyBody::new(Alphabet::Hex, 16..=16, Checksum::Off).unwrap(),
    )
}

#[test]
fn shapes_accept_and_refuse_as_the_table_says() {
    let b64 = "AbC-_09xyzAbC-_09xyzAbC-_09xyzAbC-_09xyzAbC"; // 43
    assert_eq!(b64.len(), 43);
    let cases: Vec<(KeyFormat, String, Result<(), MalformedKey>)> = vec![
        (base64url_43_unchecked(), format!("tc_{b64}"), Ok(())),
        (
            base64url_43_unchecked(),
            format!("tc_{}", &b64[..42]),
            Err(MalformedKey::Length),
        ),
        (
            base64url_43_unchecked(),
            format!("tc_{b64}A"),
            Err(MalformedKey::Length),
        ),
        (
            base64url_43_unchecked(),
            format!("tc_{}+", &b64[..42]),
            Err(MalformedKey::Charset),
        ),
        (
            base64url_43_unchecked(),
            format!("tc_{}=", &b64[..42]),
            Err(MalformedKey::Charset),
        ),
        (
            base64url_43_unchecked(),
            format!("tx_{b64}"),
            Err(MalformedKey::UnknownPrefix),
        ),
        (
            hex_16_unchecked(),
            "sk_live_1234567890abcdef".into(),
            Ok(()),
        ),
        (
            hex_16_unchecked(),
            "sk_live_1234567890ABCDEF".into(),
            Err(MalformedKey::Charset),
        ),
        (
            hex_16_unchecked(),
            "sk_live_1234567890abcde".into(),
            Err(MalformedKey::Length),
        ),
        (
            hex_16_unchecked(),
            "sk_live_1234567890abcdefa".into(),
            Err(MalformedKey::Length),
        ),
        (
            hex_16_unchecked(),
            "sk_live_1234567890abcdeg".into(),
            Err(MalformedKey::Charset),
        ),
        (
            hex_16_unchecked(),
            "sk_live_1234567890abcd\u{e9}".into(),
            Err(MalformedKey::Charset),
        ),
        (
            hex_16_unchecked(),
            "sk_test_1234567890abcdef".into(),
            Err(MalformedKey::UnknownPrefix),
        ),
    ];
    for (format, key, expected) in cases {
        assert_eq!(format.parse(&key).map(|_| ()), expected, "{key}");
    }
}

#[test]
fn verify_if_present_checks_only_bodies_of_the_generated_length() {
    let body = KeyBody::new(Alphabet::LowercaseAlnum, 16..=40, Checksum::VerifyIfPresent).unwrap();
    let format = format_of("ak_", body);
    let prefix = &format.prefixes()[0];
    // A legacy key, shorter, with no checksum.
    assert!(format.parse("ak_legacykey0123456").is_ok());
    let key = format.generate(prefix).unwrap();
    assert_eq!(key.expose_secret().len(), 3 + 40);
    assert!(format.parse(key.expose_secret()).is_ok());
    let mut typo = key.expose_secret().as_bytes().to_vec();
    typo[5] = if typo[5] == b'a' { b'b' } else { b'a' };
    assert_eq!(
        format
            .parse(std::str::from_utf8(&typo).unwrap())
            .unwrap_err(),
        MalformedKey::Checksum
    );
}

#[test]
fn checksums_take_as_many_characters_as_a_crc32_needs_in_the_alphabet() {
    assert_eq!(Alphabet::Base62.checksum_len(), CHECKSUM_LEN);
    assert_eq!(Alphabet::Base64Url.checksum_len(), 6);
    assert_eq!(Alphabet::LowercaseAlnum.checksum_len(), 7);
    assert_eq!(Alphabet::Hex.checksum_len(), 8);
    use Alphabet::*;
    for alphabet in [Base62, Base64Url, LowercaseAlnum, Hex] {
        let (radix, n) = (
            alphabet.chars().len() as u64,
            alphabet.checksum_len() as u32,
        );
        assert!(
            radix.pow(n - 1) < 1 << 32 && radix.pow(n) >= 1 << 32,
            "{alphabet:?}"
        );
    }
}

#[test]
fn shapes_that_cannot_work_are_refused_and_short_ones_only_import() {
    use Alphabet::*;
    assert!(KeyBody::new(Hex, 3..=20, Checksum::Off).is_err());
    let (long, short) = (20, 10);
    assert!(KeyBody::new(Hex, long..=short, Checksum::Off).is_err());
    assert!(KeyBody::new(Hex, 20..=300, Checksum::Off).is_err());
    assert!(
        KeyBody::new(Hex, 8..=40, Checksum::On).is_err(),
        "all checksum"
    );
    assert!(KeyBody::new(Hex, 9..=40, Checksum::On).is_ok());
    assert!(KeyBody::new(Hex, 4..=8, Checksum::VerifyIfPresent).is_err());
    let format = hex_16_unchecked();
    assert_eq!(
        format.generate(&format.prefixes()[0]).unwrap_err(),
        InvalidFormat::CannotGenerate("sk_live_".into())
    );
    // 128 bits: 32 hex characters generate, 31 do not.
    assert!(KeyBody::new(Hex, 32..=32, Checksum::Off)
        .unwrap()
        .generates());
    assert!(!KeyBody::new(Hex, 31..=31, Checksum::Off)
        .unwrap()
        .generates());
    assert!(!KeyBody::new(Hex, 39..=39, Checksum::On)
        .unwrap()
        .generates());
    assert_eq!(
        base64url_43_unchecked().max_key_len(),
        3 + 43,
        "the longest accepted key"
    );
}

fn any_body() -> impl Strategy<Value = KeyBody> {
    let alphabet = prop_oneof![
        Just(Alphabet::Base62),
        Just(Alphabet::Base64Url),
        Just(Alphabet::Hex),
        Just(Alphabet::LowercaseAlnum),
    ];
    let checksum = prop_oneof![
        Just(Checksum::On),
        Just(Checksum::Off),
        Just(Checksum::VerifyIfPresent)
    ];
    (alphabet, 48usize..=80, 0usize..=20, checksum).prop_map(|(a, max, less, c)| {
        KeyBody::new(a, max.saturating_sub(less).max(20)..=max, c).unwrap()
    })
}

proptest! {
    #[test]
    fn every_generated_key_parses_and_a_changed_character_breaks_a_checksum(
        body in any_body(),
        at in 0usize..80,
        with in any::<u8>(),
    ) {
        let format = format_of("pk_", body.clone());
        let key = format.generate(&format.prefixes()[0]).unwrap();
        let text = key.expose_secret();
        prop_assert!(format.parse(text).is_ok());
        let checked = body.checksum() != Checksum::Off;
        let at = 3 + at % (text.len() - 3);
        let mut changed = text.as_bytes().to_vec();
        prop_assume!(changed[at] != with);
        changed[at] = with;
        let changed = String::from_utf8_lossy(&changed).into_owned();
        if checked {
            prop_assert!(format.parse(&changed).is_err(), "{changed}");
        }
    }

    #[test]
    fn parsing_arbitrary_text_never_panics(text in ".{0,120}") {
        let _ = base64url_43_unchecked().parse(&text);
        let _ = hex_16_unchecked().parse(&text);
        let _ = KeyFormat::default().parse(&text);
    }

    #[test]
    fn decoding_the_checksum_agrees_with_encoding_the_crc(
        body in any_body(),
        head in proptest::collection::vec(any::<u8>(), 0..60),
        digits in proptest::collection::vec(any::<u8>(), 8),
        use_real in any::<bool>(),
    ) {
        let alphabet = body.alphabet();
        let chars = alphabet.chars();
        let mut buf = [0u8; 8];
        let encoded = body.write_checksum(&head, &mut buf).to_vec();
        let text: Vec<u8> = if use_real {
            encoded.clone()
        } else {
            digits[..alphabet.checksum_len()]
                .iter()
                .map(|d| chars[usize::from(*d) % chars.len()])
                .collect()
        };
        let decoded_matches = body.read_checksum(&text) == u64::from(crc32fast::hash(&head));
        prop_assert_eq!(decoded_matches, text == encoded);
    }
}
