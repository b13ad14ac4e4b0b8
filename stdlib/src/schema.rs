//! Run-time schema checks at the source (G10). Generated code checks each declared field in
//! declaration order and dead-letters the first failure as `schema: field `x`: <message>`.

use crate::time::parse_rfc3339;
use crate::val::Val;

/// The declared type of a field. Nested schemas are checked as `Object`, then decoded with
/// `decode::nested` and checked field by field.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FieldType {
    String,
    Int,
    Float,
    Bool,
    Timestamp,
    Object,
    Array,
    Any,
}

impl FieldType {
    /// The name used in schemas and messages.
    pub fn name(self) -> &'static str {
        match self {
            FieldType::String => "string",
            FieldType::Int => "int",
            FieldType::Float => "float",
            FieldType::Bool => "bool",
            FieldType::Timestamp => "timestamp",
            FieldType::Object => "object",
            FieldType::Array => "array",
            FieldType::Any => "any",
        }
    }
}

/// Why a field value does not have its declared type (G10).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SchemaError {
    #[error("missing required field")]
    Missing,
    #[error("null in non-nullable field")]
    Null,
    #[error("expected timestamp, found string that is not RFC 3339")]
    NotRfc3339,
    #[error("expected {expected}, found {found}")]
    Type { expected: &'static str, found: &'static str },
}

/// Checks one field value against its declared type (G10). `float` accepts ints, `int` rejects
/// `5.0`, `timestamp` is a number or an RFC 3339 string, `any` is any non-null value. Absent
/// and null values pass only when the field is nullable.
pub fn check(value: &Val<'_>, field_type: FieldType, nullable: bool) -> Result<(), SchemaError> {
    let matches = match value {
        Val::Absent => return if nullable { Ok(()) } else { Err(SchemaError::Missing) },
        Val::Null => return if nullable { Ok(()) } else { Err(SchemaError::Null) },
        Val::Bool(_) => matches!(field_type, FieldType::Bool | FieldType::Any),
        Val::Int(_) => matches!(field_type, FieldType::Int | FieldType::Float | FieldType::Timestamp | FieldType::Any),
        Val::Float(_) => matches!(field_type, FieldType::Float | FieldType::Timestamp | FieldType::Any),
        Val::Str(text) => match field_type {
            FieldType::String | FieldType::Any => true,
            FieldType::Timestamp => {
                return match parse_rfc3339(text) {
                    Some(_) => Ok(()),
                    None => Err(SchemaError::NotRfc3339),
                }
            }
            _ => false,
        },
        Val::Obj(_) => matches!(field_type, FieldType::Object | FieldType::Any),
        Val::Arr(_) => matches!(field_type, FieldType::Array | FieldType::Any),
    };
    if matches {
        Ok(())
    } else {
        Err(SchemaError::Type { expected: field_type.name(), found: value.type_name() })
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use super::*;

    #[test]
    fn g10_type_checks() {
        use FieldType::*;
        let string = Val::Str(Cow::Borrowed("x"));
        let stamp = Val::Str(Cow::Borrowed("2024-01-01T00:00:00Z"));
        let object = Val::Obj(Cow::Borrowed("{}"));
        let array = Val::Arr(Cow::Borrowed("[]"));
        let cases: Vec<(Val, FieldType, bool, Result<(), &str>)> = vec![
            (Val::Int(5), Float, false, Ok(())),
            (Val::Float(5.0), Int, false, Err("expected int, found float")),
            (Val::Int(5), Int, false, Ok(())),
            (Val::Float(1.5), Float, false, Ok(())),
            (string.clone(), Int, false, Err("expected int, found string")),
            (string.clone(), String, false, Ok(())),
            (Val::Bool(true), Bool, false, Ok(())),
            (Val::Int(1), Bool, false, Err("expected bool, found int")),
            (Val::Int(1_700_000_000_000), Timestamp, false, Ok(())),
            (Val::Float(1.5), Timestamp, false, Ok(())),
            (stamp, Timestamp, false, Ok(())),
            (string.clone(), Timestamp, false, Err("expected timestamp, found string that is not RFC 3339")),
            (
                Val::Str(Cow::Borrowed("1700000000000")),
                Timestamp,
                false,
                Err("expected timestamp, found string that is not RFC 3339"),
            ),
            (Val::Bool(true), Timestamp, false, Err("expected timestamp, found bool")),
            (object.clone(), Object, false, Ok(())),
            (array.clone(), Object, false, Err("expected object, found array")),
            (array, Array, false, Ok(())),
            (object, Any, false, Ok(())),
            (Val::Absent, Any, false, Err("missing required field")),
            (Val::Null, String, false, Err("null in non-nullable field")),
            (Val::Absent, String, true, Ok(())),
            (Val::Null, Int, true, Ok(())),
            (Val::Float(2.0), Int, true, Err("expected int, found float")),
        ];
        for (value, field_type, nullable, expected) in cases {
            let result = check(&value, field_type, nullable);
            assert_eq!(
                result.map_err(|error| error.to_string()),
                expected.map_err(str::to_string),
                "{value:?} as {field_type:?}"
            );
        }
    }
}
