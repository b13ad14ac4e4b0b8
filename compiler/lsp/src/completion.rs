//! Completion. The context (what may be typed at the cursor) is read from the text, because the
//! file is usually incomplete while typing; the candidates come from the analysis of the file,
//! of the file with a placeholder at the cursor, or of the last version that parsed.

use crate::analysis::{node_type, Analysis, Form};
use crate::locate::parse_duration;
use lsp_types::CompletionItemKind;
use pulse_check::NODE_TYPES;
use pulse_ir::{Function, RecordType, Type};
use regex::Regex;
use std::sync::OnceLock;

#[derive(Clone, Debug, PartialEq)]
pub struct Completion {
    pub label: String,
    pub kind: CompletionItemKind,
    pub detail: Option<String>,
    /// Orders the list: fields of the record before functions in an expression.
    pub sort_text: Option<String>,
    /// A snippet (`contains(${1:text}, ${2:part})`) inserted instead of the label.
    pub snippet: Option<String>,
    /// Markdown shown beside the item.
    pub documentation: Option<String>,
}

impl Default for Completion {
    fn default() -> Completion {
        Completion {
            label: String::new(),
            kind: CompletionItemKind::TEXT,
            detail: None,
            sort_text: None,
            snippet: None,
            documentation: None,
        }
    }
}

/// What may be typed at the cursor.
#[derive(Clone, Debug, PartialEq)]
pub enum Context {
    /// A field of the records entering `node`, after `prefix` (`props.` gives `["props"]`).
    Field {
        node: Option<String>,
        prefix: Vec<String>,
        functions: bool,
    },
    NodeType,
    ConfigKey {
        node_type: String,
    },
    TopLevelKey,
    NodeKey,
    NodeId,
    /// A port of `node`: outputs, or inputs when `output` is false.
    Port {
        node: String,
        output: bool,
    },
    /// The start of a top-level item of a `.pulse` file.
    Item,
    None,
}

const PLACEHOLDER: &str = "__pulse_completion__";
const PULSE_KEYWORDS: &[&str] = &["pipeline", "description", "version", "runtime", "event", "schema", "test"];
const JSON_TOP_LEVEL_KEYS: &[&str] = &["name", "description", "version", "schema", "runtime", "nodes", "edges"];
const RUNTIME_KEYS: &[&str] = &["checkpointInterval", "stateBackend", "restartStrategy", "readSetting"];

fn regex(cell: &'static OnceLock<Regex>, pattern: &str) -> &'static Regex {
    cell.get_or_init(|| Regex::new(pattern).expect("a valid regex literal"))
}

/// Completions at `offset` of `current`; `last_good` is the last analysis with a document.
pub fn complete(current: &Analysis, last_good: Option<&Analysis>, offset: usize) -> Vec<Completion> {
    let text = current.text();
    let offset = floor_boundary(text, offset.min(text.len()));
    let context = match current.form {
        Form::Pulse => pulse_context(text, offset),
        Form::Json => json_context(text, offset),
    };
    let mut items = match &context {
        Context::Field { node, prefix, functions } => {
            let record = record_for(current, last_good, text, offset, node.as_deref());
            let mut items = field_items(record.as_ref(), prefix);
            for item in &mut items {
                item.sort_text = Some(format!("0{}", item.label));
            }
            if *functions && prefix.is_empty() {
                items.extend(Function::ALL.iter().map(|(name, function)| function_item(name, *function)));
            }
            items
        }
        Context::NodeType => NODE_TYPES
            .iter()
            .flat_map(|node_type| {
                std::iter::once(node_type.name)
                    .chain(node_type.aliases.iter().copied())
                    .map(move |name| (name, node_type))
            })
            .map(|(name, node_type)| Completion {
                label: name.to_string(),
                kind: CompletionItemKind::CLASS,
                detail: Some(node_type.summary.to_string()),
                ..Completion::default()
            })
            .collect(),
        Context::ConfigKey { node_type: type_name } => {
            let mut items: Vec<Completion> = node_type(type_name)
                .map(|node_type| node_type.keys)
                .unwrap_or_default()
                .iter()
                .map(|key| Completion {
                    label: key.to_string(),
                    kind: CompletionItemKind::PROPERTY,
                    detail: Some(format!("option of `{type_name}`")),
                    ..Completion::default()
                })
                .collect();
            if current.form == Form::Pulse {
                let sugar: &[&str] = match type_name.as_str() {
                    "splitter" => &["route"],
                    "segmentation" => &["counter", "segment"],
                    "window-aggregate" => &["aggregate", "window"],
                    _ => &[],
                };
                items.extend(sugar.iter().map(|keyword| Completion {
                    label: keyword.to_string(),
                    kind: CompletionItemKind::KEYWORD,
                    detail: Some(format!("`{type_name}` shorthand")),
                    ..Completion::default()
                }));
            }
            items
        }
        Context::TopLevelKey => keywords(JSON_TOP_LEVEL_KEYS, CompletionItemKind::PROPERTY),
        Context::NodeKey => keywords(&["id", "type", "config"], CompletionItemKind::PROPERTY),
        Context::NodeId => node_ids(current, last_good, text, offset),
        Context::Port { node, output } => ports(current, last_good, text, node, *output),
        Context::Item => {
            let mut items = keywords(PULSE_KEYWORDS, CompletionItemKind::KEYWORD);
            items.extend(node_ids(current, last_good, text, offset));
            items
        }
        Context::None => Vec::new(),
    };
    if let Some(runtime) = runtime_context(current.form, text, offset) {
        items = runtime;
    }
    let mut seen = std::collections::BTreeSet::new();
    items.retain(|item| seen.insert(item.label.clone()));
    items
}

fn keywords(words: &[&str], kind: CompletionItemKind) -> Vec<Completion> {
    words.iter().map(|word| Completion { label: word.to_string(), kind, ..Completion::default() }).collect()
}

/// A function: after the fields, inserted as a call with its parameters as placeholders.
fn function_item(name: &str, function: Function) -> Completion {
    let parameters = function.parameters();
    let placeholders: Vec<String> =
        parameters.iter().enumerate().map(|(index, parameter)| format!("${{{}:{parameter}}}", index + 1)).collect();
    let signature = match function.arity() {
        (_, None) => format!("{name}({}, ...)", parameters.join(", ")),
        _ => format!("{name}({})", parameters.join(", ")),
    };
    Completion {
        label: name.to_string(),
        kind: CompletionItemKind::FUNCTION,
        detail: Some(arity_text(function)),
        sort_text: Some(format!("1{name}")),
        snippet: Some(format!("{name}({})$0", placeholders.join(", "))),
        documentation: Some(format!("`{signature}`\n\n{}", function.summary())),
    }
}

fn arity_text(function: Function) -> String {
    match function.arity() {
        (min, Some(max)) if min == max => format!("function, {min} argument{}", if min == 1 { "" } else { "s" }),
        (min, Some(max)) => format!("function, {min} to {max} arguments"),
        (min, None) => format!("function, {min} or more arguments"),
    }
}

fn floor_boundary(text: &str, mut offset: usize) -> usize {
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    offset
}

fn is_word_char(ch: char) -> bool {
    ch.is_ascii_alphanumeric() || ch == '_' || ch == '.' || ch == '-'
}

/// The word being typed: letters, digits, `_`, `-` and `.` before the cursor.
fn word_start(text: &str, offset: usize) -> usize {
    let mut start = offset;
    for (idx, ch) in text[..offset].char_indices().rev() {
        if !is_word_char(ch) {
            break;
        }
        start = idx;
    }
    // `a->b`: the `-` of an arrow is not part of the word.
    if text[start..offset].starts_with('-') {
        start += 1;
    }
    start
}

/// Whether `line` (up to the cursor) ends inside a string literal, and where that string's content starts.
pub(crate) fn open_string(line: &str) -> Option<usize> {
    let mut open: Option<(char, usize)> = None;
    let mut chars = line.char_indices();
    while let Some((idx, ch)) = chars.next() {
        match open {
            Some((quote, _)) if ch == quote => open = None,
            Some(_) if ch == '\\' => {
                chars.next();
            }
            Some(_) => {}
            None if ch == '"' || ch == '\'' => open = Some((ch, idx + 1)),
            None if ch == '/' && line[idx..].starts_with("//") => return None,
            None => {}
        }
    }
    open.map(|(_, start)| start)
}

/// Whether the string content so far ends inside a `{{ ... ` hole.
fn in_template_hole(content: &str) -> bool {
    content.rfind("{{").is_some_and(|open| !content[open..].contains("}}"))
}

fn template_prefix(content: &str) -> Vec<String> {
    let open = content.rfind("{{").map(|open| open + 2).unwrap_or(0);
    path_prefix(content[open..].trim_start())
}

/// `props.sh` -> `["props"]`: the complete segments before the one being typed.
fn path_prefix(word: &str) -> Vec<String> {
    let mut segments: Vec<String> = word.split('.').map(str::to_string).collect();
    segments.pop();
    segments
}

/// The `.pulse` context at `offset`, read from the text.
pub fn pulse_context(text: &str, offset: usize) -> Context {
    static DECL_ANYWHERE: OnceLock<Regex> = OnceLock::new();
    static TYPE_POSITION: OnceLock<Regex> = OnceLock::new();
    static BLOCK_OWNER: OnceLock<Regex> = OnceLock::new();
    let line_start = text[..offset].rfind('\n').map(|idx| idx + 1).unwrap_or(0);
    let line = &text[line_start..offset];
    let item_start = item_start(text, line_start);
    let item_text = &text[item_start..offset];
    let decl = regex(&DECL_ANYWHERE, r"([A-Za-z0-9_-]+)\s*:\s*([a-z][a-z-]*)");
    let enclosing = decl
        .captures_iter(item_text)
        .filter(|captures| node_type(&captures[2]).is_some())
        .last()
        .map(|captures| (captures[1].to_string(), captures[2].to_string()));
    if let Some(content_start) = open_string(line) {
        let content = &line[content_start..];
        if in_template_hole(content) {
            return Context::Field {
                node: enclosing.map(|(id, _)| id),
                prefix: template_prefix(content),
                functions: false,
            };
        }
        return Context::None;
    }
    if line.contains("//") && open_string(line).is_none() && comment_start(line).is_some() {
        return Context::None;
    }
    let start = word_start(text, offset);
    let word = &text[start..offset];
    let before = text[item_start..start].trim_end();
    let line_before_word = text[line_start..start].trim();
    if before.ends_with("->") {
        return match word.split_once('.') {
            Some((node, _)) => Context::Port { node: node.to_string(), output: false },
            None => Context::NodeId,
        };
    }
    if regex(&TYPE_POSITION, r"(^|->)\s*[A-Za-z0-9_-]+\s*:$").is_match(before) {
        return Context::NodeType;
    }
    if before.is_empty() && item_start == start {
        return match word.split_once('.') {
            Some((node, _)) => Context::Port { node: node.to_string(), output: true },
            None => Context::Item,
        };
    }
    let head = &text[item_start..];
    let open_braces = unclosed_braces(&text[item_start..start]);
    let at_entry_start =
        line_before_word.is_empty() || line_before_word.ends_with('{') || line_before_word.ends_with(',');
    if let (Some(&innermost), true, false) = (open_braces.last(), at_entry_start, word.contains('.')) {
        if head.starts_with("runtime") || head.starts_with("event") || head.starts_with("test") {
            return Context::None;
        }
        let before_open = &text[item_start..item_start + innermost];
        // A node declaration right before the innermost open `{`: its block holds config keys.
        let decl_before = decl
            .captures_iter(before_open)
            .filter(|captures| node_type(&captures[2]).is_some())
            .last()
            .filter(|captures| {
                let decl_end = captures.get(0).expect("group 0 exists").end();
                !before_open[decl_end..].contains("->")
                    && !open_braces.iter().any(|&brace| brace > decl_end && brace < innermost)
            })
            .map(|captures| captures[2].to_string());
        if let Some(type_name) = decl_before {
            return Context::ConfigKey { node_type: type_name };
        }
        // A branch block: `split { high_intent -> ... }` starts each line with a port.
        if let Some((owner, owner_text)) = innermost_block_owner(&text[item_start..start]) {
            let owner_is_key = regex(&BLOCK_OWNER, r":\s*$")
                .is_match(owner_text.trim_end_matches(|ch: char| ch.is_ascii_alphanumeric() || ch == '_' || ch == '-'));
            if !owner_is_key {
                return Context::Port { node: owner, output: true };
            }
        }
        return Context::None;
    }
    match enclosing {
        Some((node, _)) => {
            let functions = !before.ends_with(" by");
            Context::Field { node: Some(node), prefix: path_prefix(word), functions }
        }
        None => Context::None,
    }
}

fn comment_start(line: &str) -> Option<usize> {
    let idx = line.find("//")?;
    open_string(&line[..idx]).is_none().then_some(idx)
}

/// The first line of the top-level item containing the line at `line_start`: items start at
/// column 0; indented lines, closing brackets and comments continue the item above.
pub(crate) fn item_start(text: &str, line_start: usize) -> usize {
    let mut start = line_start;
    loop {
        let line = &text[start..];
        let first = line.chars().next();
        let continues = match first {
            // Blank lines continue an item; the cursor's own line, empty so far, starts a new one.
            None | Some('\n') => start != line_start,
            Some(ch) => ch.is_whitespace() || ch == '}' || ch == ')' || ch == ']' || line.starts_with("//"),
        };
        if !continues || start == 0 {
            return start;
        }
        start = text[..start - 1].rfind('\n').map(|idx| idx + 1).unwrap_or(0);
    }
}

/// The offsets of the `{` not yet closed in `text`, outside strings and comments.
pub(crate) fn unclosed_braces(text: &str) -> Vec<usize> {
    let mut open = Vec::new();
    let mut line_start = 0;
    for line in text.split('\n') {
        let code = match comment_start(line) {
            Some(idx) => &line[..idx],
            None => line,
        };
        let mut in_string: Option<char> = None;
        let mut chars = code.char_indices();
        while let Some((idx, ch)) = chars.next() {
            match in_string {
                Some(quote) if ch == quote => in_string = None,
                Some(_) if ch == '\\' => {
                    chars.next();
                }
                Some(_) => {}
                None if ch == '"' || ch == '\'' => in_string = Some(ch),
                None if ch == '{' => open.push(line_start + idx),
                None if ch == '}' => {
                    open.pop();
                }
                None => {}
            }
        }
        line_start += line.len() + 1;
    }
    open
}

/// The identifier before the innermost unclosed `{`, and the text before that `{`.
fn innermost_block_owner(text: &str) -> Option<(String, &str)> {
    let mut stack = Vec::new();
    let mut in_string: Option<char> = None;
    let mut escaped = false;
    for (idx, ch) in text.char_indices() {
        match in_string {
            Some(_) if escaped => escaped = false,
            Some(_) if ch == '\\' => escaped = true,
            Some(quote) if ch == quote => in_string = None,
            Some(_) => {}
            None if ch == '"' || ch == '\'' => in_string = Some(ch),
            None if ch == '{' => stack.push(idx),
            None if ch == '}' => {
                stack.pop();
            }
            None => {}
        }
    }
    let open = *stack.last()?;
    let before = text[..open].trim_end();
    let id_start = before
        .rfind(|ch: char| !(ch.is_ascii_alphanumeric() || ch == '_' || ch == '-'))
        .map(|idx| idx + 1)
        .unwrap_or(0);
    let id = &before[id_start..];
    (!id.is_empty()).then(|| (id.to_string(), before))
}

/// A container of the JSON text around the cursor: the key it is the value of, if any.
#[derive(Debug)]
struct JsonFrame {
    key: Option<String>,
    array: bool,
}

/// The JSON context at `offset`: scans the text before the cursor with a stack of containers.
pub fn json_context(text: &str, offset: usize) -> Context {
    static NODE_ID: OnceLock<Regex> = OnceLock::new();
    let mut stack: Vec<JsonFrame> = Vec::new();
    let mut pending_key: Option<String> = None;
    let mut last_string = String::new();
    let mut string_start: Option<usize> = None;
    let mut escaped = false;
    for (idx, ch) in text[..offset].char_indices() {
        if let Some(start) = string_start {
            if escaped {
                escaped = false;
            } else if ch == '\\' {
                escaped = true;
            } else if ch == '"' {
                last_string = text[start..idx].to_string();
                string_start = None;
            }
            continue;
        }
        match ch {
            '"' => string_start = Some(idx + 1),
            ':' => pending_key = Some(std::mem::take(&mut last_string)),
            '{' | '[' => stack.push(JsonFrame { key: pending_key.take(), array: ch == '[' }),
            '}' | ']' => {
                stack.pop();
                pending_key = None;
            }
            ',' => pending_key = None,
            _ => {}
        }
    }
    let Some(content_start) = string_start else { return Context::None };
    let content = &text[content_start..offset];
    let keys: Vec<Option<&str>> = stack.iter().map(|frame| frame.key.as_deref()).collect();
    let in_array = stack.last().is_some_and(|frame| frame.array);
    let in_nodes = keys.len() >= 3 && keys[1] == Some("nodes");
    let enclosing = || {
        regex(&NODE_ID, r#""id"\s*:\s*"([^"]+)""#)
            .captures_iter(&text[..offset])
            .last()
            .map(|captures| captures[1].to_string())
    };
    let is_value = pending_key.is_some() || in_array;
    if !is_value {
        return match keys.as_slice() {
            [None] => Context::TopLevelKey,
            [None, Some("nodes"), None] => Context::NodeKey,
            [None, Some("nodes"), None, Some("config")] => {
                let type_name = node_type_before(text, offset).unwrap_or_default();
                Context::ConfigKey { node_type: type_name }
            }
            _ => Context::None,
        };
    }
    if in_template_hole(content) {
        return Context::Field { node: enclosing(), prefix: template_prefix(content), functions: false };
    }
    match (pending_key.as_deref(), keys.last().copied().flatten()) {
        (Some("type"), _) if keys.len() == 3 && in_nodes => Context::NodeType,
        (Some("from" | "to"), _) => Context::NodeId,
        (None, Some("edges")) if keys.len() == 2 => {
            let word = &content[word_start(content, content.len())..];
            let after_arrow = content.contains("->");
            match word.split_once('.') {
                Some((node, _)) => Context::Port { node: node.to_string(), output: !after_arrow },
                None => Context::NodeId,
            }
        }
        _ if in_nodes && keys.get(3).copied().flatten() == Some("config") => {
            let word = &content[word_start(content, content.len())..];
            let is_plain_value = pending_key.as_deref().is_some_and(|key| {
                matches!(key, "topic" | "path" | "url" | "method" | "mode" | "emit" | "time" | "brokers" | "groupId")
            }) || parse_duration(content).is_some();
            if is_plain_value {
                Context::None
            } else {
                Context::Field { node: enclosing(), prefix: path_prefix(word), functions: true }
            }
        }
        _ => Context::None,
    }
}

/// The `"type"` of the node object around `offset` in a JSON text.
fn node_type_before(text: &str, offset: usize) -> Option<String> {
    static TYPE: OnceLock<Regex> = OnceLock::new();
    regex(&TYPE, r#""type"\s*:\s*"([^"]+)""#)
        .captures_iter(&text[..offset])
        .last()
        .map(|captures| captures[1].to_string())
}

/// Runtime keys at the start of an entry of a `.pulse` `runtime { }` block or the JSON `runtime` object.
fn runtime_context(form: Form, text: &str, offset: usize) -> Option<Vec<Completion>> {
    let line_start = text[..offset].rfind('\n').map(|idx| idx + 1).unwrap_or(0);
    let item = item_start(text, line_start);
    let start = word_start(text, offset);
    let in_runtime = match form {
        Form::Pulse => {
            text[item..].starts_with("runtime")
                && unclosed_braces(&text[item..start]).len() == 1
                && text[line_start..start].trim().is_empty()
        }
        Form::Json => {
            let before = &text[..offset];
            let open = before.rfind("\"runtime\"")?;
            let line = &text[line_start..offset];
            !before[open..].contains('}') && line.trim_start().starts_with('"') && !line.contains(':')
        }
    };
    in_runtime.then(|| keywords(RUNTIME_KEYS, CompletionItemKind::PROPERTY))
}

/// The record type entering `node`: from this analysis, from it with a placeholder at the cursor
/// (an incomplete expression often parses then), or from the last analysis that had a document.
fn record_for(
    current: &Analysis,
    last_good: Option<&Analysis>,
    text: &str,
    offset: usize,
    node: Option<&str>,
) -> Option<RecordType> {
    // From the current analysis, or the last good one where a syntax error left the record untyped.
    if let Some(record) = crate::recovery::input_record(current, last_good, node) {
        return Some(record);
    }
    let lookup = |analysis: &Analysis| crate::recovery::input_record(analysis, None, node);
    let patched = current.with_text(format!("{}{PLACEHOLDER}{}", &text[..offset], &text[offset..]));
    lookup(&patched).or_else(|| last_good.and_then(lookup))
}

fn field_items(record: Option<&RecordType>, prefix: &[String]) -> Vec<Completion> {
    let Some(mut record) = record else { return Vec::new() };
    let nested;
    if !prefix.is_empty() {
        match record.lookup(prefix).map(|field| field.ty) {
            Some(Type::Object(Some(inner))) => {
                nested = *inner;
                record = &nested;
            }
            _ => return Vec::new(),
        }
    }
    record
        .order
        .iter()
        .filter(|name| name.as_str() != PLACEHOLDER)
        .filter_map(|name| {
            let field = record.fields.get(name)?;
            Some(Completion {
                label: name.clone(),
                kind: CompletionItemKind::FIELD,
                detail: Some(crate::hover::type_text(field)),
                ..Completion::default()
            })
        })
        .collect()
}

/// Node ids of the document: declared ones from the analyses, and any `id:` written in the text.
fn node_ids(current: &Analysis, last_good: Option<&Analysis>, text: &str, offset: usize) -> Vec<Completion> {
    static PULSE_DECL: OnceLock<Regex> = OnceLock::new();
    static JSON_ID: OnceLock<Regex> = OnceLock::new();
    let mut items = Vec::new();
    for analysis in [Some(current), last_good].into_iter().flatten() {
        for node in analysis.document.iter().flat_map(|doc| &doc.nodes) {
            items.push(Completion {
                label: node.id.node.clone(),
                kind: CompletionItemKind::VARIABLE,
                detail: Some(node.kind.node.clone()),
                ..Completion::default()
            });
        }
    }
    let pattern = match current.form {
        Form::Pulse => regex(&PULSE_DECL, r"(?m)(?:^|->)\s*([A-Za-z0-9_-]+)\s*:\s*([a-z][a-z-]*)"),
        Form::Json => regex(&JSON_ID, r#""id"\s*:\s*"([A-Za-z0-9_-]+)"\s*,\s*"type"\s*:\s*"([a-z-]+)""#),
    };
    let word_start = word_start(text, offset);
    for captures in pattern.captures_iter(text) {
        let id = captures.get(1).expect("group 1 exists");
        if node_type(&captures[2]).is_some() && id.end() != word_start && id.start() != word_start {
            items.push(Completion {
                label: id.as_str().to_string(),
                kind: CompletionItemKind::VARIABLE,
                detail: Some(captures[2].to_string()),
                ..Completion::default()
            });
        }
    }
    items
}

fn ports(current: &Analysis, last_good: Option<&Analysis>, text: &str, node: &str, output: bool) -> Vec<Completion> {
    let detail = if output { "output" } else { "input" };
    let port_item = |port: &str| Completion {
        label: port.to_string(),
        kind: CompletionItemKind::ENUM_MEMBER,
        detail: Some(format!("{detail} of `{node}`")),
        ..Completion::default()
    };
    for analysis in [Some(current), last_good].into_iter().flatten() {
        let Some(idx) = analysis.node_index(node) else { continue };
        if output {
            if let Some(ports) = analysis.records.as_ref().and_then(|records| records.ports.get(idx)) {
                return ports.iter().map(|port| port_item(port)).collect();
            }
        }
        if let Some(node_type) = analysis.node(idx).and_then(|decl| node_type(&decl.kind.node)) {
            return node_type.inputs.iter().map(|port| port_item(port)).collect();
        }
    }
    // Not in any analysis yet: the type written in the text tells the ports.
    static DECL: OnceLock<Regex> = OnceLock::new();
    let pattern = regex(&DECL, r"([A-Za-z0-9_-]+)\s*:\s*([a-z][a-z-]*)");
    let type_name =
        pattern.captures_iter(text).find(|captures| &captures[1] == node).map(|captures| captures[2].to_string());
    let Some(node_type) = type_name.as_deref().and_then(node_type) else { return Vec::new() };
    let names = if output { node_type.outputs } else { node_type.inputs };
    names.iter().map(|port| port_item(port)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::analyze;

    const GOOD: &str = "pipeline p\nevent {\n  userId: string\n  props: { show_id: string? }?\n}\n\
src: file-source(\"in\")\n\
split: splitter {\n  route big: userId == \"a\"\n}\n\
src -> f: filter(userId != null) -> split\nsplit.big -> out: stdout-sink\n";

    fn labels(text: &str, cursor: &str) -> Vec<String> {
        let offset = text.find(cursor).expect("cursor marker");
        let text = text.replacen(cursor, "", 1);
        let good = analyze("p.pulse", GOOD.to_string(), &|_| Err(std::io::ErrorKind::NotFound.into()));
        let current = analyze("p.pulse", text, &|_| Err(std::io::ErrorKind::NotFound.into()));
        complete(&current, Some(&good), offset).into_iter().map(|item| item.label).collect()
    }

    fn json_labels(text: &str, cursor: &str) -> Vec<String> {
        let offset = text.find(cursor).expect("cursor marker");
        let text = text.replacen(cursor, "", 1);
        let current = analyze("p.json", text, &|_| Err(std::io::ErrorKind::NotFound.into()));
        complete(&current, None, offset).into_iter().map(|item| item.label).collect()
    }

    #[test]
    fn completes_fields_in_expressions_and_templates() {
        let text = GOOD.replace("filter(userId != null)", "filter(userId != null && |)");
        let items = labels(&text, "|");
        assert!(items.contains(&"userId".to_string()) && items.contains(&"lower".to_string()), "{items:?}");
        let text = GOOD.replace("filter(userId != null)", "filter(props.|)");
        assert_eq!(labels(&text, "|"), ["show_id"]);
        let text = GOOD.replace("out: stdout-sink", "out: api-sink(\"https://x/{{ |\")");
        let items = labels(&text, "|");
        assert!(items.contains(&"props".to_string()) && !items.contains(&"lower".to_string()), "{items:?}");
    }

    #[test]
    fn completes_node_types_keys_ids_and_ports() {
        let text = format!("{GOOD}extra: |");
        assert!(labels(&text, "|").contains(&"segmentation".to_string()));
        let text = GOOD.replace("  route big", "  |\n  route big");
        let items = labels(&text, "|");
        assert!(items.contains(&"mode".to_string()) && items.contains(&"route".to_string()), "{items:?}");
        let text = format!("{GOOD}src -> |");
        let items = labels(&text, "|");
        assert!(items.contains(&"split".to_string()) && items.contains(&"f".to_string()), "{items:?}");
        let text = format!("{GOOD}split.|");
        assert_eq!(labels(&text, "|"), ["big", "default"]);
        let text = format!("{GOOD}split {{\n  |\n}}\n");
        assert_eq!(labels(&text, "|"), ["big", "default"]);
        let text = format!("{GOOD}|");
        assert!(labels(&text, "|").contains(&"pipeline".to_string()));
    }

    #[test]
    fn completes_in_json() {
        let json = r#"{"name": "p", "schema": {"fields": {"userId": "string"}}, "nodes": [
  {"id": "s", "type": "file-source", "config": {"path": "in"}},
  {"id": "f", "type": "filter", "config": {"where": "userId != null && |"}},
  {"id": "d", "type": "delay", "config": {"duration": "5m", "|"}},
  {"id": "o", "type": "|"}
], "edges": ["s -> f", "f -> |"]}"#;
        let nth = |n: usize| {
            let offset = json.match_indices('|').nth(n).expect("marker").0;
            let text = json.replace('|', "");
            let offset = offset - n;
            let current = analyze("p.json", text, &|_| Err(std::io::ErrorKind::NotFound.into()));
            complete(&current, None, offset).into_iter().map(|item| item.label).collect::<Vec<_>>()
        };
        assert!(nth(0).contains(&"userId".to_string()), "{:?}", nth(0));
        assert!(nth(1).contains(&"keyBy".to_string()), "{:?}", nth(1));
        assert!(nth(2).contains(&"stdout-sink".to_string()), "{:?}", nth(2));
        assert!(nth(3).contains(&"d".to_string()), "{:?}", nth(3));
        assert!(json_labels("{\"|\"}", "|").contains(&"nodes".to_string()));
    }
}
