//! One analysis of one open file: the front end picked by extension, the referenced JSON Schema
//! file, the checker (the same passes and the same de-duplication as `pulsec check`), and the
//! per-node record types that hover and completion need. Pure apart from `read_schema`.

use pulse_check::records::NodeRecords;
use pulse_check::{CheckOptions, NODE_TYPES};
use pulse_ir::Pipeline;
use pulse_syntax::ast::{Document, NodeDecl};
use pulse_syntax::codes::E0109;
use pulse_syntax::{Diagnostic, FileId, SourceMap, Span};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Form {
    Pulse,
    Json,
}

impl Form {
    /// The front end for a file name: `.json` is the JSON DAG, everything else `.pulse`.
    pub fn of(name: &str) -> Form {
        if name.ends_with(".json") {
            Form::Json
        } else {
            Form::Pulse
        }
    }
}

pub struct Analysis {
    pub sources: SourceMap,
    /// The analysed file; a referenced JSON Schema file, when read, is another file of `sources`.
    pub file: FileId,
    pub form: Form,
    pub document: Option<Document>,
    pub pipeline: Option<Pipeline>,
    pub diagnostics: Vec<Diagnostic>,
    /// Record types per node of `document`, computed even when the checker reported errors.
    pub records: Option<NodeRecords>,
    /// The JSON Schema file named by `schema "path"`, as written, and its id when it was read.
    pub schema_file: Option<(String, Option<FileId>)>,
}

impl Analysis {
    pub fn text(&self) -> &str {
        &self.sources.get(self.file).text
    }

    pub fn node_index(&self, id: &str) -> Option<usize> {
        self.document.as_ref()?.nodes.iter().position(|node| node.id.node == id)
    }

    pub fn node(&self, idx: usize) -> Option<&NodeDecl> {
        self.document.as_ref()?.nodes.get(idx)
    }

    /// Analyses another text of the same file, reusing the JSON Schema file already read.
    pub fn with_text(&self, text: String) -> Analysis {
        let schema = self
            .schema_file
            .as_ref()
            .and_then(|(name, id)| Some((name.clone(), self.sources.get((*id)?).text.clone())));
        let read_schema = |path: &str| match &schema {
            Some((name, text)) if name == path => Ok(text.clone()),
            _ => Err(std::io::Error::new(std::io::ErrorKind::NotFound, "not read")),
        };
        analyze(&self.sources.get(self.file).name, text, &read_schema)
    }
}

/// Same as `pulsec::load::load_text`, which this crate cannot call (pulsec depends on it).
pub fn analyze(name: &str, text: String, read_schema: &dyn Fn(&str) -> std::io::Result<String>) -> Analysis {
    let mut sources = SourceMap::new();
    let form = Form::of(name);
    let file = sources.add(name, text);
    let source_text = sources.get(file).text.clone();
    let (document, mut diagnostics) = match form {
        Form::Json => pulse_syntax::json::parse_json_document(file, &source_text),
        Form::Pulse => pulse_syntax::pulse::parse_pulse_document(file, &source_text),
    };
    // A `.pulse` document holds the items that parsed (the others are `Document::unparsed`), so
    // the checker runs on it whatever the syntax errors; a JSON document read past a syntax
    // error is a guess, so syntax errors there stop the check.
    let syntax_failed = form == Form::Json
        && diagnostics.iter().any(|diagnostic| {
            diagnostic.is_error() && (diagnostic.code.as_str().starts_with("E00") || diagnostic.code == E0109)
        });
    let mut pipeline = None;
    let mut records = None;
    let mut schema_file = None;
    if let Some(doc) = &document {
        let mut schema_id = None;
        let mut external_schema_unreadable = false;
        if let Some((path, span)) = pulse_check::schema_reference(doc) {
            match read_schema(&path) {
                Ok(schema_text) => schema_id = Some(sources.add(path.clone(), schema_text)),
                Err(error) => {
                    if !syntax_failed {
                        diagnostics.push(crate::schema_file::unread_schema_diagnostic(&path, &error, span));
                    }
                    external_schema_unreadable = true;
                }
            }
            schema_file = Some((path, schema_id));
        }
        let schema_text = schema_id.map(|id| sources.get(id).text.clone());
        let options =
            CheckOptions { external_schema: schema_id.zip(schema_text.as_deref()), external_schema_unreadable };
        records = Some(pulse_check::records::node_records(doc, options));
        if !syntax_failed {
            let (checked, check_diagnostics) = pulse_check::check(doc, options);
            for diagnostic in check_diagnostics {
                let repeated = diagnostics.iter().any(|seen| {
                    seen.code == diagnostic.code
                        && (seen.primary_span() == diagnostic.primary_span() || seen.message == diagnostic.message)
                });
                if !repeated {
                    diagnostics.push(diagnostic);
                }
            }
            if let Some((id, text)) = schema_id.zip(schema_text.as_deref()) {
                crate::schema_file::confine_schema_diagnostics(&mut diagnostics, id, text);
            }
            pipeline = checked.filter(|_| !diagnostics.iter().any(Diagnostic::is_error));
        }
    }
    Analysis { sources, file, form, document, pipeline, diagnostics, records, schema_file }
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
