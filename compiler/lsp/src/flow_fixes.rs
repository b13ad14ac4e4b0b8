//! Quick fixes that edit the flow, for diagnostics whose help the compiler cannot give as one
//! replacement of the span it points at: a template that may read null (W0007) gets the null
//! test before its sink, and an unnamed port in the middle of a chain (E0209) gets the chain
//! split there with the port named. A fix is offered only when the edit is exact; the tests
//! apply it and check again.

use crate::analysis::{node_type, Analysis, Form};
use crate::code_actions::QuickFix;
use crate::completion::unclosed_braces;
use crate::locate::raw_content;
use pulse_syntax::ast::{BinaryOp, Document, ExprKind, ValueKind};
use pulse_syntax::{Diagnostic, Span};

/// The flow fix of diagnostic `idx`, if it has one.
pub fn flow_fix(analysis: &Analysis, idx: usize, diagnostic: &Diagnostic) -> Option<QuickFix> {
    let doc = analysis.document.as_ref()?;
    let span = diagnostic.primary_span().filter(|span| span.file == analysis.file)?;
    match diagnostic.code.as_str() {
        "W0007" => null_test(analysis, doc, span).map(|(title, span, replacement)| QuickFix {
            title,
            span,
            replacement,
            diagnostic: idx,
        }),
        "E0209" if diagnostic.suggestion.is_none() && analysis.form != Form::Json => {
            let output = diagnostic.message.contains("which output");
            split_chain(analysis.text(), doc, span, output).map(|(title, span, replacement)| QuickFix {
                title,
                span,
                replacement,
                diagnostic: idx,
            })
        }
        _ => None,
    }
}

/// (title, span to replace, replacement).
pub type Edit = (String, Span, String);

/// The sink's template reads `field` (at `span`), which may be null: extend the filter that
/// feeds the sink with `&& field != null`, or insert `filter(field != null)` before the sink.
fn null_test(analysis: &Analysis, doc: &Document, span: Span) -> Option<Edit> {
    let field = analysis.text().get(span.range())?;
    let sink = doc.nodes.iter().find(|node| node.config.span.range().contains(&(span.start as usize)))?;
    null_test_before(analysis, doc, &sink.id.node, field)
}

/// A keyed node whose key may be null on the records entering it: such records go to the dead
/// letters (G36). This is an editor hint, not a compiler warning (dead-lettering them is a
/// choice a pipeline may make); it offers the null test before the node.
pub struct KeyHint {
    /// The key after `by` (or the `keyBy` value).
    pub span: Span,
    pub message: String,
    /// (title, span, replacement) of the null test, when one edit makes it.
    pub fix: Option<Edit>,
}

/// The keyed nodes of `analysis` whose key may be null, with a declared schema only (without
/// one every field may be null, and the hint would be everywhere), in a file without errors (a
/// half-typed filter would make every key after it nullable for a moment).
pub fn nullable_keys(analysis: &Analysis) -> Vec<KeyHint> {
    let (Some(doc), Some(records)) = (analysis.document.as_ref(), analysis.records.as_ref()) else {
        return Vec::new();
    };
    if records.schema.is_none() || analysis.has_errors() {
        return Vec::new();
    }
    doc.nodes
        .iter()
        .enumerate()
        .filter_map(|(idx, node)| {
            let key = records.operators.get(idx)?.as_ref()?.key_by()?;
            let field = records.inputs.get(idx)?.as_ref()?.lookup(&key.0)?;
            let member = node.config.as_object()?.iter().find(|member| member.key.node == "keyBy")?;
            if !field.nullable || member.value.span.file != analysis.file {
                return None;
            }
            let (dotted, id) = (key.dotted(), &node.id.node);
            Some(KeyHint {
                span: member.value.span,
                message: format!(
                    "the key `{dotted}` may be null: `{id}` sends records without it to the dead letters (G36); \
                     test `{dotted} != null` before `{id}` to leave them out instead"
                ),
                fix: null_test_before(analysis, doc, id, &dotted),
            })
        })
        .collect()
}

/// `field != null` before node `target`: extend the filter that feeds it, or insert a filter.
fn null_test_before(analysis: &Analysis, doc: &Document, target: &str, field: &str) -> Option<Edit> {
    let text = analysis.text();
    if doc.unparsed_mentions(target) {
        return None;
    }
    // One edge into the node, or one fix would not cover every record that reaches it.
    let mut incoming = doc.edges.iter().filter(|edge| edge.to.node == target);
    let (edge, None) = (incoming.next()?, incoming.next()) else { return None };
    let test = format!("{field} != null");
    let feeder = doc.nodes.iter().find(|node| node.id.node == edge.from.node);
    let feeds_only_the_sink = doc.edges.iter().filter(|other| other.from.node == edge.from.node).count() == 1;
    let where_value = feeder
        .filter(|node| node_type(&node.kind.node).is_some_and(|node_type| node_type.name == "filter"))
        .filter(|_| feeds_only_the_sink)
        .and_then(|node| node.config.as_object()?.iter().find(|member| member.key.node == "where"))
        .map(|member| &member.value);
    if let Some(value) = where_value {
        let filter_id = &edge.from.node;
        let title = format!("Add `&& {test}` to the condition of `{filter_id}`");
        // `a || b && x` would test only `b`: an `||` condition is parenthesised first.
        let extended = |condition: &str, or: bool| {
            if or {
                format!("({condition}) && {test}")
            } else {
                format!("{condition} && {test}")
            }
        };
        return match &value.kind {
            ValueKind::Expr(expr) => {
                let or = matches!(expr.kind, ExprKind::Binary { op: BinaryOp::Or, .. });
                Some((title, value.span, extended(text.get(value.span.range())?, or)))
            }
            ValueKind::String(condition) if analysis.form == Form::Json => {
                let (start, raw) = raw_content(text, value.span)?;
                let (expr, diagnostics) = pulse_syntax::parse_expr(value.span.file, condition, start);
                if raw != condition || expr.is_none() || !diagnostics.is_empty() {
                    return None;
                }
                let or = expr.is_some_and(|expr| matches!(expr.kind, ExprKind::Binary { op: BinaryOp::Or, .. }));
                Some((title, Span::new(value.span.file, start, start + raw.len()), extended(raw, or)))
            }
            _ => None,
        };
    }
    if analysis.form == Form::Json {
        // A new JSON node is an object in `nodes` and two edges: not one edit.
        return None;
    }
    let base = format!("{}_not_null", field.replace('.', "_"));
    let id = std::iter::once(base.clone())
        .chain((2..).map(|number| format!("{base}_{number}")))
        .find(|id| doc.nodes.iter().all(|node| &node.id.node != id) && !doc.unparsed_mentions(id))?;
    let insert_at = Span::new(edge.to.span.file, edge.to.span.start as usize, edge.to.span.start as usize);
    let title = format!("Insert `{id}: filter({test})` before `{target}`");
    Some((title, insert_at, format!("{id}: filter({test}) -> ")))
}

/// An edge in the middle of a chain (`src -> split -> out`) must name the port of the node at
/// `span`: split the chain after the node, the new line starting from the named port
/// (`src -> split` and `split.high -> out`). Only at the top level, where a line starts an item.
fn split_chain(text: &str, doc: &Document, span: Span, output: bool) -> Option<Edit> {
    let id = text.get(span.range())?;
    let node = doc.nodes.iter().find(|node| node.id.node == id)?;
    let node_type = node_type(&node.kind.node)?;
    let declared_here = node.id.span == span;
    let (port, insert_at, replacement) = if output {
        let port = if node_type.dynamic_outputs {
            // A splitter's outputs are its routes (then `default`), as the checker lists them.
            node.config
                .as_object()?
                .iter()
                .find(|member| member.key.node == "routes")
                .and_then(|routes| match &routes.value.kind {
                    ValueKind::Array(items) => items.first()?.as_object()?.iter().find(|m| m.key.node == "name"),
                    _ => None,
                })
                .and_then(|name| name.value.as_str())
                .unwrap_or("default")
                .to_string()
        } else {
            node_type.outputs.first()?.to_string()
        };
        let end = if declared_here { node.span.end } else { span.end } as usize;
        (port.clone(), end, format!("\n{id}.{port}"))
    } else {
        // A declaration cannot name its input: `src -> w: has-done-event(...) -> out` stays as is.
        if declared_here {
            return None;
        }
        let port = node_type.inputs.first()?.to_string();
        (port.clone(), span.end as usize, format!(".{port}\n{id}"))
    };
    if !unclosed_braces(&text[..insert_at]).is_empty() {
        return None;
    }
    let title = if output {
        format!("Split the chain: continue from `{id}.{port}`")
    } else {
        format!("Split the chain: end this edge at `{id}.{port}`")
    };
    Some((title, Span::new(span.file, insert_at, insert_at), replacement))
}

#[cfg(test)]
mod tests {
    use crate::analysis::analyze;
    use crate::code_actions::quick_fixes;

    fn analyze_text(name: &str, text: &str) -> crate::analysis::Analysis {
        analyze(name, text.to_string(), &|_| Err(std::io::ErrorKind::NotFound.into()))
    }

    fn codes(name: &str, text: &str) -> Vec<String> {
        analyze_text(name, text).diagnostics.iter().map(|d| d.code.as_str().to_string()).collect()
    }

    /// The text after applying the one fix of the diagnostic `code` at `at`.
    fn fixed(name: &str, text: &str, code: &str, at: &str) -> Option<String> {
        let analysis = analyze_text(name, text);
        let offset = text.find(at).expect("the needle is in the text");
        let mut fixes: Vec<_> = quick_fixes(&analysis, offset..offset)
            .into_iter()
            .filter(|fix| analysis.diagnostics[fix.diagnostic].code.as_str() == code)
            .collect();
        fixes.truncate(1);
        let fix = fixes.pop()?;
        let mut text = text.to_string();
        text.replace_range(fix.span.range(), &fix.replacement);
        Some(text)
    }

    const HEAD: &str = "pipeline p\nevent { userId: string?, name: string }\nsrc: file-source(\"in\")\n";
    const SINK: &str = "push: api-sink(\"https://x/{{ userId }}\")";

    #[test]
    fn extends_the_filter_before_the_sink() {
        let text = format!("{HEAD}src -> f: filter(name == \"a\" || name == \"b\") -> {SINK}\n");
        assert!(codes("p.pulse", &text).contains(&"W0007".to_string()));
        let after = fixed("p.pulse", &text, "W0007", "userId }}").expect("a fix");
        assert!(after.contains("filter((name == \"a\" || name == \"b\") && userId != null)"), "{after}");
        assert_eq!(codes("p.pulse", &after), Vec::<String>::new());
    }

    #[test]
    fn inserts_a_filter_before_the_sink() {
        // The node before the sink is not a filter, and `userId_not_null` is taken.
        let text = format!(
            "{HEAD}userId_not_null: stdout-sink\nsrc -> userId_not_null\nsrc -> d: delay(5m) by name -> {SINK}\n"
        );
        let after = fixed("p.pulse", &text, "W0007", "userId }}").expect("a fix");
        assert!(after.contains("-> userId_not_null_2: filter(userId != null) -> push: api-sink"), "{after}");
        assert_eq!(codes("p.pulse", &after), Vec::<String>::new());
        // A filter that also feeds another node is not changed: a new one goes before the sink.
        let text = format!("{HEAD}src -> f: filter(name == \"a\") -> {SINK}\nf -> out: stdout-sink\n");
        let after = fixed("p.pulse", &text, "W0007", "userId }}").expect("a fix");
        assert!(after.contains("filter(name == \"a\") -> userId_not_null: filter(userId != null) -> push"), "{after}");
        assert_eq!(codes("p.pulse", &after), Vec::<String>::new());
        // Two edges into the sink: no one edit covers both.
        let text = format!("{HEAD}{SINK}\nsrc -> push\nsrc -> f: filter(name == \"a\") -> push\n");
        assert_eq!(fixed("p.pulse", &text, "W0007", "userId }}"), None);
    }

    #[test]
    fn extends_a_json_condition() {
        let text = r#"{"name": "p", "schema": {"fields": {"userId": "string?", "name": "string"}}, "nodes": [
  {"id": "s", "type": "file-source", "config": {"path": "in"}},
  {"id": "f", "type": "filter", "config": {"where": "name == 'a'"}},
  {"id": "o", "type": "api-sink", "config": {"url": "https://x/{{ userId }}"}}
], "edges": ["s -> f", "f -> o"]}"#;
        assert!(codes("p.json", text).contains(&"W0007".to_string()));
        let after = fixed("p.json", text, "W0007", "userId }}").expect("a fix");
        assert!(after.contains(r#""where": "name == 'a' && userId != null""#), "{after}");
        assert_eq!(codes("p.json", &after), Vec::<String>::new());
    }

    /// The text after applying the fix of the null-key hint at `at`, and the hints before it.
    fn key_fixed(text: &str, at: &str) -> (usize, Option<String>) {
        let analysis = analyze_text("p.pulse", text);
        let hints = super::nullable_keys(&analysis);
        let offset = text.find(at).expect("the needle is in the text");
        let hint = hints.iter().find(|hint| hint.span.range().contains(&offset));
        let fixed = hint.and_then(|hint| hint.fix.clone()).map(|(_, span, replacement)| {
            let mut text = text.to_string();
            text.replace_range(span.range(), &replacement);
            text
        });
        (hints.len(), fixed)
    }

    #[test]
    fn a_nullable_key_gets_a_hint_and_its_null_test() {
        let text = format!("{HEAD}src -> counts: dedupe(1h) by userId -> out: stdout-sink\n");
        let (hints, after) = key_fixed(&text, "userId ->");
        assert_eq!(hints, 1);
        let after = after.expect("a fix");
        assert!(after.contains("src -> userId_not_null: filter(userId != null) -> counts: dedupe"), "{after}");
        assert_eq!(key_fixed(&after, "userId ->").0, 0, "{after}");
        assert_eq!(codes("p.pulse", &after), Vec::<String>::new());
        // A filter before the node is extended; a non-null key, or no schema, gives no hint.
        let text =
            format!("{HEAD}src -> f: filter(name == \"a\") -> counts: dedupe(1h) by userId -> out: stdout-sink\n");
        let after = key_fixed(&text, "userId ->").1.expect("a fix");
        assert!(after.contains("f: filter(name == \"a\" && userId != null)"), "{after}");
        let text = format!("{HEAD}src -> counts: dedupe(1h) by name -> out: stdout-sink\n");
        assert_eq!(key_fixed(&text, "name ->").0, 0);
        let text = "pipeline p\nsrc: file-source(\"in\")\nsrc -> counts: dedupe(1h) by userId -> out: stdout-sink\n";
        assert_eq!(key_fixed(text, "userId ->").0, 0);
    }

    #[test]
    fn splits_a_chain_to_name_a_port() {
        let head = "pipeline p\nevent { userId: string, event_name: string }\nsrc: file-source(\"in\")\n";
        let split = "split: splitter { route high: userId == \"a\" }\n";
        let text = format!("{head}{split}src -> split -> out: stdout-sink\n");
        let after = fixed("p.pulse", &text, "E0209", "split -> out").expect("a fix");
        assert!(after.ends_with("src -> split\nsplit.high -> out: stdout-sink\n"), "{after}");
        assert!(!codes("p.pulse", &after).contains(&"E0209".to_string()), "{after}");
        // Both ports of a has-done-event in the middle of a chain: one fix each, in turn.
        let watched = "w: has-done-event(event_name == \"x\") by userId\n";
        let text = format!("{head}{watched}src -> w -> out: stdout-sink\n");
        assert!(codes("p.pulse", &text).contains(&"E0209".to_string()));
        // Each fix in turn, as in the editor: after the first, the other edge is no longer in
        // the middle of a chain and the compiler's own suggestion names its port.
        let after = fixed("p.pulse", &text, "E0209", "w -> out").expect("a first fix");
        let after = fixed("p.pulse", &after, "E0209", "w -> out").expect("a second fix");
        assert!(after.ends_with("src -> w.flow\nw.yes -> out: stdout-sink\n"), "{after}");
        assert_eq!(codes("p.pulse", &after), Vec::<String>::new(), "{after}");
        // Inside a branch block a new line would not start an item: no fix.
        let text = format!("{head}{watched}src -> w.flow\nw {{\n  yes -> split -> out: stdout-sink\n  no -> n: stdout-sink\n}}\n{split}");
        assert_eq!(fixed("p.pulse", &text, "E0209", "split -> out"), None);
    }
}
