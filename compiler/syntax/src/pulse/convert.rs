//! `Document` to surface tree, for `pulsec convert` (JSON -> `.pulse`). JSON idioms become
//! `.pulse` idioms: condition objects and condition strings become bare expressions, map `set`
//! strings are printed parsed, duration strings become duration literals, field-path strings
//! become bare paths, and lists of routes, counters, segments and aggregates use their sugar.
//! Whatever has no idiom is printed as the equivalent generic value, so the printed file always
//! lowers to an equivalent document.

use crate::ast::{self, BinaryOp, Document, Expr, ExprKind, Member, Number, UnaryOp};
use crate::expr::parse_expr;
use crate::pulse::lexer::TOP_LEVEL_KEYWORDS;
use crate::pulse::lower::positional_keys;
use crate::pulse::parse::duration_millis;
use crate::pulse::print::{is_ident, is_node_token};
use crate::pulse::tree::*;
use crate::span::{FileId, Span, Spanned};

/// Config keys whose string values are durations, wherever they appear in a node's config.
const DURATION_KEYS: &[&str] = &[
    "duration",
    "within",
    "bucket",
    "ttl",
    "allowedLateness",
    "maxOutOfOrderness",
    "maxFutureSkew",
    "idleTimeout",
    "timeout",
    "checkpointInterval",
];

fn span() -> Span {
    Span::default()
}

fn spanned(text: &str) -> Spanned<String> {
    Spanned::new(text.to_string(), span())
}

fn expr(kind: ExprKind) -> Expr {
    Expr { kind, span: span() }
}

fn expr_value(e: Expr) -> Value {
    // An array expression in value position reads back as a list of values.
    if let ExprKind::Array(items) = e.kind {
        return Value { span: span(), kind: ValueKind::List(items.into_iter().map(expr_value).collect()) };
    }
    Value { span: span(), kind: ValueKind::Expr(e) }
}

/// A field path as a path expression, when every segment is a name.
fn path_expr(text: &str) -> Option<Expr> {
    let segments: Vec<&str> = text.split('.').collect();
    let valid =
        segments.iter().all(|segment| is_ident(segment) && !matches!(*segment, "true" | "false" | "null" | "in"));
    valid.then(|| expr(ExprKind::Path(segments.iter().map(|segment| spanned(segment)).collect())))
}

/// A duration string as a duration literal.
fn duration_value(value: &ast::Value) -> Value {
    if let ast::ValueKind::String(text) = &value.kind {
        let digits_end = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(0);
        if digits_end > 0 {
            if let Some(millis) = duration_millis(text) {
                return Value {
                    span: span(),
                    kind: ValueKind::Duration(ast::DurationLit { millis, text: text.clone() }),
                };
            }
        }
    }
    generic(value)
}

/// A field-path string as a bare path.
fn path_value(value: &ast::Value) -> Value {
    match &value.kind {
        ast::ValueKind::String(text) => match path_expr(text) {
            Some(path) => expr_value(path),
            None => generic(value),
        },
        _ => generic(value),
    }
}

/// A JSON literal as an expression (`None` for objects, which expressions cannot hold).
fn literal_expr(value: &ast::Value) -> Option<Expr> {
    Some(expr(match &value.kind {
        ast::ValueKind::Null => ExprKind::Null,
        ast::ValueKind::Bool(value) => ExprKind::Bool(*value),
        ast::ValueKind::Number(Number::Int(value)) => ExprKind::Int(*value),
        ast::ValueKind::Number(Number::Float(value)) if value.is_finite() => ExprKind::Float(*value),
        ast::ValueKind::String(text) => ExprKind::Str(text.clone()),
        ast::ValueKind::Array(items) => ExprKind::Array(items.iter().map(literal_expr).collect::<Option<_>>()?),
        ast::ValueKind::Expr(inner) => return Some(inner.clone()),
        _ => return None,
    }))
}

/// Any value, kept as it is.
fn generic(value: &ast::Value) -> Value {
    let kind = match &value.kind {
        ast::ValueKind::Array(items) => ValueKind::List(items.iter().map(generic).collect()),
        ast::ValueKind::Object(members) => ValueKind::Object(
            members
                .iter()
                .map(|member| Pair { key: spanned(&member.key.node), value: generic(&member.value) })
                .collect(),
        ),
        ast::ValueKind::Duration(duration) => ValueKind::Duration(duration.clone()),
        ast::ValueKind::Expr(inner) => return expr_value(inner.clone()),
        ast::ValueKind::Number(Number::Float(value)) if !value.is_finite() => ValueKind::Expr(expr(ExprKind::Null)),
        _ => return expr_value(literal_expr(value).expect("scalars are literals")),
    };
    Value { span: span(), kind }
}

/// A test body's value: the times of test forms (`"$at": "5m"`, `"$clock"`, `"$nothing"`'s
/// `from` and `until`) written as duration strings become duration literals (`at 5m`).
fn test_value(value: &ast::Value, key: Option<&str>) -> Value {
    match (&value.kind, key) {
        (_, Some("$at" | "$clock" | "from" | "until")) => duration_value(value),
        (ast::ValueKind::Array(items), _) => {
            Value { span: span(), kind: ValueKind::List(items.iter().map(|item| test_value(item, None)).collect()) }
        }
        (ast::ValueKind::Object(members), _) => {
            let is_nothing = key == Some("$nothing");
            let pairs = members
                .iter()
                .map(|member| {
                    let key = member.key.node.as_str();
                    // `from` and `until` are times only inside `$nothing`; elsewhere they are fields.
                    let inner_key = if key.starts_with('$') || is_nothing { Some(key) } else { None };
                    let value = match inner_key {
                        Some(_) => test_value(&member.value, inner_key),
                        None if matches!(member.value.kind, ast::ValueKind::Array(_) | ast::ValueKind::Object(_)) => {
                            test_value(&member.value, None)
                        }
                        None => generic(&member.value),
                    };
                    Pair { key: spanned(key), value }
                })
                .collect();
            Value { span: span(), kind: ValueKind::Object(pairs) }
        }
        _ => generic(value),
    }
}

fn binary(op: BinaryOp, lhs: Expr, rhs: Expr) -> Expr {
    expr(ExprKind::Binary { op, op_span: span(), lhs: Box::new(lhs), rhs: Box::new(rhs) })
}

/// A JSON condition (object, string or bool, G20/G21) as an expression.
fn condition_expr(value: &ast::Value) -> Option<Expr> {
    match &value.kind {
        ast::ValueKind::Bool(value) => Some(expr(ExprKind::Bool(*value))),
        ast::ValueKind::String(text) => {
            let (parsed, diagnostics) = parse_expr(FileId::default(), text, 0);
            if diagnostics.iter().any(|diagnostic| diagnostic.is_error()) {
                return None;
            }
            parsed
        }
        ast::ValueKind::Expr(inner) => Some(inner.clone()),
        ast::ValueKind::Object(members) => condition_object(members),
        _ => None,
    }
}

fn condition_object(members: &[Member]) -> Option<Expr> {
    if let [only] = members {
        let logic = match only.key.node.as_str() {
            "and" => Some((BinaryOp::And, true)),
            "or" => Some((BinaryOp::Or, false)),
            _ => None,
        };
        if let Some((op, empty)) = logic {
            let ast::ValueKind::Array(items) = &only.value.kind else { return None };
            let mut operands = items.iter().map(condition_expr).collect::<Option<Vec<_>>>()?.into_iter();
            let Some(first) = operands.next() else { return Some(expr(ExprKind::Bool(empty))) };
            return Some(operands.fold(first, |lhs, rhs| binary(op, lhs, rhs)));
        }
        if only.key.node == "not" {
            let operand = condition_expr(&only.value)?;
            return Some(expr(ExprKind::Unary { op: UnaryOp::Not, operand: Box::new(operand) }));
        }
        return None;
    }
    let [first, second] = members else { return None };
    let (field, (op, operand)) = if first.key.node == "field" {
        (&first.value, (second.key.node.as_str(), &second.value))
    } else if second.key.node == "field" {
        (&second.value, (first.key.node.as_str(), &first.value))
    } else {
        return None;
    };
    let ast::ValueKind::String(field) = &field.kind else { return None };
    let path = path_expr(field)?;
    let null_check = |is_null: bool, path: Expr| {
        binary(if is_null { BinaryOp::Eq } else { BinaryOp::Ne }, path, expr(ExprKind::Null))
    };
    let call =
        |name: &str, path: Expr, operand: Expr| expr(ExprKind::Call { name: spanned(name), args: vec![path, operand] });
    Some(match op {
        "equals" => binary(BinaryOp::Eq, path, literal_expr(operand)?),
        "notEquals" => binary(BinaryOp::Ne, path, literal_expr(operand)?),
        "in" => match operand.kind {
            ast::ValueKind::Array(_) => binary(BinaryOp::In, path, literal_expr(operand)?),
            _ => return None,
        },
        "gt" => binary(BinaryOp::Gt, path, literal_expr(operand)?),
        "gte" => binary(BinaryOp::Ge, path, literal_expr(operand)?),
        "lt" => binary(BinaryOp::Lt, path, literal_expr(operand)?),
        "lte" => binary(BinaryOp::Le, path, literal_expr(operand)?),
        "regex" => match &operand.kind {
            ast::ValueKind::String(pattern) => expr(ExprKind::Match { lhs: Box::new(path), pattern: spanned(pattern) }),
            _ => return None,
        },
        "contains" => call("contains", path, literal_expr(operand)?),
        "startsWith" => call("starts_with", path, literal_expr(operand)?),
        "endsWith" => call("ends_with", path, literal_expr(operand)?),
        "isNull" => match operand.kind {
            ast::ValueKind::Bool(flag) => null_check(flag, path),
            _ => return None,
        },
        "isNotNull" => match operand.kind {
            ast::ValueKind::Bool(flag) => null_check(!flag, path),
            _ => return None,
        },
        _ => return None,
    })
}

/// A condition as a bare expression when it has one, else as the generic value.
fn condition_value(value: &ast::Value) -> Value {
    match condition_expr(value) {
        Some(cond) if !is_plain_literal(&cond) || matches!(cond.kind, ExprKind::Bool(_)) => expr_value(cond),
        _ => generic(value),
    }
}

/// Literals other than bools would lower to plain JSON values, which as conditions mean
/// something else (a string condition is expression source), so they stay as written.
fn is_plain_literal(e: &Expr) -> bool {
    matches!(e.kind, ExprKind::Null | ExprKind::Bool(_) | ExprKind::Int(_) | ExprKind::Float(_) | ExprKind::Str(_))
}

/// A map's `set` object: a JSON string is expression source and prints parsed (bare); any
/// other JSON value is a literal and prints as that literal.
fn set_value(value: &ast::Value) -> Value {
    let ast::ValueKind::Object(members) = &value.kind else { return generic(value) };
    let pairs = members
        .iter()
        .map(|member| {
            let value = match &member.value.kind {
                ast::ValueKind::String(text) => {
                    let (parsed, diagnostics) = parse_expr(FileId::default(), text, 0);
                    match parsed {
                        Some(parsed) if !diagnostics.iter().any(|diagnostic| diagnostic.is_error()) => {
                            expr_value(parsed)
                        }
                        _ => generic(&member.value),
                    }
                }
                _ => generic(&member.value),
            };
            Pair { key: spanned(&member.key.node), value }
        })
        .collect();
    Value { span: span(), kind: ValueKind::Object(pairs) }
}

fn object_members(value: &ast::Value) -> &[Member] {
    value.as_object().unwrap_or(&[])
}

fn member_value<'a>(members: &'a [Member], key: &str) -> Option<&'a ast::Value> {
    members.iter().find(|member| member.key.node == key).map(|member| &member.value)
}

fn has_exactly(members: &[Member], required: &[&str], optional: &[&str]) -> bool {
    required.iter().all(|key| members.iter().filter(|member| member.key.node == *key).count() == 1)
        && members
            .iter()
            .all(|member| required.contains(&member.key.node.as_str()) || optional.contains(&member.key.node.as_str()))
        && members.iter().filter(|member| optional.contains(&member.key.node.as_str())).count()
            == optional.iter().filter(|key| member_value(members, key).is_some()).count()
}

/// A string usable as a route, counter or segment name token.
fn name_token(value: Option<&ast::Value>) -> Option<Spanned<String>> {
    let text = value?.as_str()?;
    is_node_token(text).then(|| spanned(text))
}

/// The value of a config key, converted with the idiom for that key.
fn config_value(kind: &str, key: &str, value: &ast::Value) -> Value {
    let is_condition = key == "where"
        || (kind == "user-event-trigger" && (key == "start" || key == "cancel"))
        || (kind == "has-done-event" && key == "event");
    if is_condition {
        return condition_value(value);
    }
    if DURATION_KEYS.contains(&key) || (key == "window" && value.as_str().is_some()) {
        return duration_value(value);
    }
    if key == "since" && value.as_str() != Some("entry") {
        return duration_value(value);
    }
    match (kind, key) {
        (_, "keyBy" | "eventTime") => path_value(value),
        ("map", "set") => set_value(value),
        ("map", "remove" | "keep") => match &value.kind {
            ast::ValueKind::Array(items) => {
                Value { span: span(), kind: ValueKind::List(items.iter().map(path_value).collect()) }
            }
            _ => generic(value),
        },
        ("window-aggregate", "window") => window_value(value),
        (_, "circuitBreaker") => {
            object_with(value, |key, inner| if key == "resetAfter" { duration_value(inner) } else { generic(inner) })
        }
        _ => generic(value),
    }
}

fn object_with(value: &ast::Value, convert: impl Fn(&str, &ast::Value) -> Value) -> Value {
    let ast::ValueKind::Object(members) = &value.kind else { return generic(value) };
    let pairs = members
        .iter()
        .map(|member| Pair { key: spanned(&member.key.node), value: convert(&member.key.node, &member.value) })
        .collect();
    Value { span: span(), kind: ValueKind::Object(pairs) }
}

/// `{"tumbling": d}`, `{"sliding": {"size", "slide"}}`, `{"session": {"gap"}}` with durations.
fn window_value(value: &ast::Value) -> Value {
    object_with(value, |key, inner| match key {
        "tumbling" => duration_value(inner),
        "sliding" | "session" => object_with(inner, |_, leaf| duration_value(leaf)),
        _ => generic(inner),
    })
}

fn window_sugar(value: &ast::Value) -> Option<WindowSugar> {
    let [only] = value.as_object()? else { return None };
    let keyword = span();
    match only.key.node.as_str() {
        "tumbling" => Some(WindowSugar::Tumbling { keyword, size: duration_value(&only.value) }),
        "sliding" => {
            let members = only.value.as_object()?;
            if !has_exactly(members, &["size", "slide"], &[]) {
                return None;
            }
            Some(WindowSugar::Sliding {
                keyword,
                size: duration_value(member_value(members, "size")?),
                slide: duration_value(member_value(members, "slide")?),
            })
        }
        "session" => {
            let members = only.value.as_object()?;
            if !has_exactly(members, &["gap"], &[]) {
                return None;
            }
            Some(WindowSugar::Session { keyword, gap: duration_value(member_value(members, "gap")?) })
        }
        _ => None,
    }
}

/// Sugar entries for a list-valued key, or `None` when some element does not fit the sugar.
fn sugar_entries(kind: &str, key: &str, value: &ast::Value) -> Option<Vec<EntryKind>> {
    let ast::ValueKind::Array(items) = &value.kind else { return None };
    if items.is_empty() {
        return None;
    }
    let keyword = span();
    items
        .iter()
        .map(|item| {
            let members = item.as_object()?;
            match (kind, key) {
                ("splitter", "routes") if has_exactly(members, &["name", "where"], &[]) => Some(EntryKind::Route {
                    keyword,
                    name: name_token(member_value(members, "name"))?,
                    cond: condition_value(member_value(members, "where")?),
                }),
                ("segmentation", "counters") if has_exactly(members, &["name", "window"], &["where"]) => {
                    let name = member_value(members, "name")?.as_str()?;
                    if !is_ident(name) {
                        return None;
                    }
                    Some(EntryKind::Counter {
                        keyword,
                        name: spanned(name),
                        window: duration_value(member_value(members, "window")?),
                        cond: member_value(members, "where").map(condition_value),
                    })
                }
                ("segmentation", "segments") if has_exactly(members, &["name", "rule"], &[]) => {
                    Some(EntryKind::Segment {
                        keyword,
                        name: name_token(member_value(members, "name"))?,
                        rule: condition_value(member_value(members, "rule")?),
                    })
                }
                ("window-aggregate", "aggregates") if has_exactly(members, &["name", "fn"], &["field"]) => {
                    let func = member_value(members, "fn")?.as_str()?;
                    if !is_ident(func) || matches!(func, "true" | "false" | "null" | "in") {
                        return None;
                    }
                    let field = match member_value(members, "field") {
                        None => None,
                        Some(field) if field.as_str().is_some() => Some(path_value(field)),
                        Some(ast::Value {
                            kind: ast::ValueKind::Expr(Expr { kind: ExprKind::Path(_), .. }), ..
                        }) => member_value(members, "field").map(generic),
                        Some(_) => return None,
                    };
                    Some(EntryKind::Aggregate {
                        keyword,
                        name: name_token(member_value(members, "name"))?,
                        func: spanned(func),
                        field,
                    })
                }
                _ => None,
            }
        })
        .collect()
}

fn node_decl(decl: &ast::NodeDecl) -> NodeDecl {
    let kind = decl.kind.node.as_str();
    let members = object_members(&decl.config);
    let mut used = vec![false; members.len()];
    let count = |key: &str| members.iter().filter(|member| member.key.node == key).count();

    let mut args = None;
    if let Some(keys) = positional_keys(kind) {
        if keys.iter().all(|key| count(key) == 1) {
            let mut values = Vec::new();
            for key in keys {
                let idx = members.iter().position(|member| member.key.node == *key).expect("counted above");
                used[idx] = true;
                values.push(config_value(kind, key, &members[idx].value));
            }
            args = Some(Args { span: span(), values });
        }
    }
    let mut by = None;
    if count("keyBy") == 1 {
        let idx = members.iter().position(|member| member.key.node == "keyBy").expect("counted above");
        let key = path_value(&members[idx].value);
        let is_path_or_string = match &key.kind {
            ValueKind::Expr(e) => matches!(e.kind, ExprKind::Path(_) | ExprKind::Str(_)),
            _ => false,
        };
        if is_path_or_string {
            used[idx] = true;
            by = Some((span(), key));
        }
    }
    let mut entries = Vec::new();
    for (idx, member) in members.iter().enumerate() {
        if used[idx] {
            continue;
        }
        let key = member.key.node.as_str();
        if count(key) == 1 {
            if let Some(sugar) = sugar_entries(kind, key, &member.value) {
                entries.extend(sugar.into_iter().map(|kind| Entry { span: span(), kind }));
                continue;
            }
            if kind == "window-aggregate" && key == "window" {
                if let Some(window) = window_sugar(&member.value) {
                    entries.push(Entry { span: span(), kind: EntryKind::Window { keyword: span(), window } });
                    continue;
                }
            }
        }
        let pair = Pair { key: spanned(key), value: config_value(kind, key, &member.value) };
        entries.push(Entry { span: span(), kind: EntryKind::Pair(pair) });
    }
    NodeDecl {
        span: span(),
        id: spanned(&decl.id.node),
        kind: spanned(kind),
        args,
        by,
        where_clause: None,
        block: (!entries.is_empty()).then(|| Block { span: span(), entries }),
    }
}

/// Event schema `{"fields": {...}}` as an `event` block, when every field fits.
fn event_fields(value: &ast::Value) -> Option<Fields> {
    let members = value.as_object()?;
    let fields = members
        .iter()
        .map(|member| {
            let (ty, nullable) = match &member.value.kind {
                ast::ValueKind::String(text) => {
                    let (name, nullable) = match text.strip_suffix('?') {
                        Some(name) => (name, true),
                        None => (text.as_str(), false),
                    };
                    if is_ident(name) {
                        (FieldType::Name(spanned(name)), nullable)
                    } else {
                        (FieldType::Str(spanned(text)), false)
                    }
                }
                ast::ValueKind::Object(nested) => {
                    if !has_exactly(nested, &["fields"], &["nullable"]) {
                        return None;
                    }
                    let nullable = match member_value(nested, "nullable").map(|value| &value.kind) {
                        None => false,
                        Some(ast::ValueKind::Bool(flag)) => *flag,
                        Some(_) => return None,
                    };
                    (FieldType::Nested(event_fields(member_value(nested, "fields")?)?), nullable)
                }
                _ => return None,
            };
            Some(Field { span: span(), key: spanned(&member.key.node), ty, nullable })
        })
        .collect::<Option<Vec<_>>>()?;
    Some(Fields { span: span(), fields })
}

fn item(kind: ItemKind, blank_before: bool) -> Item {
    Item { span: span(), blank_before, kind }
}

/// Edges as chains. Consecutive edges `a -> b`, `b -> c` join into `a -> b -> c`, and a run of
/// edges out of one node's named ports becomes a branch block, so edge order is kept exactly.
fn chains(edges: &[ast::EdgeDecl]) -> Vec<Chain> {
    let mut out = Vec::new();
    let mut idx = 0;
    while idx < edges.len() {
        let edge = &edges[idx];
        let from_keyword = TOP_LEVEL_KEYWORDS.contains(&edge.from.node.as_str());
        if edge.from_port.is_some() && !from_keyword {
            // `split { high -> a  low -> b }`
            let head = Elem::Ref { span: span(), id: spanned(&edge.from.node), port: None };
            let mut chain = Chain { span: span(), elems: vec![head], branches: None };
            chain.branches = Some(branch_block(edges, &mut idx, &edge.from.node));
            out.push(chain);
            continue;
        }
        let from = Elem::Ref {
            span: span(),
            id: spanned(&edge.from.node),
            port: edge.from_port.as_ref().map(|port| spanned(&port.node)),
        };
        let mut chain = Chain { span: span(), elems: vec![from], branches: None };
        extend_chain(edges, &mut idx, &mut chain);
        out.push(chain);
    }
    out
}

/// Appends `edges[*idx]` (which starts at the chain's last node) and the edges that continue it.
fn extend_chain(edges: &[ast::EdgeDecl], idx: &mut usize, chain: &mut Chain) {
    loop {
        let edge = &edges[*idx];
        chain.elems.push(Elem::Ref {
            span: span(),
            id: spanned(&edge.to.node),
            port: edge.to_port.as_ref().map(|port| spanned(&port.node)),
        });
        *idx += 1;
        if edge.to_port.is_some() {
            return;
        }
        let Some(next) = edges.get(*idx) else { return };
        if next.from.node != edge.to.node {
            return;
        }
        if next.from_port.is_some() {
            chain.branches = Some(branch_block(edges, idx, &edge.to.node));
            return;
        }
    }
}

/// The run of edges out of `node`'s named ports starting at `edges[*idx]`.
fn branch_block(edges: &[ast::EdgeDecl], idx: &mut usize, node: &str) -> Branches {
    let mut branches = Vec::new();
    while let Some(edge) = edges.get(*idx) {
        let Some(port) = edge.from_port.as_ref().filter(|_| edge.from.node == node) else { break };
        let mut chain = Chain { span: span(), elems: Vec::new(), branches: None };
        extend_chain(edges, idx, &mut chain);
        branches.push(Branch { span: span(), port: spanned(&port.node), chain });
    }
    Branches { span: span(), branches }
}

pub(crate) fn document_to_tree(document: &Document) -> File {
    let mut items = Vec::new();
    let setting = |key: &str| document.setting(key);
    if let Some(name) = setting("name").and_then(ast::Value::as_str) {
        items.push(item(ItemKind::Pipeline { keyword: span(), name: spanned(name) }, false));
    }
    if let Some(value) = setting("description") {
        items.push(item(ItemKind::Description { keyword: span(), value: generic(value) }, false));
    }
    if let Some(value) = setting("version") {
        items.push(item(ItemKind::Version { keyword: span(), value: generic(value) }, false));
    }
    if let Some(value) = setting("runtime").filter(|value| value.as_object().is_some()) {
        let value =
            object_with(
                value,
                |key, inner| if DURATION_KEYS.contains(&key) { duration_value(inner) } else { generic(inner) },
            );
        items.push(item(ItemKind::Runtime { keyword: span(), value }, true));
    }
    if let Some(schema) = setting("schema") {
        let event = schema
            .as_object()
            .filter(|members| has_exactly(members, &["fields"], &[]))
            .and_then(|members| event_fields(member_value(members, "fields")?));
        let kind = match event {
            Some(fields) => ItemKind::Event { keyword: span(), name: None, fields },
            None => ItemKind::Schema { keyword: span(), value: generic(schema) },
        };
        items.push(item(kind, true));
    }
    let mut previous_multiline = true;
    for decl in &document.nodes {
        let decl = node_decl(decl);
        let multiline = decl.block.is_some();
        items.push(item(
            ItemKind::Chain(Chain { span: span(), elems: vec![Elem::Decl(Box::new(decl))], branches: None }),
            multiline || previous_multiline,
        ));
        previous_multiline = multiline;
    }
    for (idx, chain) in chains(&document.edges).into_iter().enumerate() {
        items.push(item(ItemKind::Chain(chain), idx == 0));
    }
    for test in &document.tests {
        let kind =
            ItemKind::Test { keyword: span(), name: spanned(&test.name.node), body: test_value(&test.body, None) };
        items.push(item(kind, true));
    }
    File { items, unparsed: Vec::new() }
}
