//! Diagnostics as plain data. Stages build them; only the CLI and the LSP render them.

use crate::codes::Code;
use crate::span::Span;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Error,
    Warning,
}

/// One labelled span. The primary label says what is wrong there; secondary labels point at causes.
#[derive(Clone, Debug, PartialEq)]
pub struct Label {
    pub span: Span,
    pub message: String,
    pub primary: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Diagnostic {
    pub code: Code,
    pub severity: Severity,
    pub message: String,
    pub labels: Vec<Label>,
    /// Expected/found and other facts, one per line.
    pub notes: Vec<String>,
    /// A concrete edit that fixes the problem, where one is known.
    pub help: Option<String>,
    /// The edit `help` describes, when it is one replacement the editor can apply as is (a
    /// quick fix). The CLI shows only `help`. Boxed: most diagnostics have none.
    pub suggestion: Option<Box<Suggestion>>,
}

/// A machine-applicable edit: replace the text at `span` with `replacement`. When `span` is a
/// JSON string and `replacement` is not quoted, the replacement is for the string's content.
#[derive(Clone, Debug, PartialEq)]
pub struct Suggestion {
    pub span: Span,
    pub replacement: String,
}

impl Diagnostic {
    /// A diagnostic whose severity follows from its code (`E...` errors, `W...` warnings).
    pub fn new(code: Code, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            code,
            severity: code.severity(),
            message: message.into(),
            labels: Vec::new(),
            notes: Vec::new(),
            help: None,
            suggestion: None,
        }
    }

    pub fn primary(mut self, span: Span, message: impl Into<String>) -> Diagnostic {
        self.labels.push(Label { span, message: message.into(), primary: true });
        self
    }

    pub fn secondary(mut self, span: Span, message: impl Into<String>) -> Diagnostic {
        self.labels.push(Label { span, message: message.into(), primary: false });
        self
    }

    pub fn note(mut self, note: impl Into<String>) -> Diagnostic {
        self.notes.push(note.into());
        self
    }

    pub fn help(mut self, help: impl Into<String>) -> Diagnostic {
        self.help = Some(help.into());
        self
    }

    /// The edit that `help` describes: replace `span` with `replacement`.
    pub fn suggest(mut self, span: Span, replacement: impl Into<String>) -> Diagnostic {
        self.suggestion = Some(Box::new(Suggestion { span, replacement: replacement.into() }));
        self
    }

    /// `help: did you mean `SUGGESTION`?`, with the edit replacing `span` by the suggestion.
    pub fn did_you_mean(self, span: Span, suggestion: &str) -> Diagnostic {
        self.help(format!("did you mean `{suggestion}`?")).suggest(span, suggestion)
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// The span of the primary label, if any.
    pub fn primary_span(&self) -> Option<Span> {
        self.labels.iter().find(|label| label.primary).map(|label| label.span)
    }
}

/// Diagnostics collected by a stage. Stages never stop at the first error.
#[derive(Clone, Debug, Default)]
pub struct Diagnostics {
    pub items: Vec<Diagnostic>,
}

impl Diagnostics {
    pub fn new() -> Diagnostics {
        Diagnostics::default()
    }

    pub fn push(&mut self, diagnostic: Diagnostic) {
        self.items.push(diagnostic);
    }

    pub fn extend(&mut self, diagnostics: impl IntoIterator<Item = Diagnostic>) {
        self.items.extend(diagnostics);
    }

    pub fn has_errors(&self) -> bool {
        self.items.iter().any(Diagnostic::is_error)
    }

    pub fn into_vec(self) -> Vec<Diagnostic> {
        self.items
    }
}

/// Edit distance for "did you mean" suggestions, which are only offered for close matches.
pub fn did_you_mean<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let max_distance = (name.chars().count() / 3).clamp(1, 3);
    candidates
        .into_iter()
        .map(|candidate| {
            // Case and separators are the commonest slips (`usr_id` for `userId`), so distance
            // is also measured with them folded away.
            let folded = levenshtein(&fold(name), &fold(candidate));
            let raw = if candidate.eq_ignore_ascii_case(name) { 0 } else { levenshtein(name, candidate) };
            (raw.min(folded), raw, candidate)
        })
        .filter(|(distance, _, _)| *distance <= max_distance)
        .min_by_key(|(distance, raw, _)| (*distance, *raw))
        .map(|(_, _, candidate)| candidate)
}

fn fold(text: &str) -> String {
    text.chars().filter(|ch| *ch != '_' && *ch != '-').map(|ch| ch.to_ascii_lowercase()).collect()
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b_chars: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b_chars.len()).collect();
    for (a_idx, a_char) in a.chars().enumerate() {
        let mut current = vec![a_idx + 1];
        for (b_idx, b_char) in b_chars.iter().enumerate() {
            let substitution = previous[b_idx] + usize::from(a_char != *b_char);
            current.push(substitution.min(previous[b_idx + 1] + 1).min(current[b_idx] + 1));
        }
        previous = current;
    }
    previous[b_chars.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_only_close_matches() {
        assert_eq!(did_you_mean("usr_id", ["userId", "user_id", "ts"]), Some("user_id"));
        assert_eq!(did_you_mean("usr_id", ["userId", "ts"]), Some("userId"));
        assert_eq!(did_you_mean("event-name", ["event_name", "ts"]), Some("event_name"));
        assert_eq!(did_you_mean("amount", ["userId", "ts"]), None);
        assert_eq!(did_you_mean("USERID", ["userId"]), Some("userId"));
    }
}
