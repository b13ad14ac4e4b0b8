//! A tiny lexer that knows only strings, comments and brackets. It splits a `.pulse` file into
//! top-level items (so each item is parsed on its own and one bad item does not hide errors in
//! others), finds comments for `pulsec fmt`, and guards against hostile nesting.

use std::ops::Range;

/// One lexical piece: a comment, a string literal, or any other character.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Piece {
    /// `//` up to (not including) the end of the line.
    Comment(Range<usize>),
    /// A quoted string; `terminated` is false when the line ends first.
    Str {
        range: Range<usize>,
        terminated: bool,
    },
    Char(usize, char),
}

/// Splits `text` into pieces. Strings never span lines.
pub(crate) fn pieces(text: &str) -> Vec<Piece> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut idx = 0;
    while idx < text.len() {
        let ch = text[idx..].chars().next().expect("idx is on a char boundary");
        if ch == '/' && bytes.get(idx + 1) == Some(&b'/') {
            let end = text[idx..].find('\n').map_or(text.len(), |offset| idx + offset);
            out.push(Piece::Comment(idx..end));
            idx = end;
        } else if ch == '"' || ch == '\'' {
            let mut end = idx + 1;
            let mut terminated = false;
            while end < text.len() {
                let next = text[end..].chars().next().expect("end is on a char boundary");
                if next == '\n' {
                    break;
                }
                if next == '\\' {
                    end += 1;
                    if let Some(escaped) = text[end..].chars().next() {
                        if escaped == '\n' {
                            break;
                        }
                        end += escaped.len_utf8();
                    }
                    continue;
                }
                end += next.len_utf8();
                if next == ch {
                    terminated = true;
                    break;
                }
            }
            out.push(Piece::Str { range: idx..end, terminated });
            idx = end;
        } else {
            out.push(Piece::Char(idx, ch));
            idx += ch.len_utf8();
        }
    }
    out
}

/// Keywords that start a top-level item (when not followed by `:`, `->` or `.`).
pub(crate) const TOP_LEVEL_KEYWORDS: &[&str] =
    &["pipeline", "description", "version", "runtime", "event", "schema", "test"];

/// The leading word of an item (node-id characters) and the first non-blank character after it.
pub(crate) fn leading_word(text: &str) -> (&str, Option<char>) {
    let end = word_end(text, 0);
    let rest = text[end..].trim_start_matches([' ', '\t']);
    (&text[..end], rest.chars().next())
}

fn word_end(text: &str, start: usize) -> usize {
    let bytes = text.as_bytes();
    let mut end = start;
    while end < bytes.len() {
        let byte = bytes[end];
        let is_id = byte.is_ascii_alphanumeric() || byte == b'_' || (byte == b'-' && bytes.get(end + 1) != Some(&b'>'));
        if !is_id {
            break;
        }
        end += 1;
    }
    end
}

/// True when `word` followed by `next` starts a keyword item (`event {`, not `event: filter`).
pub(crate) fn is_keyword_item(word: &str, next: Option<char>) -> bool {
    TOP_LEVEL_KEYWORDS.contains(&word) && !matches!(next, Some(':' | '-' | '.'))
}

/// Splits a file into top-level items. An item starts at a line whose first character (column
/// 0) is a letter, digit, `_` or a `-` that does not begin `->`, provided every bracket opened
/// before it is closed; a line starting with a top-level keyword always starts an item, so an
/// unclosed `{` swallows at most the items up to the next keyword. Returns the item ranges and
/// the range of anything before the first item that is not blank or a comment.
pub(crate) fn split_items(text: &str) -> (Vec<Range<usize>>, Option<Range<usize>>) {
    let mut starts = Vec::new();
    let mut depth: usize = 0;
    let mut at_line_start = true;
    for piece in pieces(text) {
        match piece {
            Piece::Comment(_) => at_line_start = false,
            Piece::Str { .. } => at_line_start = false,
            Piece::Char(idx, ch) => {
                if at_line_start && starts_item(text, idx, ch) {
                    let (word, next) = leading_word(&text[idx..]);
                    if depth == 0 || is_keyword_item(word, next) {
                        starts.push(idx);
                        depth = 0;
                    }
                }
                match ch {
                    '{' | '[' | '(' => depth += 1,
                    '}' | ']' | ')' => depth = depth.saturating_sub(1),
                    _ => {}
                }
                at_line_start = ch == '\n';
            }
        }
    }
    let mut items = Vec::new();
    for (idx, start) in starts.iter().enumerate() {
        let end = starts.get(idx + 1).copied().unwrap_or(text.len());
        items.push(*start..end);
    }
    let first = starts.first().copied().unwrap_or(text.len());
    let stray = pieces(&text[..first])
        .into_iter()
        .find_map(|piece| match piece {
            Piece::Comment(_) => None,
            Piece::Char(_, ch) if ch.is_whitespace() => None,
            Piece::Char(idx, _) => Some(idx),
            Piece::Str { range, .. } => Some(range.start),
        })
        .map(|start| start..first);
    (items, stray)
}

/// Column-0 lines inside `text` (after its first line) that would start an item if every
/// bracket were closed. Used to recover when an item with an unclosed bracket fails to parse.
pub(crate) fn candidate_starts(text: &str) -> Vec<usize> {
    let mut out = Vec::new();
    let mut at_line_start = false;
    for piece in pieces(text) {
        match piece {
            Piece::Char(idx, ch) => {
                if at_line_start && starts_item(text, idx, ch) {
                    out.push(idx);
                }
                at_line_start = ch == '\n';
            }
            _ => at_line_start = false,
        }
    }
    out
}

fn starts_item(text: &str, idx: usize, ch: char) -> bool {
    ch.is_ascii_alphanumeric() || ch == '_' || (ch == '-' && text.as_bytes().get(idx + 1) != Some(&b'>'))
}

/// The names in `text` outside strings and comments (runs of node-id characters), in order.
pub(crate) fn words(text: &str) -> Vec<Range<usize>> {
    let mut out: Vec<Range<usize>> = Vec::new();
    for piece in pieces(text) {
        let Piece::Char(idx, ch) = piece else { continue };
        let is_id =
            ch.is_ascii_alphanumeric() || ch == '_' || (ch == '-' && text.as_bytes().get(idx + 1) != Some(&b'>'));
        if !is_id {
            continue;
        }
        match out.last_mut() {
            Some(word) if word.end == idx => word.end = idx + 1,
            _ => out.push(idx..idx + 1),
        }
    }
    out
}

/// The nodes an item declares, read from its text alone: a name followed by `:` at the start
/// of the item or right after `->`, with the name after the `:` (its type) when there is one.
/// Used for items that do not parse.
pub(crate) fn declared_nodes(text: &str) -> Vec<(Range<usize>, Option<Range<usize>>)> {
    let words = words(text);
    let mut out = Vec::new();
    for (idx, word) in words.iter().enumerate() {
        let before = text[..word.start].trim_end();
        let after = text[word.end..].trim_start();
        if !((before.is_empty() || before.ends_with("->")) && after.starts_with(':')) {
            continue;
        }
        let kind = words.get(idx + 1).filter(|next| text[word.end..next.start].trim() == ":").cloned();
        out.push((word.clone(), kind));
    }
    out
}

/// Comment ranges, for `pulsec fmt`.
pub(crate) fn comments(text: &str) -> Vec<Range<usize>> {
    pieces(text)
        .into_iter()
        .filter_map(|piece| match piece {
            Piece::Comment(range) => Some(range),
            _ => None,
        })
        .collect()
}

/// The position of the first bracket that nests deeper than `max_depth`, if any.
pub(crate) fn too_deep(text: &str, max_depth: usize) -> Option<usize> {
    let mut depth: usize = 0;
    for piece in pieces(text) {
        if let Piece::Char(idx, ch) = piece {
            match ch {
                '{' | '[' | '(' => {
                    depth += 1;
                    if depth > max_depth {
                        return Some(idx);
                    }
                }
                '}' | ']' | ')' => depth = depth.saturating_sub(1),
                _ => {}
            }
        }
    }
    None
}

/// Brackets still open at `pos`, innermost last.
pub(crate) fn open_brackets(text: &str, pos: usize) -> Vec<(usize, char)> {
    let mut stack = Vec::new();
    for piece in pieces(text) {
        if let Piece::Char(idx, ch) = piece {
            if idx >= pos {
                break;
            }
            match ch {
                '{' | '[' | '(' => stack.push((idx, ch)),
                '}' | ']' | ')' => {
                    stack.pop();
                }
                _ => {}
            }
        }
    }
    stack
}

/// The first string that the end of its line cuts off.
pub(crate) fn unterminated_string(text: &str) -> Option<Range<usize>> {
    pieces(text).into_iter().find_map(|piece| match piece {
        Piece::Str { range, terminated: false } => Some(range),
        _ => None,
    })
}
