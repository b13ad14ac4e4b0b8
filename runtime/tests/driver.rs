//! End-to-end test of the driver with a small hand-written pipeline: two file sources read
//! round-robin, a pass-through filter, an event-time timer that re-emits each event 10 ms later,
//! a processing-time timer, dead letters for bad lines, and the end-of-input timer flush.

use std::path::Path;
use std::process::ExitCode;

use pulse_runtime::{
    run_with_args, Context, DeadEvent, Pipeline, PipelineSpec, SinkKind, SinkSpec, SourceKind, SourceSpec, TimeDomain,
    Timer, TimerKind,
};
use pulse_stdlib::decode::parse_event;

const PASS_NODE: usize = 2;
const DELAY_NODE: u32 = 3;
const OUT_SINK: usize = 0;
const DELAYED_SINK: usize = 1;
const ARRIVALS_SINK: usize = 2;

struct TinyPipeline;

impl Pipeline for TinyPipeline {
    const SPEC: PipelineSpec = PipelineSpec {
        name: "tiny",
        nodes: &["clicks", "views", "pass", "delay", "out", "delayed", "arrivals"],
        sources: &[
            SourceSpec {
                node: "clicks",
                kind: SourceKind::File { path: "configured-clicks.jsonl" },
                max_out_of_orderness: 0,
                max_future_skew: i64::MAX,
            },
            SourceSpec {
                node: "views",
                kind: SourceKind::File { path: "configured-views.jsonl" },
                max_out_of_orderness: 0,
                max_future_skew: i64::MAX,
            },
        ],
        sinks: &[
            SinkSpec { node: "out", kind: SinkKind::Stdout },
            SinkSpec {
                node: "delayed",
                kind: SinkKind::Kafka {
                    topic: "delayed",
                    brokers: None,
                    compression: None,
                    exactly_once: true,
                    env: &[],
                },
            },
            SinkSpec { node: "arrivals", kind: SinkKind::Stdout },
        ],
        checkpoint_interval_ms: None,
        state_backend_memory: false,
        state_layouts: &[],
        version: "",
        topology: pulse_runtime::Topology::EMPTY,
    };

    fn new() -> Result<Self, pulse_runtime::generated::SetupError> {
        Ok(TinyPipeline)
    }

    fn on_record(&mut self, source: usize, line: &str, cx: &mut Context) {
        let event: serde_json::Value = match parse_event(line) {
            Ok(event) => event,
            Err(dead) => return cx.dead_letter(&dead.reason, dead.event),
        };
        let source_node = Self::SPEC.sources[source].node;
        let arrival = serde_json::json!({"source": source_node, "arrival": cx.arrival(), "watermark": cx.watermark()});
        cx.emit(ARRIVALS_SINK, cx.arrival(), &arrival.to_string());
        let Some(event_time) = event.get("ts").and_then(serde_json::Value::as_i64) else {
            return cx.dead_letter("event-time: missing field `ts`", DeadEvent::Json(line.into()));
        };
        cx.observe_event_time(event_time);
        if event.get("drop") == Some(&serde_json::Value::Bool(true)) {
            return cx.drop_record(PASS_NODE);
        }
        cx.emit(OUT_SINK, event_time, line);
        cx.schedule(Timer {
            node: DELAY_NODE,
            time: event_time + 10,
            domain: TimeDomain::Event,
            kind: TimerKind::Carry(line.into()),
            event_time,
            entry_time: event_time,
            key: None,
        });
        if event.get("proc") == Some(&serde_json::Value::Bool(true)) {
            cx.schedule(Timer {
                node: DELAY_NODE,
                time: cx.arrival() + 1,
                domain: TimeDomain::Processing,
                kind: TimerKind::Carry(line.into()),
                event_time,
                entry_time: event_time,
                key: None,
            });
        }
    }

    fn on_timer(&mut self, timer: Timer, cx: &mut Context) {
        let event: serde_json::Value = serde_json::from_str(timer.kind.carried()).expect("timers carry valid JSON");
        let record = match timer.domain {
            TimeDomain::Event => {
                serde_json::json!({"timer": timer.time, "watermark": cx.watermark(), "id": event["id"]})
            }
            TimeDomain::Processing => {
                serde_json::json!({"processing_timer": timer.time, "arrival": cx.arrival(), "id": event["id"]})
            }
        };
        cx.emit(DELAYED_SINK, timer.time, &record.to_string());
    }
}

fn lines_of(path: &Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
    text.lines().map(|line| serde_json::from_str(line).unwrap_or_else(|error| panic!("{line}: {error}"))).collect()
}

fn args(values: &[&str]) -> Vec<String> {
    std::iter::once("tiny").chain(values.iter().copied()).map(String::from).collect()
}

fn write_inputs(dir: &Path) -> (String, String) {
    let clicks = dir.join("clicks.jsonl");
    let views = dir.join("views.jsonl");
    std::fs::write(
        &clicks,
        b"{\"id\":\"c1\",\"ts\":100}\n   \nnot json\n{\"id\":\"c2\",\"ts\":130,\"proc\":true}\r\n[1,2]\n{\"id\":\"c3\",\"ts\":105,\"drop\":true}",
    )
    .expect("write clicks");
    std::fs::write(&views, b"{\"id\":\"v1\",\"ts\":90}\n{\"id\":\"v2\",\"ts\":200}\n\xff\xfe\n").expect("write views");
    (clicks.display().to_string(), views.display().to_string())
}

#[test]
fn runs_two_sources_round_robin_with_timers_and_dead_letters() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (clicks, views) = write_inputs(dir.path());
    let output = dir.path().join("out");
    let exit = run_with_args::<TinyPipeline>(args(&[
        "run",
        "--input",
        &format!("clicks={clicks}"),
        "--input",
        &format!("views={views}"),
        "--output",
        &output.display().to_string(),
        "--quiet",
    ]));
    assert_eq!(exit, ExitCode::SUCCESS);

    // Arrival n is line n across both sources, blank and rejected lines included (G30, G31):
    // clicks 0, views 1, clicks(blank) 2, views 3, clicks(bad) 4, views(bad) 5, clicks 6,
    // views ends, clicks 7, clicks 8. Each record sees the watermark from before it (G26).
    assert_eq!(
        lines_of(&output.join("arrivals.jsonl")),
        vec![
            serde_json::json!({"source": "clicks", "arrival": 0, "watermark": i64::MIN}),
            serde_json::json!({"source": "views", "arrival": 1, "watermark": i64::MIN}),
            serde_json::json!({"source": "views", "arrival": 3, "watermark": 90}),
            serde_json::json!({"source": "clicks", "arrival": 6, "watermark": 100}),
            serde_json::json!({"source": "clicks", "arrival": 8, "watermark": 130}),
        ]
    );
    assert_eq!(
        lines_of(&output.join("out.jsonl")),
        vec![
            serde_json::json!({"id": "c1", "ts": 100}),
            serde_json::json!({"id": "v1", "ts": 90}),
            serde_json::json!({"id": "v2", "ts": 200}),
            serde_json::json!({"id": "c2", "ts": 130, "proc": true}),
        ]
    );
    // After c2 the watermark is min(130, 200) = 130: the timers at 100 and 110 fire in time
    // order, each seeing its own time (G28). The processing timer at 7 fires before the line
    // arriving at 8. At end of input the rest fire in time order (G27, G31).
    assert_eq!(
        lines_of(&output.join("delayed.jsonl")),
        vec![
            serde_json::json!({"timer": 100, "watermark": 100, "id": "v1"}),
            serde_json::json!({"timer": 110, "watermark": 110, "id": "c1"}),
            serde_json::json!({"processing_timer": 7, "arrival": 7, "id": "c2"}),
            serde_json::json!({"timer": 140, "watermark": 140, "id": "c2"}),
            serde_json::json!({"timer": 210, "watermark": 210, "id": "v2"}),
        ]
    );
    let dead_letters = lines_of(&output.join("_dead_letter.jsonl"));
    assert_eq!(dead_letters.len(), 3);
    assert!(dead_letters[0]["reason"].as_str().expect("reason").starts_with("invalid-json: "));
    assert_eq!(dead_letters[0]["event"], serde_json::json!("not json"));
    assert_eq!(dead_letters[1]["reason"], serde_json::json!("invalid-json: invalid UTF-8"));
    assert_eq!(dead_letters[1]["event"], serde_json::json!("\u{fffd}\u{fffd}"));
    assert_eq!(dead_letters[2]["reason"], serde_json::json!("not-an-object: expected a JSON object, found array"));
    assert_eq!(dead_letters[2]["event"], serde_json::json!([1, 2]));
}

#[test]
fn one_plain_input_feeds_every_source_and_empty_outputs_exist() {
    let dir = tempfile::tempdir().expect("temp dir");
    let input = dir.path().join("both.jsonl");
    std::fs::write(&input, "{\"id\":\"x\",\"ts\":5}\n").expect("write input");
    let output = dir.path().join("nested").join("out");
    let exit = run_with_args::<TinyPipeline>(args(&[
        "--input",
        &input.display().to_string(),
        "--output",
        &output.display().to_string(),
        "--quiet",
    ]));
    assert_eq!(exit, ExitCode::SUCCESS);
    assert_eq!(lines_of(&output.join("out.jsonl")).len(), 2, "each source reads the whole file");
    assert_eq!(lines_of(&output.join("delayed.jsonl")).len(), 2);
    assert_eq!(std::fs::read_to_string(output.join("_dead_letter.jsonl")).expect("exists"), "");
}

#[test]
fn usage_and_io_errors_have_their_exit_codes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let output = dir.path().join("out").display().to_string();
    let unknown_source =
        run_with_args::<TinyPipeline>(args(&["--input", "nosuch=x.jsonl", "--output", &output, "--quiet"]));
    assert_eq!(unknown_source, ExitCode::from(2));
    // Without --output the Kafka sink is live, and without brokers that is a usage error.
    let missing = dir.path().join("missing.jsonl").display().to_string();
    let kafka_sink = run_with_args::<TinyPipeline>(args(&["--input", &missing, "--quiet"]));
    assert_eq!(kafka_sink, ExitCode::from(2));
    let missing_input = run_with_args::<TinyPipeline>(args(&["--input", &missing, "--output", &output, "--quiet"]));
    assert_eq!(missing_input, ExitCode::from(1));
    let bad_flag = run_with_args::<TinyPipeline>(args(&["--no-such-flag"]));
    assert_eq!(bad_flag, ExitCode::from(2));
}

#[test]
fn clock_lines_move_the_watermark_and_emit_times_writes_event_times() {
    let dir = tempfile::tempdir().expect("temp dir");
    let clicks = dir.path().join("clicks.jsonl");
    // The timer of c1 is at 110: `#clock 110` is not past it (G27), `#clock 111` is, so it fires
    // before c2 is read. Clock lines take no arrival time: c2 arrives at 1.
    std::fs::write(&clicks, "{\"id\":\"c1\",\"ts\":100}\n#clock 110\n#clock 111\n{\"id\":\"c2\",\"ts\":105}\n")
        .expect("write clicks");
    let views = dir.path().join("views.jsonl");
    std::fs::write(&views, "").expect("write views");
    let output = dir.path().join("out");
    let run = |extra: &[&str]| {
        let mut values = vec![
            "--input".to_string(),
            format!("clicks={}", clicks.display()),
            "--input".to_string(),
            format!("views={}", views.display()),
            "--output".to_string(),
            output.display().to_string(),
            "--quiet".to_string(),
        ];
        values.extend(extra.iter().map(|value| value.to_string()));
        run_with_args::<TinyPipeline>(std::iter::once("tiny".to_string()).chain(values))
    };
    assert_eq!(run(&["--clock-lines", "--emit-times"]), ExitCode::SUCCESS);
    assert_eq!(
        lines_of(&output.join("arrivals.jsonl")),
        vec![
            serde_json::json!({"source": "clicks", "arrival": 0, "watermark": i64::MIN}),
            serde_json::json!({"source": "clicks", "arrival": 1, "watermark": 111}),
        ]
    );
    assert_eq!(
        lines_of(&output.join("delayed.jsonl")),
        vec![
            serde_json::json!({"timer": 110, "watermark": 110, "id": "c1"}),
            serde_json::json!({"timer": 115, "watermark": 115, "id": "c2"}),
        ]
    );
    let times = |file: &str| std::fs::read_to_string(output.join(file)).expect("times file");
    assert_eq!(times("delayed.jsonl.times"), "110\n115\n");
    assert_eq!(times("out.jsonl.times"), "100\n105\n");
    assert!(!output.join("_dead_letter.jsonl.times").exists(), "dead letters have no times");

    // Without the flags a clock line is a bad line like any other, and no times are written.
    std::fs::remove_dir_all(&output).expect("clean");
    assert_eq!(run(&[]), ExitCode::SUCCESS);
    let dead_letters = lines_of(&output.join("_dead_letter.jsonl"));
    assert_eq!(dead_letters.len(), 2);
    assert_eq!(dead_letters[0]["event"], serde_json::json!("#clock 110"));
    assert!(!output.join("out.jsonl.times").exists());
}
