//! Test blocks (`test "name" { ... }` in `.pulse`, the `tests` array of the JSON DAG), validated
//! into `TestCase`s: `pulsec check` and the editor report their problems, `pulsec test` runs them.
//!
//! Both front ends give the same value tree: the `.pulse` test forms (`at 5m { ... }`,
//! `partial { ... }`, `clock 5m`, `nothing until 5m`) are objects with the `$` keys the JSON DAG
//! writes (`{"$at": "5m", ...}`, `{"$partial": true, ...}`, `{"$clock": "5m"}`,
//! `{"$nothing": {"until": "5m"}}`). Keys starting with `$` are reserved in test records.
//!
//! Times: a duration (`5m`, `"5m"` in JSON) is relative to the event time of the first input
//! event; a number is an absolute event time in ms since the epoch, and so is an RFC 3339 string.

use crate::registry::NODE_TYPES;
use crate::values::{format_duration, parse_duration};
use pulse_syntax::ast::{Document, Member, Number, TestDecl, Value, ValueKind};
use pulse_syntax::codes::{E0101, E0102, E0103, E0202};
use pulse_syntax::diagnostic::did_you_mean;
use pulse_syntax::{Diagnostic, Span};

/// The expectations of the dead letters in `expect`.
pub const DEAD_LETTERS: &str = "dead_letters";

/// One test, validated.
#[derive(Clone, Debug, PartialEq)]
pub struct TestCase {
    pub name: String,
    pub span: Span,
    pub inputs: Vec<TestInput>,
    /// Per sink (or `dead_letters`), in the order written.
    pub expect: Vec<SinkExpectation>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum TestInput {
    /// An input line: an event (or any JSON value, to test what is dead-lettered).
    Event(serde_json::Value),
    /// A time step without an event: the watermark moves as if an event at this time had
    /// arrived (G26: to the time minus `maxOutOfOrderness`), and due timers fire (G27).
    Clock(TestTime),
}

/// An event time in a test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TestTime {
    /// ms after the event time of the first input event (written as a duration).
    Relative(i64),
    /// ms since the epoch (written as a number or an RFC 3339 string).
    Absolute(i64),
}

impl TestTime {
    /// The event time in ms, given the event time of the first input event.
    pub fn resolve(self, origin: i64) -> i64 {
        match self {
            TestTime::Relative(offset) => origin.saturating_add(offset),
            TestTime::Absolute(time) => time,
        }
    }
}

impl std::fmt::Display for TestTime {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TestTime::Relative(0) => formatter.write_str("0"),
            TestTime::Relative(offset) => formatter.write_str(&format_duration(offset.unsigned_abs())),
            TestTime::Absolute(time) => write!(formatter, "{time}"),
        }
    }
}

/// What one sink (or the dead letters) must receive.
#[derive(Clone, Debug, PartialEq)]
pub struct SinkExpectation {
    pub sink: String,
    pub span: Span,
    /// Exactly these records, in any order (G51), each matched once.
    pub records: Vec<ExpectedRecord>,
    /// Spans of event time in which the sink receives nothing.
    pub quiet: Vec<QuietSpan>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ExpectedRecord {
    /// The record's fields (for a dead letter: its event).
    pub fields: serde_json::Value,
    /// Only the listed fields must match (nested objects too); others may be present.
    pub partial: bool,
    /// The event time the record must carry when it is emitted (G33).
    pub at: Option<TestTime>,
}

/// `nothing from A until B`: no record with event time in [A, B); an absent bound is open.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct QuietSpan {
    pub from: Option<TestTime>,
    pub until: Option<TestTime>,
}

const RECORD_KEYS: [&str; 2] = ["$at", "$partial"];
const TEST_KEYS: [&str; 4] = ["$at", "$partial", "$clock", "$nothing"];

/// The sink ids of a document: nodes whose type is a sink.
fn sink_ids(doc: &Document) -> Vec<&str> {
    doc.nodes
        .iter()
        .filter(|node| {
            NODE_TYPES.iter().any(|node_type| {
                (node_type.name == node.kind.node || node_type.aliases.contains(&node.kind.node.as_str()))
                    && node_type.name.ends_with("-sink")
            })
        })
        .map(|node| node.id.node.as_str())
        .collect()
}

/// The suffix of an `expect` key naming a network sink's message previews (`send_push.rendered`).
pub const RENDERED: &str = ".rendered";

/// The ids of the network sinks of a document, whose previews a test can expect.
fn network_sink_ids(doc: &Document) -> Vec<String> {
    doc.nodes
        .iter()
        .filter(|node| matches!(node.kind.node.as_str(), "api-sink" | "redis-sink" | "kafka-sink"))
        .map(|node| format!("{}{RENDERED}", node.id.node))
        .collect()
}

/// Validates every test block of `doc`: the cases that are valid and the problems of the others.
pub fn test_cases(doc: &Document) -> (Vec<TestCase>, Vec<Diagnostic>) {
    let mut rendered = network_sink_ids(doc);
    let mut sinks = sink_ids(doc);
    // A node that did not parse may be a sink; naming it is not another error.
    let unparsed = doc.unparsed_nodes().map(|node| &node.id.node);
    rendered.extend(unparsed.clone().map(|id| format!("{id}{RENDERED}")));
    sinks.extend(unparsed.map(String::as_str));
    sinks.extend(rendered.iter().map(String::as_str));
    let mut diagnostics = Vec::new();
    let mut cases = Vec::new();
    for test in &doc.tests {
        if let Some(case) = test_case(test, &sinks, &mut diagnostics) {
            cases.push(case);
        }
    }
    (cases, diagnostics)
}

fn test_case(test: &TestDecl, sinks: &[&str], diagnostics: &mut Vec<Diagnostic>) -> Option<TestCase> {
    let before = diagnostics.len();
    let Some(members) = test.body.as_object() else {
        diagnostics.push(
            Diagnostic::new(E0103, format!("test `{}` must be a block of `inputs` and `expect`", test.name.node))
                .primary(test.body.span, "expected `{ inputs: [...], expect: {...} }`"),
        );
        return None;
    };
    let mut inputs = None;
    let mut expect = None;
    for member in members {
        match member.key.node.as_str() {
            "inputs" => inputs = Some(&member.value),
            "expect" => expect = Some(&member.value),
            other => {
                let mut diagnostic =
                    Diagnostic::new(E0101, format!("unknown key `{other}` in test `{}`", test.name.node))
                        .primary(member.key.span, "unknown key")
                        .note("a test has `inputs` (events) and `expect` (events per sink)");
                if let Some(suggestion) = did_you_mean(other, ["inputs", "expect"]) {
                    diagnostic = diagnostic.did_you_mean(member.key.span, suggestion);
                }
                diagnostics.push(diagnostic);
            }
        }
    }
    let (Some(inputs), Some(expect)) = (inputs, expect) else {
        diagnostics.push(
            Diagnostic::new(E0102, format!("test `{}` needs `inputs` and `expect`", test.name.node))
                .primary(test.name.span, "incomplete test"),
        );
        return None;
    };
    let inputs = test_inputs(inputs, diagnostics);
    let Some(expected_members) = expect.as_object() else {
        diagnostics.push(
            Diagnostic::new(E0103, "`expect` must map sink ids to lists of events")
                .primary(expect.span, format!("found {}", expect.describe())),
        );
        return None;
    };
    let mut expected = Vec::new();
    for member in expected_members {
        let sink = member.key.node.as_str();
        if sink != DEAD_LETTERS && !sinks.contains(&sink) {
            let mut diagnostic = Diagnostic::new(E0202, format!("`{sink}` is not a sink of this pipeline"))
                .primary(member.key.span, "no sink with this id")
                .note(format!(
                    "sinks: {}; `{DEAD_LETTERS}` holds the dead letters' events, `<sink>{RENDERED}` what a network sink sends",
                    sinks.iter().map(|sink| format!("`{sink}`")).collect::<Vec<_>>().join(", ")
                ));
            if let Some(suggestion) = did_you_mean(sink, sinks.iter().copied().chain([DEAD_LETTERS])) {
                diagnostic = diagnostic.did_you_mean(member.key.span, suggestion);
            }
            diagnostics.push(diagnostic);
            continue;
        }
        if let Some(expectation) = sink_expectation(member, diagnostics) {
            expected.push(expectation);
        }
    }
    let inputs = inputs?;
    (diagnostics.len() == before).then(|| TestCase {
        name: test.name.node.clone(),
        span: test.span,
        inputs,
        expect: expected,
    })
}

fn test_inputs(value: &Value, diagnostics: &mut Vec<Diagnostic>) -> Option<Vec<TestInput>> {
    let items = list(value, "`inputs`", diagnostics)?;
    let mut inputs = Vec::new();
    for item in items {
        let clock = item.as_object().and_then(|members| members.iter().find(|member| member.key.node == "$clock"));
        if let Some(clock) = clock {
            let members = item.as_object().unwrap_or_default();
            for extra in members.iter().filter(|member| member.key.node != "$clock") {
                diagnostics.push(
                    Diagnostic::new(E0101, format!("`$clock` moves time without an event: `{}` has no place here", extra.key.node))
                        .primary(extra.key.span, "not part of a clock step")
                        .help("write the clock step alone (`clock 5m`, `{\"$clock\": \"5m\"}`) and the event as its own input"),
                );
            }
            inputs.push(TestInput::Clock(time(&clock.value, diagnostics)?));
            continue;
        }
        reserved_keys(item, &[], diagnostics);
        inputs.push(TestInput::Event(to_json(item, diagnostics)?));
    }
    Some(inputs)
}

fn sink_expectation(member: &Member, diagnostics: &mut Vec<Diagnostic>) -> Option<SinkExpectation> {
    let sink = member.key.node.as_str();
    let items = list(&member.value, &format!("`expect.{sink}`"), diagnostics)?;
    let mut records = Vec::new();
    let mut quiet = Vec::new();
    for item in items {
        let fields = item.as_object().unwrap_or_default();
        if let Some(nothing) = fields.iter().find(|field| field.key.node == "$nothing") {
            if sink == DEAD_LETTERS {
                diagnostics.push(
                    Diagnostic::new(E0101, "dead letters have no emission time: `nothing` does not apply")
                        .primary(nothing.key.span, "not for dead letters")
                        .help("list the expected dead letters, or write `dead_letters: []` for none"),
                );
                continue;
            }
            for extra in fields.iter().filter(|field| field.key.node != "$nothing") {
                diagnostics.push(
                    Diagnostic::new(E0101, format!("`$nothing` stands alone: `{}` has no place here", extra.key.node))
                        .primary(extra.key.span, "not part of `nothing`"),
                );
            }
            if let Some(span) = quiet_span(&nothing.value, diagnostics) {
                quiet.push(span);
            }
            continue;
        }
        let mut record = ExpectedRecord { fields: serde_json::Value::Null, partial: false, at: None };
        if let Some(at) = fields.iter().find(|field| field.key.node == "$at") {
            if sink == DEAD_LETTERS {
                diagnostics.push(
                    Diagnostic::new(E0101, "dead letters have no emission time: `at` does not apply")
                        .primary(at.key.span, "not for dead letters")
                        .help("remove the time; the dead letter is compared by its event"),
                );
            } else {
                record.at = time(&at.value, diagnostics);
            }
        }
        if let Some(partial) = fields.iter().find(|field| field.key.node == "$partial") {
            match partial.value.kind {
                ValueKind::Bool(flag) => record.partial = flag,
                ValueKind::Expr(pulse_syntax::ast::Expr { kind: pulse_syntax::ast::ExprKind::Bool(flag), .. }) => {
                    record.partial = flag
                }
                _ => diagnostics.push(
                    Diagnostic::new(E0103, "`$partial` must be `true` or `false`")
                        .primary(partial.value.span, format!("found {}", partial.value.describe())),
                ),
            }
        }
        reserved_keys(item, &RECORD_KEYS, diagnostics);
        let json = match item.as_object() {
            Some(members) => {
                let mut object = serde_json::Map::new();
                for member in members.iter().filter(|member| !member.key.node.starts_with('$')) {
                    let Some(value) = to_json(&member.value, diagnostics) else { continue };
                    object.insert(member.key.node.clone(), value);
                }
                serde_json::Value::Object(object)
            }
            None => {
                let Some(json) = to_json(item, diagnostics) else { continue };
                json
            }
        };
        record.fields = json;
        records.push(record);
    }
    Some(SinkExpectation { sink: sink.to_string(), span: member.key.span, records, quiet })
}

fn quiet_span(value: &Value, diagnostics: &mut Vec<Diagnostic>) -> Option<QuietSpan> {
    let Some(bounds) = value.as_object() else {
        diagnostics.push(
            Diagnostic::new(E0103, "`$nothing` must be an object with `from` and/or `until`")
                .primary(value.span, format!("found {}", value.describe()))
                .help("write `{\"$nothing\": {\"until\": \"5m\"}}` (`.pulse`: `nothing until 5m`)"),
        );
        return None;
    };
    let mut span = QuietSpan { from: None, until: None };
    for bound in bounds {
        match bound.key.node.as_str() {
            "from" => span.from = Some(time(&bound.value, diagnostics)?),
            "until" => span.until = Some(time(&bound.value, diagnostics)?),
            other => {
                let mut diagnostic = Diagnostic::new(E0101, format!("unknown key `{other}` in `$nothing`"))
                    .primary(bound.key.span, "unknown key")
                    .note("`$nothing` has `from` (inclusive) and `until` (exclusive), both optional");
                if let Some(suggestion) = did_you_mean(other, ["from", "until"]) {
                    diagnostic = diagnostic.help(format!("did you mean `{suggestion}`?"));
                }
                diagnostics.push(diagnostic);
                return None;
            }
        }
    }
    Some(span)
}

/// Reports `$` keys of a test record other than `allowed`, at any depth of its top level.
fn reserved_keys(item: &Value, allowed: &[&str], diagnostics: &mut Vec<Diagnostic>) {
    let Some(members) = item.as_object() else { return };
    for member in members {
        let key = member.key.node.as_str();
        if key.starts_with('$') && !allowed.contains(&key) {
            let mut diagnostic = Diagnostic::new(E0101, format!("unknown test key `{key}`"))
                .primary(member.key.span, "keys starting with `$` are reserved in tests")
                .note(if allowed.is_empty() {
                    "an input is an event or a clock step (`$clock`)".to_string()
                } else {
                    format!(
                        "an expected record may have {}",
                        allowed.iter().map(|key| format!("`{key}`")).collect::<Vec<_>>().join(", ")
                    )
                });
            if let Some(suggestion) = did_you_mean(key, TEST_KEYS) {
                diagnostic = diagnostic.help(format!("did you mean `{suggestion}`?"));
            }
            diagnostics.push(diagnostic);
        }
    }
}

/// A test time: a duration (relative to the first input event), ms since the epoch or an
/// RFC 3339 string (absolute).
fn time(value: &Value, diagnostics: &mut Vec<Diagnostic>) -> Option<TestTime> {
    let parsed = match &value.kind {
        ValueKind::Duration(duration) => i64::try_from(duration.millis).ok().map(TestTime::Relative),
        ValueKind::Number(Number::Int(millis)) => Some(TestTime::Absolute(*millis)),
        ValueKind::String(text) => match parse_duration(text) {
            Ok(millis) => i64::try_from(millis).ok().map(TestTime::Relative),
            Err(_) => pulse_stdlib::time::parse_rfc3339(text).map(TestTime::Absolute),
        },
        ValueKind::Expr(pulse_syntax::ast::Expr { kind: pulse_syntax::ast::ExprKind::Str(text), .. }) => {
            pulse_stdlib::time::parse_rfc3339(text).map(TestTime::Absolute)
        }
        _ => None,
    };
    if parsed.is_none() {
        diagnostics.push(
            Diagnostic::new(E0103, format!("expected a test time, found {}", value.describe()))
                .primary(value.span, format!("found {}", value.describe()))
                .help("write a duration after the first input (`5m`), ms since the epoch (`300000`) or an RFC 3339 time (`\"2024-05-01T10:05:00Z\"`)"),
        );
    }
    parsed
}

fn list<'v>(value: &'v Value, what: &str, diagnostics: &mut Vec<Diagnostic>) -> Option<&'v [Value]> {
    match &value.kind {
        ValueKind::Array(items) => Some(items),
        _ => {
            diagnostics.push(
                Diagnostic::new(E0103, format!("{what} must be a list of events"))
                    .primary(value.span, format!("found {}", value.describe())),
            );
            None
        }
    }
}

/// A test value as JSON: durations become milliseconds; expressions are not values.
fn to_json(value: &Value, diagnostics: &mut Vec<Diagnostic>) -> Option<serde_json::Value> {
    Some(match &value.kind {
        ValueKind::Null => serde_json::Value::Null,
        ValueKind::Bool(flag) => serde_json::Value::Bool(*flag),
        ValueKind::Number(Number::Int(number)) => serde_json::Value::from(*number),
        ValueKind::Number(Number::Float(number)) => serde_json::Value::from(*number),
        ValueKind::String(text) => serde_json::Value::String(text.clone()),
        ValueKind::Duration(duration) => serde_json::Value::from(duration.millis),
        ValueKind::Array(items) => {
            serde_json::Value::Array(items.iter().map(|item| to_json(item, diagnostics)).collect::<Option<_>>()?)
        }
        ValueKind::Object(members) => {
            let mut object = serde_json::Map::new();
            for member in members {
                object.insert(member.key.node.clone(), to_json(&member.value, diagnostics)?);
            }
            serde_json::Value::Object(object)
        }
        ValueKind::Expr(_) => {
            diagnostics.push(
                Diagnostic::new(E0103, "test events hold values, not expressions")
                    .primary(value.span, "not a JSON value")
                    .help("quote strings: `userId: \"u1\"`"),
            );
            return None;
        }
    })
}
