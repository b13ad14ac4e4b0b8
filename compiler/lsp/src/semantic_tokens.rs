//! Semantic tokens (`textDocument/semanticTokens/full`): what the TextMate grammar cannot know,
//! read from the AST. Fields (in expressions, paths, `{{ }}` templates, the event schema and a
//! map's `set`), node ids, ports (in edges and route names), node types, functions and durations
//! (in test data too).
//! Items that did not parse have no AST and get no tokens; the rest of the file keeps them.

use crate::analysis::{Analysis, Form};
use crate::line_index::LineIndex;
use crate::locate::{parse_duration, raw_content, template_holes};
use lsp_types::{SemanticToken, SemanticTokenModifier, SemanticTokenType, SemanticTokensLegend};
use pulse_syntax::ast::{Expr, ExprKind, Member, Value, ValueKind};
use pulse_syntax::Span;

/// What a token is. The order is the legend's: `kind as u32` is the token type index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenKind {
    Field,
    NodeId,
    Port,
    Duration,
    NodeType,
    Function,
}

/// The standard token types, in `TokenKind` order, so every theme colours them without a
/// custom type: a field is a `property`, a node id a `variable`, a port an `enumMember`.
const TOKEN_TYPES: [SemanticTokenType; 6] = [
    SemanticTokenType::PROPERTY,
    SemanticTokenType::VARIABLE,
    SemanticTokenType::ENUM_MEMBER,
    SemanticTokenType::NUMBER,
    SemanticTokenType::TYPE,
    SemanticTokenType::FUNCTION,
];

/// The one modifier: bit 0 marks where a node, field or port is declared.
const DECLARATION_BIT: u32 = 1;

pub fn legend() -> SemanticTokensLegend {
    SemanticTokensLegend {
        token_types: TOKEN_TYPES.to_vec(),
        token_modifiers: vec![SemanticTokenModifier::DECLARATION],
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Token {
    pub span: Span,
    pub kind: TokenKind,
    pub declaration: bool,
}

/// Config keys whose string values are field paths in JSON (in `.pulse` they are expressions).
const PATH_KEYS: &[&str] = &["keyBy", "eventTime", "field", "remove", "keep"];
/// Config keys whose string values are expressions in JSON.
const EXPR_KEYS: &[&str] = &["where", "start", "cancel", "event", "rule"];

/// The tokens of the document, in order and without overlaps.
pub fn tokens(analysis: &Analysis) -> Vec<Token> {
    let Some(doc) = &analysis.document else { return Vec::new() };
    let mut collector = Collector { text: analysis.text(), json: analysis.form == Form::Json, tokens: Vec::new() };
    for member in &doc.settings {
        if member.key.node == "schema" {
            if let Some(fields) = member.value.as_object().and_then(fields_of) {
                collector.schema_fields(fields);
            }
        } else {
            collector.durations(&member.value);
        }
    }
    for node in &doc.nodes {
        collector.push(node.id.span, TokenKind::NodeId, true);
        if node.kind.span != node.id.span {
            collector.push(node.kind.span, TokenKind::NodeType, false);
        }
        collector.config(&node.config);
    }
    for edge in &doc.edges {
        collector.push(edge.from.span, TokenKind::NodeId, false);
        collector.push(edge.to.span, TokenKind::NodeId, false);
        for port in edge.from_port.iter().chain(&edge.to_port) {
            collector.push(port.span, TokenKind::Port, false);
        }
    }
    // Test data: only its durations (`ts: 1m`, `at 5m`); its records' keys are not checked fields.
    for test in &doc.tests {
        collector.durations(&test.body);
    }
    let mut tokens = collector.tokens;
    // A declaration first where the same span is also an edge end (`src -> f: filter(...)`).
    tokens.sort_by_key(|token| (token.span.start, std::cmp::Reverse(token.declaration)));
    let mut ordered: Vec<Token> = Vec::with_capacity(tokens.len());
    for token in tokens {
        if token.span.file != analysis.file || token.span.start >= token.span.end {
            continue;
        }
        if ordered.last().is_some_and(|last| token.span.start < last.span.end) {
            continue;
        }
        ordered.push(token);
    }
    ordered
}

/// The LSP encoding: each token relative to the previous one, in UTF-16 columns. A token that
/// would cross a line (none should) is left out.
pub fn encode(tokens: &[Token], index: &LineIndex) -> Vec<SemanticToken> {
    let mut encoded = Vec::with_capacity(tokens.len());
    let (mut previous_line, mut previous_start) = (0, 0);
    for token in tokens {
        let start = index.position(token.span.start as usize);
        let end = index.position(token.span.end as usize);
        if start.line != end.line || end.character <= start.character {
            continue;
        }
        let delta_line = start.line - previous_line;
        let delta_start = if delta_line == 0 { start.character - previous_start } else { start.character };
        encoded.push(SemanticToken {
            delta_line,
            delta_start,
            length: end.character - start.character,
            token_type: token.kind as u32,
            token_modifiers_bitset: if token.declaration { DECLARATION_BIT } else { 0 },
        });
        (previous_line, previous_start) = (start.line, start.character);
    }
    encoded
}

fn fields_of(members: &[Member]) -> Option<&[Member]> {
    members.iter().find(|member| member.key.node == "fields").and_then(|member| member.value.as_object())
}

struct Collector<'a> {
    text: &'a str,
    json: bool,
    tokens: Vec<Token>,
}

impl Collector<'_> {
    /// Adds a token; a JSON string's span loses its quotes.
    fn push(&mut self, span: Span, kind: TokenKind, declaration: bool) {
        let span = match raw_content(self.text, span) {
            Some((start, inner)) => Span::new(span.file, start, start + inner.len()),
            None => span,
        };
        self.tokens.push(Token { span, kind, declaration });
    }

    fn schema_fields(&mut self, fields: &[Member]) {
        for member in fields {
            self.push(member.key.span, TokenKind::Field, true);
            if let Some(nested) = member.value.as_object().and_then(fields_of) {
                self.schema_fields(nested);
            }
        }
    }

    fn durations(&mut self, value: &Value) {
        match &value.kind {
            ValueKind::Duration(_) => self.push(value.span, TokenKind::Duration, false),
            ValueKind::String(string) if self.json && parse_duration(string).is_some() => {
                self.push(value.span, TokenKind::Duration, false)
            }
            ValueKind::Object(members) => members.iter().for_each(|member| self.durations(&member.value)),
            ValueKind::Array(items) => items.iter().for_each(|item| self.durations(item)),
            _ => {}
        }
    }

    fn config(&mut self, config: &Value) {
        for member in config.as_object().unwrap_or_default() {
            self.value(&member.value, &member.key.node, false);
        }
    }

    /// The tokens of `value`, which sits under config key `key`; `in_set` inside a map's `set`.
    fn value(&mut self, value: &Value, key: &str, in_set: bool) {
        match &value.kind {
            ValueKind::Object(members) => {
                for member in members {
                    if key == "set" && !in_set {
                        self.push(member.key.span, TokenKind::Field, true);
                    }
                    if key == "routes" && member.key.node == "name" {
                        self.push(member.value.span, TokenKind::Port, true);
                        continue;
                    }
                    self.value(&member.value, &member.key.node, in_set || key == "set");
                }
            }
            ValueKind::Array(items) => items.iter().for_each(|item| self.value(item, key, in_set)),
            ValueKind::Expr(expr) => self.expr(expr),
            ValueKind::Duration(_) => self.push(value.span, TokenKind::Duration, false),
            ValueKind::String(string) => self.string(string, value.span, key, in_set),
            _ => {}
        }
    }

    fn string(&mut self, string: &str, span: Span, key: &str, in_set: bool) {
        // Offsets inside a string are only exact when it has no escapes.
        let Some((content_start, raw)) = raw_content(self.text, span) else { return };
        if raw != string {
            return;
        }
        if self.json && PATH_KEYS.contains(&key) {
            self.path_in_text(string, content_start, span);
        } else if self.json && (EXPR_KEYS.contains(&key) || in_set) {
            if let (Some(expr), _) = pulse_syntax::parse_expr(span.file, string, content_start) {
                self.expr(&expr);
            }
        } else if self.json && parse_duration(string).is_some() {
            self.push(span, TokenKind::Duration, false);
        } else {
            for (start, end) in template_holes(string) {
                let inner = &string[start..end];
                let hole = inner.trim();
                let hole_start = start + (inner.len() - inner.trim_start().len());
                self.path_in_text(hole, content_start + hole_start, span);
            }
        }
    }

    /// A dotted field path written at byte `base` of the string at `span`.
    fn path_in_text(&mut self, path: &str, base: usize, span: Span) {
        let mut start = base;
        for segment in path.split('.') {
            let is_name = segment.chars().next().is_some_and(|ch| ch.is_ascii_alphabetic() || ch == '_')
                && segment.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '_');
            if is_name {
                self.tokens.push(Token {
                    span: Span::new(span.file, start, start + segment.len()),
                    kind: TokenKind::Field,
                    declaration: false,
                });
            }
            start += segment.len() + 1;
        }
    }

    fn expr(&mut self, expr: &Expr) {
        match &expr.kind {
            ExprKind::Path(segments) => {
                for segment in segments {
                    self.push(segment.span, TokenKind::Field, false);
                }
            }
            ExprKind::Array(items) => items.iter().for_each(|item| self.expr(item)),
            ExprKind::Call { name, args } => {
                self.push(name.span, TokenKind::Function, false);
                args.iter().for_each(|arg| self.expr(arg));
            }
            ExprKind::Unary { operand, .. } => self.expr(operand),
            ExprKind::Binary { lhs, rhs, .. } => {
                self.expr(lhs);
                self.expr(rhs);
            }
            ExprKind::Match { lhs, .. } => self.expr(lhs),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::analyze;

    fn kinds(name: &str, text: &str) -> Vec<(String, TokenKind, bool)> {
        let analysis = analyze(name, text.to_string(), &|_| Err(std::io::ErrorKind::NotFound.into()));
        tokens(&analysis)
            .into_iter()
            .map(|token| (text[token.span.range()].to_string(), token.kind, token.declaration))
            .collect()
    }

    fn has(tokens: &[(String, TokenKind, bool)], text: &str, kind: TokenKind, declaration: bool) -> bool {
        tokens.iter().any(|token| *token == (text.to_string(), kind, declaration))
    }

    #[test]
    fn pulse_tokens() {
        let text = "pipeline p\nevent { userId: string, props: { show_id: string? }? }\nsrc: file-source(\"in\")\n\
split: splitter { route big: props.show_id != null }\n\
src -> f: filter(lower(userId) != \"\") -> d: delay(5m) by userId -> split\nsplit.big -> out: stdout-sink\n";
        let tokens = kinds("p.pulse", text);
        assert!(has(&tokens, "show_id", TokenKind::Field, true), "{tokens:?}");
        assert!(has(&tokens, "f", TokenKind::NodeId, true));
        assert!(has(&tokens, "src", TokenKind::NodeId, false));
        assert!(has(&tokens, "filter", TokenKind::NodeType, false));
        assert!(has(&tokens, "lower", TokenKind::Function, false));
        assert!(has(&tokens, "5m", TokenKind::Duration, false));
        assert!(has(&tokens, "big", TokenKind::Port, true));
        assert!(has(&tokens, "big", TokenKind::Port, false));
        let text = format!("{text}test \"t\" {{ inputs: [{{ userId: \"a\", ts: 7m }}], expect: {{ out: [at 9m {{ userId: \"a\" }}] }} }}\n");
        let tokens = kinds("p.pulse", &text);
        assert!(has(&tokens, "7m", TokenKind::Duration, false), "{tokens:?}");
        assert!(has(&tokens, "9m", TokenKind::Duration, false), "{tokens:?}");
        assert_eq!(tokens.iter().filter(|token| token.0 == "userId" && token.1 == TokenKind::Field).count(), 3);
    }

    #[test]
    fn json_tokens_leave_the_quotes_out() {
        let text = r#"{"name": "p", "nodes": [
  {"id": "s", "type": "file-source", "config": {"path": "in"}},
  {"id": "d", "type": "delay", "config": {"duration": "5m", "keyBy": "props.userId"}},
  {"id": "o", "type": "api-sink", "config": {"url": "https://x/{{ userId }}"}}
], "edges": ["s -> d", "d -> o"]}"#;
        let tokens = kinds("p.json", text);
        assert!(has(&tokens, "s", TokenKind::NodeId, true), "{tokens:?}");
        assert!(has(&tokens, "delay", TokenKind::NodeType, false));
        assert!(has(&tokens, "5m", TokenKind::Duration, false));
        assert!(has(&tokens, "props", TokenKind::Field, false));
        assert!(has(&tokens, "userId", TokenKind::Field, false));
        assert_eq!(tokens.iter().filter(|token| token.0 == "d" && token.1 == TokenKind::NodeId).count(), 3);
    }

    #[test]
    fn a_broken_item_keeps_the_others_tokens() {
        let text = "pipeline p\nevent { userId: string }\nsrc: file-source(\"in\")\nbroken: filter(userId != {\n\
src -> d: delay(5m) by userId -> out: stdout-sink\n";
        let tokens = kinds("p.pulse", text);
        assert!(has(&tokens, "d", TokenKind::NodeId, true), "{tokens:?}");
        assert!(has(&tokens, "5m", TokenKind::Duration, false));
        assert!(!tokens.iter().any(|token| token.0 == "broken"));
    }

    #[test]
    fn encodes_relative_utf16_positions() {
        let text = "pipeline p\nevent { a: string }\nsrc: file-source(\"é\") { eventTime: a }\n";
        let analysis = analyze("p.pulse", text.to_string(), &|_| Err(std::io::ErrorKind::NotFound.into()));
        let encoded = encode(&tokens(&analysis), &LineIndex::new(text));
        let fields: Vec<(u32, u32, u32)> =
            encoded.iter().map(|token| (token.delta_line, token.delta_start, token.length)).collect();
        // `é` is two bytes but one UTF-16 unit: `eventTime: a` reads `a` at column 35, not 36.
        assert_eq!(fields, [(1, 8, 1), (1, 0, 3), (0, 5, 11), (0, 30, 1)]);
    }
}
