//! The text form of values (G24): what `concat` and `to_string` produce. A string is itself;
//! anything else is compact JSON with sorted keys, unescaped non-ASCII and Python-style floats,
//! so that two implementations agree byte for byte.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::decode;
use crate::json;
use crate::val::Val;

/// The G24 text form of a value. `Absent` and `Null` both read `null`.
pub fn text_form<'v>(value: &'v Val<'_>) -> Cow<'v, str> {
    match value {
        Val::Str(text) => Cow::Borrowed(text),
        Val::Absent | Val::Null => Cow::Borrowed("null"),
        Val::Bool(true) => Cow::Borrowed("true"),
        Val::Bool(false) => Cow::Borrowed("false"),
        Val::Int(number) => Cow::Owned(number.to_string()),
        Val::Float(number) => {
            let mut out = String::new();
            write_float(&mut out, *number);
            Cow::Owned(out)
        }
        Val::Obj(_) | Val::Arr(_) => {
            let mut out = String::new();
            write_canonical(&mut out, value);
            Cow::Owned(out)
        }
    }
}

/// Writes a value as canonical compact JSON: sorted keys (by code point), no whitespace,
/// the last of duplicate keys, floats as in [`write_float`].
pub fn write_canonical(out: &mut String, value: &Val<'_>) {
    write_canonical_with(out, value, false);
}

/// The identity of a key value (G12) as text, for hashing and for `Timer::key`: canonical JSON
/// in which integral floats are written as ints, so `1` and `1.0` are one key while `"1"` stays
/// a different one; objects and arrays compare structurally. `None` for null and absent keys,
/// which keyed operators dead-letter (G36).
pub fn key_form(value: &Val<'_>) -> Option<String> {
    if value.is_null() {
        return None;
    }
    let mut out = String::new();
    write_canonical_with(&mut out, value, true);
    Some(out)
}

fn write_canonical_with(out: &mut String, value: &Val<'_>, integral_floats_as_ints: bool) {
    match value {
        Val::Obj(text) => {
            let mut members: BTreeMap<Cow<'_, str>, &serde_json::value::RawValue> = BTreeMap::new();
            // Obj text is validated when built; on the impossible failure we write what we have.
            let _ = decode::for_each_object_entry(text, |key, raw| {
                members.insert(Cow::Owned(key.to_string()), raw);
            });
            out.push('{');
            for (index, (key, raw)) in members.iter().enumerate() {
                if index > 0 {
                    out.push(',');
                }
                json::write_str(out, key);
                out.push(':');
                let member = Val::from_json_text(raw.get()).unwrap_or(Val::Null);
                write_canonical_with(out, &member, integral_floats_as_ints);
            }
            out.push('}');
        }
        Val::Arr(text) => {
            out.push('[');
            let mut first = true;
            decode::any_array_element(text, |raw| {
                if !first {
                    out.push(',');
                }
                first = false;
                let element = Val::from_json_text(raw.get()).unwrap_or(Val::Null);
                write_canonical_with(out, &element, integral_floats_as_ints);
                false
            });
            out.push(']');
        }
        Val::Float(number)
            if integral_floats_as_ints
                && number.fract() == 0.0
                && (-9_223_372_036_854_775_808.0..9_223_372_036_854_775_808.0).contains(number) =>
        {
            let _ = write!(out, "{}", *number as i64);
        }
        other => json::write_val(out, other),
    }
}

/// Writes a finite float like Python's `repr`: the shortest digits that round-trip, always with
/// a fraction or an exponent (`3.0`), in exponent notation when the decimal exponent is below
/// -4 or at least 16 (`1e+16`, `1e-05`, `1.5e-07`). Non-finite floats (never produced by the
/// value semantics) are written as `null` so the output stays valid JSON.
pub fn write_float(out: &mut String, number: f64) {
    if !number.is_finite() {
        out.push_str("null");
        return;
    }
    // `{:e}` gives the shortest round-trip digits in scientific form: "-1.2345e-7", "1e16".
    let scientific = format!("{number:e}");
    let (mantissa, exponent_text) = scientific.split_once('e').unwrap_or((scientific.as_str(), "0"));
    let exponent: i32 = exponent_text.parse().unwrap_or(0);
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", mantissa),
    };
    let digits: String = mantissa.chars().filter(|character| *character != '.').collect();
    out.push_str(sign);
    if (-4..16).contains(&exponent) {
        let digit_count = digits.len() as i32;
        if exponent < 0 {
            out.push_str("0.");
            for _ in 0..(-exponent - 1) {
                out.push('0');
            }
            out.push_str(&digits);
        } else if digit_count > exponent + 1 {
            let split = (exponent + 1) as usize;
            out.push_str(&digits[..split]);
            out.push('.');
            out.push_str(&digits[split..]);
        } else {
            out.push_str(&digits);
            for _ in 0..(exponent + 1 - digit_count) {
                out.push('0');
            }
            out.push_str(".0");
        }
    } else {
        out.push_str(&digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        let exponent_sign = if exponent < 0 { '-' } else { '+' };
        let _ = write!(out, "e{exponent_sign}{:02}", exponent.unsigned_abs());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn float_text(number: f64) -> String {
        let mut out = String::new();
        write_float(&mut out, number);
        out
    }

    #[test]
    fn floats_are_written_like_python_repr() {
        let cases: &[(f64, &str)] = &[
            (3.0, "3.0"),
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (2.5, "2.5"),
            (-2.5, "-2.5"),
            (0.1, "0.1"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (0.000015, "1.5e-05"),
            (1e16, "1e+16"),
            (1.5e16, "1.5e+16"),
            (9999999999999998.0, "9999999999999998.0"),
            (123456.789, "123456.789"),
            (1e100, "1e+100"),
            (1.234e-7, "1.234e-07"),
            (f64::MAX, "1.7976931348623157e+308"),
            (5e-324, "5e-324"),
            (100.0, "100.0"),
            (0.30000000000000004, "0.30000000000000004"),
        ];
        for (number, expected) in cases {
            assert_eq!(float_text(*number), *expected, "{number:?}");
        }
    }

    #[test]
    fn g12_key_identity() {
        let key = |value: Val| key_form(&value);
        assert_eq!(key(Val::Int(1)), key(Val::Float(1.0)));
        assert_eq!(key(Val::Float(-0.0)), key(Val::Int(0)));
        assert_ne!(key(Val::Int(1)), key(Val::Str(Cow::Borrowed("1"))));
        assert_ne!(key(Val::Float(1.5)), key(Val::Int(1)));
        assert_eq!(
            key(Val::Obj(Cow::Borrowed(r#"{"b": [1.0], "a": 2}"#))),
            key(Val::Obj(Cow::Borrowed(r#"{"a":2.0,"b":[1]}"#)))
        );
        assert_eq!(key(Val::Null), None);
        assert_eq!(key(Val::Absent), None);
        assert_eq!(key(Val::Str(Cow::Borrowed("u1"))).as_deref(), Some("\"u1\""));
    }

    #[test]
    fn text_form_of_each_type() {
        let object = Val::Obj(Cow::Borrowed(r#"{"b": 1.0, "a": "é\n", "b": [true, null, 1e20]}"#));
        let cases: Vec<(Val, &str)> = vec![
            (Val::Str(Cow::Borrowed("plain")), "plain"),
            (Val::Int(-7), "-7"),
            (Val::Float(3.0), "3.0"),
            (Val::Bool(true), "true"),
            (Val::Null, "null"),
            (Val::Absent, "null"),
            (object, r#"{"a":"é\n","b":[true,null,1e+20]}"#),
            (Val::Arr(Cow::Borrowed("[ ]")), "[]"),
            (Val::Arr(Cow::Borrowed(r#"[{"z":1,"y":2}, "x"]"#)), r#"[{"y":2,"z":1},"x"]"#),
        ];
        for (value, expected) in cases {
            assert_eq!(text_form(&value), expected, "{value:?}");
        }
    }
}
