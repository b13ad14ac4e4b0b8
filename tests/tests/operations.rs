//! Operating a pipeline binary: `/metrics`, `/healthz` and `/readyz` scraped during a run and
//! checked against what the run did; `bootstrap` over history followed by a live run gives the
//! state and output of one uninterrupted run, and the same history gives the same savepoint.

mod build;
mod scrape;

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use pulse_runtime::checkpoint::Snapshot;
use scrape::{http_get, samples};

const PIPELINE: &str = r#"
pipeline ops
version "2.1"

event {
  event_name: string
  userId: string?
  ts: timestamp
}

events: file-source("events.jsonl") {
  eventTime: ts
  maxOutOfOrderness: 1s
}

plays: filter(event_name == "play")
counts: segmentation(1h) by userId {
  counter plays_1d over 1d
}
settle: delay(1h) by userId {
  mode: "latest"
}
profiles: file-sink("profiles.jsonl")
settled: file-sink("settled.jsonl")

events -> plays -> counts -> profiles
events -> settle -> settled
"#;

/// Deterministic events: 8 users, plays and other events, increasing time with jitter.
fn events(count: usize) -> Vec<String> {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    (0..count)
        .map(|index| {
            let user = next() % 8;
            let name = if next() % 3 == 0 { "search" } else { "play" };
            let ts = 1_700_000_000_000u64 + index as u64 * 700 + next() % 500;
            format!(r#"{{"event_name":"{name}","userId":"u{user}","ts":{ts}}}"#)
        })
        .collect()
}

#[test]
fn metrics_are_served_during_a_run_and_match_what_happened() {
    let binary = build::build_text("ops.pulse", PIPELINE, None);
    let dir = tempfile::tempdir().expect("temp dir");
    let mut child = Command::new(&binary)
        .args(["--input", "-", "--metrics-addr", "127.0.0.1:0", "--state-dir"])
        .arg(dir.path().join("state"))
        .args(["--checkpoint-every", "50"])
        .arg("--output")
        .arg(dir.path().join("out"))
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the pipeline");
    let mut stderr = BufReader::new(child.stderr.take().expect("stderr"));
    let mut first = String::new();
    stderr.read_line(&mut first).expect("the address line");
    let address = first.trim().rsplit_once("http://").map(|(_, address)| address.to_string()).unwrap_or_else(|| {
        panic!("expected the metrics address on stderr, got {first:?}");
    });

    let lines = events(300);
    let mut input: String = lines.iter().map(|line| format!("{line}\n")).collect();
    input.push_str("{\"event_name\": 5}\nnot json\n");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(input.as_bytes()).expect("feed the pipeline");
    stdin.flush().expect("flush");

    // The binary keeps running (stdin stays open): scrape until every record is counted.
    let deadline = Instant::now() + Duration::from_secs(30);
    let metrics = loop {
        let (status, body) = http_get(&address, "/metrics");
        assert_eq!(status, 200, "{body}");
        let metrics = samples(&body);
        if metrics.get("pulse_records_read_total") == Some(&302.0) {
            break metrics;
        }
        assert!(Instant::now() < deadline, "records never all counted:\n{body}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(http_get(&address, "/healthz").0, 200);
    assert_eq!(http_get(&address, "/readyz").0, 200);
    assert_eq!(http_get(&address, "/nowhere").0, 404);

    let plays = lines.iter().filter(|line| line.contains("\"play\"")).count() as f64;
    let users = lines
        .iter()
        .filter_map(|line| line.split("\"userId\":\"").nth(1)?.split('"').next())
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    let get = |name: &str| *metrics.get(name).unwrap_or_else(|| panic!("no sample {name} in {metrics:#?}"));
    assert_eq!(get("pulse_build_info{pipeline=\"ops\",version=\"2.1\"}"), 1.0);
    assert_eq!(get("pulse_node_records_in_total{node=\"events\"}"), 302.0);
    assert_eq!(get("pulse_node_records_out_total{node=\"events\"}"), 300.0);
    assert_eq!(get("pulse_dead_letters_total"), 2.0);
    assert_eq!(get("pulse_node_records_in_total{node=\"plays\"}"), 300.0);
    assert_eq!(get("pulse_node_records_dropped_total{node=\"plays\"}"), 300.0 - plays);
    assert_eq!(get("pulse_node_records_in_total{node=\"counts\"}"), plays);
    assert_eq!(get("pulse_sink_records_written_total{node=\"profiles\"}"), plays);
    // Nothing fires before the input ends (1h delay): the latest-mode delay registered a timer
    // per event (a superseded one is skipped when it fires).
    assert_eq!(get("pulse_timers_pending"), 300.0);
    assert!(get("pulse_checkpoints_total") >= 6.0, "a checkpoint every 50 records");
    assert_eq!(get("pulse_checkpoint_failures_total"), 0.0);
    assert!(get("pulse_state_keys") >= 1.0, "RocksDB holds keyed state");
    let watermark = get("pulse_watermark_ms");
    let max_ts = lines
        .iter()
        .filter_map(|line| line.rsplit_once("\"ts\":")?.1.trim_end_matches('}').parse::<f64>().ok())
        .fold(0.0, f64::max);
    assert_eq!(watermark, max_ts - 1000.0, "the watermark is the largest event time minus maxOutOfOrderness");

    drop(stdin);
    let status = child.wait().expect("the pipeline exits");
    let mut rest = String::new();
    stderr.read_to_string(&mut rest).expect("stderr");
    assert!(status.success(), "exit {status}: {rest}");
    let settled = std::fs::read_to_string(dir.path().join("out/settled.jsonl")).expect("settled output");
    assert_eq!(settled.lines().count(), users, "one settled event per user at the end of input");
}

fn run(binary: &Path, args: &[&str], dir: &Path) -> String {
    let output = Command::new(binary).args(args).current_dir(dir).output().expect("run the pipeline");
    let stderr = String::from_utf8_lossy(&output.stderr).to_string();
    assert!(output.status.success(), "{args:?}: exit {}: {stderr}", output.status);
    stderr
}

/// (node, key, value) of one state entry.
type Entry = (String, Vec<u8>, Vec<u8>);

/// State entries and timers of a savepoint, without the run's counters and positions.
fn state_of(path: &Path) -> (Vec<Entry>, Vec<String>) {
    let bytes = std::fs::read(path).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
    let snapshot = Snapshot::decode(&bytes).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
    let timers = snapshot.timers.iter().map(|(_, timer)| format!("{timer:?}")).collect();
    (snapshot.entries, timers)
}

/// 400 events in `dir`: the first 250 in `history.jsonl`, the other 150 in `live.jsonl`, all of
/// them in `all.jsonl`.
fn write_inputs(dir: &Path) {
    let lines = events(400);
    let (history, live) = lines.split_at(250);
    for (name, lines) in [("history.jsonl", history), ("live.jsonl", live), ("all.jsonl", &lines[..])] {
        let text: String = lines.iter().map(|line| format!("{line}\n")).collect();
        std::fs::write(dir.join(name), text).expect("write input");
    }
}

#[test]
fn bootstrap_then_live_equals_one_uninterrupted_run() {
    let binary = build::build_text("ops.pulse", PIPELINE, None);
    let dir = tempfile::tempdir().expect("temp dir");
    let dir = dir.path();
    write_inputs(dir);

    // One uninterrupted run over history and live events; and the same run stopped right after
    // the history, which gives what the history alone emitted.
    run(&binary, &["--input", "all.jsonl", "--output", "whole", "--state-dir", "whole-state"], dir);
    run(&binary, &["savepoint", "create", "--state-dir", "whole-state", "--to", "whole.sp", "-q"], dir);
    run(
        &binary,
        &["--input", "all.jsonl", "--output", "prefix", "--state-dir", "prefix-state", "--stop-after", "250"],
        dir,
    );

    // Bootstrap over the history (sinks suppressed), then the live events from its savepoint.
    let report = run(&binary, &["bootstrap", "--from", "history.jsonl", "--to", "boot.sp"], dir);
    assert!(report.contains("bootstrap read 250 records"), "{report}");
    assert!(!dir.join("boot.sp.bootstrap-state").exists(), "the working state is removed");
    assert!(!dir.join("profiles.jsonl").exists() && !dir.join("settled.jsonl").exists(), "sinks are suppressed");
    run(&binary, &["bootstrap", "--from", "history.jsonl", "--to", "again.sp", "-q"], dir);
    assert_eq!(
        std::fs::read(dir.join("boot.sp")).expect("savepoint"),
        std::fs::read(dir.join("again.sp")).expect("savepoint"),
        "the same history gives a byte-identical savepoint"
    );
    run(
        &binary,
        &["--input", "live.jsonl", "--output", "live", "--state-dir", "live-state", "--from-savepoint", "boot.sp"],
        dir,
    );
    run(&binary, &["savepoint", "create", "--state-dir", "live-state", "--to", "live.sp", "-q"], dir);

    // Same state and timers at the end.
    assert_eq!(state_of(&dir.join("live.sp")), state_of(&dir.join("whole.sp")));
    // Same output: the live run wrote exactly what the uninterrupted run wrote after the history.
    for sink in ["profiles.jsonl", "settled.jsonl"] {
        let read = |run: &str| std::fs::read_to_string(dir.join(run).join(sink)).unwrap_or_default();
        let (whole, prefix, live) = (read("whole"), read("prefix"), read("live"));
        assert!(whole.starts_with(&prefix), "{sink}: the stopped run is a prefix of the whole run");
        assert_eq!(live, whole[prefix.len()..], "{sink}: live output after bootstrap");
        assert!(!live.is_empty(), "{sink}: the live part emits something");
    }
}

#[test]
fn bootstrap_reports_bad_input_and_usage_errors() {
    let binary = build::build_text("ops.pulse", PIPELINE, None);
    let dir = tempfile::tempdir().expect("temp dir");
    let output = Command::new(&binary)
        .args(["bootstrap", "--from", "missing.jsonl", "--to", "x.sp"])
        .current_dir(dir.path())
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("missing.jsonl"), "{stderr}");
    assert!(!dir.path().join("x.sp").exists());
    let output = Command::new(&binary).args(["bootstrap", "--to", "x.sp"]).output().expect("run");
    assert_eq!(output.status.code(), Some(2), "--from is required");
}

#[test]
fn logs_are_plain_lines_or_json_objects() {
    let binary = build::build_text("ops.pulse", PIPELINE, None);
    let dir = tempfile::tempdir().expect("temp dir");
    let input: String = events(20).iter().map(|line| format!("{line}\n")).collect();
    std::fs::write(dir.path().join("in.jsonl"), input).expect("input");
    let run = |format: &str, input: &str| {
        Command::new(&binary)
            .args(["--input", input, "--output", "out", "--dead-letter", "dead.jsonl"])
            .env("PULSE_LOG_FORMAT", format)
            .current_dir(dir.path())
            .output()
            .expect("run")
    };

    let plain = run("plain", "in.jsonl");
    let stderr = String::from_utf8_lossy(&plain.stderr);
    assert!(plain.status.success(), "{stderr}");
    assert!(stderr.starts_with("ops: 20 records read, "), "{stderr}");

    let json = run("json", "in.jsonl");
    let stderr = String::from_utf8_lossy(&json.stderr);
    assert!(json.status.success(), "{stderr}");
    let lines: Vec<serde_json::Value> = stderr
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|error| panic!("not JSON ({error}): {line}")))
        .collect();
    let summary = lines.iter().find(|line| line["records_read"] == 20).unwrap_or_else(|| panic!("{stderr}"));
    assert_eq!(summary["level"], "INFO");
    assert_eq!(summary["span"]["pipeline"], "ops");
    assert!(summary["message"].as_str().is_some_and(|message| message.starts_with("20 records read")), "{summary}");
    assert!(summary["timestamp"].is_string(), "{summary}");

    let failed = run("json", "missing.jsonl");
    assert_eq!(failed.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&failed.stderr);
    let error: serde_json::Value = serde_json::from_str(stderr.trim()).unwrap_or_else(|_| panic!("{stderr}"));
    assert_eq!(error["level"], "ERROR");
    assert_eq!(error["exit_code"], 1);
    assert!(error["message"].as_str().is_some_and(|message| message.contains("missing.jsonl")), "{error}");
}

#[test]
fn the_binary_s_help_lists_the_environment_settings() {
    let binary = build::build_text("ops.pulse", PIPELINE, None);
    let output = Command::new(&binary).arg("--help").output().expect("binary runs");
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    for name in [
        "PULSE_KAFKA_BROKERS",
        "PULSE_INSTANCE_ID",
        "PULSE_KAFKA_PROP_<NAME>",
        "PULSE_STOP_TIMEOUT",
        "PULSE_MAX_FUTURE_SKEW",
    ] {
        assert!(help.contains(name), "`{name}` in --help:\n{help}");
    }
}

/// A profile of two counters and two segments; `counts_after` edits it.
const COUNTS_BEFORE: &str = r#"
pipeline profiles
event {
  event_name: string
  userId: string?
  ts: timestamp
}
events: file-source("events.jsonl") {
  eventTime: ts
  maxOutOfOrderness: 1s
}
counts: segmentation(1h) by userId {
  counter plays_1d over 1d where event_name == "play"
  counter searches_1d over 1d where event_name == "search"
  segment player: plays_1d >= 5
  segment searcher: searches_1d >= 1
}
events -> counts -> profiles: file-sink("profiles.jsonl")
"#;

/// `COUNTS_BEFORE` with a counter and a segment dropped, a counter moved and a counter and a
/// segment added.
fn counts_after() -> String {
    COUNTS_BEFORE.replace(
        r#"  counter plays_1d over 1d where event_name == "play"
  counter searches_1d over 1d where event_name == "search"
  segment player: plays_1d >= 5
  segment searcher: searches_1d >= 1
"#,
        r#"  counter events_1d over 1d
  counter plays_1d over 1d where event_name == "play"
  segment heavy: plays_1d >= 20
  segment player: plays_1d >= 5
"#,
    )
}

#[test]
fn an_edited_segmentation_keeps_the_counts_and_segments_it_still_has() {
    let before = build::build_text("counts-before.pulse", COUNTS_BEFORE, None);
    let after_text = counts_after();
    assert_ne!(after_text, COUNTS_BEFORE, "the edit applies");
    let after = build::build_text("counts-after.pulse", &after_text, None);
    let dir = tempfile::tempdir().expect("temp dir");
    let dir = dir.path();
    write_inputs(dir);

    // The old pipeline over everything, for reference; its state over the history, restored
    // into the edited pipeline for the live events.
    run(&before, &["--input", "all.jsonl", "--output", "whole", "--state-dir", "whole-state"], dir);
    run(&before, &["bootstrap", "--from", "history.jsonl", "--to", "before.sp", "-q"], dir);
    run(
        &after,
        &["--input", "live.jsonl", "--output", "live", "--state-dir", "live-state", "--from-savepoint", "before.sp"],
        dir,
    );

    let records = |path: &str| -> Vec<serde_json::Value> {
        let text = std::fs::read_to_string(dir.join(path)).unwrap_or_else(|error| panic!("{path}: {error}"));
        text.lines().map(|line| serde_json::from_str(line).expect("a JSON record")).collect()
    };
    let whole = records("whole/profiles.jsonl");
    let live_out = records("live/profiles.jsonl");
    assert_eq!((whole.len(), live_out.len()), (400, 150), "one record per event");
    let mut live_events: std::collections::HashMap<String, i64> = std::collections::HashMap::new();
    for (record, reference) in live_out.iter().zip(&whole[250..]) {
        let user = record["userId"].as_str().expect("userId").to_string();
        assert_eq!(reference["userId"].as_str(), Some(user.as_str()), "the same event");
        // `plays_1d` goes on from the history; `events_1d` is new and counts from the edit on.
        let seen = live_events.entry(user).or_default();
        *seen += 1;
        assert_eq!(record["counters"]["plays_1d"], reference["counters"]["plays_1d"], "{record}");
        assert_eq!(record["counters"]["events_1d"], serde_json::json!(*seen), "{record}");
        assert!(record["counters"].get("searches_1d").is_none(), "{record}");
        let plays = record["counters"]["plays_1d"].as_i64().expect("a count");
        let mut expected = Vec::new();
        if plays >= 20 {
            expected.push("heavy");
        }
        if plays >= 5 {
            expected.push("player");
        }
        assert_eq!(record["segments"], serde_json::json!(expected), "{record}");
    }
    assert!(
        live_out.iter().any(|record| record["counters"]["plays_1d"].as_i64() > live_events.values().max().copied()),
        "some user's count includes plays from before the edit"
    );
}
