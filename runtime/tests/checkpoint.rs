//! Checkpoints, restore and savepoints with hand-written pipelines: a keyed counter whose state
//! lives in `cx.state()`, in variants that differ in backend, node order and state layouts.

use std::path::Path;
use std::process::ExitCode;

use pulse_runtime::{
    run_with_args, Context, Pipeline, PipelineSpec, SinkKind, SinkSpec, SourceKind, SourceSpec, Timer,
};
use pulse_stdlib::state::{Store, ValueState};

const SOURCES: &[SourceSpec] = &[SourceSpec {
    node: "src",
    kind: SourceKind::File { path: "in.jsonl" },
    max_out_of_orderness: 0,
    max_future_skew: i64::MAX,
}];
const SINKS: &[SinkSpec] = &[SinkSpec { node: "out", kind: SinkKind::Stdout }];

/// Variant 0: RocksDB. 1: memory backend. 2: nodes reordered, one added, `gone` removed.
/// 3: like 0 but `count` has another layout.
const SPECS: [PipelineSpec; 4] = [
    PipelineSpec {
        name: "counter",
        nodes: &["src", "gone", "count", "out"],
        sources: SOURCES,
        sinks: SINKS,
        checkpoint_interval_ms: None,
        state_backend_memory: false,
        state_layouts: &[("count", "u64/v1"), ("gone", "bool/v1")],
        version: "",
        topology: pulse_runtime::Topology::EMPTY,
    },
    PipelineSpec {
        name: "counter",
        nodes: &["src", "gone", "count", "out"],
        sources: SOURCES,
        sinks: SINKS,
        checkpoint_interval_ms: Some(1),
        state_backend_memory: true,
        state_layouts: &[("count", "u64/v1"), ("gone", "bool/v1")],
        version: "",
        topology: pulse_runtime::Topology::EMPTY,
    },
    PipelineSpec {
        name: "counter-edited",
        nodes: &["extra", "src", "other", "count", "out"],
        sources: SOURCES,
        sinks: SINKS,
        checkpoint_interval_ms: None,
        state_backend_memory: false,
        state_layouts: &[("count", "u64/v1")],
        version: "",
        topology: pulse_runtime::Topology::EMPTY,
    },
    PipelineSpec {
        name: "counter",
        nodes: &["src", "gone", "count", "out"],
        sources: SOURCES,
        sinks: SINKS,
        checkpoint_interval_ms: None,
        state_backend_memory: false,
        state_layouts: &[("count", "u64/v2"), ("gone", "bool/v1")],
        version: "",
        topology: pulse_runtime::Topology::EMPTY,
    },
];

struct Counter<const VARIANT: usize>;

impl<const VARIANT: usize> Pipeline for Counter<VARIANT> {
    const SPEC: PipelineSpec = SPECS[VARIANT];

    fn new() -> Result<Self, pulse_runtime::generated::SetupError> {
        Ok(Counter)
    }

    fn on_record(&mut self, _source: usize, line: &str, cx: &mut Context) {
        let event: serde_json::Value = serde_json::from_str(line).expect("test input is JSON");
        let user = event["user"].as_str().expect("user").to_string();
        if let Some(ts) = event["ts"].as_i64() {
            cx.observe_event_time(ts);
        }
        let counts: ValueState<u64> = ValueState::new("count");
        let count = counts.get(cx.state(), user.as_bytes()).expect("decodes").unwrap_or(0) + 1;
        counts.put(cx.state(), user.as_bytes(), &count);
        if Self::SPEC.nodes.contains(&"gone") {
            cx.state().put("gone", user.as_bytes(), vec![1]);
        }
        cx.emit(0, 0, &serde_json::json!({"user": user, "count": count}).to_string());
    }

    fn on_timer(&mut self, _timer: Timer, _cx: &mut Context) {}
}

fn input_lines(range: std::ops::Range<usize>) -> String {
    range.map(|n| format!("{{\"user\":\"u{}\",\"ts\":{}}}\n", n % 7, n * 10)).collect()
}

fn run<const VARIANT: usize>(values: &[&str]) -> ExitCode {
    run_with_args::<Counter<VARIANT>>(
        std::iter::once("counter").chain(values.iter().copied()).chain(["--quiet"]).map(String::from),
    )
}

fn path(path: &Path) -> String {
    path.display().to_string()
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

/// Counts of one uninterrupted run over the whole input.
fn reference(dir: &Path) -> String {
    let input = dir.join("reference.jsonl");
    std::fs::write(&input, input_lines(0..100)).expect("write input");
    let output = dir.join("reference");
    assert_eq!(run::<0>(&["run", "--input", &path(&input), "--output", &path(&output)]), ExitCode::SUCCESS);
    read(&output.join("out.jsonl"))
}

fn resumes_from_the_last_checkpoint<const VARIANT: usize>() {
    let dir = tempfile::tempdir().expect("temp dir");
    let expected = reference(dir.path());
    let input = dir.path().join("in.jsonl");
    let state = dir.path().join("state");
    let output = dir.path().join("out");
    let args = ["run", "--input", &path(&input), "--output", &path(&output), "--state-dir", &path(&state)];
    std::fs::write(&input, input_lines(0..100)).expect("write input");
    // Stop after 40 records as if killed right after a checkpoint.
    assert_eq!(
        run::<VARIANT>(&[&args[..], &["--checkpoint-every", "7", "--stop-after", "40"]].concat()),
        ExitCode::SUCCESS
    );
    // Output written after the last checkpoint is not committed: a restart cuts it off.
    let committed = read(&output.join("out.jsonl"));
    assert_eq!(committed.lines().count(), 40);
    std::fs::write(output.join("out.jsonl"), format!("{committed}{{\"uncommitted\":true}}\n")).expect("append");
    // The restart reads on from the committed byte offset with its state.
    assert_eq!(run::<VARIANT>(&args), ExitCode::SUCCESS);
    assert_eq!(read(&output.join("out.jsonl")), expected);
    // A run after the end does nothing more.
    assert_eq!(run::<VARIANT>(&args), ExitCode::SUCCESS);
    assert_eq!(read(&output.join("out.jsonl")), expected);
}

#[test]
fn resumes_from_the_last_checkpoint_with_rocksdb() {
    resumes_from_the_last_checkpoint::<0>();
}

#[test]
fn resumes_from_the_last_checkpoint_with_the_memory_backend() {
    resumes_from_the_last_checkpoint::<1>();
    let dir = tempfile::tempdir().expect("temp dir");
    let input = dir.path().join("in.jsonl");
    std::fs::write(&input, input_lines(0..10)).expect("write input");
    let state = dir.path().join("state");
    assert_eq!(
        run::<1>(&["--input", &path(&input), "--output", &path(&dir.path().join("o")), "--state-dir", &path(&state)]),
        ExitCode::SUCCESS
    );
    assert!(state.join("memory.snapshot").is_file());
    // The other backend refuses the directory instead of starting empty.
    assert_eq!(run::<0>(&["--input", &path(&input), "--state-dir", &path(&state)]), ExitCode::from(2));
}

#[test]
fn a_savepoint_restores_into_an_edited_pipeline_by_node_id() {
    let dir = tempfile::tempdir().expect("temp dir");
    let expected = reference(dir.path());
    let input = dir.path().join("in.jsonl");
    let output = dir.path().join("out");
    let state = dir.path().join("state");
    std::fs::write(&input, input_lines(0..100)).expect("write input");
    let first = [
        "run",
        "--input",
        &path(&input),
        "--output",
        &path(&output),
        "--state-dir",
        &path(&state),
        "--stop-after",
        "50",
    ];
    assert_eq!(run::<0>(&first), ExitCode::SUCCESS);
    let savepoint = dir.path().join("sp.pulse-savepoint");
    assert_eq!(
        run::<0>(&["savepoint", "create", "--state-dir", &path(&state), "--to", &path(&savepoint)]),
        ExitCode::SUCCESS
    );
    let bytes = std::fs::read(&savepoint).expect("savepoint written");
    assert_eq!(&bytes[..8], b"PULSESP\n");

    // Restoring into a new state directory of the edited pipeline: `count` moved from index 2
    // to 3, `gone` is dropped with a warning, and the output continues where it was committed.
    let restored = dir.path().join("restored");
    let second = [
        "run",
        "--from-savepoint",
        &path(&savepoint),
        "--input",
        &path(&input),
        "--output",
        &path(&output),
        "--state-dir",
        &path(&restored),
    ];
    assert_eq!(run::<2>(&second), ExitCode::SUCCESS);
    assert_eq!(read(&output.join("out.jsonl")), expected);
    // The same start again (a restarted pod) continues from the run's own checkpoint.
    assert_eq!(run::<2>(&second), ExitCode::SUCCESS);
    assert_eq!(read(&output.join("out.jsonl")), expected);
    // The restored directory holds no state of `gone`.
    let again = dir.path().join("again.pulse-savepoint");
    assert_eq!(
        run::<2>(&["savepoint", "create", "--state-dir", &path(&restored), "--to", &path(&again)]),
        ExitCode::SUCCESS
    );
    let text = String::from_utf8_lossy(&std::fs::read(&again).expect("written")).into_owned();
    assert!(text.contains("count") && !text.contains("gone"));
    // Another savepoint goes into a new state directory only.
    let other = second.map(|arg| if arg == path(&savepoint) { path(&again) } else { arg.to_string() });
    let other: Vec<&str> = other.iter().map(String::as_str).collect();
    assert_eq!(run::<2>(&other), ExitCode::from(2));
}

#[test]
fn a_changed_state_layout_is_refused_not_reset() {
    let dir = tempfile::tempdir().expect("temp dir");
    let input = dir.path().join("in.jsonl");
    let output = dir.path().join("out");
    let state = dir.path().join("state");
    std::fs::write(&input, input_lines(0..30)).expect("write input");
    let args = ["run", "--input", &path(&input), "--output", &path(&output), "--state-dir", &path(&state)];
    assert_eq!(run::<0>(&[&args[..], &["--stop-after", "20"]].concat()), ExitCode::SUCCESS);
    let before = read(&output.join("out.jsonl"));
    // Resuming the checkpoint with another layout of `count` exits 2 and touches no output.
    assert_eq!(run::<3>(&args), ExitCode::from(2));
    assert_eq!(read(&output.join("out.jsonl")), before);
    // So does restoring a savepoint.
    let savepoint = dir.path().join("sp");
    assert_eq!(
        run::<0>(&["savepoint", "create", "--state-dir", &path(&state), "--to", &path(&savepoint)]),
        ExitCode::SUCCESS
    );
    let fresh = dir.path().join("fresh");
    assert_eq!(
        run::<3>(&[
            "run",
            "--from-savepoint",
            &path(&savepoint),
            "--input",
            &path(&input),
            "--state-dir",
            &path(&fresh)
        ]),
        ExitCode::from(2)
    );
}
