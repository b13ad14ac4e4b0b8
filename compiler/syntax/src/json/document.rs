//! JSON DAG -> `ast::Document`: splits out `nodes`, `edges` and `tests`, checks their shape, and
//! keeps every other top-level member as a setting for the checker to validate.

use crate::ast::{Document, DurationLit, EdgeDecl, Member, NodeDecl, TestDecl, Value, ValueKind};
use crate::codes;
use crate::diagnostic::Diagnostic;
use crate::span::{FileId, Span, Spanned};

use super::{read_json, suggest};

const NODE_KEYS: [&str; 3] = ["id", "type", "config"];
/// The key of a duration in test data: `{"$duration": "10m"}`.
pub(crate) const DURATION_KEY: &str = "$duration";
const EDGE_FORMS: &str = "edges are written `\"from -> to\"`, `\"from.output -> to\"` or `\"from -> to.input\"`";

/// Reads a JSON DAG document. `None` when there is no JSON value or the top level is not an
/// object; otherwise a `Document` with everything that could be read, plus all diagnostics.
pub fn parse_json_document(file: FileId, text: &str) -> (Option<Document>, Vec<Diagnostic>) {
    let (root, mut diagnostics) = read_json(file, text);
    let Some(root) = root else {
        return (None, diagnostics);
    };
    let root_span = root.span;
    let ValueKind::Object(members) = root.kind else {
        diagnostics.push(
            Diagnostic::new(codes::E0103, "a pipeline document must be a JSON object")
                .primary(root_span, "expected an object")
                .note(format!(
                    "expected an object `{{ \"name\": ..., \"nodes\": [...], \"edges\": [...] }}`, found {}",
                    root.describe()
                ))
                .help("wrap the document in `{ ... }`"),
        );
        return (None, diagnostics);
    };
    let mut document = Document {
        file,
        span: root_span,
        settings: Vec::new(),
        nodes: Vec::new(),
        edges: Vec::new(),
        nodes_span: None,
        edges_span: None,
        tests: Vec::new(),
        unparsed: Vec::new(),
    };
    let mut lowering = Lowering { file, text, diagnostics: &mut diagnostics };
    // A repeated section (already reported as a duplicate key) replaces the earlier one, as
    // `Document::setting` lets the last setting win.
    for member in members {
        let section_span = member.key.span.to(member.value.span);
        match member.key.node.as_str() {
            "nodes" => {
                document.nodes_span = Some(section_span);
                document.nodes = lowering.nodes(member.value);
            }
            "edges" => {
                document.edges_span = Some(section_span);
                document.edges = lowering.edges(member.value);
            }
            "tests" => document.tests = lowering.tests(member.value),
            _ => document.settings.push(member),
        }
    }
    (Some(document), diagnostics)
}

/// "expected X, found Y" for a value of the wrong JSON type.
fn wrong_type(value: &Value, message: impl Into<String>, expected: &str) -> Diagnostic {
    Diagnostic::new(codes::E0103, message)
        .primary(value.span, format!("expected {expected}"))
        .note(format!("expected {expected}, found {}", value.describe()))
}

struct Lowering<'a> {
    file: FileId,
    text: &'a str,
    diagnostics: &'a mut Vec<Diagnostic>,
}

impl Lowering<'_> {
    fn report(&mut self, diagnostic: Diagnostic) {
        self.diagnostics.push(diagnostic);
    }

    /// The span of bytes `start..end` of a string value's contents, when the string is written
    /// without escapes (so decoded offsets are source offsets); otherwise the whole string.
    fn inner_span(&self, string: &Value, start: usize, end: usize) -> Span {
        let (outer_start, outer_end) = (string.span.start as usize, string.span.end as usize);
        let literal = outer_end > outer_start + 1 && self.text.as_bytes().get(outer_start) == Some(&b'"');
        let raw = literal.then(|| self.text.get(outer_start + 1..outer_end - 1)).flatten();
        match raw {
            Some(raw) if Some(raw) == string.as_str() => {
                Span::new(self.file, outer_start + 1 + start, outer_start + 1 + end)
            }
            _ => string.span,
        }
    }

    fn nodes(&mut self, value: Value) -> Vec<NodeDecl> {
        match value.kind {
            ValueKind::Array(elements) => elements.into_iter().filter_map(|element| self.node(element)).collect(),
            _ => {
                self.report(wrong_type(&value, "`nodes` must be an array of node objects", "an array").help(
                    "write `\"nodes\": [{ \"id\": \"source\", \"type\": \"kafka-source\", \"config\": { ... } }]`",
                ));
                Vec::new()
            }
        }
    }

    /// One node. A node without a usable `id` and `type` is reported and left out.
    fn node(&mut self, value: Value) -> Option<NodeDecl> {
        let span = value.span;
        let ValueKind::Object(members) = value.kind else {
            self.report(
                wrong_type(&value, "each entry of `nodes` must be a node object", "an object")
                    .help("write the node as `{ \"id\": \"my_node\", \"type\": \"filter\", \"config\": { ... } }`"),
            );
            return None;
        };
        let (mut id, mut kind, mut config) = (None, None, None);
        let (mut has_id, mut has_type) = (false, false);
        for member in members {
            match member.key.node.as_str() {
                "id" => {
                    has_id = true;
                    id = self.string_field(member.value, "node `id` must be a string");
                }
                "type" => {
                    has_type = true;
                    kind = self.string_field(member.value, "node `type` must be a string");
                }
                "config" => {
                    config = Some(match member.value.kind {
                        ValueKind::Object(_) => member.value,
                        _ => {
                            self.report(wrong_type(&member.value, "node `config` must be an object", "an object"));
                            Value::new(ValueKind::Object(Vec::new()), member.value.span)
                        }
                    });
                }
                _ => self.unknown_node_key(&member),
            }
        }
        let name = id.as_ref().map_or("node".to_string(), |id: &Spanned<String>| format!("node `{}`", id.node));
        if !has_id {
            self.report(
                Diagnostic::new(codes::E0102, "node is missing required key `id`")
                    .primary(span, "this node has no `id`")
                    .help("add `\"id\": \"my_node\"` to the node; the id names the node in edges and keys its state"),
            );
        }
        if !has_type {
            self.report(
                Diagnostic::new(codes::E0102, format!("{name} is missing required key `type`"))
                    .primary(span, "this node has no `type`")
                    .help("add the node type, e.g. `\"type\": \"filter\"`"),
            );
        }
        let id = id?;
        self.check_node_id(&id);
        Some(NodeDecl {
            span,
            id,
            kind: kind?,
            config: config.unwrap_or_else(|| Value::new(ValueKind::Object(Vec::new()), span)),
        })
    }

    /// A string member's value with its span; anything else is reported.
    fn string_field(&mut self, value: Value, message: &str) -> Option<Spanned<String>> {
        match value.kind {
            ValueKind::String(text) => Some(Spanned::new(text, value.span)),
            _ => {
                self.report(wrong_type(&value, message, "a string"));
                None
            }
        }
    }

    fn unknown_node_key(&mut self, member: &Member) {
        let key = &member.key.node;
        let help = match suggest(key, &NODE_KEYS) {
            Some(suggestion) => format!("did you mean `{suggestion}`?"),
            None if key == "name" => "the node's identity is its `id`: rename `name` to `id`".to_string(),
            None => format!(
                "operator settings go inside the node's `config`: move `\"{key}\"` into `\"config\": {{ ... }}`"
            ),
        };
        self.report(
            Diagnostic::new(codes::E0101, format!("unknown key `{key}` in node"))
                .primary(member.key.span, "not a node key")
                .note("a node has the keys `id`, `type` and `config`")
                .help(help),
        );
    }

    /// G3: node ids match `[A-Za-z0-9_-]+`.
    fn check_node_id(&mut self, id: &Spanned<String>) {
        let (text, string_span) = (&id.node, id.span);
        let string = Value::new(ValueKind::String(text.clone()), string_span);
        if text.is_empty() {
            self.report(
                Diagnostic::new(codes::E0105, "node id is empty")
                    .primary(string_span, "empty id")
                    .help("give the node a name, e.g. `\"id\": \"login_filter\"`"),
            );
            return;
        }
        let Some((idx, bad)) = text.char_indices().find(|(_, ch)| !is_id_char(*ch)) else {
            return;
        };
        let fixed: String = text.chars().map(|ch| if is_id_char(ch) { ch } else { '_' }).collect();
        let reason = if bad == '.' { " (a `.` separates node and port in an edge)" } else { "" };
        self.report(
            Diagnostic::new(codes::E0105, format!("invalid node id `{text}`"))
                .primary(
                    self.inner_span(&string, idx, idx + bad.len_utf8()),
                    format!("`{bad}` is not allowed in a node id"),
                )
                .note(format!("node ids may contain only ASCII letters, digits, `_` and `-`{reason}"))
                .help(format!("rename the node to `{fixed}`")),
        );
    }

    fn edges(&mut self, value: Value) -> Vec<EdgeDecl> {
        let ValueKind::Array(elements) = &value.kind else {
            self.report(
                wrong_type(&value, "`edges` must be an array of strings", "an array")
                    .help("write `\"edges\": [\"source -> filter\", \"filter -> sink\"]`"),
            );
            return Vec::new();
        };
        let mut edges = Vec::new();
        for element in elements {
            match &element.kind {
                ValueKind::String(text) => edges.extend(self.edge(element, text)),
                _ => self.report(
                    wrong_type(element, "each edge must be a string", "a string")
                        .help("write the edge as a string, e.g. `\"source -> login_filter\"`"),
                ),
            }
        }
        edges
    }

    /// One edge string. Errors are reported with the exact spot; a wrong arrow (`=>`) is reported
    /// and the edge kept, any other error drops the edge.
    fn edge(&mut self, string: &Value, text: &str) -> Option<EdgeDecl> {
        let error = |this: &mut Self, start: usize, end: usize, message: String, label: &str, help: String| {
            let span = this.inner_span(string, start, end);
            this.report(Diagnostic::new(codes::E0108, message).primary(span, label).note(EDGE_FORMS).help(help));
        };
        let skip_spaces = |mut idx: usize| {
            while text[idx..].starts_with(|ch: char| ch.is_whitespace()) {
                idx += text[idx..].chars().next().map_or(1, char::len_utf8);
            }
            idx
        };
        if text.trim().is_empty() {
            let span = string.span;
            self.report(
                Diagnostic::new(codes::E0108, "empty edge")
                    .primary(span, "expected `from -> to`")
                    .note(EDGE_FORMS)
                    .help("write the edge as `\"source -> login_filter\"`"),
            );
            return None;
        }
        let from_start = skip_spaces(0);
        if arrow_at(text, from_start).is_some() {
            let message = format!("edge `{}` has no source", text.trim());
            error(
                self,
                from_start,
                from_start,
                message,
                "expected a node id here",
                "write the edge as `\"<node id> -> ...\"`".into(),
            );
            return None;
        }
        let from_end = word_end(text, from_start);
        let (from, from_port) = self.endpoint(string, text, from_start, from_end, "output")?;
        let arrow_start = skip_spaces(from_end);
        let from_text = &text[from_start..from_end];
        let Some((arrow_len, arrow_valid)) = arrow_at(text, arrow_start) else {
            let (message, label) = match text[arrow_start..].chars().next() {
                None => (format!("edge `{}` has no target", text.trim()), "expected `-> target` here"),
                Some(ch) => (format!("expected `->` in edge, found `{ch}`"), "expected `->` here"),
            };
            let help = format!("write the edge as `\"{from_text} -> <node id>\"`");
            error(self, arrow_start, arrow_start, message, label, help);
            return None;
        };
        if !arrow_valid {
            let arrow = &text[arrow_start..arrow_start + arrow_len];
            let help = if arrow == "<-" {
                "edges point from the producer to the consumer: swap the two ends and write `->`".to_string()
            } else {
                "replace it with `->`".to_string()
            };
            error(
                self,
                arrow_start,
                arrow_start + arrow_len,
                format!("edges use `->`, not `{arrow}`"),
                "wrong arrow",
                help,
            );
        }
        let to_start = skip_spaces(arrow_start + arrow_len);
        if to_start == text.len() {
            let help = format!("write the edge as `\"{from_text} -> <node id>\"`");
            error(
                self,
                to_start,
                to_start,
                format!("edge `{}` has no target", text.trim()),
                "expected a node id here",
                help,
            );
            return None;
        }
        let to_end = word_end(text, to_start);
        let (to, to_port) = self.endpoint(string, text, to_start, to_end, "input")?;
        let rest = skip_spaces(to_end);
        if rest < text.len() {
            let to_text = &text[to_start..to_end];
            let (message, help) = if arrow_at(text, rest).is_some() {
                let tail = text[rest..].trim_start_matches(|ch: char| !ch.is_alphanumeric() && ch != '_').trim();
                (
                    "an edge connects exactly two nodes".to_string(),
                    format!("split it into `\"{from_text} -> {to_text}\"` and `\"{to_text} -> {tail}\"`"),
                )
            } else {
                (
                    format!("unexpected `{}` after the edge's target", text[rest..].trim()),
                    format!("write `\"{from_text} -> {to_text}\"`"),
                )
            };
            error(self, rest, text.trim_end().len(), message, "unexpected", help);
            return None;
        }
        Some(EdgeDecl { span: string.span, from, from_port, to, to_port })
    }

    /// `node` or `node.port` in `text[start..end]` (non-empty); `port_kind` is "output" or "input".
    fn endpoint(
        &mut self,
        string: &Value,
        text: &str,
        start: usize,
        end: usize,
        port_kind: &str,
    ) -> Option<(Spanned<String>, Option<Spanned<String>>)> {
        let word = &text[start..end];
        let report = |this: &mut Self, at: (usize, usize), message: String, label: &str, help: String| {
            let span = this.inner_span(string, at.0, at.1);
            this.report(Diagnostic::new(codes::E0108, message).primary(span, label).note(EDGE_FORMS).help(help));
        };
        if word.is_empty() {
            let found = text[start..].chars().next().map_or("the end of the edge".to_string(), |ch| format!("`{ch}`"));
            report(
                self,
                (start, start),
                format!("expected a node id, found {found}"),
                "expected a node id here",
                "write the edge as `\"from -> to\"`".into(),
            );
            return None;
        }
        if let Some((idx, bad)) = word.char_indices().find(|(_, ch)| !is_id_char(*ch) && *ch != '.') {
            let at = (start + idx, start + idx + bad.len_utf8());
            let fixed: String = word.chars().map(|ch| if is_id_char(ch) || ch == '.' { ch } else { '_' }).collect();
            report(
                self,
                at,
                format!("invalid character `{bad}` in edge endpoint `{word}`"),
                "not allowed in a node id",
                format!("node ids contain only ASCII letters, digits, `_` and `-`: did you mean `{fixed}`?"),
            );
            return None;
        }
        let parts: Vec<&str> = word.split('.').collect();
        let spanned = |this: &Self, offset: usize, part: &str| {
            Spanned::new(part.to_string(), this.inner_span(string, offset, offset + part.len()))
        };
        match parts.as_slice() {
            [node] if !node.is_empty() => Some((spanned(self, start, node), None)),
            [node, port] if !node.is_empty() && !port.is_empty() => {
                let port_start = start + node.len() + 1;
                Some((spanned(self, start, node), Some(spanned(self, port_start, port))))
            }
            [node, _] => {
                let (at, message, label) = if node.is_empty() {
                    (
                        (start, start + 1),
                        format!("expected a node id before `.` in `{word}`"),
                        "expected a node id here",
                    )
                } else {
                    (
                        (end - 1, end),
                        format!("expected an {port_kind} name after `.` in `{word}`"),
                        "expected a name after this `.`",
                    )
                };
                report(
                    self,
                    at,
                    message,
                    label,
                    format!("write `node.{port_kind}`, or just `node` for its only {port_kind}"),
                );
                None
            }
            _ => {
                let second_dot = start + parts[0].len() + 1 + parts[1].len();
                report(
                    self,
                    (second_dot, second_dot + 1),
                    format!("edge endpoint `{word}` has more than one `.`"),
                    "second `.`",
                    format!("write `node.{port_kind}`; a `.` separates a node id from one port name"),
                );
                None
            }
        }
    }

    fn tests(&mut self, value: Value) -> Vec<TestDecl> {
        let ValueKind::Array(elements) = value.kind else {
            self.report(
                wrong_type(&value, "`tests` must be an array of test objects", "an array")
                    .help("write `\"tests\": [{ \"name\": \"my test\", \"inputs\": [...], \"expect\": { ... } }]`"),
            );
            return Vec::new();
        };
        let mut tests = Vec::new();
        for element in elements {
            let span = element.span;
            let ValueKind::Object(members) = element.kind else {
                self.report(wrong_type(&element, "each test must be an object", "an object"));
                continue;
            };
            let (names, body): (Vec<Member>, Vec<Member>) =
                members.into_iter().partition(|member| member.key.node == "name");
            match names.into_iter().last() {
                Some(Member { value: Value { kind: ValueKind::String(name), span: name_span }, .. }) => {
                    let body = self.test_durations(Value::new(ValueKind::Object(body), span));
                    tests.push(TestDecl { span, name: Spanned::new(name, name_span), body })
                }
                Some(member) => self.report(wrong_type(&member.value, "test `name` must be a string", "a string")),
                None => self.report(
                    Diagnostic::new(codes::E0102, "test is missing required key `name`")
                        .primary(span, "this test has no `name`")
                        .help("add `\"name\": \"what the test checks\"` to the test"),
                ),
            }
        }
        tests
    }
}

impl Lowering<'_> {
    /// Test data spells a `.pulse` duration literal `{"$duration": "10m"}` (a bare `"10m"` is a
    /// string, which event data may hold): it becomes the same `Duration` value as `ts: 10m`,
    /// which stands for its milliseconds and which `pulsec convert` prints back as written.
    fn test_durations(&mut self, value: Value) -> Value {
        let span = value.span;
        match value.kind {
            ValueKind::Array(items) => {
                Value::new(ValueKind::Array(items.into_iter().map(|item| self.test_durations(item)).collect()), span)
            }
            ValueKind::Object(members) if members.iter().any(|member| member.key.node == DURATION_KEY) => {
                match self.duration_literal(&members) {
                    Some(duration) => Value::new(ValueKind::Duration(duration), span),
                    None => Value::new(ValueKind::Object(members), span),
                }
            }
            ValueKind::Object(members) => {
                let members = members
                    .into_iter()
                    .map(|member| Member { key: member.key, value: self.test_durations(member.value) })
                    .collect();
                Value::new(ValueKind::Object(members), span)
            }
            kind => Value::new(kind, span),
        }
    }

    /// The duration of `{"$duration": "10m"}`, reporting any other shape.
    fn duration_literal(&mut self, members: &[Member]) -> Option<DurationLit> {
        for extra in members.iter().filter(|member| member.key.node != DURATION_KEY) {
            self.report(
                Diagnostic::new(
                    codes::E0101,
                    format!("`{DURATION_KEY}` stands alone: `{}` has no place here", extra.key.node),
                )
                .primary(extra.key.span, "not allowed beside `$duration`")
                .help("write the duration as the whole value: `\"ts\": {\"$duration\": \"10m\"}`"),
            );
        }
        let value = &members.iter().rev().find(|member| member.key.node == DURATION_KEY)?.value;
        let ValueKind::String(text) = &value.kind else {
            self.report(
                wrong_type(value, format!("`{DURATION_KEY}` must be a duration string"), "a string")
                    .help("write `{\"$duration\": \"10m\"}`, or the number of milliseconds without `$duration`"),
            );
            return None;
        };
        match pulse_stdlib::duration::parse(text) {
            Ok(millis) if members.len() == 1 => Some(DurationLit { millis, text: text.clone() }),
            Ok(_) => None,
            Err(problem) => {
                self.report(
                    Diagnostic::new(codes::E0501, format!("invalid duration `{text}`"))
                        .primary(value.span, problem)
                        .note("a duration is a whole number followed by one unit: `ms`, `s`, `m`, `h` or `d`"),
                );
                None
            }
        }
    }
}

fn is_id_char(ch: char) -> bool {
    ch.is_ascii_alphanumeric() || ch == '_' || ch == '-'
}

/// An arrow at `idx`: its length and whether it is the valid `->`. `-->`, `=>`, `→` and `<-` are
/// recognized so that they can be reported as wrong arrows.
fn arrow_at(text: &str, idx: usize) -> Option<(usize, bool)> {
    let rest = &text[idx..];
    ["-->", "->", "=>", "\u{2192}", "<-"]
        .into_iter()
        .find(|arrow| rest.starts_with(arrow))
        .map(|arrow| (arrow.len(), arrow == "->"))
}

/// The end of the endpoint starting at `start`: up to whitespace or an arrow.
fn word_end(text: &str, start: usize) -> usize {
    let mut idx = start;
    while let Some(ch) = text[idx..].chars().next() {
        if ch.is_whitespace() || arrow_at(text, idx).is_some() {
            break;
        }
        idx += ch.len_utf8();
    }
    idx
}
