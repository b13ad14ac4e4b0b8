//! `format_pulse` (canonical layout, comments kept, idempotent) and `print_pulse_document`
//! (JSON idioms to `.pulse` idioms, output that parses back to an equivalent document).

use pulse_syntax::ast::{Document, Value, ValueKind};
use pulse_syntax::expr_print::print_expr;
use pulse_syntax::{format_pulse, parse_pulse_document, print_pulse_document, FileId};

const MESSY: &str = r#"// Header comment.
pipeline   demo   // the name


// Event schema.
event Login {
  userId: string?   // may be absent
  // the time
  ts: timestamp,   props: {show_id:string?}?
  // last in block
}
src: kafka-source('events') {   // trailing on header
  brokers:"b:9092" , groupId: "g", maxOutOfOrderness: 05s
  // before close
}
src   ->   f: filter(a==1&&b!=null)  // trailing chain
  // comment inside chain
  ->   out: stdout-sink
f2: filter where (x > 1) { time: "processing" }
sp: splitter { route a: v > 1, route b: v < 1 }
sp {
  // before branch
  a -> x: stdout-sink
  b -> y: stdout-sink
}
// end of file
"#;

const EXPECTED: &str = r#"// Header comment.
pipeline demo // the name

// Event schema.
event Login {
  userId: string? // may be absent
  // the time
  ts: timestamp
  props: { show_id: string? }?
  // last in block
}
src: kafka-source("events") {
  // trailing on header
  brokers: "b:9092"
  groupId: "g"
  maxOutOfOrderness: 5s
  // before close
}
src
  -> f: filter(a == 1 && b != null) // trailing chain
  // comment inside chain
  -> out: stdout-sink
f2: filter where x > 1 {
  time: "processing"
}
sp: splitter {
  route a: v > 1
  route b: v < 1
}
sp {
  // before branch
  a -> x: stdout-sink
  b -> y: stdout-sink
}
// end of file
"#;

fn format(text: &str) -> String {
    format_pulse(FileId(0), text).unwrap_or_else(|diagnostics| panic!("{diagnostics:#?}"))
}

fn comments(text: &str) -> Vec<&str> {
    text.lines().filter_map(|line| line.find("//").map(|idx| line[idx..].trim_end())).collect()
}

#[test]
fn formats_to_the_canonical_layout_keeping_comments() {
    let formatted = format(MESSY);
    assert_eq!(formatted, EXPECTED);
    assert_eq!(comments(&formatted), comments(MESSY));
}

#[test]
fn formatting_is_idempotent() {
    for text in [MESSY, EXPECTED, include_str!("pulse_parse.rs")] {
        // The parse tests' samples are raw strings inside the Rust file; pull out each one.
        for sample in
            text.split("r#\"").skip(usize::from(text.contains("fn format("))).filter_map(|s| s.split("\"#").next())
        {
            if let Ok(once) = format_pulse(FileId(0), sample) {
                assert_eq!(format(&once), once);
            }
        }
    }
    let once = format(MESSY);
    assert_eq!(format(&once), once);
}

#[test]
fn formatting_keeps_the_meaning() {
    let (before, _) = parse_pulse_document(FileId(0), MESSY);
    let (after, _) = parse_pulse_document(FileId(0), &format(MESSY));
    // Spans differ; the printed documents (which drop spans) must not.
    assert_eq!(print_pulse_document(&before.expect("parses")), print_pulse_document(&after.expect("parses")));
}

#[test]
fn formatting_a_file_with_errors_returns_them() {
    let diagnostics = format_pulse(FileId(0), "f: filter(a = 1)\n").expect_err("syntax error");
    assert_eq!(diagnostics[0].code, pulse_syntax::codes::E0005);
}

#[test]
fn long_chains_break_and_short_ones_stay_on_one_line() {
    let text = "a -> b -> c\nsource -> a_rather_long_node_name -> another_rather_long_node_name -> yet_another_long_name -> sink_x\n";
    let formatted = format(text);
    assert_eq!(
        formatted,
        "a -> b -> c\nsource\n  -> a_rather_long_node_name\n  -> another_rather_long_node_name\n  -> yet_another_long_name\n  -> sink_x\n"
    );
}

// ---- printing documents (pulsec convert) ----

const SEED_JSON: &str = r#"{
  "name": "welcome-message-d0",
  "description": "Send welcome push to first-time users 5 min after home_seen",
  "version": "1.0",
  "runtime": { "checkpointInterval": 120000, "stateBackend": "rocksdb", "restartStrategy": "exponential", "readSetting": "group-offsets" },
  "schema": {"fields": {"userId": "string?", "event_name": "string", "props": {"fields": {"show_id": "string?"}, "nullable": true}}},
  "nodes": [
    { "id": "source", "type": "kafka-source", "config": { "topic": "events", "brokers": "broker1:9092", "groupId": "welcome-d0-prod" } },
    { "id": "login_filter", "type": "filter", "config": { "where": { "and": [ { "field": "event_name", "equals": "login_success" }, { "field": "userId", "isNotNull": true } ] } } },
    { "id": "wait_5min", "type": "delay", "config": { "duration": "5m", "keyBy": "userId" } },
    { "id": "send_push", "type": "api-sink", "config": { "url": "https://notify.service/send", "method": "POST", "body": { "userId": "{{ userId }}", "title": "Welcome [[firstName]]!" } } }
  ],
  "edges": [ "source -> login_filter", "login_filter -> wait_5min", "wait_5min -> send_push" ]
}"#;

const SEED_PULSE: &str = r#"pipeline welcome-message-d0
description "Send welcome push to first-time users 5 min after home_seen"
version "1.0"

runtime {
  checkpointInterval: 120000
  stateBackend: "rocksdb"
  restartStrategy: "exponential"
  readSetting: "group-offsets"
}

event {
  userId: string?
  event_name: string
  props: { show_id: string? }?
}

source: kafka-source("events") {
  brokers: "broker1:9092"
  groupId: "welcome-d0-prod"
}

login_filter: filter(event_name == "login_success" && userId != null)
wait_5min: delay(5m) by userId

send_push: api-sink("https://notify.service/send") {
  method: "POST"
  body: { userId: "{{ userId }}", title: "Welcome [[firstName]]!" }
}

source -> login_filter -> wait_5min -> send_push
"#;

fn json(text: &str) -> Document {
    let (document, diagnostics) = pulse_syntax::json::parse_json_document(FileId(0), text);
    assert!(diagnostics.iter().all(|d| !d.is_error()), "{diagnostics:#?}");
    document.expect("valid JSON document")
}

fn reparse(text: &str) -> Document {
    let (document, diagnostics) = parse_pulse_document(FileId(1), text);
    assert!(diagnostics.is_empty(), "{text}\n{diagnostics:#?}");
    document.expect("printed .pulse parses")
}

#[test]
fn seed_json_prints_as_idiomatic_pulse() {
    let printed = print_pulse_document(&json(SEED_JSON));
    assert_eq!(printed, SEED_PULSE);
    let document = reparse(&printed);
    assert_eq!(document.nodes.len(), 4);
    assert_eq!(document.edges.len(), 3);
    // Printing is canonical: formatting and re-printing change nothing.
    assert_eq!(format(&printed), printed);
    assert_eq!(print_pulse_document(&document), printed);
}

fn node_value<'a>(document: &'a Document, id: &str, key: &str) -> &'a Value {
    let node = document.nodes.iter().find(|node| node.id.node == id).expect("node");
    let members = node.config.as_object().expect("object");
    &members.iter().find(|member| member.key.node == key).expect("key").value
}

fn expr_of(value: &Value) -> String {
    match &value.kind {
        ValueKind::Expr(expr) => print_expr(expr),
        ValueKind::Bool(value) => value.to_string(),
        other => format!("not an expression: {other:?}"),
    }
}

#[test]
fn condition_objects_become_expressions() {
    let cases = [
        (r#"{"field": "x", "equals": "v"}"#, r#"x == "v""#),
        (r#"{"field": "x", "notEquals": 1}"#, "x != 1"),
        (r#"{"field": "x", "in": ["a", "b"]}"#, r#"x in ["a", "b"]"#),
        (r#"{"field": "x", "gt": 1}"#, "x > 1"),
        (r#"{"field": "x", "gte": 1.5}"#, "x >= 1.5"),
        (r#"{"field": "x", "lt": -1}"#, "x < -1"),
        (r#"{"field": "x", "lte": 1}"#, "x <= 1"),
        (r#"{"field": "a.b", "regex": "^v"}"#, r#"a.b =~ "^v""#),
        (r#"{"field": "x", "contains": "v"}"#, r#"contains(x, "v")"#),
        (r#"{"field": "x", "startsWith": "v"}"#, r#"starts_with(x, "v")"#),
        (r#"{"field": "x", "endsWith": "v"}"#, r#"ends_with(x, "v")"#),
        (r#"{"field": "x", "isNull": true}"#, "x == null"),
        (r#"{"field": "x", "isNull": false}"#, "x != null"),
        (r#"{"field": "x", "isNotNull": true}"#, "x != null"),
        (r#"{"field": "x", "isNotNull": false}"#, "x == null"),
        (r#"{"field": "x", "equals": null}"#, "x == null"),
        (
            r#"{"and": [{"field": "a", "gt": 1}, {"or": [{"field": "b", "gt": 1}, "c == 2"]}]}"#,
            "a > 1 && (b > 1 || c == 2)",
        ),
        (r#"{"not": {"field": "a", "gt": 1}}"#, "!(a > 1)"),
        (r#"{"and": []}"#, "true"),
        (r#"{"or": []}"#, "false"),
        (r#""a = 1 || b""#, r#"not an expression: String("a = 1 || b")"#),
        (r#""a == 1 || b""#, "a == 1 || b"),
    ];
    for (condition, expected) in cases {
        let text = format!(
            r#"{{"name": "c", "nodes": [{{"id": "f", "type": "filter", "config": {{"where": {condition}}}}}], "edges": []}}"#
        );
        let printed = print_pulse_document(&json(&text));
        let document = reparse(&printed);
        assert_eq!(expr_of(node_value(&document, "f", "where")), expected, "{condition}\n{printed}");
    }
}

/// Equality of value trees, ignoring spans.
fn same(a: &Value, b: &Value) -> bool {
    match (&a.kind, &b.kind) {
        (ValueKind::Object(x), ValueKind::Object(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(m, n)| m.key.node == n.key.node && same(&m.value, &n.value))
        }
        (ValueKind::Array(x), ValueKind::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(m, n)| same(m, n)),
        (x, y) => x == y,
    }
}

#[test]
fn conditions_without_an_expression_form_stay_objects() {
    let text = r#"{"name": "c", "nodes": [{"id": "f", "type": "filter", "config": {"where": {"field": "o", "equals": {"a": 1}}}}], "edges": []}"#;
    let original = json(text);
    let document = reparse(&print_pulse_document(&original));
    assert!(same(node_value(&document, "f", "where"), node_value(&original, "f", "where")));
}

#[test]
fn map_set_strings_are_printed_parsed_and_literals_as_literals() {
    let text = r#"{"name": "m", "nodes": [{"id": "m", "type": "map", "config": {"set": {"a": "score * 2", "b": "\"text\"", "c": 5, "d": true, "e": {"k": "v"}}, "remove": ["tmp"]}}], "edges": []}"#;
    let printed = print_pulse_document(&json(text));
    assert!(printed.contains("a: score * 2\n"), "{printed}");
    assert!(printed.contains("b: \"text\"\n"), "{printed}");
    let document = reparse(&printed);
    let set = node_value(&document, "m", "set").as_object().expect("set");
    let kinds: Vec<_> = set.iter().map(|member| expr_of(&member.value)).collect();
    assert_eq!(&kinds[..4], ["score * 2", "\"text\"", "5", "true"]);
    assert!(matches!(set[4].value.kind, ValueKind::Object(_)));
}

#[test]
fn every_sugar_round_trips_through_json() {
    let text = r#"{
      "name": "all",
      "nodes": [
        {"id": "src", "type": "file-source", "config": {"path": "in.jsonl", "eventTime": "ts", "maxOutOfOrderness": "5s"}},
        {"id": "sp", "type": "splitter", "config": {"mode": "all", "routes": [{"name": "high-intent", "where": "v > 1"}, {"name": "low", "where": {"field": "v", "lte": 1}}]}},
        {"id": "t", "type": "user-event-trigger", "config": {"keyBy": "u", "start": "e == 1", "cancel": {"field": "e", "equals": 2}, "within": "30m"}},
        {"id": "h", "type": "has-done-event", "config": {"keyBy": "u", "event": "e == 3", "since": "1h"}},
        {"id": "s", "type": "segmentation", "config": {"keyBy": "u", "bucket": "1h", "counters": [{"name": "n", "where": "e == 1", "window": "2h"}, {"name": "all", "window": 7200000}], "segments": [{"name": "hot", "rule": "n > 1"}], "emit": "onChange"}},
        {"id": "c", "type": "capping", "config": {"keyBy": "u", "max": 3, "window": "1d"}},
        {"id": "w", "type": "window-aggregate", "config": {"keyBy": "u", "window": {"session": {"gap": "30m"}}, "aggregates": [{"name": "n", "fn": "count"}, {"name": "s", "fn": "sum", "field": "amount"}]}},
        {"id": "d", "type": "dedupe", "config": {"keyBy": "u", "within": "1h"}},
        {"id": "r", "type": "redis-sink", "config": {"command": "SET", "key": "k:{{ u }}", "ttl": "1d"}},
        {"id": "event", "type": "stdout-sink", "config": {}}
      ],
      "edges": ["src -> sp", "sp.high-intent -> t", "t.fired -> h.flow", "h.yes -> s", "s -> c", "c.capped -> w", "sp.low -> d", "d -> r", "h.no -> event", "event.x -> r"]
    }"#;
    let original = json(text);
    let printed = print_pulse_document(&original);
    for expected in [
        "route high-intent: v > 1",
        "route low: v <= 1",
        "t: user-event-trigger(30m) by u {",
        "cancel: e == 2",
        "h: has-done-event(e == 3) by u {",
        "since: 1h",
        "counter n over 2h where e == 1",
        "counter all over 7200000",
        "segment hot: n > 1",
        "c: capping(3, 1d) by u",
        "window session gap 30m",
        "aggregate s: sum(amount)",
        "src -> sp {\n  high-intent -> t {\n    fired -> h.flow\n  }\n}",
        "sp {\n  low -> d -> r\n}",
        "no -> event {\n    x -> r\n  }",
    ] {
        assert!(printed.contains(expected), "missing {expected:?} in\n{printed}");
    }
    let document = reparse(&printed);
    assert_eq!(document.nodes.len(), original.nodes.len());
    let edge_text = |document: &Document| -> Vec<String> {
        document
            .edges
            .iter()
            .map(|e| {
                format!(
                    "{}{:?}{}{:?}",
                    e.from.node,
                    e.from_port.as_ref().map(|p| &p.node),
                    e.to.node,
                    e.to_port.as_ref().map(|p| &p.node)
                )
            })
            .collect()
    };
    assert_eq!(edge_text(&document), edge_text(&original));
    assert_eq!(print_pulse_document(&document), printed);
    assert_eq!(format(&printed), printed);
}
