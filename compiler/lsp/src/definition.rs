//! Go to definition: node ids in edges go to the node's declaration, fields go to where they are
//! introduced (a map's `set`, an aggregate, a counter, or the event schema, inline or in the JSON
//! Schema file), and the schema reference goes to the schema file.

use crate::analysis::Analysis;
use crate::locate::{self, Item};
use pulse_syntax::ast::{Member, Value, ValueKind};
use pulse_syntax::{FileId, Span};
use std::collections::BTreeSet;

/// Where something is defined: a span in one of the analysis's files.
#[derive(Clone, Debug, PartialEq)]
pub struct Definition {
    pub span: Span,
    /// Says where the thing comes from, for hover: "the event schema", "map `price`".
    pub origin: String,
}

/// The definition of the item at `offset`.
pub fn definition(analysis: &Analysis, offset: usize) -> Option<Definition> {
    let doc = analysis.document.as_ref()?;
    match locate::item_at(doc, analysis.text(), offset)? {
        Item::NodeRef { id, .. } | Item::Port { id, .. } => {
            // A node declared in an item that does not parse still has its id.
            let span = match doc.nodes.iter().find(|node| node.id.node == id) {
                Some(node) => node.id.span,
                None => doc.unparsed_node(&id)?.id.span,
            };
            Some(Definition { span: id_span(analysis.text(), span), origin: format!("node `{id}`") })
        }
        Item::NodeDecl { node, .. } => {
            let node = &doc.nodes[node];
            Some(Definition {
                span: id_span(analysis.text(), node.id.span),
                origin: format!("node `{}`", node.id.node),
            })
        }
        Item::Field { node, path, .. } => field_definition(analysis, node, &path),
        Item::SchemaField { path, .. } => schema_field_definition(analysis, &path),
        Item::SchemaRef { path, .. } => {
            let (_, file) = analysis.schema_file.as_ref()?;
            let file = (*file)?;
            Some(Definition { span: Span::new(file, 0, 0), origin: format!("the JSON Schema file `{path}`") })
        }
        Item::NodeType { .. } | Item::ConfigKey { .. } | Item::Duration { .. } => None,
    }
}

/// A node id's span without the quotes JSON puts around it.
pub fn id_span(text: &str, span: Span) -> Span {
    match locate::raw_content(text, span) {
        Some((start, inner)) => Span::new(span.file, start, start + inner.len()),
        None => span,
    }
}

/// Where the field `path`, as seen by node `node_idx`, is introduced: the nearest upstream node
/// that sets it, else the event schema.
pub fn field_definition(analysis: &Analysis, node_idx: usize, path: &[String]) -> Option<Definition> {
    let doc = analysis.document.as_ref()?;
    let dotted = path.join(".");
    let mut queue = vec![doc.nodes.get(node_idx)?.id.node.clone()];
    let mut seen = BTreeSet::new();
    while let Some(id) = queue.pop() {
        for edge in doc.edges.iter().filter(|edge| edge.to.node == id) {
            let from = &edge.from.node;
            if !seen.insert(from.clone()) {
                continue;
            }
            let Some(decl) = doc.nodes.iter().find(|node| &node.id.node == from) else { continue };
            let members = decl.config.as_object().unwrap_or_default();
            let origin = |kind: &str| format!("{kind} `{from}`");
            match decl.kind.node.as_str() {
                "map" => {
                    let set = member(members, "set").and_then(Value::as_object).unwrap_or_default();
                    if let Some(found) = set.iter().find(|member| member.key.node == dotted) {
                        return Some(Definition { span: found.key.span, origin: origin("map") });
                    }
                }
                "window-aggregate" => {
                    let aggregates = match member(members, "aggregates").map(|value| &value.kind) {
                        Some(ValueKind::Array(items)) => items.as_slice(),
                        _ => &[],
                    };
                    for aggregate in aggregates {
                        let name = aggregate.as_object().and_then(|fields| member(fields, "name"));
                        if let Some(name) = name.filter(|name| name.as_str() == Some(dotted.as_str())) {
                            return Some(Definition { span: name.span, origin: origin("window-aggregate") });
                        }
                    }
                    // A window aggregate replaces the record: nothing above it reaches here.
                    return Some(Definition {
                        span: id_span(analysis.text(), decl.id.span),
                        origin: origin("window-aggregate"),
                    });
                }
                "segmentation" if path.first().map(String::as_str) == Some("counters") => {
                    let counters = match member(members, "counters").map(|value| &value.kind) {
                        Some(ValueKind::Array(items)) => items.as_slice(),
                        _ => &[],
                    };
                    for counter in counters {
                        let name = counter.as_object().and_then(|fields| member(fields, "name"));
                        if let Some(name) = name.filter(|name| path.get(1).map(String::as_str) == name.as_str()) {
                            return Some(Definition { span: name.span, origin: origin("segmentation") });
                        }
                    }
                    return Some(Definition {
                        span: id_span(analysis.text(), decl.id.span),
                        origin: origin("segmentation"),
                    });
                }
                "segmentation" if path.first().map(String::as_str) == Some("segments") => {
                    return Some(Definition {
                        span: id_span(analysis.text(), decl.id.span),
                        origin: origin("segmentation"),
                    });
                }
                _ => {}
            }
            queue.push(from.clone());
        }
    }
    schema_field_definition(analysis, path)
}

/// The declaration of `path` in the event schema: the inline schema, or the JSON Schema file.
pub fn schema_field_definition(analysis: &Analysis, path: &[String]) -> Option<Definition> {
    let doc = analysis.document.as_ref()?;
    let schema = doc.setting("schema")?;
    match &schema.kind {
        ValueKind::Object(members) => {
            let mut fields = member(members, "fields").and_then(Value::as_object)?;
            let mut found = None;
            for segment in path {
                let field = fields.iter().find(|member| &member.key.node == segment)?;
                found = Some(field.key.span);
                fields = field
                    .value
                    .as_object()
                    .and_then(|nested| member(nested, "fields")?.as_object())
                    .unwrap_or_default();
            }
            Some(Definition { span: found?, origin: "the event schema".into() })
        }
        ValueKind::String(_) => {
            let (name, file) = analysis.schema_file.as_ref()?;
            let file: FileId = (*file)?;
            let (root, _) = pulse_syntax::json::read_json(file, &analysis.sources.get(file).text);
            let mut object = root?;
            let mut found = None;
            for segment in path {
                let properties = member(object.as_object()?, "properties")?;
                let field = properties.as_object()?.iter().find(|member| &member.key.node == segment)?;
                found = Some(field.key.span);
                object = field.value.clone();
            }
            Some(Definition { span: found?, origin: format!("the JSON Schema file `{name}`") })
        }
        _ => None,
    }
}

fn member<'a>(members: &'a [Member], key: &str) -> Option<&'a Value> {
    members.iter().rev().find(|member| member.key.node == key).map(|member| &member.value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::analyze;

    const TEXT: &str = "pipeline p\nevent {\n  userId: string\n  amount: float\n}\nsrc: file-source(\"in\")\n\
enrich: map { set: { cents: amount * 100 } }\nsrc -> enrich -> f: filter(cents > 1 && userId != \"\") -> out: stdout-sink\n";

    fn definition_of(needle: &str) -> Option<(String, String)> {
        let analysis = analyze("p.pulse", TEXT.to_string(), &|_| Err(std::io::ErrorKind::NotFound.into()));
        let offset = TEXT.find(needle).expect("needle") + 1;
        let found = definition(&analysis, offset)?;
        Some((analysis.sources.text(found.span).to_string(), found.origin))
    }

    #[test]
    fn fields_go_to_their_origin() {
        assert_eq!(definition_of("cents >"), Some(("cents".into(), "map `enrich`".into())));
        assert_eq!(definition_of("userId !="), Some(("userId".into(), "the event schema".into())));
        assert_eq!(definition_of("amount *"), Some(("amount".into(), "the event schema".into())));
    }

    #[test]
    fn node_references_go_to_declarations() {
        let (text, _) = definition_of("enrich -> f").expect("found");
        assert_eq!(text, "enrich");
    }
}
