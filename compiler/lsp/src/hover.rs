//! Hover text (Markdown): fields with their type and origin, nodes with their operator docs,
//! ports, record types and state estimate, node types, config keys, durations and schema fields.

use crate::analysis::{node_type, Analysis};
use crate::definition::{field_definition, schema_field_definition};
use crate::locate::{self, Item};
use crate::recovery;
use pulse_check::NodeType;
use pulse_ir::{FieldType, Operator, RecordType, Type};
use pulse_syntax::Span;

/// The hover text for the item at `offset`, and the span it describes. `last_good` is the last
/// analysis without a syntax error, which gives the field types a syntax error left unknown.
pub fn hover(analysis: &Analysis, last_good: Option<&Analysis>, offset: usize) -> Option<(String, Span)> {
    let doc = analysis.document.as_ref()?;
    let item = locate::item_at(doc, analysis.text(), offset)?;
    let text = match &item {
        Item::Field { node, path, .. } => field_hover(analysis, last_good, *node, path),
        Item::NodeDecl { node, .. } => node_hover(analysis, *node),
        Item::NodeRef { id, .. } => node_hover(analysis, analysis.node_index(id)?),
        Item::Port { id, port, output, .. } => port_hover(analysis, id, port, *output),
        Item::NodeType { node, .. } => operator_docs(node_type(&doc.nodes[*node].kind.node)?),
        Item::ConfigKey { node, key, .. } => {
            let kind = &doc.nodes[*node].kind.node;
            let known = node_type(kind).is_some_and(|node_type| node_type.keys.contains(&key.as_str()));
            if known {
                format!("`{key}`: an option of `{kind}`")
            } else {
                format!("`{key}` is not an option of `{kind}`")
            }
        }
        Item::Duration { millis, text, .. } => format!("`{text}` = {millis} ms ({})", describe_duration(*millis)),
        Item::SchemaField { path, .. } => {
            let record = analysis.records.as_ref()?.schema.as_ref()?;
            let field = record.lookup(path)?;
            format!("`{}`: `{}`\n\ndeclared in the event schema", path.join("."), type_text(&field))
        }
        Item::SchemaRef { path, .. } => match &analysis.schema_file {
            Some((_, Some(_))) => format!("JSON Schema file `{path}`, read relative to this document"),
            _ => format!("JSON Schema file `{path}` (not readable)"),
        },
    };
    Some((text, item.span()))
}

fn field_hover(analysis: &Analysis, last_good: Option<&Analysis>, node: usize, path: &[String]) -> String {
    let dotted = path.join(".");
    let node_id = analysis.node(node).map(|decl| decl.id.node.clone()).unwrap_or_default();
    let record = recovery::input_record(analysis, last_good, Some(&node_id));
    let record = record.as_ref();
    let mut text = match record.map(|record| record.lookup(path)) {
        Some(Some(field)) => format!("`{dotted}`: `{}`", type_text(&field)),
        Some(None) => format!("`{dotted}`: unknown field on the records entering `{node_id}`"),
        None => format!("`{dotted}`"),
    };
    if let Some(definition) = field_definition(analysis, node, path) {
        let (line, _) = analysis.sources.get(definition.span.file).line_col(definition.span.start as usize);
        text.push_str(&format!("\n\ndeclared in {} (line {line})", definition.origin));
    } else if schema_field_definition(analysis, path).is_none() && record.is_some_and(|record| record.open) {
        text.push_str("\n\nno event schema: the field is typed from its use");
    }
    text
}

fn node_hover(analysis: &Analysis, node_idx: usize) -> String {
    let Some(decl) = analysis.node(node_idx) else { return String::new() };
    let id = &decl.id.node;
    let mut text = format!("**`{id}`**: `{}`", decl.kind.node);
    let Some(node_type) = node_type(&decl.kind.node) else { return text };
    text.push_str(&format!(" — {}\n\n", node_type.summary));
    let doc = analysis.document.as_ref().expect("a node comes from a document");
    let records = analysis.records.as_ref();
    if !node_type.inputs.is_empty() {
        let from: Vec<String> = doc
            .edges
            .iter()
            .filter(|edge| &edge.to.node == id)
            .map(|edge| match &edge.from_port {
                Some(port) => format!("`{}.{}`", edge.from.node, port.node),
                None => format!("`{}`", edge.from.node),
            })
            .collect();
        text.push_str(&format!("inputs: {}", list(node_type.inputs)));
        if !from.is_empty() {
            text.push_str(&format!(" ← {}", from.join(", ")));
        }
        text.push('\n');
        if let Some(input) = records.and_then(|records| records.inputs.get(node_idx)?.as_ref()) {
            text.push_str(&format!("\nrecord in: `{}`\n", record_text(input)));
        }
    }
    let ports: Vec<String> = records
        .and_then(|records| records.ports.get(node_idx).cloned())
        .unwrap_or_else(|| node_type.outputs.iter().map(|port| port.to_string()).collect());
    if !ports.is_empty() {
        let to: Vec<String> =
            doc.edges.iter().filter(|edge| &edge.from.node == id).map(|edge| format!("`{}`", edge.to.node)).collect();
        text.push_str(&format!(
            "\noutputs: {}",
            ports.iter().map(|port| format!("`{port}`")).collect::<Vec<_>>().join(", ")
        ));
        if !to.is_empty() {
            text.push_str(&format!(" → {}", to.join(", ")));
        }
        text.push('\n');
        let output = records.and_then(|records| records.outputs.get(node_idx)?.as_ref()?.first().cloned());
        if let Some((_, record)) = output {
            text.push_str(&format!("\nrecord out: `{}`\n", record_text(&record)));
        }
    }
    if let Some(estimate) =
        records.and_then(|records| records.operators.get(node_idx)?.as_ref()).and_then(state_estimate)
    {
        text.push_str(&format!("\nstate: {estimate}\n"));
    }
    text
}

fn port_hover(analysis: &Analysis, id: &str, port: &str, output: bool) -> String {
    let direction = if output { "output" } else { "input" };
    let mut text = format!("{direction} `{port}` of `{id}`");
    if output {
        let record = analysis.node_index(id).and_then(|idx| {
            let outputs = analysis.records.as_ref()?.outputs.get(idx)?.as_ref()?;
            outputs.iter().find(|(name, _)| name == port).map(|(_, record)| record.clone())
        });
        if let Some(record) = record {
            text.push_str(&format!("\n\nrecord: `{}`", record_text(&record)));
        }
    }
    text
}

/// The registry's documentation of one operator.
pub fn operator_docs(node_type: &NodeType) -> String {
    let mut text = format!("**`{}`** — {}\n\n", node_type.name, node_type.summary);
    if !node_type.aliases.is_empty() {
        text.push_str(&format!("aliases: {}\n\n", list(node_type.aliases)));
    }
    text.push_str(&format!(
        "options: {}\n\n",
        if node_type.keys.is_empty() { "none".into() } else { list(node_type.keys) }
    ));
    let inputs = if node_type.is_source() { "none (a source)".into() } else { list(node_type.inputs) };
    text.push_str(&format!("inputs: {inputs}\n\n"));
    let outputs = match (node_type.dynamic_outputs, node_type.outputs.is_empty()) {
        (true, _) => format!("one per route, and {}", list(node_type.outputs)),
        (false, true) => "none (a sink)".into(),
        (false, false) => list(node_type.outputs),
    };
    text.push_str(&format!("outputs: {outputs}"));
    text
}

/// A rough size of the state an operator keeps per key, where it follows from the configuration
/// alone. Only segmentation qualifies: its counters are bucketed rings of fixed length. Other
/// keyed operators keep state that grows with the traffic (delays hold events, windows hold
/// aggregates per open window), so no honest figure exists for them.
pub fn state_estimate(operator: &Operator) -> Option<String> {
    let Operator::Segmentation { bucket_ms, counters, .. } = operator else { return None };
    if *bucket_ms == 0 {
        return None;
    }
    let buckets: u64 = counters.iter().map(|counter| counter.window_ms.div_ceil(*bucket_ms)).sum();
    let bytes = buckets * 16;
    Some(format!(
        "≈ {} per key ({} counters, {buckets} buckets of {} × 16 B), plus the key",
        human_bytes(bytes),
        counters.len(),
        describe_duration(*bucket_ms)
    ))
}

fn human_bytes(bytes: u64) -> String {
    if bytes >= 10 * 1024 {
        format!("{:.1} KiB", bytes as f64 / 1024.0)
    } else {
        format!("{bytes} B")
    }
}

pub fn describe_duration(millis: u64) -> String {
    const UNITS: [(u64, &str); 5] =
        [(86_400_000, "day"), (3_600_000, "hour"), (60_000, "minute"), (1_000, "second"), (1, "millisecond")];
    for (size, unit) in UNITS {
        if millis >= size && millis.checked_rem(size) == Some(0) {
            let count = millis / size;
            return format!("{count} {unit}{}", if count == 1 { "" } else { "s" });
        }
    }
    format!("{millis} milliseconds")
}

fn list(items: &[&str]) -> String {
    items.iter().map(|item| format!("`{item}`")).collect::<Vec<_>>().join(", ")
}

/// `string?`, `int`, `{ a: int, b: string? }`.
pub fn type_text(field: &FieldType) -> String {
    let base = match &field.ty {
        Type::Object(Some(record)) => record_text(record),
        other => other.name().to_string(),
    };
    if field.nullable {
        format!("{base}?")
    } else {
        base
    }
}

pub fn record_text(record: &RecordType) -> String {
    let mut parts: Vec<String> = record
        .order
        .iter()
        .filter_map(|name| Some(format!("{name}: {}", type_text(record.fields.get(name)?))))
        .collect();
    if record.open {
        parts.push("...".into());
    }
    format!("{{ {} }}", parts.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::analyze;

    const TEXT: &str = "pipeline p\nevent {\n  userId: string\n  props: { show_id: string? }?\n}\n\
src: file-source(\"in\")\n\
seg: segmentation(1h) by userId {\n  counter logins over 7d\n  segment power: logins > 3\n}\n\
src -> f: filter(props.show_id != null) -> wait: delay(5m) by userId -> seg -> out: stdout-sink\n";

    fn hover_at(needle: &str) -> String {
        let analysis = analyze("p.pulse", TEXT.to_string(), &|_| Err(std::io::ErrorKind::NotFound.into()));
        assert!(analysis.pipeline.is_some(), "{:?}", analysis.diagnostics);
        let offset = TEXT.find(needle).expect("needle") + 1;
        hover(&analysis, None, offset).expect("hover").0
    }

    #[test]
    fn hovers_fields_with_type_and_origin() {
        let text = hover_at("show_id !=");
        assert!(text.contains("`props.show_id`: `string?`"), "{text}");
        assert!(text.contains("the event schema (line 4)"), "{text}");
    }

    #[test]
    fn hovers_nodes_with_docs_and_state() {
        let text = hover_at("seg -> out");
        assert!(text.contains("keeps bucketed rolling counters"), "{text}");
        assert!(text.contains("inputs: `in` ← `wait`"), "{text}");
        // 7d over 1h buckets: 168 buckets of 16 bytes.
        assert!(text.contains("≈ 2688 B per key"), "{text}");
        let text = hover_at("f: filter");
        assert!(text.contains("record in: `{ userId: string, props: { show_id: string? }? }`"), "{text}");
    }

    #[test]
    fn hovers_durations_and_types() {
        assert_eq!(hover_at("5m"), "`5m` = 300000 ms (5 minutes)");
        assert!(hover_at("delay(").starts_with("**`delay`**"));
    }
}
