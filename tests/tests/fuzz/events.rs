//! The target for the event decoder of a generated binary: the stdlib path that turns an input
//! line into a record, called the way generated code calls it (see the codegen snapshots in
//! `tests/tests/snapshots/`). A line must decode into a view or into a dead letter with a
//! categorised reason, and nothing the decoder hands on (dead-letter events, values written as
//! JSON, reshaped events, event times rendered as dates) may be malformed.

use pulse_stdlib::decode::{self, DeadEvent, DeadLetter};
use pulse_stdlib::{json, reshape, schema, time, Val};
use std::borrow::Cow;

/// Mutated lines in CI mode.
pub const ITERATIONS: u32 = 20_000;

pub const TOKENS: &[&[u8]] = &[
    b"{",
    b"}",
    b"[",
    b"]",
    b"\"",
    b":",
    b",",
    b"=",
    b"\\",
    b"\\\"",
    b"\\u0000",
    b"\\u2028",
    b"\\ud800",
    b"\\udc00",
    b"\\ud83d\\ude00",
    b"\\u00e9",
    b"\n",
    b"\r",
    b" ",
    b"\t",
    b"\0",
    "\u{feff}".as_bytes(),
    "\u{2028}".as_bytes(),
    "é".as_bytes(),
    b"\xff",
    b"\xe2\x80",
    b"0",
    b"-0",
    b"1e999",
    b"-1e999",
    b"1e-999",
    b"1.5",
    b"NaN",
    b"18446744073709551616",
    b"9223372036854775807",
    b"-9223372036854775808",
    b"9223372036854775808",
    b"null",
    b"true",
    b"false",
    b"\"ts\":",
    b"\"userId\":",
    b"\"props\":",
    b"\"event_name\":",
    b"\"amount\":",
    b"\"9999-12-31T23:59:59.999Z\"",
    b"\"0000-01-01T00:00:00+23:59\"",
    b"2024-02-29T",
    b"T23:59:60Z",
    b".",
    b"+23:59",
    b"-00:00",
    b"z",
    b"\"..\"",
];

// The views of a typical pipeline: the fields it reads at the source (as `user-profile` declares
// them) and a nested object it looks into.
pulse_stdlib::view!(Props { "device" => device, "tags" => tags });
pulse_stdlib::view!(
    Source { "event_name" => event_name, "userId" => user_id, "ts" => ts, "amount" => amount,
    "props" => props [props_view: Props] }
);

const FIELD_TYPES: [schema::FieldType; 8] = [
    schema::FieldType::String,
    schema::FieldType::Int,
    schema::FieldType::Float,
    schema::FieldType::Bool,
    schema::FieldType::Timestamp,
    schema::FieldType::Object,
    schema::FieldType::Array,
    schema::FieldType::Any,
];

pub fn property(bytes: &[u8]) -> Result<(), String> {
    // The driver dead-letters a line that is not UTF-8 before any decoder sees it; the lossy
    // text still exercises the decoder with replacement characters.
    let line = String::from_utf8_lossy(bytes);
    let line: &str = &line;
    check_raw_helpers(line)?;
    let view: Source = match decode::parse_event(line) {
        Ok(view) => view,
        Err(dead) => return check_dead_letter(&dead, &["invalid-json: ", "not-an-object: "]),
    };
    // A decoded line is a JSON object whose every number fits f64: the record text that flows on.
    decode::validate_json(line).map_err(|error| format!("decoded line is not valid JSON: {error}"))?;
    let fields = [&view.event_name, &view.user_id, &view.ts, &view.amount, &view.props];
    for value in fields {
        check_value(value)?;
        for field_type in FIELD_TYPES {
            for nullable in [false, true] {
                if let Err(problem) = schema::check(value, field_type, nullable) {
                    if problem.to_string().is_empty() {
                        return Err(format!("empty schema problem for {value:?} as {field_type:?}"));
                    }
                }
            }
        }
    }
    match time::event_time(&view.ts) {
        Ok(event_time) => check_event_time(event_time)?,
        Err(problem) if problem.to_string().is_empty() => {
            return Err(format!("empty event-time problem for {:?}", view.ts))
        }
        Err(_) => {}
    }
    match decode::nested::<Props>(&view.props) {
        Ok(_) => {}
        Err(dead) => check_dead_letter(&dead, &["invalid-json: ", "schema: "])?,
    }
    match &view.props_view {
        Some(props) => {
            check_value(&props.device)?;
            check_value(&props.tags)?;
        }
        None if matches!(view.props, Val::Obj(_)) => {
            return Err(format!("object slot without its nested view: {:?}", view.props));
        }
        None => {}
    }
    for path in [&["userId"][..], &["props", "device"], &["props", "tags"], &["missing", "x"]] {
        check_value(&Val::Obj(Cow::Borrowed(line)).path(path))?;
    }
    let set_value = view.props.as_borrowed();
    let reshaped = reshape::reshape(
        line,
        &[&["userId"], &["ts"], &["props", "device"]],
        &[&["props", "tags"]],
        &[(&["props", "seen"], set_value), (&["userId", "x"], Val::Int(1))],
    )
    .map_err(|error| format!("reshape of a decoded event failed: {error}"))?;
    decode::validate_json(&reshaped).map_err(|error| format!("reshaped event is not valid JSON: {error}: {reshaped}"))
}

/// Helpers that the runtime calls on raw source lines (tracing, repartitioning): any text must
/// give a value or an error.
fn check_raw_helpers(line: &str) -> Result<(), String> {
    // Its contract asks for one valid JSON value; given anything else it must not panic, and a
    // string, object or array it accepts must be JSON (numbers are parsed leniently).
    match Val::from_json_text(line) {
        Ok(value @ (Val::Str(_) | Val::Obj(_) | Val::Arr(_))) if decode::validate_json(line).is_err() => {
            return Err(format!("from_json_text accepted text that is not JSON as {value:?}"));
        }
        Ok(value) => check_value(&value)?,
        Err(_) => {}
    }
    if let Some(event_time) = time::parse_rfc3339(line) {
        check_event_time(event_time)?;
    }
    let _ = decode::object_entries(line);
    let _ = decode::for_each_object_entry(line, |_, _| {});
    let _ = decode::array_elements(line);
    let _ = decode::any_array_element(line, |_| false);
    Ok(())
}

fn check_dead_letter(dead: &DeadLetter<'_>, categories: &[&str]) -> Result<(), String> {
    if !categories.iter().any(|category| dead.reason.starts_with(category)) {
        return Err(format!("dead letter without a category: {:?}", dead.reason));
    }
    match &dead.event {
        // Written as a JSON string by the runtime: any text will do.
        DeadEvent::Raw(_) => Ok(()),
        // Written into the dead-letter record as is: it must be JSON.
        DeadEvent::Json(text) => {
            decode::validate_json(text).map_err(|error| format!("dead letter carries invalid JSON ({error}): {text:?}"))
        }
    }
}

/// A decoded value is written as valid JSON, and a string reads back unchanged.
fn check_value(value: &Val<'_>) -> Result<(), String> {
    let mut out = String::new();
    json::write_val(&mut out, value);
    decode::validate_json(&out)
        .map_err(|error| format!("write_val of {value:?} gives invalid JSON ({error}): {out}"))?;
    if let Val::Str(text) = value {
        let back: String = serde_json::from_str(&out).map_err(|error| error.to_string())?;
        if back != *text {
            return Err(format!("string {text:?} written as {out} reads back as {back:?}"));
        }
        if let Some(event_time) = time::parse_rfc3339(text) {
            check_event_time(event_time)?;
        }
    }
    Ok(())
}

/// An event time renders as a date (dead letters of future events name it), and a date of a
/// four-digit year reads back as the same time.
fn check_event_time(event_time: i64) -> Result<(), String> {
    let date = time::utc(event_time);
    let four_digit_year =
        date.len() >= 19 && date.as_bytes()[4] == b'-' && date.as_bytes()[..4].iter().all(u8::is_ascii_digit);
    if four_digit_year {
        let back = time::parse_rfc3339(&format!("{}Z", date.replacen(' ', "T", 1)));
        if back != Some(event_time) {
            return Err(format!("event time {event_time} renders as {date:?}, which reads back as {back:?}"));
        }
    }
    Ok(())
}
