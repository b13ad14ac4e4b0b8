//! Decoding of configuration values: strings, integers, durations, field paths and choices, each
//! accepting both the JSON spelling and the `.pulse` one, with a coded error on mismatch.

use crate::Cx;
use pulse_ir::{Path, RateLimit};
use pulse_syntax::ast::{ExprKind, Member, Number, Value, ValueKind};
use pulse_syntax::codes::{E0101, E0102, E0103, E0105, E0107, E0501, E0502};
use pulse_syntax::diagnostic::did_you_mean;
use pulse_syntax::{Diagnostic, Span};

/// An object's members, looked up by key; reports unknown keys once, when created.
pub struct Fields<'a> {
    pub members: &'a [Member],
    /// Keys not in the allowed list, already reported.
    unknown: Vec<&'a str>,
}

impl<'a> Fields<'a> {
    /// Reads `value` as an object whose keys must be among `allowed`; `owner` names it in messages.
    pub fn new(cx: &mut Cx, value: &'a Value, allowed: &[&str], owner: &str) -> Option<Fields<'a>> {
        let Some(members) = value.as_object() else {
            cx.report(wrong_type(value, "an object", owner));
            return None;
        };
        let mut unknown = Vec::new();
        for member in members {
            if !allowed.contains(&member.key.node.as_str()) {
                unknown.push(member.key.node.as_str());
                let mut diagnostic = Diagnostic::new(E0101, format!("unknown key `{}` in {owner}", member.key.node))
                    .primary(member.key.span, "unknown key");
                if let Some(suggestion) = did_you_mean(&member.key.node, allowed.iter().copied()) {
                    diagnostic = diagnostic.did_you_mean(member.key.span, suggestion);
                } else if allowed.is_empty() {
                    diagnostic = diagnostic.note(format!("{owner} takes no configuration"));
                } else {
                    diagnostic = diagnostic.note(format!("expected one of {}", list(allowed)));
                }
                cx.report(diagnostic);
            }
        }
        Some(Fields { members, unknown })
    }

    /// The last member with this key (later duplicates win, as in JSON).
    pub fn get(&self, key: &str) -> Option<&'a Value> {
        self.members.iter().rev().find(|member| member.key.node == key).map(|member| &member.value)
    }

    pub fn require(&self, cx: &mut Cx, key: &str, owner: &str, anchor: Span) -> Option<&'a Value> {
        let found = self.get(key);
        // A misspelt key was reported with a "did you mean" already; don't report it twice.
        let misspelt = self.unknown.iter().any(|unknown| did_you_mean(unknown, [key]).is_some());
        if found.is_none() && !misspelt {
            cx.report(
                Diagnostic::new(E0102, format!("{owner} is missing `{key}`"))
                    .primary(anchor, format!("`{key}` is required here")),
            );
        }
        found
    }
}

/// `a`, `b` and `c` as backticked list.
pub fn list(items: &[&str]) -> String {
    items.iter().map(|item| format!("`{item}`")).collect::<Vec<_>>().join(", ")
}

pub fn wrong_type(value: &Value, expected: &str, what: &str) -> Diagnostic {
    Diagnostic::new(E0103, format!("{what} must be {expected}"))
        .primary(value.span, format!("expected {expected}"))
        .note(format!("expected {expected}, found {}", value.describe()))
}

pub fn string(cx: &mut Cx, value: &Value, what: &str) -> Option<String> {
    match &value.kind {
        ValueKind::String(text) => Some(text.clone()),
        ValueKind::Expr(expr) => match &expr.kind {
            ExprKind::Str(text) => Some(text.clone()),
            _ => {
                cx.report(wrong_type(value, "a string", what));
                None
            }
        },
        _ => {
            cx.report(wrong_type(value, "a string", what));
            None
        }
    }
}

pub fn boolean(cx: &mut Cx, value: &Value, what: &str) -> Option<bool> {
    match &value.kind {
        ValueKind::Bool(flag) => Some(*flag),
        _ => {
            cx.report(wrong_type(value, "`true` or `false`", what));
            None
        }
    }
}

pub fn unsigned(cx: &mut Cx, value: &Value, what: &str) -> Option<u64> {
    match &value.kind {
        ValueKind::Number(Number::Int(number)) if *number >= 0 => Some(*number as u64),
        _ => {
            cx.report(wrong_type(value, "a non-negative integer", what));
            None
        }
    }
}

/// One of `choices`; returns its index.
/// An integer within `range`.
pub fn bounded(cx: &mut Cx, value: &Value, range: std::ops::RangeInclusive<u64>, what: &str) -> Option<u64> {
    match &value.kind {
        ValueKind::Number(Number::Int(number))
            if u64::try_from(*number).is_ok_and(|number| range.contains(&number)) =>
        {
            Some(*number as u64)
        }
        _ => {
            cx.report(wrong_type(value, &format!("an integer from {} to {}", range.start(), range.end()), what));
            None
        }
    }
}

/// A rate: a positive integer (per second) or `"COUNT/PER"`, where PER is a duration or a bare
/// unit (`"100/s"`, `"3000/m"`, `"10/500ms"`, `"50000/1h"`).
pub fn rate(cx: &mut Cx, value: &Value, what: &str) -> Option<RateLimit> {
    let parsed = match &value.kind {
        ValueKind::Number(Number::Int(number)) if *number > 0 => {
            Some(RateLimit { count: *number as u64, per_ms: 1000 })
        }
        ValueKind::String(text) => parse_rate(text),
        _ => None,
    };
    if parsed.is_none() {
        cx.report(
            wrong_type(value, "a rate", what)
                .note("a rate is a positive integer per second, or a count per duration: `\"100/s\"`, `\"3000/m\"`, `\"10/500ms\"`")
                .help("write `rateLimit: 100` for 100 per second"),
        );
    }
    parsed
}

fn parse_rate(text: &str) -> Option<RateLimit> {
    let (count, per) = text.split_once('/')?;
    let count: u64 = count.trim().parse().ok().filter(|count| *count > 0)?;
    let per = per.trim();
    let per = if per.starts_with(|first: char| first.is_ascii_digit()) { per.to_string() } else { format!("1{per}") };
    let per_ms = parse_duration(&per).ok().filter(|millis| *millis > 0)?;
    Some(RateLimit { count, per_ms })
}

pub fn choice(cx: &mut Cx, value: &Value, choices: &[&str], what: &str) -> Option<usize> {
    let text = string(cx, value, what)?;
    if let Some(idx) = choices.iter().position(|choice| *choice == text) {
        return Some(idx);
    }
    let mut diagnostic = Diagnostic::new(E0107, format!("`{text}` is not a valid {what}"))
        .primary(value.span, "not one of the allowed values")
        .note(format!("expected one of {}", list(choices)));
    if let Some(suggestion) = did_you_mean(&text, choices.iter().copied()) {
        diagnostic = diagnostic.did_you_mean(value.span, suggestion);
    }
    cx.report(diagnostic);
    None
}

/// Where zero is allowed for a duration (G4).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Zero {
    Allowed,
    Forbidden,
}

/// A duration: `500ms 30s 5m 2h 7d` strings or literals, or a non-negative integer of ms (G4).
pub fn duration(cx: &mut Cx, value: &Value, zero: Zero, what: &str) -> Option<u64> {
    let millis = match &value.kind {
        ValueKind::Duration(literal) => Some(literal.millis),
        ValueKind::Number(Number::Int(number)) if *number >= 0 => Some(*number as u64),
        ValueKind::String(text) => match parse_duration(text) {
            Ok(millis) => Some(millis),
            Err(problem) => {
                cx.report(
                    Diagnostic::new(E0501, format!("invalid duration `{text}` for {what}"))
                        .primary(value.span, problem)
                        .note("a duration is a whole number followed by one unit: `ms`, `s`, `m`, `h` or `d`")
                        .help(duration_help(text)),
                );
                return None;
            }
        },
        _ => {
            cx.report(
                Diagnostic::new(E0501, format!("{what} must be a duration"))
                    .primary(value.span, format!("expected a duration, found {}", value.describe()))
                    .help("write a duration such as `\"30s\"`, `\"5m\"` or `\"7d\"`, or an integer number of milliseconds"),
            );
            return None;
        }
    }?;
    if millis == 0 && zero == Zero::Forbidden {
        cx.report(
            Diagnostic::new(E0502, format!("{what} must be greater than zero"))
                .primary(value.span, "zero is not allowed here"),
        );
        return None;
    }
    Some(millis)
}

fn duration_help(text: &str) -> String {
    let trimmed: String = text.chars().filter(|ch| !ch.is_whitespace()).collect();
    if trimmed != text && parse_duration(&trimmed).is_ok() {
        return format!("remove the spaces: `{trimmed}`");
    }
    if let Some(weeks) = text.strip_suffix('w').and_then(|number| number.parse::<u64>().ok()) {
        return format!("weeks are not a unit; write `{}d`", weeks * 7);
    }
    if let Some(millis) = parse_compound(text) {
        return format!("compound durations are not allowed; write `{}`", format_duration(millis));
    }
    "write a whole number and one unit, e.g. `90m` instead of `1.5h` or `1h30m`".to_string()
}

pub use pulse_stdlib::duration::parse as parse_duration;

/// `1h30m` as milliseconds, only to suggest the single-unit spelling.
fn parse_compound(text: &str) -> Option<u64> {
    let mut total = 0u64;
    let mut rest = text;
    let mut parts = 0;
    while !rest.is_empty() {
        let digits_end = rest.find(|ch: char| !ch.is_ascii_digit())?;
        let unit_end =
            rest[digits_end..].find(|ch: char| ch.is_ascii_digit()).map_or(rest.len(), |idx| digits_end + idx);
        total += parse_duration(&rest[..unit_end]).ok()?;
        rest = &rest[unit_end..];
        parts += 1;
    }
    (parts > 1).then_some(total)
}

pub use pulse_stdlib::duration::format as format_duration;

/// A field path: `"props.show_id"` in JSON, `props.show_id` in `.pulse`.
pub fn path(cx: &mut Cx, value: &Value, what: &str) -> Option<Path> {
    match &value.kind {
        ValueKind::String(text) => {
            let segments: Vec<String> = text.split('.').map(str::to_string).collect();
            if segments.iter().any(String::is_empty) {
                cx.report(
                    Diagnostic::new(E0105, format!("invalid field path `{text}` for {what}"))
                        .primary(value.span, "empty path segment")
                        .help("write field names separated by single dots, e.g. `props.show_id`"),
                );
                return None;
            }
            Some(Path(segments))
        }
        ValueKind::Expr(expr) => match &expr.kind {
            ExprKind::Path(segments) => Some(Path(segments.iter().map(|segment| segment.node.clone()).collect())),
            _ => {
                cx.report(wrong_type(value, "a field path", what));
                None
            }
        },
        _ => {
            cx.report(wrong_type(value, "a field path", what));
            None
        }
    }
}

/// An array's elements; reports a non-array.
pub fn array<'a>(cx: &mut Cx, value: &'a Value, what: &str) -> Option<&'a [Value]> {
    match &value.kind {
        ValueKind::Array(items) => Some(items),
        _ => {
            cx.report(wrong_type(value, "an array", what));
            None
        }
    }
}

/// Identifiers of nodes and routes (G3).
pub fn is_node_identifier(text: &str) -> bool {
    !text.is_empty()
        && !text.starts_with('_')
        && text.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == '-')
}

/// Names cargo refuses for a package: its build directories, Rust's own crates and keywords.
#[rustfmt::skip]
const RESERVED_PACKAGE_NAMES: &[&str] = &[
    "build", "deps", "examples", "incremental", "std", "core", "alloc", "proc_macro", "proc-macro", "test",
    "self", "super", "crate", "fn", "mod", "struct", "enum", "impl", "trait", "type", "use", "let", "match",
    "loop", "while", "for", "if", "else", "return", "break", "continue", "const", "static", "unsafe", "async",
    "await", "dyn", "move", "mut", "pub", "ref", "where", "as", "in", "extern", "true", "false", "box", "do",
    "final", "macro", "override", "priv", "typeof", "unsized", "virtual", "yield", "try", "abstract", "become",
    "con", "prn", "aux", "nul", "com1", "com2", "com3", "com4", "com5", "com6", "com7", "com8", "com9", "lpt1",
    "lpt2", "lpt3", "lpt4", "lpt5", "lpt6", "lpt7", "lpt8", "lpt9",
];

/// Why `name` cannot name a pipeline (its binary, crate, state and Kubernetes objects), if it
/// cannot: a lowercase letter, then letters, digits, `_` and `-`, at most 63 characters, ending
/// in a letter or digit, and not a name cargo reserves.
pub fn pipeline_name_problem(name: &str) -> Option<&'static str> {
    if !name.chars().all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '_' || ch == '-') {
        return Some("names may use only `a-z`, `0-9`, `_` and `-`");
    }
    if !name.starts_with(|ch: char| ch.is_ascii_lowercase()) {
        return Some("a name starts with a letter `a-z`");
    }
    if name.ends_with(['_', '-']) {
        return Some("a name ends with a letter or digit");
    }
    if name.len() > 63 {
        return Some("a name has at most 63 characters (a Kubernetes object name)");
    }
    if RESERVED_PACKAGE_NAMES.contains(&name) {
        return Some("cargo reserves this name");
    }
    None
}

/// Why `topic` is not a legal Kafka topic name, if it is not: 1 to 249 of `a-zA-Z0-9._-`, and
/// not `.` or `..`.
pub fn topic_problem(topic: &str) -> Option<&'static str> {
    if topic.is_empty() || topic.len() > 249 {
        return Some("a topic name has 1 to 249 characters");
    }
    if !topic.chars().all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '.' | '_' | '-')) {
        return Some("topic names may use only letters, digits, `.`, `_` and `-`");
    }
    if topic == "." || topic == ".." {
        return Some("`.` and `..` are not topic names");
    }
    None
}

/// Whether `text` holds a control character or a line or paragraph separator: text that must
/// stay on one line wherever it is written (logs, comments, YAML, headers).
pub fn has_line_breaking_chars(text: &str) -> bool {
    text.chars().any(|ch| ch.is_control() || matches!(ch, '\u{2028}' | '\u{2029}'))
}

/// Counter and aggregate names usable in expressions.
pub fn is_expr_identifier(text: &str) -> bool {
    let mut chars = text.chars();
    matches!(chars.next(), Some(ch) if ch.is_ascii_alphabetic() || ch == '_')
        && chars.all(|ch| ch.is_ascii_alphanumeric() || ch == '_')
        && !matches!(text, "true" | "false" | "null" | "in")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_are_a_count_per_duration_or_a_bare_unit() {
        let rate = |count, per_ms| Some(RateLimit { count, per_ms });
        assert_eq!(parse_rate("100/s"), rate(100, 1000));
        assert_eq!(parse_rate("3000 / m"), rate(3000, 60_000));
        assert_eq!(parse_rate("10/500ms"), rate(10, 500));
        assert_eq!(parse_rate("50000/1h"), rate(50_000, 3_600_000));
        for bad in ["100", "0/s", "-1/s", "10/0s", "10/", "/s", "ten/s", "10/fortnight"] {
            assert_eq!(parse_rate(bad), None, "{bad}");
        }
    }

    #[test]
    fn durations_follow_g4() {
        assert_eq!(parse_duration("500ms"), Ok(500));
        assert_eq!(parse_duration("5m"), Ok(300_000));
        assert_eq!(parse_duration("7d"), Ok(604_800_000));
        assert!(parse_duration("1h30m").is_err());
        assert!(parse_duration("1.5h").is_err());
        assert!(parse_duration("5 m").is_err());
        assert!(parse_duration("2w").is_err());
        assert!(parse_duration("300000").is_err());
        assert_eq!(parse_compound("1h30m"), Some(5_400_000));
        assert_eq!(format_duration(5_400_000), "90m");
        assert_eq!(format_duration(0), "0ms");
        assert_eq!(duration_help("2w"), "weeks are not a unit; write `14d`");
    }
}
