//! `.pulse` text to the surface tree. The file is split into top-level items (see `lexer`), each
//! item is parsed with pest on its own, and pest's tree is converted at once into `tree` values
//! with spans into the file. Recoverable mistakes (`=` for `==`, `AND`, `key = value`, `1h30m`)
//! are reported and parsed as intended, so one run reports every problem.

use pest::iterators::Pair as PestPair;
use pest::Parser;

use crate::ast::{DurationLit, Expr, ExprKind, Unparsed, UnparsedNode};
use crate::codes;
use crate::diagnostic::Diagnostic;
use crate::expr::{convert_expr, convert_path, convert_string, ExprCx};
use crate::pulse::errors::{nesting_error, pest_error_to_diagnostic, SyntaxContext};
use crate::pulse::grammar::{PulseParser, Rule};
use crate::pulse::lexer;
use crate::pulse::tree::*;
use crate::span::{FileId, Span, Spanned};

/// Parses a whole file. Items that fail to parse are left out of the tree and listed in
/// `File::unparsed`; every problem is in the returned diagnostics.
pub(crate) fn parse_file(file: FileId, text: &str) -> (File, Vec<Diagnostic>) {
    pest::set_error_detail(true);
    let mut diagnostics = Vec::new();
    let (ranges, stray) = lexer::split_items(text);
    if let Some(stray) = stray {
        let first_line_end = text[stray.start..].find('\n').map_or(text.len(), |idx| stray.start + idx);
        diagnostics.push(
            Diagnostic::new(codes::E0002, "expected a top-level item")
                .primary(Span::new(file, stray.start, first_line_end.min(stray.end)), "not inside any item")
                .help("start each item (`pipeline`, `event`, a node or a flow) at the beginning of a line"),
        );
    }
    let mut items = Vec::new();
    let mut unparsed = Vec::new();
    let mut queue: std::collections::VecDeque<_> = ranges.into();
    while let Some(range) = queue.pop_front() {
        let item_text = &text[range.clone()];
        if let Some(diagnostic) = nesting_error(file, item_text, range.start, codes::E0002) {
            diagnostics.push(diagnostic);
            unparsed.push(unparsed_item(file, text, range));
            continue;
        }
        let (word, next) = lexer::leading_word(item_text);
        let rule = if lexer::is_keyword_item(word, next) {
            match word {
                "pipeline" => Rule::pipeline_item,
                "description" => Rule::description_item,
                "version" => Rule::version_item,
                "runtime" => Rule::runtime_item,
                "schema" => Rule::schema_item,
                "test" => Rule::test_item,
                _ => Rule::event_item,
            }
        } else {
            Rule::chain_item
        };
        match PulseParser::parse(rule, item_text) {
            Ok(mut pairs) => {
                let pair = pairs.next().expect("an item rule produces one pair");
                let mut cx = ExprCx::new(file, range.start, codes::E0002, &mut diagnostics);
                // The item ends at its last token, before any comments that follow it.
                let span = cx.span(pair.as_span());
                let mut converter = Converter { cx: &mut cx, text: item_text };
                match converter.item(pair) {
                    Some(kind) => items.push(Item { span, blank_before: false, kind }),
                    None => unparsed.push(unparsed_item(file, text, range)),
                }
            }
            Err(error) => {
                // An unclosed bracket swallows the items after it. When parsing fails at or
                // after such a swallowed item, or anywhere in an item whose brackets are still
                // open at its end, report the error and parse the rest again.
                let error_pos = match error.location {
                    pest::error::InputLocation::Pos(pos) => pos,
                    pest::error::InputLocation::Span((start, _)) => start,
                };
                let unclosed = !lexer::open_brackets(item_text, item_text.len()).is_empty();
                let first_candidate = lexer::candidate_starts(item_text).into_iter().next();
                if let Some(split) = first_candidate.filter(|start| *start <= error_pos || unclosed) {
                    let rest_start = range.start + split;
                    let (rest, _) = lexer::split_items(&text[rest_start..range.end]);
                    for sub in rest.into_iter().rev() {
                        queue.push_front(rest_start + sub.start..rest_start + sub.end);
                    }
                    queue.push_front(range.start..rest_start);
                    continue;
                }
                if let Some(diagnostic) = keyword_with_colon(file, word, next, item_text, range.start) {
                    diagnostics.push(diagnostic);
                } else {
                    diagnostics.push(pest_error_to_diagnostic(
                        &error,
                        item_text,
                        file,
                        range.start,
                        codes::E0002,
                        SyntaxContext::Item,
                    ));
                }
                unparsed.push(unparsed_item(file, text, range));
            }
        }
    }
    (File { items, unparsed }, diagnostics)
}

/// What can be read from an item that did not parse: the setting it would have set, the node
/// ids it declares and the names it mentions, so the checker can run on the other items without
/// reporting their references to this one.
fn unparsed_item(file: FileId, text: &str, range: std::ops::Range<usize>) -> Unparsed {
    let item_text = &text[range.clone()];
    let (word, next) = lexer::leading_word(item_text);
    let is_keyword = lexer::is_keyword_item(word, next);
    let setting = match word {
        _ if !is_keyword => None,
        "pipeline" => Some("name"),
        "event" => Some("schema"),
        "test" => None,
        other => Some(other),
    };
    let nodes = if is_keyword {
        Vec::new()
    } else {
        lexer::declared_nodes(item_text)
            .into_iter()
            .map(|(id, kind)| UnparsedNode {
                id: Spanned::new(
                    item_text[id.clone()].to_string(),
                    Span::new(file, range.start + id.start, range.start + id.end),
                ),
                kind: kind.map(|kind| item_text[kind].to_string()),
            })
            .collect()
    };
    let names = lexer::words(item_text).into_iter().map(|word| item_text[word].to_string()).collect();
    let span = Span::new(file, range.start, range.start + item_text.trim_end().len());
    Unparsed { span, setting: setting.map(str::to_string), nodes, names }
}

/// `version: "1.0"` (a habit from JSON and YAML) instead of `version "1.0"`.
fn keyword_with_colon(file: FileId, word: &str, next: Option<char>, text: &str, base: usize) -> Option<Diagnostic> {
    if next != Some(':') || !matches!(word, "pipeline" | "description" | "version" | "schema") {
        return None;
    }
    let colon = text.find(':')?;
    let after = text[colon + 1..].trim_start();
    if !after.starts_with(['"', '\'']) && !after.starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    Some(
        Diagnostic::new(codes::E0002, format!("unexpected `:` after `{word}`"))
            .primary(Span::new(file, base + colon, base + colon + 1), "remove this `:`")
            .help(format!("write `{word} {}`", after.lines().next().unwrap_or("").trim_end()))
            .suggest(Span::new(file, base + colon, base + colon + 1), ""),
    )
}

struct Converter<'c, 'd, 't> {
    cx: &'c mut ExprCx<'d>,
    /// The item's text; pest positions are relative to it.
    text: &'t str,
}

impl Converter<'_, '_, '_> {
    fn span(&self, pair: &PestPair<'_, Rule>) -> Span {
        self.cx.span(pair.as_span())
    }

    fn spanned(&self, pair: &PestPair<'_, Rule>) -> Spanned<String> {
        Spanned::new(pair.as_str().to_string(), self.span(pair))
    }

    fn error(&mut self, span: Span, message: impl Into<String>, label: impl Into<String>, help: Option<String>) {
        let mut diagnostic = Diagnostic::new(codes::E0002, message).primary(span, label);
        if let Some(help) = help {
            diagnostic = diagnostic.help(help);
        }
        self.cx.diagnostics.push(diagnostic);
    }

    fn item(&mut self, pair: PestPair<'_, Rule>) -> Option<ItemKind> {
        let rule = pair.as_rule();
        let mut inner = pair.into_inner().filter(|child| child.as_rule() != Rule::EOI);
        if rule == Rule::chain_item {
            let chain = self.chain(inner.next().expect("chain_item holds a chain"), true);
            return Some(ItemKind::Chain(chain));
        }
        let keyword_pair = inner.next().expect("keyword items start with their keyword");
        let keyword = self.span(&keyword_pair);
        Some(match rule {
            Rule::pipeline_item => {
                let name_pair = inner.next().expect("pipeline has a name");
                let name = if name_pair.as_rule() == Rule::string {
                    convert_string(self.cx, name_pair)
                } else {
                    self.spanned(&name_pair)
                };
                ItemKind::Pipeline { keyword, name }
            }
            Rule::description_item => ItemKind::Description { keyword, value: self.value(inner.next()?) },
            Rule::version_item => ItemKind::Version { keyword, value: self.value(inner.next()?) },
            Rule::runtime_item => ItemKind::Runtime { keyword, value: self.object(inner.next()?) },
            Rule::schema_item => ItemKind::Schema { keyword, value: self.value(inner.next()?) },
            Rule::test_item => {
                let name_pair = inner.next()?;
                let name = if name_pair.as_rule() == Rule::string {
                    convert_string(self.cx, name_pair)
                } else {
                    self.spanned(&name_pair)
                };
                ItemKind::Test { keyword, name, body: self.value(inner.next()?) }
            }
            _ => {
                let mut name = None;
                let mut fields = None;
                for child in inner {
                    match child.as_rule() {
                        Rule::ident => name = Some(self.spanned(&child)),
                        _ => fields = Some(self.fields(child)),
                    }
                }
                ItemKind::Event { keyword, name, fields: fields? }
            }
        })
    }

    /// Reports two entries on one line without a `,` between them.
    fn check_separators(&mut self, spans: &[pest::Span<'_>], what: &str) {
        for window in spans.windows(2) {
            let end = window[0].start() + crate::expr::trimmed_len(window[0].as_str());
            let gap = &self.text[end..window[1].start()];
            let gap_without_comments: String = gap.lines().map(|line| line.split("//").next().unwrap_or("")).collect();
            if !gap.contains('\n') && !gap_without_comments.contains(',') {
                let span = self.cx.span(window[1]);
                let entry_text = &window[1].as_str()[..crate::expr::trimmed_len(window[1].as_str())];
                let first_line = entry_text.lines().next().unwrap_or("");
                let span = Span::new(span.file, span.start as usize, span.start as usize + first_line.len());
                self.error(
                    span,
                    format!("expected `,` or a new line before this {what}"),
                    format!("{what} on the same line as the previous one"),
                    Some(format!("put each {what} on its own line, or separate them with `,`")),
                );
            }
        }
    }

    fn fields(&mut self, pair: PestPair<'_, Rule>) -> Fields {
        let span = self.span(&pair);
        let children: Vec<_> = pair.into_inner().collect();
        let spans: Vec<_> = children.iter().map(|child| child.as_span()).collect();
        self.check_separators(&spans, "field");
        let fields = children.into_iter().map(|child| self.field(child)).collect();
        Fields { span, fields }
    }

    fn field(&mut self, pair: PestPair<'_, Rule>) -> Field {
        let span = self.span(&pair);
        let mut inner = pair.into_inner();
        let key = self.key(inner.next().expect("a field has a key"));
        self.colon(inner.next().expect("a field has a colon"), &key.node);
        let type_pair = inner.next().expect("a field has a type");
        let mut nullable = false;
        let mut ty = None;
        for child in type_pair.into_inner() {
            match child.as_rule() {
                Rule::nullable => nullable = true,
                Rule::event_fields => ty = Some(FieldType::Nested(self.fields(child))),
                Rule::string => ty = Some(FieldType::Str(convert_string(self.cx, child))),
                _ => ty = Some(FieldType::Name(self.spanned(&child))),
            }
        }
        let ty = ty.expect("a field type has a body");
        Field { span, key, ty, nullable }
    }

    fn key(&mut self, pair: PestPair<'_, Rule>) -> Spanned<String> {
        let child = pair.into_inner().next().expect("a key is an identifier or a string");
        if child.as_rule() == Rule::string {
            convert_string(self.cx, child)
        } else {
            self.spanned(&child)
        }
    }

    fn colon(&mut self, pair: PestPair<'_, Rule>, key: &str) {
        if pair.as_str() != ":" {
            let span = self.span(&pair);
            self.error(
                span,
                "expected `:` between a key and its value",
                "`=` is not used to set values",
                Some(format!("write `{key}: value`")),
            );
        }
    }

    fn value(&mut self, pair: PestPair<'_, Rule>) -> Value {
        let span = self.span(&pair);
        let child =
            if pair.as_rule() == Rule::value { pair.into_inner().next().expect("a value has a body") } else { pair };
        match child.as_rule() {
            Rule::duration => self.duration(child),
            Rule::bad_duration => {
                bad_duration(self.cx, &child);
                Value { span, kind: ValueKind::Expr(Expr { kind: ExprKind::Error, span }) }
            }
            Rule::object | Rule::test_object => self.object(child),
            Rule::clock_step | Rule::nothing_span | Rule::timed_record | Rule::partial_record => self.test_form(child),
            Rule::list | Rule::test_list => {
                let values = child.into_inner().map(|item| self.value(item)).collect();
                Value { span, kind: ValueKind::List(values) }
            }
            Rule::path => Value { span, kind: ValueKind::Expr(convert_path(self.cx, child)) },
            _ => Value { span, kind: ValueKind::Expr(convert_expr(self.cx, child)) },
        }
    }

    /// A test form (`clock 5m`, `nothing until 5m`, `at 5m { ... }`, `partial { ... }`) as the
    /// object with `$` keys that the JSON DAG writes; each `$` key's span is its keyword's.
    fn test_form(&mut self, pair: PestPair<'_, Rule>) -> Value {
        let span = self.span(&pair);
        let rule = pair.as_rule();
        let mut inner = pair.into_inner();
        let keyword = inner.next().expect("a test form starts with its keyword");
        let keyword_span = self.span(&keyword);
        let dollar = |name: &str| Spanned::new(format!("${name}"), keyword_span);
        match rule {
            Rule::clock_step => {
                let time = self.value(inner.next().expect("clock has a time"));
                Value { span, kind: ValueKind::Object(vec![Pair { key: dollar("clock"), value: time }]) }
            }
            Rule::nothing_span => {
                let mut bounds = Vec::new();
                while let Some(bound) = inner.next() {
                    let key = Spanned::new(bound.as_str().to_string(), self.span(&bound));
                    let value = self.value(inner.next().expect("a bound has a time"));
                    bounds.push(Pair { key, value });
                }
                let bounds = Value { span, kind: ValueKind::Object(bounds) };
                Value { span, kind: ValueKind::Object(vec![Pair { key: dollar("nothing"), value: bounds }]) }
            }
            Rule::timed_record => {
                let time = self.value(inner.next().expect("at has a time"));
                let record = self.value(inner.next().expect("at has a record"));
                let mut pairs = vec![Pair { key: dollar("at"), value: time }];
                if let ValueKind::Object(fields) = record.kind {
                    pairs.extend(fields);
                }
                Value { span, kind: ValueKind::Object(pairs) }
            }
            _ => {
                let record = self.value(inner.next().expect("partial has a record"));
                let flag = Value {
                    span: keyword_span,
                    kind: ValueKind::Expr(Expr { kind: ExprKind::Bool(true), span: keyword_span }),
                };
                let mut pairs = vec![Pair { key: dollar("partial"), value: flag }];
                if let ValueKind::Object(fields) = record.kind {
                    pairs.extend(fields);
                }
                Value { span, kind: ValueKind::Object(pairs) }
            }
        }
    }

    fn duration(&mut self, pair: PestPair<'_, Rule>) -> Value {
        let span = self.span(&pair);
        let text = pair.as_str();
        let kind = match duration_millis(text) {
            Some(millis) => ValueKind::Duration(DurationLit { millis, text: text.to_string() }),
            None => {
                self.cx.diagnostics.push(
                    Diagnostic::new(codes::E0501, format!("duration `{text}` is too large"))
                        .primary(span, "does not fit in 64-bit milliseconds"),
                );
                ValueKind::Expr(Expr { kind: ExprKind::Error, span })
            }
        };
        Value { span, kind }
    }

    fn object(&mut self, pair: PestPair<'_, Rule>) -> Value {
        let span = self.span(&pair);
        let children: Vec<_> = pair.into_inner().collect();
        let spans: Vec<_> = children.iter().map(|child| child.as_span()).collect();
        self.check_separators(&spans, "entry");
        let pairs = children.into_iter().map(|child| self.pair(child)).collect();
        Value { span, kind: ValueKind::Object(pairs) }
    }

    fn pair(&mut self, pair: PestPair<'_, Rule>) -> Pair {
        let mut inner = pair.into_inner();
        let key = self.key(inner.next().expect("a pair has a key"));
        self.colon(inner.next().expect("a pair has a colon"), &key.node);
        let value = self.value(inner.next().expect("a pair has a value"));
        Pair { key, value }
    }

    fn chain(&mut self, pair: PestPair<'_, Rule>, top_level: bool) -> Chain {
        let span = self.span(&pair);
        let mut elems = Vec::new();
        let mut branches = None;
        for child in pair.into_inner() {
            match child.as_rule() {
                Rule::arrow => {}
                Rule::branches => branches = Some(self.branches(child)),
                _ => elems.push(self.elem(child)),
            }
        }
        self.check_chain(&elems, branches.as_ref(), top_level);
        Chain { span, elems, branches }
    }

    fn check_chain(&mut self, elems: &[Elem], branches: Option<&Branches>, top_level: bool) {
        let n_elems = elems.len();
        if top_level && n_elems == 1 && branches.is_none() {
            if let Elem::Ref { id, .. } = &elems[0] {
                let name = id.node.clone();
                self.error(
                    elems[0].span(),
                    format!("expected `:` or `->` after `{name}`"),
                    "a node id alone is neither a declaration nor a flow",
                    Some(format!("declare a node with `{name}: TYPE {{ ... }}` or connect it with `{name} -> NEXT`")),
                );
            }
        }
        for (idx, elem) in elems.iter().enumerate() {
            let first = idx == 0 && top_level;
            let last = idx + 1 == n_elems && branches.is_none();
            if let (Some(port), false, false) = (elem.port(), first, last) {
                let id = elem.id().node.clone();
                let port_name = port.node.clone();
                self.error(
                    port.span,
                    format!("port `{port_name}` in the middle of a chain is ambiguous"),
                    "input or output?",
                    Some(format!(
                        "split the chain: end one chain with `-> {id}.{port_name}` and start the next with `{id}.OUTPUT ->`"
                    )),
                );
            }
        }
        if let (Some(branches), Some(last)) = (branches, elems.last()) {
            let problem = match last {
                Elem::Ref { port: Some(port), .. } => Some((port.span, "a branch block cannot follow a port")),
                Elem::Decl(decl) => Some((decl.span, "a branch block must follow a plain node id")),
                Elem::Ref { .. } => None,
            };
            if let Some((span, label)) = problem {
                let id = last.id().node.clone();
                self.error(
                    branches.span.to(span),
                    format!("branches of `{id}` must follow its id"),
                    label,
                    Some(format!("declare `{id}` on its own and write its branches as `{id} {{ PORT -> NEXT }}`")),
                );
            }
        }
    }

    fn branches(&mut self, pair: PestPair<'_, Rule>) -> Branches {
        let span = self.span(&pair);
        let children: Vec<_> = pair.into_inner().collect();
        let spans: Vec<_> = children.iter().map(|child| child.as_span()).collect();
        self.check_separators(&spans, "branch");
        let branches = children.into_iter().map(|child| self.branch(child)).collect();
        Branches { span, branches }
    }

    fn branch(&mut self, pair: PestPair<'_, Rule>) -> Branch {
        let span = self.span(&pair);
        let mut inner = pair.into_inner();
        let port = self.spanned(&inner.next().expect("a branch starts with its port"));
        let mut elems = Vec::new();
        let mut branches = None;
        let mut rest_start: Option<Span> = None;
        for child in inner {
            match child.as_rule() {
                Rule::arrow => {}
                Rule::branches => branches = Some(self.branches(child)),
                _ => {
                    let elem = self.elem(child);
                    rest_start.get_or_insert(elem.span());
                    elems.push(elem);
                }
            }
        }
        self.check_chain(&elems, branches.as_ref(), false);
        let chain_span = rest_start.map_or(span, |start| start.to(span));
        Branch { span, port, chain: Chain { span: chain_span, elems, branches } }
    }

    fn elem(&mut self, pair: PestPair<'_, Rule>) -> Elem {
        let span = self.span(&pair);
        if pair.as_rule() == Rule::node_ref {
            let mut inner = pair.into_inner();
            let id = self.spanned(&inner.next().expect("a node reference has an id"));
            let port = inner.next().map(|port| self.spanned(&port));
            return Elem::Ref { span, id, port };
        }
        let mut inner = pair.into_inner();
        let id = self.spanned(&inner.next().expect("a declaration has an id"));
        let kind = self.spanned(&inner.next().expect("a declaration has a type"));
        let mut decl = NodeDecl { span, id, kind, args: None, by: None, where_clause: None, block: None };
        for child in inner {
            match child.as_rule() {
                Rule::node_args => {
                    let args_span = self.span(&child);
                    let values = child.into_inner().map(|value| self.value(value)).collect();
                    decl.args = Some(Args { span: args_span, values });
                }
                Rule::by_clause => {
                    let mut parts = child.into_inner();
                    let keyword = self.span(&parts.next().expect("`by` keyword"));
                    let value = self.value(parts.next().expect("`by` has a key"));
                    decl.by = Some((keyword, value));
                }
                Rule::where_clause => {
                    let mut parts = child.into_inner();
                    let keyword = self.span(&parts.next().expect("`where` keyword"));
                    let value = self.value(parts.next().expect("`where` has a condition"));
                    decl.where_clause = Some((keyword, value));
                }
                _ => decl.block = Some(self.block(child)),
            }
        }
        Elem::Decl(Box::new(decl))
    }

    fn block(&mut self, pair: PestPair<'_, Rule>) -> Block {
        let span = self.span(&pair);
        let children: Vec<_> = pair.into_inner().collect();
        let spans: Vec<_> = children.iter().map(|child| child.as_span()).collect();
        self.check_separators(&spans, "entry");
        let entries = children.into_iter().map(|child| self.entry(child)).collect();
        Block { span, entries }
    }

    fn entry(&mut self, pair: PestPair<'_, Rule>) -> Entry {
        let span = self.span(&pair);
        let rule = pair.as_rule();
        if rule == Rule::pair {
            return Entry { span, kind: EntryKind::Pair(self.pair(pair)) };
        }
        let mut inner = pair.into_inner();
        let keyword = self.span(&inner.next().expect("sugar entries start with a keyword"));
        let kind = match rule {
            Rule::route_entry | Rule::segment_entry => {
                let name = self.spanned(&inner.next().expect("a name"));
                self.colon(inner.next().expect("a colon"), &name.node);
                let value = self.value(inner.next().expect("a condition"));
                if rule == Rule::route_entry {
                    EntryKind::Route { keyword, name, cond: value }
                } else {
                    EntryKind::Segment { keyword, name, rule: value }
                }
            }
            Rule::counter_entry => {
                let name = self.spanned(&inner.next().expect("a counter name"));
                inner.next().expect("`over`");
                let window = self.value(inner.next().expect("a counter window"));
                let cond = inner.nth(1).map(|cond| self.value(cond));
                EntryKind::Counter { keyword, name, window, cond }
            }
            Rule::aggregate_entry => {
                let name = self.spanned(&inner.next().expect("an aggregate name"));
                self.colon(inner.next().expect("a colon"), &name.node);
                let func = self.spanned(&inner.next().expect("an aggregate function"));
                let field = inner.next().map(|field| self.value(field));
                EntryKind::Aggregate { keyword, name, func, field }
            }
            _ => {
                let window_pair = inner.next().expect("a window kind");
                let window_rule = window_pair.as_rule();
                let mut parts = window_pair.into_inner();
                let kind_keyword = self.span(&parts.next().expect("a window keyword"));
                let window = match window_rule {
                    Rule::tumbling_window => {
                        WindowSugar::Tumbling { keyword: kind_keyword, size: self.value(parts.next().expect("a size")) }
                    }
                    Rule::sliding_window => {
                        let size = self.value(parts.next().expect("a size"));
                        parts.next().expect("`every`");
                        let slide = self.value(parts.next().expect("a slide"));
                        WindowSugar::Sliding { keyword: kind_keyword, size, slide }
                    }
                    _ => {
                        parts.next().expect("`gap`");
                        WindowSugar::Session { keyword: kind_keyword, gap: self.value(parts.next().expect("a gap")) }
                    }
                };
                EntryKind::Window { keyword, window }
            }
        };
        Entry { span, kind }
    }
}

/// Milliseconds of a valid duration literal (`500ms`, `5m`), `None` on overflow.
pub(crate) fn duration_millis(text: &str) -> Option<u64> {
    let digits_end = text.find(|c: char| !c.is_ascii_digit())?;
    let number: u64 = text[..digits_end].parse().ok()?;
    let unit = unit_millis(&text[digits_end..])?;
    number.checked_mul(unit)
}

fn unit_millis(unit: &str) -> Option<u64> {
    pulse_stdlib::duration::unit_millis(unit)
}

/// Units people write out of habit, with their length in milliseconds.
fn habit_unit_millis(unit: &str) -> Option<u64> {
    Some(match unit.to_ascii_lowercase().as_str() {
        "ms" | "msec" | "msecs" | "millis" => 1,
        "s" | "sec" | "secs" | "second" | "seconds" => 1_000,
        "m" | "min" | "mins" | "minute" | "minutes" => 60_000,
        "h" | "hr" | "hrs" | "hour" | "hours" => 3_600_000,
        "d" | "day" | "days" => 86_400_000,
        "w" | "wk" | "week" | "weeks" => 604_800_000,
        _ => return None,
    })
}

/// The canonical literal for a number of milliseconds: the largest unit that divides it.
pub(crate) fn canonical_duration(millis: u64) -> String {
    pulse_stdlib::duration::format(millis)
}

/// What `1h30m`, `1.5h`, `2w` or `5 min` meant, in milliseconds, when that is clear.
fn intended_millis(text: &str) -> Option<u64> {
    let mut total: f64 = 0.0;
    let mut rest = text.trim();
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let number_end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        let number: f64 = rest[..number_end].parse().ok()?;
        rest = rest[number_end..].trim_start();
        let unit_end = rest.find(|c: char| !c.is_ascii_alphabetic()).unwrap_or(rest.len());
        let unit = habit_unit_millis(&rest[..unit_end])?;
        total += number * unit as f64;
        rest = rest[unit_end..].trim_start();
    }
    (total.fract() == 0.0 && (0.0..1e18).contains(&total)).then_some(total as u64)
}

fn bad_duration(cx: &mut ExprCx<'_>, pair: &PestPair<'_, Rule>) {
    let text = pair.as_str();
    let span = cx.span(pair.as_span());
    let units = "a duration is a whole number followed by one unit: `ms`, `s`, `m`, `h` or `d`";
    let mut diagnostic =
        Diagnostic::new(codes::E0501, format!("invalid duration `{text}`")).primary(span, "not a valid duration");
    diagnostic = match intended_millis(text) {
        Some(millis) => {
            let canonical = canonical_duration(millis);
            diagnostic.help(format!("write `{canonical}`; {units}")).suggest(span, canonical)
        }
        None => diagnostic.help(format!("{units}, e.g. `500ms`, `30s`, `5m`, `2h`, `7d`")),
    };
    cx.diagnostics.push(diagnostic);
}
