//! The JSON front end: a position-aware JSON reader, JSON DAG <-> `ast::Document`, and the import
//! of JSON Schema event schemas. Spans point into the `.json` file, so diagnostics from later
//! stages land on the exact spot in the user's document.

mod document;
mod print;
mod reader;
mod schema;

pub use document::parse_json_document;
pub use print::print_json_document;
pub use reader::read_json;
pub use schema::json_schema_to_schema;

use crate::diagnostic::did_you_mean;

/// `did_you_mean`, plus two close matches it misses on short words: swapped letters (`tpye` for
/// `type`) and an abbreviation that is the start of exactly one candidate (`int` for `integer`).
fn suggest<'a>(name: &str, candidates: &[&'a str]) -> Option<&'a str> {
    did_you_mean(name, candidates.iter().copied()).or_else(|| {
        let sorted = |text: &str| {
            let mut chars: Vec<char> = text.to_ascii_lowercase().chars().collect();
            chars.sort_unstable();
            chars
        };
        let anagram = candidates.iter().copied().find(|candidate| sorted(candidate) == sorted(name));
        let mut prefixed =
            candidates.iter().copied().filter(|candidate| name.len() >= 3 && candidate.starts_with(name));
        anagram.or_else(|| prefixed.next().filter(|_| prefixed.next().is_none()))
    })
}
