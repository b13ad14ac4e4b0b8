//! The `.pulse` front end: parsing (`parse_pulse_document`), canonical printing of a `Document`
//! (`print_pulse_document`, used by `pulsec convert`) and formatting (`format_pulse`, used by
//! `pulsec fmt`). The language is described in docs/language.md; its grammar is
//! `grammar/pulse.pest`.

mod convert;
pub(crate) mod errors;
pub(crate) mod grammar;
pub(crate) mod lexer;
mod lower;
mod parse;
mod print;
mod tree;

pub use lower::positional_keys;

use crate::ast::Document;
use crate::diagnostic::Diagnostic;
use crate::span::FileId;

/// Parses a `.pulse` file into the common AST. Every syntax error in the file is reported (each
/// top-level item is parsed on its own). The document holds every item that parsed, even when
/// others did not: those are listed in `Document::unparsed`, so the checker, the outline, hover
/// and definition keep working on the rest of the file while one item is broken.
pub fn parse_pulse_document(file: FileId, text: &str) -> (Option<Document>, Vec<Diagnostic>) {
    let (tree, mut diagnostics) = parse::parse_file(file, text);
    let document = lower::lower_file(file, text.len(), &tree, &mut diagnostics);
    (Some(document), diagnostics)
}

/// Prints a document (typically read from JSON) as canonical `.pulse`: settings header, `event`
/// block, node declarations, then the flow as chains. JSON idioms become `.pulse` idioms
/// (condition objects become expressions, duration strings become literals); the result parses
/// back to an equivalent document.
pub fn print_pulse_document(document: &Document) -> String {
    print::print_file(&convert::document_to_tree(document), "")
}

/// Formats a `.pulse` file in the canonical layout, keeping its comments. Fails with the syntax
/// errors when the file does not parse. Idempotent: formatting the output again changes nothing.
pub fn format_pulse(file: FileId, text: &str) -> Result<String, Vec<Diagnostic>> {
    let (tree, diagnostics) = parse::parse_file(file, text);
    if diagnostics.iter().any(Diagnostic::is_error) {
        return Err(diagnostics);
    }
    Ok(print::print_file(&tree, text))
}
