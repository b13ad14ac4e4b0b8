//! Expressions and conditions: name resolution against the record type flowing into a node,
//! static types, and the JSON condition objects of §3 (G20, G21), which lower to the same IR as
//! the equivalent expression.

use crate::values::{self, list};
use crate::Cx;
use pulse_ir::{BinaryOp, Expr, ExprKind, FieldType, Function, Path, RecordType, Type};
use pulse_syntax::ast::{self, Member, Number, Value, ValueKind};
use pulse_syntax::codes::{E0106, E0205, E0206, E0208, E0301, E0302, E0303, E0306, E0601};
use pulse_syntax::diagnostic::did_you_mean;
use pulse_syntax::expr::{too_deep_diagnostic, MAX_EXPR_DEPTH};
use pulse_syntax::{Diagnostic, Span};

/// What names mean inside an expression.
#[derive(Clone, Copy)]
pub struct Scope<'a> {
    pub record: &'a RecordType,
    /// Inside a segment rule: the counter names, the only names allowed (G42).
    pub counters: Option<&'a [String]>,
}

fn typed(kind: ExprKind, ty: Type) -> Expr {
    Expr { kind, ty }
}

fn any_error() -> Expr {
    typed(ExprKind::Null, Type::Any)
}

/// A condition: a boolean, a JSON condition object, an expression string, or a `.pulse` expression.
pub fn condition(cx: &mut Cx, value: &Value, scope: Scope<'_>, what: &str) -> Option<Expr> {
    let expr = match &value.kind {
        ValueKind::Bool(flag) => typed(ExprKind::Bool(*flag), Type::Bool),
        ValueKind::Object(members) => json_condition(cx, members, value.span, scope)?,
        ValueKind::String(text) => {
            let parsed = parse_string_expr(cx, text, value.span)?;
            lower(cx, &parsed, scope)
        }
        ValueKind::Expr(expr) => lower(cx, expr, scope),
        _ => {
            cx.report(
                values::wrong_type(value, "a condition", what)
                    .help("write an expression such as `event_name == \"login_success\"` or a condition object"),
            );
            return None;
        }
    };
    require_boolean(cx, &expr, value.span, what);
    Some(expr)
}

/// A map `set` value (G38): an expression (a JSON string is an expression source), or a literal.
pub fn set_value(cx: &mut Cx, value: &Value, scope: Scope<'_>) -> Option<Expr> {
    match &value.kind {
        ValueKind::String(text) => {
            let parsed = parse_string_expr(cx, text, value.span)?;
            Some(lower(cx, &parsed, scope))
        }
        ValueKind::Expr(expr) => Some(lower(cx, expr, scope)),
        _ => literal(cx, value),
    }
}

fn require_boolean(cx: &mut Cx, expr: &Expr, span: Span, what: &str) {
    if !matches!(expr.ty, Type::Bool | Type::Any) {
        cx.report(
            Diagnostic::new(E0303, format!("{what} is not a boolean"))
                .primary(span, format!("this is {}", a_type(&expr.ty)))
                .note("only `true` passes a condition; any other value counts as false")
                .help("compare the value, e.g. `field == \"value\"` or `field != null`"),
        );
    }
}

/// Parses an expression held in a string; spans land inside the string when it has no escapes.
fn parse_string_expr(cx: &mut Cx, text: &str, span: Span) -> Option<ast::Expr> {
    let unescaped = span.len() == text.len() + 2;
    let base = if unescaped { span.start as usize + 1 } else { span.start as usize };
    let (parsed, mut diagnostics) = pulse_syntax::expr::parse_expr(span.file, text, base);
    if !unescaped {
        for diagnostic in &mut diagnostics {
            for label in &mut diagnostic.labels {
                label.span = span;
            }
        }
    }
    let failed = diagnostics.iter().any(Diagnostic::is_error);
    cx.diags.extend(diagnostics);
    if failed {
        None
    } else {
        parsed
    }
}

/// A JSON literal as a typed constant.
pub fn literal(cx: &mut Cx, value: &Value) -> Option<Expr> {
    Some(match &value.kind {
        ValueKind::Null => typed(ExprKind::Null, Type::Null),
        ValueKind::Bool(flag) => typed(ExprKind::Bool(*flag), Type::Bool),
        ValueKind::Number(Number::Int(number)) => typed(ExprKind::Int(*number), Type::Int),
        ValueKind::Number(Number::Float(number)) => typed(ExprKind::Float(*number), Type::Float),
        ValueKind::String(text) => typed(ExprKind::Str(text.clone()), Type::String),
        ValueKind::Array(items) => {
            let items: Option<Vec<Expr>> = items.iter().map(|item| literal(cx, item)).collect();
            typed(ExprKind::Array(items?), Type::Array)
        }
        ValueKind::Duration(duration) => typed(ExprKind::Int(duration.millis as i64), Type::Int),
        ValueKind::Expr(_) | ValueKind::Object(_) => {
            cx.report(values::wrong_type(value, "a literal value", "this value"));
            return None;
        }
    })
}

/// The number of levels of an expression tree (a leaf is one). The trees measured here were built
/// within `MAX_EXPR_DEPTH`, so the recursion is bounded.
fn depth(expr: &Expr) -> usize {
    1 + match &expr.kind {
        ExprKind::Null
        | ExprKind::Bool(_)
        | ExprKind::Int(_)
        | ExprKind::Float(_)
        | ExprKind::Str(_)
        | ExprKind::Field(_)
        | ExprKind::Counter(_) => 0,
        ExprKind::Array(items) | ExprKind::Call(_, items) => items.iter().map(depth).max().unwrap_or(0),
        ExprKind::Not(inner)
        | ExprKind::Neg(inner)
        | ExprKind::IsNull(inner)
        | ExprKind::IsNotNull(inner)
        | ExprKind::Match(inner, _) => depth(inner),
        ExprKind::Binary(_, lhs, rhs) => depth(lhs).max(depth(rhs)),
    }
}

const LEAF_OPERATORS: &[&str] = &[
    "equals",
    "notEquals",
    "in",
    "gt",
    "gte",
    "lt",
    "lte",
    "regex",
    "contains",
    "startsWith",
    "endsWith",
    "isNull",
    "isNotNull",
];

fn json_condition(cx: &mut Cx, members: &[Member], span: Span, scope: Scope<'_>) -> Option<Expr> {
    for combinator in ["and", "or", "not"] {
        let Some(member) = members.iter().find(|member| member.key.node == combinator) else { continue };
        if members.len() != 1 {
            cx.report(
                Diagnostic::new(E0106, format!("`{combinator}` must be the only key of its object"))
                    .primary(member.key.span, format!("`{combinator}` here"))
                    .secondary(span, "this object has other keys too")
                    .help(format!("wrap the other keys in their own condition inside `{combinator}`")),
            );
            return None;
        }
        if combinator == "not" {
            let inner = condition(cx, &member.value, scope, "the `not` condition")?;
            if depth(&inner) + 1 > MAX_EXPR_DEPTH {
                cx.report(too_deep_diagnostic(member.key.span, "this `not` nests the condition too deeply"));
                return None;
            }
            return Some(typed(ExprKind::Not(Box::new(inner)), Type::Bool));
        }
        let items = values::array(cx, &member.value, &format!("`{combinator}`"))?;
        let op = if combinator == "and" { BinaryOp::And } else { BinaryOp::Or };
        let mut lowered = Vec::new();
        for item in items {
            lowered.push(condition(cx, item, scope, &format!("an `{combinator}` element"))?);
        }
        // The elements fold to the left, as `a && b && c` does: the first element sits below
        // every operator, the i-th below all operators from the i-th on. Measure before folding
        // so that no tree deeper than the limit is ever built.
        let n_ops = lowered.len().saturating_sub(1);
        let folded_depth = lowered
            .iter()
            .enumerate()
            .map(|(idx, item)| depth(item) + if idx == 0 { n_ops } else { n_ops + 1 - idx })
            .max()
            .unwrap_or(1);
        if folded_depth > MAX_EXPR_DEPTH {
            let label = format!("`{combinator}` of {} conditions nests too deeply", lowered.len());
            cx.report(too_deep_diagnostic(member.key.span, &label));
            return None;
        }
        let mut iter = lowered.into_iter();
        let Some(first) = iter.next() else {
            return Some(typed(ExprKind::Bool(op == BinaryOp::And), Type::Bool));
        };
        return Some(
            iter.fold(first, |acc, next| typed(ExprKind::Binary(op, Box::new(acc), Box::new(next)), Type::Bool)),
        );
    }

    let mut field = None;
    let mut operators = Vec::new();
    for member in members {
        match member.key.node.as_str() {
            "field" => field = Some(&member.value),
            name if LEAF_OPERATORS.contains(&name) => operators.push(member),
            name => {
                let mut diagnostic = Diagnostic::new(E0106, format!("unknown condition key `{name}`"))
                    .primary(member.key.span, "not a condition operator")
                    .note(format!("operators: {}; combinators: `and`, `or`, `not`", list(LEAF_OPERATORS)));
                let candidates = LEAF_OPERATORS.iter().copied().chain(["field", "and", "or", "not"]);
                if let Some(suggestion) = did_you_mean(name, candidates) {
                    diagnostic = diagnostic.did_you_mean(member.key.span, suggestion);
                }
                cx.report(diagnostic);
                return None;
            }
        }
    }
    let Some(field_value) = field else {
        cx.report(
            Diagnostic::new(E0106, "condition has no `field`")
                .primary(span, "a condition needs `field` and one operator")
                .help("write e.g. `{\"field\": \"event_name\", \"equals\": \"login_success\"}`"),
        );
        return None;
    };
    let operator = match operators.as_slice() {
        [operator] => *operator,
        [] => {
            cx.report(
                Diagnostic::new(E0106, "condition has no operator")
                    .primary(span, "add one operator such as `equals`")
                    .note(format!("operators: {}", list(LEAF_OPERATORS))),
            );
            return None;
        }
        [first, second, ..] => {
            cx.report(
                Diagnostic::new(E0106, "condition has more than one operator")
                    .primary(second.key.span, "second operator")
                    .secondary(first.key.span, "first operator")
                    .note("two operators in one object are not an AND")
                    .help("use `{\"and\": [{...}, {...}]}` with one operator per condition"),
            );
            return None;
        }
    };
    let path = values::path(cx, field_value, "`field`")?;
    let subject = field_expr(cx, &path, field_value.span, scope);
    let operand = &operator.value;
    let binary = |cx: &mut Cx, op: BinaryOp, subject: Expr| -> Option<Expr> {
        let rhs = literal(cx, operand)?;
        Some(binary_expr(cx, op, subject, rhs, field_value.span, operand.span, operator.key.span))
    };
    let flag = |cx: &mut Cx| -> Option<bool> {
        match operand.kind {
            ValueKind::Bool(flag) => Some(flag),
            _ => {
                cx.report(
                    Diagnostic::new(E0106, format!("`{}` takes `true` or `false`", operator.key.node))
                        .primary(operand.span, format!("found {}", operand.describe())),
                );
                None
            }
        }
    };
    let call = |cx: &mut Cx, function: Function, subject: Expr| -> Option<Expr> {
        let rhs = literal(cx, operand)?;
        Some(typed(ExprKind::Call(function, vec![subject, rhs]), Type::Bool))
    };
    match operator.key.node.as_str() {
        "equals" => binary(cx, BinaryOp::Eq, subject),
        "notEquals" => binary(cx, BinaryOp::Ne, subject),
        "gt" => binary(cx, BinaryOp::Gt, subject),
        "gte" => binary(cx, BinaryOp::Ge, subject),
        "lt" => binary(cx, BinaryOp::Lt, subject),
        "lte" => binary(cx, BinaryOp::Le, subject),
        "in" => {
            if !matches!(operand.kind, ValueKind::Array(_)) {
                cx.report(values::wrong_type(operand, "an array", "`in`"));
                return None;
            }
            binary(cx, BinaryOp::In, subject)
        }
        "regex" => {
            let pattern = values::string(cx, operand, "`regex`")?;
            regex_expr(cx, subject, &pattern, operand.span)
        }
        "contains" => call(cx, Function::Contains, subject),
        "startsWith" => call(cx, Function::StartsWith, subject),
        "endsWith" => call(cx, Function::EndsWith, subject),
        "isNull" => {
            let flag = flag(cx)?;
            Some(null_test(subject, flag))
        }
        "isNotNull" => {
            let flag = flag(cx)?;
            Some(null_test(subject, !flag))
        }
        _ => None,
    }
}

fn null_test(subject: Expr, is_null: bool) -> Expr {
    let kind = if is_null { ExprKind::IsNull(Box::new(subject)) } else { ExprKind::IsNotNull(Box::new(subject)) };
    typed(kind, Type::Bool)
}

fn regex_expr(cx: &mut Cx, subject: Expr, pattern: &str, span: Span) -> Option<Expr> {
    if let Err(error) = regex::Regex::new(pattern) {
        let detail = error.to_string();
        let last_line = detail.lines().last().unwrap_or("").trim().trim_start_matches("error: ").to_string();
        let mut diagnostic = Diagnostic::new(E0601, format!("invalid regular expression `{pattern}`"))
            .primary(span, last_line)
            .note("regexes use the syntax of the Rust `regex` crate and match anywhere in the string");
        if pattern.contains("(?=") || pattern.contains("(?!") || pattern.contains("(?<") {
            diagnostic = diagnostic.help("lookaround is not supported; split the test into several conditions");
        } else if pattern.contains("\\1") {
            diagnostic = diagnostic.help("backreferences are not supported");
        }
        cx.report(diagnostic);
        return None;
    }
    if !matches!(subject.ty, Type::String | Type::Any) {
        cx.report(
            Diagnostic::new(E0301, format!("`=~` needs a string, found `{}`", subject.ty.name()))
                .primary(span, "regex applied to a non-string")
                .note("a regex never matches a non-string value"),
        );
    }
    Some(typed(ExprKind::Match(Box::new(subject), pattern.to_string()), Type::Bool))
}

/// A name read by an expression or by a condition object's `field`: a counter inside a segment
/// rule (G42: the only names a rule may use), else a field of the record in scope.
pub fn field_expr(cx: &mut Cx, path: &Path, span: Span, scope: Scope<'_>) -> Expr {
    if let Some(counters) = scope.counters {
        return counter_expr(cx, path, span, counters);
    }
    match field_type(cx, path, span, scope) {
        Some(field) => typed(ExprKind::Field(path.clone()), field.ty),
        None => any_error(),
    }
}

fn counter_expr(cx: &mut Cx, path: &Path, span: Span, counters: &[String]) -> Expr {
    if path.0.len() == 1 && counters.contains(&path.0[0]) {
        return typed(ExprKind::Counter(path.0[0].clone()), Type::Int);
    }
    let mut diagnostic = Diagnostic::new(E0208, format!("`{}` is not a counter of this segmentation", path.dotted()))
        .primary(span, "unknown counter")
        .note(format!(
            "segment rules may use only counter names: {}",
            counters.iter().map(|name| format!("`{name}`")).collect::<Vec<_>>().join(", ")
        ));
    if let Some(suggestion) = did_you_mean(&path.dotted(), counters.iter().map(String::as_str)) {
        diagnostic = diagnostic.did_you_mean(span, suggestion);
    }
    cx.report(diagnostic);
    any_error()
}

/// Resolves a field path against the record type; reports an unknown field.
pub fn field_type(cx: &mut Cx, path: &Path, span: Span, scope: Scope<'_>) -> Option<FieldType> {
    if let Some(found) = scope.record.lookup(&path.0) {
        return Some(found);
    }
    // Find the deepest known prefix to suggest names at the right level.
    let mut record = scope.record;
    let mut known = Vec::new();
    for segment in &path.0 {
        match record.fields.get(segment) {
            Some(FieldType { ty: Type::Object(Some(inner)), .. }) => {
                known.push(segment.as_str());
                record = inner;
            }
            Some(field) => {
                cx.report(
                    Diagnostic::new(
                        E0205,
                        format!("`{}` is a `{}`, not an object", known_join(&known, segment), field.ty.name()),
                    )
                    .primary(span, "cannot look inside this field")
                    .note("dots descend into objects only"),
                );
                return None;
            }
            None => break,
        }
    }
    let missing = &path.0[known.len()];
    let owner = if known.is_empty() { "the event".to_string() } else { format!("`{}`", known.join(".")) };
    let mut diagnostic = Diagnostic::new(E0205, format!("unknown field `{}` on {owner}", path.dotted()))
        .primary(span, "no such field")
        .note(format!(
            "known fields: {}",
            record.order.iter().map(|name| format!("`{name}`")).collect::<Vec<_>>().join(", ")
        ));
    if let Some(suggestion) = did_you_mean(missing, record.order.iter().map(String::as_str)) {
        // The edit rewrites the whole path, whose span the diagnostic has.
        let mut fixed: Vec<&str> = path.0.iter().map(String::as_str).collect();
        fixed[known.len()] = suggestion;
        diagnostic = diagnostic.help(format!("did you mean `{suggestion}`?")).suggest(span, fixed.join("."));
    } else {
        diagnostic = diagnostic.help(format!("declare `{missing}` in the event schema"));
    }
    cx.report(diagnostic);
    None
}

fn known_join(known: &[&str], segment: &str) -> String {
    known.iter().copied().chain([segment]).collect::<Vec<_>>().join(".")
}

/// Lowers a parsed expression, typing it against the scope.
pub fn lower(cx: &mut Cx, expr: &ast::Expr, scope: Scope<'_>) -> Expr {
    use ast::ExprKind as A;
    match &expr.kind {
        A::Null => typed(ExprKind::Null, Type::Null),
        A::Bool(flag) => typed(ExprKind::Bool(*flag), Type::Bool),
        A::Int(number) => typed(ExprKind::Int(*number), Type::Int),
        A::Float(number) => typed(ExprKind::Float(*number), Type::Float),
        A::Str(text) => typed(ExprKind::Str(text.clone()), Type::String),
        A::Array(items) => {
            typed(ExprKind::Array(items.iter().map(|item| lower(cx, item, scope)).collect()), Type::Array)
        }
        A::Path(segments) => {
            let path = Path(segments.iter().map(|segment| segment.node.clone()).collect());
            field_expr(cx, &path, expr.span, scope)
        }
        A::Call { name, args } => call(cx, name, args, expr.span, scope),
        A::Unary { op: ast::UnaryOp::Not, operand } => {
            let operand = lower(cx, operand, scope);
            typed(ExprKind::Not(Box::new(operand)), Type::Bool)
        }
        A::Unary { op: ast::UnaryOp::Neg, operand } => {
            let span = operand.span;
            let operand = lower(cx, operand, scope);
            if !matches!(operand.ty, Type::Int | Type::Float | Type::Any) {
                cx.report(
                    Diagnostic::new(E0306, format!("cannot negate a `{}`", operand.ty.name()))
                        .primary(span, "not a number")
                        .note("`-` on a non-number gives null"),
                );
            }
            // Fold negative literals so `-5` is the constant it reads as.
            match operand.kind {
                ExprKind::Int(number) if number != i64::MIN => typed(ExprKind::Int(-number), Type::Int),
                ExprKind::Float(number) => typed(ExprKind::Float(-number), Type::Float),
                _ => {
                    let ty = operand.ty.clone();
                    typed(ExprKind::Neg(Box::new(operand)), ty)
                }
            }
        }
        A::Binary { op, op_span, lhs, rhs } => {
            let (lhs_span, rhs_span) = (lhs.span, rhs.span);
            let lhs = lower(cx, lhs, scope);
            let rhs = lower(cx, rhs, scope);
            binary_expr(cx, map_op(*op), lhs, rhs, lhs_span, rhs_span, *op_span)
        }
        A::Match { lhs, pattern } => {
            let subject = lower(cx, lhs, scope);
            regex_expr(cx, subject, &pattern.node, pattern.span).unwrap_or_else(any_error)
        }
        A::Error => any_error(),
    }
}

fn map_op(op: ast::BinaryOp) -> BinaryOp {
    match op {
        ast::BinaryOp::Or => BinaryOp::Or,
        ast::BinaryOp::And => BinaryOp::And,
        ast::BinaryOp::Eq => BinaryOp::Eq,
        ast::BinaryOp::Ne => BinaryOp::Ne,
        ast::BinaryOp::Lt => BinaryOp::Lt,
        ast::BinaryOp::Le => BinaryOp::Le,
        ast::BinaryOp::Gt => BinaryOp::Gt,
        ast::BinaryOp::Ge => BinaryOp::Ge,
        ast::BinaryOp::In => BinaryOp::In,
        ast::BinaryOp::Add => BinaryOp::Add,
        ast::BinaryOp::Sub => BinaryOp::Sub,
        ast::BinaryOp::Mul => BinaryOp::Mul,
        ast::BinaryOp::Div => BinaryOp::Div,
        ast::BinaryOp::Rem => BinaryOp::Rem,
    }
}

/// Type classes for comparison compatibility.
#[derive(PartialEq)]
enum Class {
    Unknown,
    Number,
    Text,
    Bool,
    Object,
    Array,
    Null,
}

fn class(ty: &Type) -> Class {
    match ty {
        Type::Any | Type::Timestamp => Class::Unknown,
        Type::Int | Type::Float => Class::Number,
        Type::String => Class::Text,
        Type::Bool => Class::Bool,
        Type::Object(_) => Class::Object,
        Type::Array => Class::Array,
        Type::Null => Class::Null,
    }
}

fn binary_expr(cx: &mut Cx, op: BinaryOp, lhs: Expr, rhs: Expr, lhs_span: Span, rhs_span: Span, op_span: Span) -> Expr {
    let symbol = op.symbol();
    match op {
        BinaryOp::And | BinaryOp::Or => {
            for (side, span) in [(&lhs, lhs_span), (&rhs, rhs_span)] {
                require_boolean(cx, side, span, &format!("an operand of `{symbol}`"));
            }
            typed(ExprKind::Binary(op, Box::new(lhs), Box::new(rhs)), Type::Bool)
        }
        BinaryOp::Eq | BinaryOp::Ne => {
            // G14: comparing with the null literal is a null test.
            if matches!(rhs.kind, ExprKind::Null) || matches!(lhs.kind, ExprKind::Null) {
                let subject = if matches!(rhs.kind, ExprKind::Null) { lhs } else { rhs };
                return null_test(subject, op == BinaryOp::Eq);
            }
            let (left, right) = (class(&lhs.ty), class(&rhs.ty));
            if left != Class::Unknown && right != Class::Unknown && left != right {
                let mut diagnostic =
                    Diagnostic::new(E0301, format!("`{symbol}` between `{}` and `{}`", lhs.ty.name(), rhs.ty.name()))
                        .primary(
                            op_span,
                            if op == BinaryOp::Eq { "this is always false" } else { "this is always true" },
                        )
                        .secondary(lhs_span, format!("this is {}", a_type(&lhs.ty)))
                        .secondary(rhs_span, format!("this is {}", a_type(&rhs.ty)))
                        .note("values of different types are never equal; there are no implicit conversions");
                if let (Class::Text, ExprKind::Int(number)) = (&left, &rhs.kind) {
                    diagnostic = diagnostic.help(format!("compare with a string: `\"{number}\"`"));
                }
                cx.report(diagnostic);
            }
            typed(ExprKind::Binary(op, Box::new(lhs), Box::new(rhs)), Type::Bool)
        }
        BinaryOp::Lt | BinaryOp::Le | BinaryOp::Gt | BinaryOp::Ge => {
            let (left, right) = (class(&lhs.ty), class(&rhs.ty));
            let orderable = |class: &Class| matches!(class, Class::Unknown | Class::Number | Class::Text);
            let mismatch = left != Class::Unknown && right != Class::Unknown && left != right;
            if !orderable(&left) || !orderable(&right) || mismatch {
                cx.report(
                    Diagnostic::new(E0301, format!("`{symbol}` between `{}` and `{}`", lhs.ty.name(), rhs.ty.name()))
                        .primary(op_span, "this is always false")
                        .secondary(lhs_span, format!("this is {}", a_type(&lhs.ty)))
                        .secondary(rhs_span, format!("this is {}", a_type(&rhs.ty)))
                        .note("`<`, `<=`, `>` and `>=` compare two numbers or two strings"),
                );
            }
            typed(ExprKind::Binary(op, Box::new(lhs), Box::new(rhs)), Type::Bool)
        }
        BinaryOp::In => {
            if !matches!(rhs.ty, Type::Array | Type::Any) {
                cx.report(
                    Diagnostic::new(E0301, format!("`in` needs an array on the right, found `{}`", rhs.ty.name()))
                        .primary(rhs_span, "not an array")
                        .note("`x in v` is false when `v` is not an array")
                        .help("write a list: `x in [\"a\", \"b\"]`"),
                );
            }
            typed(ExprKind::Binary(op, Box::new(lhs), Box::new(rhs)), Type::Bool)
        }
        BinaryOp::Add | BinaryOp::Sub | BinaryOp::Mul | BinaryOp::Div | BinaryOp::Rem => {
            let (left, right) = (class(&lhs.ty), class(&rhs.ty));
            let ty = match (&left, &right) {
                (Class::Text, Class::Text) if op == BinaryOp::Add => Type::String,
                (Class::Number, Class::Number) => {
                    if op != BinaryOp::Div && lhs.ty == Type::Int && rhs.ty == Type::Int {
                        Type::Int
                    } else {
                        Type::Float
                    }
                }
                (Class::Unknown, _) | (_, Class::Unknown) => Type::Any,
                _ => {
                    cx.report(
                        Diagnostic::new(
                            E0306,
                            format!("`{symbol}` cannot combine `{}` and `{}`", lhs.ty.name(), rhs.ty.name()),
                        )
                        .primary(op_span, "the result is always null")
                        .secondary(lhs_span, format!("this is {}", a_type(&lhs.ty)))
                        .secondary(rhs_span, format!("this is {}", a_type(&rhs.ty)))
                        .note("arithmetic takes numbers; `+` also joins two strings")
                        .help("convert first with `to_int`, `to_float` or `to_string`"),
                    );
                    Type::Any
                }
            };
            typed(ExprKind::Binary(op, Box::new(lhs), Box::new(rhs)), ty)
        }
    }
}

fn call(cx: &mut Cx, name: &pulse_syntax::Spanned<String>, args: &[ast::Expr], span: Span, scope: Scope<'_>) -> Expr {
    let Some(function) = Function::lookup(&name.node) else {
        let names: Vec<&str> = Function::ALL.iter().map(|(name, _)| *name).collect();
        let mut diagnostic =
            Diagnostic::new(E0206, format!("unknown function `{}`", name.node)).primary(name.span, "no such function");
        diagnostic = match did_you_mean(&name.node, names.iter().copied()) {
            Some(suggestion) => diagnostic.did_you_mean(name.span, suggestion),
            None => diagnostic.note(format!("functions: {}", list(&names))),
        };
        cx.report(diagnostic);
        for arg in args {
            lower(cx, arg, scope);
        }
        return any_error();
    };
    let lowered: Vec<Expr> = args.iter().map(|arg| lower(cx, arg, scope)).collect();
    let (min, max) = function.arity();
    if lowered.len() < min || max.is_some_and(|max| lowered.len() > max) {
        let expected = match max {
            Some(max) if max == min => format!("{min}"),
            Some(max) => format!("{min} to {max}"),
            None => format!("at least {min}"),
        };
        let noun = if max == Some(1) && min == 1 { "argument" } else { "arguments" };
        cx.report(
            Diagnostic::new(E0302, format!("`{}` takes {expected} {noun}, found {}", name.node, lowered.len()))
                .primary(span, "wrong number of arguments"),
        );
        return any_error();
    }
    let expect = |cx: &mut Cx, idx: usize, accepted: &[Type], label: &str| {
        let ty = &lowered[idx].ty;
        if *ty != Type::Any && !accepted.contains(ty) {
            cx.report(
                Diagnostic::new(E0302, format!("`{}` expects {label}, found `{}`", name.node, ty.name()))
                    .primary(args[idx].span, format!("this is {}", a_type(ty)))
                    .note("a wrongly typed argument makes the result null"),
            );
        }
    };
    let ty = match function {
        Function::Lower | Function::Upper => {
            expect(cx, 0, &[Type::String], "a string");
            Type::String
        }
        Function::Len => {
            expect(cx, 0, &[Type::String, Type::Array, Type::Object(None)], "a string, array or object");
            Type::Int
        }
        Function::Abs => {
            expect(cx, 0, &[Type::Int, Type::Float], "a number");
            lowered[0].ty.clone()
        }
        Function::Floor | Function::Ceil | Function::Round => {
            expect(cx, 0, &[Type::Int, Type::Float], "a number");
            Type::Int
        }
        Function::Min | Function::Max => {
            if lowered.iter().all(|arg| arg.ty == Type::Int) {
                Type::Int
            } else if lowered.iter().all(|arg| arg.ty.is_numeric()) {
                Type::Float
            } else {
                Type::Any
            }
        }
        Function::Concat | Function::ToString => Type::String,
        Function::Coalesce => {
            let first = lowered[0].ty.clone();
            if lowered.iter().all(|arg| arg.ty == first) {
                first
            } else {
                Type::Any
            }
        }
        Function::ToInt => Type::Int,
        Function::ToFloat => Type::Float,
        Function::Contains | Function::StartsWith | Function::EndsWith => Type::Bool,
        Function::If => {
            if lowered[1].ty == lowered[2].ty {
                lowered[1].ty.clone()
            } else {
                Type::Any
            }
        }
        Function::EventTime | Function::EntryTime => Type::Int,
    };
    typed(ExprKind::Call(function, lowered), ty)
}

/// "a `string`", "an `int`".
fn a_type(ty: &Type) -> String {
    let name = ty.name();
    let article = if matches!(name.as_bytes().first(), Some(b'a' | b'e' | b'i' | b'o' | b'u')) { "an" } else { "a" };
    format!("{article} `{name}`")
}
