//! Crash recovery end to end: a pipeline with a delay and a keyed `mode: latest` delay runs with
//! `--state-dir` and a short checkpoint interval, is SIGKILLed at random moments (seeded) and
//! restarted until it finishes; its output files must equal those of an uninterrupted run, as
//! multisets of JSON values (dead letters: event and reason category, G51). The savepoint test
//! restores a half-run of the pipeline into an edited pipeline (a node added, nodes reordered).

mod build;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const PIPELINE: &str = r#"
pipeline NAME
runtime { BACKEND }

event {
  userId: string?
  query: string
  ts: timestamp
}

searches: file-source("searches.jsonl") {
  eventTime: ts
  maxOutOfOrderness: 1s
}

settle: delay(2s) by userId {
  mode: "latest"
}

later: delay(500ms)

final_query: stdout-sink
delayed: stdout-sink

searches -> settle -> final_query
searches -> later -> delayed
"#;

/// Pipeline B of the savepoint test: the same nodes plus a filter, declared in another order.
const EDITED_PIPELINE: &str = r#"
pipeline NAME

event {
  userId: string?
  query: string
  ts: timestamp
}

long_queries: filter(len(query) > 11)
long_out: stdout-sink
delayed: stdout-sink
final_query: stdout-sink

searches: file-source("searches.jsonl") {
  eventTime: ts
  maxOutOfOrderness: 1s
}

later: delay(500ms)

settle: delay(2s) by userId {
  mode: "latest"
}

searches -> long_queries -> long_out
searches -> later -> delayed
searches -> settle -> final_query
"#;

/// A small deterministic RNG (xorshift64*), so failures replay.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound
    }
}

fn pipeline_text(template: &str, name: &str, backend: &str) -> String {
    template.replace("NAME", name).replace("runtime { BACKEND }", &format!("runtime {{ stateBackend: \"{backend}\" }}"))
}

/// Searches of 3000 users, mostly in time order with jitter; some late, some without a user,
/// some not JSON, so every output file (dead letters too) has content.
fn write_input(path: &Path, lines: usize, seed: u64) {
    let mut rng = Rng(seed);
    let mut text = String::with_capacity(lines * 64);
    for n in 0..lines {
        let ts = 1_700_000_000_000u64 + n as u64 * 20 + rng.below(400);
        match rng.below(1000) {
            0 => text.push_str("not json\n"),
            1..=4 => text.push_str(&format!("{{\"query\":\"q{n}\",\"ts\":{ts}}}\n")),
            5..=9 => text.push_str(&format!(
                "{{\"userId\":\"u{}\",\"query\":\"late{n}\",\"ts\":{}}}\n",
                rng.below(3000),
                ts - 5000
            )),
            _ => text.push_str(&format!(
                "{{\"userId\":\"u{}\",\"query\":\"query number {n}\",\"ts\":{ts}}}\n",
                rng.below(3000)
            )),
        }
    }
    std::fs::write(path, text).expect("write input");
}

/// Each output file as a sorted multiset of JSON texts; dead letters keep the event and the
/// reason's category only.
fn outputs(dir: &Path) -> BTreeMap<String, Vec<String>> {
    let mut files = BTreeMap::new();
    for entry in std::fs::read_dir(dir).expect("output dir") {
        let path = entry.expect("entry").path();
        let name = path.file_name().expect("name").to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&path).expect("read output");
        let mut values: Vec<String> = text
            .lines()
            .map(|line| {
                let value: serde_json::Value =
                    serde_json::from_str(line).unwrap_or_else(|error| panic!("{name}: `{line}`: {error}"));
                if name == "_dead_letter.jsonl" {
                    let reason = value["reason"].as_str().expect("reason");
                    let category = reason.split(':').next().expect("category");
                    serde_json::json!({"category": category, "event": value["event"]}).to_string()
                } else {
                    value.to_string()
                }
            })
            .collect();
        values.sort();
        files.insert(name, values);
    }
    files
}

fn run_to_end(binary: &Path, args: &[&str]) -> Duration {
    let started = Instant::now();
    let output = Command::new(binary).args(args).arg("--quiet").output().expect("binary runs");
    assert!(output.status.success(), "{args:?}: {}", String::from_utf8_lossy(&output.stderr));
    started.elapsed()
}

fn path(path: &Path) -> String {
    path.display().to_string()
}

fn kill_and_restart(backend: &str, name: &str, seed: u64, min_kills: usize) {
    let binary = build::build_text(&format!("{name}.pulse"), &pipeline_text(PIPELINE, name, backend), None);
    let dir = tempfile::tempdir().expect("temp dir");
    let input = dir.path().join("searches.jsonl");
    write_input(&input, 200_000, seed);
    let reference = dir.path().join("reference");
    let uninterrupted = run_to_end(&binary, &["run", "--input", &path(&input), "--output", &path(&reference)]);
    let expected = outputs(&reference);
    assert!(expected.values().all(|values| !values.is_empty()), "every output has records: {:?}", expected.keys());

    let output = dir.path().join("out");
    let state = dir.path().join("state");
    let args = [
        "run",
        "--input",
        &path(&input),
        "--output",
        &path(&output),
        "--state-dir",
        &path(&state),
        "--checkpoint-interval",
        "20ms",
        "--quiet",
    ];
    // Kill within a fraction of the uninterrupted run time, so a run needs many restarts.
    let window_ms = (uninterrupted.as_millis() as u64 / 4).clamp(50, 400);
    let mut rng = Rng(seed ^ 0x9e37_79b9_7f4a_7c15);
    let mut kills = 0;
    let mut runs = 0;
    loop {
        runs += 1;
        assert!(runs < 2000, "no progress after {runs} runs");
        let mut child = Command::new(&binary).args(args).stdout(Stdio::null()).spawn().expect("binary starts");
        let deadline = Instant::now() + Duration::from_millis(5 + rng.below(window_ms));
        let mut finished = None;
        while Instant::now() < deadline {
            if let Some(status) = child.try_wait().expect("wait") {
                finished = Some(status);
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        match finished {
            Some(status) => {
                assert!(status.success(), "run {runs} failed: {status}");
                if kills >= min_kills {
                    break;
                }
                // Finished before enough kills: start over with a fresh state and output.
                std::fs::remove_dir_all(&state).expect("remove state");
                std::fs::remove_dir_all(&output).expect("remove output");
            }
            None => {
                child.kill().expect("SIGKILL");
                child.wait().expect("reaped");
                kills += 1;
            }
        }
    }
    eprintln!("{name}: {kills} kills in {runs} runs (uninterrupted run {uninterrupted:?})");
    assert!(kills >= min_kills);
    let produced = outputs(&output);
    assert_eq!(expected.keys().collect::<Vec<_>>(), produced.keys().collect::<Vec<_>>());
    for (file, values) in &expected {
        assert!(
            values == &produced[file],
            "{name}: {file} differs after {kills} kills ({} vs {} records)",
            values.len(),
            produced[file].len()
        );
    }
}

#[test]
fn sigkill_at_random_points_with_rocksdb_gives_the_uninterrupted_output() {
    kill_and_restart("rocksdb", "checkpoint-kill-rocksdb", 0x5eed_0001, 20);
}

#[test]
fn sigkill_at_random_points_with_the_memory_backend_gives_the_uninterrupted_output() {
    kill_and_restart("memory", "checkpoint-kill-memory", 0x5eed_0002, 8);
}

#[test]
fn a_savepoint_restores_into_an_edited_pipeline() {
    let first = build::build_text("savepoint-a.pulse", &pipeline_text(PIPELINE, "savepoint-a", "rocksdb"), None);
    let second = build::build_text("savepoint-b.pulse", &EDITED_PIPELINE.replace("NAME", "savepoint-b"), None);
    let dir = tempfile::tempdir().expect("temp dir");
    let input = dir.path().join("searches.jsonl");
    write_input(&input, 50_000, 7);
    let reference = dir.path().join("reference");
    run_to_end(&first, &["run", "--input", &path(&input), "--output", &path(&reference)]);

    // A runs half the input and stops as if killed after a checkpoint; its savepoint goes into B.
    let output = dir.path().join("out");
    let state = dir.path().join("state");
    let out = path(&output);
    run_to_end(
        &first,
        &["run", "--input", &path(&input), "--output", &out, "--state-dir", &path(&state), "--stop-after", "25000"],
    );
    let savepoint = dir.path().join("half.savepoint");
    run_to_end(&first, &["savepoint", "create", "--state-dir", &path(&state), "--to", &path(&savepoint)]);
    let restored = dir.path().join("restored");
    run_to_end(
        &second,
        &[
            "run",
            "--from-savepoint",
            &path(&savepoint),
            "--input",
            &path(&input),
            "--output",
            &out,
            "--state-dir",
            &path(&restored),
        ],
    );
    let expected = outputs(&reference);
    let produced = outputs(&output);
    for file in ["final_query.jsonl", "delayed.jsonl", "_dead_letter.jsonl"] {
        assert!(expected[file] == produced[file], "{file} differs from the uninterrupted run of A");
    }
    assert!(!produced["long_out.jsonl"].is_empty());
}
