//! JSON Schema -> the Pulse inline schema form (G10): `{"fields": {name: "int?" | {"fields": ...,
//! "nullable": bool}}}`, with spans into the JSON Schema file. Only the structural subset that
//! maps onto Pulse types is understood; constructs that would change meaning are errors (E0307).

use std::collections::HashSet;

use crate::ast::{Member, Value, ValueKind};
use crate::codes;
use crate::diagnostic::Diagnostic;
use crate::span::{FileId, Span, Spanned};

use super::{read_json, suggest};

/// Keywords whose meaning the Pulse schema cannot express. Others (`description`, `minimum`,
/// `additionalProperties`, ...) only narrow or annotate, and are ignored.
const UNSUPPORTED: [&str; 13] = [
    "$ref",
    "$dynamicRef",
    "oneOf",
    "anyOf",
    "allOf",
    "not",
    "if",
    "then",
    "else",
    "patternProperties",
    "dependentSchemas",
    "dependentRequired",
    "dependencies",
];

const TYPES: [&str; 7] = ["string", "integer", "number", "boolean", "object", "array", "null"];

/// Converts a JSON Schema document into a Pulse schema value. `None` when the file is not JSON or
/// its top level is not an object; unsupported properties become `any` after being reported.
pub fn json_schema_to_schema(file: FileId, text: &str) -> (Option<Value>, Vec<Diagnostic>) {
    let (root, mut diagnostics) = read_json(file, text);
    let Some(root) = root else {
        return (None, diagnostics);
    };
    let mut importer = Importer { diagnostics: &mut diagnostics };
    let schema = importer.root(&root);
    (schema, diagnostics)
}

struct Importer<'a> {
    diagnostics: &'a mut Vec<Diagnostic>,
}

fn member<'v>(members: &'v [Member], key: &str) -> Option<&'v Member> {
    members.iter().rev().find(|member| member.key.node == key)
}

fn string(text: impl Into<String>, span: Span) -> Value {
    Value::new(ValueKind::String(text.into()), span)
}

impl Importer<'_> {
    fn report(&mut self, diagnostic: Diagnostic) {
        self.diagnostics.push(diagnostic);
    }

    fn root(&mut self, root: &Value) -> Option<Value> {
        let Some(members) = root.as_object() else {
            self.report(
                Diagnostic::new(codes::E0307, "a JSON Schema document must be an object")
                    .primary(root.span, "expected an object schema")
                    .note(format!(
                        "expected `{{ \"type\": \"object\", \"properties\": {{ ... }} }}`, found {}",
                        root.describe()
                    )),
            );
            return None;
        };
        self.check_keywords(members);
        if let Some(kind) = member(members, "type") {
            if kind.value.as_str() != Some("object") {
                self.report(
                    Diagnostic::new(codes::E0307, "the root of an event schema must be an object type")
                        .primary(kind.value.span, "expected `\"object\"`")
                        .note("events are JSON objects, so the schema describes an object")
                        .help("write `\"type\": \"object\"`"),
                );
            }
        }
        let fields = self.fields(members, root.span);
        let key = Spanned::new("fields".to_string(), fields.span);
        Some(Value::new(ValueKind::Object(vec![Member { key, value: fields }]), root.span))
    }

    fn check_keywords(&mut self, members: &[Member]) -> bool {
        let mut supported = true;
        for member in members.iter().filter(|member| UNSUPPORTED.contains(&member.key.node.as_str())) {
            supported = false;
            let help = match member.key.node.as_str() {
                "$ref" | "$dynamicRef" => "copy the referenced schema here in place of the `$ref`",
                "oneOf" | "anyOf" => "use one `type`, with `\"type\": [\"string\", \"null\"]` for a nullable field, or leave out `type` to accept any value",
                _ => "remove it, or leave out `type` to accept any value",
            };
            self.report(
                Diagnostic::new(codes::E0307, format!("unsupported JSON Schema keyword `{}`", member.key.node))
                    .primary(member.key.span, "not supported by the schema import")
                    .note("the import understands `type`, `properties`, `required` and `format: date-time`; annotations such as `description` are ignored")
                    .help(help),
            );
        }
        supported
    }

    /// The `fields` object for a schema's `properties`; a property missing from `required` is nullable.
    fn fields(&mut self, members: &[Member], schema_span: Span) -> Value {
        let Some(properties) = member(members, "properties") else {
            return Value::new(ValueKind::Object(Vec::new()), schema_span);
        };
        let Some(properties) = properties.value.as_object().map(|props| (props, properties.value.span)) else {
            self.report(wrong_type(&properties.value, "`properties` must be an object", "an object"));
            return Value::new(ValueKind::Object(Vec::new()), properties.value.span);
        };
        let (properties, properties_span) = properties;
        let required = self.required(members, properties);
        let fields = properties
            .iter()
            .map(|property| Member {
                key: property.key.clone(),
                value: self.field_type(&property.value, !required.contains(property.key.node.as_str())),
            })
            .collect();
        Value::new(ValueKind::Object(fields), properties_span)
    }

    fn required<'m>(&mut self, members: &'m [Member], properties: &[Member]) -> HashSet<&'m str> {
        let mut names = HashSet::new();
        let Some(required) = member(members, "required") else {
            return names;
        };
        let ValueKind::Array(elements) = &required.value.kind else {
            self.report(wrong_type(&required.value, "`required` must be an array of property names", "an array"));
            return names;
        };
        for element in elements {
            let Some(name) = element.as_str() else {
                self.report(wrong_type(element, "`required` must list property names as strings", "a string"));
                continue;
            };
            if !properties.iter().any(|property| property.key.node == name) {
                let candidates: Vec<&str> = properties.iter().map(|property| property.key.node.as_str()).collect();
                let help = match suggest(name, &candidates) {
                    Some(suggestion) => format!("did you mean `{suggestion}`?"),
                    None => {
                        format!("add `\"{name}\"` to `properties`, or remove it from `required`")
                    }
                };
                self.report(
                    Diagnostic::new(codes::E0307, format!("required property `{name}` is not in `properties`"))
                        .primary(element.span, "not a property")
                        .help(help),
                );
            }
            names.insert(name);
        }
        names
    }

    /// The Pulse type of one property schema: `"int"`, `"string?"`, or a nested object schema.
    fn field_type(&mut self, schema: &Value, optional: bool) -> Value {
        let any = |nullable: bool| string(if nullable { "any?" } else { "any" }, schema.span);
        let members = match &schema.kind {
            ValueKind::Bool(true) => return any(optional),
            ValueKind::Object(members) => members,
            _ => {
                self.report(wrong_type(schema, "a property schema must be an object", "an object"));
                return any(optional);
            }
        };
        if !self.check_keywords(members) {
            return any(optional);
        }
        let (base, nullable) = match member(members, "type") {
            None if member(members, "properties").is_some() => ("object", false),
            None => ("any", false),
            Some(kind) => match self.json_type(&kind.value) {
                Some(resolved) => resolved,
                None => return any(optional),
            },
        };
        let nullable = nullable || optional;
        let pulse_type = match base {
            "string" if member(members, "format").and_then(|format| format.value.as_str()) == Some("date-time") => {
                "timestamp"
            }
            "string" => "string",
            "integer" => "int",
            "number" => "float",
            "boolean" => "bool",
            "array" => "array",
            "object" if member(members, "properties").is_some() => {
                let fields = self.fields(members, schema.span);
                let fields_key = Spanned::new("fields".to_string(), fields.span);
                let nullable_key = Spanned::new("nullable".to_string(), schema.span);
                let nested = vec![
                    Member { key: fields_key, value: fields },
                    Member { key: nullable_key, value: Value::new(ValueKind::Bool(nullable), schema.span) },
                ];
                return Value::new(ValueKind::Object(nested), schema.span);
            }
            "object" => "object",
            _ => "any",
        };
        string(format!("{pulse_type}{}", if nullable { "?" } else { "" }), schema.span)
    }

    /// A `type` keyword: one JSON Schema type name, optionally with `"null"`. Returns the type
    /// and whether `null` was listed; `None` after reporting anything else.
    fn json_type(&mut self, kind: &Value) -> Option<(&'static str, bool)> {
        let names: Vec<&Value> = match &kind.kind {
            ValueKind::String(_) => vec![kind],
            ValueKind::Array(elements) => elements.iter().collect(),
            _ => {
                self.report(wrong_type(kind, "`type` must be a type name or an array of type names", "a string"));
                return None;
            }
        };
        let mut nullable = false;
        let mut types = Vec::new();
        for name in names {
            let Some(text) = name.as_str() else {
                self.report(wrong_type(name, "`type` must list type names as strings", "a string"));
                return None;
            };
            let Some(known) = TYPES.iter().copied().find(|known| *known == text) else {
                let help = match suggest(text, &TYPES) {
                    Some(suggestion) => format!("did you mean `{suggestion}`?"),
                    None => format!("use one of {}", TYPES.map(|known| format!("`{known}`")).join(", ")),
                };
                self.report(
                    Diagnostic::new(codes::E0307, format!("unknown JSON Schema type `{text}`"))
                        .primary(name.span, "not a JSON Schema type")
                        .help(help),
                );
                return None;
            };
            if known == "null" {
                nullable = true;
            } else {
                types.push(known);
            }
        }
        match types.as_slice() {
            [single] => Some((single, nullable)),
            [] => {
                self.report(
                    Diagnostic::new(codes::E0307, "a property whose only type is `null` is not supported")
                        .primary(kind.span, "only `null`")
                        .help("give the property a type, e.g. `[\"string\", \"null\"]`, or leave out `type` to accept any value"),
                );
                None
            }
            _ => {
                self.report(
                    Diagnostic::new(codes::E0307, "union types are not supported")
                        .primary(kind.span, "more than one type")
                        .note("a Pulse field has one type, which may be nullable")
                        .help("use one type (plus `\"null\"` if the field may be null), or leave out `type` to accept any value"),
                );
                None
            }
        }
    }
}

fn wrong_type(value: &Value, message: &str, expected: &str) -> Diagnostic {
    Diagnostic::new(codes::E0307, message)
        .primary(value.span, format!("expected {expected}"))
        .note(format!("expected {expected}, found {}", value.describe()))
}
