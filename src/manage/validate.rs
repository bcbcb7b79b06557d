//! Validation of management input: names, timestamps, IP lists, quotas and metadata.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::client_ip::IpAllowlist;
use crate::manage::{ManageError, MAX_NAME_LEN};
use crate::store::record::RateLimit;

/// Most entries in a key's IP allowlist.
pub(crate) const MAX_IPS: usize = 100;

/// Checks a key name: 1 to [`MAX_NAME_LEN`] characters, not only whitespace or invisible
/// characters, and no control, line-separator or bidirectional-formatting characters.
///
/// Invisible characters such as the zero-width joiner are allowed next to visible ones
/// (emoji sequences use them); a name made only of them would look empty in every list.
pub(crate) fn validate_name(name: &str) -> Result<String, ManageError> {
    let count = name.chars().count();
    if count == 0 {
        return Err(invalid("name: must not be empty"));
    }
    if count > MAX_NAME_LEN {
        return Err(ManageError::InvalidRequest(format!(
            "name: must be at most {MAX_NAME_LEN} characters"
        )));
    }
    if let Some(c) = name.chars().find(|&c| is_forbidden_in_name(c)) {
        let what = if is_bidi_control(c) {
            "bidirectional formatting characters"
        } else {
            "control characters"
        };
        return Err(ManageError::InvalidRequest(format!(
            "name: must not contain {what} (found U+{:04X})",
            u32::from(c)
        )));
    }
    if name.chars().all(|c| c.is_whitespace() || is_invisible(c)) {
        return Err(invalid(
            "name: must contain a visible character, not only spaces or invisible characters",
        ));
    }
    Ok(name.to_owned())
}

/// Control characters (Unicode `Cc`), the line and paragraph separators, and the
/// bidirectional controls, which can make a name display as something else.
fn is_forbidden_in_name(c: char) -> bool {
    c.is_control() || matches!(c, '\u{2028}' | '\u{2029}') || is_bidi_control(c)
}

/// Explicit directional embeddings, overrides and isolates, and the implicit marks.
pub(crate) fn is_bidi_control(c: char) -> bool {
    matches!(
        c,
        '\u{061C}'              // ARABIC LETTER MARK
        | '\u{200E}' | '\u{200F}' // LEFT-TO-RIGHT / RIGHT-TO-LEFT MARK
        | '\u{202A}'..='\u{202E}' // LRE, RLE, PDF, LRO, RLO
        | '\u{2066}'..='\u{2069}' // LRI, RLI, FSI, PDI
    )
}

/// Characters that render as nothing: zero-width spaces and joiners, word joiners and
/// invisible operators, the byte-order mark, soft hyphens, fillers, variation selectors
/// and tags.
pub(crate) fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'               // SOFT HYPHEN
        | '\u{034F}'             // COMBINING GRAPHEME JOINER
        | '\u{115F}' | '\u{1160}' // HANGUL CHOSEONG/JUNGSEONG FILLER
        | '\u{17B4}' | '\u{17B5}' // KHMER VOWEL INHERENT AQ/AA
        | '\u{180B}'..='\u{180F}' // MONGOLIAN FREE VARIATION SELECTORS, VOWEL SEPARATOR
        | '\u{200B}'..='\u{200D}' // ZERO WIDTH SPACE, ZWNJ, ZWJ
        | '\u{2060}'..='\u{2064}' // WORD JOINER, invisible operators
        | '\u{206A}'..='\u{206F}' // deprecated format characters
        | '\u{3164}'             // HANGUL FILLER
        | '\u{FE00}'..='\u{FE0F}' // VARIATION SELECTORS
        | '\u{FEFF}'             // ZERO WIDTH NO-BREAK SPACE (BOM)
        | '\u{FFA0}'             // HALFWIDTH HANGUL FILLER
        | '\u{FFF9}'..='\u{FFFB}' // interlinear annotation
        | '\u{1D173}'..='\u{1D17A}' // musical symbol format characters
        | '\u{E0000}'..='\u{E007F}' // TAGS
        | '\u{E0100}'..='\u{E01EF}' // VARIATION SELECTORS SUPPLEMENT
    ) || is_bidi_control(c)
}

pub(crate) fn parse_ips(ips: &[String]) -> Result<IpAllowlist, ManageError> {
    if ips.len() > MAX_IPS {
        return Err(ManageError::InvalidRequest(format!(
            "ips: at most {MAX_IPS} entries"
        )));
    }
    IpAllowlist::parse(ips).map_err(|e| ManageError::InvalidRequest(format!("ips: {e}")))
}

pub(crate) fn validate_rate_limit(limit: Option<&RateLimit>) -> Result<(), ManageError> {
    match limit {
        Some(l) if !l.is_valid() => Err(invalid(
            "rate_limit: per_second and burst must both be at least 1",
        )),
        _ => Ok(()),
    }
}

/// Refuses metadata whose JSON form is longer than `max` bytes.
pub(crate) fn validate_metadata(
    metadata: &serde_json::Map<String, serde_json::Value>,
    max: usize,
) -> Result<(), ManageError> {
    let mut counter = ByteCounter(0);
    // Writing to a counter cannot fail, and a map of JSON values always serialises.
    let _ = serde_json::to_writer(&mut counter, metadata);
    if counter.0 > max {
        return Err(ManageError::InvalidRequest(format!(
            "metadata: must be at most {max} bytes as JSON (got {})",
            counter.0
        )));
    }
    Ok(())
}

struct ByteCounter(usize);

impl std::io::Write for ByteCounter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 = self.0.saturating_add(buf.len());
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn invalid(message: &str) -> ManageError {
    ManageError::InvalidRequest(message.to_owned())
}

/// Parses an RFC 3339 `date-time` (section 5.6), with any UTC offset, into a
/// [`SystemTime`] (which is UTC by nature): `2030-01-01T00:00:00Z`,
/// `2099-01-01T00:00:00+14:00`, `2030-06-01t12:30:00.123456-07:00`. `T` may also be a
/// space (section 5.6, note). A leap second (`:60`) is read as the next second. An
/// offset is required: a time without one names no instant. `None` for anything else.
///
/// The management API reads `expires_at` with it; `rfc3339` writes times back.
#[cfg_attr(not(feature = "admin"), allow(dead_code))]
pub(crate) fn parse_rfc3339(text: &str) -> Option<SystemTime> {
    parse(text).ok()
}

struct BadTimestamp;

fn parse(text: &str) -> Result<SystemTime, BadTimestamp> {
    let b = text.as_bytes();
    // Shortest form: YYYY-MM-DDTHH:MM:SSZ (20 bytes).
    if b.len() < 20 || b.len() > 64 {
        return Err(BadTimestamp);
    }
    let year = digits(b, 0, 4)?;
    let month = digits(b, 5, 2)?;
    let day = digits(b, 8, 2)?;
    let hour = digits(b, 11, 2)?;
    let minute = digits(b, 14, 2)?;
    let second = digits(b, 17, 2)?;
    if b[4] != b'-' || b[7] != b'-' || b[13] != b':' || b[16] != b':' {
        return Err(BadTimestamp);
    }
    if !matches!(b[10], b'T' | b't' | b' ') {
        return Err(BadTimestamp);
    }
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return Err(BadTimestamp);
    }
    let mut i = 19;
    let mut nanos: u32 = 0;
    if b[i] == b'.' {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            if i - start < 9 {
                nanos = nanos * 10 + u32::from(b[i] - b'0');
            }
            i += 1;
        }
        let len = i - start;
        if len == 0 {
            return Err(BadTimestamp);
        }
        for _ in len..9 {
            nanos *= 10;
        }
    }
    let offset_seconds: i64 = match &b[i..] {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let h = digits(&[*h1, *h2], 0, 2)?;
            let m = digits(&[*m1, *m2], 0, 2)?;
            if h > 23 || m > 59 {
                return Err(BadTimestamp);
            }
            let off = i64::from(h * 3600 + m * 60);
            if *sign == b'-' {
                -off
            } else {
                off
            }
        }
        _ => return Err(BadTimestamp),
    };
    let days = days_from_civil(i64::from(year), month, day);
    let local = days * 86_400 + i64::from(hour * 3600 + minute * 60 + second);
    let utc = local - offset_seconds;
    let at = if utc >= 0 {
        UNIX_EPOCH.checked_add(Duration::new(utc.unsigned_abs(), nanos))
    } else {
        UNIX_EPOCH
            .checked_sub(Duration::from_secs(utc.unsigned_abs()))
            .and_then(|t| t.checked_add(Duration::from_nanos(u64::from(nanos))))
    };
    at.ok_or(BadTimestamp)
}

fn digits(b: &[u8], at: usize, len: usize) -> Result<u32, BadTimestamp> {
    let slice = b.get(at..at + len).ok_or(BadTimestamp)?;
    slice.iter().try_fold(0u32, |acc, &d| {
        if d.is_ascii_digit() {
            Ok(acc * 10 + u32::from(d - b'0'))
        } else {
            Err(BadTimestamp)
        }
    })
}

fn is_leap(year: u32) -> bool {
    (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400)
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// RFC 3339 with milliseconds, UTC, of the time `back` before the Unix epoch, rounded
/// down to the millisecond as later times are.
pub(crate) fn rfc3339_before_epoch(back: Duration) -> String {
    let millis = i128::try_from(back.as_nanos().div_ceil(1_000_000)).unwrap_or(i128::MAX);
    let millis = -millis;
    let secs = millis.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let of_day = secs.rem_euclid(86_400);
    // Days to a civil date (proleptic Gregorian), after Howard Hinnant's `civil_from_days`.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i128::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        of_day / 3600,
        of_day / 60 % 60,
        of_day % 60,
        millis.rem_euclid(1000)
    )
}

#[cfg(test)]
#[path = "validate_tests.rs"]
mod tests;
