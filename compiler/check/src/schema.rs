//! Event schemas: the inline `{"fields": {...}}` form (also what `.pulse` `event` blocks and JSON
//! Schema files lower to) becomes a closed `RecordType`.

use crate::values::{self, Fields};
use crate::Cx;
use pulse_ir::{FieldType, RecordType, Type};
use pulse_syntax::ast::{Value, ValueKind};
use pulse_syntax::codes::E0304;
use pulse_syntax::diagnostic::did_you_mean;
use pulse_syntax::Diagnostic;

const TYPE_NAMES: &[&str] = &["string", "int", "float", "bool", "timestamp", "object", "array", "any"];

/// Names people bring from other languages, with the Pulse spelling.
const FOREIGN_TYPE_NAMES: &[(&str, &str)] = &[
    ("integer", "int"),
    ("long", "int"),
    ("i64", "int"),
    ("number", "float"),
    ("double", "float"),
    ("f64", "float"),
    ("boolean", "bool"),
    ("str", "string"),
    ("text", "string"),
    ("datetime", "timestamp"),
    ("date", "timestamp"),
    ("map", "object"),
    ("list", "array"),
];

pub fn check_schema(cx: &mut Cx, value: &Value) -> Option<RecordType> {
    let fields = Fields::new(cx, value, &["fields"], "the schema")?;
    let fields_value = fields.require(cx, "fields", "the schema", value.span)?;
    record(cx, fields_value)
}

fn record(cx: &mut Cx, fields_value: &Value) -> Option<RecordType> {
    let Some(members) = fields_value.as_object() else {
        cx.report(values::wrong_type(fields_value, "an object of field types", "`fields`"));
        return None;
    };
    let mut record = RecordType { open: false, ..RecordType::default() };
    let mut ok = true;
    for member in members {
        match field_type(cx, &member.value) {
            Some(field) => record.insert(member.key.node.clone(), field),
            None => ok = false,
        }
    }
    ok.then_some(record)
}

fn field_type(cx: &mut Cx, value: &Value) -> Option<FieldType> {
    match &value.kind {
        ValueKind::String(text) => {
            let (name, nullable) = match text.strip_suffix('?') {
                Some(name) => (name, true),
                None => (text.as_str(), false),
            };
            let ty = match name {
                "string" => Type::String,
                "int" => Type::Int,
                "float" => Type::Float,
                "bool" => Type::Bool,
                "timestamp" => Type::Timestamp,
                "object" => Type::Object(None),
                "array" => Type::Array,
                "any" => Type::Any,
                _ => {
                    let mut diagnostic = Diagnostic::new(E0304, format!("unknown field type `{name}`"))
                        .primary(value.span, "not a Pulse type")
                        .note(format!("expected one of {}, optionally followed by `?`", values::list(TYPE_NAMES)));
                    let foreign = FOREIGN_TYPE_NAMES.iter().find(|(foreign, _)| foreign.eq_ignore_ascii_case(name));
                    if let Some((_, pulse)) = foreign {
                        diagnostic = diagnostic.help(format!("use `{pulse}{}`", if nullable { "?" } else { "" }));
                    } else if let Some(suggestion) = did_you_mean(name, TYPE_NAMES.iter().copied()) {
                        diagnostic = diagnostic.help(format!("did you mean `{suggestion}`?"));
                    }
                    cx.report(diagnostic);
                    return None;
                }
            };
            Some(FieldType { ty, nullable })
        }
        ValueKind::Object(_) => {
            let fields = Fields::new(cx, value, &["fields", "nullable"], "a nested field type")?;
            let nullable = match fields.get("nullable") {
                Some(flag) => values::boolean(cx, flag, "`nullable`")?,
                None => false,
            };
            let inner_fields = fields.require(cx, "fields", "a nested field type", value.span)?;
            let inner = record(cx, inner_fields)?;
            Some(FieldType { ty: Type::Object(Some(Box::new(inner))), nullable })
        }
        _ => {
            cx.report(
                Diagnostic::new(E0304, "a field type must be a type name or a nested `{\"fields\": ...}` object")
                    .primary(value.span, format!("found {}", value.describe()))
                    .help("write a type such as `\"string\"` or `\"int?\"`"),
            );
            None
        }
    }
}
