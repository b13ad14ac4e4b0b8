//! The `.pulse` front end: parsing (`parse_pulse_document`), canonical printing of a `Document`
//! (`print_pulse_document`, used by `pulsec convert`) and formatting (`format_pulse`, used by
//! `pulsec fmt`). The language is described in docs/language.md; its grammar is
//! `grammar/pulse.pest`.

pub(crate) mod errors;
pub(crate) mod grammar;
pub(crate) mod lexer;
mod lower;
mod parse;
mod tree;

use crate::ast::Document;
use crate::diagnostic::Diagnostic;
use crate::span::FileId;

/// Parses a `.pulse` file into the common AST. Every syntax error in the file is reported (each
/// top-level item is parsed on its own). Returns `None` when there are errors, so the checker
/// never sees a partial document.
pub fn parse_pulse_document(file: FileId, text: &str) -> (Option<Document>, Vec<Diagnostic>) {
    let (tree, mut diagnostics) = parse::parse_file(file, text);
    let document = lower::lower_file(file, text.len(), &tree, &mut diagnostics);
    let has_errors = diagnostics.iter().any(Diagnostic::is_error);
    (if has_errors { None } else { Some(document) }, diagnostics)
}
