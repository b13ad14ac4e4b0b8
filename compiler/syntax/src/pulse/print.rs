//! Lays out a surface tree as canonical `.pulse` text: 2-space indentation, one entry per line
//! in blocks, spaces around `->` and binary operators, normalized strings and durations. When
//! the tree came from a file (`pulsec fmt`), comments are carried over: a comment before a
//! construct stays before it, a comment at the end of a line stays at the end of that line.
//! Every layout decision depends only on the tree and on where comments are, so formatting is
//! idempotent.

use std::ops::Range;

use crate::ast::{Expr, ExprKind};
use crate::expr_print::{print_expr, write_string};
use crate::pulse::lexer;
use crate::pulse::parse::duration_millis;
use crate::pulse::tree::*;
use crate::span::Span;

/// Lines longer than this are broken (chains, lists, objects).
const MAX_WIDTH: usize = 100;

pub(crate) struct Printer<'s> {
    out: String,
    source: &'s str,
    comments: Vec<Range<usize>>,
    next_comment: usize,
    /// Inside a test body, where lists may hold test forms (`at 5m { ... }`, `clock 5m`).
    in_test: bool,
}

pub(crate) fn print_file(file: &File, source: &str) -> String {
    let mut printer =
        Printer { out: String::new(), source, comments: lexer::comments(source), next_comment: 0, in_test: false };
    printer.file(file);
    printer.out
}

/// True when `text` is an identifier usable as a bare key.
pub(crate) fn is_ident(text: &str) -> bool {
    let mut chars = text.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// True when `text` is a node id / port / route name token (`[A-Za-z0-9_-]+`, no `->`).
pub(crate) fn is_node_token(text: &str) -> bool {
    !text.is_empty()
        && text.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        && !text.contains("->")
        && !text.ends_with('-')
}

fn quoted(text: &str) -> String {
    let mut out = String::new();
    write_string(&mut out, text);
    out
}

fn key_text(key: &str) -> String {
    if is_ident(key) {
        key.to_string()
    } else {
        quoted(key)
    }
}

fn duration_text(text: &str) -> String {
    let digits_end = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    match (text[..digits_end].parse::<u64>(), duration_millis(text)) {
        (Ok(number), Some(_)) => format!("{number}{}", &text[digits_end..]),
        _ => text.to_string(),
    }
}

/// A value on one line.
pub(crate) fn inline_value(value: &Value) -> String {
    match &value.kind {
        ValueKind::Duration(duration) => duration_text(&duration.text),
        ValueKind::Expr(expr) => print_expr(expr),
        ValueKind::List(items) => format!("[{}]", items.iter().map(inline_value).collect::<Vec<_>>().join(", ")),
        ValueKind::Object(pairs) if pairs.is_empty() => "{}".to_string(),
        ValueKind::Object(pairs) => format!(
            "{{ {} }}",
            pairs
                .iter()
                .map(|pair| format!("{}: {}", key_text(&pair.key.node), inline_value(&pair.value)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// A test form of a test body's list, from its `$`-key object: the readable text before the
/// record (`at 5m partial `, or the whole `clock 5m` / `nothing until 5m`) and the record's fields.
/// `None` for anything else, which then prints as written (`"$at": ...` keys quoted).
fn test_form(value: &Value) -> Option<(String, Option<Value>)> {
    let ValueKind::Object(pairs) = &value.kind else { return None };
    match pairs.as_slice() {
        [only] if only.key.node == "$clock" => return Some((format!("clock {}", inline_value(&only.value)), None)),
        [only] if only.key.node == "$nothing" => {
            let ValueKind::Object(bounds) = &only.value.kind else { return None };
            let mut text = "nothing".to_string();
            let (mut from, mut until) = (None, None);
            for bound in bounds {
                match bound.key.node.as_str() {
                    "from" if from.is_none() => from = Some(&bound.value),
                    "until" if until.is_none() => until = Some(&bound.value),
                    _ => return None,
                }
            }
            for (word, bound) in [("from", from), ("until", until)] {
                if let Some(bound) = bound {
                    text.push_str(&format!(" {word} {}", inline_value(bound)));
                }
            }
            return Some((text, None));
        }
        _ => {}
    }
    let mut prefix = String::new();
    let mut at = None;
    let mut partial = false;
    let mut fields = Vec::new();
    for pair in pairs {
        match pair.key.node.as_str() {
            "$at" if at.is_none() => at = Some(inline_value(&pair.value)),
            "$partial" if !partial => match &pair.value.kind {
                ValueKind::Expr(Expr { kind: ExprKind::Bool(true), .. }) => partial = true,
                _ => return None,
            },
            key if key.starts_with('$') => return None,
            _ => fields.push(pair.clone()),
        }
    }
    if at.is_none() && !partial {
        return None;
    }
    if let Some(at) = at {
        prefix.push_str(&format!("at {at} "));
    }
    if partial {
        prefix.push_str("partial ");
    }
    Some((prefix, Some(Value { span: value.span, kind: ValueKind::Object(fields) })))
}

/// `inline_value` of an element of a test body's list.
fn inline_test_elem(value: &Value) -> String {
    match test_form(value) {
        Some((prefix, Some(record))) => format!("{prefix}{}", inline_value(&record)),
        Some((text, None)) => text,
        None => inline_value(value),
    }
}

fn contains_object(value: &Value) -> bool {
    match &value.kind {
        ValueKind::Object(_) => true,
        ValueKind::List(items) => items.iter().any(contains_object),
        _ => false,
    }
}

impl Printer<'_> {
    fn column(&self) -> usize {
        self.out.len() - self.out.rfind('\n').map_or(0, |idx| idx + 1)
    }

    fn indent(&mut self, level: usize) {
        for _ in 0..level {
            self.out.push_str("  ");
        }
    }

    fn has_comment_in(&self, span: Span) -> bool {
        !span.is_empty()
            && self.comments[self.next_comment..]
                .iter()
                .any(|comment| comment.start >= span.start as usize && comment.start < span.end as usize)
    }

    /// Writes every pending comment that starts before `pos`, each on its own line.
    fn comments_before(&mut self, pos: usize, level: usize) {
        while let Some(comment) = self.comments.get(self.next_comment).cloned() {
            if comment.start >= pos {
                break;
            }
            self.indent(level);
            self.out.push_str(self.source[comment].trim_end());
            self.out.push('\n');
            self.next_comment += 1;
        }
    }

    /// Ends a line, moving a comment that followed `end` on the same source line to its end.
    fn end_line(&mut self, end: Span) {
        self.trailing_comment(end, usize::MAX);
        self.out.push('\n');
    }

    /// Appends a comment that follows `end` on its source line and starts before `limit`.
    fn trailing_comment(&mut self, end: Span, limit: usize) {
        if let Some(comment) = self.comments.get(self.next_comment).cloned() {
            let end = end.end as usize;
            if !end_is_synthetic(end)
                && comment.start >= end
                && comment.start < limit
                && !self.source[end..comment.start].contains('\n')
            {
                self.out.push(' ');
                self.out.push_str(self.source[comment].trim_end());
                self.next_comment += 1;
            }
        }
    }

    /// True when the source has a blank line between `from` and `to`.
    fn blank_between(&self, from: usize, to: usize) -> bool {
        let Some(gap) = self.source.get(from..to) else { return false };
        let mut newlines = 0;
        for ch in gap.chars() {
            if ch == '\n' {
                newlines += 1;
                if newlines >= 2 {
                    return true;
                }
            } else if !ch.is_whitespace() {
                newlines = 0;
            }
        }
        false
    }

    fn file(&mut self, file: &File) {
        let mut last_end: Option<usize> = None;
        for item in &file.items {
            let start = item.span.start as usize;
            if self.source.is_empty() {
                if item.blank_before && last_end.is_some() {
                    self.out.push('\n');
                }
                last_end = Some(0);
            } else {
                // Comments before the item, keeping blank lines between them.
                while let Some(comment) = self.comments.get(self.next_comment).cloned() {
                    if comment.start >= start {
                        break;
                    }
                    if last_end.is_some_and(|end| self.blank_between(end, comment.start)) {
                        self.out.push('\n');
                    }
                    self.out.push_str(self.source[comment.clone()].trim_end());
                    self.out.push('\n');
                    self.next_comment += 1;
                    last_end = Some(comment.end);
                }
                if last_end.is_some_and(|end| self.blank_between(end, start)) {
                    self.out.push('\n');
                }
                last_end = Some(item.span.end as usize);
            }
            self.item(item);
        }
        // Comments after the last item.
        while let Some(comment) = self.comments.get(self.next_comment).cloned() {
            if last_end.is_some_and(|end| self.blank_between(end, comment.start)) {
                self.out.push('\n');
            }
            self.out.push_str(self.source[comment.clone()].trim_end());
            self.out.push('\n');
            self.next_comment += 1;
            last_end = Some(comment.end);
        }
    }

    fn item(&mut self, item: &Item) {
        match &item.kind {
            ItemKind::Pipeline { name, .. } => {
                let name = if is_node_token(&name.node) { name.node.clone() } else { quoted(&name.node) };
                self.out.push_str(&format!("pipeline {name}"));
                self.end_line(item.span);
            }
            ItemKind::Description { value, .. } => self.keyword_value("description", value, item.span),
            ItemKind::Version { value, .. } => self.keyword_value("version", value, item.span),
            ItemKind::Schema { value, .. } => self.keyword_value("schema", value, item.span),
            ItemKind::Runtime { value, .. } => {
                self.out.push_str("runtime ");
                self.object_block(value, 0);
                self.end_line(item.span);
            }
            ItemKind::Test { name, body, .. } => {
                let name = quoted(&name.node);
                self.out.push_str(&format!("test {name} "));
                self.in_test = true;
                self.object_block(body, 0);
                self.in_test = false;
                self.end_line(item.span);
            }
            ItemKind::Event { name, fields, .. } => {
                self.out.push_str("event ");
                if let Some(name) = name {
                    self.out.push_str(&name.node);
                    self.out.push(' ');
                }
                self.fields_block(fields, 0);
                self.end_line(item.span);
            }
            ItemKind::Chain(chain) => {
                self.chain(chain, 0, None);
                self.end_line(item.span);
            }
        }
    }

    fn keyword_value(&mut self, keyword: &str, value: &Value, span: Span) {
        self.out.push_str(keyword);
        self.out.push(' ');
        self.value(value, 0);
        self.end_line(span);
    }

    // ---- event schemas ----

    fn inline_fields(fields: &Fields) -> Option<String> {
        let parts: Option<Vec<String>> = fields
            .fields
            .iter()
            .map(|field| {
                let ty = match &field.ty {
                    FieldType::Name(name) => name.node.clone(),
                    FieldType::Str(text) => quoted(&text.node),
                    FieldType::Nested(_) => return None,
                };
                Some(format!("{}: {ty}{}", key_text(&field.key.node), if field.nullable { "?" } else { "" }))
            })
            .collect();
        let parts = parts?;
        Some(if parts.is_empty() { "{}".to_string() } else { format!("{{ {} }}", parts.join(", ")) })
    }

    fn fields_block(&mut self, fields: &Fields, level: usize) {
        if fields.fields.is_empty() && !self.has_comment_in(fields.span) {
            self.out.push_str("{}");
            return;
        }
        self.out.push_str("{\n");
        for field in &fields.fields {
            self.comments_before(field.span.start as usize, level + 1);
            self.indent(level + 1);
            self.out.push_str(&key_text(&field.key.node));
            self.out.push_str(": ");
            match &field.ty {
                FieldType::Name(name) => self.out.push_str(&name.node),
                FieldType::Str(text) => self.out.push_str(&quoted(&text.node)),
                FieldType::Nested(nested) => {
                    let inline = Self::inline_fields(nested)
                        .filter(|text| !self.has_comment_in(nested.span) && self.column() + text.len() < MAX_WIDTH);
                    match inline {
                        Some(text) => self.out.push_str(&text),
                        None => self.fields_block(nested, level + 1),
                    }
                }
            }
            if field.nullable {
                self.out.push('?');
            }
            self.end_line(field.span);
        }
        self.comments_before(fields.span.end as usize, level + 1);
        self.indent(level);
        self.out.push('}');
    }

    // ---- values ----

    /// Writes a value at the current position; multi-line values close at `level`.
    fn value(&mut self, value: &Value, level: usize) {
        match &value.kind {
            ValueKind::Object(_) => {
                let inline = inline_value(value);
                let fits = self.column() + inline.len() <= MAX_WIDTH;
                let nested = match &value.kind {
                    ValueKind::Object(pairs) => pairs.iter().any(|pair| contains_object(&pair.value)),
                    _ => false,
                };
                if (fits && !nested && !self.has_comment_in(value.span) && inline.len() <= 60) || inline == "{}" {
                    self.out.push_str(&inline);
                } else {
                    self.object_block(value, level);
                }
            }
            ValueKind::List(items) => {
                let inline = if self.in_test {
                    format!("[{}]", items.iter().map(inline_test_elem).collect::<Vec<_>>().join(", "))
                } else {
                    inline_value(value)
                };
                let fits = self.column() + inline.len() <= MAX_WIDTH;
                if (fits && !items.iter().any(contains_object) && !self.has_comment_in(value.span)) || items.is_empty()
                {
                    self.out.push_str(&inline);
                } else {
                    self.out.push_str("[\n");
                    for item in items {
                        self.comments_before(item.span.start as usize, level + 1);
                        self.indent(level + 1);
                        match test_form(item).filter(|_| self.in_test) {
                            Some((prefix, Some(record))) => {
                                self.out.push_str(&prefix);
                                self.value(&record, level + 1);
                            }
                            Some((text, None)) => self.out.push_str(&text),
                            None => self.value(item, level + 1),
                        }
                        self.out.push(',');
                        self.end_line(item.span);
                    }
                    self.comments_before(value.span.end as usize, level + 1);
                    self.indent(level);
                    self.out.push(']');
                }
            }
            _ => self.out.push_str(&inline_value(value)),
        }
    }

    /// An object always laid out one pair per line (runtime, test bodies, large objects).
    fn object_block(&mut self, value: &Value, level: usize) {
        let ValueKind::Object(pairs) = &value.kind else {
            self.value(value, level);
            return;
        };
        if pairs.is_empty() && !self.has_comment_in(value.span) {
            self.out.push_str("{}");
            return;
        }
        self.out.push_str("{\n");
        for pair in pairs {
            self.pair(pair, level + 1);
        }
        self.comments_before(value.span.end as usize, level + 1);
        self.indent(level);
        self.out.push('}');
    }

    fn pair(&mut self, pair: &Pair, level: usize) {
        self.comments_before(pair.key.span.start as usize, level);
        self.indent(level);
        self.out.push_str(&key_text(&pair.key.node));
        self.out.push_str(": ");
        self.value(&pair.value, level);
        self.end_line(pair.value.span);
    }

    // ---- flow ----

    fn elem_inline(elem: &Elem) -> String {
        match elem {
            Elem::Ref { id, port, .. } => match port {
                Some(port) => format!("{}.{}", id.node, port.node),
                None => id.node.clone(),
            },
            Elem::Decl(decl) => Self::decl_header(decl),
        }
    }

    fn decl_header(decl: &NodeDecl) -> String {
        let mut out = format!("{}: {}", decl.id.node, decl.kind.node);
        if let Some(args) = &decl.args {
            out.push('(');
            out.push_str(&args.values.iter().map(inline_value).collect::<Vec<_>>().join(", "));
            out.push(')');
        }
        if let Some((_, key)) = &decl.by {
            out.push_str(" by ");
            out.push_str(&inline_value(key));
        }
        if let Some((_, cond)) = &decl.where_clause {
            out.push_str(" where ");
            out.push_str(&inline_value(cond));
        }
        out
    }

    fn decl_has_block(&self, decl: &NodeDecl) -> bool {
        decl.block.as_ref().is_some_and(|block| !block.entries.is_empty() || self.has_comment_in(block.span))
    }

    /// Writes a chain starting at the current position. `lead` is a branch's `port -> `.
    fn chain(&mut self, chain: &Chain, level: usize, lead: Option<&str>) {
        let has_blocks = chain.elems.iter().any(|elem| matches!(elem, Elem::Decl(decl) if self.decl_has_block(decl)));
        let elems_end = chain.elems.last().map_or(chain.span, Elem::span);
        let comment_inside = chain.elems.len() > 1 && self.has_comment_in(chain.elems[0].span().to(elems_end));
        let one_line = chain.elems.iter().map(Self::elem_inline).collect::<Vec<_>>().join(" -> ");
        let width = self.column() + lead.map_or(0, str::len) + one_line.len();
        let broken = chain.elems.len() > 1 && (comment_inside || width > MAX_WIDTH || has_blocks);
        if let Some(lead) = lead {
            self.out.push_str(lead);
        }
        for (idx, elem) in chain.elems.iter().enumerate() {
            if idx > 0 {
                if broken {
                    self.trailing_comment(chain.elems[idx - 1].span(), elem.span().start as usize);
                    self.out.push('\n');
                    self.comments_before(elem.span().start as usize, level + 1);
                    self.indent(level + 1);
                    self.out.push_str("-> ");
                } else {
                    self.out.push_str(" -> ");
                }
            }
            let elem_level = if broken && idx > 0 { level + 1 } else { level };
            self.out.push_str(&Self::elem_inline(elem));
            if let Elem::Decl(decl) = elem {
                if self.decl_has_block(decl) {
                    if let Some(block) = &decl.block {
                        self.out.push(' ');
                        self.block(block, elem_level);
                    }
                }
            }
        }
        if let Some(branches) = &chain.branches {
            let branch_level = if broken { level + 1 } else { level };
            self.out.push_str(" {\n");
            for branch in &branches.branches {
                self.comments_before(branch.span.start as usize, branch_level + 1);
                self.indent(branch_level + 1);
                let lead = format!("{} -> ", branch.port.node);
                self.chain(&branch.chain, branch_level + 1, Some(&lead));
                self.end_line(branch.span);
            }
            self.comments_before(branches.span.end as usize, branch_level + 1);
            self.indent(branch_level);
            self.out.push('}');
        }
    }

    fn block(&mut self, block: &Block, level: usize) {
        self.out.push_str("{\n");
        for entry in &block.entries {
            self.comments_before(entry.span.start as usize, level + 1);
            self.indent(level + 1);
            match &entry.kind {
                EntryKind::Pair(pair) => {
                    self.out.push_str(&key_text(&pair.key.node));
                    self.out.push_str(": ");
                    self.value(&pair.value, level + 1);
                }
                EntryKind::Route { name, cond, .. } => {
                    self.out.push_str(&format!("route {}: ", name.node));
                    self.value(cond, level + 1);
                }
                EntryKind::Counter { name, window, cond, .. } => {
                    self.out.push_str(&format!("counter {} over {}", name.node, inline_value(window)));
                    if let Some(cond) = cond {
                        self.out.push_str(" where ");
                        self.value(cond, level + 1);
                    }
                }
                EntryKind::Segment { name, rule, .. } => {
                    self.out.push_str(&format!("segment {}: ", name.node));
                    self.value(rule, level + 1);
                }
                EntryKind::Aggregate { name, func, field, .. } => {
                    let field = field.as_ref().map(inline_value).unwrap_or_default();
                    self.out.push_str(&format!("aggregate {}: {}({field})", name.node, func.node));
                }
                EntryKind::Window { window, .. } => {
                    let text = match window {
                        WindowSugar::Tumbling { size, .. } => format!("window tumbling {}", inline_value(size)),
                        WindowSugar::Sliding { size, slide, .. } => {
                            format!("window sliding {} every {}", inline_value(size), inline_value(slide))
                        }
                        WindowSugar::Session { gap, .. } => format!("window session gap {}", inline_value(gap)),
                    };
                    self.out.push_str(&text);
                }
            }
            self.end_line(entry.span);
        }
        self.comments_before(block.span.end as usize, level + 1);
        self.indent(level);
        self.out.push('}');
    }
}

/// Spans of generated trees are empty at offset 0.
fn end_is_synthetic(end: usize) -> bool {
    end == 0
}
