//! Signature help: inside the parentheses of a function call (`coalesce(a, |`) or of a node
//! type's shorthand (`capping(3, |`, whose arguments set config keys, see
//! `pulse_syntax::pulse::positional_keys`), the signature with the parameter under the cursor.
//! The call is found in the text, not the AST, because while it is being typed it does not parse.

use crate::analysis::{node_type, Analysis, Form};
use crate::completion::{item_start, open_string};
use pulse_ir::{AggregateFn, Function};

#[derive(Clone, Debug, PartialEq)]
pub struct Signature {
    pub label: String,
    /// Each parameter's byte range in `label` (the label is ASCII, so these are UTF-16 offsets too).
    pub parameters: Vec<(usize, usize)>,
    pub active_parameter: usize,
    pub documentation: String,
}

/// An open bracket before the cursor: where it is, and how many commas of its own follow it.
struct Open {
    bracket: char,
    at: usize,
    commas: usize,
}

/// The signature of the call whose parentheses hold `offset`, if it names a function or (in
/// `.pulse`) a node type with shorthand arguments.
pub fn signature_help(analysis: &Analysis, offset: usize) -> Option<Signature> {
    let text = analysis.text();
    let offset = offset.min(text.len());
    if !text.is_char_boundary(offset) {
        return None;
    }
    let line_start = text[..offset].rfind('\n').map(|idx| idx + 1).unwrap_or(0);
    let (scan_start, json) = match analysis.form {
        // A JSON expression lives in one string on one line.
        Form::Json => (line_start + open_string(&text[line_start..offset])?, true),
        _ => (item_start(text, line_start), false),
    };
    let opens = open_brackets(&text[scan_start..offset], json);
    opens.iter().rev().filter(|open| open.bracket == '(').find_map(|open| {
        let before = &text[scan_start..scan_start + open.at];
        let name_text = before.trim_end();
        let name_start = name_text
            .rfind(|ch: char| !(ch.is_ascii_alphanumeric() || ch == '_' || ch == '-'))
            .map(|idx| idx + 1)
            .unwrap_or(0);
        let name = &name_text[name_start..];
        // `aggregate total: sum(` in a window-aggregate names an aggregate function, whose
        // names (`min`, `max`) are also functions of expressions.
        if !json && is_aggregate_declaration(&name_text[..name_start]) {
            return aggregate_signature(name, open.commas);
        }
        function_signature(name, open.commas).or_else(|| {
            // `a-b(` in an expression is a subtraction, not a node type: only after `id:`.
            let declared = name_text[..name_start].trim_end().ends_with(':');
            (!json && declared).then(|| shorthand_signature(name, open.commas)).flatten()
        })
    })
}

/// The brackets still open at the end of `text`, outside strings and comments.
fn open_brackets(text: &str, json: bool) -> Vec<Open> {
    let mut opens: Vec<Open> = Vec::new();
    let mut chars = text.char_indices().peekable();
    while let Some((idx, ch)) = chars.next() {
        match ch {
            // In JSON the expression is the content of a string: its strings are single-quoted.
            '"' | '\'' if !json || ch == '\'' => {
                while let Some((_, inner)) = chars.next() {
                    if inner == '\\' {
                        chars.next();
                    } else if inner == ch || inner == '\n' {
                        break;
                    }
                }
            }
            '/' if !json && text[idx..].starts_with("//") => {
                for (_, inner) in chars.by_ref() {
                    if inner == '\n' {
                        break;
                    }
                }
            }
            '(' | '[' | '{' => opens.push(Open { bracket: ch, at: idx, commas: 0 }),
            ')' | ']' | '}' => {
                opens.pop();
            }
            ',' => {
                if let Some(open) = opens.last_mut() {
                    open.commas += 1;
                }
            }
            _ => {}
        }
    }
    opens
}

fn function_signature(name: &str, commas: usize) -> Option<Signature> {
    let function = Function::ALL.iter().find(|(known, _)| *known == name).map(|(_, function)| *function)?;
    let variadic = function.arity().1.is_none();
    let mut names: Vec<&str> = function.parameters().to_vec();
    if variadic {
        names.push("...");
    }
    let mut signature = signature(name, &names, commas, function.summary().to_string());
    // Every argument past the first of a variadic function is one of its `values`.
    if variadic {
        signature.active_parameter = commas.min(1).min(names.len().saturating_sub(1));
    }
    Some(signature)
}

/// Whether `before` (the text before a call's name) ends with `aggregate NAME:`.
fn is_aggregate_declaration(before: &str) -> bool {
    let Some(rest) = before.trim_end().strip_suffix(':') else { return false };
    let rest = rest.trim_end();
    let name_start = rest.rfind(|ch: char| !(ch.is_ascii_alphanumeric() || ch == '_')).map_or(0, |idx| idx + 1);
    let keyword = rest[..name_start].trim_end();
    name_start < rest.len()
        && keyword.ends_with("aggregate")
        && keyword[..keyword.len() - "aggregate".len()].chars().next_back().is_none_or(char::is_whitespace)
}

/// `FN(field)` of a window-aggregate's aggregate function (`count` may leave the field out).
fn aggregate_signature(name: &str, commas: usize) -> Option<Signature> {
    let function = AggregateFn::ALL.iter().find(|(known, _)| *known == name).map(|(_, function)| *function)?;
    Some(signature(name, &["field"], commas, function.summary().to_string()))
}

fn shorthand_signature(kind: &str, commas: usize) -> Option<Signature> {
    let keys = pulse_syntax::pulse::positional_keys(kind)?;
    let summary = node_type(kind).map(|node_type| node_type.summary).unwrap_or_default();
    let documentation =
        format!("{summary}\n\nThe arguments set the config keys of the same names; other options go in `{{ ... }}`.");
    Some(signature(kind, keys, commas, documentation))
}

fn signature(name: &str, parameters: &[&str], commas: usize, documentation: String) -> Signature {
    let mut label = format!("{name}(");
    let mut ranges = Vec::new();
    for (idx, parameter) in parameters.iter().enumerate() {
        if idx > 0 {
            label.push_str(", ");
        }
        ranges.push((label.len(), label.len() + parameter.len()));
        label.push_str(parameter);
    }
    label.push(')');
    let active_parameter = commas.min(parameters.len().saturating_sub(1));
    Signature { label, parameters: ranges, active_parameter, documentation }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::analyze;

    /// The label and the active parameter's name at the `|` of `text`.
    fn help(name: &str, text: &str) -> Option<(String, String)> {
        let offset = text.find('|').expect("a cursor");
        let text = text.replace('|', "");
        let analysis = analyze(name, text, &|_| Err(std::io::ErrorKind::NotFound.into()));
        signature_help(&analysis, offset).map(|signature| {
            let (start, end) = signature.parameters[signature.active_parameter];
            (signature.label.clone(), signature.label[start..end].to_string())
        })
    }

    const HEAD: &str = "pipeline p\nevent { a: string?, b: string? }\nsrc: file-source(\"in\")\n";

    #[test]
    fn aggregate_functions_of_a_window_aggregate() {
        let block = "src -> w: window-aggregate by name {\n  window tumbling 1h\n  aggregate ";
        let at = |tail: &str| help("p.pulse", &format!("{HEAD}{block}{tail}"));
        // `max` of an aggregate takes a field, not the values of the expression function.
        assert_eq!(at("biggest: max(|"), Some(("max(field)".into(), "field".into())));
        assert_eq!(at("n: count(|"), Some(("count(field)".into(), "field".into())));
        assert_eq!(at("n: countDistinct(|"), Some(("countDistinct(field)".into(), "field".into())));
        // Not an aggregate function, and the expression function outside an aggregate.
        assert_eq!(at("n: median(|"), None);
        assert_eq!(
            help("p.pulse", &format!("{HEAD}src -> f: filter(max(|")),
            Some(("max(values, ...)".into(), "values".into()))
        );
    }

    #[test]
    fn functions_follow_the_commas() {
        let at = |tail: &str| help("p.pulse", &format!("{HEAD}{tail}"));
        let contains = Some(("contains(text, part)".to_string(), "text".to_string()));
        assert_eq!(at("src -> f: filter(contains(|"), contains);
        let part = Some(("contains(text, part)".to_string(), "part".to_string()));
        assert_eq!(at("src -> f: filter(contains(a, |"), part);
        // Commas inside nested calls, lists and strings are not this call's.
        assert_eq!(at("src -> f: filter(contains(lower(a, \"x,y\"), |"), part);
        assert_eq!(at("src -> f: filter(contains([a, b], |"), part);
        assert_eq!(
            at("src -> f: filter(if(a != null, |"),
            Some(("if(condition, then, otherwise)".into(), "then".into()))
        );
        let values = Some(("coalesce(values, ...)".to_string(), "values".to_string()));
        assert_eq!(at("src -> f: filter(coalesce(|"), values);
        let more = Some(("coalesce(values, ...)".to_string(), "...".to_string()));
        assert_eq!(at("src -> f: filter(coalesce(a, b, |"), more);
        // After the call closes, the shorthand's signature again.
        assert_eq!(at("src -> f: filter(lower(a) == |"), Some(("filter(where)".into(), "where".into())));
        assert_eq!(at("src -> f: filter(a // (\n  |"), Some(("filter(where)".into(), "where".into())));
        assert_eq!(at("src -> f: filter(a)|"), None);
    }

    #[test]
    fn node_type_shorthands() {
        let at = |tail: &str| help("p.pulse", &format!("{HEAD}{tail}"));
        assert_eq!(at("src -> c: capping(3, |"), Some(("capping(max, window)".into(), "window".into())));
        assert_eq!(at("src -> d: delay(|"), Some(("delay(duration)".into(), "duration".into())));
        // A type without shorthand arguments, and a subtraction, are not shorthands.
        assert_eq!(at("src -> m: map(|"), None);
        assert_eq!(at("src -> f: filter(a == x-y(|"), Some(("filter(where)".into(), "where".into())));
    }

    #[test]
    fn functions_in_json_strings() {
        let text =
            r#"{"name": "p", "nodes": [{"id": "f", "type": "filter", "config": {"where": "contains(a, '(,', |"}}]}"#;
        assert_eq!(help("p.json", text), Some(("contains(text, part)".into(), "part".into())));
        let text = r#"{"name": "p", "nodes": [{"id": "f", "type": "filter", "config": {"where": "a"}}], "x": [1, |"#;
        assert_eq!(help("p.json", text), None);
    }
}
