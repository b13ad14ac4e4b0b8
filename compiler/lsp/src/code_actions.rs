//! Quick fixes: the edit a diagnostic's help names (`Diagnostic::suggestion`: "did you mean
//! `userId`?", "write `90m`"), offered where the diagnostic is; and the edits of the flow that
//! `flow_fixes` derives where the help is no single replacement.

use crate::analysis::Analysis;
use crate::{flow_fixes, locate};
use pulse_syntax::Span;
use std::ops::Range;

/// One quick fix: replace `span` (in the analysed file) with `replacement`.
#[derive(Clone, Debug, PartialEq)]
pub struct QuickFix {
    pub title: String,
    pub span: Span,
    pub replacement: String,
    /// The index in `Analysis::diagnostics` of the diagnostic it fixes.
    pub diagnostic: usize,
}

/// The quick fixes of the diagnostics whose primary span or edit touches the byte range `range`.
pub fn quick_fixes(analysis: &Analysis, range: Range<usize>) -> Vec<QuickFix> {
    let text = analysis.text();
    let mut fixes = Vec::new();
    for (idx, diagnostic) in analysis.diagnostics.iter().enumerate() {
        let touches = |span: Span| {
            span.file == analysis.file && span.range().start <= range.end && range.start <= span.range().end
        };
        let Some(suggestion) = &diagnostic.suggestion else {
            if let Some(fix) = flow_fixes::flow_fix(analysis, idx, diagnostic) {
                if touches(fix.span) || diagnostic.primary_span().is_some_and(touches) {
                    fixes.push(fix);
                }
            }
            continue;
        };
        if suggestion.span.file != analysis.file || text.get(suggestion.span.range()).is_none() {
            continue;
        }
        if !touches(suggestion.span) && !diagnostic.primary_span().is_some_and(touches) {
            continue;
        }
        // A JSON string keeps its quotes: the replacement is for its content.
        let quoted = suggestion.replacement.starts_with('"');
        let span = match locate::raw_content(text, suggestion.span) {
            Some((start, inner)) if !quoted => Span::new(suggestion.span.file, start, start + inner.len()),
            _ => suggestion.span,
        };
        let old = &text[span.range()];
        if old == suggestion.replacement {
            continue;
        }
        let title = if suggestion.replacement.is_empty() {
            format!("Remove `{old}`")
        } else {
            format!("Replace `{old}` with `{}`", suggestion.replacement)
        };
        fixes.push(QuickFix { title, span, replacement: suggestion.replacement.clone(), diagnostic: idx });
    }
    fixes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::analyze;

    fn fixes(name: &str, text: &str, at: &str) -> Vec<(String, String)> {
        let analysis = analyze(name, text.to_string(), &|_| Err(std::io::ErrorKind::NotFound.into()));
        let offset = text.find(at).expect("the needle is in the text");
        quick_fixes(&analysis, offset..offset)
            .into_iter()
            .map(|fix| (text[fix.span.range()].to_string(), fix.replacement))
            .collect()
    }

    #[test]
    fn json_strings_keep_their_quotes() {
        let text = r#"{"name": "p", "schema": {"fields": {"userId": "string"}}, "nodes": [{"id": "s", "type": "file-source", "config": {"path": "x"}}, {"id": "f", "type": "filter", "config": {"where": {"field": "usr_id", "equals": "a"}}}, {"id": "o", "type": "stdout-sink"}], "edges": ["s -> f", "f -> o"]}"#;
        assert_eq!(fixes("p.json", text, "usr_id"), [("usr_id".to_string(), "userId".to_string())]);
        let text = text.replace("stdout-sink", "stdout-sinc");
        assert_eq!(fixes("p.json", &text, "stdout-sinc"), [("stdout-sinc".to_string(), "stdout-sink".to_string())]);
    }

    #[test]
    fn unnamed_ports_get_named() {
        let base = "pipeline p\nevent { userId: string, event_name: string }\nsrc: file-source(\"in\")\n";
        let text = format!("{base}bought: has-done-event(event_name == \"buy\") by userId\nsrc -> bought\nbought.yes -> out: stdout-sink\n");
        assert_eq!(fixes("p.pulse", &text, "bought\nbought"), [("bought".to_string(), "bought.flow".to_string())]);
        let split = "split: splitter { route high: userId == \"a\" }\n";
        let text = format!("{base}{split}src -> split\nsplit -> out: stdout-sink\n");
        assert_eq!(fixes("p.pulse", &text, "split -> out"), [("split".to_string(), "split.high".to_string())]);
        // `src -> split.high -> out` would be ambiguous: in the middle of a chain the port is not
        // written in place, the chain is split after the node (`flow_fixes`).
        let text = format!("{base}{split}src -> split -> out: stdout-sink\n");
        assert_eq!(fixes("p.pulse", &text, "split -> out"), [(String::new(), "\nsplit.high".to_string())]);
    }

    #[test]
    fn only_diagnostics_at_the_range() {
        let text = "pipeline p\nevent { userId: string }\nsrc: file-source(\"in\")\nsrc -> f: filter(usr_id != null) -> d: delay(1h30m) -> out: stdout-sink\n";
        assert_eq!(fixes("p.pulse", text, "usr_id"), [("usr_id".to_string(), "userId".to_string())]);
        assert_eq!(fixes("p.pulse", text, "1h30m"), [("1h30m".to_string(), "90m".to_string())]);
        assert_eq!(fixes("p.pulse", text, "pipeline"), []);
    }
}
