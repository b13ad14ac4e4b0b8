//! The `map` operator's reshaping (G38): `keep` (projection), then `remove`, then `set` in key
//! order. It works on the raw top-level members of the event and expands only the nested
//! objects that an edit reaches, so untouched values are copied as raw text, never re-parsed.

use std::borrow::Cow;

use serde_json::value::RawValue;

use crate::decode;
use crate::json;
use crate::val::Val;

/// One member value while reshaping: untouched raw JSON, an object opened for editing, or a
/// value written by `set`.
enum Node<'a> {
    Raw(&'a RawValue),
    Object(Vec<(Cow<'a, str>, Node<'a>)>),
    Value(&'a Val<'a>),
}

type Members<'a> = Vec<(Cow<'a, str>, Node<'a>)>;

/// Why an event cannot be reshaped: it, or an object on a path, is not a JSON object.
#[derive(Debug, thiserror::Error)]
#[error("event is not a JSON object: {0}")]
pub struct ReshapeError(#[from] serde_json::Error);

/// Reshapes the JSON object `event`: keeps only the `keep` paths (all members when `keep` is
/// empty), removes the `remove` paths, then sets each `set` path, in the order given (codegen
/// passes them in key order). Each path is a field path split at its dots. An absent `set`
/// value writes `null`; setting `a.b.c` creates missing objects and replaces non-objects on the
/// way; `keep` of a nested path keeps only that path (and nothing when it does not exist).
pub fn reshape(
    event: &str,
    keep: &[&[&str]],
    remove: &[&[&str]],
    set: &[(&[&str], Val<'_>)],
) -> Result<String, ReshapeError> {
    let mut members = parse_members(event)?;
    if !keep.is_empty() {
        members = project(members, keep)?;
    }
    for path in remove {
        remove_path(&mut members, path)?;
    }
    for (path, value) in set {
        set_path(&mut members, path, value)?;
    }
    let mut out = String::with_capacity(event.len() + 16);
    write_members(&mut out, &members);
    Ok(out)
}

fn parse_members(text: &str) -> Result<Members<'_>, ReshapeError> {
    let entries = decode::object_entries(text)?;
    Ok(entries.into_iter().map(|(key, raw)| (key, Node::Raw(raw))).collect())
}

/// Opens a member for editing if it is an object; `None` for any other value.
fn open_object(node: Node<'_>) -> Result<Option<Members<'_>>, ReshapeError> {
    match node {
        Node::Object(members) => Ok(Some(members)),
        Node::Raw(raw) if raw.get().starts_with('{') => parse_members(raw.get()).map(Some),
        Node::Raw(_) => Ok(None),
        Node::Value(Val::Obj(text)) => parse_members(text).map(Some),
        Node::Value(_) => Ok(None),
    }
}

fn project<'a>(members: Members<'a>, paths: &[&[&str]]) -> Result<Members<'a>, ReshapeError> {
    let mut kept = Vec::new();
    for (key, node) in members {
        let mut keep_whole = false;
        let mut nested: Vec<&[&str]> = Vec::new();
        for path in paths {
            if let Some((first, rest)) = path.split_first() {
                if *first == key.as_ref() {
                    if rest.is_empty() {
                        keep_whole = true;
                    } else {
                        nested.push(rest);
                    }
                }
            }
        }
        if keep_whole {
            kept.push((key, node));
        } else if !nested.is_empty() {
            if let Some(inner) = open_object(node)? {
                let inner_kept = project(inner, &nested)?;
                if !inner_kept.is_empty() {
                    kept.push((key, Node::Object(inner_kept)));
                }
            }
        }
    }
    Ok(kept)
}

fn remove_path(members: &mut Members<'_>, path: &[&str]) -> Result<(), ReshapeError> {
    let Some((first, rest)) = path.split_first() else {
        return Ok(());
    };
    let Some(position) = members.iter().position(|(key, _)| key == first) else {
        return Ok(());
    };
    if rest.is_empty() {
        members.remove(position);
        return Ok(());
    }
    if !is_object(&members[position].1) {
        // A path through a non-object is absent (G25): nothing to remove.
        return Ok(());
    }
    let node = std::mem::replace(&mut members[position].1, Node::Object(Vec::new()));
    let mut inner = open_object(node)?.unwrap_or_default();
    remove_path(&mut inner, rest)?;
    members[position].1 = Node::Object(inner);
    Ok(())
}

fn is_object(node: &Node<'_>) -> bool {
    match node {
        Node::Object(_) => true,
        Node::Raw(raw) => raw.get().starts_with('{'),
        Node::Value(value) => matches!(value, Val::Obj(_)),
    }
}

fn set_path<'a>(members: &mut Members<'a>, path: &[&str], value: &'a Val<'a>) -> Result<(), ReshapeError> {
    let Some((first, rest)) = path.split_first() else {
        return Ok(());
    };
    let position = match members.iter().position(|(key, _)| key == first) {
        Some(position) => position,
        None => {
            members.push((Cow::Owned((*first).to_string()), Node::Object(Vec::new())));
            members.len() - 1
        }
    };
    if rest.is_empty() {
        members[position].1 = Node::Value(value);
        return Ok(());
    }
    let node = std::mem::replace(&mut members[position].1, Node::Object(Vec::new()));
    // A non-object on the way is replaced by a new object (G38).
    let mut inner = open_object(node)?.unwrap_or_default();
    set_path(&mut inner, rest, value)?;
    members[position].1 = Node::Object(inner);
    Ok(())
}

fn write_members(out: &mut String, members: &Members<'_>) {
    out.push('{');
    for (index, (key, node)) in members.iter().enumerate() {
        if index > 0 {
            out.push(',');
        }
        json::write_str(out, key);
        out.push(':');
        match node {
            Node::Raw(raw) => out.push_str(raw.get()),
            Node::Object(inner) => write_members(out, inner),
            Node::Value(value) => json::write_val(out, value),
        }
    }
    out.push('}');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn normalized(text: &str) -> serde_json::Value {
        serde_json::from_str(text).expect("reshape writes valid JSON")
    }

    fn check(event: &str, keep: &[&[&str]], remove: &[&[&str]], set: &[(&[&str], Val)], expected: &str) {
        let output = reshape(event, keep, remove, set).expect("object event");
        assert_eq!(normalized(&output), normalized(expected), "{event} -> {output}");
    }

    #[test]
    fn g38_keep_projection() {
        let event = r#"{"userId": "u", "props": {"a": 1, "b": {"c": 2, "d": 3}}, "x": 5}"#;
        check(event, &[&["userId"]], &[], &[], r#"{"userId": "u"}"#);
        check(event, &[&["props", "b", "c"]], &[], &[], r#"{"props": {"b": {"c": 2}}}"#);
        check(event, &[&["props", "a"], &["props", "b", "d"]], &[], &[], r#"{"props": {"a": 1, "b": {"d": 3}}}"#);
        check(event, &[&["props"], &["props", "a"]], &[], &[], r#"{"props": {"a": 1, "b": {"c": 2, "d": 3}}}"#);
        check(event, &[&["missing"], &["x", "y"], &["props", "zz"]], &[], &[], "{}");
        check(event, &[], &[], &[], event);
    }

    #[test]
    fn g38_remove() {
        let event = r#"{"a": 1, "b": {"c": 2, "d": 3}, "e": "s"}"#;
        check(event, &[], &[&["a"]], &[], r#"{"b": {"c": 2, "d": 3}, "e": "s"}"#);
        check(event, &[], &[&["b", "c"], &["missing"], &["e", "x"]], &[], r#"{"a": 1, "b": {"d": 3}, "e": "s"}"#);
    }

    #[test]
    fn g38_set() {
        let event = r#"{"a": 1, "b": {"c": 2}, "s": "text"}"#;
        let score = Val::Float(2.0);
        let absent = Val::Absent;
        let name = Val::Str(Cow::Borrowed("n\"q"));
        check(event, &[], &[], &[(&["score"], score.clone())], r#"{"a": 1, "b": {"c": 2}, "s": "text", "score": 2.0}"#);
        check(event, &[], &[], &[(&["a"], absent)], r#"{"a": null, "b": {"c": 2}, "s": "text"}"#);
        check(event, &[], &[], &[(&["b", "x"], name.clone())], r#"{"a": 1, "b": {"c": 2, "x": "n\"q"}, "s": "text"}"#);
        check(event, &[], &[], &[(&["s", "t", "u"], Val::Int(1))], r#"{"a": 1, "b": {"c": 2}, "s": {"t": {"u": 1}}}"#);
        check(
            event,
            &[],
            &[],
            &[(&["new", "deep"], Val::Bool(true))],
            r#"{"a": 1, "b": {"c": 2}, "s": "text", "new": {"deep": true}}"#,
        );
        let object = Val::Obj(Cow::Borrowed(r#"{"k": [1]}"#));
        check(
            event,
            &[],
            &[],
            &[(&["o"], object), (&["o", "m"], Val::Int(3))],
            r#"{"a": 1, "b": {"c": 2}, "s": "text", "o": {"k": [1], "m": 3}}"#,
        );
    }

    #[test]
    fn g38_order_keep_then_remove_then_set() {
        let event = r#"{"userId": "u", "drop": 1, "other": 2}"#;
        check(
            event,
            &[&["userId"], &["drop"]],
            &[&["drop"]],
            &[(&["score"], Val::Int(9))],
            r#"{"userId": "u", "score": 9}"#,
        );
        check(r#"{"a": 1, "a": 2}"#, &[], &[], &[], r#"{"a": 2}"#);
    }

    #[test]
    fn untouched_values_keep_their_raw_text() {
        let output = reshape(r#"{"big": 1.50, "n": {"x": 1e2}}"#, &[], &[], &[(&["k"], Val::Int(1))]).expect("object");
        assert_eq!(output, r#"{"big":1.50,"n":{"x": 1e2},"k":1}"#);
    }

    #[test]
    fn non_objects_are_errors() {
        assert!(reshape("[1]", &[], &[], &[]).is_err());
        assert!(reshape("not json", &[], &[], &[]).is_err());
    }
}
