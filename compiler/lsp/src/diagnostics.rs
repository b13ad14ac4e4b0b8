//! Compiler diagnostics as LSP diagnostics: UTF-16 ranges, the code with a link to its page
//! (`docs/errors/CODE.md` of the workspace, when it has one: never a link that leads nowhere),
//! secondary labels as related information, notes and help in the message, and the
//! `pulsec explain` command in `data` (the CLI prints it as a hint; the editor links the page).

use crate::analysis::Analysis;
use crate::flow_fixes;
use crate::line_index::LineIndex;
use lsp_types::{
    CodeDescription, DiagnosticRelatedInformation, DiagnosticSeverity, Location, NumberOrString, Range, Url,
};
use pulse_syntax::{Diagnostic, Severity, Span};
use std::path::Path;

/// Where the pages of the diagnostic codes are, relative to the repository root; `pulsec explain
/// CODE` prints the same page.
pub const ERRORS_DIR: &str = "docs/errors";

/// The `file:` URI of the page of `code` in `errors_dir`, when the page exists.
pub fn code_page(errors_dir: Option<&Path>, code: &str) -> Option<Url> {
    let page = errors_dir?.join(format!("{code}.md"));
    page.is_file().then(|| Url::from_file_path(&page).ok()).flatten()
}

/// Converts every diagnostic of `analysis` for the document at `uri`. `uri_of` gives the URI and
/// line index of another file of the analysis (the JSON Schema file), when it has one;
/// `errors_dir` is the directory of the code pages, when the server has found one.
pub fn to_lsp(
    analysis: &Analysis,
    uri: &Url,
    index: &LineIndex,
    uri_of: &dyn Fn(Span) -> Option<(Url, Range)>,
    errors_dir: Option<&Path>,
) -> Vec<lsp_types::Diagnostic> {
    let schema_span = analysis.document.as_ref().and_then(|doc| doc.setting("schema")).map(|value| value.span);
    analysis
        .diagnostics
        .iter()
        .map(|diagnostic| {
            let mut converted = convert(analysis, diagnostic, uri, index, schema_span, uri_of);
            converted.code_description =
                code_page(errors_dir, diagnostic.code.as_str()).map(|href| CodeDescription { href });
            converted
        })
        .collect()
}

fn convert(
    analysis: &Analysis,
    diagnostic: &Diagnostic,
    uri: &Url,
    index: &LineIndex,
    schema_span: Option<Span>,
    uri_of: &dyn Fn(Span) -> Option<(Url, Range)>,
) -> lsp_types::Diagnostic {
    let code = diagnostic.code.as_str().to_string();
    let primary = diagnostic.primary_span();
    let mut message = diagnostic.message.clone();
    let mut related = Vec::new();
    // A problem in the JSON Schema file is shown on the `schema` reference, and linked to the file.
    let range = match primary {
        Some(span) if span.file == analysis.file => index.range(span.range()),
        Some(span) => {
            let file_name = &analysis.sources.get(span.file).name;
            message = format!("in `{file_name}`: {message}");
            if let Some((location_uri, range)) = uri_of(span) {
                related.push(DiagnosticRelatedInformation {
                    location: Location { uri: location_uri, range },
                    message: primary_label(diagnostic).unwrap_or("here").to_string(),
                });
            }
            schema_span.map(|span| index.range(span.range())).unwrap_or_default()
        }
        None => Range::default(),
    };
    for label in diagnostic.labels.iter().filter(|label| !label.primary) {
        let location = if label.span.file == analysis.file {
            Some((uri.clone(), index.range(label.span.range())))
        } else {
            uri_of(label.span)
        };
        if let Some((uri, range)) = location {
            related.push(DiagnosticRelatedInformation {
                location: Location { uri, range },
                message: label.message.clone(),
            });
        }
    }
    if let Some(label) = primary_label(diagnostic).filter(|label| !label.is_empty()) {
        message.push_str(&format!("\n{label}"));
    }
    for note in &diagnostic.notes {
        message.push_str(&format!("\nnote: {note}"));
    }
    if let Some(help) = &diagnostic.help {
        message.push_str(&format!("\nhelp: {help}"));
    }
    let explain = format!("pulsec explain {code}");
    lsp_types::Diagnostic {
        range,
        severity: Some(match diagnostic.severity {
            Severity::Error => DiagnosticSeverity::ERROR,
            Severity::Warning => DiagnosticSeverity::WARNING,
        }),
        code: Some(NumberOrString::String(code.clone())),
        code_description: None,
        source: Some("pulsec".into()),
        message,
        related_information: (!related.is_empty()).then_some(related),
        tags: None,
        data: Some(serde_json::json!({ "explain": explain })),
    }
}

/// The editor's own hints (`flow_fixes::nullable_keys`) as LSP diagnostics of severity hint,
/// with source `pulse` and no code (no compiler code, so no page), each with its fix.
pub fn hints_to_lsp(analysis: &Analysis, index: &LineIndex) -> Vec<(lsp_types::Diagnostic, Option<flow_fixes::Edit>)> {
    flow_fixes::nullable_keys(analysis)
        .into_iter()
        .map(|hint| {
            let diagnostic = lsp_types::Diagnostic {
                range: index.range(hint.span.range()),
                severity: Some(DiagnosticSeverity::HINT),
                source: Some("pulse".to_string()),
                message: hint.message,
                ..lsp_types::Diagnostic::default()
            };
            (diagnostic, hint.fix)
        })
        .collect()
}

/// The Markdown form of a converted message, for clients that render it (LSP 3.18
/// `markupMessageSupport`): one paragraph per line, `note:` and `help:` set off, and the
/// characters Markdown would read outside the message's `code` spans escaped.
pub fn markdown_message(plain: &str) -> String {
    plain
        .lines()
        .map(|line| {
            if let Some(note) = line.strip_prefix("note: ") {
                format!("*note:* {}", escape_markdown(note))
            } else if let Some(help) = line.strip_prefix("help: ") {
                format!("**help:** {}", escape_markdown(help))
            } else {
                escape_markdown(line)
            }
        })
        .collect::<Vec<_>>()
        .join("\n\n")
}

fn escape_markdown(line: &str) -> String {
    let mut escaped = String::with_capacity(line.len());
    let mut in_code = false;
    for ch in line.chars() {
        if ch == '`' {
            in_code = !in_code;
        } else if !in_code && matches!(ch, '\\' | '*' | '_' | '[' | ']' | '<' | '>' | '#') {
            escaped.push('\\');
        }
        escaped.push(ch);
    }
    escaped
}

fn primary_label(diagnostic: &Diagnostic) -> Option<&str> {
    diagnostic.labels.iter().find(|label| label.primary).map(|label| label.message.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::analyze;

    #[test]
    fn converts_codes_ranges_and_related_spans() {
        // `é` is two bytes but one UTF-16 unit: the column must count units.
        let text = "pipeline p\nevent { userId: string }\nsrc: file-source(\"in\")\nsrc -> f: filter(\"é\" != \"\" && usr_id != null) -> out: stdout-sink\n";
        let analysis = analyze("p.pulse", text.to_string(), &|_| Err(std::io::ErrorKind::NotFound.into()));
        let uri = Url::parse("file:///tmp/p.pulse").expect("url");
        let errors_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").join(ERRORS_DIR);
        let diagnostics = to_lsp(&analysis, &uri, &LineIndex::new(text), &|_| None, Some(&errors_dir));
        let unknown =
            diagnostics.iter().find(|d| d.code == Some(NumberOrString::String("E0205".into()))).expect("E0205");
        assert_eq!(unknown.range.start, lsp_types::Position { line: 3, character: 30 });
        assert!(unknown.message.contains("did you mean `userId`?"), "{}", unknown.message);
        assert!(!unknown.message.contains("pulsec explain"), "the page is linked, not named: {}", unknown.message);
        assert_eq!(unknown.data, Some(serde_json::json!({ "explain": "pulsec explain E0205" })));
        let page = unknown.code_description.as_ref().expect("a link to the code's page").href.to_file_path();
        assert!(page.expect("a file").ends_with("docs/errors/E0205.md"));
        let elsewhere = to_lsp(&analysis, &uri, &LineIndex::new(text), &|_| None, Some(Path::new("/nonexistent")));
        assert!(elsewhere.iter().all(|d| d.code_description.is_none()), "no link to a page that does not exist");
        let text = "pipeline p\nsrc: file-source(\"in\")\nsrc: stdout-sink\n";
        let analysis = analyze("p.pulse", text.to_string(), &|_| Err(std::io::ErrorKind::NotFound.into()));
        let diagnostics = to_lsp(&analysis, &uri, &LineIndex::new(text), &|_| None, None);
        let duplicate =
            diagnostics.iter().find(|d| d.code == Some(NumberOrString::String("E0201".into()))).expect("E0201");
        assert_eq!(duplicate.related_information.as_ref().map(Vec::len), Some(1));
    }

    #[test]
    fn markdown_messages_set_off_notes_and_help() {
        let plain = "`{{ user_id }}` may be null here\na record where this is null becomes a dead letter\nnote: the field is nullable\nhelp: e.g. `-> filter(user_id != null)` or a [[name]]";
        assert_eq!(
            markdown_message(plain),
            "`{{ user_id }}` may be null here\n\na record where this is null becomes a dead letter\n\n\
             *note:* the field is nullable\n\n**help:** e.g. `-> filter(user_id != null)` or a \\[\\[name\\]\\]"
        );
    }
}
