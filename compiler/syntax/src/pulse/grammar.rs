//! The pest parser generated from `grammar/pulse.pest`, the one grammar of the `.pulse` language.
//! Its parse tree is private to the crate: `pulse::parse` and `expr` convert it to the AST at once.

use pest_derive::Parser;

#[derive(Parser)]
#[grammar = "../../grammar/pulse.pest"]
pub(crate) struct PulseParser;
