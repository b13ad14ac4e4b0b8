//! The test forms of test blocks (`at 5m { ... }`, `partial { ... }`, `clock 5m`,
//! `nothing until 5m`): the `.pulse` front end lowers them to the `$`-key objects the JSON DAG
//! writes, `pulsec fmt` keeps them readable, and `pulsec convert` round-trips them.

use pulse_syntax::ast::{Document, Value, ValueKind};
use pulse_syntax::json::{parse_json_document, print_json_document};
use pulse_syntax::{format_pulse, parse_pulse_document, print_pulse_document, FileId};

const PULSE: &str = r#"pipeline timed

events: file-source("events.jsonl") {
  eventTime: ts
}

events -> wait: delay(5m) -> pushes: file-sink("pushes.jsonl")

test "timed" {
  inputs: [
    { userId: "u1", ts: 0 },
    clock 5m,
    { userId: "u2", ts: 6m },
  ]
  expect: {
    pushes: [
      nothing until 5m,
      nothing from 5m until 6m,
      at 5m { userId: "u1", ts: 0 },
      at 11m partial { userId: "u2" },
      partial { ts: 6m },
      at "2024-05-01T10:00:00Z" { userId: "u3" },
    ]
    dead_letters: []
  }
}
"#;

const JSON: &str = r#"{
  "name": "timed",
  "nodes": [
    { "id": "events", "type": "file-source", "config": { "path": "events.jsonl", "eventTime": "ts" } },
    { "id": "wait", "type": "delay", "config": { "duration": "5m" } },
    { "id": "pushes", "type": "file-sink", "config": { "path": "pushes.jsonl" } }
  ],
  "edges": ["events -> wait", "wait -> pushes"],
  "tests": [
    {
      "name": "timed",
      "inputs": [
        { "userId": "u1", "ts": 0 },
        { "$clock": "5m" },
        { "userId": "u2", "ts": 360000 }
      ],
      "expect": {
        "pushes": [
          { "$nothing": { "until": "5m" } },
          { "$nothing": { "from": "5m", "until": "6m" } },
          { "$at": "5m", "userId": "u1", "ts": 0 },
          { "$at": "11m", "$partial": true, "userId": "u2" },
          { "$partial": true, "ts": 360000 },
          { "$at": "2024-05-01T10:00:00Z", "userId": "u3" }
        ],
        "dead_letters": []
      }
    }
  ]
}
"#;

fn pulse(text: &str) -> Document {
    let (document, diagnostics) = parse_pulse_document(FileId(0), text);
    assert!(diagnostics.is_empty(), "{diagnostics:#?}");
    document.expect("parses")
}

fn json(text: &str) -> Document {
    let (document, diagnostics) = parse_json_document(FileId(0), text);
    assert!(diagnostics.iter().all(|diagnostic| !diagnostic.is_error()), "{diagnostics:#?}");
    document.expect("parses")
}

fn keys(value: &Value) -> Vec<&str> {
    value.as_object().expect("an object").iter().map(|member| member.key.node.as_str()).collect()
}

fn list<'v>(value: &'v Value, key: &str) -> &'v [Value] {
    let member = value.as_object().expect("an object").iter().find(|member| member.key.node == key).expect("key");
    match &member.value.kind {
        ValueKind::Array(items) => items,
        other => panic!("{key} is {other:?}"),
    }
}

fn expect_of(value: &Value) -> &Value {
    &value.as_object().expect("body").iter().find(|member| member.key.node == "expect").expect("expect").value
}

#[test]
fn test_forms_lower_to_the_json_keys() {
    for document in [pulse(PULSE), json(JSON)] {
        let body = &document.tests[0].body;
        let inputs = list(body, "inputs");
        assert_eq!(keys(&inputs[1]), ["$clock"]);
        let pushes = list(expect_of(body), "pushes");
        assert_eq!(keys(&pushes[0]), ["$nothing"]);
        assert_eq!(keys(&pushes[2]), ["$at", "userId", "ts"]);
        assert_eq!(keys(&pushes[3]), ["$at", "$partial", "userId"]);
        assert_eq!(keys(&pushes[4]), ["$partial", "ts"]);
    }
}

#[test]
fn the_keys_of_test_forms_point_at_their_keywords() {
    let document = pulse(PULSE);
    let pushes = list(expect_of(&document.tests[0].body), "pushes");
    let at = &pushes[3].as_object().expect("object")[0].key;
    assert_eq!(&PULSE[at.span.start as usize..at.span.end as usize], "at");
}

#[test]
fn fmt_keeps_test_forms_and_convert_round_trips_them() {
    let formatted = format_pulse(FileId(0), PULSE).expect("formats");
    assert_eq!(formatted, PULSE);
    // .pulse -> JSON: times of test forms stay duration strings ("5m"); a duration in event
    // data, where a string is a string, is `{"$duration": "6m"}`.
    let printed_json = print_json_document(&pulse(PULSE));
    assert!(printed_json.contains(r#"{ "$at": "5m", "userId": "u1", "ts": 0 }"#), "{printed_json}");
    assert!(printed_json.contains(r#"{ "$clock": "5m" }"#), "{printed_json}");
    assert!(printed_json.contains(r#"{ "userId": "u2", "ts": {"$duration": "6m"} }"#), "{printed_json}");
    assert!(printed_json.contains(r#"{ "$partial": true, "ts": {"$duration": "6m"} }"#), "{printed_json}");
    // ... and back: the event keeps `ts: 6m`, as written.
    let back = print_pulse_document(&json(&printed_json));
    for form in ["{ userId: \"u2\", ts: 6m },", "partial { ts: 6m },"] {
        assert!(back.contains(form), "{form} in\n{back}");
    }
    // JSON -> .pulse gives the readable forms back, and the result converts to the same JSON.
    let printed_pulse = print_pulse_document(&json(JSON));
    for form in ["clock 5m,", "nothing until 5m,", "nothing from 5m until 6m,", "at 11m partial { userId: \"u2\" },"] {
        assert!(printed_pulse.contains(form), "{form} in\n{printed_pulse}");
    }
    assert_eq!(print_json_document(&pulse(&printed_pulse)), print_json_document(&json(JSON)));
    assert_eq!(print_json_document(&json(&printed_json)), printed_json);
}

/// The test body of a JSON pipeline whose one test has `inputs`.
fn json_with_inputs(inputs: &str) -> String {
    format!(
        r#"{{"name": "d", "nodes": [{{"id": "s", "type": "file-source", "config": {{"path": "x"}}}}, {{"id": "o", "type": "stdout-sink"}}], "edges": ["s -> o"], "tests": [{{"name": "t", "inputs": {inputs}, "expect": {{}}}}]}}"#
    )
}

#[test]
fn a_duration_in_json_test_data_is_the_same_literal_as_in_pulse() {
    let from_json = json(&json_with_inputs(r#"[{ "ts": {"$duration": "10m"}, "n": [{"$duration": "90d"}] }]"#));
    let inputs = list(&from_json.tests[0].body, "inputs");
    let event = inputs[0].as_object().expect("an event");
    let ValueKind::Duration(ts) = &event[0].value.kind else { panic!("{:?}", event[0].value) };
    assert_eq!((ts.millis, ts.text.as_str()), (600_000, "10m"));
    let ValueKind::Array(items) = &event[1].value.kind else { panic!("{:?}", event[1].value) };
    assert!(matches!(&items[0].kind, ValueKind::Duration(duration) if duration.text == "90d"));
    // A plain string is data, not a duration.
    let plain = json(&json_with_inputs(r#"[{ "label": "10m" }]"#));
    let event = list(&plain.tests[0].body, "inputs")[0].as_object().expect("an event");
    assert_eq!(event[0].value.kind, ValueKind::String("10m".into()));
}

#[test]
fn a_malformed_duration_in_json_test_data_is_reported() {
    for (inputs, code, message) in [
        (r#"[{ "ts": {"$duration": "10 min"} }]"#, "E0501", "invalid duration `10 min`"),
        (r#"[{ "ts": {"$duration": 600000} }]"#, "E0103", "`$duration` must be a duration string"),
        (
            r#"[{ "ts": {"$duration": "10m", "unit": "m"} }]"#,
            "E0101",
            "`$duration` stands alone: `unit` has no place here",
        ),
    ] {
        let (_, diagnostics) = parse_json_document(FileId(0), &json_with_inputs(inputs));
        assert!(
            diagnostics.iter().any(|diagnostic| diagnostic.code.as_str() == code && diagnostic.message == message),
            "{inputs}: {diagnostics:#?}"
        );
    }
}
