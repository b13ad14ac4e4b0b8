//! `ast::Document` -> pretty JSON text (2-space indent), for `pulsec convert` and `pulsec fmt`.
//! Reading the output back with `parse_json_document` gives an equal document, spans aside:
//! durations keep their written form (`"10m"`, `{"$duration": "10m"}` in test data).

use super::document::DURATION_KEY;
use crate::ast::{Document, Member, Number, Value, ValueKind};
use crate::expr_print::{format_float, print_expr, write_string};

/// Containers with only scalars that print shorter than this stay on one line.
const INLINE_WIDTH: usize = 72;

/// Settings first (in document order), then `nodes`, `edges` and `tests`. Sections absent from the
/// source and empty stay absent, so a round trip keeps `nodes_span`/`edges_span` `None`.
pub fn print_json_document(doc: &Document) -> String {
    let mut printer = Printer { out: String::from("{"), durations: Durations::Strings };
    let mut first = true;
    for member in &doc.settings {
        printer.key(&mut first, 1, &member.key.node);
        printer.value(&member.value, 1, false);
    }
    if !doc.nodes.is_empty() || doc.nodes_span.is_some() {
        printer.key(&mut first, 1, "nodes");
        printer.list(doc.nodes.iter(), 1, |printer, node| {
            let mut first = true;
            printer.out.push('{');
            printer.key(&mut first, 3, "id");
            write_string(&mut printer.out, &node.id.node);
            printer.key(&mut first, 3, "type");
            write_string(&mut printer.out, &node.kind.node);
            if !matches!(&node.config.kind, ValueKind::Object(members) if members.is_empty()) {
                printer.key(&mut first, 3, "config");
                printer.value(&node.config, 3, false);
            }
            printer.close('}', 2);
        });
    }
    if !doc.edges.is_empty() || doc.edges_span.is_some() {
        printer.key(&mut first, 1, "edges");
        printer.list(doc.edges.iter(), 1, |printer, edge| {
            let endpoint = |node: &str, port: &Option<crate::span::Spanned<String>>| match port {
                Some(port) => format!("{node}.{}", port.node),
                None => node.to_string(),
            };
            let text =
                format!("{} -> {}", endpoint(&edge.from.node, &edge.from_port), endpoint(&edge.to.node, &edge.to_port));
            write_string(&mut printer.out, &text);
        });
    }
    if !doc.tests.is_empty() {
        printer.key(&mut first, 1, "tests");
        printer.list(doc.tests.iter(), 1, |printer, test| {
            let mut first = true;
            printer.out.push('{');
            printer.key(&mut first, 3, "name");
            write_string(&mut printer.out, &test.name.node);
            // Test events are data, where a string is a string: a duration literal there is
            // `{"$duration": "10m"}`, which the JSON front end reads back as the same literal.
            // The times of test forms (`$at`, `$clock`, `$nothing`) are strings (`"5m"`).
            for member in test.body.as_object().unwrap_or_default() {
                printer.key(&mut first, 3, &member.key.node);
                printer.durations = Durations::Objects;
                printer.value(&member.value, 3, false);
                printer.durations = Durations::Strings;
            }
            printer.close('}', 2);
        });
    }
    printer.close('}', 0);
    printer.out.push('\n');
    printer.out
}

/// How a duration literal is spelled: as written in a string (`"5m"`, settings, node options
/// and the times of test forms) or as `{"$duration": "5m"}` (test data).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Durations {
    Strings,
    Objects,
}

struct Printer {
    out: String,
    durations: Durations,
}

impl Printer {
    fn newline(&mut self, indent: usize) {
        self.out.push('\n');
        self.out.extend(std::iter::repeat_n("  ", indent));
    }

    /// Starts a member at `indent`: the separating `,`, a new line and `"key": `.
    fn key(&mut self, first: &mut bool, indent: usize, key: &str) {
        if !std::mem::take(first) {
            self.out.push(',');
        }
        self.newline(indent);
        write_string(&mut self.out, key);
        self.out.push_str(": ");
    }

    fn close(&mut self, closer: char, indent: usize) {
        self.newline(indent);
        self.out.push(closer);
    }

    /// A multi-line array whose items (at `indent + 1`) are written by `item`.
    fn list<T>(&mut self, items: impl ExactSizeIterator<Item = T>, indent: usize, mut item: impl FnMut(&mut Self, T)) {
        if items.len() == 0 {
            self.out.push_str("[]");
            return;
        }
        self.out.push('[');
        for (idx, element) in items.enumerate() {
            if idx > 0 {
                self.out.push(',');
            }
            self.newline(indent + 1);
            item(self, element);
        }
        self.close(']', indent);
    }

    /// A value whose first line continues the current one. Arrays of scalars, and objects of
    /// scalars inside arrays (`inline_objects`), stay on one line when short.
    fn value(&mut self, value: &Value, indent: usize, inline_objects: bool) {
        match &value.kind {
            ValueKind::Array(elements) if !elements.is_empty() => {
                if let Some(inline) = inline(value, self.durations).filter(|text| text.len() <= INLINE_WIDTH) {
                    self.out.push_str(&inline);
                } else {
                    self.list(elements.iter(), indent, |printer, element| printer.value(element, indent + 1, true));
                }
            }
            ValueKind::Object(members) if !members.is_empty() => {
                match inline(value, self.durations).filter(|text| inline_objects && text.len() <= INLINE_WIDTH) {
                    Some(inline) => self.out.push_str(&inline),
                    None => {
                        let mut first = true;
                        self.out.push('{');
                        let durations = self.durations;
                        for member in members {
                            self.key(&mut first, indent + 1, &member.key.node);
                            self.durations = member_durations(member, durations);
                            self.value(&member.value, indent + 1, false);
                        }
                        self.durations = durations;
                        self.close('}', indent);
                    }
                }
            }
            _ => write_scalar(&mut self.out, value, self.durations),
        }
    }
}

/// The spelling of durations in a member's value: under a `$` key of a test form, times are
/// strings.
fn member_durations(member: &Member, durations: Durations) -> Durations {
    if member.key.node.starts_with('$') {
        Durations::Strings
    } else {
        durations
    }
}

/// One-line form of a container whose items are all scalars (or empty containers).
fn inline(value: &Value, durations: Durations) -> Option<String> {
    let is_flat = |value: &Value| match &value.kind {
        ValueKind::Array(items) => items.is_empty(),
        ValueKind::Object(members) => members.is_empty(),
        _ => true,
    };
    let mut out = String::new();
    match &value.kind {
        ValueKind::Array(elements) if elements.iter().all(is_flat) => {
            out.push('[');
            for (idx, element) in elements.iter().enumerate() {
                if idx > 0 {
                    out.push_str(", ");
                }
                write_scalar(&mut out, element, durations);
            }
            out.push(']');
        }
        ValueKind::Object(members) if members.iter().all(|member: &Member| is_flat(&member.value)) => {
            out.push_str("{ ");
            for (idx, member) in members.iter().enumerate() {
                if idx > 0 {
                    out.push_str(", ");
                }
                write_string(&mut out, &member.key.node);
                out.push_str(": ");
                write_scalar(&mut out, &member.value, member_durations(member, durations));
            }
            out.push_str(" }");
        }
        _ => return None,
    }
    Some(out)
}

/// Scalars and empty containers. Durations print as written (`"5m"`, or `{"$duration": "5m"}`
/// in test data) and expressions in the canonical syntax, as strings, which is how JSON spells
/// them.
fn write_scalar(out: &mut String, value: &Value, durations: Durations) {
    match &value.kind {
        ValueKind::Null => out.push_str("null"),
        ValueKind::Bool(flag) => out.push_str(if *flag { "true" } else { "false" }),
        ValueKind::Number(Number::Int(int)) => out.push_str(&int.to_string()),
        // JSON has no NaN or infinity; neither front end produces them.
        ValueKind::Number(Number::Float(float)) if !float.is_finite() => out.push_str("null"),
        ValueKind::Number(Number::Float(float)) => out.push_str(&format_float(*float)),
        ValueKind::String(text) => write_string(out, text),
        ValueKind::Duration(duration) if durations == Durations::Objects => {
            out.push('{');
            write_string(out, DURATION_KEY);
            out.push_str(": ");
            write_string(out, &duration.text);
            out.push('}');
        }
        ValueKind::Duration(duration) => write_string(out, &duration.text),
        ValueKind::Expr(expr) => write_string(out, &print_expr(expr)),
        ValueKind::Array(_) => out.push_str("[]"),
        ValueKind::Object(_) => out.push_str("{}"),
    }
}
