//! Loading a pipeline: read the file (and a referenced JSON Schema file), pick the front end by
//! extension, check, and collect every diagnostic. The only place the compiler reads sources.

use pulse_ir::Pipeline;
use pulse_syntax::ast::Document;
use pulse_syntax::codes::E0902;
use pulse_syntax::{Diagnostic, FileId, SourceMap, Span};
use std::path::{Path, PathBuf};

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
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }
}

/// Parses `text` as the form of `name` and checks it; `read_schema` loads a referenced file.
pub fn load_text(
    name: &str,
    text: String,
    read_schema: &dyn Fn(&str) -> std::io::Result<String>,
) -> Loaded {
    let mut sources = SourceMap::new();
    let form = Form::of(Path::new(name));
    let file = sources.add(name, text);
    let source_text = sources.get(file).text.clone();
    let (document, mut diagnostics) = match form {
        Form::Json => pulse_syntax::json::parse_json_document(file, &source_text),
        Form::Pulse => pulse_syntax::pulse::parse_pulse_document(file, &source_text),
    };
    let syntax_failed = diagnostics.iter().any(Diagnostic::is_error);
    let mut pipeline = None;
    if let (Some(doc), false) = (&document, syntax_failed) {
        let mut schema_file = None;
        if let Some((path, span)) = pulse_check::schema_reference(doc) {
            match read_schema(&path) {
                Ok(schema_text) => schema_file = Some(sources.add(path, schema_text)),
                Err(error) => diagnostics.push(cannot_read(&path, &error, Some(span))),
            }
        }
        let schema_text = schema_file.map(|id| sources.get(id).text.clone());
        let options = pulse_check::CheckOptions {
            external_schema: schema_file.zip(schema_text.as_deref()),
        };
        let (checked, check_diagnostics) = pulse_check::check(doc, options);
        diagnostics.extend(check_diagnostics);
        pipeline = checked;
    }
    Loaded { sources, file, form, document, pipeline, diagnostics }
}

pub fn load_file(path: &Path) -> Result<Loaded, Diagnostic> {
    let text = std::fs::read_to_string(path).map_err(|error| cannot_read(&path.display().to_string(), &error, None))?;
    let base: PathBuf = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let read_schema = move |relative: &str| std::fs::read_to_string(base.join(relative));
    Ok(load_text(&path.display().to_string(), text, &read_schema))
}

fn cannot_read(path: &str, error: &std::io::Error, span: Option<Span>) -> Diagnostic {
    let diagnostic = Diagnostic::new(E0902, format!("cannot read `{path}`: {error}"));
    match span {
        Some(span) => diagnostic.primary(span, "referenced here"),
        None => diagnostic,
    }
}
