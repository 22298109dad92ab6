//! Go's duration and timestamp parsing, as `parseutil.ParseDurationSecond` and
//! `parseutil.ParseAbsoluteTime` reach it: `time.ParseDuration`, `time.Parse(time.RFC3339)` and
//! the texts of their errors, which a user reads in "Field validation failed: …".

use crate::civil::{civil_from_days, days_from_civil};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;

const NANOS_PER_SECOND: i64 = 1_000_000_000;
/// Seconds from 0001-01-01T00:00:00Z to the Unix epoch: Go's zero `time.Time`.
const GO_ZERO_TIME_UNIX: i64 = -62_135_596_800;

/// The text of `parseutil.ErrDurationMultiplicationOverflow`.
const OVERFLOW: &str =
    "multiplication of durations resulted in overflow, one operand may be too large";

/// Quotes as Go's `time` package does in its errors: `"` and `\` escaped, every byte of a
/// control or non-ASCII character as `\xNN`.
fn time_quote(s: &str) -> String {
    let mut quoted = String::with_capacity(s.len() + 2);
    quoted.push('"');
    for c in s.chars() {
        if c < ' ' || !c.is_ascii() {
            let mut buf = [0u8; 4];
            for byte in c.encode_utf8(&mut buf).bytes() {
                quoted.push_str(&format!("\\x{byte:02x}"));
            }
        } else {
            if c == '"' || c == '\\' {
                quoted.push('\\');
            }
            quoted.push(c);
        }
    }
    quoted.push('"');
    quoted
}

/// Quotes as Go's `strconv.Quote` (`%q`) does for the strings a user sends: escapes for `"`,
/// `\`, the common control characters, and `\xNN` for the other control bytes.
pub(super) fn go_quote(s: &str) -> String {
    let mut quoted = String::with_capacity(s.len() + 2);
    quoted.push('"');
    for c in s.chars() {
        match c {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            '\n' => quoted.push_str("\\n"),
            '\r' => quoted.push_str("\\r"),
            '\t' => quoted.push_str("\\t"),
            '\u{7}' => quoted.push_str("\\a"),
            '\u{8}' => quoted.push_str("\\b"),
            '\u{c}' => quoted.push_str("\\f"),
            '\u{b}' => quoted.push_str("\\v"),
            c if c < ' ' || c == '\u{7f}' => quoted.push_str(&format!("\\x{:02x}", c as u32)),
            c => quoted.push(c),
        }
    }
    quoted.push('"');
    quoted
}

/// `strconv.ParseInt(s, 10, 64)`, with the full `*strconv.NumError` text on failure.
fn parse_int10(s: &str) -> Result<i64, String> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "strconv.ParseInt: parsing {}: invalid syntax",
            go_quote(s)
        ));
    }
    s.parse::<i64>().map_err(|_| {
        format!(
            "strconv.ParseInt: parsing {}: value out of range",
            go_quote(s)
        )
    })
}

/// `a * b` for nanosecond counts, failing as `parseutil`'s `overflowMul` does.
fn overflow_mul(a: i64, b: i64) -> Result<i64, String> {
    a.checked_mul(b).ok_or_else(|| OVERFLOW.to_owned())
}

/// The largest magnitude `time.ParseDuration` accepts: 2^63 nanoseconds, which only a negative
/// duration can hold.
const DURATION_LIMIT: u64 = 1 << 63;

/// Why `time.ParseDuration` rejected its input; every text quotes the whole input, so
/// [`parse_go_duration`] words them.
enum DurationError {
    Invalid,
    MissingUnit,
    UnknownUnit(String),
}

impl DurationError {
    /// Go's text for this error in parsing `orig`.
    fn text(&self, orig: &str) -> String {
        match self {
            Self::Invalid => format!("time: invalid duration {}", time_quote(orig)),
            Self::MissingUnit => format!("time: missing unit in duration {}", time_quote(orig)),
            Self::UnknownUnit(unit) => format!(
                "time: unknown unit {} in duration {}",
                time_quote(unit),
                time_quote(orig)
            ),
        }
    }
}

/// Go's `time.ParseDuration`: a signed sequence of decimal numbers with units (`1h30m`,
/// `-1.5s`, `300ms`), in nanoseconds; the error is Go's text.
///
/// ```
/// use vault_plugin_sdk::backend::framework::parse_go_duration;
///
/// assert_eq!(parse_go_duration("1m30s"), Ok(90_000_000_000));
/// assert_eq!(parse_go_duration("5"), Err(r#"time: missing unit in duration "5""#.to_owned()));
/// ```
pub fn parse_go_duration(orig: &str) -> Result<i64, String> {
    let invalid = || DurationError::Invalid.text(orig);
    let (negative, mut s) = split_sign(orig);
    if s == "0" {
        return Ok(0);
    }
    if s.is_empty() {
        return Err(invalid());
    }
    let mut total: u64 = 0;
    while !s.is_empty() {
        let (value, rest) = duration_term(s).map_err(|e| e.text(orig))?;
        s = rest;
        // Go adds in uint64, which wraps: two terms of 2^63 each sum to 0 there. Wrapping
        // here gives Go's answer, and never the overflow panic of a debug build.
        total = total.wrapping_add(value);
        if total > DURATION_LIMIT {
            return Err(invalid());
        }
    }
    if negative {
        // -2^63 is representable; wrapping gives exactly it.
        return Ok((total as i64).wrapping_neg());
    }
    i64::try_from(total).map_err(|_| invalid())
}

/// Whether a duration's text starts with `-`, and the text without its sign.
fn split_sign(s: &str) -> (bool, &str) {
    if let Some(rest) = s.strip_prefix('-') {
        (true, rest)
    } else {
        (false, s.strip_prefix('+').unwrap_or(s))
    }
}

/// One `number unit` term at the start of a non-empty `s`, in nanoseconds, and the text after it.
fn duration_term(s: &str) -> Result<(u64, &str), DurationError> {
    let first = s.as_bytes()[0];
    if !(first == b'.' || first.is_ascii_digit()) {
        return Err(DurationError::Invalid);
    }
    let (whole, int_len) = leading_int(s)?;
    let s = &s[int_len..];
    let (fraction, fraction_len, s) = match s.strip_prefix('.') {
        Some(rest) => {
            let (fraction, fraction_len) = leading_fraction(rest);
            (fraction, fraction_len, &rest[fraction_len..])
        }
        None => (Fraction::NONE, 0, s),
    };
    if int_len == 0 && fraction_len == 0 {
        return Err(DurationError::Invalid);
    }
    let (unit, unit_len) = leading_unit(s)?;
    Ok((term_nanos(whole, fraction, unit)?, &s[unit_len..]))
}

/// The integer part at the start of `s` and its length; Go rejects it once it passes 2^63.
fn leading_int(s: &str) -> Result<(u64, usize), DurationError> {
    let int_len = s.bytes().take_while(u8::is_ascii_digit).count();
    let mut whole: u64 = 0;
    for digit in s[..int_len].bytes() {
        if whole > DURATION_LIMIT / 10 {
            return Err(DurationError::Invalid);
        }
        whole = whole * 10 + u64::from(digit - b'0');
        if whole > DURATION_LIMIT {
            return Err(DurationError::Invalid);
        }
    }
    Ok((whole, int_len))
}

/// The digits of a term's fraction, as Go keeps them: an integer and the power of ten it is
/// over.
#[derive(Clone, Copy)]
struct Fraction {
    digits: u64,
    scale: f64,
}

impl Fraction {
    const NONE: Self = Self {
        digits: 0,
        scale: 1.0,
    };
}

/// The fraction at the start of `s` (the text after the `.`) and its length: digits past what
/// fits are consumed and dropped.
fn leading_fraction(s: &str) -> (Fraction, usize) {
    let mut fraction = Fraction::NONE;
    let fraction_len = s.bytes().take_while(u8::is_ascii_digit).count();
    let mut overflowed = false;
    for digit in s[..fraction_len].bytes() {
        if overflowed || fraction.digits > (DURATION_LIMIT - 1) / 10 {
            overflowed = true;
            continue;
        }
        let next = fraction.digits * 10 + u64::from(digit - b'0');
        if next > DURATION_LIMIT {
            overflowed = true;
            continue;
        }
        fraction.digits = next;
        fraction.scale *= 10.0;
    }
    (fraction, fraction_len)
}

/// The unit at the start of `s`, in nanoseconds, and its length.
fn leading_unit(s: &str) -> Result<(u64, usize), DurationError> {
    let unit_len = s
        .bytes()
        .take_while(|b| *b != b'.' && !b.is_ascii_digit())
        .count();
    if unit_len == 0 {
        return Err(DurationError::MissingUnit);
    }
    let unit_text = &s[..unit_len];
    let unit = match unit_text {
        "ns" => 1,
        "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" => 60_000_000_000,
        "h" => 3_600_000_000_000,
        _ => return Err(DurationError::UnknownUnit(unit_text.to_owned())),
    };
    Ok((unit, unit_len))
}

/// `whole.fraction` times `unit` nanoseconds, rejected past 2^63 as Go does.
fn term_nanos(whole: u64, fraction: Fraction, unit: u64) -> Result<u64, DurationError> {
    if whole > DURATION_LIMIT / unit {
        return Err(DurationError::Invalid);
    }
    let mut value = whole * unit;
    if fraction.digits > 0 {
        // Go scales the fraction in floating point, and so do we, for the same rounding.
        value += (fraction.digits as f64 * (unit as f64 / fraction.scale)) as u64;
        if value > DURATION_LIMIT {
            return Err(DurationError::Invalid);
        }
    }
    Ok(value)
}

/// `parseutil.ParseDurationSecond` on a JSON value, in nanoseconds: `None` for null (no value).
pub(super) fn parse_duration_second(raw: &Value) -> Result<Option<i64>, String> {
    match raw {
        Value::Null => Ok(None),
        Value::String(s) => parse_duration_string(s).map(Some),
        // A plugin decodes JSON numbers to float64; `time.Duration(f)` truncates towards zero.
        Value::Number(n) => {
            let seconds = match (n.as_i64(), n.as_f64()) {
                (Some(i), _) => i,
                (None, Some(f)) if f.is_finite() && f.abs() < 9.2e18 => f.trunc() as i64,
                _ => return Err(OVERFLOW.to_owned()),
            };
            overflow_mul(seconds, NANOS_PER_SECOND).map(Some)
        }
        _ => Err("could not parse duration from input".to_owned()),
    }
}

fn parse_duration_string(s: &str) -> Result<i64, String> {
    if s.is_empty() {
        return Ok(0);
    }
    if let Ok(seconds) = parse_int10(s) {
        return overflow_mul(seconds, NANOS_PER_SECOND);
    }
    if let Some(days) = s.strip_suffix('d') {
        return overflow_mul(parse_int10(days)?, 24 * 3600 * NANOS_PER_SECOND);
    }
    parse_go_duration(s)
}

/// Go's `int(d.Seconds())`: whole seconds, truncated towards zero.
pub(super) fn whole_seconds(nanos: i64) -> i64 {
    nanos / NANOS_PER_SECOND
}

/// A point in time as seconds and nanoseconds since the Unix epoch (seconds may be negative).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct UnixTime {
    pub(super) seconds: i64,
    pub(super) nanos: u32,
}

impl UnixTime {
    pub(super) const GO_ZERO: Self = Self {
        seconds: GO_ZERO_TIME_UNIX,
        nanos: 0,
    };

    /// The `SystemTime`, or the epoch when it is out of the platform's range.
    pub(super) fn to_system_time(self) -> SystemTime {
        let sub_second = Duration::from_nanos(u64::from(self.nanos));
        let moved = if self.seconds >= 0 {
            UNIX_EPOCH.checked_add(Duration::from_secs(self.seconds.unsigned_abs()))
        } else {
            UNIX_EPOCH.checked_sub(Duration::from_secs(self.seconds.unsigned_abs()))
        };
        moved
            .and_then(|t| t.checked_add(sub_second))
            .unwrap_or(UNIX_EPOCH)
    }

    /// RFC 3339 with nanoseconds, trailing zeros trimmed, in UTC: how Go marshals a
    /// `time.Time` to JSON.
    pub(super) fn to_rfc3339_nano(self) -> String {
        let days = self.seconds.div_euclid(86_400);
        let of_day = self.seconds.rem_euclid(86_400);
        let (year, month, day) = civil_from_days(days);
        let mut text = format!(
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
            of_day / 3600,
            of_day / 60 % 60,
            of_day % 60
        );
        if self.nanos > 0 {
            let fraction = format!("{:09}", self.nanos);
            text.push('.');
            text.push_str(fraction.trim_end_matches('0'));
        }
        text.push('Z');
        text
    }
}

/// A time as Go marshals a `time.Time` in UTC to JSON (`time.RFC3339Nano`): nanoseconds
/// with their trailing zeros trimmed, `Z` for the zone. Times before the epoch are written
/// too; times the platform cannot subtract from the epoch read as the epoch.
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use vault_plugin_sdk::backend::framework::format_time;
///
/// let t = UNIX_EPOCH + Duration::new(1_700_000_000, 120_000_000);
/// assert_eq!(format_time(t), "2023-11-14T22:13:20.12Z");
/// ```
pub fn format_time(time: SystemTime) -> String {
    let unix = match time.duration_since(UNIX_EPOCH) {
        Ok(after) => UnixTime {
            seconds: i64::try_from(after.as_secs()).unwrap_or(i64::MAX),
            nanos: after.subsec_nanos(),
        },
        Err(before) => {
            let before = before.duration();
            let mut seconds = -i64::try_from(before.as_secs()).unwrap_or(i64::MAX);
            let mut nanos = before.subsec_nanos();
            if nanos > 0 {
                seconds -= 1;
                nanos = 1_000_000_000 - nanos;
            }
            UnixTime { seconds, nanos }
        }
    };
    unix.to_rfc3339_nano()
}

/// `parseutil.ParseAbsoluteTime` on a JSON value: `None` for null (no value).
pub(super) fn parse_absolute_time(raw: &Value) -> Result<Option<UnixTime>, String> {
    match raw {
        Value::Null => Ok(None),
        Value::String(s) => {
            if let Some(time) = parse_rfc3339(s) {
                return Ok(Some(time));
            }
            parse_int10(s)
                .map(|seconds| Some(UnixTime { seconds, nanos: 0 }))
                .map_err(|_| "could not parse string as date and time".to_owned())
        }
        // A plugin's JSON numbers are float64, which ParseAbsoluteTime does not take.
        _ => Err("could not parse time from input type".to_owned()),
    }
}

/// `time.Parse(time.RFC3339Nano, s)` or `time.Parse(time.RFC3339, s)`: both accept an
/// optional fraction of seconds; the offset is `Z` or `±hh:mm`.
fn parse_rfc3339(s: &str) -> Option<UnixTime> {
    let b = s.as_bytes();
    let number = |range: std::ops::Range<usize>| -> Option<i64> {
        let part = b.get(range)?;
        if !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(part).ok()?.parse().ok()
    };
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
    let (hour, minute, second) = (number(11..13)?, number(14..16)?, number(17..19)?);
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return None;
    }
    let mut rest = &s[19..];
    let mut nanos: u32 = 0;
    if let Some(fraction) = rest.strip_prefix('.').or_else(|| rest.strip_prefix(',')) {
        let len = fraction.bytes().take_while(u8::is_ascii_digit).count();
        if len == 0 || len > 9 {
            return None;
        }
        let padded = format!("{:0<9}", &fraction[..len]);
        nanos = padded.parse().ok()?;
        rest = &fraction[len..];
    }
    let offset = match rest.as_bytes() {
        [b'Z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let digits = [*h1, *h2, *m1, *m2];
            if !digits.iter().all(u8::is_ascii_digit) {
                return None;
            }
            let hours = i64::from((h1 - b'0') * 10 + (h2 - b'0'));
            let minutes = i64::from((m1 - b'0') * 10 + (m2 - b'0'));
            if hours > 23 || minutes > 59 {
                return None;
            }
            let offset = hours * 3600 + minutes * 60;
            if *sign == b'-' { -offset } else { offset }
        }
        _ => return None,
    };
    let seconds =
        days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second - offset;
    Some(UnixTime { seconds, nanos })
}

fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn terms_that_overflow_together_wrap_as_in_go() {
        assert_eq!(
            parse_go_duration("9223372036854775808ns9223372036854775808ns"),
            Ok(0)
        );
    }

    #[test]
    fn go_durations() {
        let second = NANOS_PER_SECOND;
        assert_eq!(parse_go_duration("1h30m"), Ok(5400 * second));
        assert_eq!(parse_go_duration("-1.5s"), Ok(-1_500_000_000));
        assert_eq!(parse_go_duration("0"), Ok(0));
        assert_eq!(parse_go_duration("1.5\u{b5}s"), Ok(1500));
        assert_eq!(parse_go_duration(".5m"), Ok(30 * second));
        assert_eq!(
            parse_go_duration("10"),
            Err(r#"time: missing unit in duration "10""#.to_owned())
        );
        assert_eq!(
            parse_go_duration("3y"),
            Err(r#"time: unknown unit "y" in duration "3y""#.to_owned())
        );
        assert_eq!(
            parse_go_duration(""),
            Err(r#"time: invalid duration """#.to_owned())
        );
        assert_eq!(
            parse_go_duration("."),
            Err(r#"time: invalid duration ".""#.to_owned())
        );
        assert_eq!(
            parse_go_duration("3000000h"),
            Err(r#"time: invalid duration "3000000h""#.to_owned())
        );
        assert_eq!(
            parse_go_duration("1é"),
            Err(r#"time: unknown unit "\xc3\xa9" in duration "1\xc3\xa9""#.to_owned())
        );
    }

    #[test]
    fn duration_seconds_take_numbers_integer_strings_days_and_go_durations() {
        let second = NANOS_PER_SECOND;
        assert_eq!(parse_duration_second(&json!(90)), Ok(Some(90 * second)));
        assert_eq!(parse_duration_second(&json!(1.9)), Ok(Some(second)));
        assert_eq!(parse_duration_second(&json!("90")), Ok(Some(90 * second)));
        assert_eq!(
            parse_duration_second(&json!("7d")),
            Ok(Some(7 * 86_400 * second))
        );
        assert_eq!(parse_duration_second(&json!("")), Ok(Some(0)));
        assert_eq!(parse_duration_second(&json!(null)), Ok(None));
        assert_eq!(
            parse_duration_second(&json!("1.5d")),
            Err(r#"strconv.ParseInt: parsing "1.5": invalid syntax"#.to_owned())
        );
        assert_eq!(
            parse_duration_second(&json!(true)),
            Err("could not parse duration from input".to_owned())
        );
        assert_eq!(
            parse_duration_second(&json!(9_300_000_000_i64)),
            Err(OVERFLOW.to_owned())
        );
    }

    #[test]
    fn absolute_times() {
        let parsed = parse_absolute_time(&json!("2024-02-29T12:00:00.5+01:30")).unwrap_or_default();
        let expected = UnixTime {
            seconds: 1_709_202_600,
            nanos: 500_000_000,
        };
        assert_eq!(parsed, Some(expected));
        assert_eq!(expected.to_rfc3339_nano(), "2024-02-29T10:30:00.5Z");
        assert_eq!(
            parse_absolute_time(&json!("1700000000")),
            Ok(Some(UnixTime {
                seconds: 1_700_000_000,
                nanos: 0
            }))
        );
        assert_eq!(
            parse_absolute_time(&json!("2023-02-29T00:00:00Z")),
            Err("could not parse string as date and time".to_owned())
        );
        assert_eq!(
            parse_absolute_time(&json!(1_700_000_000)),
            Err("could not parse time from input type".to_owned())
        );
        assert_eq!(UnixTime::GO_ZERO.to_rfc3339_nano(), "0001-01-01T00:00:00Z");
        assert_eq!(
            UnixTime::GO_ZERO.to_system_time(),
            UNIX_EPOCH - Duration::from_secs(62_135_596_800)
        );
    }
}
