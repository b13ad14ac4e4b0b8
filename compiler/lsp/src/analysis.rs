//! The analysis of one open file is `pulse_analysis::analyze`, the front door `pulsec check`
//! uses too, asked for the per-node record types that hover and completion need. This module
//! adds the lookups into the checker's registry that the features share.

use pulse_check::NODE_TYPES;
use pulse_syntax::ast::Document;
use pulse_syntax::Span;

pub use pulse_analysis::{Analysis, Form};

/// Analyses the text of an open file, with the record type at every node.
pub fn analyze(name: &str, text: String, read_schema: &dyn Fn(&str) -> std::io::Result<String>) -> Analysis {
    pulse_analysis::analyze(name, text, read_schema, pulse_analysis::Options { node_records: true })
}

/// The registry entry of a node type name (aliases included).
pub fn node_type(name: &str) -> Option<&'static pulse_check::NodeType> {
    NODE_TYPES.iter().find(|node_type| node_type.name == name || node_type.aliases.contains(&name))
}

/// The span of `id`'s declaration in `doc`.
pub fn node_decl_span(doc: &Document, id: &str) -> Option<Span> {
    doc.nodes.iter().find(|node| node.id.node == id).map(|node| node.id.span)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_schema(_: &str) -> std::io::Result<String> {
        Err(std::io::Error::new(std::io::ErrorKind::NotFound, "no file"))
    }

    #[test]
    fn reports_checker_errors_with_records() {
        let text = "pipeline p\nevent { userId: string }\nsrc: file-source(\"x\")\nsrc -> f: filter(usr_id != null) -> out: stdout-sink\n";
        let analysis = analyze("p.pulse", text.to_string(), &no_schema);
        assert!(analysis.diagnostics.iter().any(|diagnostic| diagnostic.code.as_str() == "E0205"));
        assert!(analysis.pipeline.is_none());
        let records = analysis.records.as_ref().expect("records");
        assert!(records.inputs[1].as_ref().expect("filter input").fields.contains_key("userId"));
    }

    #[test]
    fn reads_the_schema_file_relative_to_the_document() {
        let text = r#"{"name": "p", "schema": "events.schema.json", "nodes": [{"id": "s", "type": "file-source", "config": {"path": "x"}}, {"id": "o", "type": "stdout-sink"}], "edges": ["s -> o"]}"#;
        let schema = r#"{"type": "object", "properties": {"userId": {"type": "string"}}, "required": ["userId"]}"#;
        let read = |path: &str| {
            assert_eq!(path, "events.schema.json");
            Ok(schema.to_string())
        };
        let analysis = analyze("p.json", text.to_string(), &read);
        assert!(analysis.diagnostics.iter().all(|diagnostic| !diagnostic.is_error()), "{:?}", analysis.diagnostics);
        assert!(analysis.pipeline.is_some());
        assert!(matches!(analysis.schema_file, Some((_, Some(_)))));
    }
}
