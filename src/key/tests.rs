//! Unit tests.
use super::*;

#[test]
fn generated_keys_parse_with_their_prefix() {
    let format = KeyFormat::default();
    for prefix in format.prefixes() {
        let key = format.generate(prefix).unwrap();
        assert!(key.expose_secret().starts_with(prefix.as_str()));
        let parsed = format.parse(key.expose_secret()).expect("parses");
        assert_eq!(parsed.prefix(), prefix);
    }
}

#[test]
fn a_typo_fails_the_checksum() {
    let format = KeyFormat::default();
    let key = format.generate(format.prefix("sk_test_").unwrap()).unwrap();
    let mut typo = key.expose_secret().to_owned().into_bytes();
    let i = 12;
    typo[i] = if typo[i] == b'a' { b'b' } else { b'a' };
    let typo = String::from_utf8(typo).unwrap();
    assert_eq!(format.parse(&typo).unwrap_err(), MalformedKey::Checksum);
}

#[test]
fn debug_and_display_hide_the_secret() {
    let format = KeyFormat::default();
    let key = format.generate(format.prefix("sk_live_").unwrap()).unwrap();
    let secret = &key.expose_secret()[8..];
    assert!(!format!("{key:?}").contains(secret));
    assert!(!format!("{key}").contains(secret));
    let parsed = format.parse(key.expose_secret()).unwrap();
    assert!(!format!("{parsed:?}").contains(secret));
}

#[test]
fn prefixes_are_validated() {
    assert!(KeyPrefix::new("sk_live_", None).is_ok());
    assert!(KeyPrefix::new("sk_live", None).is_err());
    assert!(KeyPrefix::new("SK_", None).is_err());
    assert!(KeyPrefix::new("_", None).is_err());
    let dup = KeyFormat::new([
        KeyPrefix::new("a_", None).unwrap(),
        KeyPrefix::new("a_", None).unwrap(),
    ]);
    assert_eq!(dup.unwrap_err(), InvalidFormat::Duplicate("a_".into()));
}
