//! Event-time values (G32): ints are ms since the epoch, floats are floored, strings must be
//! RFC 3339. The RFC 3339 parser is hand-written (days from civil) to avoid a date crate and to
//! pin the exact rules: `T`/`t`/space separator, `Z`/`z`/`±HH:MM` zone, any number of fraction
//! digits truncated to ms as a floor, no leap second.

use crate::val::Val;

/// Why a value is not an event time. The message has no category; generated code dead-letters
/// it as `event-time: field `x`: <message>`.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum EventTimeError {
    #[error("timestamp {0} is outside the range of ms since the epoch")]
    OutOfRange(f64),
    #[error("expected a number of ms or an RFC 3339 timestamp, found string {0:?}")]
    NotRfc3339(String),
    #[error("missing event-time field")]
    Missing,
    #[error("event-time field is null")]
    Null,
    #[error("expected a number of ms or an RFC 3339 timestamp, found {0}")]
    Type(&'static str),
}

/// The event time of a value in ms, or the reason it is not one.
pub fn event_time(value: &Val<'_>) -> Result<i64, EventTimeError> {
    match value {
        Val::Int(number) => Ok(*number),
        Val::Float(number) => {
            let floored = number.floor();
            // 2^63 is exactly representable; anything at or beyond it does not fit i64.
            if (-9_223_372_036_854_775_808.0..9_223_372_036_854_775_808.0).contains(&floored) {
                Ok(floored as i64)
            } else {
                Err(EventTimeError::OutOfRange(*number))
            }
        }
        Val::Str(text) => parse_rfc3339(text).ok_or_else(|| EventTimeError::NotRfc3339(text.to_string())),
        Val::Absent => Err(EventTimeError::Missing),
        Val::Null => Err(EventTimeError::Null),
        other => Err(EventTimeError::Type(other.type_name())),
    }
}

/// Parses `YYYY-MM-DD(T|t| )HH:MM:SS[.fraction](Z|z|±HH:MM)` into ms since the epoch, flooring
/// the fraction to whole ms. Returns `None` for anything else, including `:60` seconds.
pub fn parse_rfc3339(text: &str) -> Option<i64> {
    let bytes = text.as_bytes();
    if bytes.len() < 20 {
        return None;
    }
    let year = digits(bytes, 0, 4)?;
    let month = digits(bytes, 5, 2)?;
    let day = digits(bytes, 8, 2)?;
    let hour = digits(bytes, 11, 2)?;
    let minute = digits(bytes, 14, 2)?;
    let second = digits(bytes, 17, 2)?;
    if bytes[4] != b'-'
        || bytes[7] != b'-'
        || !matches!(bytes[10], b'T' | b't' | b' ')
        || bytes[13] != b':'
        || bytes[16] != b':'
    {
        return None;
    }
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return None;
    }
    let mut position = 19;
    let mut millis = 0;
    if bytes[position] == b'.' {
        position += 1;
        let fraction_start = position;
        while position < bytes.len() && bytes[position].is_ascii_digit() {
            // Only the first three digits matter: dropping the rest floors towards the past.
            if position - fraction_start < 3 {
                millis = millis * 10 + i64::from(bytes[position] - b'0');
            }
            position += 1;
        }
        let fraction_digits = position - fraction_start;
        if fraction_digits == 0 {
            return None;
        }
        for _ in fraction_digits..3 {
            millis *= 10;
        }
    }
    let offset_minutes = match &bytes[position..] {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), rest @ ..] if rest.len() == 5 && rest[2] == b':' => {
            let offset_hours = digits(rest, 0, 2)?;
            let offset_mins = digits(rest, 3, 2)?;
            if offset_hours > 23 || offset_mins > 59 {
                return None;
            }
            let total = offset_hours * 60 + offset_mins;
            if *sign == b'-' {
                -total
            } else {
                total
            }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + hour * 3_600 + minute * 60 + second - offset_minutes * 60;
    Some(seconds * 1_000 + millis)
}

/// Reads `count` ASCII digits at `start`.
fn digits(bytes: &[u8], start: usize, count: usize) -> Option<i64> {
    let slice = bytes.get(start..start + count)?;
    let mut value = 0i64;
    for byte in slice {
        if !byte.is_ascii_digit() {
            return None;
        }
        value = value * 10 + i64::from(byte - b'0');
    }
    Some(value)
}

fn is_leap_year(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap_year(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
pub fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = if year >= 0 { year } else { year - 399 } / 400;
    let year_of_era = year - era * 400;
    let month_index = if month > 2 { month - 3 } else { month + 9 };
    let day_of_year = (153 * month_index + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// An epoch time in ms as a UTC date-time: `2023-11-14 22:13:20` (with `.mmm` when needed).
pub fn utc(ms: i64) -> String {
    let seconds = ms.div_euclid(1000);
    let millis = ms.rem_euclid(1000);
    let (days, second_of_day) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
    let (year, month, day) = civil_from_days(days);
    let (hour, minute, second) = (second_of_day / 3600, second_of_day % 3600 / 60, second_of_day % 60);
    let mut text = format!("{year:04}-{month:02}-{day:02} {hour:02}:{minute:02}:{second:02}");
    if millis != 0 {
        text.push_str(&format!(".{millis:03}"));
    }
    text
}

/// The proleptic Gregorian date `(year, month, day)` of a day number since 1970-01-01 (Howard
/// Hinnant's `civil_from_days`, the inverse of `days_from_civil`).
pub fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 { month_index + 3 } else { month_index - 9 };
    (year_of_era + era * 400 + i64::from(month <= 2), month, day)
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use super::*;

    #[test]
    fn g32_rfc3339_strings() {
        let cases: &[(&str, Option<i64>)] = &[
            ("1970-01-01T00:00:00Z", Some(0)),
            ("1970-01-01t00:00:00z", Some(0)),
            ("1970-01-01 00:00:01Z", Some(1_000)),
            ("2024-03-01T12:34:56.789Z", Some(1_709_296_496_789)),
            ("2024-03-01T12:34:56.7899999Z", Some(1_709_296_496_789)),
            ("2024-03-01T12:34:56.7Z", Some(1_709_296_496_700)),
            ("2024-03-01T14:34:56+02:00", Some(1_709_296_496_000)),
            ("2024-03-01T10:04:56-02:30", Some(1_709_296_496_000)),
            ("2024-02-29T00:00:00Z", Some(1_709_164_800_000)),
            ("1969-12-31T23:59:59.9995Z", Some(-1)),
            ("1969-12-31T23:59:59.001Z", Some(-999)),
            ("1900-01-01T00:00:00Z", Some(-2_208_988_800_000)),
            ("2000-01-01T00:00:00.000000001+00:00", Some(946_684_800_000)),
            ("2023-02-29T00:00:00Z", None),
            ("2024-01-01T23:59:60Z", None),
            ("2024-01-01T24:00:00Z", None),
            ("2024-13-01T00:00:00Z", None),
            ("2024-01-01T00:00:00", None),
            ("2024-01-01T00:00:00.Z", None),
            ("2024-01-01T00:00:00+0200", None),
            ("2024-01-01X00:00:00Z", None),
            ("2024-01-01", None),
            ("1700000000000", None),
            ("", None),
            ("2024-01-01T00:00:00Zjunk", None),
            ("2024-1-01T00:00:00Z", None),
            ("２０２４-01-01T00:00:00Z", None),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_rfc3339(text), *expected, "{text}");
        }
    }

    #[test]
    fn g32_event_time_values() {
        assert_eq!(event_time(&Val::Int(1_234)), Ok(1_234));
        assert_eq!(event_time(&Val::Int(-5)), Ok(-5));
        assert_eq!(event_time(&Val::Float(2500.7)), Ok(2_500));
        assert_eq!(event_time(&Val::Float(-2.5)), Ok(-3));
        assert!(event_time(&Val::Float(1e300)).is_err());
        assert_eq!(event_time(&Val::Str(Cow::Borrowed("1970-01-01T00:00:01.5Z"))), Ok(1_500));
        let rejected = [
            Val::Str(Cow::Borrowed("1500")),
            Val::Bool(true),
            Val::Null,
            Val::Absent,
            Val::Arr(Cow::Borrowed("[1]")),
            Val::Obj(Cow::Borrowed("{}")),
        ];
        for value in rejected {
            let reason = event_time(&value).expect_err("not an event time");
            assert!(!reason.to_string().is_empty());
        }
        assert_eq!(event_time(&Val::Absent).map_err(|error| error.to_string()), Err("missing event-time field".into()));
        assert_eq!(
            event_time(&Val::Bool(false)).map_err(|error| error.to_string()),
            Err("expected a number of ms or an RFC 3339 timestamp, found bool".to_string())
        );
    }

    #[test]
    fn days_from_civil_matches_known_dates() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(1969, 12, 31), -1);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(days_from_civil(0, 1, 1), -719_528);
        for days in [-719_528, -1, 0, 11_017, 19_723, 2_932_896] {
            let (year, month, day) = civil_from_days(days);
            assert_eq!(days_from_civil(year, month, day), days);
        }
        assert_eq!(civil_from_days(19_723), (2024, 1, 1));
    }
}
