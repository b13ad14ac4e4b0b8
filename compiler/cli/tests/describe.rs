//! `pulsec describe`: the partitioning a kafka-source's records need (keyed as the state after it
//! is, re-keyed through a repartition topic, or not servable by one partitioning), the internal
//! topics, the keyed state and the sinks.

use std::path::Path;
use std::process::Command;

const HEAD: &str = r#"pipeline shop
event {
  event_name: string
  userId: string?
  sessionId: string
  ts: timestamp
}
"#;

/// (exit success, stdout, stderr) of `pulsec describe` on `HEAD` + `body`.
fn describe(body: &str) -> (bool, String, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("p.pulse");
    std::fs::write(&file, format!("{HEAD}{body}")).expect("write");
    let output = Command::new(env!("CARGO_BIN_EXE_pulsec"))
        .arg("describe")
        .arg(Path::new(&file))
        .env("NO_COLOR", "1")
        .output()
        .expect("pulsec runs");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn partitioning(body: &str) -> String {
    let (ok, out, err) = describe(body);
    assert!(ok, "describe fails: {err}");
    out.lines()
        .find_map(|line| line.trim().strip_prefix("partitioning: "))
        .unwrap_or_else(|| panic!("no partitioning line:\n{out}"))
        .to_string()
}

#[test]
fn a_topic_keyed_by_the_state_key_needs_no_repartition() {
    let body = r#"events: kafka-source("clicks") { keyBy: userId, eventTime: ts, groupId: "shop" }
events -> cap: capping(3, 1h) by userId -> out: stdout-sink
"#;
    let (ok, out, err) = describe(body);
    assert!(ok, "{err}");
    assert!(out.contains("partitioning: the topic is keyed by `userId`"), "{out}");
    assert!(out.contains("changelog topic `shop-changelog`"), "{out}");
    assert!(!out.contains("repartition topic"), "{out}");
    assert!(out.contains("cap: capping by `userId`, event-time timers"), "{out}");
    assert!(out.contains("out: stdout-sink"), "{out}");
}

#[test]
fn an_undeclared_or_other_key_goes_through_a_repartition_topic() {
    let undeclared = r#"events: kafka-source("clicks") { eventTime: ts, groupId: "shop" }
events -> cap: capping(3, 1h) by userId -> out: stdout-sink
"#;
    let (ok, out, err) = describe(undeclared);
    assert!(ok, "{err}");
    assert!(out.contains("re-keyed by `userId` through a repartition topic"), "{out}");
    assert!(out.contains("declare `keyBy: userId`"), "{out}");
    assert!(out.contains("repartition topic `shop-repartition`"), "{out}");
    let other = undeclared.replace("{ eventTime", "{ keyBy: sessionId, eventTime");
    assert!(partitioning(&other).contains("(the topic is keyed by `sessionId`)"));
}

#[test]
fn one_partitioning_cannot_serve_two_keys_or_a_rewritten_key() {
    let two_keys = r#"events: kafka-source("clicks") { eventTime: ts }
events -> cap: capping(3, 1h) by userId -> out: stdout-sink
events -> once: dedupe(1h) by sessionId -> out2: stdout-sink
"#;
    let text = partitioning(two_keys);
    assert!(text.contains("`userId` (`cap`) and `sessionId` (`once`)"), "{text}");
    let rewritten = r#"events: kafka-source("clicks") { eventTime: ts }
events
  -> norm: map { set: { userId: sessionId } }
  -> cap: capping(3, 1h) by userId
  -> out: stdout-sink
"#;
    let text = partitioning(rewritten);
    assert!(text.contains("`cap` keys by `userId`, which `norm` changes"), "{text}");
    // A map that leaves the key alone does not stand in the way.
    let untouched = rewritten.replace("userId: sessionId", "tag: sessionId");
    assert!(partitioning(&untouched).starts_with("re-keyed by `userId`"));
}

#[test]
fn stateless_pipelines_take_any_partitioning_and_a_bad_key_is_an_error() {
    let stateless = r#"events: kafka-source("clicks") { eventTime: ts }
events -> f: filter(event_name == "click") -> out: stdout-sink
"#;
    assert!(partitioning(stateless).starts_with("no keyed state"));
    let bad = r#"events: kafka-source("clicks") { keyBy: user_id, eventTime: ts }
events -> out: stdout-sink
"#;
    let (ok, _, err) = describe(bad);
    assert!(!ok, "an unknown key field is an error");
    assert!(err.contains("user_id") && !err.contains("E0002"), "{err}");
}
