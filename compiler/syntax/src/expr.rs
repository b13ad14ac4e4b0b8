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
/// The deepest expression tree accepted, counted in tree levels: every prefix `!`/`-`, every
/// binary operator of a chain (chains fold to the left, so `a || b || c` is two levels above its
/// operands), every comparison, call and array, and the leaf itself. Brackets add no level of
/// their own but nest the levels inside them. The checker holds JSON condition objects to the
/// same limit, counting the whole tree they build with the expression strings inside them, so
/// one limit holds for every expression that reaches codegen and rustc.
///
/// Real conditions are a few levels deep; the deepest in the examples is under ten. 128 levels
/// keep the recursive stages (conversion, checking, codegen, prettyplease, rustc) far from
/// their stack limits, including on the 2 MiB stacks of non-main threads.
pub const MAX_EXPR_DEPTH: usize = 128;

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
            let mut cx = ExprCx::new(file, base_offset, codes::E0004, &mut diagnostics);
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
    /// How many tree levels lie above the node being converted (see `MAX_EXPR_DEPTH`).
    depth: usize,
    /// Whether the depth limit was already reported, so one hostile expression gives one error.
    reported_too_deep: bool,
}

impl<'d> ExprCx<'d> {
    pub fn new(file: FileId, base: usize, syntax_code: Code, diagnostics: &'d mut Vec<Diagnostic>) -> ExprCx<'d> {
        ExprCx { file, base, syntax_code, diagnostics, depth: 0, reported_too_deep: false }
    }

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
    if cx.depth >= MAX_EXPR_DEPTH {
        return too_deep(cx, span, "the expression is nested too deeply here");
    }
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
            cx.depth += 1;
            let items = pair.into_inner().map(|item| convert_expr(cx, item)).collect();
            cx.depth -= 1;
            Expr { kind: ExprKind::Array(items), span }
        }
        Rule::call => {
            let mut inner = pair.into_inner();
            let name_pair = inner.next().expect("a call starts with its name");
            let name = Spanned::new(name_pair.as_str().to_string(), cx.span(name_pair.as_span()));
            cx.depth += 1;
            let args = inner.map(|arg| convert_expr(cx, arg)).collect();
            cx.depth -= 1;
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
                        .help("use `==` to compare values")
                        .suggest(op_span, "=="),
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
        .suggest(span, replacement)
}

fn single_char_logic(span: Span, found: &str, replacement: &str, meaning: &str) -> Diagnostic {
    Diagnostic::new(codes::E0004, format!("`{found}` is not an operator"))
        .primary(span, format!("expected `{replacement}` here"))
        .help(format!("use `{replacement}` for {meaning}"))
        .suggest(span, replacement)
}

/// Reports E0007 (once per expression source) and stands in an error node for the subtree, which
/// is never converted, so no deep tree is ever built.
fn too_deep(cx: &mut ExprCx<'_>, span: Span, label: &str) -> Expr {
    if !cx.reported_too_deep {
        cx.reported_too_deep = true;
        cx.diagnostics.push(too_deep_diagnostic(span, label));
    }
    cx.error_expr(span)
}

/// The E0007 diagnostic, shared with the checker, which applies the same limit to the trees that
/// JSON condition objects build.
pub fn too_deep_diagnostic(span: Span, label: &str) -> Diagnostic {
    Diagnostic::new(codes::E0007, "expression is nested too deeply")
        .primary(span, label.to_string())
        .note(format!(
            "an expression may be at most {MAX_EXPR_DEPTH} levels deep, counting each `!` or `-`, each operator of a \
             chain such as `a || b || c`, and each comparison, call and array"
        ))
        .help("split the condition over several nodes, or list alternatives with `in [...]`")
}

/// `x op y op z` folded to the left: the first operand sits one level below every operator of
/// the chain, the operand after the i-th operator below all operators from the i-th on.
fn convert_left_assoc(cx: &mut ExprCx<'_>, pair: Pair<'_, Rule>) -> Expr {
    let span = cx.span(pair.as_span());
    let parts: Vec<Pair<'_, Rule>> = pair.into_inner().collect();
    let n_ops = parts.len() / 2;
    if n_ops > 0 && cx.depth + n_ops >= MAX_EXPR_DEPTH {
        return too_deep(cx, span, &format!("a chain of {n_ops} operators here"));
    }
    let outer_depth = cx.depth;
    let mut parts = parts.into_iter();
    let first = parts.next().expect("an operator chain has a first operand");
    cx.depth = outer_depth + n_ops;
    let mut lhs = convert_expr(cx, first);
    let mut op_idx = 0;
    while let Some(op_pair) = parts.next() {
        op_idx += 1;
        let op_span = cx.span(op_pair.as_span());
        let op = binary_op(cx, &op_pair);
        let Some(rhs_pair) = parts.next() else { break };
        cx.depth = outer_depth + n_ops - op_idx + 1;
        let rhs = convert_expr(cx, rhs_pair);
        let span = lhs.span.to(rhs.span);
        lhs = Expr { kind: ExprKind::Binary { op, op_span, lhs: Box::new(lhs), rhs: Box::new(rhs) }, span };
    }
    cx.depth = outer_depth;
    lhs
}

fn convert_comparison(cx: &mut ExprCx<'_>, pair: Pair<'_, Rule>) -> Expr {
    let mut inner = pair.into_inner();
    let lhs_pair = inner.next().expect("a comparison has a left operand");
    let Some(op_pair) = inner.next() else { return convert_expr(cx, lhs_pair) };
    let rhs_pair = inner.next().expect("a comparison operator has a right operand");
    cx.depth += 1;
    let expr = convert_binary_comparison(cx, lhs_pair, op_pair, rhs_pair);
    cx.depth -= 1;
    expr
}

fn convert_binary_comparison(
    cx: &mut ExprCx<'_>,
    lhs_pair: Pair<'_, Rule>,
    op_pair: Pair<'_, Rule>,
    rhs_pair: Pair<'_, Rule>,
) -> Expr {
    let lhs = convert_expr(cx, lhs_pair);
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
    let operand = operand.expect("a unary expression has an operand");
    // The minus of a negative literal is part of the literal, not a level of its own.
    let folds_minus = operand.as_rule() == Rule::number && ops.last().is_some_and(|op| op.as_str().trim_end() == "-");
    let n_levels = ops.len() - usize::from(folds_minus);
    if n_levels > 0 && cx.depth + n_levels >= MAX_EXPR_DEPTH {
        return too_deep(cx, span, &format!("{n_levels} prefix operators in a row here"));
    }
    // A minus directly in front of a number is part of the literal, so `-5` is `Int(-5)` (and
    // `-9223372036854775808` fits).
    let mut expr = if folds_minus {
        let minus = ops.pop().expect("checked above");
        let literal_span = cx.span(minus.as_span()).to(cx.span(operand.as_span()));
        convert_number(cx, &format!("-{}", operand.as_str()), literal_span)
    } else {
        cx.depth += n_levels;
        let expr = convert_expr(cx, operand);
        cx.depth -= n_levels;
        expr
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
