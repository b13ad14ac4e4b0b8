//! The JSON condition form means the same everywhere (G20, G21): in every place a condition can
//! appear (filter, splitter route, trigger start and cancel, has-done event, counter `where`,
//! segment rule) a condition object and its string twin lower to the same IR, hence to the same
//! generated code, and the built pipeline gives the outputs the string form describes.

mod build;

use pulse_ir::Pipeline;
use pulsec::load::load_text;
use std::process::Command;

/// Each place a condition can appear, as (condition object, string twin).
const CONDITIONS: &[(&str, &str, &str)] = &[
    ("FILTER", r#"{"field": "userId", "isNotNull": true}"#, r#""userId != null""#),
    ("ROUTE", r#"{"field": "event_name", "equals": "gift"}"#, r#""event_name == \"gift\"""#),
    ("WHERE", r#"{"field": "event_name", "equals": "gift"}"#, r#""event_name == \"gift\"""#),
    ("RULE", r#"{"field": "gifts_30d", "gte": 2}"#, r#""gifts_30d >= 2""#),
    (
        "START",
        r#"{"and": [{"field": "event_name", "equals": "add_to_cart"}, {"field": "props.amount", "gt": 10}]}"#,
        r#""event_name == \"add_to_cart\" && props.amount > 10""#,
    ),
    (
        "CANCEL",
        r#"{"field": "event_name", "in": ["checkout", "purchase"]}"#,
        r#""event_name in [\"checkout\", \"purchase\"]""#,
    ),
    (
        "DONE",
        r#"{"or": [{"field": "event_name", "startsWith": "video_"}, {"not": {"field": "props.amount", "lt": 1}}]}"#,
        r#""starts_with(event_name, \"video_\") || !(props.amount < 1)""#,
    ),
];

const DAG: &str = r#"{
  "name": "condition-twins",
  "schema": { "fields": { "event_name": "string", "userId": "string?", "ts": "timestamp", "props": { "fields": { "amount": "float?" }, "nullable": true } } },
  "nodes": [
    { "id": "events", "type": "file-source", "config": { "path": "events.jsonl", "eventTime": "ts" } },
    { "id": "known", "type": "filter", "config": { "where": FILTER } },
    { "id": "route", "type": "splitter", "config": { "routes": [ { "name": "gift", "where": ROUTE } ] } },
    { "id": "fans", "type": "segmentation", "config": {
        "bucket": "1h", "keyBy": "userId", "emit": "onChange",
        "counters": [ { "name": "gifts_30d", "where": WHERE, "window": "30d" } ],
        "segments": [ { "name": "fan", "rule": RULE } ] } },
    { "id": "cart", "type": "user-event-trigger", "config": { "within": "30m", "keyBy": "userId", "start": START, "cancel": CANCEL } },
    { "id": "watched", "type": "has-done-event", "config": { "event": DONE, "keyBy": "userId" } },
    { "id": "fan_sink", "type": "file-sink", "config": { "path": "fans.jsonl" } },
    { "id": "abandoned", "type": "file-sink", "config": { "path": "abandoned.jsonl" } },
    { "id": "converted", "type": "file-sink", "config": { "path": "converted.jsonl" } },
    { "id": "seen", "type": "file-sink", "config": { "path": "seen.jsonl" } },
    { "id": "unseen", "type": "file-sink", "config": { "path": "unseen.jsonl" } }
  ],
  "edges": [
    "events -> known", "known -> route", "route.gift -> fans", "fans -> fan_sink",
    "known -> cart", "cart.fired -> abandoned", "cart.cancelled -> converted",
    "known -> watched.flow", "watched.yes -> seen", "watched.no -> unseen"
  ]
}"#;

fn dag(object_form: bool) -> String {
    CONDITIONS.iter().fold(DAG.to_string(), |text, (slot, object, string)| {
        text.replace(slot, if object_form { object } else { string })
    })
}

fn lowered(name: &str, text: &str) -> Pipeline {
    let loaded = load_text(name, text.to_string(), &|_| Err(std::io::ErrorKind::NotFound.into()));
    let rendered = pulsec::render::human(&loaded.sources, &loaded.diagnostics, false);
    assert!(loaded.diagnostics.is_empty(), "{name} has diagnostics:\n{rendered}");
    loaded.pipeline.unwrap_or_else(|| panic!("{name} does not check:\n{rendered}"))
}

#[test]
fn condition_objects_and_their_string_twins_lower_to_the_same_ir_in_every_place() {
    let objects = lowered("objects.json", &dag(true));
    let strings = lowered("strings.json", &dag(false));
    assert_eq!(objects, strings);
    let generate = |pipeline: &Pipeline| pulsec::native::generate(pipeline, "twins.json").expect("generates").main_rs;
    assert_eq!(generate(&objects), generate(&strings));
}

#[test]
fn a_segment_rule_written_as_a_condition_object_reads_the_counter() {
    // A rule object naming something that is not a counter is an error, as for the string form.
    let wrong = dag(true).replace(r#"{"field": "gifts_30d", "gte": 2}"#, r#"{"field": "userId", "gte": 2}"#);
    let loaded = load_text("wrong.json", wrong, &|_| Err(std::io::ErrorKind::NotFound.into()));
    let codes: Vec<&str> = loaded.diagnostics.iter().map(|diagnostic| diagnostic.code.as_str()).collect();
    assert_eq!(codes, ["E0208"], "{:?}", loaded.diagnostics);

    let binary = build::build_text("objects.json", &dag(true), None);
    let dir = tempfile::tempdir().expect("temp dir");
    let input = dir.path().join("input.jsonl");
    let events: String = [
        r#"{"event_name": "gift", "userId": "u1", "ts": 0}"#,
        r#"{"event_name": "gift", "userId": "u1", "ts": 60000}"#,
        r#"{"event_name": "gift", "userId": "u2", "ts": 120000}"#,
    ]
    .iter()
    .map(|line| format!("{line}\n"))
    .collect();
    std::fs::write(&input, events).expect("input written");
    let output = dir.path().join("out");
    let status = Command::new(&binary)
        .args(["run", "--quiet", "--input"])
        .arg(&input)
        .arg("--output")
        .arg(&output)
        .status()
        .expect("binary runs");
    assert!(status.success());
    let fans = std::fs::read_to_string(output.join("fan_sink.jsonl")).expect("fan_sink output");
    let fans: Vec<serde_json::Value> = fans.lines().map(|line| serde_json::from_str(line).expect("json")).collect();
    // u1 enters `fan` with its second gift; u2 has one gift and never does.
    assert_eq!(fans.len(), 1, "{fans:?}");
    assert_eq!(fans[0]["userId"], "u1");
    assert_eq!(fans[0]["segments"], serde_json::json!(["fan"]));
    assert_eq!(fans[0]["counters"]["gifts_30d"], 2);
}
