//! Loading a pipeline: read the file (and a referenced JSON Schema file), pick the front end by
//! extension, check, and collect every diagnostic. The only place the compiler reads sources.

use pulse_ir::Pipeline;
use pulse_syntax::ast::Document;
use pulse_syntax::codes::{E0109, E0902};
use pulse_syntax::{Diagnostic, FileId, SourceMap, Span};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Form {
    Pulse,
    Json,
}

impl Form {
    pub fn of(path: &Path) -> Form {
        match path.extension().and_then(|ext| ext.to_str()) {
            Some("json") => Form::Json,
            _ => Form::Pulse,
        }
    }
}

pub struct Loaded {
    pub sources: SourceMap,
    pub file: FileId,
    pub form: Form,
    pub document: Option<Document>,
    pub pipeline: Option<Pipeline>,
    pub diagnostics: Vec<Diagnostic>,
}

impl Loaded {
    /// The span of a node's id in the source, for diagnostics raised after the IR.
    pub fn node_span(&self, id: &str) -> Option<Span> {
        let document = self.document.as_ref()?;
        document.nodes.iter().find(|node| node.id.node == id).map(|node| node.id.span)
    }

    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }
}

/// Parses `text` as the form of `name` and checks it; `read_schema` loads a referenced file.
pub fn load_text(name: &str, text: String, read_schema: &dyn Fn(&str) -> std::io::Result<String>) -> Loaded {
    let mut sources = SourceMap::new();
    let form = Form::of(Path::new(name));
    let file = sources.add(name, text);
    let source_text = sources.get(file).text.clone();
    let (document, mut diagnostics) = match form {
        Form::Json => pulse_syntax::json::parse_json_document(file, &source_text),
        Form::Pulse => pulse_syntax::pulse::parse_pulse_document(file, &source_text),
    };
    // Structural problems the JSON front end found (bad edges, ids, node keys) leave a usable
    // document, so the checker still runs and reports everything else; only syntax errors stop it.
    // A `.pulse` document holds the items that parsed (the others are `Document::unparsed`), so
    // the checker runs on it whatever the syntax errors; a JSON document read past a syntax
    // error is a guess, so syntax errors there stop the check.
    let syntax_failed = form == Form::Json
        && diagnostics.iter().any(|diagnostic| {
            diagnostic.is_error() && (diagnostic.code.as_str().starts_with("E00") || diagnostic.code == E0109)
        });
    let mut pipeline = None;
    if let (Some(doc), false) = (&document, syntax_failed) {
        let mut schema_file = None;
        let mut external_schema_unreadable = false;
        if let Some((path, span)) = pulse_check::schema_reference(doc) {
            match read_schema(&path) {
                Ok(schema_text) => schema_file = Some(sources.add(path, schema_text)),
                Err(error) => {
                    diagnostics.push(pulse_lsp::schema_file::unread_schema_diagnostic(&path, &error, span));
                    external_schema_unreadable = true;
                }
            }
        }
        let schema_text = schema_file.map(|id| sources.get(id).text.clone());
        let options = pulse_check::CheckOptions {
            external_schema: schema_file.zip(schema_text.as_deref()),
            external_schema_unreadable,
        };
        let (checked, check_diagnostics) = pulse_check::check(doc, options);
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
        if let Some((id, text)) = schema_file.zip(schema_text.as_deref()) {
            pulse_lsp::schema_file::confine_schema_diagnostics(&mut diagnostics, id, text);
        }
        pipeline = checked.filter(|_| !diagnostics.iter().any(Diagnostic::is_error));
    }
    Loaded { sources, file, form, document, pipeline, diagnostics }
}

/// Whether `schema "PATH"` may name a file outside the pipeline's directory tree
/// (`pulsec --allow-schema-outside`); set once from the command line.
static ALLOW_SCHEMA_OUTSIDE: AtomicBool = AtomicBool::new(false);

pub fn allow_schema_outside(allow: bool) {
    ALLOW_SCHEMA_OUTSIDE.store(allow, Ordering::Relaxed);
}

pub fn load_file(path: &Path) -> Result<Loaded, Box<Diagnostic>> {
    let text = std::fs::read_to_string(path)
        .map_err(|error| Box::new(cannot_read(&path.display().to_string(), &error, None)))?;
    let base: PathBuf = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let read_schema = move |relative: &str| read_schema_file(&base, relative);
    Ok(load_text(&path.display().to_string(), text, &read_schema))
}

/// Reads the schema file `relative` named by a pipeline in `pipeline_dir`, with the checks of
/// `pulse_lsp::schema_file` (inside the directory unless allowed, regular, at most 1 MiB).
pub fn read_schema_file(pipeline_dir: &Path, relative: &str) -> std::io::Result<String> {
    let allow_outside = ALLOW_SCHEMA_OUTSIDE.load(Ordering::Relaxed);
    pulse_lsp::schema_file::read_schema_file(pipeline_dir, relative, allow_outside)
}

fn cannot_read(path: &str, error: &std::io::Error, span: Option<Span>) -> Diagnostic {
    match span {
        Some(span) => pulse_lsp::schema_file::unread_schema_diagnostic(path, error, span),
        None => Diagnostic::new(E0902, format!("cannot read `{path}`: {error}")),
    }
}
