//! Message previews under `--output`: every network sink also writes `<node-id>.rendered.jsonl`
//! with what it would send (the HTTP request, the Redis commands, the Kafka record), rendered as
//! live: a template that cannot render dead-letters the record as live, and a value from the
//! environment never appears.

mod build;

use serde_json::{json, Value};
use std::path::Path;
use std::process::Command;

const PIPELINE: &str = r#"
pipeline previews
event { event_name: string, userId: string?, ts: timestamp, props: { show_id: string? }? }
events: file-source("events.jsonl") { eventTime: ts }
events -> push: api-sink("${NOTIFY_URL}/send/{{ userId }}") {
  method: "POST"
  headers: { Authorization: "Bearer ${NOTIFY_TOKEN}" }
  body: { user: "{{ userId }}", show: "{{ props.show_id }}", secret: "${NOTIFY_TOKEN}" }
}
events -> profile: redis-sink("SET") { key: "last:{{ userId }}", value: "{{ event_name }}", ttl: 1d }
events -> out: kafka-sink("journeys") { brokers: "127.0.0.1:1", key: "{{ userId }}" }
"#;

fn lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|error| panic!("{}: {error}", path.display()))
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|error| panic!("{error}: {line}")))
        .collect()
}

#[test]
fn network_sinks_write_what_they_would_send_without_secrets() {
    let binary = build::build_text("previews.pulse", PIPELINE, None);
    let dir = tempfile::tempdir().expect("temp dir");
    let input = dir.path().join("input.jsonl");
    std::fs::write(
        &input,
        concat!(
            r#"{"event_name":"open","userId":"u1","ts":1000,"props":{"show_id":"s9"}}"#,
            "\n",
            r#"{"event_name":"open","userId":"u2","ts":2000}"#,
            "\n",
            r#"{"event_name":"open","userId":"..","ts":3000,"props":{"show_id":"s1"}}"#,
            "\n",
        ),
    )
    .expect("input written");
    let output = dir.path().join("out");
    let status = Command::new(&binary)
        .args(["run", "--quiet", "--input"])
        .arg(&input)
        .arg("--output")
        .arg(&output)
        .env("NOTIFY_URL", "https://notify.example")
        .env("NOTIFY_TOKEN", "sekret-token")
        .status()
        .expect("binary runs");
    assert!(status.success());

    for entry in std::fs::read_dir(&output).expect("output dir") {
        let path = entry.expect("entry").path();
        let text = std::fs::read_to_string(&path).expect("readable");
        assert!(!text.contains("sekret"), "{} holds the secret:\n{text}", path.display());
    }

    // u2 has no show: the body cannot render, so the request is a dead letter, as live. A
    // userId of `..` would climb out of the URL path (URL parsers resolve it even
    // percent-encoded): a dead letter too.
    let requests = lines(&output.join("push.rendered.jsonl"));
    assert_eq!(requests.len(), 1, "{requests:?}");
    let request = &requests[0];
    assert_eq!(request["method"], "POST");
    assert_eq!(request["url"], "${NOTIFY_URL}/send/u1");
    assert_eq!(request["headers"]["Authorization"], "Bearer ***");
    assert_eq!(request["headers"]["Idempotency-Key"].as_str().map(str::len), Some(32));
    assert_eq!(request["body"], json!({"user": "u1", "show": "s9", "secret": "***"}));
    assert_eq!(lines(&output.join("push.jsonl")).len(), 1, "only the sent event reaches the sink's file");
    let dead = lines(&output.join("_dead_letter.jsonl"));
    assert_eq!(dead.len(), 2, "{dead:?}");
    assert!(dead[0]["reason"].as_str().is_some_and(|reason| reason.contains("props.show_id")), "{dead:?}");
    assert!(dead[1]["reason"].as_str().is_some_and(|reason| reason.contains("dot segment `..`")), "{dead:?}");

    let commands: Vec<Value> =
        lines(&output.join("profile.rendered.jsonl")).into_iter().map(|line| line["commands"].clone()).collect();
    assert_eq!(
        commands,
        [
            json!([["SET", "last:u1", "open"], ["PEXPIRE", "last:u1", "86400000"]]),
            json!([["SET", "last:u2", "open"], ["PEXPIRE", "last:u2", "86400000"]]),
            json!([["SET", "last:..", "open"], ["PEXPIRE", "last:..", "86400000"]]),
        ]
    );

    let records = lines(&output.join("out.rendered.jsonl"));
    assert_eq!(records.len(), 3);
    assert_eq!(records[0]["topic"], "journeys");
    assert_eq!(records[0]["key"], "u1");
    let value: Value = serde_json::from_str(records[0]["value"].as_str().expect("text")).expect("json value");
    assert_eq!(value["userId"], "u1");
    assert!(records[0]["headers"]["pulse-id"].as_str().is_some_and(|id| !id.is_empty()));
    assert_ne!(records[0]["headers"]["pulse-id"], records[1]["headers"]["pulse-id"]);
}
