//! Templates: `{{ path }}` inserts a field, `[[name]]` stays literal for the notification service,
//! `${NAME}` reads an environment variable at start-up (secrets never live in the file).

use crate::expr::{field_type, Scope};
use crate::values;
use crate::Cx;
use pulse_ir::{Path, Template, TemplatePart, TemplateValue};
use pulse_syntax::ast::{Number, Value, ValueKind};
use pulse_syntax::codes::{E0305, W0007};
use pulse_syntax::{Diagnostic, Span};

pub fn template(cx: &mut Cx, value: &Value, scope: Scope<'_>, what: &str) -> Option<Template> {
    let text = values::string(cx, value, what)?;
    parse(cx, &text, value.span, scope)
}

/// A JSON body whose strings are templates.
pub fn template_value(cx: &mut Cx, value: &Value, scope: Scope<'_>) -> Option<TemplateValue> {
    Some(match &value.kind {
        ValueKind::Null => TemplateValue::Null,
        ValueKind::Bool(flag) => TemplateValue::Bool(*flag),
        ValueKind::Number(Number::Int(number)) => TemplateValue::Int(*number),
        ValueKind::Number(Number::Float(number)) => TemplateValue::Float(*number),
        ValueKind::String(text) => TemplateValue::String(parse(cx, text, value.span, scope)?),
        ValueKind::Array(items) => {
            let items: Option<Vec<TemplateValue>> = items.iter().map(|item| template_value(cx, item, scope)).collect();
            TemplateValue::Array(items?)
        }
        ValueKind::Object(members) => {
            let mut fields = Vec::new();
            for member in members {
                fields.push((member.key.node.clone(), template_value(cx, &member.value, scope)?));
            }
            TemplateValue::Object(fields)
        }
        ValueKind::Duration(_) | ValueKind::Expr(_) => {
            cx.report(values::wrong_type(value, "a JSON value or a template string", "a body value"));
            return None;
        }
    })
}

pub fn parse(cx: &mut Cx, text: &str, span: Span, scope: Scope<'_>) -> Option<Template> {
    // Spans inside the string are exact when it has no escapes; otherwise point at the string.
    let unescaped = span.len() == text.len() + 2;
    let inner = |start: usize, end: usize| {
        if unescaped {
            Span::new(span.file, span.start as usize + 1 + start, span.start as usize + 1 + end)
        } else {
            span
        }
    };
    let mut parts = Vec::new();
    let mut literal = String::new();
    let mut rest_start = 0;
    let mut ok = true;
    while rest_start < text.len() {
        let rest = &text[rest_start..];
        if let Some(after) = rest.strip_prefix("{{") {
            let Some(close) = after.find("}}") else {
                cx.report(
                    Diagnostic::new(E0305, "unclosed `{{` in template")
                        .primary(inner(rest_start, rest_start + 2), "this `{{` has no matching `}}`")
                        .help("close the field reference with `}}`, e.g. `{{ userId }}`"),
                );
                return None;
            };
            let hole = &after[..close];
            let hole_start = rest_start + 2 + (hole.len() - hole.trim_start().len());
            let name = hole.trim();
            let name_span = inner(hole_start, hole_start + name.len());
            let valid = !name.is_empty()
                && name.split('.').all(|segment| {
                    !segment.is_empty()
                        && segment.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == '-')
                });
            if !valid {
                cx.report(
                    Diagnostic::new(E0305, format!("`{{{{{hole}}}}}` is not a field reference"))
                        .primary(inner(rest_start, rest_start + 4 + close), "expected a field path")
                        .help("write a field path such as `{{ userId }}` or `{{ props.show_id }}`"),
                );
                ok = false;
            } else {
                let path = Path(name.split('.').map(str::to_string).collect());
                match field_type(cx, &path, name_span, scope) {
                    None => ok = false,
                    // With a declared schema: a field that may be null here dead-letters the
                    // record live (the request is never sent); a test with the field set passes.
                    Some(field) if field.nullable && !scope.record.open => cx.report(
                        Diagnostic::new(W0007, format!("`{{{{ {name} }}}}` may be null here"))
                            .primary(name_span, "a record where this is null becomes a dead letter, not a write")
                            .note("the field is nullable in the event schema and no filter or key before this sink rules null out")
                            .help(format!("drop those records before the sink, e.g. `-> filter({name} != null)`")),
                    ),
                    Some(_) => {}
                }
                if !literal.is_empty() {
                    parts.push(TemplatePart::Text(std::mem::take(&mut literal)));
                }
                parts.push(TemplatePart::Field(path));
            }
            rest_start += 2 + close + 2;
        } else if let Some(after) = rest.strip_prefix("${") {
            let Some(close) = after.find('}') else {
                cx.report(
                    Diagnostic::new(E0305, "unclosed `${` in template")
                        .primary(inner(rest_start, rest_start + 2), "this `${` has no matching `}`")
                        .help("write an environment variable as `${NAME}`"),
                );
                return None;
            };
            let name = &after[..close];
            if name.is_empty() || !name.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '_') {
                cx.report(
                    Diagnostic::new(E0305, format!("`${{{name}}}` is not an environment variable name"))
                        .primary(inner(rest_start, rest_start + 3 + close), "expected letters, digits and `_`"),
                );
                ok = false;
            } else {
                if !literal.is_empty() {
                    parts.push(TemplatePart::Text(std::mem::take(&mut literal)));
                }
                parts.push(TemplatePart::Env(name.to_string()));
            }
            rest_start += 2 + close + 1;
        } else {
            let ch = rest.chars().next().expect("rest is not empty");
            literal.push(ch);
            rest_start += ch.len_utf8();
        }
    }
    if !literal.is_empty() {
        parts.push(TemplatePart::Text(literal));
    }
    ok.then_some(Template { parts })
}
