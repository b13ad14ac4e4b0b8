//! The event value type: one JSON value as generated code sees it, borrowing from the input line
//! wherever it can, so that decoding an event allocates only for escaped strings.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, Error as _};
use serde_json::value::RawValue;

use crate::decode;

/// One JSON value of an event field. `Absent` is a field that the event does not have; it is
/// the `Default`, so generated structs start with every field absent. Objects and arrays keep
/// their raw JSON text: most pipelines only pass them through or look at a few of them, and
/// parsing them eagerly would cost an allocation per record.
#[derive(Clone, Debug, Default)]
pub enum Val<'a> {
    #[default]
    Absent,
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(Cow<'a, str>),
    /// The raw JSON text of an object, validated (numbers inside are within f64).
    Obj(Cow<'a, str>),
    /// The raw JSON text of an array, validated like `Obj`.
    Arr(Cow<'a, str>),
}

impl<'a> Val<'a> {
    /// True for `Absent` and `Null`: every comparison with such a value is false (§3).
    pub fn is_null(&self) -> bool {
        matches!(self, Val::Absent | Val::Null)
    }

    /// Detaches the value from the input line, for values that outlive a record (state, timers).
    pub fn into_owned(self) -> Val<'static> {
        match self {
            Val::Absent => Val::Absent,
            Val::Null => Val::Null,
            Val::Bool(flag) => Val::Bool(flag),
            Val::Int(number) => Val::Int(number),
            Val::Float(number) => Val::Float(number),
            Val::Str(text) => Val::Str(Cow::Owned(text.into_owned())),
            Val::Obj(text) => Val::Obj(Cow::Owned(text.into_owned())),
            Val::Arr(text) => Val::Arr(Cow::Owned(text.into_owned())),
        }
    }

    /// A short name of the value's type, used in dead-letter reasons.
    pub fn type_name(&self) -> &'static str {
        match self {
            Val::Absent => "absent",
            Val::Null => "null",
            Val::Bool(_) => "bool",
            Val::Int(_) => "int",
            Val::Float(_) => "float",
            Val::Str(_) => "string",
            Val::Obj(_) => "object",
            Val::Arr(_) => "array",
        }
    }

    /// Borrows the value without copying its text, so helpers can hand out `Val<'_>` views.
    pub fn as_borrowed(&self) -> Val<'_> {
        match self {
            Val::Absent => Val::Absent,
            Val::Null => Val::Null,
            Val::Bool(flag) => Val::Bool(*flag),
            Val::Int(number) => Val::Int(*number),
            Val::Float(number) => Val::Float(*number),
            Val::Str(text) => Val::Str(Cow::Borrowed(text)),
            Val::Obj(text) => Val::Obj(Cow::Borrowed(text)),
            Val::Arr(text) => Val::Arr(Cow::Borrowed(text)),
        }
    }

    /// The member `name` of an object value (last duplicate wins); `Absent` for a missing member
    /// or a non-object, because a path through a non-object is absent (G25).
    pub fn field(&self, name: &str) -> Val<'_> {
        let Val::Obj(text) = self else {
            return Val::Absent;
        };
        let mut found: Option<&RawValue> = None;
        // The text was validated when the value was built, so a failure here cannot happen; an
        // absent result is the safe answer if it ever did.
        let _ = decode::for_each_object_entry(text, |key, raw| {
            if key == name {
                found = Some(raw);
            }
        });
        match found {
            Some(raw) => Val::from_json_text(raw.get()).unwrap_or(Val::Absent),
            None => Val::Absent,
        }
    }

    /// Follows a dotted field path (already split) through nested objects (G25).
    pub fn path(&self, path: &[&str]) -> Val<'_> {
        let Some((first, rest)) = path.split_first() else {
            return self.as_borrowed();
        };
        let mut current = self.field(first);
        for name in rest {
            if !matches!(current, Val::Obj(_)) {
                return Val::Absent;
            }
            // Each step detaches the inner value from the temporary that holds it; paths of
            // more than one level are rare in generated code, which decodes nested structs.
            current = current.field(name).into_owned();
        }
        current
    }

    /// Classifies one JSON value by its first byte. The text must be a single, syntactically
    /// valid JSON value (as produced by `RawValue`); numbers are range-checked here because
    /// `RawValue` only checks their syntax.
    pub fn from_json_text(text: &'a str) -> Result<Val<'a>, JsonValueError> {
        let text = text.trim_matches(|character| matches!(character, ' ' | '\t' | '\n' | '\r'));
        match text.as_bytes().first() {
            None => Err(JsonValueError::Empty),
            Some(b'"') => {
                // A plain string (closed, no escapes, quotes or control characters inside) is
                // borrowed; anything else goes through serde_json, which decodes escapes and
                // rejects malformed text (`"é` without its closing quote used to be sliced
                // inside the `é` and panic).
                let inner = text.strip_suffix('"').filter(|_| text.len() >= 2).map(|closed| &closed[1..]);
                match inner {
                    Some(inner) if !inner.bytes().any(|byte| matches!(byte, b'\\' | b'"' | 0x00..=0x1f)) => {
                        Ok(Val::Str(Cow::Borrowed(inner)))
                    }
                    _ => {
                        let decoded: String = serde_json::from_str(text)?;
                        Ok(Val::Str(Cow::Owned(decoded)))
                    }
                }
            }
            Some(b'{') => {
                decode::validate_json(text)?;
                Ok(Val::Obj(Cow::Borrowed(text)))
            }
            Some(b'[') => {
                decode::validate_json(text)?;
                Ok(Val::Arr(Cow::Borrowed(text)))
            }
            Some(b't') if text == "true" => Ok(Val::Bool(true)),
            Some(b'f') if text == "false" => Ok(Val::Bool(false)),
            Some(b'n') if text == "null" => Ok(Val::Null),
            Some(_) => parse_number(text),
        }
    }
}

/// Why a JSON text is not one value `Val::from_json_text` can hold.
#[derive(Debug, thiserror::Error)]
pub enum JsonValueError {
    #[error("empty JSON value")]
    Empty,
    #[error("number out of range: {0}")]
    NumberOutOfRange(String),
    #[error("invalid number: {0}")]
    InvalidNumber(String),
    #[error(transparent)]
    Json(#[from] serde_json::Error),
}

/// Parses a JSON number literal: an integer literal that fits i64 is an int, anything else a
/// float, parsed with the standard library (correctly rounded) and rejected when not finite.
pub fn parse_number(text: &str) -> Result<Val<'static>, JsonValueError> {
    let is_integer_literal = !text.bytes().any(|byte| matches!(byte, b'.' | b'e' | b'E'));
    if is_integer_literal {
        if let Ok(number) = text.parse::<i64>() {
            return Ok(Val::Int(number));
        }
    }
    match text.parse::<f64>() {
        Ok(number) if number.is_finite() => Ok(Val::Float(number)),
        Ok(_) => Err(JsonValueError::NumberOutOfRange(text.to_string())),
        Err(_) => Err(JsonValueError::InvalidNumber(text.to_string())),
    }
}

/// Scalars decode straight from the parser: strings borrowed from the line when unescaped,
/// numbers through serde_json's number parser (which rejects values outside f64). An object or
/// array used as a whole value is captured as compact JSON text.
impl<'de> Deserialize<'de> for Val<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ValVisitor)
    }
}

struct ValVisitor;

impl<'de> de::Visitor<'de> for ValVisitor {
    type Value = Val<'de>;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a JSON value")
    }
    fn visit_bool<E: de::Error>(self, flag: bool) -> Result<Val<'de>, E> {
        Ok(Val::Bool(flag))
    }
    fn visit_i64<E: de::Error>(self, number: i64) -> Result<Val<'de>, E> {
        Ok(Val::Int(number))
    }
    fn visit_u64<E: de::Error>(self, number: u64) -> Result<Val<'de>, E> {
        // An integer literal beyond i64 is a float (G10: `int` is i64).
        Ok(i64::try_from(number).map(Val::Int).unwrap_or(Val::Float(number as f64)))
    }
    fn visit_f64<E: de::Error>(self, number: f64) -> Result<Val<'de>, E> {
        Ok(Val::Float(number))
    }
    fn visit_borrowed_str<E: de::Error>(self, text: &'de str) -> Result<Val<'de>, E> {
        Ok(Val::Str(Cow::Borrowed(text)))
    }
    fn visit_str<E: de::Error>(self, text: &str) -> Result<Val<'de>, E> {
        Ok(Val::Str(Cow::Owned(text.to_owned())))
    }
    fn visit_string<E: de::Error>(self, text: String) -> Result<Val<'de>, E> {
        Ok(Val::Str(Cow::Owned(text)))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Val<'de>, E> {
        Ok(Val::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Val<'de>, E> {
        Ok(Val::Null)
    }
    fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<Val<'de>, A::Error> {
        let mut text = String::new();
        CaptureVisitor { out: &mut text }.visit_map(map)?;
        Ok(Val::Obj(Cow::Owned(text)))
    }
    fn visit_seq<A: de::SeqAccess<'de>>(self, sequence: A) -> Result<Val<'de>, A::Error> {
        let mut text = String::new();
        CaptureVisitor { out: &mut text }.visit_seq(sequence)?;
        Ok(Val::Arr(Cow::Owned(text)))
    }
}

/// Writes the value being deserialized as compact JSON text.
struct CaptureVisitor<'s> {
    out: &'s mut String,
}

impl<'de> de::DeserializeSeed<'de> for CaptureVisitor<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> de::Visitor<'de> for CaptureVisitor<'_> {
    type Value = ();

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a JSON value")
    }
    fn visit_bool<E: de::Error>(self, flag: bool) -> Result<(), E> {
        self.out.push_str(if flag { "true" } else { "false" });
        Ok(())
    }
    fn visit_i64<E: de::Error>(self, number: i64) -> Result<(), E> {
        self.out.push_str(&number.to_string());
        Ok(())
    }
    fn visit_u64<E: de::Error>(self, number: u64) -> Result<(), E> {
        self.out.push_str(&number.to_string());
        Ok(())
    }
    fn visit_f64<E: de::Error>(self, number: f64) -> Result<(), E> {
        crate::json::write_val(self.out, &Val::Float(number));
        Ok(())
    }
    fn visit_str<E: de::Error>(self, text: &str) -> Result<(), E> {
        crate::json::write_str(self.out, text);
        Ok(())
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.out.push_str("null");
        Ok(())
    }
    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        self.out.push_str("null");
        Ok(())
    }
    fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        // Collect first so a repeated key keeps only its last value (G9).
        let mut entries: Vec<(String, String)> = Vec::new();
        while let Some(key) = map.next_key::<decode::Key<'de>>()? {
            let mut value = String::new();
            map.next_value_seed(CaptureVisitor { out: &mut value })?;
            match entries.iter_mut().find(|(existing, _)| existing == key.as_str()) {
                Some(entry) => entry.1 = value,
                None => entries.push((key.as_str().to_owned(), value)),
            }
        }
        self.out.push('{');
        for (idx, (key, value)) in entries.iter().enumerate() {
            if idx > 0 {
                self.out.push(',');
            }
            crate::json::write_str(self.out, key);
            self.out.push(':');
            self.out.push_str(value);
        }
        self.out.push('}');
        Ok(())
    }
    fn visit_seq<A: de::SeqAccess<'de>>(self, mut sequence: A) -> Result<(), A::Error> {
        self.out.push('[');
        let mut first = true;
        loop {
            let mut item = String::new();
            if sequence.next_element_seed(CaptureVisitor { out: &mut item })?.is_none() {
                break;
            }
            if !first {
                self.out.push(',');
            }
            first = false;
            self.out.push_str(&item);
        }
        self.out.push(']');
        Ok(())
    }
}

/// A value kept as its raw text when it is an object or array, borrowed from the line. Used for
/// slots whose nested fields the pipeline reads, so the nested view can borrow too.
#[derive(Clone, Debug, Default)]
pub struct RawVal<'a>(pub Val<'a>);

impl<'de> Deserialize<'de> for RawVal<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw: &'de RawValue = <&'de RawValue>::deserialize(deserializer)?;
        Val::from_json_text(raw.get()).map(RawVal).map_err(D::Error::custom)
    }
}

impl PartialEq for Val<'_> {
    /// Structural equality for tests: same variant and value; objects and arrays compare as
    /// JSON values (key order and whitespace do not matter, numbers compare numerically).
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Val::Absent, Val::Absent) | (Val::Null, Val::Null) => true,
            (Val::Bool(left), Val::Bool(right)) => left == right,
            (Val::Int(left), Val::Int(right)) => left == right,
            (Val::Float(left), Val::Float(right)) => left == right,
            (Val::Str(left), Val::Str(right)) => left == right,
            (Val::Obj(_), Val::Obj(_)) | (Val::Arr(_), Val::Arr(_)) => crate::ops::json_equal(self, other),
            _ => false,
        }
    }
}

impl fmt::Display for Val<'_> {
    /// The text form of G24, which is what users see in concatenations and messages.
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&crate::text::text_form(self))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Val<'_>, serde_json::Error> {
        serde_json::from_str::<Val>(text)
    }

    #[test]
    fn classifies_values_by_first_byte() {
        let cases: &[(&str, Val)] = &[
            ("null", Val::Null),
            ("true", Val::Bool(true)),
            ("false", Val::Bool(false)),
            ("42", Val::Int(42)),
            // FIXME: serde_json reports `-0` as the float -0.0, so it reads as a float, not an int.
            ("-0", Val::Float(-0.0)),
            ("5.0", Val::Float(5.0)),
            ("1e3", Val::Float(1000.0)),
            ("9223372036854775807", Val::Int(i64::MAX)),
            ("9223372036854775808", Val::Float(9223372036854775808.0)),
            ("\"plain\"", Val::Str(Cow::Borrowed("plain"))),
            ("\"a\\nb\"", Val::Str(Cow::Owned("a\nb".to_string()))),
            ("\"\"", Val::Str(Cow::Borrowed(""))),
            ("{\"a\": 1}", Val::Obj(Cow::Borrowed("{\"a\": 1}"))),
            ("[1, 2]", Val::Arr(Cow::Borrowed("[1, 2]"))),
        ];
        for (text, expected) in cases {
            assert_eq!(&parse(text).expect(text), expected, "{text}");
        }
    }

    #[test]
    fn unescaped_strings_are_borrowed() {
        let value = parse("\"hello\"").expect("valid");
        assert!(matches!(value, Val::Str(Cow::Borrowed("hello"))));
        let escaped = parse("\"he\\u006clo\"").expect("valid");
        assert!(matches!(escaped, Val::Str(Cow::Owned(ref text)) if text == "hello"));
    }

    /// Found by the event-decoder fuzz target: the runtime hands raw source lines (tracing) and
    /// command-line keys to `from_json_text`, and an unclosed string ending in a multi-byte
    /// character was sliced inside it.
    #[test]
    fn malformed_strings_are_errors_not_panics() {
        for text in ["\"é", "\"", "\"\"\"", "\"a\"b\"", "\"tab\there\"", "\"\u{2028}", " \"日本"] {
            assert!(Val::from_json_text(text).is_err(), "{text:?}");
        }
        assert_eq!(Val::from_json_text("\"é\"").ok(), Some(Val::Str(Cow::Borrowed("é"))));
        assert_eq!(Val::from_json_text(" \"\u{2028}\" ").ok(), Some(Val::Str(Cow::Borrowed("\u{2028}"))));
    }

    #[test]
    fn numbers_outside_f64_are_rejected_also_inside_containers() {
        for text in ["1e999", "-1e999", "[1e999]", "{\"a\": {\"b\": 1e400}}", "NaN", "Infinity"] {
            assert!(parse(text).is_err(), "{text}");
        }
        assert_eq!(parse("1e-999").expect("underflow is zero"), Val::Float(0.0));
    }

    #[test]
    fn type_names_and_nullness() {
        assert_eq!(Val::Absent.type_name(), "absent");
        assert_eq!(Val::Float(1.0).type_name(), "float");
        assert!(Val::Absent.is_null() && Val::Null.is_null());
        assert!(!Val::Bool(false).is_null());
        assert_eq!(Val::default(), Val::Absent);
    }

    #[test]
    fn structural_equality_of_containers() {
        assert_eq!(parse("{\"a\":1,\"b\":[1,2]}").expect("ok"), parse("{\"b\": [1, 2.0], \"a\": 1}").expect("ok"));
        assert_ne!(parse("[1,2]").expect("ok"), parse("[2,1]").expect("ok"));
        assert_ne!(Val::Int(1), Val::Float(1.0));
    }

    #[test]
    fn field_and_path_lookup() {
        let value = parse("{\"a\": {\"b\": 7}, \"a2\": 1, \"a2\": 2, \"s\": \"x\"}").expect("ok");
        assert_eq!(value.field("a2"), Val::Int(2));
        assert_eq!(value.path(&["a", "b"]), Val::Int(7));
        assert_eq!(value.path(&["s", "b"]), Val::Absent);
        assert_eq!(value.path(&["missing"]), Val::Absent);
        assert_eq!(Val::Int(3).field("a"), Val::Absent);
    }

    #[test]
    fn into_owned_keeps_the_value() {
        let line = String::from("\"text\"");
        let owned: Val<'static> = parse(&line).expect("ok").into_owned();
        drop(line);
        assert_eq!(owned, Val::Str(Cow::Borrowed("text")));
    }
}
