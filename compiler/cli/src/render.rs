//! Rendering diagnostics at the edge: terminal text via codespan-reporting, or JSON lines for
//! tools (`--message-format json`).

use codespan_reporting::diagnostic::{Diagnostic as CsDiagnostic, Label as CsLabel, Severity as CsSeverity};
use codespan_reporting::files::SimpleFiles;
use codespan_reporting::term::{self, termcolor};
use pulse_syntax::{Diagnostic, Severity, SourceMap};

/// At most this many diagnostics of one file are drawn; the rest are counted (as rustc stops
/// after a flood), so a hostile or garbled file cannot print megabytes.
pub const MAX_SHOWN_PER_FILE: usize = 50;

/// Source lines longer than this are not drawn under a diagnostic: its location is named instead.
const MAX_DRAWN_LINE: usize = 300;

/// Renders diagnostics as terminal text, with colour when `color` is set.
pub fn human(sources: &SourceMap, diagnostics: &[Diagnostic], color: bool) -> String {
    let mut files = SimpleFiles::new();
    for (_, file) in sources.files() {
        files.add(file.name.clone(), file.text.clone());
    }
    let config = term::Config::default();
    let mut buffer = if color { termcolor::Buffer::ansi() } else { termcolor::Buffer::no_color() };
    let mut shown: std::collections::BTreeMap<Option<usize>, usize> = std::collections::BTreeMap::new();
    let mut hidden: std::collections::BTreeMap<Option<usize>, usize> = std::collections::BTreeMap::new();
    for diagnostic in diagnostics {
        let file = diagnostic.primary_span().map(|span| span.file.0 as usize);
        let count = shown.entry(file).or_insert(0);
        if *count >= MAX_SHOWN_PER_FILE {
            *hidden.entry(file).or_insert(0) += 1;
            continue;
        }
        *count += 1;
        let rendered = match long_line(sources, diagnostic) {
            Some(location) => to_codespan(&Diagnostic {
                labels: Vec::new(),
                notes: [format!("at {location} (the line is too long to show)")]
                    .into_iter()
                    .chain(diagnostic.notes.iter().cloned())
                    .collect(),
                ..diagnostic.clone()
            }),
            None => to_codespan(diagnostic),
        };
        if term::emit(&mut buffer, &config, &files, &rendered).is_err() {
            buffer = termcolor::Buffer::no_color();
        }
    }
    let mut text = String::from_utf8_lossy(buffer.as_slice()).into_owned();
    for (file, count) in hidden {
        let name = file.map_or("the input".to_string(), |file| {
            format!("`{}`", sources.get(pulse_syntax::span::FileId(file as u32)).name)
        });
        text.push_str(&format!(
            "note: {count} more diagnostic(s) in {name} not shown; fix the first ones, or list all with `--message-format json`\n"
        ));
    }
    text
}

/// `file:line:column` of a diagnostic whose labels sit on a line too long to draw.
fn long_line(sources: &SourceMap, diagnostic: &Diagnostic) -> Option<String> {
    let too_long = diagnostic.labels.iter().any(|label| {
        let text = &sources.get(label.span.file).text;
        let at = (label.span.start as usize).min(text.len());
        let start = text[..at].rfind('\n').map_or(0, |index| index + 1);
        let end = text[at..].find('\n').map_or(text.len(), |index| at + index);
        end - start > MAX_DRAWN_LINE
    });
    if !too_long {
        return None;
    }
    let span = diagnostic.primary_span().or_else(|| diagnostic.labels.first().map(|label| label.span))?;
    let file = sources.get(span.file);
    let (line, column) = file.line_col(span.start as usize);
    Some(format!("{}:{line}:{column}", file.name))
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
