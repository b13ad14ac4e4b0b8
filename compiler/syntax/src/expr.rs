//! The expression front end (G22): `parse_expr` for expression strings found in JSON documents,
//! and the conversion from the pest parse tree to `ast::Expr` shared with the `.pulse` parser.
//! Both use the one grammar in `grammar/pulse.pest`.

use pest::iterators::Pair;
use pest::Parser;

use crate::ast::{BinaryOp, Expr, ExprKind, UnaryOp};
use crate::codes::{self, Code};
use crate::diagnostic::Diagnostic;
use crate::pulse::errors::{nesting_error, pest_error_to_diagnostic, SyntaxContext};
use crate::pulse::grammar::{PulseParser, Rule};
use crate::span::{FileId, Span, Spanned};

/// Deeper bracket nesting than this is rejected before parsing, so that neither pest nor the
/// recursive conversion can exhaust the stack on hostile input.
pub(crate) const MAX_NESTING: usize = 64;
/// Longer operator chains or prefix-operator runs than this are rejected (their trees are deep).
const MAX_CHAIN: usize = 400;

/// Parses a whole string as one expression. Spans are offset by `base_offset`, the position of
/// `text` in the file (for an expression inside a JSON string: the string content's position).
/// Reports E0004 for syntax errors, E0005 for `=` used as `==`, E0006 for SQL keywords.
pub fn parse_expr(file: FileId, text: &str, base_offset: usize) -> (Option<Expr>, Vec<Diagnostic>) {
    let mut diagnostics = Vec::new();
    if let Some(diagnostic) = nesting_error(file, text, base_offset, codes::E0004) {
        diagnostics.push(diagnostic);
        return (None, diagnostics);
    }
    pest::set_error_detail(true);
    match PulseParser::parse(Rule::expr_input, text) {
        Ok(mut pairs) => {
            let input = pairs.next().expect("expr_input always produces one pair");
            let expr_pair = input
                .into_inner()
                .find(|pair| pair.as_rule() == Rule::expr)
                .expect("expr_input contains an expression");
            let mut cx = ExprCx { file, base: base_offset, syntax_code: codes::E0004, diagnostics: &mut diagnostics };
            // Recoverable mistakes (`=`, `AND`, bad escapes) still give the intended tree.
            let expr = convert_expr(&mut cx, expr_pair);
            (Some(expr), diagnostics)
        }
        Err(error) => {
            diagnostics.push(pest_error_to_diagnostic(
                &error,
                text,
                file,
                base_offset,
                codes::E0004,
                SyntaxContext::Expression,
            ));
            (None, diagnostics)
        }
    }
}

/// State shared by the conversions: where spans point and where diagnostics go.
pub(crate) struct ExprCx<'d> {
    pub file: FileId,
    /// Added to every pest position (the offset of the parsed text in its file).
    pub base: usize,
    /// The code for syntax problems found during conversion (bad escapes): E0002 or E0004.
    pub syntax_code: Code,
    pub diagnostics: &'d mut Vec<Diagnostic>,
}

impl ExprCx<'_> {
    /// The file span of a pest span, without the trailing blanks and comments pest includes
    /// when a rule ends in a repetition.
    pub fn span(&self, span: pest::Span<'_>) -> Span {
        let len = trimmed_len(span.as_str());
        Span::new(self.file, self.base + span.start(), self.base + span.start() + len)
    }

    fn error_expr(&self, span: Span) -> Expr {
        Expr { kind: ExprKind::Error, span }
    }
}

/// The length of `text` without trailing whitespace and `//` comments.
pub(crate) fn trimmed_len(text: &str) -> usize {
    let ends_blank = text.ends_with(|c: char| c.is_whitespace());
    if !ends_blank && !text.contains("//") {
        return text.len();
    }
    crate::pulse::lexer::pieces(text)
        .into_iter()
        .rev()
        .find_map(|piece| match piece {
            crate::pulse::lexer::Piece::Comment(_) => None,
            crate::pulse::lexer::Piece::Char(_, ch) if ch.is_whitespace() => None,
            crate::pulse::lexer::Piece::Char(idx, ch) => Some(idx + ch.len_utf8()),
            crate::pulse::lexer::Piece::Str { range, .. } => Some(range.end),
        })
        .unwrap_or(0)
}

/// Converts an `expr` pair (or any of its sub-rules) to an `Expr`.
pub(crate) fn convert_expr(cx: &mut ExprCx<'_>, pair: Pair<'_, Rule>) -> Expr {
    let span = cx.span(pair.as_span());
    match pair.as_rule() {
        Rule::expr | Rule::and_expr | Rule::sum_expr | Rule::product => convert_left_assoc(cx, pair),
        Rule::cmp_expr => convert_comparison(cx, pair),
        Rule::unary => convert_unary(cx, pair),
        Rule::number => convert_number(cx, pair.as_str(), span),
        Rule::string => {
            let text = convert_string(cx, pair);
            Expr { kind: ExprKind::Str(text.node), span }
        }
        Rule::true_lit => Expr { kind: ExprKind::Bool(true), span },
        Rule::false_lit => Expr { kind: ExprKind::Bool(false), span },
        Rule::null_lit => Expr { kind: ExprKind::Null, span },
        Rule::array => {
            let items = pair.into_inner().map(|item| convert_expr(cx, item)).collect();
            Expr { kind: ExprKind::Array(items), span }
        }
        Rule::call => {
            let mut inner = pair.into_inner();
            let name_pair = inner.next().expect("a call starts with its name");
            let name = Spanned::new(name_pair.as_str().to_string(), cx.span(name_pair.as_span()));
            let args = inner.map(|arg| convert_expr(cx, arg)).collect();
            Expr { kind: ExprKind::Call { name, args }, span }
        }
        Rule::path => convert_path(cx, pair),
        _ => cx.error_expr(span),
    }
}

/// `a.b.c` as a path expression.
pub(crate) fn convert_path(cx: &mut ExprCx<'_>, pair: Pair<'_, Rule>) -> Expr {
    let span = cx.span(pair.as_span());
    let segments = pair
        .into_inner()
        .map(|segment| Spanned::new(segment.as_str().to_string(), cx.span(segment.as_span())))
        .collect();
    Expr { kind: ExprKind::Path(segments), span }
}

fn binary_op(cx: &mut ExprCx<'_>, pair: &Pair<'_, Rule>) -> BinaryOp {
    let op_span = cx.span(pair.as_span());
    let inner = pair.clone().into_inner().next();
    let text = pair.as_str().trim_end();
    if let Some(inner) = inner {
        let word = inner.as_str();
        match inner.as_rule() {
            Rule::sql_or => {
                cx.diagnostics.push(sql_keyword(op_span, word, "||"));
                return BinaryOp::Or;
            }
            Rule::sql_and => {
                cx.diagnostics.push(sql_keyword(op_span, word, "&&"));
                return BinaryOp::And;
            }
            Rule::bad_or => {
                cx.diagnostics.push(single_char_logic(op_span, "|", "||", "logical or"));
                return BinaryOp::Or;
            }
            Rule::bad_and => {
                cx.diagnostics.push(single_char_logic(op_span, "&", "&&", "logical and"));
                return BinaryOp::And;
            }
            Rule::sql_ne => {
                cx.diagnostics.push(sql_keyword(op_span, word, "!="));
                return BinaryOp::Ne;
            }
            Rule::sql_in => {
                cx.diagnostics.push(sql_keyword(op_span, word, "in"));
                return BinaryOp::In;
            }
            Rule::in_op => return BinaryOp::In,
            Rule::bad_eq => {
                cx.diagnostics.push(
                    Diagnostic::new(codes::E0005, "`=` is not a comparison operator")
                        .primary(op_span, "`=` used where `==` was meant")
                        .help("use `==` to compare values"),
                );
                return BinaryOp::Eq;
            }
            _ => {}
        }
    }
    match text {
        "||" => BinaryOp::Or,
        "&&" => BinaryOp::And,
        "==" => BinaryOp::Eq,
        "!=" => BinaryOp::Ne,
        "<" => BinaryOp::Lt,
        "<=" => BinaryOp::Le,
        ">" => BinaryOp::Gt,
        ">=" => BinaryOp::Ge,
        "+" => BinaryOp::Add,
        "-" => BinaryOp::Sub,
        "*" => BinaryOp::Mul,
        "/" => BinaryOp::Div,
        _ => BinaryOp::Rem,
    }
}

fn sql_keyword(span: Span, word: &str, replacement: &str) -> Diagnostic {
    Diagnostic::new(codes::E0006, format!("`{word}` is not an operator in Pulse expressions"))
        .primary(span, "SQL-style keyword")
        .help(format!("use `{replacement}` instead of `{word}`"))
}

fn single_char_logic(span: Span, found: &str, replacement: &str, meaning: &str) -> Diagnostic {
    Diagnostic::new(codes::E0004, format!("`{found}` is not an operator"))
        .primary(span, format!("expected `{replacement}` here"))
        .help(format!("use `{replacement}` for {meaning}"))
}

fn too_long(cx: &mut ExprCx<'_>, span: Span) -> Expr {
    cx.diagnostics.push(
        Diagnostic::new(cx.syntax_code, "expression is too long")
            .primary(span, format!("more than {MAX_CHAIN} operators in a row"))
            .help("split the condition over several nodes"),
    );
    cx.error_expr(span)
}

/// `x op y op z` folded to the left.
fn convert_left_assoc(cx: &mut ExprCx<'_>, pair: Pair<'_, Rule>) -> Expr {
    let span = cx.span(pair.as_span());
    let mut inner = pair.into_inner();
    let first = inner.next().expect("an operator chain has a first operand");
    let mut lhs = convert_expr(cx, first);
    let mut n_ops = 0;
    while let Some(op_pair) = inner.next() {
        n_ops += 1;
        if n_ops > MAX_CHAIN {
            return too_long(cx, span);
        }
        let op_span = cx.span(op_pair.as_span());
        let op = binary_op(cx, &op_pair);
        let Some(rhs_pair) = inner.next() else { break };
        let rhs = convert_expr(cx, rhs_pair);
        let span = lhs.span.to(rhs.span);
        lhs = Expr { kind: ExprKind::Binary { op, op_span, lhs: Box::new(lhs), rhs: Box::new(rhs) }, span };
    }
    lhs
}

fn convert_comparison(cx: &mut ExprCx<'_>, pair: Pair<'_, Rule>) -> Expr {
    let mut inner = pair.into_inner();
    let lhs = convert_expr(cx, inner.next().expect("a comparison has a left operand"));
    let Some(op_pair) = inner.next() else { return lhs };
    let rhs_pair = inner.next().expect("a comparison operator has a right operand");
    if op_pair.as_rule() == Rule::match_op {
        let pattern_span = cx.span(rhs_pair.as_span());
        let pattern = convert_string(cx, rhs_pair);
        let span = lhs.span.to(pattern_span);
        return Expr {
            kind: ExprKind::Match { lhs: Box::new(lhs), pattern: Spanned::new(pattern.node, pattern_span) },
            span,
        };
    }
    let op_span = cx.span(op_pair.as_span());
    let op = binary_op(cx, &op_pair);
    let rhs = convert_expr(cx, rhs_pair);
    let span = lhs.span.to(rhs.span);
    Expr { kind: ExprKind::Binary { op, op_span, lhs: Box::new(lhs), rhs: Box::new(rhs) }, span }
}

fn convert_unary(cx: &mut ExprCx<'_>, pair: Pair<'_, Rule>) -> Expr {
    let span = cx.span(pair.as_span());
    let mut ops = Vec::new();
    let mut operand = None;
    for child in pair.into_inner() {
        if child.as_rule() == Rule::prefix_op {
            ops.push(child);
        } else {
            operand = Some(child);
        }
    }
    if ops.len() > MAX_CHAIN {
        return too_long(cx, span);
    }
    let operand = operand.expect("a unary expression has an operand");
    // A minus directly in front of a number is part of the literal, so `-5` is `Int(-5)` (and
    // `-9223372036854775808` fits).
    let mut expr = if operand.as_rule() == Rule::number && ops.last().is_some_and(|op| op.as_str().trim_end() == "-") {
        let minus = ops.pop().expect("checked above");
        let literal_span = cx.span(minus.as_span()).to(cx.span(operand.as_span()));
        convert_number(cx, &format!("-{}", operand.as_str()), literal_span)
    } else {
        convert_expr(cx, operand)
    };
    for op_pair in ops.into_iter().rev() {
        let op_span = cx.span(op_pair.as_span());
        let op = match op_pair.as_str().trim_end() {
            "-" => UnaryOp::Neg,
            "!" => UnaryOp::Not,
            _ => {
                let word = cx_text(&op_pair);
                cx.diagnostics.push(sql_keyword(op_span, &word, "!"));
                UnaryOp::Not
            }
        };
        let span = op_span.to(expr.span);
        expr = Expr { kind: ExprKind::Unary { op, operand: Box::new(expr) }, span };
    }
    expr
}

fn cx_text(pair: &Pair<'_, Rule>) -> String {
    pair.as_str().trim_end().to_string()
}

fn convert_number(cx: &mut ExprCx<'_>, text: &str, span: Span) -> Expr {
    let is_float = text.contains(['.', 'e', 'E']);
    if !is_float {
        if let Ok(value) = text.parse::<i64>() {
            return Expr { kind: ExprKind::Int(value), span };
        }
        cx.diagnostics.push(
            Diagnostic::new(codes::E0109, format!("integer `{text}` does not fit in 64 bits"))
                .primary(span, "integer too large")
                .note("integers range from -9223372036854775808 to 9223372036854775807")
                .help(format!("write it as a float: `{text}.0`")),
        );
        return cx.error_expr(span);
    }
    match text.parse::<f64>() {
        Ok(value) if value.is_finite() => Expr { kind: ExprKind::Float(value), span },
        _ => {
            cx.diagnostics.push(
                Diagnostic::new(codes::E0109, format!("number `{text}` is out of range"))
                    .primary(span, "not a finite 64-bit float"),
            );
            cx.error_expr(span)
        }
    }
}

/// Decodes a `string` pair (double- or single-quoted, JSON escapes plus `\'`), reporting bad
/// escapes with the span of the escape.
pub(crate) fn convert_string(cx: &mut ExprCx<'_>, pair: Pair<'_, Rule>) -> Spanned<String> {
    let span = cx.span(pair.as_span());
    let raw = pair.as_str();
    let start = span.start as usize;
    let (decoded, errors) = unescape(raw);
    for (offset, len, message) in errors {
        let escape_span = Span::new(cx.file, start + offset, start + offset + len);
        cx.diagnostics.push(
            Diagnostic::new(cx.syntax_code, message)
                .primary(escape_span, "invalid escape")
                .help("valid escapes are `\\\"` `\\'` `\\\\` `\\/` `\\b` `\\f` `\\n` `\\r` `\\t` `\\uXXXX`"),
        );
    }
    Spanned::new(decoded, span)
}

/// Decodes a quoted string literal (quotes included). Returns the text and, for every bad
/// escape, its byte offset in `raw`, its length and a message.
pub(crate) fn unescape(raw: &str) -> (String, Vec<(usize, usize, String)>) {
    let body = if raw.len() >= 2 { &raw[1..raw.len() - 1] } else { "" };
    let mut out = String::with_capacity(body.len());
    let mut errors = Vec::new();
    let mut chars = body.char_indices().peekable();
    while let Some((idx, ch)) = chars.next() {
        if ch != '\\' {
            out.push(ch);
            continue;
        }
        let Some((_, escape)) = chars.next() else {
            errors.push((idx + 1, 1, "string ends in a lone `\\`".to_string()));
            break;
        };
        match escape {
            '"' => out.push('"'),
            '\'' => out.push('\''),
            '\\' => out.push('\\'),
            '/' => out.push('/'),
            'b' => out.push('\u{8}'),
            'f' => out.push('\u{c}'),
            'n' => out.push('\n'),
            'r' => out.push('\r'),
            't' => out.push('\t'),
            'u' => {
                let (code, len) = read_hex4(&body[idx + 2..]);
                let Some(high) = code else {
                    errors.push((idx + 1, 2 + len, "invalid `\\u` escape: expected four hex digits".to_string()));
                    continue;
                };
                for _ in 0..4 {
                    chars.next();
                }
                if (0xD800..0xDC00).contains(&high) {
                    // A high surrogate must be followed by `\u` and a low surrogate.
                    let rest = &body[idx + 6..];
                    let low = rest.strip_prefix("\\u").and_then(|tail| read_hex4(tail).0);
                    match low {
                        Some(low) if (0xDC00..0xE000).contains(&low) => {
                            for _ in 0..6 {
                                chars.next();
                            }
                            let code = 0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00);
                            out.push(char::from_u32(code).unwrap_or('\u{FFFD}'));
                        }
                        _ => errors.push((idx + 1, 6, "unpaired surrogate in `\\u` escape".to_string())),
                    }
                } else if (0xDC00..0xE000).contains(&high) {
                    errors.push((idx + 1, 6, "unpaired surrogate in `\\u` escape".to_string()));
                } else {
                    out.push(char::from_u32(high).unwrap_or('\u{FFFD}'));
                }
            }
            other => {
                errors.push((idx + 1, 1 + other.len_utf8(), format!("unknown escape `\\{other}` in string")));
            }
        }
    }
    (out, errors)
}

/// Up to four hex digits at the start of `text`: the value if there are four, and how many
/// characters were hex digits.
fn read_hex4(text: &str) -> (Option<u32>, usize) {
    let digits: String = text.chars().take(4).take_while(char::is_ascii_hexdigit).collect();
    if digits.len() == 4 {
        (u32::from_str_radix(&digits, 16).ok(), 4)
    } else {
        (None, digits.len())
    }
}
