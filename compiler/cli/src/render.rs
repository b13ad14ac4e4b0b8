//! Rendering diagnostics at the edge: terminal text via codespan-reporting, or JSON lines for
//! tools (`--message-format json`).

use codespan_reporting::diagnostic::{Diagnostic as CsDiagnostic, Label as CsLabel, Severity as CsSeverity};
use codespan_reporting::files::SimpleFiles;
use codespan_reporting::term::{self, termcolor};
use pulse_syntax::{Diagnostic, Severity, SourceMap};

/// Renders diagnostics as terminal text, with colour when `color` is set.
pub fn human(sources: &SourceMap, diagnostics: &[Diagnostic], color: bool) -> String {
    let mut files = SimpleFiles::new();
    for (_, file) in sources.files() {
        files.add(file.name.clone(), file.text.clone());
    }
    let config = term::Config::default();
    let mut buffer = if color { termcolor::Buffer::ansi() } else { termcolor::Buffer::no_color() };
    for diagnostic in diagnostics {
        let rendered = to_codespan(diagnostic);
        if term::emit(&mut buffer, &config, &files, &rendered).is_err() {
            buffer = termcolor::Buffer::no_color();
        }
    }
    String::from_utf8_lossy(buffer.as_slice()).into_owned()
}

fn to_codespan(diagnostic: &Diagnostic) -> CsDiagnostic<usize> {
    let severity = match diagnostic.severity {
        Severity::Error => CsSeverity::Error,
        Severity::Warning => CsSeverity::Warning,
    };
    let labels = diagnostic
        .labels
        .iter()
        .map(|label| {
            let file = label.span.file.0 as usize;
            let base = if label.primary {
                CsLabel::primary(file, label.span.range())
            } else {
                CsLabel::secondary(file, label.span.range())
            };
            base.with_message(label.message.clone())
        })
        .collect();
    let mut notes: Vec<String> = diagnostic.notes.iter().map(|note| format!("note: {note}")).collect();
    if let Some(help) = &diagnostic.help {
        notes.push(format!("help: {help}"));
    }
    CsDiagnostic::new(severity)
        .with_code(diagnostic.code.as_str())
        .with_message(diagnostic.message.clone())
        .with_labels(labels)
        .with_notes(notes)
}

/// One JSON object per diagnostic: code, severity, message, file, line, column, byte range,
/// and every label, note and help.
pub fn json(sources: &SourceMap, diagnostics: &[Diagnostic]) -> String {
    let mut out = String::new();
    for diagnostic in diagnostics {
        let position = |span: pulse_syntax::Span| {
            let file = sources.get(span.file);
            let (line, column) = file.line_col(span.start as usize);
            let (end_line, end_column) = file.line_col(span.end as usize);
            serde_json::json!({
                "file": file.name,
                "line": line,
                "column": column,
                "end_line": end_line,
                "end_column": end_column,
                "byte_start": span.start,
                "byte_end": span.end,
            })
        };
        let primary = diagnostic.primary_span().map(position);
        let labels: Vec<serde_json::Value> = diagnostic
            .labels
            .iter()
            .map(|label| {
                let mut value = position(label.span);
                value["message"] = serde_json::Value::String(label.message.clone());
                value["primary"] = serde_json::Value::Bool(label.primary);
                value
            })
            .collect();
        let mut object = serde_json::json!({
            "code": diagnostic.code.as_str(),
            "severity": match diagnostic.severity { Severity::Error => "error", Severity::Warning => "warning" },
            "message": diagnostic.message,
            "labels": labels,
            "notes": diagnostic.notes,
            "help": diagnostic.help,
        });
        if let Some(serde_json::Value::Object(primary)) = primary {
            for (key, value) in primary {
                object[key.as_str()] = value;
            }
        }
        out.push_str(&object.to_string());
        out.push('\n');
    }
    out
}
