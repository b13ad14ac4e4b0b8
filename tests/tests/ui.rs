//! Diagnostic UI tests: every file in `tests/ui/` is one case, named `<code>_<what>.pulse` or
//! `<code>_<what>.json`. Each case is loaded the way `pulsec check` loads it, its diagnostics are
//! rendered without colour, and the source plus the rendering is an insta snapshot. A case must
//! produce the code its name starts with, and every code in the registry has at least one case.

use pulse_syntax::codes::{self, Code};
use pulse_syntax::{Diagnostic, Severity};
use std::path::{Path, PathBuf};

/// Cases that show a known bug: the code in the name is what the case should produce, the reason
/// says why it does not today. The test asserts today's behaviour, so fixing the bug makes it fail
/// and the entry is then removed.
/// Cases that do not produce their code today, each with a FIXME saying why.
const KNOWN_BUGS: &[(&str, &str)] = &[];

/// Codes no source file can trigger through `check`: an internal error, a failed cargo build,
/// and an operator without a runtime (every operator has one in this version). A schema file
/// over 1 MiB (E0907) is too large to check in; `compiler/cli/tests/hostile.rs` writes one.
const NOT_TRIGGERABLE: &[Code] = &[codes::E0901, codes::E0903, codes::E0904, codes::E0907];

fn ui_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("ui")
}

/// The case files, sorted. JSON Schema files used by cases live in `ui/schemas/` and are not cases.
fn case_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(ui_dir())
        .expect("tests/ui exists")
        .map(|entry| entry.expect("readable directory entry").path())
        .filter(|path| path.is_file())
        .filter(|path| matches!(path.extension().and_then(|ext| ext.to_str()), Some("pulse" | "json")))
        .collect();
    files.sort();
    files
}

fn case_name(path: &Path) -> String {
    path.file_name().expect("a case has a file name").to_string_lossy().into_owned()
}

/// `e0205_unknown_field.json` -> `E0205`.
fn expected_code(name: &str) -> Code {
    let prefix = name.split('_').next().unwrap_or_default();
    Code::lookup(prefix).unwrap_or_else(|| panic!("case `{name}` does not start with a registered code"))
}

struct Case {
    source: String,
    loaded: pulsec::load::Loaded,
    /// Check diagnostics, then those of code generation (E0904) when the check passed.
    diagnostics: Vec<Diagnostic>,
}

fn load_case(path: &Path) -> Case {
    let name = case_name(path);
    let source = std::fs::read_to_string(path).expect("case file is readable");
    let read_schema = |relative: &str| pulsec::load::read_schema_file(&ui_dir(), relative);
    let loaded = pulsec::load::load_text(&name, source.clone(), &read_schema);
    let mut diagnostics = loaded.diagnostics.clone();
    // `pulsec build` generates code after a successful check; E0904 comes from there.
    if let Some(pipeline) = &loaded.pipeline {
        if let Err(build_diagnostics) = pulsec::native::generate_with_spans(pipeline, &name, &|id| loaded.node_span(id))
        {
            diagnostics.extend(build_diagnostics);
        }
    }
    Case { source, loaded, diagnostics }
}

fn render(case: &Case) -> String {
    pulsec::render::human(&case.loaded.sources, &case.diagnostics, false)
}

#[test]
fn ui_cases() {
    let files = case_files();
    assert!(!files.is_empty(), "no cases in tests/ui");
    let mut failures = Vec::new();
    for path in &files {
        let name = case_name(path);
        let case = load_case(path);
        let rendered = render(&case);
        let snapshot = format!("{}\n----\n{rendered}", case.source);
        let asserted = std::panic::catch_unwind(|| {
            insta::assert_snapshot!(name.clone(), snapshot);
        });
        if asserted.is_err() {
            failures.push(format!("{name}: snapshot differs"));
        }
        let code = expected_code(&name);
        let produced = case.diagnostics.iter().any(|diagnostic| diagnostic.code == code);
        match KNOWN_BUGS.iter().find(|(bug, _)| *bug == name) {
            Some((_, reason)) if produced => failures.push(format!(
                "{name}: now produces {code}; the known bug is fixed, remove it from KNOWN_BUGS ({reason})"
            )),
            Some(_) => {}
            None if !produced => failures.push(format!("{name}: does not produce {code}:\n{rendered}")),
            None => {}
        }
    }
    assert!(failures.is_empty(), "{} UI case(s) failed:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn every_code_has_a_case() {
    let names: Vec<String> = case_files().iter().map(|path| case_name(path)).collect();
    let missing: Vec<&str> = codes::ALL
        .iter()
        .map(|(code, _)| *code)
        .filter(|code| !NOT_TRIGGERABLE.contains(code))
        .filter(|code| {
            let prefix = format!("{}_", code.as_str().to_ascii_lowercase());
            !names.iter().any(|name| name.starts_with(&prefix) && !KNOWN_BUGS.iter().any(|(bug, _)| bug == name))
        })
        .map(Code::as_str)
        .collect();
    assert!(missing.is_empty(), "codes without a UI case in tests/ui: {missing:?}");
}

/// The seed document with the `,` after the `brokers` line removed: one E0001, right after the
/// brokers string, and nothing else (the reader recovers and the rest of the file is fine).
#[test]
fn welcome_without_comma_gives_one_error_after_brokers() {
    let path = ui_dir().join("e0001_welcome_missing_comma.json");
    let case = load_case(&path);
    let brokers = "\"broker1:9092,broker2:9092,broker3:9092\"";
    let after_brokers = case.source.find(brokers).expect("the case has the brokers line") + brokers.len();
    assert_eq!(case.diagnostics.len(), 1, "{}", render(&case));
    let diagnostic = &case.diagnostics[0];
    assert_eq!(diagnostic.code, codes::E0001);
    let span = diagnostic.primary_span().expect("E0001 has a primary span");
    // An insertion point: the span starts right after the closing quote (it may be empty).
    assert_eq!(span.start as usize, after_brokers, "{}", render(&case));
    assert!(span.end as usize <= after_brokers + 1, "{}", render(&case));
    let (line, column) = line_column(&case.source, span.start as usize);
    assert_eq!((line, column), (19, 60));
}

/// Three independent mistakes give exactly three errors: no follow-up errors, none hidden.
#[test]
fn independent_errors_do_not_cascade() {
    let cases = [
        "e0001_no_cascade_three_errors.json",
        "e0002_no_cascade_three_errors.pulse",
        "e0205_no_cascade_three_errors.json",
        "e0205_no_cascade_three_errors.pulse",
    ];
    for name in cases {
        let case = load_case(&ui_dir().join(name));
        let n_errors = case.diagnostics.iter().filter(|diagnostic| diagnostic.severity == Severity::Error).count();
        assert_eq!(n_errors, 3, "{name}:\n{}", render(&case));
        assert_eq!(case.diagnostics.len(), 3, "{name} has warnings too:\n{}", render(&case));
    }
}

/// 1-based line and column (in characters) of a byte offset, computed independently of the
/// compiler's own source map.
fn line_column(text: &str, offset: usize) -> (u64, u64) {
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |idx| idx + 1);
    let column = before[line_start..].chars().count() + 1;
    (line as u64, column as u64)
}

#[test]
fn json_message_format_has_positions() {
    for name in ["e0205_unknown_field.json", "e0205_unknown_field.pulse", "e0301_number_vs_string.pulse"] {
        let case = load_case(&ui_dir().join(name));
        let output = pulsec::render::json(&case.loaded.sources, &case.diagnostics);
        let lines: Vec<&str> = output.lines().collect();
        assert_eq!(lines.len(), case.diagnostics.len(), "{name}: one JSON line per diagnostic:\n{output}");
        for (line, diagnostic) in lines.iter().zip(&case.diagnostics) {
            let value: serde_json::Value = serde_json::from_str(line).expect("each line is JSON");
            for field in ["code", "severity", "message", "file", "line", "column", "byte_start", "byte_end"] {
                assert!(value.get(field).is_some(), "{name}: `{field}` missing in {line}");
            }
            assert_eq!(value["code"], diagnostic.code.as_str());
            assert_eq!(value["severity"], "error");
            assert_eq!(value["message"], diagnostic.message.as_str());
            assert_eq!(value["file"], name);
            let span = diagnostic.primary_span().expect("the diagnostic has a primary span");
            assert_eq!(value["byte_start"], span.start);
            assert_eq!(value["byte_end"], span.end);
            let (line_number, column) = line_column(&case.source, span.start as usize);
            assert_eq!((value["line"].as_u64(), value["column"].as_u64()), (Some(line_number), Some(column)), "{name}");
        }
    }
    // Spot-check one position by hand: `usr_id` in `logins: filter(usr_id != null)` (line 5).
    let case = load_case(&ui_dir().join("e0205_unknown_field.pulse"));
    let output = pulsec::render::json(&case.loaded.sources, &case.diagnostics);
    let value: serde_json::Value = serde_json::from_str(output.lines().next().expect("one line")).expect("JSON");
    assert_eq!((value["line"].as_u64(), value["column"].as_u64()), (Some(5), Some(16)));
    assert_eq!(value["code"], "E0205");
}
