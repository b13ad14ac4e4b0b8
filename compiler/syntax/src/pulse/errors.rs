//! Turns pest errors into readable diagnostics: the message names what was expected in words
//! ("expected `:` after `userId`", "expected an expression"), never grammar rule names, and
//! the primary span is the token where parsing stopped.

use pest::error::{ErrorVariant, InputLocation};

use crate::codes::{self, Code};
use crate::diagnostic::Diagnostic;
use crate::pulse::grammar::Rule;
use crate::pulse::lexer;
use crate::span::{FileId, Span};

/// Where the failed text came from, which shapes the wording.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SyntaxContext {
    /// A whole-input expression (`parse_expr`).
    Expression,
    /// A top-level item of a `.pulse` file.
    Item,
}

/// Rejects nesting deeper than `expr::MAX_NESTING` before pest sees the text.
pub(crate) fn nesting_error(file: FileId, text: &str, base: usize, code: Code) -> Option<Diagnostic> {
    let idx = lexer::too_deep(text, crate::expr::MAX_NESTING)?;
    Some(
        Diagnostic::new(code, "brackets are nested too deeply")
            .primary(Span::new(file, base + idx, base + idx + 1), "nesting limit exceeded here")
            .note(format!("at most {} levels of brackets are allowed", crate::expr::MAX_NESTING)),
    )
}

/// Describes one expected thing, or `None` for things not worth naming.
fn describe_rule(rule: Rule) -> Option<&'static str> {
    use Rule::*;
    Some(match rule {
        expr | and_expr | cmp_expr | sum_expr | product | unary | number | true_lit | false_lit | null_lit | array
        | call | path | name | prefix_op | sql_not | expr_input => "an expression",
        value | duration | bad_duration | object | list | test_object | test_list => "a value",
        clock_step | nothing_span | timed_record | partial_record => "a test record",
        kw_at => "`at`",
        kw_partial => "`partial`",
        kw_clock => "`clock`",
        kw_nothing => "`nothing`",
        kw_from => "`from`",
        kw_until => "`until`",
        string | dq_string | sq_string => "a string",
        or_op | and_op | cmp_op | match_op | add_op | mul_op | sql_or | sql_and | bad_or | bad_and | sql_ne
        | bad_eq | in_op | sql_in => "an operator",
        node_id | node_ref => "a node id",
        node_type => "a node type",
        port_name => "a port name",
        item_name => "a name",
        node_decl => "a node declaration",
        arrow => "`->`",
        key | ident => "a key",
        colon => "`:`",
        field_type | type_name => "a type",
        event_fields | block | branches => "`{`",
        node_args => "`(`",
        by_clause | kw_by => "`by`",
        where_clause | kw_where => "`where`",
        nullable => "`?`",
        route_entry | counter_entry | segment_entry | aggregate_entry | window_entry | pair | test_pair => "an entry",
        field_decl => "a field",
        branch => "a branch",
        kw_over => "`over`",
        kw_every => "`every`",
        kw_gap => "`gap`",
        kw_tumbling | kw_sliding | kw_session | tumbling_window | sliding_window | session_window => {
            "`tumbling`, `sliding` or `session`"
        }
        _ => return None,
    })
}

/// Literal tokens worth naming in "expected ..."; the others are continuations of something
/// already complete (`.`, `(`, operators) or pieces of whitespace and comments.
fn is_named_token(token: &str) -> bool {
    matches!(token, "->" | ":" | "}" | "]" | ")")
}

/// The thing found at `pos`, for "found X".
fn describe_found(text: &str, pos: usize) -> (String, usize) {
    let rest = &text[pos.min(text.len())..];
    let Some(ch) = rest.chars().next() else {
        return ("end of input".to_string(), 0);
    };
    if ch == '\n' || ch == '\r' {
        return ("end of line".to_string(), 0);
    }
    if ch == '"' || ch == '\'' {
        return ("a string".to_string(), 1);
    }
    if ch.is_ascii_alphanumeric() || ch == '_' {
        let len = rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(rest.len());
        return (format!("`{}`", &rest[..len]), len);
    }
    for op in ["->", "==", "!=", "<=", ">=", "&&", "||", "=~", "<>"] {
        if rest.starts_with(op) {
            return (format!("`{op}`"), 2);
        }
    }
    (format!("`{ch}`"), ch.len_utf8())
}

/// Joins descriptions as "a, b or c".
fn join_or(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [only] => only.clone(),
        [init @ .., last] => format!("{} or {}", init.join(", "), last),
    }
}

/// The identifier that ends right before `pos` (skipping blanks), if any.
fn previous_word(text: &str, pos: usize) -> Option<&str> {
    let before = text.get(..pos.min(text.len()))?.trim_end();
    let start = before
        .char_indices()
        .rev()
        .find(|(_, c)| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '-'))
        .map_or(0, |(idx, c)| idx + c.len_utf8());
    let word = &before[start..];
    (!word.is_empty()).then_some(word)
}

pub(crate) fn pest_error_to_diagnostic(
    error: &pest::error::Error<Rule>,
    text: &str,
    file: FileId,
    base: usize,
    code: Code,
    context: SyntaxContext,
) -> Diagnostic {
    let pos = match error.location {
        InputLocation::Pos(pos) => pos,
        InputLocation::Span((start, _)) => start,
    }
    .min(text.len());
    let at = |start: usize, len: usize| Span::new(file, base + start, base + start + len);

    if let ErrorVariant::CustomError { message } = &error.variant {
        return Diagnostic::new(code, "input is nested too deeply to parse")
            .primary(at(pos, 0), "parsing stopped here")
            .note(message.clone());
    }

    // An unterminated string makes everything after it look wrong; say that first.
    if let Some(range) = lexer::unterminated_string(text) {
        if range.start <= pos {
            return Diagnostic::new(code, "unterminated string")
                .primary(at(range.start, range.len()), "this string is not closed before the end of the line")
                .help("add the closing quote; a string cannot span lines (write `\\n` for a line break)");
        }
    }

    let mut expected: Vec<String> = Vec::new();
    let mut push = |item: String| {
        if !expected.contains(&item) {
            expected.push(item);
        }
    };
    if let ErrorVariant::ParsingError { positives, .. } = &error.variant {
        for rule in positives {
            if let Some(description) = describe_rule(*rule) {
                push(description.to_string());
            }
        }
    }
    if let Some(attempts) = error.parse_attempts() {
        for stack in attempts.call_stacks() {
            if let Some(rule) = stack.deepest.get_rule().copied().or(stack.parent) {
                if let Some(description) = describe_rule(rule) {
                    push(description.to_string());
                }
            }
        }
        for token in attempts.expected_tokens() {
            // Literal tokens only: ranges print as `a..z`, keywords are named by their rules.
            let token = token.to_string();
            if is_named_token(&token) {
                push(format!("`{token}`"));
            }
        }
    }
    // Prefer the specific over the generic: "a value" already covers "an expression", and an
    // operator is only worth naming when nothing else fits.
    if expected.iter().any(|item| item == "a value") {
        expected.retain(|item| item != "an expression" && item != "a string");
    }
    if expected.len() > 1 {
        expected.retain(|item| item != "an operator");
    }
    let (found, found_len) = describe_found(text, pos);
    let at_end = found == "end of input";

    // An unclosed bracket at the end of the item.
    if at_end {
        if let Some(&(open_idx, open)) = lexer::open_brackets(text, pos).last() {
            let close = match open {
                '{' => '}',
                '[' => ']',
                _ => ')',
            };
            let end = text.trim_end().len();
            return Diagnostic::new(code, format!("unclosed `{open}`"))
                .primary(at(open_idx, 1), format!("this `{open}` is never closed"))
                .secondary(at(end, 0), format!("expected `{close}` here"))
                .help(format!("add `{close}` at the end of the block"));
        }
    }

    let previous = previous_word(text, pos);
    let expects = |what: &str| expected.iter().any(|item| item == what);
    let comparisons = ["`==`", "`!=`", "`<`", "`<=`", "`>`", "`>=`", "`=~`", "`in`"];
    let before = text[..pos].trim_end();
    let after_operand =
        before.ends_with(|c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | ')' | ']' | '"' | '\''));
    let (message, label, help) = if comparisons.contains(&found.as_str()) && after_operand {
        (
            "comparison operators cannot be chained".to_string(),
            "second comparison".to_string(),
            Some("combine comparisons with `&&` (`a < b && b < c`) or add parentheses".to_string()),
        )
    } else if before.ends_with('.') && !before.ends_with("..") {
        (format!("expected a field name after `.`, found {found}"), "expected a field name".to_string(), None)
    } else if expects("`:`") && found == "`=`" {
        (
            "expected `:` between a key and its value".to_string(),
            "`=` is not used to set values".to_string(),
            Some(format!("write `{}: value`", previous.unwrap_or("key"))),
        )
    } else if expects("`:`") && previous.is_some() && !expects("`->`") {
        let previous = previous.unwrap_or_default();
        (
            format!("expected `:` after `{previous}`, found {found}"),
            "expected `:`".to_string(),
            Some(format!("write `{previous}: ...`")),
        )
    } else if expects("`:`") && expects("`->`") && context == SyntaxContext::Item {
        let previous = previous.unwrap_or("node");
        (
            format!("expected `:` or `->` after `{previous}`, found {found}"),
            "expected `:` or `->`".to_string(),
            Some(format!("declare a node with `{previous}: TYPE {{ ... }}` or connect it with `{previous} -> NEXT`")),
        )
    } else if expected.is_empty() {
        (format!("unexpected {found}"), "unexpected here".to_string(), None)
    } else {
        let list = join_or(&expected);
        (format!("expected {list}, found {found}"), format!("expected {list}"), None)
    };
    let label_span = at(pos, found_len);
    let mut diagnostic = Diagnostic::new(code, message).primary(label_span, label);
    if let Some(help) = help {
        diagnostic = diagnostic.help(help);
    }
    if code == codes::E0004 && found == "`=`" {
        diagnostic = diagnostic.help("use `==` to compare values");
    }
    diagnostic
}

#[cfg(test)]
mod tests {
    use super::previous_word;

    #[test]
    fn the_previous_word_ends_at_a_character_boundary() {
        assert_eq!(previous_word("a = foo ", 8), Some("foo"));
        assert_eq!(previous_word("=𐀁", 5), None);
        assert_eq!(previous_word("x 𐀁ab", 8), Some("ab"));
        assert_eq!(previous_word("", 0), None);
    }
}
