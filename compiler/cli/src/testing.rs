//! `pulsec test`: the test blocks of a pipeline, run on virtual time against the binary that
//! ships (the release build `pulsec build` and `pulsec run` make). The checker validates the
//! blocks (`pulse_check::test_blocks`); here each test's inputs are written to a file (events as
//! JSON lines, clock steps as `#clock MS` lines), the binary runs on it with `--output`,
//! `--emit-times` (every sink file gets the event time of each record beside it) and
//! `--clock-lines`, and every sink named under `expect` must hold exactly the expected records
//! (a multiset, G51), each at its expected event time when one is given.

use crate::load::Loaded;
use crate::native::{self, Profile};
use pulse_check::test_blocks::{ExpectedRecord, QuietSpan, SinkExpectation, TestInput, TestTime};
use pulse_ir::{Operator, Pipeline};
use pulse_syntax::Diagnostic;
use std::fmt::Write as _;
use std::path::Path;

pub use pulse_check::test_blocks::{TestCase, DEAD_LETTERS};

/// The validated test blocks of a checked file (`pulsec check` reports their problems).
pub fn test_cases(loaded: &Loaded) -> Result<Vec<TestCase>, Vec<Diagnostic>> {
    let Some(document) = &loaded.document else { return Ok(Vec::new()) };
    let (cases, diagnostics) = pulse_check::test_blocks::test_cases(document);
    if diagnostics.is_empty() {
        Ok(cases)
    } else {
        Err(diagnostics)
    }
}

/// The outcome of one test.
pub struct Outcome {
    pub name: String,
    /// Empty when the test passed; otherwise a readable difference per sink.
    pub failure: String,
}

/// Builds the pipeline once (release profile, as `pulsec run`) and runs every test case on it.
pub fn run(loaded: &Loaded, source: impl AsRef<Path>, cases: &[TestCase]) -> Result<Vec<Outcome>, Vec<Diagnostic>> {
    let pipeline = loaded.pipeline.as_ref().expect("a checked file has a pipeline");
    // Not quiet: the first build of a pipeline takes a while, and says so.
    let built = native::build(pipeline, source, Profile::Release, false, &|id| loaded.node_span(id))?;
    let mut outcomes = Vec::new();
    for case in cases {
        outcomes.push(Outcome { name: case.name.clone(), failure: run_case(pipeline, &built.binary, case) });
    }
    Ok(outcomes)
}

/// The event time the runtime gives the first input event: its `eventTime` field in the first
/// source (G32), or its arrival time without one (G30: clock lines take none, so 0).
pub fn origin(pipeline: &Pipeline, inputs: &[TestInput]) -> i64 {
    let Some(first) = inputs.iter().find_map(|input| match input {
        TestInput::Event(event) => Some(event),
        TestInput::Clock(_) => None,
    }) else {
        return 0;
    };
    let field = pipeline.nodes.iter().find_map(|node| match &node.op {
        Operator::KafkaSource { time, .. } | Operator::FileSource { time, .. } => Some(time.event_time.clone()),
        _ => None,
    });
    let Some(Some(path)) = field else { return 0 };
    let mut value = first;
    for segment in &path.0 {
        match value.get(segment) {
            Some(inner) => value = inner,
            None => return 0,
        }
    }
    match value {
        serde_json::Value::Number(number) => {
            number.as_i64().or_else(|| number.as_f64().map(|float| float.floor() as i64)).unwrap_or(0)
        }
        serde_json::Value::String(text) => pulse_stdlib::time::parse_rfc3339(text).unwrap_or(0),
        _ => 0,
    }
}

fn run_case(pipeline: &Pipeline, binary: &Path, case: &TestCase) -> String {
    let dir = match tempdir() {
        Ok(dir) => dir,
        Err(error) => return format!("cannot create a temporary directory: {error}"),
    };
    let origin = origin(pipeline, &case.inputs);
    let input = dir.join("input.jsonl");
    let output = dir.join("output");
    let text: String = case
        .inputs
        .iter()
        .map(|input| match input {
            TestInput::Event(event) => format!("{event}\n"),
            TestInput::Clock(time) => format!("#clock {}\n", time.resolve(origin)),
        })
        .collect();
    if let Err(error) = std::fs::write(&input, text) {
        return format!("cannot write the test input: {error}");
    }
    let result = std::process::Command::new(binary)
        .args(["run", "--quiet", "--emit-times", "--clock-lines", "--input"])
        .arg(&input)
        .arg("--output")
        .arg(&output)
        .output();
    let failure = match result {
        Ok(result) if result.status.success() => compare(case, origin, &output),
        Ok(result) => {
            format!("the pipeline exited with {}: {}", result.status, String::from_utf8_lossy(&result.stderr))
        }
        Err(error) => format!("cannot run the pipeline: {error}"),
    };
    let _ = std::fs::remove_dir_all(&dir);
    failure
}

fn tempdir() -> std::io::Result<std::path::PathBuf> {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|elapsed| elapsed.as_nanos());
    let dir = std::env::temp_dir().join(format!("pulsec-test-{}-{}", std::process::id(), nanos.unwrap_or(0)));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// A record a sink received: its event (for a dead letter, the event and the reason) and time.
struct Produced {
    record: serde_json::Value,
    time: Option<i64>,
    reason: Option<String>,
}

/// Reads `DIR/<file>` and its `.times` file.
fn produced(output: &Path, file: &str, failure: &mut String) -> Vec<Produced> {
    let text = std::fs::read_to_string(output.join(file)).unwrap_or_default();
    let times_text = std::fs::read_to_string(output.join(format!("{file}.times"))).unwrap_or_default();
    let mut times = times_text.lines().map(|line| line.trim().parse::<i64>().ok());
    let mut records = Vec::new();
    for line in text.lines().filter(|line| !line.trim().is_empty()) {
        let time = times.next().flatten();
        match serde_json::from_str::<serde_json::Value>(line) {
            Ok(record) if file == DEAD_LETTER_FILE => records.push(Produced {
                time: None,
                reason: record["reason"].as_str().map(str::to_string),
                record: record["event"].clone(),
            }),
            Ok(record) => records.push(Produced { record, time, reason: None }),
            Err(error) => {
                let _ = writeln!(failure, "  {file}: unreadable output line ({error}): {line}");
            }
        }
    }
    records
}

const DEAD_LETTER_FILE: &str = "_dead_letter.jsonl";

fn compare(case: &TestCase, origin: i64, output: &Path) -> String {
    let mut failure = String::new();
    for expectation in &case.expect {
        let file = if expectation.sink == DEAD_LETTERS {
            DEAD_LETTER_FILE.to_string()
        } else {
            format!("{}.jsonl", expectation.sink)
        };
        let produced = produced(output, &file, &mut failure);
        compare_sink(expectation, &produced, origin, &mut failure);
    }
    if !failure.is_empty() {
        // What the run rejected often explains a missing record.
        let dead = produced(output, DEAD_LETTER_FILE, &mut String::new());
        let expected_dead = case.expect.iter().any(|expectation| expectation.sink == DEAD_LETTERS);
        if !dead.is_empty() && !expected_dead {
            let _ = writeln!(failure, "  dead letters of this run ({}):", dead.len());
            for letter in &dead {
                let _ = writeln!(
                    failure,
                    "    {}: {}",
                    letter.reason.as_deref().unwrap_or("(no reason)"),
                    compact(&letter.record)
                );
            }
        }
    }
    failure
}

/// Whether `record` matches `expected`: equal, or with `partial` every listed field equal
/// (nested objects compared the same way).
fn fields_match(expected: &serde_json::Value, record: &serde_json::Value, partial: bool) -> bool {
    match (expected, record) {
        (serde_json::Value::Object(wanted), serde_json::Value::Object(found)) if partial => {
            wanted.iter().all(|(key, value)| found.get(key).is_some_and(|actual| fields_match(value, actual, true)))
        }
        _ => expected == record,
    }
}

fn time_matches(expected: &ExpectedRecord, produced: &Produced, origin: i64) -> bool {
    match (expected.at, produced.time) {
        (None, _) => true,
        (Some(at), Some(time)) => at.resolve(origin) == time,
        (Some(_), None) => false,
    }
}

fn compare_sink(expectation: &SinkExpectation, produced: &[Produced], origin: i64, failure: &mut String) {
    let sink = &expectation.sink;
    let mut lines = Vec::new();
    // Quiet spans first: a record inside one is wrong whatever else is expected.
    for quiet in &expectation.quiet {
        for record in produced {
            let Some(time) = record.time else { continue };
            let after_from = quiet.from.is_none_or(|from| time >= from.resolve(origin));
            let before_until = quiet.until.is_none_or(|until| time < until.resolve(origin));
            if after_from && before_until {
                lines.push(format!(
                    "    emitted at {} during `{}`: {}",
                    show_time(time, origin),
                    show_quiet(quiet),
                    compact(&record.record)
                ));
            }
        }
    }
    // Match exact expectations before partial ones, so a partial one does not take the record
    // an exact one needs.
    let mut order: Vec<usize> = (0..expectation.records.len()).collect();
    order.sort_by_key(|idx| (expectation.records[*idx].partial, expectation.records[*idx].at.is_none()));
    let mut taken = vec![false; produced.len()];
    let mut missing = Vec::new();
    for idx in order {
        let expected = &expectation.records[idx];
        let found = (0..produced.len()).find(|candidate| {
            !taken[*candidate]
                && fields_match(&expected.fields, &produced[*candidate].record, expected.partial)
                && time_matches(expected, &produced[*candidate], origin)
        });
        match found {
            Some(candidate) => taken[candidate] = true,
            None => missing.push(idx),
        }
    }
    missing.sort_unstable();
    let mut unexpected: Vec<usize> = (0..produced.len()).filter(|idx| !taken[*idx]).collect();
    // Pair each missing record with the closest unexpected one, shown side by side: same fields
    // at another time, else the one with the fewest differing fields.
    for idx in missing {
        let expected = &expectation.records[idx];
        let same_fields = unexpected
            .iter()
            .position(|candidate| fields_match(&expected.fields, &produced[*candidate].record, expected.partial));
        let closest = same_fields.or_else(|| {
            unexpected
                .iter()
                .enumerate()
                .min_by_key(|(_, candidate)| {
                    field_diff(&expected.fields, &produced[**candidate].record, expected.partial).len()
                })
                .map(|(position, _)| position)
        });
        let expected_time = expected.at.map(|at| format!("at {}", show_time(at.resolve(origin), origin)));
        let label = match (expected.partial, &expected_time) {
            (true, Some(time)) => format!("{time}, partial"),
            (true, None) => "partial".to_string(),
            (false, Some(time)) => time.clone(),
            (false, None) => String::new(),
        };
        let label = if label.is_empty() { String::new() } else { format!(" ({label})") };
        match closest {
            Some(position) => {
                let candidate = unexpected.remove(position);
                let record = &produced[candidate];
                let emitted = record.time.map_or_else(String::new, |time| format!(" at {}", show_time(time, origin)));
                lines.push(format!("    expected{label}: {}", compact(&expected.fields)));
                lines.push(format!("    emitted{emitted}: {}", compact(&record.record)));
                if let (Some(at), Some(time)) = (expected.at, record.time) {
                    if at.resolve(origin) != time {
                        lines.push(format!(
                            "      time: expected {}, emitted {}",
                            show_time(at.resolve(origin), origin),
                            show_time(time, origin)
                        ));
                    }
                }
                for difference in field_diff(&expected.fields, &record.record, expected.partial) {
                    lines.push(format!("      {difference}"));
                }
            }
            None => lines.push(format!("    - missing{label}: {}", compact(&expected.fields))),
        }
    }
    for candidate in unexpected {
        let record = &produced[candidate];
        let emitted = match (&record.reason, record.time) {
            (Some(reason), _) => format!(" ({reason})"),
            (None, Some(time)) => format!(" at {}", show_time(time, origin)),
            (None, None) => String::new(),
        };
        lines.push(format!("    + unexpected{emitted}: {}", compact(&record.record)));
    }
    if !lines.is_empty() {
        let _ = writeln!(
            failure,
            "  {sink}: expected {} record(s){}, got {}",
            expectation.records.len(),
            if expectation.quiet.is_empty() { "" } else { " and quiet spans" },
            produced.len()
        );
        for line in lines {
            let _ = writeln!(failure, "{line}");
        }
    }
}

/// The fields of `record` that differ from `expected` (all of `expected`'s fields, and with
/// `partial` false also the fields `record` has in addition), as readable lines.
fn field_diff(expected: &serde_json::Value, record: &serde_json::Value, partial: bool) -> Vec<String> {
    let (Some(wanted), Some(found)) = (expected.as_object(), record.as_object()) else {
        return if expected == record { Vec::new() } else { vec!["the record differs".to_string()] };
    };
    let mut differences = Vec::new();
    for (key, value) in wanted {
        match found.get(key) {
            Some(actual) if fields_match(value, actual, partial) => {}
            Some(actual) => {
                differences.push(format!("field `{key}`: expected {}, found {}", compact(value), compact(actual)))
            }
            None => differences.push(format!("field `{key}`: expected {}, absent", compact(value))),
        }
    }
    if !partial {
        for (key, actual) in found {
            if !wanted.contains_key(key) {
                differences.push(format!("field `{key}`: not expected, found {}", compact(actual)));
            }
        }
    }
    differences
}

fn compact(value: &serde_json::Value) -> String {
    value.to_string()
}

/// An event time for people: relative to the first input event (`5m`), with the absolute
/// value when the origin is not 0.
pub fn show_time(time: i64, origin: i64) -> String {
    let offset = time.saturating_sub(origin);
    let relative = if offset < 0 {
        format!("-{}", TestTime::Relative(offset.saturating_neg()))
    } else {
        TestTime::Relative(offset).to_string()
    };
    if origin == 0 {
        relative
    } else {
        format!("{relative} ({time})")
    }
}

fn show_quiet(quiet: &QuietSpan) -> String {
    let mut text = "nothing".to_string();
    if let Some(from) = quiet.from {
        let _ = write!(text, " from {from}");
    }
    if let Some(until) = quiet.until {
        let _ = write!(text, " until {until}");
    }
    text
}
