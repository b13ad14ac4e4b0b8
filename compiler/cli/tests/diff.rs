//! `pulsec diff` as CI uses it: the per-node state report and the exit code that gates a deploy,
//! for two pipeline files and for a savepoint (written here with `pulse_stdlib::progress`, the
//! same frame pipeline binaries write) against a pipeline file.

use std::path::Path;
use std::process::{Command, Output};

use pulse_stdlib::progress::{savepoint_header, seal_savepoint, Progress};
use pulse_stdlib::state::{put_bytes, put_varint};

const BASE: &str = r#"pipeline shop
event {
  event_name: string
  userId: string?
  ts: timestamp
}
events: file-source("events.jsonl") { eventTime: ts }
counts: segmentation(1m) by userId {
  counter a over 1h where event_name == "a"
  counter b over 1h where event_name == "b"
}
cap: capping(5, 1d) by userId
events -> counts -> cap -> out: file-sink("out.jsonl")
"#;

fn pulsec(args: &[&Path]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pulsec"))
        .arg("diff")
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("pulsec runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Writes `text` as `name` in `dir` and returns its path.
fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write pipeline");
    path
}

fn edited(replacements: &[(&str, &str)]) -> String {
    let mut text = BASE.to_string();
    for (from, to) in replacements {
        assert!(text.contains(from), "{from} is in the base pipeline");
        text = text.replace(from, to);
    }
    text
}

/// A savepoint holding only a progress record (no timers, no entries).
fn savepoint(pipeline: &str, layouts: &[(&str, &str)]) -> Vec<u8> {
    let progress = Progress {
        pipeline: pipeline.to_string(),
        nodes: ["events", "counts", "cap", "out"].iter().map(|node| node.to_string()).collect(),
        layouts: layouts.iter().map(|(node, layout)| (node.to_string(), layout.to_string())).collect(),
        ..Progress::default()
    };
    let mut file = Vec::new();
    savepoint_header(&mut file);
    put_bytes(&mut file, &progress.to_bytes());
    put_varint(&mut file, 0);
    put_varint(&mut file, 0);
    seal_savepoint(&mut file);
    file
}

const COUNTS_AB: &str = "segmentation/v2 bucket=60000 counters=a,b segments=";

#[test]
fn identical_pipelines_keep_every_node_state() {
    let dir = tempfile::tempdir().expect("temp dir");
    let old = write(dir.path(), "old.pulse", BASE);
    let new = write(dir.path(), "new.pulse", BASE);
    let output = pulsec(&[&old, &new]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(
        stdout(&output),
        format!("  kept          counts  {COUNTS_AB}\n  kept          cap     capping/v1\ncompatible: 2 kept, 0 dropped, 0 new\n")
    );

    // The JSON DAG twin has the same state.
    let twin = dir.path().join("new.json");
    let converted = Command::new(env!("CARGO_BIN_EXE_pulsec"))
        .arg("convert")
        .arg(&old)
        .arg("-o")
        .arg(&twin)
        .output()
        .expect("pulsec runs");
    assert_eq!(converted.status.code(), Some(0), "{}", stderr(&converted));
    let output = pulsec(&[&old, &twin]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(stdout(&output).contains("compatible: 2 kept, 0 dropped, 0 new"), "{}", stdout(&output));
}

#[test]
fn a_renamed_node_is_dropped_and_the_new_id_starts_empty() {
    let dir = tempfile::tempdir().expect("temp dir");
    let old = write(dir.path(), "old.pulse", BASE);
    let new =
        write(dir.path(), "new.pulse", &edited(&[("cap: capping", "limit: capping"), ("-> cap ->", "-> limit ->")]));
    let output = pulsec(&[&old, &new]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(text.contains("  dropped       cap     capping/v1\n"), "{text}");
    assert!(text.contains("  new           limit   capping/v1\n"), "{text}");
    assert!(text.contains("compatible: 1 kept, 1 dropped, 1 new"), "{text}");
    assert!(stderr(&output).contains("if `cap` was renamed to `limit`, its state is dropped"), "{}", stderr(&output));
}

#[test]
fn added_counters_keep_the_others_state_and_a_new_bucket_size_fails_the_gate() {
    let dir = tempfile::tempdir().expect("temp dir");
    let old = write(dir.path(), "old.pulse", BASE);
    let added = write(
        dir.path(),
        "added.pulse",
        &edited(&[(
            "counter b over 1h where event_name == \"b\"",
            "counter b over 1h where event_name == \"b\"\n  counter c over 1h where event_name == \"c\"",
        )]),
    );
    let output = pulsec(&[&old, &added]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = stdout(&output);
    let with_c = "segmentation/v2 bucket=60000 counters=a,b,c segments=";
    assert!(text.contains(&format!("  kept          counts  {COUNTS_AB} -> {with_c}\n")), "{text}");
    assert!(text.contains("compatible: 2 kept, 0 dropped, 0 new"), "{text}");

    let hourly = write(dir.path(), "hourly.pulse", &edited(&[("segmentation(1m)", "segmentation(1h)")]));
    let output = pulsec(&[&old, &hourly]);
    assert_eq!(output.status.code(), Some(4), "{}", stderr(&output));
    let text = stdout(&output);
    let hourly_layout = "segmentation/v2 bucket=3600000 counters=a,b segments=";
    assert!(text.contains(&format!("  incompatible  counts  {COUNTS_AB} -> {hourly_layout}\n")), "{text}");
    assert!(text.contains("  kept          cap     capping/v1\n"), "{text}");
    assert!(text.contains("incompatible: 1 incompatible, 1 kept, 0 dropped, 0 new"), "{text}");
    assert!(stderr(&output).contains("help: "), "{}", stderr(&output));

    let json = Command::new(env!("CARGO_BIN_EXE_pulsec"))
        .args(["diff", "--message-format", "json"])
        .args([&old, &hourly])
        .output()
        .expect("pulsec runs");
    assert_eq!(json.status.code(), Some(4));
    let report: serde_json::Value = serde_json::from_str(&stdout(&json)).expect("one JSON object");
    assert_eq!(
        report,
        serde_json::json!({
            "compatible": false,
            "nodes": [
                {"node": "counts", "status": "incompatible", "old_layout": COUNTS_AB, "new_layout": hourly_layout},
                {"node": "cap", "status": "kept", "old_layout": "capping/v1", "new_layout": "capping/v1"},
            ]
        })
    );
}

#[test]
fn an_added_stateful_node_is_new() {
    let dir = tempfile::tempdir().expect("temp dir");
    let old = write(dir.path(), "old.pulse", BASE);
    let new = write(
        dir.path(),
        "new.pulse",
        &edited(&[
            ("cap: capping(5, 1d) by userId", "cap: capping(5, 1d) by userId\nhourly: capping(1, 1h) by userId"),
            ("-> cap ->", "-> cap -> hourly ->"),
        ]),
    );
    let output = pulsec(&[&old, &new]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(text.contains("  new           hourly  capping/v1\n"), "{text}");
    assert!(text.contains("compatible: 2 kept, 0 dropped, 1 new"), "{text}");
}

#[test]
fn a_pipeline_with_errors_exits_one_with_its_diagnostics() {
    let dir = tempfile::tempdir().expect("temp dir");
    let old = write(dir.path(), "old.pulse", BASE);
    let new = write(dir.path(), "new.pulse", &edited(&[("userId {", "usr_id {")]));
    let output = pulsec(&[&old, &new]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("error[E0205]"), "{}", stderr(&output));
    assert!(stdout(&output).is_empty());
}

#[test]
fn against_a_savepoint_compares_its_recorded_layouts() {
    let dir = tempfile::tempdir().expect("temp dir");
    let new = write(dir.path(), "new.pulse", BASE);
    let same = dir.path().join("same.savepoint");
    std::fs::write(&same, savepoint("shop", &[("counts", COUNTS_AB), ("cap", "capping/v1")])).expect("write");
    let output = pulsec(&[Path::new("--against"), &same, &new]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(stdout(&output).contains("compatible: 2 kept, 0 dropped, 0 new"), "{}", stdout(&output));

    let older = dir.path().join("older.savepoint");
    std::fs::write(
        &older,
        savepoint("shop-v1", &[("counts", "segmentation/v1 bucket=60000 counters=a"), ("cap", "capping/v1")]),
    )
    .expect("write");
    let output = pulsec(&[Path::new("--against"), &older, &new]);
    assert_eq!(output.status.code(), Some(4), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(
        text.contains(&format!("  incompatible  counts  segmentation/v1 bucket=60000 counters=a -> {COUNTS_AB}\n")),
        "{text}"
    );
    assert!(
        stderr(&output).contains("the savepoint was taken from pipeline `shop-v1`, not `shop`"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn an_unreadable_or_corrupt_savepoint_is_a_usage_error_naming_the_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let new = write(dir.path(), "new.pulse", BASE);
    let corrupt = dir.path().join("corrupt.savepoint");
    let mut bytes = savepoint("shop", &[("cap", "capping/v1")]);
    bytes[14] ^= 1;
    std::fs::write(&corrupt, bytes).expect("write");
    let output = pulsec(&[Path::new("--against"), &corrupt, &new]);
    assert_eq!(output.status.code(), Some(2));
    let text = stderr(&output);
    assert!(text.contains(&format!("savepoint `{}`", corrupt.display())) && text.contains("checksum"), "{text}");

    let missing = dir.path().join("missing.savepoint");
    let output = pulsec(&[Path::new("--against"), &missing, &new]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains(&format!("cannot read savepoint `{}`", missing.display())), "{}", stderr(&output));

    // Two pipeline files with --against, or one without it.
    assert_eq!(pulsec(&[Path::new("--against"), &corrupt, &new, &new]).status.code(), Some(2));
    assert_eq!(pulsec(&[&new]).status.code(), Some(2));
}
