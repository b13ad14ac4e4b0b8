//! The document outline: the pipeline, its event schema with its fields, its nodes (with their
//! type, or "does not parse") and its tests.

use crate::analysis::{node_type, Analysis};
use crate::definition::id_span;
use lsp_types::SymbolKind;
use pulse_syntax::ast::{Member, ValueKind};
use pulse_syntax::Span;

#[derive(Clone, Debug, PartialEq)]
pub struct Symbol {
    pub name: String,
    pub detail: Option<String>,
    pub kind: SymbolKind,
    /// The whole construct; always contains `selection`.
    pub span: Span,
    /// The name of the construct.
    pub selection: Span,
    pub children: Vec<Symbol>,
}

impl Symbol {
    fn new(name: String, detail: Option<String>, kind: SymbolKind, span: Span, selection: Span) -> Symbol {
        Symbol { name, detail, kind, span: span.to(selection), selection, children: Vec::new() }
    }
}

pub fn symbols(analysis: &Analysis) -> Vec<Symbol> {
    let Some(doc) = analysis.document.as_ref() else { return Vec::new() };
    let text = analysis.text();
    let mut symbols = Vec::new();
    if let Some(schema) = doc.setting("schema") {
        let mut symbol =
            Symbol::new("event".into(), Some("event schema".into()), SymbolKind::STRUCT, schema.span, schema.span);
        if let Some(fields) = schema.as_object().and_then(fields_of) {
            symbol.children = field_symbols(fields);
        }
        symbols.push(symbol);
    }
    for node in &doc.nodes {
        let kind = match node_type(&node.kind.node) {
            Some(node_type) if node_type.is_source() => SymbolKind::EVENT,
            Some(node_type) if node_type.outputs.is_empty() || node_type.name == "api-sink" => SymbolKind::INTERFACE,
            _ => SymbolKind::FUNCTION,
        };
        let selection = id_span(text, node.id.span);
        symbols.push(Symbol::new(node.id.node.clone(), Some(node.kind.node.clone()), kind, node.span, selection));
    }
    // Nodes of items that do not parse keep their place in the outline.
    let first_node = symbols.len() - doc.nodes.len();
    for item in &doc.unparsed {
        for node in &item.nodes {
            let detail = Some("does not parse".to_string());
            symbols.push(Symbol::new(node.id.node.clone(), detail, SymbolKind::FUNCTION, item.span, node.id.span));
        }
    }
    symbols[first_node..].sort_by_key(|symbol| symbol.selection.start);
    for test in &doc.tests {
        symbols.push(Symbol::new(
            test.name.node.clone(),
            Some("test".into()),
            SymbolKind::METHOD,
            test.span,
            test.name.span,
        ));
    }
    let name = doc.setting("name").and_then(|value| value.as_str().map(|name| (name.to_string(), value.span)));
    match name {
        Some((name, span)) => {
            let mut pipeline = Symbol::new(name, Some("pipeline".into()), SymbolKind::MODULE, doc.span, span);
            pipeline.children = symbols;
            vec![pipeline]
        }
        None => symbols,
    }
}

fn fields_of(members: &[Member]) -> Option<&[Member]> {
    members.iter().find(|member| member.key.node == "fields")?.value.as_object()
}

fn field_symbols(fields: &[Member]) -> Vec<Symbol> {
    fields
        .iter()
        .map(|field| {
            let detail = match &field.value.kind {
                ValueKind::String(ty) => Some(ty.clone()),
                _ => Some("object".into()),
            };
            let mut symbol =
                Symbol::new(field.key.node.clone(), detail, SymbolKind::FIELD, field.value.span, field.key.span);
            if let Some(nested) = field.value.as_object().and_then(fields_of) {
                symbol.children = field_symbols(nested);
            }
            symbol
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::analyze;

    #[test]
    fn outlines_the_pipeline() {
        let text = "pipeline p\nevent { userId: string, props: { a: int }? }\nsrc: file-source(\"in\")\nsrc -> out: stdout-sink\n";
        let analysis = analyze("p.pulse", text.to_string(), &|_| Err(std::io::ErrorKind::NotFound.into()));
        let symbols = symbols(&analysis);
        assert_eq!(symbols.len(), 1);
        let names: Vec<&str> = symbols[0].children.iter().map(|symbol| symbol.name.as_str()).collect();
        assert_eq!(names, ["event", "src", "out"]);
        assert_eq!(symbols[0].children[0].children[1].children[0].name, "a");
    }
}
