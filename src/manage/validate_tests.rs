//! Unit tests.
use super::*;

fn secs(text: &str) -> Option<i64> {
    parse_rfc3339(text).map(|t| match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => -(e.duration().as_secs() as i64),
    })
}

#[test]
fn offsets_are_normalised_to_utc() {
    assert_eq!(secs("1970-01-01T00:00:00Z"), Some(0));
    assert_eq!(secs("2030-01-01T00:00:00Z"), Some(1_893_456_000));
    assert_eq!(secs("2030-01-01T14:00:00+14:00"), Some(1_893_456_000));
    assert_eq!(secs("2029-12-31T10:00:00-14:00"), Some(1_893_456_000));
    assert_eq!(secs("2029-12-31T23:30:00-00:30"), Some(1_893_456_000));
    assert_eq!(secs("2030-01-01t00:00:00z"), Some(1_893_456_000));
    assert_eq!(secs("2030-01-01 00:00:00+00:00"), Some(1_893_456_000));
    assert_eq!(secs("2030-01-01T00:00:00-00:00"), Some(1_893_456_000));
    assert_eq!(secs("1969-12-31T23:59:59Z"), Some(-1));
    // 2099-01-01T00:00:00+14:00 is 2098-12-31T10:00:00Z.
    assert_eq!(
        parse_rfc3339("2099-01-01T00:00:00+14:00"),
        parse_rfc3339("2098-12-31T10:00:00Z")
    );
}

#[test]
fn fractions_and_leap_seconds() {
    let t = parse_rfc3339("2030-01-01T00:00:00.123456789123Z").unwrap();
    assert_eq!(
        t.duration_since(UNIX_EPOCH).unwrap().subsec_nanos(),
        123_456_789
    );
    let t = parse_rfc3339("2030-01-01T00:00:00.5+01:00").unwrap();
    assert_eq!(t.duration_since(UNIX_EPOCH).unwrap().subsec_millis(), 500);
    assert_eq!(
        secs("2016-12-31T23:59:60Z"),
        secs("2017-01-01T00:00:00Z"),
        "a leap second reads as the next second"
    );
    assert_eq!(secs("2024-02-29T00:00:00Z"), Some(1_709_164_800));
}

#[test]
fn invalid_timestamps_are_refused() {
    for bad in [
        "",
        "tomorrow",
        "2030-01-01",
        "2030-01-01T00:00:00",    // no offset: no instant
        "2030-01-01T00:00:00+14", // offset without minutes
        "2030-01-01T00:00:00+1400",
        "2030-01-01T00:00:00+24:00",
        "2030-01-01T00:00:00+14:60",
        "2030-01-01T00:00:00.Z",
        "2030-13-01T00:00:00Z",
        "2030-00-01T00:00:00Z",
        "2030-02-29T00:00:00Z",
        "2030-04-31T00:00:00Z",
        "2030-01-01T24:00:00Z",
        "2030-01-01T00:60:00Z",
        "2030-01-01T00:00:61Z",
        "2030-01-01X00:00:00Z",
        "2030/01/01T00:00:00Z",
        "+030-01-01T00:00:00Z",
        "2030-01-01T00:00:00Z ",
        "2030-01-01T00:00:00ZZ",
        "２０３0-01-01T00:00:00Z",
    ] {
        assert_eq!(parse_rfc3339(bad), None, "{bad:?}");
    }
}

#[test]
fn agrees_with_humantime_on_utc_times() {
    for text in [
        "2030-01-01T00:00:00Z",
        "2000-02-29T12:34:56Z",
        "2099-12-31T23:59:59.999Z",
        "1999-01-01T00:00:00.000001Z",
    ] {
        assert_eq!(
            parse_rfc3339(text).unwrap(),
            humantime::parse_rfc3339(text).unwrap(),
            "{text}"
        );
    }
}

#[test]
fn names_are_checked() {
    for ok in [
        "CI pipeline key",
        "x",
        "Clé de test",
        "ключ",
        "👨\u{200D}👩\u{200D}👧 family key",
        &"n".repeat(50),
    ] {
        assert!(validate_name(ok).is_ok(), "{ok:?}");
    }
    for bad in [
        "",
        " ",
        "\t",
        "\u{3000}",
        "\u{200B}",
        "\u{200B}\u{200C}\u{200D}\u{FEFF}\u{2060}",
        " \u{200B} ",
        "\u{E0041}\u{E0042}",
        "admin\u{202E}txt.exe",
        "a\u{2066}b\u{2069}",
        "a\u{200F}",
        "line\nbreak",
        "nul\0",
        "sep\u{2028}",
        "del\u{7F}",
        &"n".repeat(51),
    ] {
        let err = validate_name(bad).unwrap_err();
        assert_eq!(err.code(), "invalid_request", "{bad:?}");
        assert!(err.to_string().starts_with("name: "), "{err}");
    }
}

#[test]
fn metadata_is_measured_as_json() {
    let mut map = serde_json::Map::new();
    map.insert("k".into(), serde_json::Value::String("v".repeat(10)));
    // {"k":"vvvvvvvvvv"} is 18 bytes.
    assert!(validate_metadata(&map, 18).is_ok());
    assert!(validate_metadata(&map, 17).is_err());
}

#[test]
fn times_before_1970_are_written_back_as_they_were_read() {
    for text in [
        "1969-12-31T23:59:59.999Z",
        "0690-09-08T04:44:39.900Z",
        "1250-06-13T17:49:19.000Z",
        "0000-01-01T00:00:00.000Z",
        "1900-02-28T12:00:00.001Z",
        "1600-02-29T00:00:00.000Z",
    ] {
        let at = parse_rfc3339(text).unwrap();
        assert_eq!(crate::manage::rfc3339(at), text);
    }
    // Rounded down to the millisecond, as after 1970.
    let at = UNIX_EPOCH - Duration::from_micros(1500);
    assert_eq!(crate::manage::rfc3339(at), "1969-12-31T23:59:59.998Z");
}
