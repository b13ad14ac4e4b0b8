//! Decoding source lines into generated event structs, and the dead letters of lines that are
//! not JSON objects (G9, G48). Also small visitors over raw JSON text used by the other modules.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserialize, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

use crate::val::Val;

/// A record rejected before it reaches an operator: the reason starts with its category
/// (`invalid-json`, `not-an-object`, `schema`, ...) as G48 requires.
#[derive(Clone, Debug, PartialEq)]
pub struct DeadLetter<'a> {
    pub reason: String,
    pub event: DeadEvent<'a>,
}

/// What a dead letter carries in its `event` member.
#[derive(Clone, Debug, PartialEq)]
pub enum DeadEvent<'a> {
    /// The raw line, written as a JSON string (it is not valid JSON).
    Raw(&'a str),
    /// Valid JSON text, written as is.
    Json(Cow<'a, str>),
}

/// A map key, borrowed from the line unless it contains escapes.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key<'de>(pub Cow<'de, str>);

impl Key<'_> {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                formatter.write_str("a string key")
            }
            fn visit_borrowed_str<E: de::Error>(self, text: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(text)))
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(text.to_string())))
            }
            fn visit_string<E: de::Error>(self, text: String) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(text)))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

/// Skips one value of any shape. Unlike `IgnoredAny` it goes through `deserialize_any`, so
/// serde_json parses every number and rejects those outside f64 (`1e999`), as G9 requires even
/// for fields that the pipeline never reads.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Skip;

impl<'de> Deserialize<'de> for Skip {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(SkipVisitor)
    }
}

struct SkipVisitor;

impl<'de> Visitor<'de> for SkipVisitor {
    type Value = Skip;
    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("any JSON value")
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_none<E: de::Error>(self) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut sequence: A) -> Result<Skip, A::Error> {
        while sequence.next_element::<Skip>()?.is_some() {}
        Ok(Skip)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Skip, A::Error> {
        while map.next_key::<IgnoredAny>()?.is_some() {
            map.next_value::<Skip>()?;
        }
        Ok(Skip)
    }
}

/// Checks that `text` is one valid JSON value with every number inside f64.
pub fn validate_json(text: &str) -> Result<(), serde_json::Error> {
    serde_json::from_str::<Skip>(text).map(|_| ())
}

/// Decodes one source line into the generated event struct `T`.
///
/// Invalid JSON (also `NaN`, `1e999`) gives `invalid-json: <message>` with the raw line; valid
/// JSON that is not an object gives `not-an-object: expected a JSON object, found <type>` with
/// the compact JSON text of the value (G9, G48).
pub fn parse_event<'a, T: Deserialize<'a>>(line: &'a str) -> Result<T, DeadLetter<'a>> {
    let first_byte = line.bytes().find(|byte| !matches!(byte, b' ' | b'\t' | b'\r' | b'\n'));
    if first_byte == Some(b'{') {
        return serde_json::from_str::<T>(line)
            .map_err(|error| DeadLetter { reason: format!("invalid-json: {error}"), event: DeadEvent::Raw(line) });
    }
    // Not an object: decide between invalid JSON and a valid non-object value. This path is
    // rare, so it may parse into serde_json::Value for the compact text.
    if let Err(error) = serde_json::from_str::<Skip>(line) {
        return Err(DeadLetter { reason: format!("invalid-json: {error}"), event: DeadEvent::Raw(line) });
    }
    match serde_json::from_str::<serde_json::Value>(line) {
        Ok(value) => {
            let found = match &value {
                serde_json::Value::Null => "null",
                serde_json::Value::Bool(_) => "bool",
                serde_json::Value::Number(_) => "number",
                serde_json::Value::String(_) => "string",
                serde_json::Value::Array(_) => "array",
                serde_json::Value::Object(_) => "object",
            };
            Err(DeadLetter {
                reason: format!("not-an-object: expected a JSON object, found {found}"),
                event: DeadEvent::Json(Cow::Owned(value.to_string())),
            })
        }
        Err(error) => Err(DeadLetter { reason: format!("invalid-json: {error}"), event: DeadEvent::Raw(line) }),
    }
}

/// Decodes a nested object slot (a schema's nested `{"fields": ...}`) into its generated struct.
/// `Absent` and `Null` give `Ok(None)`; the schema check decides whether that is allowed. Any
/// other non-object gives a `schema` dead letter carrying the value's JSON text; generated code
/// normally checks the type first and may replace the event with the whole line.
pub fn nested<'v, T: Deserialize<'v>>(val: &'v Val<'_>) -> Result<Option<T>, DeadLetter<'v>> {
    match val {
        Val::Absent | Val::Null => Ok(None),
        Val::Obj(text) => serde_json::from_str::<T>(text).map(Some).map_err(|error| DeadLetter {
            reason: format!("invalid-json: {error}"),
            event: DeadEvent::Json(Cow::Borrowed(text)),
        }),
        other => {
            let mut text = String::new();
            crate::json::write_val(&mut text, other);
            Err(DeadLetter {
                reason: format!("schema: expected object, found {}", other.type_name()),
                event: DeadEvent::Json(Cow::Owned(text)),
            })
        }
    }
}

/// Calls `each` with every (key, raw value) entry of the JSON object `text`, in document order
/// (duplicates included; callers that keep the last one get "last duplicate wins").
pub fn for_each_object_entry<'de, F>(text: &'de str, each: F) -> Result<(), serde_json::Error>
where
    F: FnMut(&str, &'de RawValue),
{
    struct EntrySeed<F>(F);
    impl<'de, F: FnMut(&str, &'de RawValue)> Visitor<'de> for EntrySeed<F> {
        type Value = ();
        fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
            formatter.write_str("a JSON object")
        }
        fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<(), A::Error> {
            while let Some(key) = map.next_key::<Key<'de>>()? {
                let raw: &'de RawValue = map.next_value()?;
                (self.0)(key.as_str(), raw);
            }
            Ok(())
        }
    }
    impl<'de, F: FnMut(&str, &'de RawValue)> DeserializeSeed<'de> for EntrySeed<F> {
        type Value = ();
        fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
            deserializer.deserialize_map(self)
        }
    }
    let mut deserializer = serde_json::Deserializer::from_str(text);
    EntrySeed(each).deserialize(&mut deserializer)?;
    deserializer.end()
}

/// The entries of the JSON object `text` with owned-or-borrowed keys, in document order, a
/// repeated key keeping its first position and its last value (G9).
pub fn object_entries(text: &str) -> Result<Vec<(Cow<'_, str>, &RawValue)>, serde_json::Error> {
    struct EntryVisitor;
    impl<'de> Visitor<'de> for EntryVisitor {
        type Value = Vec<(Cow<'de, str>, &'de RawValue)>;
        fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
            formatter.write_str("a JSON object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut entries: Vec<(Cow<'de, str>, &'de RawValue)> = Vec::new();
            while let Some(key) = map.next_key::<Key<'de>>()? {
                let raw: &'de RawValue = map.next_value()?;
                match entries.iter_mut().find(|(existing, _)| *existing == key.0) {
                    Some(entry) => entry.1 = raw,
                    None => entries.push((key.0, raw)),
                }
            }
            Ok(entries)
        }
    }
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let entries = deserializer.deserialize_map(EntryVisitor)?;
    deserializer.end()?;
    Ok(entries)
}

/// Calls `each` with every raw element of the JSON array `text` until it returns true; returns
/// whether it did. The remaining elements are still read so the array is consumed.
pub fn any_array_element<'de, F>(text: &'de str, each: F) -> bool
where
    F: FnMut(&'de RawValue) -> bool,
{
    struct ElementVisitor<F>(F);
    impl<'de, F: FnMut(&'de RawValue) -> bool> Visitor<'de> for ElementVisitor<F> {
        type Value = bool;
        fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
            formatter.write_str("a JSON array")
        }
        fn visit_seq<A: SeqAccess<'de>>(mut self, mut sequence: A) -> Result<bool, A::Error> {
            let mut found = false;
            while let Some(raw) = sequence.next_element::<&'de RawValue>()? {
                if !found && (self.0)(raw) {
                    found = true;
                }
            }
            Ok(found)
        }
    }
    let mut deserializer = serde_json::Deserializer::from_str(text);
    deserializer.deserialize_seq(ElementVisitor(each)).unwrap_or(false)
}

/// The raw elements of the JSON array `text`.
pub fn array_elements(text: &str) -> Result<Vec<&RawValue>, serde_json::Error> {
    serde_json::from_str::<Vec<&RawValue>>(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stand-in for a generated event struct, written the way codegen writes them.
    #[derive(Debug, Default, PartialEq)]
    struct Event<'a> {
        user: Val<'a>,
        score: Val<'a>,
    }

    impl<'de> Deserialize<'de> for Event<'de> {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            struct EventVisitor;
            impl<'de> Visitor<'de> for EventVisitor {
                type Value = Event<'de>;
                fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                    formatter.write_str("an event object")
                }
                fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Event<'de>, A::Error> {
                    let mut event = Event::default();
                    while let Some(key) = map.next_key::<Key<'de>>()? {
                        match key.as_str() {
                            "user" => event.user = map.next_value::<Val<'de>>()?,
                            "score" => event.score = map.next_value::<Val<'de>>()?,
                            _ => {
                                map.next_value::<Skip>()?;
                            }
                        }
                    }
                    Ok(event)
                }
            }
            deserializer.deserialize_map(EventVisitor)
        }
    }

    #[test]
    fn parses_objects_with_last_duplicate_winning() {
        let event: Event = parse_event(r#"{"user": "a", "other": [1, {"x": null}], "user": "b"}"#).expect("valid");
        assert_eq!(event.user, Val::Str(Cow::Borrowed("b")));
        assert_eq!(event.score, Val::Absent);
        let escaped_key: Event = parse_event(r#"{"us\u0065r": 3}"#).expect("valid");
        assert_eq!(escaped_key.user, Val::Int(3));
    }

    #[test]
    fn invalid_json_is_dead_lettered_with_the_raw_line() {
        let cases = [
            "{\"user\": }",
            "{\"user\": 1e999}",
            "{\"skipped\": [1e999]}",
            "{\"user\": NaN}",
            "not json",
            "{\"a\": 1} trailing",
            "[1,",
            "Infinity",
        ];
        for line in cases {
            let dead = parse_event::<Event>(line).expect_err(line);
            assert!(dead.reason.starts_with("invalid-json: "), "{line}: {}", dead.reason);
            assert_eq!(dead.event, DeadEvent::Raw(line), "{line}");
        }
    }

    #[test]
    fn non_objects_are_dead_lettered_with_the_parsed_value() {
        let cases = [
            ("[1, 2]", "array", "[1,2]"),
            (" \"text\"", "string", "\"text\""),
            ("42", "number", "42"),
            ("null", "null", "null"),
            ("true", "bool", "true"),
        ];
        for (line, found, compact) in cases {
            let dead = parse_event::<Event>(line).expect_err(line);
            assert_eq!(dead.reason, format!("not-an-object: expected a JSON object, found {found}"));
            assert_eq!(dead.event, DeadEvent::Json(Cow::Owned(compact.to_string())));
        }
    }

    #[test]
    fn nested_objects_decode_into_structs() {
        let outer = Val::Obj(Cow::Borrowed(r#"{"user": "n", "score": 2.5}"#));
        let inner: Option<Event> = nested(&outer).expect("object");
        assert_eq!(inner.expect("present").score, Val::Float(2.5));
        assert_eq!(nested::<Event>(&Val::Null).expect("null is none"), None);
        let dead = nested::<Event>(&Val::Int(1)).expect_err("int is not an object");
        assert!(dead.reason.starts_with("schema: "));
    }

    #[test]
    fn object_and_array_visitors() {
        let entries = object_entries(r#"{"a": 1, "b": 2, "a": 3}"#).expect("object");
        let rendered: Vec<(String, String)> =
            entries.iter().map(|(key, raw)| (key.to_string(), raw.get().to_string())).collect();
        assert_eq!(rendered, vec![("a".to_string(), "3".to_string()), ("b".to_string(), "2".to_string())]);
        assert!(any_array_element("[1, 2, 3]", |raw| raw.get() == "2"));
        assert!(!any_array_element("[1, 2, 3]", |raw| raw.get() == "4"));
        assert_eq!(array_elements("[]").expect("array").len(), 0);
        assert!(object_entries("[1]").is_err());
    }
}
