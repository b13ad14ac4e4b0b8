//! Spans, diagnostics, the common AST, and both front ends: the `.pulse` language (pest) and the
//! Pulse JSON DAG (a position-aware JSON reader). This crate does no I/O.

pub mod ast;
pub mod codes;
pub mod diagnostic;
pub mod expr;
pub mod expr_print;
pub mod json;
pub mod pulse;
pub mod span;

pub use diagnostic::{Diagnostic, Diagnostics, Label, Severity, Suggestion};
pub use expr::parse_expr;
pub use pulse::{format_pulse, parse_pulse_document, print_pulse_document};
pub use span::{FileId, SourceMap, Span, Spanned};
