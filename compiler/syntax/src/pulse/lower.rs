//! Lowers the `.pulse` surface tree to the common `ast::Document`, so the checker (shared with
//! the JSON front end) sees one shape: settings as members, nodes with a config value tree,
//! edges. Sugar becomes the generic JSON keys here (`filter(c)` is `where: c`, `route n: c` is
//! an element of `routes`, ...); see docs/language.md for the full table.

use crate::ast::{self, EdgeDecl, Expr, ExprKind, Member, Number, TestDecl};
use crate::codes;
use crate::diagnostic::Diagnostic;
use crate::pulse::tree::*;
use crate::span::{FileId, Span, Spanned};

/// Config keys set by the parenthesized shorthand `TYPE(ARG, ...)`, per node type (the editor's
/// signature help shows them as the parameters).
pub fn positional_keys(kind: &str) -> Option<&'static [&'static str]> {
    Some(match kind {
        "filter" => &["where"],
        "delay" => &["duration"],
        "dedupe" => &["within"],
        "capping" | "rolling-window-capping" => &["max", "window"],
        "user-event-trigger" => &["within"],
        "has-done-event" => &["event"],
        "file-source" | "file-sink" => &["path"],
        "kafka-source" | "kafka-sink" => &["topic"],
        "api-sink" => &["url"],
        "redis-sink" => &["command"],
        "segmentation" => &["bucket"],
        _ => return None,
    })
}

pub(crate) fn lower_file(
    file: FileId,
    text_len: usize,
    tree: &File,
    diagnostics: &mut Vec<Diagnostic>,
) -> ast::Document {
    let mut lowerer = Lowerer { diagnostics, nodes: Vec::new(), edges: Vec::new(), edges_span: None };
    let mut settings: Vec<Member> = Vec::new();
    let mut setting_spans: Vec<(&'static str, Span)> = Vec::new();
    let mut tests = Vec::new();
    for item in &tree.items {
        let (key, keyword, value) = match &item.kind {
            ItemKind::Pipeline { keyword, name } => {
                ("name", *keyword, ast::Value::new(ast::ValueKind::String(name.node.clone()), name.span))
            }
            ItemKind::Description { keyword, value } => ("description", *keyword, lowerer.value(value)),
            ItemKind::Version { keyword, value } => ("version", *keyword, lowerer.value(value)),
            ItemKind::Runtime { keyword, value } => ("runtime", *keyword, lowerer.value(value)),
            ItemKind::Schema { keyword, value } => ("schema", *keyword, lowerer.value(value)),
            ItemKind::Event { keyword, fields, .. } => ("schema", *keyword, event_schema(*keyword, fields)),
            ItemKind::Test { name, body, .. } => {
                tests.push(TestDecl { span: item.span, name: name.clone(), body: lowerer.value(body) });
                continue;
            }
            ItemKind::Chain(chain) => {
                lowerer.chain(chain, None);
                continue;
            }
        };
        if let Some((_, first)) = setting_spans.iter().find(|(seen, _)| *seen == key) {
            let what = if key == "schema" { "the event schema".to_string() } else { format!("`{key}`") };
            lowerer.diagnostics.push(
                Diagnostic::new(codes::E0002, format!("{what} is declared twice"))
                    .primary(keyword, "declared again here")
                    .secondary(*first, "first declared here")
                    .help("remove one of the declarations"),
            );
        }
        setting_spans.push((key, keyword));
        settings.push(Member { key: Spanned::new(key.to_string(), keyword), value });
    }
    let nodes_span = match (lowerer.nodes.first(), lowerer.nodes.last()) {
        (Some(first), Some(last)) => Some(first.span.to(last.span)),
        _ => None,
    };
    ast::Document {
        file,
        span: Span::new(file, 0, text_len),
        settings,
        nodes: lowerer.nodes,
        edges: lowerer.edges,
        nodes_span,
        edges_span: lowerer.edges_span,
        tests,
        unparsed: tree.unparsed.clone(),
    }
}

/// `event { a: string?  b: { c: int }? }` as the JSON inline schema
/// `{"fields": {"a": "string?", "b": {"fields": {"c": "int"}, "nullable": true}}}`.
fn event_schema(keyword: Span, fields: &Fields) -> ast::Value {
    let members = vec![Member { key: Spanned::new("fields".to_string(), keyword), value: field_map(fields) }];
    ast::Value::new(ast::ValueKind::Object(members), keyword.to(fields.span))
}

fn field_map(fields: &Fields) -> ast::Value {
    let members = fields
        .fields
        .iter()
        .map(|field| {
            let value = match &field.ty {
                FieldType::Name(name) | FieldType::Str(name) => {
                    let text = if field.nullable { format!("{}?", name.node) } else { name.node.clone() };
                    ast::Value::new(ast::ValueKind::String(text), field.span.to(name.span))
                }
                FieldType::Nested(nested) => {
                    let nested_members = vec![
                        Member { key: Spanned::new("fields".to_string(), nested.span), value: field_map(nested) },
                        Member {
                            key: Spanned::new("nullable".to_string(), nested.span),
                            value: ast::Value::new(ast::ValueKind::Bool(field.nullable), field.span),
                        },
                    ];
                    ast::Value::new(ast::ValueKind::Object(nested_members), nested.span)
                }
            };
            Member { key: field.key.clone(), value }
        })
        .collect();
    ast::Value::new(ast::ValueKind::Object(members), fields.span)
}

struct Lowerer<'d> {
    diagnostics: &'d mut Vec<Diagnostic>,
    nodes: Vec<ast::NodeDecl>,
    edges: Vec<EdgeDecl>,
    edges_span: Option<Span>,
}

/// A config member and, for sugar, the keyword that produced it (for duplicate messages).
struct ConfigMember {
    member: Member,
    sugar: Option<&'static str>,
}

impl Lowerer<'_> {
    fn error(&mut self, span: Span, message: String, label: &str, help: String) {
        self.diagnostics.push(Diagnostic::new(codes::E0002, message).primary(span, label).help(help));
    }

    /// Lowers a chain; `incoming` is the `(node, port)` of a branch block the chain hangs off.
    fn chain(&mut self, chain: &Chain, incoming: Option<(&Spanned<String>, &Spanned<String>)>) {
        for elem in &chain.elems {
            if let Elem::Decl(decl) = elem {
                let node = self.decl(decl);
                self.nodes.push(node);
            }
        }
        let n_elems = chain.elems.len();
        let is_last = |idx: usize| idx + 1 == n_elems && chain.branches.is_none();
        if let (Some((node, port)), Some(first)) = (incoming, chain.elems.first()) {
            let to_port = if is_last(0) { first.port().cloned() } else { None };
            self.edge(node.clone(), Some(port.clone()), first.id().clone(), to_port, port.span.to(first.id().span));
        }
        for idx in 1..n_elems {
            let from = &chain.elems[idx - 1];
            let to = &chain.elems[idx];
            let from_port = if idx == 1 && incoming.is_none() { from.port().cloned() } else { None };
            let to_port = if is_last(idx) { to.port().cloned() } else { None };
            let end = to_port.as_ref().map_or(to.id().span, |port| port.span);
            self.edge(from.id().clone(), from_port, to.id().clone(), to_port, from.id().span.to(end));
        }
        if let (Some(branches), Some(last)) = (&chain.branches, chain.elems.last()) {
            for branch in &branches.branches {
                self.chain(&branch.chain, Some((last.id(), &branch.port)));
            }
        }
    }

    fn edge(
        &mut self,
        from: Spanned<String>,
        from_port: Option<Spanned<String>>,
        to: Spanned<String>,
        to_port: Option<Spanned<String>>,
        span: Span,
    ) {
        self.edges_span = Some(self.edges_span.map_or(span, |all| all.to(span)));
        self.edges.push(EdgeDecl { span, from, from_port, to, to_port });
    }

    fn decl(&mut self, decl: &NodeDecl) -> ast::NodeDecl {
        let mut members: Vec<ConfigMember> = Vec::new();
        let plain = |key: &str, key_span: Span, value: ast::Value| ConfigMember {
            member: Member { key: Spanned::new(key.to_string(), key_span), value },
            sugar: None,
        };
        if let Some(args) = &decl.args {
            match positional_keys(&decl.kind.node) {
                Some(keys) if keys.len() == args.values.len() => {
                    for (key, value) in keys.iter().zip(&args.values) {
                        let lowered = self.value(value);
                        members.push(plain(key, value.span, lowered));
                    }
                }
                Some(keys) => {
                    let kind = &decl.kind.node;
                    let expected = keys.iter().map(|key| key.to_uppercase()).collect::<Vec<_>>().join(", ");
                    let count =
                        if keys.len() == 1 { "1 argument".to_string() } else { format!("{} arguments", keys.len()) };
                    self.error(
                        args.span,
                        format!("`{kind}` takes {count} in parentheses, found {}", args.values.len()),
                        "wrong number of arguments",
                        format!("write `{kind}({expected})` and put other options in `{{ ... }}`"),
                    );
                }
                None => {
                    let kind = &decl.kind.node;
                    self.error(
                        args.span,
                        format!("`{kind}` has no shorthand arguments"),
                        "arguments not allowed here",
                        format!("write the options as a block: `{kind} {{ key: value }}`"),
                    );
                }
            }
        }
        if let Some((keyword, value)) = &decl.by {
            let lowered = self.value(value);
            members.push(plain("keyBy", *keyword, lowered));
        }
        if let Some((keyword, value)) = &decl.where_clause {
            let lowered = self.value(value);
            members.push(plain("where", *keyword, lowered));
        }
        if let Some(block) = &decl.block {
            for entry in &block.entries {
                self.entry(entry, &decl.kind.node, &mut members);
            }
        }
        self.check_duplicates(&members);
        let config_span = decl.block.as_ref().map_or(decl.span, |block| block.span);
        let members = members.into_iter().map(|config| config.member).collect();
        ast::NodeDecl {
            span: decl.span,
            id: decl.id.clone(),
            kind: decl.kind.clone(),
            config: ast::Value::new(ast::ValueKind::Object(members), config_span),
        }
    }

    fn check_duplicates(&mut self, members: &[ConfigMember]) {
        for (idx, config) in members.iter().enumerate() {
            let key = &config.member.key;
            let Some(first) = members[..idx].iter().find(|earlier| earlier.member.key.node == key.node) else {
                continue;
            };
            let (message, help) = match first.sugar.or(config.sugar) {
                Some(keyword) => (
                    format!("`{keyword}` entries and a `{}` key both set `{}`", key.node, key.node),
                    format!("use either `{keyword}` entries or the `{}` key", key.node),
                ),
                None => (format!("`{}` is set twice", key.node), "remove one of them".to_string()),
            };
            self.diagnostics.push(
                Diagnostic::new(codes::E0002, message)
                    .primary(key.span, "set again here")
                    .secondary(first.member.key.span, "first set here")
                    .help(help),
            );
        }
    }

    /// Appends `element` to the sugar list `key` (created at the first entry).
    fn push_sugar(
        members: &mut Vec<ConfigMember>,
        key: &str,
        keyword: &'static str,
        key_span: Span,
        element: ast::Value,
    ) {
        if let Some(existing) = members.iter_mut().find(|config| config.sugar == Some(keyword)) {
            existing.member.value.span = existing.member.value.span.to(element.span);
            if let ast::ValueKind::Array(items) = &mut existing.member.value.kind {
                items.push(element);
            }
            return;
        }
        let span = element.span;
        members.push(ConfigMember {
            member: Member {
                key: Spanned::new(key.to_string(), key_span),
                value: ast::Value::new(ast::ValueKind::Array(vec![element]), span),
            },
            sugar: Some(keyword),
        });
    }

    fn entry(&mut self, entry: &Entry, kind: &str, members: &mut Vec<ConfigMember>) {
        let string =
            |spanned: &Spanned<String>| ast::Value::new(ast::ValueKind::String(spanned.node.clone()), spanned.span);
        let member = |key: &str, key_span: Span, value: ast::Value| Member {
            key: Spanned::new(key.to_string(), key_span),
            value,
        };
        match &entry.kind {
            EntryKind::Pair(pair) => {
                let value = if kind == "map" && pair.key.node == "set" {
                    self.set_object(&pair.value)
                } else {
                    self.value(&pair.value)
                };
                members.push(ConfigMember { member: Member { key: pair.key.clone(), value }, sugar: None });
            }
            EntryKind::Route { keyword, name, cond } => {
                let fields = vec![member("name", *keyword, string(name)), member("where", cond.span, self.value(cond))];
                let element = ast::Value::new(ast::ValueKind::Object(fields), entry.span);
                Self::push_sugar(members, "routes", "route", *keyword, element);
            }
            EntryKind::Counter { keyword, name, window, cond } => {
                let mut fields = vec![member("name", *keyword, string(name))];
                if let Some(cond) = cond {
                    fields.push(member("where", cond.span, self.value(cond)));
                }
                fields.push(member("window", window.span, self.value(window)));
                let element = ast::Value::new(ast::ValueKind::Object(fields), entry.span);
                Self::push_sugar(members, "counters", "counter", *keyword, element);
            }
            EntryKind::Segment { keyword, name, rule } => {
                let fields = vec![member("name", *keyword, string(name)), member("rule", rule.span, self.value(rule))];
                let element = ast::Value::new(ast::ValueKind::Object(fields), entry.span);
                Self::push_sugar(members, "segments", "segment", *keyword, element);
            }
            EntryKind::Aggregate { keyword, name, func, field } => {
                let mut fields = vec![member("name", *keyword, string(name)), member("fn", func.span, string(func))];
                if let Some(field) = field {
                    fields.push(member("field", field.span, self.value(field)));
                }
                let element = ast::Value::new(ast::ValueKind::Object(fields), entry.span);
                Self::push_sugar(members, "aggregates", "aggregate", *keyword, element);
            }
            EntryKind::Window { keyword, window } => {
                let object = |members: Vec<Member>, span: Span| ast::Value::new(ast::ValueKind::Object(members), span);
                let inner = match window {
                    WindowSugar::Tumbling { keyword, size } => member("tumbling", *keyword, self.value(size)),
                    WindowSugar::Sliding { keyword, size, slide } => {
                        let fields = vec![
                            member("size", size.span, self.value(size)),
                            member("slide", slide.span, self.value(slide)),
                        ];
                        member("sliding", *keyword, object(fields, entry.span))
                    }
                    WindowSugar::Session { keyword, gap } => {
                        member("session", *keyword, object(vec![member("gap", gap.span, self.value(gap))], entry.span))
                    }
                };
                members.push(ConfigMember {
                    member: member("window", *keyword, object(vec![inner], entry.span)),
                    sugar: Some("window"),
                });
            }
        }
    }

    /// A map's `set` object: every value is an expression, literals included, because in JSON a
    /// `set` string is expression source (G38). Values that no expression can hold (objects,
    /// durations, lists containing them) stay plain values.
    fn set_object(&mut self, value: &Value) -> ast::Value {
        let ValueKind::Object(pairs) = &value.kind else { return self.value(value) };
        let members = pairs
            .iter()
            .map(|pair| {
                let lowered = match value_to_expr(&pair.value) {
                    Some(expr) => ast::Value::new(ast::ValueKind::Expr(expr), pair.value.span),
                    None => self.value(&pair.value),
                };
                Member { key: pair.key.clone(), value: lowered }
            })
            .collect::<Vec<_>>();
        self.check_object_keys(&members);
        ast::Value::new(ast::ValueKind::Object(members), value.span)
    }

    fn check_object_keys(&mut self, members: &[Member]) {
        for (idx, member) in members.iter().enumerate() {
            if let Some(first) = members[..idx].iter().find(|earlier| earlier.key.node == member.key.node) {
                self.diagnostics.push(
                    Diagnostic::new(codes::E0002, format!("`{}` is set twice", member.key.node))
                        .primary(member.key.span, "set again here")
                        .secondary(first.key.span, "first set here")
                        .help("remove one of them"),
                );
            }
        }
    }

    /// A value as JSON would hold it: literals become plain values, other expressions stay
    /// expressions, durations stay durations.
    fn value(&mut self, value: &Value) -> ast::Value {
        let kind = match &value.kind {
            ValueKind::Duration(duration) => ast::ValueKind::Duration(duration.clone()),
            ValueKind::List(items) => ast::ValueKind::Array(items.iter().map(|item| self.value(item)).collect()),
            ValueKind::Object(pairs) => {
                let members: Vec<Member> =
                    pairs.iter().map(|pair| Member { key: pair.key.clone(), value: self.value(&pair.value) }).collect();
                self.check_object_keys(&members);
                ast::ValueKind::Object(members)
            }
            ValueKind::Expr(expr) => match &expr.kind {
                ExprKind::Null => ast::ValueKind::Null,
                ExprKind::Bool(value) => ast::ValueKind::Bool(*value),
                ExprKind::Int(value) => ast::ValueKind::Number(Number::Int(*value)),
                ExprKind::Float(value) => ast::ValueKind::Number(Number::Float(*value)),
                ExprKind::Str(text) => ast::ValueKind::String(text.clone()),
                _ => ast::ValueKind::Expr(expr.clone()),
            },
        };
        ast::Value::new(kind, value.span)
    }
}

/// The expression a value denotes, if an expression can hold it (not objects or durations).
fn value_to_expr(value: &Value) -> Option<Expr> {
    match &value.kind {
        ValueKind::Expr(expr) => Some(expr.clone()),
        ValueKind::List(items) => {
            let items = items.iter().map(value_to_expr).collect::<Option<Vec<_>>>()?;
            Some(Expr { kind: ExprKind::Array(items), span: value.span })
        }
        ValueKind::Object(_) | ValueKind::Duration(_) => None,
    }
}
