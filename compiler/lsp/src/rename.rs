//! Rename of a node id across the file: its declaration and every edge that names it. The same
//! places answer find-references and document highlight.

use crate::analysis::Analysis;
use crate::definition::id_span;
use crate::locate::{self, Item};
use pulse_syntax::Span;

/// The node id at `offset` and its span, if a node id is there.
pub fn node_id_at(analysis: &Analysis, offset: usize) -> Option<(String, Span)> {
    let doc = analysis.document.as_ref()?;
    match locate::item_at(doc, analysis.text(), offset)? {
        Item::NodeDecl { node, span } => Some((doc.nodes[node].id.node.clone(), id_span(analysis.text(), span))),
        Item::NodeRef { id, span } => Some((id, id_span(analysis.text(), span))),
        _ => None,
    }
}

/// The spans to replace to rename the node at `offset` to `new_name`, in source order.
pub fn rename(analysis: &Analysis, offset: usize, new_name: &str) -> Result<Vec<Span>, String> {
    let is_identifier =
        !new_name.is_empty() && new_name.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == '-');
    if !is_identifier {
        return Err(format!("`{new_name}` is not a node id: use only letters, digits, `_` and `-`"));
    }
    let Some((old_name, _)) = node_id_at(analysis, offset) else {
        return Err("only node ids can be renamed".into());
    };
    let doc = analysis.document.as_ref().expect("node_id_at found a document");
    if new_name != old_name
        && (doc.nodes.iter().any(|node| node.id.node == new_name) || doc.unparsed_node(new_name).is_some())
    {
        return Err(format!("a node `{new_name}` already exists"));
    }
    // The edit would miss the names in an item that does not parse.
    if doc.unparsed_mentions(&old_name) {
        return Err(format!("`{old_name}` is also named where the file does not parse; fix the syntax error first"));
    }
    Ok(occurrences(analysis, &old_name))
}

/// Every place of the file that names node `name`: its declaration and the ends of edges, in
/// source order, each once.
pub fn occurrences(analysis: &Analysis, name: &str) -> Vec<Span> {
    let Some(doc) = analysis.document.as_ref() else { return Vec::new() };
    let old_name = name;
    let text = analysis.text();
    let mut spans: Vec<Span> = doc
        .nodes
        .iter()
        .filter(|node| node.id.node == old_name)
        .map(|node| node.id.span)
        .chain(
            doc.edges
                .iter()
                .flat_map(|edge| [&edge.from, &edge.to])
                .filter(|end| end.node == old_name)
                .map(|end| end.span),
        )
        .map(|span| id_span(text, span))
        .filter(|span| span.file == analysis.file)
        .collect();
    // An inline declaration is also the end of the edges around it: one edit per place.
    spans.sort_by_key(|span| (span.start, span.end));
    spans.dedup();
    spans
}

/// The declaration of the node named at `offset` (when it is declared in this file), then the
/// other places that name it.
pub fn declaration_first(analysis: &Analysis, offset: usize) -> Option<(Vec<Span>, Option<Span>)> {
    let (name, _) = node_id_at(analysis, offset)?;
    let doc = analysis.document.as_ref()?;
    let declaration =
        doc.nodes.iter().find(|node| node.id.node == name).map(|node| id_span(analysis.text(), node.id.span));
    Some((occurrences(analysis, &name), declaration))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::analyze;

    #[test]
    fn renames_declarations_and_edges() {
        let text = "pipeline p\nsrc: file-source(\"in\")\nsrc -> f: filter(x > 1) -> out: stdout-sink\nsrc -> out\n";
        let analysis = analyze("p.pulse", text.to_string(), &|_| Err(std::io::ErrorKind::NotFound.into()));
        let offset = text.find("src ->").expect("edge");
        let spans = rename(&analysis, offset, "events").expect("renames");
        assert_eq!(spans.len(), 3);
        assert!(spans.iter().all(|span| &text[span.range()] == "src"));
        assert!(rename(&analysis, offset, "bad name").is_err());
        assert!(rename(&analysis, offset, "out").is_err());
    }

    #[test]
    fn occurrences_are_every_place_that_names_the_node_and_only_those() {
        let text = "pipeline p\nsrc: file-source(\"in\")\nsrc -> f: filter(x > 1) -> out: stdout-sink\nsrc -> out\n";
        let analysis = analyze("p.pulse", text.to_string(), &|_| Err(std::io::ErrorKind::NotFound.into()));
        let offset = text.rfind("out").expect("edge end");
        let (spans, declaration) = declaration_first(&analysis, offset).expect("a node id");
        let starts: Vec<usize> = spans.iter().map(|span| span.start as usize).collect();
        assert_eq!(starts, vec![text.find("out:").expect("declared"), text.rfind("out").expect("edge")]);
        assert_eq!(declaration.map(|span| span.start as usize), text.find("out:"));
        assert!(declaration_first(&analysis, text.find("x > 1").expect("field")).is_none());
    }

    #[test]
    fn renames_in_json_without_quotes() {
        let text = r#"{"name": "p", "nodes": [{"id": "s", "type": "file-source", "config": {"path": "x"}}, {"id": "o", "type": "stdout-sink"}], "edges": ["s -> o"]}"#;
        let analysis = analyze("p.json", text.to_string(), &|_| Err(std::io::ErrorKind::NotFound.into()));
        let offset = text.find("\"s\"").expect("id") + 1;
        let spans = rename(&analysis, offset, "source").expect("renames");
        assert_eq!(spans.len(), 2);
        assert!(spans.iter().all(|span| &text[span.range()] == "s"), "{spans:?}");
    }
}
