//! What an analysis with a syntax error borrows from the last analysis of the same document
//! without one ("last good"). A JSON DAG read past a syntax error is a guess, so the checker does
//! not run on it and the records after a broken node are untyped: the last good analysis's
//! checker diagnostics outside the edited region are kept (moved to where their text is now), and
//! the record types of nodes are looked up by node id there. A `.pulse` file is checked item by
//! item whatever its syntax errors, so it borrows only the record types.

use crate::analysis::{Analysis, Form};
use pulse_ir::RecordType;
use pulse_syntax::codes::E0109;
use pulse_syntax::{Diagnostic, Span};

/// True when a syntax error blocks part of the analysis: JSON syntax (`E00xx`) or a number the
/// reader could not take (E0109), as in `pulse_analysis::analyze`, or an item of `.pulse` that did
/// not parse.
pub fn is_broken(analysis: &Analysis) -> bool {
    analysis.document.as_ref().is_none_or(|doc| doc.is_partial())
        || analysis.diagnostics.iter().any(|diagnostic| {
            diagnostic.is_error() && (diagnostic.code.as_str().starts_with("E00") || diagnostic.code == E0109)
        })
}

/// The record entering node `node_id` (the event schema for `None`): from `current`, or from
/// `last_good` when a syntax error left it untyped in `current`.
pub fn input_record(current: &Analysis, last_good: Option<&Analysis>, node_id: Option<&str>) -> Option<RecordType> {
    let lookup = |analysis: &Analysis| -> Option<RecordType> {
        let records = analysis.records.as_ref()?;
        match node_id {
            Some(id) => records.inputs.get(analysis.node_index(id)?)?.clone(),
            None => records.schema.clone(),
        }
    };
    let record = current.document.as_ref().and_then(|_| lookup(current));
    let untyped = record.as_ref().is_none_or(|record| record.open);
    if untyped && is_broken(current) {
        if let Some(good) = last_good.filter(|good| !is_broken(good)).and_then(lookup) {
            return Some(good);
        }
    }
    record
}

/// The edited region between two texts: the length of their common prefix, and of their common
/// suffix after it.
fn edited_region(old: &str, new: &str) -> (usize, usize) {
    let prefix = old.bytes().zip(new.bytes()).take_while(|(a, b)| a == b).count();
    let suffix = old
        .bytes()
        .rev()
        .zip(new.bytes().rev())
        .take(old.len().min(new.len()) - prefix)
        .take_while(|(a, b)| a == b)
        .count();
    (prefix, suffix)
}

/// The checker diagnostics of `last_good` that `current` (a JSON DAG with a syntax error, which
/// the checker skipped) does not have, with their spans moved to the current text; those in the
/// edited region, or pointing into other files, are left out.
pub fn carried_diagnostics(current: &Analysis, last_good: &Analysis) -> Vec<Diagnostic> {
    if current.form != Form::Json || !is_broken(current) || is_broken(last_good) || last_good.form != Form::Json {
        return Vec::new();
    }
    let (old, new) = (last_good.text(), current.text());
    let (prefix, suffix) = edited_region(old, new);
    let moved = |span: Span| -> Option<Span> {
        let (start, end) = (span.start as usize, span.end as usize);
        if span.file != last_good.file {
            None
        } else if end <= prefix {
            Some(Span::new(current.file, start, end))
        } else if start >= old.len() - suffix {
            Some(Span::new(current.file, start + new.len() - old.len(), end + new.len() - old.len()))
        } else {
            None
        }
    };
    let mut carried = Vec::new();
    for diagnostic in &last_good.diagnostics {
        let Some(primary) = diagnostic.primary_span().and_then(moved) else { continue };
        let known =
            current.diagnostics.iter().any(|seen| seen.code == diagnostic.code && seen.primary_span() == Some(primary));
        if known {
            continue;
        }
        let mut diagnostic = diagnostic.clone();
        diagnostic.labels.retain_mut(|label| match moved(label.span) {
            Some(span) => {
                label.span = span;
                true
            }
            None => false,
        });
        diagnostic.suggestion = diagnostic.suggestion.take().and_then(|mut suggestion| {
            suggestion.span = moved(suggestion.span)?;
            Some(suggestion)
        });
        carried.push(diagnostic);
    }
    carried
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::analyze;

    const DAG: &str = r#"{"name": "p", "schema": {"fields": {"userId": "string?", "name": "string"}}, "nodes": [
  {"id": "s", "type": "file-source", "config": {"path": "in"}},
  {"id": "f", "type": "filter", "config": {"where": "name == 'a'"}},
  {"id": "o", "type": "api-sink", "config": {"url": "https://x/{{ userId }}", "body": {"n": "{{ nam }}"}}}
], "edges": ["s -> f", "f -> o"]}"#;

    fn analyze_json(text: &str) -> Analysis {
        analyze("p.json", text.to_string(), &|_| Err(std::io::ErrorKind::NotFound.into()))
    }

    #[test]
    fn a_broken_json_dag_keeps_the_checker_diagnostics_around_the_edit() {
        let good = analyze_json(DAG);
        let codes = |analysis: &Analysis| -> Vec<String> {
            analysis.diagnostics.iter().map(|diagnostic| diagnostic.code.as_str().to_string()).collect()
        };
        assert_eq!(codes(&good), ["W0007", "E0205"]);
        // Half-typed: the filter's type is an unterminated string, 3 bytes shorter.
        let broken = analyze_json(&DAG.replace(r#""type": "filter""#, r#""type": "filt"#));
        assert!(is_broken(&broken));
        assert!(codes(&broken).iter().all(|code| code == "E0001"), "the checker does not run on a broken DAG");
        let carried = carried_diagnostics(&broken, &good);
        assert_eq!(carried.iter().map(|d| d.code.as_str()).collect::<Vec<_>>(), ["W0007", "E0205"]);
        let at = |diagnostic: &Diagnostic| &broken.text()[diagnostic.primary_span().expect("a span").range()];
        assert_eq!(at(&carried[0]), "userId");
        assert_eq!(at(&carried[1]), "nam");
        let suggestion = carried[1].suggestion.as_ref().expect("did you mean `name`");
        assert_eq!(&broken.text()[suggestion.span.range()], "nam");
        // An edit over a diagnostic's span drops it.
        let broken = analyze_json(&DAG.replace("{{ nam }}\"}}}", "{{ na"));
        let carried = carried_diagnostics(&broken, &good);
        assert_eq!(carried.iter().map(|d| d.code.as_str()).collect::<Vec<_>>(), ["W0007"]);
    }

    #[test]
    fn records_come_from_the_last_good_analysis_by_node_id() {
        let good = analyze_json(DAG);
        let broken = analyze_json(&DAG.replace(r#""type": "filter""#, r#""type": "filt"#));
        let record = input_record(&broken, None, Some("o")).expect("a record");
        assert!(record.open, "untyped after the broken node");
        let record = input_record(&broken, Some(&good), Some("o")).expect("a record");
        assert!(!record.open && record.fields.contains_key("userId"));
        // Never from a last analysis that was broken too.
        assert!(input_record(&broken, Some(&broken), Some("o")).expect("a record").open);
    }
}
