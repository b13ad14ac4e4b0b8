//! Prints an expression in the canonical `.pulse` / G22 syntax, with the fewest parentheses that
//! keep its structure. Used by `pulsec fmt`, `pulsec convert` and diagnostics.

use crate::ast::{BinaryOp, Expr, ExprKind, UnaryOp};

pub fn print_expr(expr: &Expr) -> String {
    let mut out = String::new();
    write_expr(&mut out, expr, 0);
    out
}

/// Binding strength: `||` 1, `&&` 2, comparisons 3, `+ -` 4, `* / %` 5, unary 6, primary 7.
fn precedence(expr: &Expr) -> u8 {
    match &expr.kind {
        ExprKind::Binary { op, .. } => binary_precedence(*op),
        ExprKind::Match { .. } => 3,
        ExprKind::Unary { .. } => 6,
        ExprKind::Int(value) if *value < 0 => 6,
        ExprKind::Float(value) if value.is_sign_negative() => 6,
        _ => 7,
    }
}

fn binary_precedence(op: BinaryOp) -> u8 {
    match op {
        BinaryOp::Or => 1,
        BinaryOp::And => 2,
        BinaryOp::Eq | BinaryOp::Ne | BinaryOp::Lt | BinaryOp::Le | BinaryOp::Gt | BinaryOp::Ge | BinaryOp::In => 3,
        BinaryOp::Add | BinaryOp::Sub => 4,
        BinaryOp::Mul | BinaryOp::Div | BinaryOp::Rem => 5,
    }
}

fn write_child(out: &mut String, expr: &Expr, min_precedence: u8) {
    if precedence(expr) < min_precedence {
        out.push('(');
        write_expr(out, expr, 0);
        out.push(')');
    } else {
        write_expr(out, expr, min_precedence);
    }
}

fn write_expr(out: &mut String, expr: &Expr, _context: u8) {
    match &expr.kind {
        ExprKind::Null => out.push_str("null"),
        ExprKind::Bool(value) => out.push_str(if *value { "true" } else { "false" }),
        ExprKind::Int(value) => out.push_str(&value.to_string()),
        ExprKind::Float(value) => out.push_str(&format_float(*value)),
        ExprKind::Str(text) => write_string(out, text),
        ExprKind::Array(items) => {
            out.push('[');
            for (idx, item) in items.iter().enumerate() {
                if idx > 0 {
                    out.push_str(", ");
                }
                write_expr(out, item, 0);
            }
            out.push(']');
        }
        ExprKind::Path(segments) => {
            for (idx, segment) in segments.iter().enumerate() {
                if idx > 0 {
                    out.push('.');
                }
                out.push_str(&segment.node);
            }
        }
        ExprKind::Call { name, args } => {
            out.push_str(&name.node);
            out.push('(');
            for (idx, arg) in args.iter().enumerate() {
                if idx > 0 {
                    out.push_str(", ");
                }
                write_expr(out, arg, 0);
            }
            out.push(')');
        }
        ExprKind::Unary { op, operand } => {
            out.push(match op {
                UnaryOp::Not => '!',
                UnaryOp::Neg => '-',
            });
            write_child(out, operand, 6);
        }
        ExprKind::Binary { op, lhs, rhs, .. } => {
            let own = binary_precedence(*op);
            // Comparisons do not chain, so both sides of a comparison must bind tighter.
            let (lhs_min, rhs_min) = if own == 3 { (4, 4) } else { (own, own + 1) };
            write_child(out, lhs, lhs_min);
            out.push(' ');
            out.push_str(op.symbol());
            out.push(' ');
            write_child(out, rhs, rhs_min);
        }
        ExprKind::Match { lhs, pattern } => {
            write_child(out, lhs, 4);
            out.push_str(" =~ ");
            write_string(out, &pattern.node);
        }
        ExprKind::Error => out.push_str("<error>"),
    }
}

/// A float always shows a fraction or an exponent, so it reads back as a float.
pub fn format_float(value: f64) -> String {
    let text = format!("{value:?}");
    if text.contains(['.', 'e', 'E']) || !value.is_finite() {
        text
    } else {
        format!("{text}.0")
    }
}

/// A double-quoted string with JSON escapes.
pub fn write_string(out: &mut String, text: &str) {
    out.push('"');
    for ch in text.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            ch if (ch as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", ch as u32)),
            ch => out.push(ch),
        }
    }
    out.push('"');
}
