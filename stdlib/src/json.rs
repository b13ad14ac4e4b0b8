//! Writing values as JSON text for sinks and dead letters. Output is always valid JSON; `Absent`
//! is written as `null` (G38: an absent result writes null).

use std::fmt::Write as _;

use crate::text::write_float;
use crate::val::Val;

/// Appends the JSON text of `value`. Objects and arrays are copied from their raw text.
pub fn write_val(out: &mut String, value: &Val<'_>) {
    match value {
        Val::Absent | Val::Null => out.push_str("null"),
        Val::Bool(true) => out.push_str("true"),
        Val::Bool(false) => out.push_str("false"),
        Val::Int(number) => {
            let _ = write!(out, "{number}");
        }
        Val::Float(number) => write_float(out, *number),
        Val::Str(text) => write_str(out, text),
        Val::Obj(text) | Val::Arr(text) => out.push_str(text),
    }
}

/// Appends `text` as a JSON string literal. Non-ASCII is written as is (the output is UTF-8);
/// quotes, backslashes and control characters are escaped.
pub fn write_str(out: &mut String, text: &str) {
    out.reserve(text.len() + 2);
    out.push('"');
    let mut plain_start = 0;
    for (index, byte) in text.bytes().enumerate() {
        let escape: &str = match byte {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            0x00..=0x1f => "",
            _ => continue,
        };
        out.push_str(&text[plain_start..index]);
        plain_start = index + 1;
        if escape.is_empty() {
            let _ = write!(out, "\\u{byte:04x}");
        } else {
            out.push_str(escape);
        }
    }
    out.push_str(&text[plain_start..]);
    out.push('"');
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use super::*;

    fn written(value: &Val) -> String {
        let mut out = String::new();
        write_val(&mut out, value);
        out
    }

    #[test]
    fn writes_every_kind_of_value() {
        let cases: Vec<(Val, &str)> = vec![
            (Val::Absent, "null"),
            (Val::Null, "null"),
            (Val::Bool(false), "false"),
            (Val::Int(i64::MIN), "-9223372036854775808"),
            (Val::Float(6.0 / 2.0), "3.0"),
            (Val::Float(1e16), "1e+16"),
            (Val::Str(Cow::Borrowed("a\"b\\c\u{1}\u{7f}é")), "\"a\\\"b\\\\c\\u0001\u{7f}é\""),
            (Val::Obj(Cow::Borrowed("{\"a\": 1}")), "{\"a\": 1}"),
            (Val::Arr(Cow::Borrowed("[]")), "[]"),
        ];
        for (value, expected) in cases {
            assert_eq!(written(&value), expected);
        }
    }

    #[test]
    fn escaped_strings_read_back_unchanged() {
        for text in ["", "plain", "tab\there", "new\nline", "quote\"", "\u{0}\u{1f}", "日本語", "\u{2028}"] {
            let mut out = String::new();
            write_str(&mut out, text);
            let back: String = serde_json::from_str(&out).expect("valid JSON string");
            assert_eq!(back, text);
        }
    }
}
