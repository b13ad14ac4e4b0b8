//! What is at a byte offset of a document: a node id, a node reference in an edge, a port, a node
//! type, a config key, a field (in an expression, a path value or a `{{ }}` template), a duration,
//! a field of the event schema, or the schema file reference. Hover, definition and rename start here.

use pulse_syntax::ast::{Document, Expr, ExprKind, Value, ValueKind};
use pulse_syntax::Span;

#[derive(Clone, Debug, PartialEq)]
pub enum Item {
    /// A node id where the node is declared.
    NodeDecl {
        node: usize,
        span: Span,
    },
    /// A node id in an edge.
    NodeRef {
        id: String,
        span: Span,
    },
    /// A named port in an edge: `split.high_intent` (output) or `watched.flow` (input).
    Port {
        id: String,
        port: String,
        output: bool,
        span: Span,
    },
    NodeType {
        node: usize,
        span: Span,
    },
    ConfigKey {
        node: usize,
        key: String,
        span: Span,
    },
    /// A field path in node `node`'s configuration; `path` ends at the segment under the offset.
    Field {
        node: usize,
        path: Vec<String>,
        span: Span,
    },
    Duration {
        millis: u64,
        text: String,
        span: Span,
    },
    /// A field of the inline event schema; `path` ends at the field under the offset.
    SchemaField {
        path: Vec<String>,
        span: Span,
    },
    /// The JSON Schema file named by `schema "path"`.
    SchemaRef {
        path: String,
        span: Span,
    },
}

impl Item {
    pub fn span(&self) -> Span {
        match self {
            Item::NodeDecl { span, .. }
            | Item::NodeRef { span, .. }
            | Item::Port { span, .. }
            | Item::NodeType { span, .. }
            | Item::ConfigKey { span, .. }
            | Item::Field { span, .. }
            | Item::Duration { span, .. }
            | Item::SchemaField { span, .. }
            | Item::SchemaRef { span, .. } => *span,
        }
    }
}

/// Config keys whose string values are field paths (JSON spells paths as strings).
const PATH_KEYS: &[&str] = &["keyBy", "eventTime", "field", "remove", "keep"];
/// Config keys whose string values are expressions (G22).
const EXPR_KEYS: &[&str] = &["where", "start", "cancel", "event", "rule"];

fn contains(span: Span, offset: usize) -> bool {
    span.start as usize <= offset && offset <= span.end as usize
}

/// The item at `offset` in `doc` (whose source text is `text`).
pub fn item_at(doc: &Document, text: &str, offset: usize) -> Option<Item> {
    for (node_idx, node) in doc.nodes.iter().enumerate() {
        if contains(node.id.span, offset) {
            return Some(Item::NodeDecl { node: node_idx, span: node.id.span });
        }
        if contains(node.kind.span, offset) && node.kind.span != node.id.span {
            return Some(Item::NodeType { node: node_idx, span: node.kind.span });
        }
    }
    for edge in &doc.edges {
        if let Some(port) = &edge.from_port {
            if contains(port.span, offset) {
                let (id, port, span) = (edge.from.node.clone(), port.node.clone(), port.span);
                return Some(Item::Port { id, port, output: true, span });
            }
        }
        if let Some(port) = &edge.to_port {
            if contains(port.span, offset) {
                let (id, port, span) = (edge.to.node.clone(), port.node.clone(), port.span);
                return Some(Item::Port { id, port, output: false, span });
            }
        }
        for end in [&edge.from, &edge.to] {
            if contains(end.span, offset) {
                return Some(Item::NodeRef { id: end.node.clone(), span: end.span });
            }
        }
    }
    for (node_idx, node) in doc.nodes.iter().enumerate() {
        if !contains(node.config.span, offset) && !contains(node.span, offset) {
            continue;
        }
        let walker = Walker { text, node: node_idx, offset };
        if let Some(members) = node.config.as_object() {
            for member in members {
                if let Some(item) = walker.value(&member.value, &member.key.node, false) {
                    return Some(item);
                }
            }
            for member in members {
                let overlaps_value =
                    member.key.span.start < member.value.span.end && member.value.span.start < member.key.span.end;
                if contains(member.key.span, offset) && !overlaps_value {
                    return Some(Item::ConfigKey {
                        node: node_idx,
                        key: member.key.node.clone(),
                        span: member.key.span,
                    });
                }
            }
        }
    }
    for member in &doc.settings {
        if !contains(member.value.span, offset) && !contains(member.key.span, offset) {
            continue;
        }
        match (&member.key.node[..], &member.value.kind) {
            ("schema", ValueKind::String(path)) => {
                return Some(Item::SchemaRef { path: path.clone(), span: member.value.span });
            }
            ("schema", ValueKind::Object(_)) => {
                if let Some(fields) = member.value.as_object().and_then(|members| field_members(members)) {
                    if let Some(item) = schema_field(fields, offset, &mut Vec::new()) {
                        return Some(item);
                    }
                }
            }
            _ => {
                if let Some(item) = durations(&member.value, text, offset) {
                    return Some(item);
                }
            }
        }
    }
    None
}

fn field_members(members: &[pulse_syntax::ast::Member]) -> Option<&[pulse_syntax::ast::Member]> {
    members.iter().find(|member| member.key.node == "fields").and_then(|member| member.value.as_object())
}

fn schema_field(fields: &[pulse_syntax::ast::Member], offset: usize, path: &mut Vec<String>) -> Option<Item> {
    for member in fields {
        path.push(member.key.node.clone());
        if contains(member.key.span, offset) {
            return Some(Item::SchemaField { path: path.clone(), span: member.key.span });
        }
        if let Some(nested) = member.value.as_object().and_then(field_members) {
            if let Some(item) = schema_field(nested, offset, path) {
                return Some(item);
            }
        }
        path.pop();
    }
    None
}

fn durations(value: &Value, text: &str, offset: usize) -> Option<Item> {
    if !contains(value.span, offset) {
        return None;
    }
    match &value.kind {
        ValueKind::Duration(duration) => {
            Some(Item::Duration { millis: duration.millis, text: duration.text.clone(), span: value.span })
        }
        ValueKind::String(string) => parse_duration(string)
            .map(|millis| Item::Duration { millis, text: string.clone(), span: value.span })
            .filter(|_| raw_content(text, value.span).is_some()),
        ValueKind::Object(members) => members.iter().find_map(|member| durations(&member.value, text, offset)),
        ValueKind::Array(items) => items.iter().find_map(|item| durations(item, text, offset)),
        _ => None,
    }
}

struct Walker<'a> {
    text: &'a str,
    node: usize,
    offset: usize,
}

impl Walker<'_> {
    /// The item inside `value`, which sits under config key `key`; `in_set` for a map's `set` values.
    fn value(&self, value: &Value, key: &str, in_set: bool) -> Option<Item> {
        if !contains(value.span, self.offset) {
            return None;
        }
        match &value.kind {
            ValueKind::Object(members) => members.iter().find_map(|member| {
                let nested_set = in_set || (key == "set" && !member.key.node.is_empty());
                self.value(&member.value, &member.key.node, nested_set)
            }),
            ValueKind::Array(items) => items.iter().find_map(|item| self.value(item, key, in_set)),
            ValueKind::Expr(expr) => self.expr(expr),
            ValueKind::Duration(duration) => {
                Some(Item::Duration { millis: duration.millis, text: duration.text.clone(), span: value.span })
            }
            ValueKind::String(string) => self.string(string, value.span, key, in_set),
            _ => None,
        }
    }

    fn string(&self, string: &str, span: Span, key: &str, in_set: bool) -> Option<Item> {
        // Offsets inside the string are only exact when it has no escapes.
        let (content_start, raw) = raw_content(self.text, span)?;
        if raw != string {
            return None;
        }
        if PATH_KEYS.contains(&key) {
            return self.path_in_text(string, content_start, span.file);
        }
        if EXPR_KEYS.contains(&key) || in_set {
            let (expr, _) = pulse_syntax::parse_expr(span.file, string, content_start);
            return expr.and_then(|expr| self.expr(&expr));
        }
        if let Some(millis) = parse_duration(string) {
            return Some(Item::Duration { millis, text: string.to_string(), span });
        }
        for (start, end) in template_holes(string) {
            let inner = &string[start..end];
            let trimmed_start = start + (inner.len() - inner.trim_start().len());
            let hole = inner.trim();
            if self.offset >= content_start + trimmed_start && self.offset <= content_start + trimmed_start + hole.len()
            {
                return self.path_in_text(hole, content_start + trimmed_start, span.file);
            }
        }
        None
    }

    /// A dotted path written at `base`; the item is the segment under the offset.
    fn path_in_text(&self, path: &str, base: usize, file: pulse_syntax::FileId) -> Option<Item> {
        let mut segments = Vec::new();
        let mut start = base;
        for segment in path.split('.') {
            segments.push(segment.to_string());
            let end = start + segment.len();
            if self.offset >= start && self.offset <= end {
                return Some(Item::Field { node: self.node, path: segments, span: Span::new(file, start, end) });
            }
            start = end + 1;
        }
        None
    }

    fn expr(&self, expr: &Expr) -> Option<Item> {
        if !contains(expr.span, self.offset) {
            return None;
        }
        match &expr.kind {
            ExprKind::Path(segments) => {
                let mut path = Vec::new();
                for segment in segments {
                    path.push(segment.node.clone());
                    if contains(segment.span, self.offset) {
                        return Some(Item::Field { node: self.node, path, span: segment.span });
                    }
                }
                None
            }
            ExprKind::Array(items) => items.iter().find_map(|item| self.expr(item)),
            ExprKind::Call { args, .. } => args.iter().find_map(|arg| self.expr(arg)),
            ExprKind::Unary { operand, .. } => self.expr(operand),
            ExprKind::Binary { lhs, rhs, .. } => self.expr(lhs).or_else(|| self.expr(rhs)),
            ExprKind::Match { lhs, .. } => self.expr(lhs),
            _ => None,
        }
    }
}

/// The content of a string literal at `span` (quotes stripped) and where it starts.
pub fn raw_content(text: &str, span: Span) -> Option<(usize, &str)> {
    let raw = text.get(span.range())?;
    let quote = raw.chars().next().filter(|ch| *ch == '"' || *ch == '\'')?;
    let inner = raw.strip_prefix(quote)?.strip_suffix(quote)?;
    Some((span.start as usize + 1, inner))
}

/// The byte ranges of the insides of `{{ ... }}` holes in a template string.
pub fn template_holes(template: &str) -> Vec<(usize, usize)> {
    let mut holes = Vec::new();
    let mut rest_start = 0;
    while let Some(open) = template[rest_start..].find("{{") {
        let inner_start = rest_start + open + 2;
        let Some(close) = template[inner_start..].find("}}") else { break };
        holes.push((inner_start, inner_start + close));
        rest_start = inner_start + close + 2;
    }
    holes
}

/// A duration literal (`500ms 30s 5m 2h 7d`) in milliseconds.
pub fn parse_duration(text: &str) -> Option<u64> {
    pulse_stdlib::duration::parse(text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use pulse_syntax::FileId;

    const PULSE: &str = "pipeline p\nevent {\n  userId: string\n  props: { show_id: string? }?\n}\n\
src: file-source(\"in\")\nsrc -> f: filter(props.show_id != null) -> d: delay(5m) by userId -> out: stdout-sink\n";

    fn at(text: &str, needle: &str, nth: usize, form_json: bool) -> Option<Item> {
        let (doc, diagnostics) = if form_json {
            pulse_syntax::json::parse_json_document(FileId(0), text)
        } else {
            pulse_syntax::parse_pulse_document(FileId(0), text)
        };
        let doc = doc.unwrap_or_else(|| panic!("parses: {diagnostics:?}"));
        let offset = text.match_indices(needle).nth(nth).expect("needle in text").0 + 1;
        item_at(&doc, text, offset)
    }

    #[test]
    fn finds_items_in_pulse() {
        assert!(
            matches!(at(PULSE, "show_id !=", 0, false), Some(Item::Field { path, .. }) if path == ["props", "show_id"])
        );
        assert!(matches!(at(PULSE, "props.show", 0, false), Some(Item::Field { path, .. }) if path == ["props"]));
        assert!(matches!(at(PULSE, "userId -> out", 0, false), Some(Item::Field { path, .. }) if path == ["userId"]));
        assert!(matches!(at(PULSE, "5m", 0, false), Some(Item::Duration { millis: 300_000, .. })));
        assert!(matches!(at(PULSE, "src ->", 0, false), Some(Item::NodeRef { id, .. }) if id == "src"));
        assert!(matches!(at(PULSE, "f: filter", 0, false), Some(Item::NodeDecl { node: 1, .. })));
        assert!(matches!(at(PULSE, "filter(", 0, false), Some(Item::NodeType { node: 1, .. })));
        assert!(
            matches!(at(PULSE, "show_id: string", 0, false), Some(Item::SchemaField { path, .. }) if path == ["props", "show_id"])
        );
    }

    #[test]
    fn finds_items_in_json() {
        let json = r#"{"name": "p", "nodes": [
  {"id": "s", "type": "file-source", "config": {"path": "in"}},
  {"id": "f", "type": "filter", "config": {"where": "userId != null"}},
  {"id": "d", "type": "delay", "config": {"duration": "5m", "keyBy": "props.userId"}},
  {"id": "o", "type": "api-sink", "config": {"url": "https://x/{{ userId }}"}}
], "edges": ["s -> f", "f -> d", "d -> o"]}"#;
        assert!(matches!(at(json, "userId !=", 0, true), Some(Item::Field { path, .. }) if path == ["userId"]));
        assert!(
            matches!(at(json, "userId\"}", 0, true), Some(Item::Field { path, .. }) if path == ["props", "userId"])
        );
        assert!(matches!(at(json, "userId }}", 0, true), Some(Item::Field { path, .. }) if path == ["userId"]));
        assert!(matches!(at(json, "5m", 0, true), Some(Item::Duration { millis: 300_000, .. })));
        assert!(matches!(at(json, "f -> d", 0, true), Some(Item::NodeRef { id, .. }) if id == "f"));
        assert!(matches!(at(json, "keyBy", 0, true), Some(Item::ConfigKey { key, .. }) if key == "keyBy"));
    }

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("500ms"), Some(500));
        assert_eq!(parse_duration("7d"), Some(604_800_000));
        assert_eq!(parse_duration("5 m"), None);
        assert_eq!(parse_duration("m"), None);
    }
}
