//! `parse_expr` (G22): precedence, associativity, literals, spans with a base offset, and the
//! E0004 / E0005 / E0006 diagnostics.

use pulse_syntax::ast::{BinaryOp, ExprKind};
use pulse_syntax::codes;
use pulse_syntax::expr_print::print_expr;
use pulse_syntax::{parse_expr, Diagnostic, FileId};

/// Parses and prints with full parentheses, to show the tree's shape.
fn shape(text: &str) -> String {
    let (expr, diagnostics) = parse_expr(FileId(0), text, 0);
    assert!(diagnostics.is_empty(), "{text}: {diagnostics:#?}");
    fully_parenthesized(&expr.expect("an expression"))
}

fn fully_parenthesized(expr: &pulse_syntax::ast::Expr) -> String {
    match &expr.kind {
        ExprKind::Binary { op, lhs, rhs, .. } => {
            format!("({} {} {})", fully_parenthesized(lhs), op.symbol(), fully_parenthesized(rhs))
        }
        ExprKind::Unary { op, operand } => {
            let symbol = match op {
                pulse_syntax::ast::UnaryOp::Not => "!",
                pulse_syntax::ast::UnaryOp::Neg => "-",
            };
            format!("({symbol}{})", fully_parenthesized(operand))
        }
        ExprKind::Match { lhs, pattern } => format!("({} =~ {:?})", fully_parenthesized(lhs), pattern.node),
        _ => print_expr(expr),
    }
}

fn canonical(text: &str) -> String {
    let (expr, diagnostics) = parse_expr(FileId(0), text, 0);
    assert!(diagnostics.is_empty(), "{text}: {diagnostics:#?}");
    print_expr(&expr.expect("an expression"))
}

fn diagnostics(text: &str) -> Vec<Diagnostic> {
    parse_expr(FileId(0), text, 0).1
}

#[test]
fn precedence_levels() {
    assert_eq!(shape("a || b && c"), "(a || (b && c))");
    assert_eq!(shape("a && b || c"), "((a && b) || c)");
    assert_eq!(shape("a == 1 && b != 2"), "((a == 1) && (b != 2))");
    assert_eq!(shape("a + 1 < b * 2"), "((a + 1) < (b * 2))");
    assert_eq!(shape("1 + 2 * 3"), "(1 + (2 * 3))");
    assert_eq!(shape("-a * b"), "((-a) * b)");
    assert_eq!(shape("!a == b"), "((!a) == b)");
    assert_eq!(shape("!(a == b)"), "(!(a == b))");
    assert_eq!(shape("x in [1, 2] || y =~ \"^a\""), "((x in [1, 2]) || (y =~ \"^a\"))");
    assert_eq!(shape("a + b in xs"), "((a + b) in xs)");
}

#[test]
fn left_associativity() {
    assert_eq!(shape("a - b - c"), "((a - b) - c)");
    assert_eq!(shape("a / b * c % d"), "(((a / b) * c) % d)");
    assert_eq!(shape("a || b || c"), "((a || b) || c)");
    assert_eq!(shape("a && b && c"), "((a && b) && c)");
    assert_eq!(shape("!!a"), "(!(!a))");
}

#[test]
fn literals_and_primaries() {
    let (expr, _) = parse_expr(FileId(0), "42", 0);
    assert_eq!(expr.map(|e| e.kind), Some(ExprKind::Int(42)));
    let (expr, _) = parse_expr(FileId(0), "4.0", 0);
    assert_eq!(expr.map(|e| e.kind), Some(ExprKind::Float(4.0)));
    let (expr, _) = parse_expr(FileId(0), "1e3", 0);
    assert_eq!(expr.map(|e| e.kind), Some(ExprKind::Float(1000.0)));
    let (expr, _) = parse_expr(FileId(0), "-9223372036854775808", 0);
    assert_eq!(expr.map(|e| e.kind), Some(ExprKind::Int(i64::MIN)));
    let (expr, _) = parse_expr(FileId(0), r#"'it\'s \"q\" \u00e9\ud83d\ude00'"#, 0);
    assert_eq!(expr.map(|e| e.kind), Some(ExprKind::Str("it's \"q\" é😀".into())));
    assert_eq!(canonical("true && false || null == x"), "true && false || null == x");
    assert_eq!(canonical("f(x, y.z, [1, 2.5])"), "f(x, y.z, [1, 2.5])");
    assert_eq!(canonical("  a   ==\n  'b'  "), "a == \"b\"");
    assert_eq!(canonical("g()"), "g()");
    assert_eq!(canonical("a - -3"), "a - -3");
}

#[test]
fn printing_round_trips() {
    for text in [
        "a || b && c",
        "(a || b) && c",
        "!(a == b)",
        "a - (b - c)",
        "-(a + b) * c",
        "contains(name, \"x\") && !starts_with(a, \"b\")",
        "if(x > 1, \"big\", \"small\")",
        "(a == b) == c",
    ] {
        let printed = canonical(text);
        assert_eq!(canonical(&printed), printed, "{text}");
        assert_eq!(shape(&printed), shape(text), "{text}");
    }
}

#[test]
fn reserved_words_are_not_names() {
    assert!(diagnostics("in == 1").iter().any(Diagnostic::is_error));
    assert!(diagnostics("x.true").iter().any(Diagnostic::is_error));
    assert_eq!(canonical("inside == 1"), "inside == 1");
    assert_eq!(canonical("truthy"), "truthy");
}

#[test]
fn spans_are_offset_by_the_base() {
    let text = "userId != null";
    let (expr, diagnostics) = parse_expr(FileId(7), text, 100);
    assert!(diagnostics.is_empty());
    let expr = expr.expect("an expression");
    assert_eq!((expr.span.file, expr.span.start, expr.span.end), (FileId(7), 100, 114));
    let ExprKind::Binary { op, op_span, lhs, .. } = &expr.kind else { panic!("binary") };
    assert_eq!(*op, BinaryOp::Ne);
    assert_eq!((op_span.start, op_span.end), (107, 109));
    assert_eq!((lhs.span.start, lhs.span.end), (100, 106));
}

#[test]
fn single_equals_is_e0005_and_still_parses() {
    let (expr, diagnostics) = parse_expr(FileId(0), "event_name = \"login\"", 10);
    assert_eq!(diagnostics.len(), 1);
    assert_eq!(diagnostics[0].code, codes::E0005);
    assert_eq!(diagnostics[0].help.as_deref(), Some("use `==` to compare values"));
    let span = diagnostics[0].primary_span().expect("span");
    assert_eq!((span.start, span.end), (21, 22));
    assert_eq!(expr.map(|e| print_expr(&e)).as_deref(), Some("event_name == \"login\""));
}

#[test]
fn sql_keywords_are_e0006() {
    for (text, keyword, help) in [
        ("a AND b", "AND", "use `&&` instead of `AND`"),
        ("a and b", "and", "use `&&` instead of `and`"),
        ("a OR b", "OR", "use `||` instead of `OR`"),
        ("a or b", "or", "use `||` instead of `or`"),
        ("NOT a", "NOT", "use `!` instead of `NOT`"),
        ("a <> b", "<>", "use `!=` instead of `<>`"),
        ("a IN [1]", "IN", "use `in` instead of `IN`"),
    ] {
        let found = diagnostics(text);
        assert_eq!(found.len(), 1, "{text}");
        assert_eq!(found[0].code, codes::E0006, "{text}");
        assert_eq!(found[0].message, format!("`{keyword}` is not an operator in Pulse expressions"));
        assert_eq!(found[0].help.as_deref(), Some(help));
        assert_eq!(&text[found[0].primary_span().expect("span").range()], keyword);
    }
}

#[test]
fn syntax_errors_are_e0004() {
    for (text, message, at) in [
        ("a ==", "expected an expression, found end of input", 4),
        ("a == b == c", "comparison operators cannot be chained", 7),
        ("a.", "expected a field name after `.`, found end of input", 2),
        ("(a", "unclosed `(`", 0),
        ("a & b", "`&` is not an operator", 2),
        ("\"abc", "unterminated string", 0),
        ("f(x,)", "expected an expression, found `)`", 4),
    ] {
        let found = diagnostics(text);
        assert_eq!(found.len(), 1, "{text}: {found:#?}");
        assert_eq!(found[0].code, codes::E0004, "{text}");
        assert_eq!(found[0].message, message, "{text}");
        assert_eq!(found[0].primary_span().map(|span| span.start), Some(at), "{text}");
    }
}

#[test]
fn hostile_inputs_do_not_overflow() {
    let deep = format!("{}a{}", "(".repeat(10_000), ")".repeat(10_000));
    assert_eq!(diagnostics(&deep)[0].message, "brackets are nested too deeply");
    let long = vec!["a"; 5_000].join(" + ");
    assert_eq!(diagnostics(&long)[0].code, codes::E0007);
    let nots = format!("{}a", "!".repeat(5_000));
    assert_eq!(diagnostics(&nots)[0].code, codes::E0007);
    // Short runs inside brackets: each run and the bracket depth are small, the tree is not.
    let mut mixed = "a".to_string();
    for _ in 0..30 {
        mixed = format!("{}({mixed})", "!".repeat(30));
    }
    let found = diagnostics(&mixed);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(found[0].code, codes::E0007);
}

#[test]
fn the_depth_limit_counts_every_level_of_the_tree() {
    use pulse_syntax::expr::MAX_EXPR_DEPTH;
    let at_limit = format!("{}a", "!".repeat(MAX_EXPR_DEPTH - 1));
    assert!(diagnostics(&at_limit).is_empty());
    let over = format!("{}a", "!".repeat(MAX_EXPR_DEPTH));
    assert_eq!(diagnostics(&over)[0].code, codes::E0007);
    let chain_at_limit = vec!["a"; MAX_EXPR_DEPTH].join(" || ");
    assert!(diagnostics(&chain_at_limit).is_empty());
    let chain_over = vec!["a"; MAX_EXPR_DEPTH + 1].join(" || ");
    assert_eq!(diagnostics(&chain_over)[0].code, codes::E0007);
    // A negative literal is one leaf, not a `-` above a number.
    let negative_at_limit = format!("{}-1", "!".repeat(MAX_EXPR_DEPTH - 1));
    assert!(diagnostics(&negative_at_limit).is_empty());
}
