//! The one front door of analysis, below both doors that need it (`pulsec` and the language
//! server): pick the front end by the file's name, read the JSON Schema file the pipeline names
//! through the caller's `read_schema`, run the checker, and collect every diagnostic once. The
//! CLI hands it files read from disk, the language server the unsaved text of an editor.
//! `analyze` does no I/O; `schema_file` is the one guarded reader of schema files, which only the
//! two doors call.

pub mod schema_file;

use pulse_check::records::NodeRecords;
use pulse_check::CheckOptions;
use pulse_ir::Pipeline;
use pulse_syntax::ast::{Document, NodeDecl};
use pulse_syntax::codes::E0109;
use pulse_syntax::{Diagnostic, FileId, SourceMap, Span};
use std::path::Path;

/// The two forms of a pipeline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Form {
    Pulse,
    Json,
}

impl Form {
    /// The front end for a file name or path: `.json` is the JSON DAG, everything else `.pulse`.
    pub fn of(name: impl AsRef<Path>) -> Form {
        match name.as_ref().extension().and_then(|ext| ext.to_str()) {
            Some("json") => Form::Json,
            _ => Form::Pulse,
        }
    }
}

/// What an analysis computes beyond the checker's diagnostics and IR.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Options {
    /// The record type at every node's input and output (`Analysis::records`), even when the
    /// checker reported errors; hover and completion need them, the CLI does not.
    pub node_records: bool,
}

/// One file, analysed.
pub struct Analysis {
    pub sources: SourceMap,
    /// The analysed file; a referenced JSON Schema file, when read, is another file of `sources`.
    pub file: FileId,
    pub form: Form,
    pub document: Option<Document>,
    /// The IR, only when no error was reported.
    pub pipeline: Option<Pipeline>,
    pub diagnostics: Vec<Diagnostic>,
    /// Record types per node of `document`, with `Options::node_records`.
    pub records: Option<NodeRecords>,
    /// The JSON Schema file named by `schema "path"`, as written, and its id when it was read.
    pub schema_file: Option<(String, Option<FileId>)>,
    /// The options this analysis was made with, which `with_text` keeps.
    pub options: Options,
}

impl Analysis {
    pub fn text(&self) -> &str {
        &self.sources.get(self.file).text
    }

    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }

    pub fn node_index(&self, id: &str) -> Option<usize> {
        self.document.as_ref()?.nodes.iter().position(|node| node.id.node == id)
    }

    pub fn node(&self, idx: usize) -> Option<&NodeDecl> {
        self.document.as_ref()?.nodes.get(idx)
    }

    /// The span of a node's id in the source, for diagnostics raised after the IR.
    pub fn node_span(&self, id: &str) -> Option<Span> {
        let document = self.document.as_ref()?;
        document.nodes.iter().find(|node| node.id.node == id).map(|node| node.id.span)
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
        analyze(&self.sources.get(self.file).name, text, &read_schema, self.options)
    }
}

/// Parses `text` as the form of `name` and checks it; `read_schema` loads the JSON Schema file
/// the document names (a path relative to the pipeline file, as written).
pub fn analyze(
    name: &str,
    text: String,
    read_schema: &dyn Fn(&str) -> std::io::Result<String>,
    options: Options,
) -> Analysis {
    let mut sources = SourceMap::new();
    let form = Form::of(name);
    let file = sources.add(name, text);
    let source_text = sources.get(file).text.clone();
    let (document, mut diagnostics) = match form {
        Form::Json => pulse_syntax::json::parse_json_document(file, &source_text),
        Form::Pulse => pulse_syntax::pulse::parse_pulse_document(file, &source_text),
    };
    // Structural problems the JSON front end found (bad edges, ids, node keys) leave a usable
    // document, so the checker still runs and reports everything else. A `.pulse` document holds
    // the items that parsed (the others are `Document::unparsed`), so the checker runs on it
    // whatever the syntax errors; a JSON document read past a syntax error is a guess, so syntax
    // errors there stop the check (records are still computed for the editor).
    let syntax_failed = form == Form::Json
        && diagnostics.iter().any(|diagnostic| {
            diagnostic.is_error() && (diagnostic.code.as_str().starts_with("E00") || diagnostic.code == E0109)
        });
    let run_check = !syntax_failed;
    let mut pipeline = None;
    let mut records = None;
    let mut schema_file = None;
    let Some(doc) = document.as_ref().filter(|_| run_check || options.node_records) else {
        return Analysis { sources, file, form, document, pipeline, diagnostics, records, schema_file, options };
    };
    let mut schema_id = None;
    let mut external_schema_unreadable = false;
    if let Some((path, span)) = pulse_check::schema_reference(doc) {
        match read_schema(&path) {
            Ok(schema_text) => schema_id = Some(sources.add(path.clone(), schema_text)),
            Err(error) => {
                if run_check {
                    diagnostics.push(schema_file::unread_schema_diagnostic(&path, &error, span));
                }
                external_schema_unreadable = true;
            }
        }
        schema_file = Some((path, schema_id));
    }
    let schema_text = schema_id.map(|id| sources.get(id).text.clone());
    let check_options =
        CheckOptions { external_schema: schema_id.zip(schema_text.as_deref()), external_schema_unreadable };
    if options.node_records {
        records = Some(pulse_check::records::node_records(doc, check_options));
    }
    if run_check {
        let (checked, check_diagnostics) = pulse_check::check(doc, check_options);
        for diagnostic in check_diagnostics {
            // Both the front end and the checker validate ids; report each problem once.
            let repeated = diagnostics.iter().any(|seen| {
                seen.code == diagnostic.code
                    && (seen.primary_span() == diagnostic.primary_span() || seen.message == diagnostic.message)
            });
            if !repeated {
                diagnostics.push(diagnostic);
            }
        }
        if let Some((id, text)) = schema_id.zip(schema_text.as_deref()) {
            schema_file::confine_schema_diagnostics(&mut diagnostics, id, text);
        }
        pipeline = checked.filter(|_| !diagnostics.iter().any(Diagnostic::is_error));
    }
    Analysis { sources, file, form, document, pipeline, diagnostics, records, schema_file, options }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_schema(_: &str) -> std::io::Result<String> {
        Err(std::io::Error::new(std::io::ErrorKind::NotFound, "no file"))
    }

    const WITH_SCHEMA: &str = r#"{"name": "p", "schema": "events.schema.json", "nodes": [{"id": "s", "type": "file-source", "config": {"path": "x"}}, {"id": "o", "type": "stdout-sink"}], "edges": ["s -> o"]}"#;

    #[test]
    fn the_form_follows_the_extension() {
        assert_eq!(Form::of("dir/p.json"), Form::Json);
        assert_eq!(Form::of(Path::new("p.pulse")), Form::Pulse);
        assert_eq!(Form::of("p"), Form::Pulse);
        assert_eq!(Form::of("p.json.pulse"), Form::Pulse);
    }

    #[test]
    fn reports_checker_errors_and_records_only_when_asked() {
        let text = "pipeline p\nevent { userId: string }\nsrc: file-source(\"x\")\nsrc -> f: filter(usr_id != null) -> out: stdout-sink\n";
        for node_records in [false, true] {
            let analysis = analyze("p.pulse", text.to_string(), &no_schema, Options { node_records });
            assert!(analysis.diagnostics.iter().any(|diagnostic| diagnostic.code.as_str() == "E0205"));
            assert!(analysis.pipeline.is_none());
            assert_eq!(analysis.records.is_some(), node_records);
        }
    }

    #[test]
    fn reads_the_schema_file_as_the_document_names_it() {
        let schema = r#"{"type": "object", "properties": {"userId": {"type": "string"}}, "required": ["userId"]}"#;
        let read = |path: &str| {
            assert_eq!(path, "events.schema.json");
            Ok(schema.to_string())
        };
        let analysis = analyze("p.json", WITH_SCHEMA.to_string(), &read, Options::default());
        assert!(!analysis.has_errors(), "{:?}", analysis.diagnostics);
        assert!(analysis.pipeline.is_some());
        assert!(matches!(analysis.schema_file, Some((_, Some(_)))));
        // Another text of the same file keeps the schema file without reading it again.
        let again = analysis.with_text(WITH_SCHEMA.replace("\"path\": \"x\"", "\"path\": \"y\""));
        assert!(!again.has_errors(), "{:?}", again.diagnostics);
        assert_eq!(again.sources.get(again.schema_file.and_then(|(_, id)| id).expect("read")).text, schema);
    }

    #[test]
    fn a_json_syntax_error_stops_the_check_and_does_not_report_the_schema_file() {
        let broken = WITH_SCHEMA.replace("\"s -> o\"]", "\"s -> o\"");
        let read_count = std::cell::Cell::new(0);
        let read = |_: &str| {
            read_count.set(read_count.get() + 1);
            no_schema("")
        };
        let analysis = analyze("p.json", broken.clone(), &read, Options::default());
        assert!(analysis.diagnostics.iter().all(|diagnostic| diagnostic.code.as_str().starts_with("E00")));
        assert!(analysis.pipeline.is_none());
        assert_eq!(read_count.get(), 0, "nothing needs the schema file");
        // The editor still gets record types, which need the schema file.
        let analysis = analyze("p.json", broken, &read, Options { node_records: true });
        assert!(analysis.diagnostics.iter().all(|diagnostic| diagnostic.code.as_str().starts_with("E00")));
        assert!(analysis.records.is_some());
        assert_eq!(read_count.get(), 1);
    }
}
