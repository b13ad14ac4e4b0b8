//! A strict (RFC 8259), position-aware JSON reader. It builds `ast::Value` trees with a byte span on
//! every value and key, and recovers from common mistakes so that every error in a file is reported
//! once: a missing `,` is reported and then read as if it were there, a trailing `,` or a comment is
//! reported and skipped, and anything else skips ahead to the next `,`, `}` or `]`.

use std::collections::HashMap;

use crate::ast::{Member, Number, Value, ValueKind};
use crate::codes;
use crate::diagnostic::Diagnostic;
use crate::span::{FileId, Span, Spanned};

/// Deeper documents are rejected rather than risking the stack (serde_json uses the same limit).
const MAX_DEPTH: usize = 128;

/// Reads one JSON value. `None` only when there is no value at all (an empty file or one that does
/// not start like JSON); otherwise the value is returned even when errors were recovered from.
pub fn read_json(file: FileId, text: &str) -> (Option<Value>, Vec<Diagnostic>) {
    let mut reader = Reader {
        file,
        text,
        bytes: text.as_bytes(),
        pos: 0,
        diagnostics: Vec::new(),
        closers: Vec::new(),
        quiet_at: None,
        reported_depth: false,
        pending_key: None,
        unopened_scan: std::cell::Cell::new((usize::MAX, 0)),
    };
    let value = reader.document();
    (value, reader.diagnostics)
}

/// Which container a loop is reading; it decides the words and delimiters used in messages.
#[derive(Clone, Copy, PartialEq)]
enum Container {
    Object,
    Array,
}

impl Container {
    fn closer(self) -> u8 {
        match self {
            Container::Object => b'}',
            Container::Array => b']',
        }
    }

    fn noun(self) -> &'static str {
        match self {
            Container::Object => "object",
            Container::Array => "array",
        }
    }

    fn item(self) -> &'static str {
        match self {
            Container::Object => "object member",
            Container::Array => "array element",
        }
    }
}

struct Reader<'a> {
    file: FileId,
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
    diagnostics: Vec<Diagnostic>,
    /// Closing delimiters of the open containers, innermost last. A `]` inside an object closes
    /// the object implicitly when an array is open around it (a forgotten `}`), else it is stray.
    closers: Vec<u8>,
    /// An offset at which a missing `,` or closer is a consequence of an error already reported
    /// (an unterminated string that swallowed the rest of its line, or an object closed early),
    /// so it is not reported again.
    quiet_at: Option<usize>,
    reported_depth: bool,
    /// A key read before its object was known to start (see `container`).
    pending_key: Option<Spanned<String>>,
    /// `unopened_string_end`'s last scan: from where, and the first stop byte (`"`, a line break
    /// or JSON punctuation) at or after it. Every offset between the two has the same stop, so a
    /// line of bare words is scanned once, not once per word.
    unopened_scan: std::cell::Cell<(usize, usize)>,
}

fn is_ident_start(byte: u8) -> bool {
    byte.is_ascii_alphabetic() || byte == b'_' || byte == b'$'
}

fn is_word_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'_' | b'$' | b'-' | b'.')
}

fn is_key_start(byte: u8) -> bool {
    matches!(byte, b'"' | b'\'') || is_ident_start(byte)
}

fn is_value_start(byte: u8) -> bool {
    matches!(byte, b'{' | b'[' | b'-' | b'+' | b'.') || byte.is_ascii_digit() || is_key_start(byte)
}

impl<'a> Reader<'a> {
    fn span(&self, start: usize, end: usize) -> Span {
        Span::new(self.file, start, end)
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn char_at(&self, pos: usize) -> Option<char> {
        self.text.get(pos..).and_then(|rest| rest.chars().next())
    }

    /// "`x`", "a line break" or "end of file", for "found ..." in messages.
    fn found(&self) -> String {
        match self.char_at(self.pos) {
            None => "end of file".to_string(),
            Some('\n' | '\r') => "a line break".to_string(),
            Some(ch) => format!("`{ch}`"),
        }
    }

    /// The span of the character at the cursor (empty at the end of the file).
    fn char_span(&self) -> Span {
        let len = self.char_at(self.pos).map_or(0, char::len_utf8);
        self.span(self.pos, self.pos + len)
    }

    fn bump_char(&mut self) {
        self.pos += self.char_at(self.pos).map_or(1, char::len_utf8);
    }

    /// Records a syntax error. A second error at the same spot adds nothing but noise, so it is dropped.
    fn report(&mut self, diagnostic: Diagnostic) {
        let start = diagnostic.primary_span().map(|span| span.start);
        if start.is_some() && self.diagnostics.last().and_then(Diagnostic::primary_span).map(|span| span.start) == start
        {
            return;
        }
        self.diagnostics.push(diagnostic);
    }

    fn document(&mut self) -> Option<Value> {
        if self.text.starts_with('\u{feff}') {
            self.pos = '\u{feff}'.len_utf8();
        }
        self.skip_whitespace();
        let value = match self.peek() {
            Some(byte) if is_value_start(byte) => self.value(0, true),
            _ => {
                let found = self.found();
                let span = self.char_span();
                self.report(
                    Diagnostic::new(codes::E0001, format!("expected a JSON value, found {found}"))
                        .primary(span, "expected a JSON object here")
                        .help("a pipeline document starts with `{`"),
                );
                return None;
            }
        };
        self.skip_whitespace();
        if self.pos < self.bytes.len() {
            let found = self.found();
            let end = self.text.trim_end().len().max(self.char_span().end as usize);
            self.report(
                Diagnostic::new(codes::E0001, format!("unexpected {found} after the end of the JSON document"))
                    .primary(self.span(self.pos, end), "unexpected text")
                    .secondary(value.span, "the document ends here")
                    .help("remove the text after the document, or move it inside it"),
            );
        }
        Some(value)
    }

    /// Skips whitespace, reporting (and skipping) comments, which JSON does not allow.
    fn skip_whitespace(&mut self) {
        while let Some(byte) = self.peek() {
            match byte {
                b' ' | b'\t' | b'\n' | b'\r' => self.pos += 1,
                b'/' if matches!(self.bytes.get(self.pos + 1), Some(b'/' | b'*')) => self.comment(),
                _ => break,
            }
        }
    }

    fn comment(&mut self) {
        let start = self.pos;
        let rest = &self.text[start..];
        let (end, closed) = if rest.starts_with("//") {
            (start + rest.find(['\n', '\r']).unwrap_or(rest.len()), true)
        } else {
            match rest[2..].find("*/") {
                Some(idx) => (start + 2 + idx + 2, true),
                None => (self.bytes.len(), false),
            }
        };
        self.pos = end;
        let mut diagnostic = Diagnostic::new(codes::E0001, "comments are not allowed in JSON")
            .primary(self.span(start, end), "comment")
            .help("remove the comment; a note about the pipeline can go in its `description`");
        if !closed {
            diagnostic =
                diagnostic.note("the comment is not closed with `*/` either, so it runs to the end of the file");
        }
        self.report(diagnostic);
    }

    fn value(&mut self, depth: usize, braces_may_be_missing: bool) -> Value {
        let start = self.pos;
        match self.peek() {
            None | Some(b',' | b'}' | b']') => {
                let found = self.found();
                let span = self.span(start, start);
                self.report(
                    Diagnostic::new(codes::E0001, format!("expected a value, found {found}"))
                        .primary(span, "expected a value here")
                        .help("write a value such as `\"text\"`, `1`, `true`, `null`, `{}` or `[]`"),
                );
                Value::new(ValueKind::Null, span)
            }
            Some(b'{' | b'[') if depth >= MAX_DEPTH => {
                self.skip_balanced();
                let span = self.span(start, self.pos);
                if !self.reported_depth {
                    self.reported_depth = true;
                    self.report(
                        Diagnostic::new(codes::E0001, format!("JSON is nested more than {MAX_DEPTH} levels deep"))
                            .primary(span, "nested too deeply"),
                    );
                }
                Value::new(ValueKind::Null, span)
            }
            Some(b'{') => self.container(Container::Object, depth + 1, None),
            Some(b'[') => self.container(Container::Array, depth + 1, None),
            Some(b'"' | b'\'') => {
                let string = self.string();
                self.skip_whitespace();
                // `"config": "topic": ...`: a string followed by `:` is the first key of an
                // object whose `{` is missing. Read the object from that key on.
                if braces_may_be_missing && self.peek() == Some(b':') && depth < MAX_DEPTH {
                    self.report(
                        Diagnostic::new(codes::E0001, format!("expected `{{` before key `{}`", string.node))
                            .primary(self.span(start, start), "expected `{` here")
                            .help(format!("add a `{{` before `{}`", &self.text[string.span.range()])),
                    );
                    return self.container(Container::Object, depth + 1, Some(string));
                }
                Value::new(ValueKind::String(string.node), string.span)
            }
            Some(byte) if byte.is_ascii_alphanumeric() && self.unopened_string_end().is_some() => {
                self.unopened_string()
            }
            Some(byte) if byte.is_ascii_digit() || matches!(byte, b'-' | b'+' | b'.') => self.number(),
            Some(byte) if is_ident_start(byte) => self.bare_word(),
            Some(_) => {
                let span = self.char_span();
                let found = self.found();
                let diagnostic = match self.char_at(start) {
                    Some(quote @ ('\u{201c}' | '\u{201d}' | '\u{2018}' | '\u{2019}')) => {
                        Diagnostic::new(codes::E0001, format!("typographic quote `{quote}` is not valid JSON"))
                            .primary(span, "curly quote")
                            .help("replace the curly quotes around the string with straight `\"` quotes")
                    }
                    _ => Diagnostic::new(codes::E0001, format!("expected a value, found {found}"))
                        .primary(span, "not the start of a JSON value"),
                };
                self.report(diagnostic);
                self.bump_char();
                Value::new(ValueKind::Null, span)
            }
        }
    }

    /// An object or an array. Both loops alternate between "expecting an item" (after the opening
    /// delimiter or a `,`) and "after an item" (expecting a `,` or the closing delimiter).
    /// With `first_key`, the object's `{` is missing and its first key has been read already.
    fn container(&mut self, container: Container, depth: usize, first_key: Option<Spanned<String>>) -> Value {
        let open = first_key.as_ref().map_or(self.pos, |key| key.span.start as usize);
        let mut resume = first_key.is_some();
        if !resume {
            self.pos += 1;
        }
        self.pending_key = first_key;
        self.closers.push(container.closer());
        let mut members: Vec<Member> = Vec::new();
        let mut elements: Vec<Value> = Vec::new();
        let mut first_keys: HashMap<String, Span> = HashMap::new();
        let mut last_end = self.pos;
        let mut comma: Option<usize> = None;
        let end = 'items: loop {
            self.skip_whitespace();
            match self.peek() {
                _ if std::mem::take(&mut resume) => {
                    last_end = self.item(container, depth, &mut members, &mut elements, &mut first_keys, None);
                }
                Some(byte) if byte == container.closer() => {
                    if let Some(comma) = comma {
                        self.trailing_comma(container, comma);
                    }
                    self.pos += 1;
                    break 'items self.pos;
                }
                None => break 'items self.unclosed(container, open, last_end),
                Some(byte) if self.closes_outer(byte) => break 'items self.unclosed(container, open, last_end),
                Some(byte) if self.forgot_closing_brace(container, byte) => {
                    break 'items self.close_early(container, open, last_end)
                }
                Some(b',') => {
                    let span = self.char_span();
                    let help = match comma {
                        Some(_) => "remove this `,`".to_string(),
                        None => "remove this `,`, or add an item before it".to_string(),
                    };
                    self.report(
                        Diagnostic::new(codes::E0001, format!("expected {}, found `,`", self.expected_item(container)))
                            .primary(span, "unexpected `,`")
                            .help(help),
                    );
                    comma = Some(self.pos);
                    self.pos += 1;
                    continue 'items;
                }
                Some(byte) if self.item_start(container, byte) => {
                    last_end = self.item(container, depth, &mut members, &mut elements, &mut first_keys, None);
                }
                Some(_) => {
                    let found = self.found();
                    let span = self.char_span();
                    let diagnostic = match container {
                        Container::Object => Diagnostic::new(codes::E0001, format!("expected a key, found {found}"))
                            .primary(span, "expected a double-quoted key here")
                            .help("write object members as `\"key\": value`"),
                        Container::Array => Diagnostic::new(codes::E0001, format!("expected a value, found {found}"))
                            .primary(span, "not the start of a JSON value"),
                    };
                    self.report(diagnostic);
                    self.skip_junk();
                }
            }
            // After an item: a `,`, the closing delimiter, or recovery.
            loop {
                self.skip_whitespace();
                match self.peek() {
                    Some(b',') => {
                        comma = Some(self.pos);
                        self.pos += 1;
                        continue 'items;
                    }
                    Some(b';') => {
                        let span = self.char_span();
                        self.report(
                            Diagnostic::new(
                                codes::E0001,
                                format!("expected `,` or `{}`, found `;`", container.closer() as char),
                            )
                            .primary(span, "`;` does not separate items in JSON")
                            .help("replace the `;` with `,`"),
                        );
                        comma = Some(self.pos);
                        self.pos += 1;
                        continue 'items;
                    }
                    Some(byte) if byte == container.closer() => {
                        self.pos += 1;
                        break 'items self.pos;
                    }
                    None => break 'items self.unclosed(container, open, last_end),
                    Some(byte) if self.closes_outer(byte) => break 'items self.unclosed(container, open, last_end),
                    Some(byte) if self.forgot_closing_brace(container, byte) => {
                        break 'items self.close_early(container, open, last_end)
                    }
                    Some(byte) if self.item_start(container, byte) => {
                        // A missing `,`: report it and read on as if it were there.
                        let missing_at = (self.quiet_at != Some(last_end)).then_some(last_end);
                        last_end =
                            self.item(container, depth, &mut members, &mut elements, &mut first_keys, missing_at);
                    }
                    Some(_) => {
                        let found = self.found();
                        let span = self.char_span();
                        self.report(
                            Diagnostic::new(
                                codes::E0001,
                                format!(
                                    "expected `,` or `{}` after {}, found {found}",
                                    container.closer() as char,
                                    container.item()
                                ),
                            )
                            .primary(span, "unexpected here")
                            .secondary(self.span(last_end, last_end), format!("the {} ends here", container.item())),
                        );
                        self.skip_junk();
                    }
                }
            }
        };
        self.closers.pop();
        let span = self.span(open, end);
        match container {
            Container::Object => Value::new(ValueKind::Object(members), span),
            Container::Array => Value::new(ValueKind::Array(elements), span),
        }
    }

    fn item_start(&self, container: Container, byte: u8) -> bool {
        match container {
            Container::Object => is_key_start(byte),
            Container::Array => is_value_start(byte),
        }
    }

    fn expected_item(&self, container: Container) -> &'static str {
        match container {
            Container::Object => "a key",
            Container::Array => "a value",
        }
    }

    /// Reads one member or element and returns where it ends. With `missing_comma_at`, a missing
    /// `,` before it is reported, pointing at that offset and at the item.
    fn item(
        &mut self,
        container: Container,
        depth: usize,
        members: &mut Vec<Member>,
        elements: &mut Vec<Value>,
        first_keys: &mut HashMap<String, Span>,
        missing_comma_at: Option<usize>,
    ) -> usize {
        let diagnostic_idx = self.diagnostics.len();
        let (item_span, end) = match container {
            Container::Object => {
                let key = self.key();
                let key_span = key.span;
                let member = self.member_rest(key, depth);
                let end = member.value.span.end as usize;
                if let Some(first) = first_keys.get(&member.key.node) {
                    self.report(
                        Diagnostic::new(codes::E0003, format!("duplicate key `{}`", member.key.node))
                            .primary(member.key.span, "duplicate key")
                            .secondary(*first, "first defined here")
                            .help(format!("remove one of the two `{}` members", member.key.node)),
                    );
                } else {
                    first_keys.insert(member.key.node.clone(), member.key.span);
                }
                members.push(member);
                (key_span, end)
            }
            Container::Array => {
                let element = self.value(depth, true);
                let end = element.span.end as usize;
                // Point at a scalar whole, and only at the first byte of a (possibly long) container.
                let span = match element.kind {
                    ValueKind::Object(_) | ValueKind::Array(_) => {
                        self.span(element.span.start as usize, element.span.start as usize + 1)
                    }
                    _ => element.span,
                };
                elements.push(element);
                (span, end)
            }
        };
        if let Some(at) = missing_comma_at {
            let (next, closer) = match container {
                Container::Object => ("next member starts here", '}'),
                Container::Array => ("next element starts here", ']'),
            };
            let diagnostic =
                Diagnostic::new(codes::E0001, format!("expected `,` or `{closer}` after {}", container.item()))
                    .primary(self.span(at, at), "expected `,` here")
                    .secondary(item_span, next)
                    .help("add a `,` after the previous value");
            self.diagnostics.insert(diagnostic_idx, diagnostic);
        }
        end
    }

    /// A key: a double-quoted string, or (reported) a single-quoted string or an unquoted word.
    fn key(&mut self) -> Spanned<String> {
        if let Some(key) = self.pending_key.take() {
            return key;
        }
        if self.peek() == Some(b'"') || self.peek() == Some(b'\'') {
            return self.string();
        }
        let start = self.pos;
        while self.peek().is_some_and(is_word_byte) {
            self.pos += 1;
        }
        let word = self.text[start..self.pos].to_string();
        if self.peek() == Some(b'"') {
            self.pos += 1;
            self.report(
                Diagnostic::new(codes::E0001, format!("key `{word}\"` has no opening quote"))
                    .primary(self.span(start, start), "expected `\"` here")
                    .help(format!("write `\"{word}\"`")),
            );
            return Spanned::new(word, self.span(start, self.pos));
        }
        let span = self.span(start, self.pos);
        self.report(
            Diagnostic::new(codes::E0001, format!("unquoted key `{word}`"))
                .primary(span, "keys must be double-quoted strings")
                .help(format!("write `\"{word}\"`")),
        );
        Spanned::new(word, span)
    }

    /// The `: value` after a key. A missing `:` is reported and the value read if one follows.
    fn member_rest(&mut self, key: Spanned<String>, depth: usize) -> Member {
        self.skip_whitespace();
        let key_end = key.span.end as usize;
        let mut colon_found = true;
        match self.peek() {
            Some(b':') => self.pos += 1,
            Some(b'=') => {
                let span = self.char_span();
                self.report(
                    Diagnostic::new(codes::E0001, format!("expected `:` after key `{}`, found `=`", key.node))
                        .primary(span, "use `:` here")
                        .help("replace the `=` with `:`"),
                );
                self.pos += 1;
            }
            _ if self.split_key(&key).is_some() => {
                let (name, colon) = self.split_key(&key).expect("checked just above");
                // The key's closing quote is missing, so the string ran on to the next quote
                // (or the end of the line, reported as unterminated). Read it again up to its `:`.
                if self.diagnostics.last().and_then(Diagnostic::primary_span) == Some(key.span) {
                    self.diagnostics.pop();
                }
                self.report(
                    Diagnostic::new(codes::E0001, format!("key `{name}` has no closing quote"))
                        .primary(self.span(colon, colon), "expected `\"` here")
                        .help(format!("write `\"{name}\":`")),
                );
                self.quiet_at = None;
                self.pos = colon + 1;
                let key = Spanned::new(name, self.span(key.span.start as usize, colon));
                self.skip_whitespace();
                let value = self.value(depth, true);
                return Member { key, value };
            }
            _ => {
                let found = self.found();
                self.report(
                    Diagnostic::new(codes::E0001, format!("expected `:` after key `{}`, found {found}", key.node))
                        .primary(self.span(key_end, key_end), "expected `:` here")
                        .help(format!("write the member as `\"{}\": value`", key.node)),
                );
                colon_found = false;
                self.skip_whitespace();
                if !self.peek().is_some_and(is_value_start) {
                    let value = Value::new(ValueKind::Null, self.span(key_end, key_end));
                    return Member { key, value };
                }
            }
        }
        self.skip_whitespace();
        let value = self.value(depth, colon_found);
        Member { key, value }
    }

    /// `{` where an object member should be, inside an array: most likely `}, {` with the `}`
    /// forgotten, as between two nodes.
    fn forgot_closing_brace(&self, container: Container, byte: u8) -> bool {
        container == Container::Object
            && byte == b'{'
            && self.closers[..self.closers.len().saturating_sub(1)].contains(&b']')
    }

    /// Closes an object before a `{` (see `forgot_closing_brace`). The containers around it then
    /// read on quietly up to the array, which reads the `{` as its next element.
    fn close_early(&mut self, container: Container, open: usize, last_end: usize) -> usize {
        let end = self.unclosed(container, open, last_end);
        self.quiet_at = Some(end);
        end
    }

    /// For a double-quoted key without a following `:` whose text has one (`"name: "...`): the
    /// key before the `:` and the offset of the `:`. Only for keys without escapes before the `:`.
    fn split_key(&self, key: &Spanned<String>) -> Option<(String, usize)> {
        let start = key.span.start as usize;
        if self.bytes.get(start) != Some(&b'"') {
            return None;
        }
        let raw = self.text.get(start + 1..key.span.end as usize)?;
        let colon = raw.find(':')?;
        let name = raw[..colon].trim_end();
        (!name.is_empty() && !name.contains('\\')).then(|| (name.to_string(), start + 1 + colon))
    }

    /// Whether `byte` closes a container around the current one, i.e. the current one lacks its closer.
    fn closes_outer(&self, byte: u8) -> bool {
        matches!(byte, b'}' | b']') && self.closers[..self.closers.len().saturating_sub(1)].contains(&byte)
    }

    fn unclosed(&mut self, container: Container, open: usize, last_end: usize) -> usize {
        if self.quiet_at == Some(last_end) {
            return last_end;
        }
        let closer = container.closer() as char;
        let found = self.found();
        self.report(
            Diagnostic::new(
                codes::E0001,
                format!("expected `{closer}` to close the {}, found {found}", container.noun()),
            )
            .primary(self.span(last_end, last_end), format!("expected `{closer}` here"))
            .secondary(self.span(open, open + 1), format!("the {} starts here", container.noun()))
            .help(format!("add a `{closer}` after the last {}", container.item())),
        );
        last_end
    }

    fn trailing_comma(&mut self, container: Container, comma: usize) {
        self.report(
            Diagnostic::new(codes::E0001, format!("trailing `,` in {}", container.noun()))
                .primary(self.span(comma, comma + 1), format!("no {} follows this `,`", container.item()))
                .note(format!("JSON does not allow a `,` after the last {}", container.item()))
                .help("remove this `,`"),
        );
    }

    /// Skips what cannot be read, up to the next `,`, `}` or `]` outside nested brackets; always
    /// moves forward, so recovery loops terminate.
    fn skip_junk(&mut self) {
        if matches!(self.peek(), Some(b'}' | b']')) {
            self.pos += 1;
            return;
        }
        let start = self.pos;
        let mut depth = 0usize;
        while let Some(byte) = self.peek() {
            match byte {
                b',' | b'}' | b']' if depth == 0 => break,
                b'{' | b'[' => depth += 1,
                b'}' | b']' => depth -= 1,
                b'"' => {
                    self.skip_raw_string();
                    continue;
                }
                _ => {}
            }
            self.pos += 1;
        }
        if self.pos == start {
            self.bump_char();
        }
    }

    /// Skips a container without reading it, for documents nested too deeply.
    fn skip_balanced(&mut self) {
        let mut depth = 0usize;
        while let Some(byte) = self.peek() {
            match byte {
                b'{' | b'[' => depth += 1,
                b'}' | b']' => {
                    depth -= 1;
                    if depth == 0 {
                        self.pos += 1;
                        return;
                    }
                }
                b'"' => {
                    self.skip_raw_string();
                    continue;
                }
                _ => {}
            }
            self.pos += 1;
        }
    }

    fn skip_raw_string(&mut self) {
        self.pos += 1;
        while let Some(byte) = self.peek() {
            match byte {
                b'"' => {
                    self.pos += 1;
                    return;
                }
                b'\n' => return,
                b'\\' => {
                    self.pos += 1;
                    if self.peek().is_some_and(|byte| byte != b'\n') {
                        self.bump_char();
                    }
                }
                _ => self.pos += 1,
            }
        }
    }

    /// A double-quoted string (or a reported single-quoted one), decoded, with the span of its quotes.
    /// An unterminated string ends at the end of its line.
    fn string(&mut self) -> Spanned<String> {
        let start = self.pos;
        let quote = self.bytes[start];
        self.pos += 1;
        let mut out = String::new();
        let mut segment_start = self.pos;
        loop {
            match self.peek() {
                None | Some(b'\n' | b'\r') => {
                    out.push_str(&self.text[segment_start..self.pos]);
                    let span = self.span(start, self.pos);
                    self.report(
                        Diagnostic::new(codes::E0001, "unterminated string")
                            .primary(span, format!("missing closing `{}`", quote as char))
                            .help(format!("add a `{}` at the end of the string", quote as char)),
                    );
                    self.quiet_at = Some(self.pos);
                    return Spanned::new(out, span);
                }
                Some(byte) if byte == quote => {
                    out.push_str(&self.text[segment_start..self.pos]);
                    self.pos += 1;
                    break;
                }
                Some(b'\\') => {
                    out.push_str(&self.text[segment_start..self.pos]);
                    self.escape(quote, &mut out);
                    segment_start = self.pos;
                }
                Some(byte) if byte < 0x20 => {
                    out.push_str(&self.text[segment_start..self.pos]);
                    let ch = byte as char;
                    let escaped = match ch {
                        '\t' => "\\t".to_string(),
                        _ => format!("\\u{:04x}", byte),
                    };
                    self.report(
                        Diagnostic::new(codes::E0001, "control character in string")
                            .primary(self.span(self.pos, self.pos + 1), "must be escaped")
                            .help(format!("write it as `{escaped}`")),
                    );
                    out.push(ch);
                    self.pos += 1;
                    segment_start = self.pos;
                }
                Some(_) => self.pos += 1,
            }
        }
        let span = self.span(start, self.pos);
        if quote == b'\'' {
            let mut suggestion = String::new();
            crate::expr_print::write_string(&mut suggestion, &out);
            self.report(
                Diagnostic::new(codes::E0001, "strings must use double quotes")
                    .primary(span, "single-quoted string")
                    .help(format!("write `{suggestion}`")),
            );
        }
        Spanned::new(out, span)
    }

    /// One escape sequence starting at a `\`; an invalid one is reported and kept as written.
    fn escape(&mut self, quote: u8, out: &mut String) {
        let start = self.pos;
        self.pos += 1;
        let decoded = match self.peek() {
            Some(b'"') => '"',
            Some(b'\\') => '\\',
            Some(b'/') => '/',
            Some(b'b') => '\u{8}',
            Some(b'f') => '\u{c}',
            Some(b'n') => '\n',
            Some(b'r') => '\r',
            Some(b't') => '\t',
            Some(b'\'') if quote == b'\'' => '\'',
            Some(b'u') => {
                self.pos += 1;
                out.push(self.unicode_escape(start));
                return;
            }
            // The string is unterminated; `string` reports that.
            None | Some(b'\n' | b'\r') => {
                out.push('\\');
                return;
            }
            Some(_) => {
                let ch = self.char_at(self.pos).unwrap_or('\\');
                self.bump_char();
                let help = if ch.is_ascii_alphanumeric() {
                    "to write a backslash itself, double it: `\\\\`"
                } else {
                    "remove the `\\`, or double it to write a backslash: `\\\\`"
                };
                self.report(
                    Diagnostic::new(codes::E0001, format!("invalid escape `\\{ch}` in string"))
                        .primary(self.span(start, self.pos), "unknown escape")
                        .note(
                            "valid escapes are `\\\"`, `\\\\`, `\\/`, `\\b`, `\\f`, `\\n`, `\\r`, `\\t` and `\\uXXXX`",
                        )
                        .help(help),
                );
                out.push('\\');
                out.push(ch);
                return;
            }
        };
        self.pos += 1;
        out.push(decoded);
    }

    fn hex4(&self, at: usize) -> Option<u32> {
        let digits = self.bytes.get(at..at + 4)?;
        if !digits.iter().all(u8::is_ascii_hexdigit) {
            return None;
        }
        u32::from_str_radix(std::str::from_utf8(digits).ok()?, 16).ok()
    }

    /// The rest of a `\uXXXX` escape (the cursor is after the `u`), joining surrogate pairs.
    fn unicode_escape(&mut self, start: usize) -> char {
        let Some(unit) = self.hex4(self.pos) else {
            while self.peek().is_some_and(|byte| byte.is_ascii_hexdigit()) && self.pos < start + 6 {
                self.pos += 1;
            }
            self.report(
                Diagnostic::new(codes::E0001, "invalid unicode escape in string")
                    .primary(self.span(start, self.pos), "expected four hex digits after `\\u`")
                    .help("write the character as `\\u` and four hex digits, e.g. `\\u00e9`"),
            );
            return char::REPLACEMENT_CHARACTER;
        };
        self.pos += 4;
        if (0xD800..0xDC00).contains(&unit) && self.bytes.get(self.pos..self.pos + 2) == Some(b"\\u") {
            if let Some(low @ 0xDC00..0xE000) = self.hex4(self.pos + 2) {
                self.pos += 6;
                let code = 0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00);
                return char::from_u32(code).unwrap_or(char::REPLACEMENT_CHARACTER);
            }
        }
        char::from_u32(unit).unwrap_or_else(|| {
            self.report(
                Diagnostic::new(codes::E0001, format!("unpaired surrogate `\\u{unit:04X}` in string"))
                    .primary(self.span(start, self.pos), "not a character on its own")
                    .help("write the full surrogate pair, e.g. `\\ud83d\\ude00`, or the character itself"),
            );
            char::REPLACEMENT_CHARACTER
        })
    }

    /// A number token: the longest run that could belong to a number, validated against RFC 8259.
    fn number(&mut self) -> Value {
        let start = self.pos;
        while let Some(byte) = self.peek() {
            let sign_ok = self.pos == start || matches!(self.bytes[self.pos - 1], b'e' | b'E');
            if byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'_') || (matches!(byte, b'+' | b'-') && sign_ok) {
                self.pos += 1;
            } else {
                break;
            }
        }
        let token = &self.text[start..self.pos];
        let span = self.span(start, self.pos);
        let unsigned = token.trim_start_matches(['-', '+']);
        if matches!(unsigned, "Infinity" | "NaN" | "inf" | "nan") {
            self.not_a_number(token, span);
            return Value::new(ValueKind::Null, span);
        }
        match validate_number(token) {
            Ok(is_integer) => {
                if let Some(int) = is_integer.then(|| token.parse::<i64>().ok()).flatten() {
                    return Value::new(ValueKind::Number(Number::Int(int)), span);
                }
                let float = token.parse::<f64>().unwrap_or(0.0);
                if float.is_infinite() {
                    self.report(
                        Diagnostic::new(codes::E0109, format!("number `{token}` is out of range"))
                            .primary(span, "does not fit in a 64-bit float")
                            .note("JSON numbers must be finite 64-bit floats, at most about `1.8e308`"),
                    );
                    return Value::new(ValueKind::Number(Number::Float(f64::MAX.copysign(float))), span);
                }
                Value::new(ValueKind::Number(Number::Float(float)), span)
            }
            Err((message, help)) => {
                let mut diagnostic =
                    Diagnostic::new(codes::E0001, message).primary(span, format!("invalid number `{token}`"));
                if let Some(help) = help {
                    diagnostic = diagnostic.help(help);
                }
                self.report(diagnostic);
                let kind = match token.parse::<f64>() {
                    Ok(float) if float.is_finite() => match token.parse::<i64>() {
                        Ok(int) => Number::Int(int),
                        Err(_) => Number::Float(float),
                    },
                    _ => Number::Int(0),
                };
                Value::new(ValueKind::Number(kind), span)
            }
        }
    }

    fn not_a_number(&mut self, token: &str, span: Span) {
        self.report(
            Diagnostic::new(codes::E0109, format!("`{token}` is not a JSON number"))
                .primary(span, "not a finite number")
                .note("JSON has no `NaN` or `Infinity`")
                .help("use `null`, or a finite number"),
        );
    }

    /// Where a string missing its opening quote ends (`5m",` or `send welcome push",`): a `"` later
    /// on the line, directly after text with no JSON punctuation. A space before the `"` is more
    /// likely a missing `,` (`null "b": 1`), so it does not count.
    fn unopened_string_end(&self) -> Option<usize> {
        let (scanned_from, cached_stop) = self.unopened_scan.get();
        let stop = if scanned_from <= self.pos && self.pos <= cached_stop {
            cached_stop
        } else {
            let is_stop = |byte: &u8| {
                matches!(byte, b'"' | b'\n' | b'\r' | b',' | b':' | b'{' | b'}' | b'[' | b']' | b'\'' | b'\\')
            };
            let stop = self.bytes[self.pos..].iter().position(is_stop).map_or(self.bytes.len(), |at| self.pos + at);
            self.unopened_scan.set((self.pos, stop));
            stop
        };
        let before = &self.text[self.pos..stop];
        let closes = self.bytes.get(stop) == Some(&b'"') && !before.ends_with(char::is_whitespace);
        closes.then_some(stop)
    }

    fn unopened_string(&mut self) -> Value {
        let start = self.pos;
        let quote = self.unopened_string_end().expect("checked by the caller");
        let text = self.text[start..quote].to_string();
        self.pos = quote + 1;
        self.report(
            Diagnostic::new(codes::E0001, format!("string `{text}\"` has no opening quote"))
                .primary(self.span(start, start), "expected `\"` here")
                .help(format!("write `\"{text}\"`")),
        );
        Value::new(ValueKind::String(text), self.span(start, self.pos))
    }

    /// An unquoted word in value position: `true`, `false`, `null`, a literal from another language
    /// (`True`, `None`, ...) or an unquoted string; the mistakes are reported and read as meant.
    fn bare_word(&mut self) -> Value {
        let start = self.pos;
        while self.peek().is_some_and(is_word_byte) {
            self.pos += 1;
        }
        let word = &self.text[start..self.pos];
        let span = self.span(start, self.pos);
        let (kind, fix) = match word {
            "true" => return Value::new(ValueKind::Bool(true), span),
            "false" => return Value::new(ValueKind::Bool(false), span),
            "null" => return Value::new(ValueKind::Null, span),
            "True" | "TRUE" => (ValueKind::Bool(true), "true"),
            "False" | "FALSE" => (ValueKind::Bool(false), "false"),
            "None" | "NULL" | "Null" | "nil" | "undefined" => (ValueKind::Null, "null"),
            "NaN" | "Infinity" => {
                self.not_a_number(word, span);
                return Value::new(ValueKind::Null, span);
            }
            _ => {
                let (help, replacement) = match crate::diagnostic::did_you_mean(word, ["true", "false", "null"]) {
                    Some(literal) => (format!("did you mean `{literal}`?"), literal.to_string()),
                    None => (format!("write `\"{word}\"`"), format!("\"{word}\"")),
                };
                self.report(
                    Diagnostic::new(codes::E0001, format!("unquoted string `{word}`"))
                        .primary(span, "strings must be in double quotes")
                        .help(help)
                        .suggest(span, replacement),
                );
                return Value::new(ValueKind::String(word.to_string()), span);
            }
        };
        self.report(
            Diagnostic::new(codes::E0001, format!("`{word}` is not a JSON literal"))
                .primary(span, "not JSON")
                .help(format!("write `{fix}`"))
                .suggest(span, fix),
        );
        Value::new(kind, span)
    }
}

/// Checks a number token against RFC 8259: `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`.
/// Returns whether it is an integer literal, or a message and a suggested fix.
fn validate_number(token: &str) -> Result<bool, (String, Option<String>)> {
    let bytes = token.as_bytes();
    let digits_from = |mut idx: usize| {
        while bytes.get(idx).is_some_and(u8::is_ascii_digit) {
            idx += 1;
        }
        idx
    };
    if let Some(rest) = token.strip_prefix('+') {
        return Err(("JSON numbers cannot start with `+`".into(), Some(format!("write `{rest}`"))));
    }
    let mut idx = usize::from(token.starts_with('-'));
    match bytes.get(idx) {
        Some(b'0') if bytes.get(idx + 1).is_some_and(u8::is_ascii_digit) => {
            let rest = token[idx..].trim_start_matches('0');
            let zero = if rest.starts_with(|ch: char| ch.is_ascii_digit()) { "" } else { "0" };
            let fixed = format!("{}{zero}{rest}", &token[..idx]);
            return Err(("leading zeros are not allowed in JSON numbers".into(), Some(format!("write `{fixed}`"))));
        }
        Some(b'0') => idx += 1,
        Some(b'1'..=b'9') => idx = digits_from(idx),
        Some(b'.') => {
            let fixed = format!("{}0{}", &token[..idx], &token[idx..]);
            return Err(("JSON numbers need a digit before `.`".into(), Some(format!("write `{fixed}`"))));
        }
        _ => return Err(("expected a digit after `-`".into(), None)),
    }
    let mut is_integer = true;
    if bytes.get(idx) == Some(&b'.') {
        is_integer = false;
        if !bytes.get(idx + 1).is_some_and(u8::is_ascii_digit) {
            let help = (idx + 1 == bytes.len()).then(|| format!("write `{token}0`"));
            return Err(("expected a digit after `.` in number".into(), help));
        }
        idx = digits_from(idx + 1);
    }
    if matches!(bytes.get(idx), Some(b'e' | b'E')) {
        is_integer = false;
        idx += 1;
        if matches!(bytes.get(idx), Some(b'+' | b'-')) {
            idx += 1;
        }
        if !bytes.get(idx).is_some_and(u8::is_ascii_digit) {
            return Err(("expected a digit in the exponent of a number".into(), None));
        }
        idx = digits_from(idx);
    }
    if idx != bytes.len() {
        return Err((format!("invalid number `{token}`"), None));
    }
    Ok(is_integer)
}
