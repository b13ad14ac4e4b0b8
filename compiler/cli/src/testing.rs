//! `pulsec test`: the `test` blocks of a pipeline, run on virtual time against the binary that
//! ships. Each test's input events (times are event-time values, so durations like `7d` stand
//! for milliseconds) are written to a file, the binary runs on it with `--output`, and every
//! sink named under `expect` must hold exactly the expected events (as a multiset, G51).

use crate::load::Loaded;
use crate::native::{self, Profile};
use pulse_syntax::ast::{Number, TestDecl, Value, ValueKind};
use pulse_syntax::codes::{E0101, E0102, E0103, E0202};
use pulse_syntax::diagnostic::did_you_mean;
use pulse_syntax::Diagnostic;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

/// One test, validated.
pub struct TestCase {
    pub name: String,
    pub inputs: Vec<serde_json::Value>,
    /// Sink id (or `dead_letters`) -> expected events.
    pub expect: BTreeMap<String, Vec<serde_json::Value>>,
}

pub const DEAD_LETTERS: &str = "dead_letters";

/// Validates the test blocks against the pipeline's sinks.
pub fn test_cases(loaded: &Loaded) -> Result<Vec<TestCase>, Vec<Diagnostic>> {
    let Some(document) = &loaded.document else { return Ok(Vec::new()) };
    let pipeline = loaded.pipeline.as_ref();
    let sinks: Vec<&str> = pipeline
        .map(|pipeline| pipeline.nodes.iter().filter(|node| node.op.is_sink()).map(|node| node.id.as_str()).collect())
        .unwrap_or_default();
    let mut diagnostics = Vec::new();
    let mut cases = Vec::new();
    for test in &document.tests {
        if let Some(case) = test_case(test, &sinks, &mut diagnostics) {
            cases.push(case);
        }
    }
    if diagnostics.is_empty() {
        Ok(cases)
    } else {
        Err(diagnostics)
    }
}

fn test_case(test: &TestDecl, sinks: &[&str], diagnostics: &mut Vec<Diagnostic>) -> Option<TestCase> {
    let Some(members) = test.body.as_object() else {
        diagnostics.push(
            Diagnostic::new(E0103, format!("test `{}` must be a block of `inputs` and `expect`", test.name.node))
                .primary(test.body.span, "expected `{ inputs: [...], expect: {...} }`"),
        );
        return None;
    };
    let mut inputs = None;
    let mut expect = None;
    for member in members {
        match member.key.node.as_str() {
            "inputs" => inputs = Some(&member.value),
            "expect" => expect = Some(&member.value),
            other => {
                let mut diagnostic =
                    Diagnostic::new(E0101, format!("unknown key `{other}` in test `{}`", test.name.node))
                        .primary(member.key.span, "unknown key")
                        .note("a test has `inputs` (events) and `expect` (events per sink)");
                if let Some(suggestion) = did_you_mean(other, ["inputs", "expect"]) {
                    diagnostic = diagnostic.help(format!("did you mean `{suggestion}`?"));
                }
                diagnostics.push(diagnostic);
            }
        }
    }
    let (Some(inputs), Some(expect)) = (inputs, expect) else {
        diagnostics.push(
            Diagnostic::new(E0102, format!("test `{}` needs `inputs` and `expect`", test.name.node))
                .primary(test.name.span, "incomplete test"),
        );
        return None;
    };
    let inputs = events(inputs, "`inputs`", diagnostics)?;
    let Some(expected_members) = expect.as_object() else {
        diagnostics.push(
            Diagnostic::new(E0103, "`expect` must map sink ids to lists of events")
                .primary(expect.span, format!("found {}", expect.describe())),
        );
        return None;
    };
    let mut expected = BTreeMap::new();
    for member in expected_members {
        let sink = member.key.node.as_str();
        if sink != DEAD_LETTERS && !sinks.contains(&sink) {
            let mut diagnostic = Diagnostic::new(E0202, format!("`{sink}` is not a sink of this pipeline"))
                .primary(member.key.span, "no sink with this id")
                .note(format!(
                    "sinks: {}; `{DEAD_LETTERS}` holds the dead letters' events",
                    sinks.iter().map(|sink| format!("`{sink}`")).collect::<Vec<_>>().join(", ")
                ));
            if let Some(suggestion) = did_you_mean(sink, sinks.iter().copied().chain([DEAD_LETTERS])) {
                diagnostic = diagnostic.help(format!("did you mean `{suggestion}`?"));
            }
            diagnostics.push(diagnostic);
            continue;
        }
        if let Some(events) = events(&member.value, &format!("`expect.{sink}`"), diagnostics) {
            expected.insert(sink.to_string(), events);
        }
    }
    Some(TestCase { name: test.name.node.clone(), inputs, expect: expected })
}

fn events(value: &Value, what: &str, diagnostics: &mut Vec<Diagnostic>) -> Option<Vec<serde_json::Value>> {
    let ValueKind::Array(items) = &value.kind else {
        diagnostics.push(
            Diagnostic::new(E0103, format!("{what} must be a list of events"))
                .primary(value.span, format!("found {}", value.describe())),
        );
        return None;
    };
    let mut events = Vec::new();
    for item in items {
        events.push(to_json(item, diagnostics)?);
    }
    Some(events)
}

/// A test value as JSON: durations become milliseconds; expressions are not values.
fn to_json(value: &Value, diagnostics: &mut Vec<Diagnostic>) -> Option<serde_json::Value> {
    Some(match &value.kind {
        ValueKind::Null => serde_json::Value::Null,
        ValueKind::Bool(flag) => serde_json::Value::Bool(*flag),
        ValueKind::Number(Number::Int(number)) => serde_json::Value::from(*number),
        ValueKind::Number(Number::Float(number)) => serde_json::Value::from(*number),
        ValueKind::String(text) => serde_json::Value::String(text.clone()),
        ValueKind::Duration(duration) => serde_json::Value::from(duration.millis),
        ValueKind::Array(items) => {
            serde_json::Value::Array(items.iter().map(|item| to_json(item, diagnostics)).collect::<Option<_>>()?)
        }
        ValueKind::Object(members) => {
            let mut object = serde_json::Map::new();
            for member in members {
                object.insert(member.key.node.clone(), to_json(&member.value, diagnostics)?);
            }
            serde_json::Value::Object(object)
        }
        ValueKind::Expr(_) => {
            diagnostics.push(
                Diagnostic::new(E0103, "test events hold values, not expressions")
                    .primary(value.span, "not a JSON value")
                    .help("quote strings: `userId: \"u1\"`"),
            );
            return None;
        }
    })
}

/// The outcome of one test.
pub struct Outcome {
    pub name: String,
    /// Empty when the test passed; otherwise a readable diff per sink.
    pub failure: String,
}

/// Builds the pipeline once and runs every test case on it.
pub fn run(loaded: &Loaded, source_name: &str, cases: &[TestCase]) -> Result<Vec<Outcome>, Vec<Diagnostic>> {
    let pipeline = loaded.pipeline.as_ref().expect("a checked file has a pipeline");
    let built = native::build(pipeline, source_name, Profile::Debug, true, &|id| loaded.node_span(id))?;
    let mut outcomes = Vec::new();
    for case in cases {
        outcomes.push(Outcome { name: case.name.clone(), failure: run_case(&built.binary, case) });
    }
    Ok(outcomes)
}

fn run_case(binary: &Path, case: &TestCase) -> String {
    let dir = match tempdir() {
        Ok(dir) => dir,
        Err(error) => return format!("cannot create a temporary directory: {error}"),
    };
    let input = dir.join("input.jsonl");
    let output = dir.join("output");
    let text: String = case.inputs.iter().map(|event| format!("{event}\n")).collect();
    if let Err(error) = std::fs::write(&input, text) {
        return format!("cannot write the test input: {error}");
    }
    let result = std::process::Command::new(binary)
        .args(["run", "--quiet", "--input"])
        .arg(&input)
        .arg("--output")
        .arg(&output)
        .output();
    let failure = match result {
        Ok(result) if result.status.success() => compare(case, &output),
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

fn compare(case: &TestCase, output: &Path) -> String {
    let mut failure = String::new();
    for (sink, expected) in &case.expect {
        let file = if sink == DEAD_LETTERS { "_dead_letter.jsonl".to_string() } else { format!("{sink}.jsonl") };
        let text = std::fs::read_to_string(output.join(&file)).unwrap_or_default();
        let mut produced: Vec<serde_json::Value> = Vec::new();
        for line in text.lines().filter(|line| !line.trim().is_empty()) {
            match serde_json::from_str::<serde_json::Value>(line) {
                // Dead letters compare by event (the reason's text is free, G51).
                Ok(record) if sink == DEAD_LETTERS => produced.push(record["event"].clone()),
                Ok(record) => produced.push(record),
                Err(error) => {
                    let _ = writeln!(failure, "  {sink}: unreadable output line ({error}): {line}");
                }
            }
        }
        let mut missing: Vec<String> = expected.iter().map(serde_json::Value::to_string).collect();
        let mut unexpected = Vec::new();
        for record in produced.iter().map(serde_json::Value::to_string) {
            match missing.iter().position(|wanted| *wanted == record) {
                Some(found) => {
                    missing.remove(found);
                }
                None => unexpected.push(record),
            }
        }
        if !missing.is_empty() || !unexpected.is_empty() {
            let _ = writeln!(failure, "  {sink}: expected {} event(s), got {}", expected.len(), produced.len());
            for record in &missing {
                let _ = writeln!(failure, "    - {record}");
            }
            for record in &unexpected {
                let _ = writeln!(failure, "    + {record}");
            }
        }
    }
    failure
}
