//! End-to-end tests over `examples/<name>/`: both forms check cleanly and lower to the same IR,
//! `pulsec convert` round-trips, the IR and the generated Rust match their snapshots, and the
//! built binary turns `input.jsonl` into exactly the files in `expected/`.

use pulse_ir::Pipeline;
use pulsec::load::{load_text, Loaded};
use pulsec::native::{self, Profile};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").canonicalize().expect("workspace exists")
}

fn examples() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(workspace().join("examples"))
        .expect("examples/ exists")
        .map(|entry| entry.expect("readable entry").path())
        .filter(|path| path.join("pipeline.pulse").is_file())
        .collect();
    dirs.sort();
    assert!(dirs.len() >= 4, "expected the examples, found {dirs:?}");
    dirs
}

fn load(path: &Path) -> Loaded {
    let text = std::fs::read_to_string(path).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
    let base = path.parent().expect("file in a directory").to_path_buf();
    let read_schema = move |relative: &str| std::fs::read_to_string(base.join(relative));
    let name = path.file_name().expect("file name").to_string_lossy().into_owned();
    load_text(&name, text, &read_schema)
}

fn checked(path: &Path) -> (Loaded, Pipeline) {
    let loaded = load(path);
    let rendered = pulsec::render::human(&loaded.sources, &loaded.diagnostics, false);
    let pipeline = loaded.pipeline.clone().unwrap_or_else(|| panic!("{} does not check:\n{rendered}", path.display()));
    (loaded, pipeline)
}

fn example_name(dir: &Path) -> String {
    dir.file_name().expect("named directory").to_string_lossy().into_owned()
}

#[test]
fn both_forms_lower_to_the_same_ir() {
    for dir in examples() {
        let (_, from_json) = checked(&dir.join("pipeline.json"));
        let (_, from_pulse) = checked(&dir.join("pipeline.pulse"));
        assert_eq!(from_json, from_pulse, "{}: .pulse and .json differ", dir.display());
    }
}

#[test]
fn convert_round_trips_through_the_other_form() {
    for dir in examples() {
        for form in ["pipeline.json", "pipeline.pulse"] {
            let (loaded, pipeline) = checked(&dir.join(form));
            let document = loaded.document.as_ref().expect("checked file has a document");
            let (converted_name, converted) = if form.ends_with(".json") {
                ("converted.pulse", pulse_syntax::pulse::print_pulse_document(document))
            } else {
                ("converted.json", pulse_syntax::json::print_json_document(document))
            };
            let reloaded = load_text(converted_name, converted.clone(), &|_| Err(std::io::ErrorKind::NotFound.into()));
            let rendered = pulsec::render::human(&reloaded.sources, &reloaded.diagnostics, false);
            let round_tripped = reloaded.pipeline.unwrap_or_else(|| {
                panic!("{}/{form} converted does not check:\n{rendered}\n{converted}", dir.display())
            });
            assert_eq!(pipeline, round_tripped, "{}/{form}: convert changed the IR:\n{converted}", dir.display());
        }
    }
}

/// Every duration literal of a `.pulse` document as written, with where it is: settings,
/// node options and test blocks (events, expected records and the times of test forms).
fn durations_as_written(document: &pulse_syntax::ast::Document) -> Vec<String> {
    use pulse_syntax::ast::{Value, ValueKind};
    fn walk(value: &Value, place: &str, out: &mut Vec<String>) {
        match &value.kind {
            ValueKind::Duration(duration) => out.push(format!("{place} = {}", duration.text)),
            ValueKind::Array(items) => {
                for (idx, item) in items.iter().enumerate() {
                    walk(item, &format!("{place}[{idx}]"), out);
                }
            }
            ValueKind::Object(members) => {
                for member in members {
                    walk(&member.value, &format!("{place}.{}", member.key.node), out);
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    for setting in &document.settings {
        walk(&setting.value, &setting.key.node, &mut out);
    }
    for node in &document.nodes {
        walk(&node.config, &node.id.node, &mut out);
    }
    for test in &document.tests {
        walk(&test.body, &format!("test {:?}", test.name.node), &mut out);
    }
    out.sort();
    out
}

#[test]
fn convert_keeps_durations_as_written_from_pulse_to_json_and_back() {
    let no_schema = |_: &str| Err(std::io::ErrorKind::NotFound.into());
    for dir in examples() {
        let (loaded, _) = checked(&dir.join("pipeline.pulse"));
        let document = loaded.document.as_ref().expect("checked file has a document");
        let json = pulse_syntax::json::print_json_document(document);
        let from_json = load_text("converted.json", json.clone(), &no_schema);
        let back = pulse_syntax::pulse::print_pulse_document(from_json.document.as_ref().expect("the JSON reads"));
        let reloaded = load_text("back.pulse", back.clone(), &no_schema);
        assert!(!reloaded.has_errors(), "{}: {:?}\n{back}", dir.display(), reloaded.diagnostics);
        let written = durations_as_written(document);
        assert_eq!(
            written,
            durations_as_written(reloaded.document.as_ref().expect("the .pulse reads")),
            "{}: durations changed through JSON:\n{json}\n{back}",
            dir.display()
        );
        // The test events of the examples place events in time with durations (`ts: 10m`).
        let in_tests = written.iter().filter(|duration| duration.starts_with("test ")).count();
        assert!(document.tests.is_empty() || in_tests > 0, "{}", dir.display());
    }
}

#[test]
fn ir_and_generated_code_match_snapshots() {
    for dir in examples() {
        let name = example_name(&dir);
        let (_, pipeline) = checked(&dir.join("pipeline.pulse"));
        insta::assert_debug_snapshot!(format!("ir_{name}"), pipeline);
        let generated = native::generate(&pipeline, "pipeline.pulse").expect("examples use supported operators");
        assert!(generated.main_rs.starts_with("// @generated"));
        insta::assert_snapshot!(format!("codegen_{name}"), generated.main_rs);
        // Deterministic: generating twice gives the same text.
        let again = native::generate(&pipeline, "pipeline.pulse").expect("generates");
        assert_eq!(generated, again);
    }
}

/// `runtime/tests/contract/generated.rs`, which the runtime's trybuild test compiles against
/// `pulse_runtime::generated`, is the code `pulsec` generates for cart-abandonment today (without
/// its leading comment and crate attributes, which cannot be `include!`d). `PULSE_UPDATE_CONTRACT=1`
/// rewrites it.
#[test]
fn the_runtime_contract_crate_is_what_pulsec_generates() {
    let dir = workspace().join("examples/cart-abandonment");
    let (_, pipeline) = checked(&dir.join("pipeline.pulse"));
    let generated = native::generate(&pipeline, "pipeline.pulse").expect("generates");
    let body: String = generated
        .main_rs
        .lines()
        .filter(|line| !line.starts_with("// @generated") && !line.starts_with("#!["))
        .map(|line| format!("{line}\n"))
        .collect();
    let path = workspace().join("runtime/tests/contract/generated.rs");
    if std::env::var_os("PULSE_UPDATE_CONTRACT").is_some() {
        std::fs::write(&path, &body).expect("write the contract crate");
    }
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        checked_in == body,
        "{} is not what pulsec generates for cart-abandonment; rerun with PULSE_UPDATE_CONTRACT=1",
        path.display()
    );
}

/// Every line of a JSON-lines file as a canonical JSON string, sorted: files compare as
/// multisets of JSON values (G13, G51).
fn multiset(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
    let mut lines: Vec<String> = text
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            let mut value: serde_json::Value =
                serde_json::from_str(line).unwrap_or_else(|error| panic!("{}: {error}: {line}", path.display()));
            if path.file_name().is_some_and(|name| name == "_dead_letter.jsonl") {
                // G51: a dead letter's event and reason category are contractual, the rest of the
                // reason is free text.
                let reason = value["reason"].as_str().unwrap_or_default().to_string();
                value["reason"] = serde_json::Value::String(reason_category(&reason).to_string());
            }
            value.to_string()
        })
        .collect();
    lines.sort();
    lines
}

/// `late at node 'x'` or the text before the first `:` (G48).
fn reason_category(reason: &str) -> &str {
    if let Some(rest) = reason.strip_prefix("late at node '") {
        let end = rest.find('\'').map_or(reason.len(), |idx| "late at node '".len() + idx + 1);
        return &reason[..end];
    }
    reason.split(':').next().unwrap_or(reason)
}

fn files_in(dir: &Path) -> BTreeMap<String, PathBuf> {
    std::fs::read_dir(dir)
        .unwrap_or_else(|error| panic!("{}: {error}", dir.display()))
        .map(|entry| entry.expect("readable entry").path())
        .map(|path| (path.file_name().expect("file name").to_string_lossy().into_owned(), path))
        .collect()
}

#[test]
fn examples_produce_their_expected_output() {
    for dir in examples() {
        let (_, pipeline) = checked(&dir.join("pipeline.pulse"));
        let built = native::build(&pipeline, "pipeline.pulse", Profile::Release, true, &|_| None)
            .unwrap_or_else(|diagnostics| panic!("{}: build failed: {diagnostics:?}", dir.display()));
        let output = tempfile::tempdir().expect("temp dir");
        let status = Command::new(&built.binary)
            .arg("run")
            .arg("--quiet")
            .arg("--input")
            .arg(dir.join("input.jsonl"))
            .arg("--output")
            .arg(output.path())
            .status()
            .expect("binary runs");
        assert!(status.success(), "{}: exit {status}", dir.display());
        let expected = files_in(&dir.join("expected"));
        let produced = files_in(output.path());
        assert_eq!(
            expected.keys().collect::<Vec<_>>(),
            produced.keys().collect::<Vec<_>>(),
            "{}: output files differ",
            dir.display()
        );
        for (name, expected_path) in &expected {
            assert_eq!(
                multiset(expected_path),
                multiset(&produced[name]),
                "{}: {name} differs from expected/{name}",
                dir.display()
            );
        }
    }
}

#[test]
fn seed_json_compiles_unchanged_once_its_comma_is_added() {
    let article = std::fs::read_to_string(workspace().join("tests/fixtures/seed-article.json")).expect("fixture");
    let needle = "\"broker1:9092,broker2:9092,broker3:9092\"";
    let end_of_value = article.find(needle).expect("the brokers line") + needle.len();
    let fixed = format!("{},{}", &article[..end_of_value], &article[end_of_value..]);
    let example = std::fs::read_to_string(workspace().join("examples/welcome/pipeline.json")).expect("example");
    assert_eq!(fixed, example, "examples/welcome/pipeline.json is the seed JSON with its comma added");
    let loaded = load_text("seed.json", fixed, &|_| Err(std::io::ErrorKind::NotFound.into()));
    assert!(loaded.pipeline.is_some(), "{:?}", loaded.diagnostics);
    // The only diagnostic is the warning that the seed declares no schema.
    let codes: Vec<&str> = loaded.diagnostics.iter().map(|diagnostic| diagnostic.code.as_str()).collect();
    assert_eq!(codes, ["W0001"]);
}

#[test]
fn seed_json_without_its_comma_is_one_syntax_error_at_the_missing_comma() {
    let article = std::fs::read_to_string(workspace().join("tests/fixtures/seed-article.json")).expect("fixture");
    let loaded = load_text("seed.json", article.clone(), &|_| Err(std::io::ErrorKind::NotFound.into()));
    assert_eq!(loaded.diagnostics.len(), 1, "{:?}", loaded.diagnostics);
    let diagnostic = &loaded.diagnostics[0];
    assert_eq!(diagnostic.code.as_str(), "E0001");
    let needle = "\"broker1:9092,broker2:9092,broker3:9092\"";
    let end_of_value = article.find(needle).expect("the brokers line") + needle.len();
    let span = diagnostic.primary_span().expect("primary label");
    assert_eq!(span.start as usize, end_of_value, "the error points right after the brokers value");
}

#[test]
fn test_blocks_of_the_examples_pass_in_both_forms() {
    let mut n_tests = 0;
    for dir in examples() {
        for form in ["pipeline.pulse", "pipeline.json"] {
            let (loaded, _) = checked(&dir.join(form));
            let cases = pulsec::testing::test_cases(&loaded).unwrap_or_else(|diagnostics| panic!("{diagnostics:?}"));
            if cases.is_empty() {
                continue;
            }
            n_tests += cases.len();
            let outcomes = pulsec::testing::run(&loaded, form, &cases).unwrap_or_else(|error| panic!("{error:?}"));
            for outcome in outcomes {
                assert!(
                    outcome.failure.is_empty(),
                    "{}/{form}: test `{}` failed:\n{}",
                    dir.display(),
                    outcome.name,
                    outcome.failure
                );
            }
        }
    }
    assert!(n_tests >= 8, "the examples hold test blocks ({n_tests} found)");
}

#[test]
fn a_failing_test_block_reports_the_difference() {
    let source =
        std::fs::read_to_string(workspace().join("examples/cart-abandonment/pipeline.pulse")).expect("example");
    let broken = source.replacen("converted: []", "converted: [{ userId: \"nobody\" }]", 1);
    let loaded = load_text("broken.pulse", broken, &|_| Err(std::io::ErrorKind::NotFound.into()));
    let cases = pulsec::testing::test_cases(&loaded).expect("valid test blocks");
    let outcomes = pulsec::testing::run(&loaded, "broken.pulse", &cases).expect("builds");
    let failed: Vec<_> = outcomes.iter().filter(|outcome| !outcome.failure.is_empty()).collect();
    assert_eq!(failed.len(), 1);
    assert!(failed[0].failure.contains("- missing: {\"userId\":\"nobody\"}"), "{}", failed[0].failure);
}
