//! Hostile inputs through the `pulsec` command line: whatever a file holds, `pulsec` answers
//! with coded diagnostics (never a crash, a hang or unbounded output), and whatever `check`
//! accepts also generates code.

use pulse_syntax::expr::MAX_EXPR_DEPTH;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn pulsec_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pulsec"))
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .output()
        .expect("pulsec runs")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write");
    path
}

/// A `.pulse` pipeline whose filter has `condition`.
fn pulse_pipeline(condition: &str) -> String {
    format!(
        "pipeline deep\nevent {{ event_name: string, ts: timestamp }}\nsrc: file-source(\"x.jsonl\") {{ eventTime: ts }}\n\
         src -> f: filter({condition}) -> out: stdout-sink\n"
    )
}

/// A JSON pipeline whose filter has `condition` (a JSON value: an expression string or a condition object).
fn json_pipeline(condition: &str) -> String {
    format!(
        "{{\"name\": \"deep\", \"schema\": {{\"fields\": {{\"event_name\": \"string\"}}}}, \"nodes\": [\
         {{\"id\": \"src\", \"type\": \"file-source\", \"config\": {{\"path\": \"x.jsonl\"}}}},\
         {{\"id\": \"f\", \"type\": \"filter\", \"config\": {{\"where\": {condition}}}}},\
         {{\"id\": \"out\", \"type\": \"stdout-sink\"}}], \"edges\": [\"src -> f\", \"f -> out\"]}}"
    )
}

/// `!` runs of `n_bangs` around `n_brackets` nested brackets: the shape that once built trees
/// ten thousand levels deep out of two limits (64 brackets, 400 operators) that each held.
fn bangs_in_brackets(n_brackets: usize, n_bangs: usize) -> String {
    let mut text = "event_name == \"a\"".to_string();
    for _ in 0..n_brackets {
        text = format!("{}({text})", "!".repeat(n_bangs));
    }
    text
}

/// A condition exactly `depth` levels deep: `depth - 2` prefix operators over a comparison.
fn bangs_of_depth(depth: usize) -> String {
    format!("{}(event_name == \"a\")", "!".repeat(depth - 2))
}

/// A condition exactly `depth` levels deep: a chain of `depth - 2` `||` over comparisons.
fn chain_of_depth(depth: usize) -> String {
    vec!["event_name == \"a\""; depth - 1].join(" || ")
}

/// A condition exactly `depth` levels deep mixing the three: brackets, `!` and binary chains.
fn mixed_of_depth(depth: usize) -> String {
    // Each round adds 3 levels in one bracket: `!`, then `||` and `&&` above the inner text.
    let mut text = "event_name == \"a\"".to_string();
    let mut levels = 2;
    while levels + 3 <= depth {
        text = format!("!({text} && event_name != \"b\" || event_name == \"c\")");
        levels += 3;
    }
    format!("{}{text}", "!".repeat(depth - levels))
}

fn assert_refused_as_too_deep(dir: &Path, name: &str, text: &str) {
    let file = write(dir, name, text);
    let output = pulsec_in(dir, &["check", file.to_str().expect("utf-8 path")]);
    let report = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{name} ({} bytes): {}", text.len(), &report[..report.len().min(2000)]);
    assert!(report.contains("error[E0007]: expression is nested too deeply"), "{name}: {report}");
    assert!(report.contains(&format!("{name}:")), "{name}: the diagnostic has a span: {report}");
}

#[test]
fn deep_expressions_are_refused_with_e0007_in_both_front_ends() {
    let dir = tempfile::tempdir().expect("temp dir");
    let dir = dir.path();
    // Sizes from issue #20: 10 KB aborted `check`, 3.6 KB overflowed codegen, 2 KB crashed rustc.
    for (n_brackets, name) in [(25, "bangs-10k"), (9, "bangs-3k6"), (5, "bangs-2k")] {
        let condition = bangs_in_brackets(n_brackets, 399);
        assert_refused_as_too_deep(dir, &format!("{name}.pulse"), &pulse_pipeline(&condition));
        let json_string = serde_json::to_string(&condition).expect("a string");
        assert_refused_as_too_deep(dir, &format!("{name}.json"), &json_pipeline(&json_string));
    }
    for (shape, condition) in [
        ("bangs", bangs_of_depth(MAX_EXPR_DEPTH + 1)),
        ("chain", chain_of_depth(MAX_EXPR_DEPTH + 1)),
        ("mixed", mixed_of_depth(MAX_EXPR_DEPTH + 1)),
        ("chain-5000", chain_of_depth(5000)),
    ] {
        assert_refused_as_too_deep(dir, &format!("{shape}.pulse"), &pulse_pipeline(&condition));
        let json_string = serde_json::to_string(&condition).expect("a string");
        assert_refused_as_too_deep(dir, &format!("{shape}.json"), &json_pipeline(&json_string));
    }
}

#[test]
fn condition_objects_count_toward_the_same_depth_limit() {
    let dir = tempfile::tempdir().expect("temp dir");
    let dir = dir.path();
    let leaf = "{\"field\": \"event_name\", \"equals\": \"a\"}";
    // A long `and` folds into a chain as deep as it is long.
    let wide_and = format!("{{\"and\": [{}]}}", vec![leaf; 2000].join(", "));
    assert_refused_as_too_deep(dir, "wide-and.json", &json_pipeline(&wide_and));
    // `not` objects around an expression string that is itself at the limit.
    let inner = serde_json::to_string(&bangs_of_depth(MAX_EXPR_DEPTH)).expect("a string");
    let wrapped = format!("{{\"not\": {inner}}}");
    assert_refused_as_too_deep(dir, "not-around-deep.json", &json_pipeline(&wrapped));
    // Nested `and`s each within the limit, together beyond it.
    let mut nested = leaf.to_string();
    for _ in 0..50 {
        nested = format!("{{\"and\": [{nested}, {leaf}, {leaf}, {leaf}]}}");
    }
    assert_refused_as_too_deep(dir, "nested-and.json", &json_pipeline(&nested));
}

#[test]
fn the_deepest_accepted_expressions_check_and_generate_code() {
    let dir = tempfile::tempdir().expect("temp dir");
    let dir = dir.path();
    let leaf = "{\"field\": \"event_name\", \"equals\": \"a\"}";
    let deepest_and = format!("{{\"and\": [{}]}}", vec![leaf; MAX_EXPR_DEPTH - 1].join(", "));
    let many_coalesce = format!("coalesce({}, \"x\") == \"a\"", vec!["event_name"; 2000].join(", "));
    let cases = [
        ("bangs.pulse", pulse_pipeline(&bangs_of_depth(MAX_EXPR_DEPTH))),
        ("chain.pulse", pulse_pipeline(&chain_of_depth(MAX_EXPR_DEPTH))),
        ("mixed.pulse", pulse_pipeline(&mixed_of_depth(MAX_EXPR_DEPTH))),
        ("coalesce.pulse", pulse_pipeline(&many_coalesce)),
        ("chain.json", json_pipeline(&serde_json::to_string(&chain_of_depth(MAX_EXPR_DEPTH)).expect("a string"))),
        ("and.json", json_pipeline(&deepest_and)),
    ];
    for (name, text) in cases {
        let file = write(dir, name, &text);
        let path = file.to_str().expect("utf-8 path");
        let checked = pulsec_in(dir, &["check", path]);
        assert_eq!(checked.status.code(), Some(0), "{name}: {}", stderr(&checked));
        let main_rs = dir.join(format!("{name}.rs"));
        let emitted = pulsec_in(dir, &["build", path, "--emit-rust", main_rs.to_str().expect("utf-8 path")]);
        assert_eq!(emitted.status.code(), Some(0), "{name}: {}", stderr(&emitted));
        let generated = std::fs::read_to_string(&main_rs).expect("main.rs written");
        assert!(generated.contains("fn main()"), "{name}");
        // The generated Rust nests about as deep as the expression, never by the argument count.
        assert!(max_bracket_depth(&generated) < 4 * MAX_EXPR_DEPTH, "{name}: {}", max_bracket_depth(&generated));
    }
}

fn max_bracket_depth(text: &str) -> usize {
    let (mut depth, mut max) = (0usize, 0usize);
    for ch in text.chars() {
        match ch {
            '(' | '[' | '{' => {
                depth += 1;
                max = max.max(depth);
            }
            ')' | ']' | '}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}

/// Runs pulsec, failing the test instead of hanging when pulsec blocks (on a FIFO, say).
fn pulsec_with_deadline(dir: &Path, args: &[&str]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_pulsec"))
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env("PULSE_TEST_SECRET", "hunter2-do-not-print")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("pulsec runs");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while child.try_wait().expect("wait").is_none() {
        if std::time::Instant::now() > deadline {
            child.kill().expect("kill the blocked pulsec");
            panic!("pulsec {args:?} did not finish");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.wait_with_output().expect("output")
}

fn schema_pipeline(schema_path: &str) -> String {
    format!("pipeline schemas\nschema {schema_path:?}\nsrc: file-source(\"x.jsonl\")\nsrc -> out: stdout-sink\n")
}

/// Checks `pipeline/p.pulse` naming `schema_path` and returns the rendered diagnostics.
fn check_schema(root: &Path, schema_path: &str, extra_args: &[&str], expected_code: &str) -> String {
    let pipeline = write(&root.join("pipeline"), "p.pulse", &schema_pipeline(schema_path));
    let mut args = vec!["check"];
    args.extend_from_slice(extra_args);
    args.push(pipeline.to_str().expect("utf-8 path"));
    let output = pulsec_with_deadline(root, &args);
    let report = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{schema_path}: {report}");
    assert!(report.contains(&format!("error[{expected_code}]")), "{schema_path}: {report}");
    if expected_code.starts_with("E090") {
        assert!(report.contains("p.pulse:2:8"), "{schema_path}: the reference is the span: {report}");
    }
    assert!(report.len() < 4096, "{schema_path}: {} bytes of diagnostics", report.len());
    assert!(!report.contains("hunter2"), "{schema_path}: the environment leaked: {report}");
    report
}

#[test]
fn schema_files_stay_inside_the_pipeline_s_directory_unless_allowed() {
    let root = tempfile::tempdir().expect("temp dir");
    let root = root.path();
    std::fs::create_dir_all(root.join("pipeline/schemas")).expect("mkdir");
    write(root, "outside.schema.json", "{\"type\": \"object\", \"properties\": {}}");
    write(&root.join("pipeline/schemas"), "inside.schema.json", "{\"type\": \"object\", \"properties\": {}}");
    std::os::unix::fs::symlink(root.join("outside.schema.json"), root.join("pipeline/link.schema.json"))
        .expect("symlink");

    for path in ["/etc/passwd", "../outside.schema.json", "link.schema.json", "/dev/zero", "/proc/self/environ"] {
        check_schema(root, path, &[], "E0905");
    }
    // Inside the tree, relative to the pipeline file (not to the working directory).
    let pipeline = write(&root.join("pipeline"), "p.pulse", &schema_pipeline("schemas/inside.schema.json"));
    let output = pulsec_with_deadline(root, &["check", pipeline.to_str().expect("utf-8 path")]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    // The flag lets a file outside in, and nothing else.
    let pipeline = write(&root.join("pipeline"), "p.pulse", &schema_pipeline("../outside.schema.json"));
    let output =
        pulsec_with_deadline(root, &["check", "--allow-schema-outside", pipeline.to_str().expect("utf-8 path")]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
}

#[test]
fn schema_files_must_be_small_regular_files() {
    let root = tempfile::tempdir().expect("temp dir");
    let root = root.path();
    std::fs::create_dir_all(root.join("pipeline")).expect("mkdir");
    // /dev/zero once grew `check` to 7.6 GB; a FIFO blocked it forever.
    check_schema(root, "/dev/zero", &["--allow-schema-outside"], "E0906");
    check_schema(root, "/proc/self/environ", &["--allow-schema-outside"], "E0906");
    let fifo = root.join("pipeline/fifo.schema.json");
    let made = Command::new("mkfifo").arg(&fifo).status().expect("mkfifo runs");
    assert!(made.success());
    check_schema(root, "fifo.schema.json", &[], "E0906");
    check_schema(root, ".", &[], "E0906");
    let big = format!("{{\"type\": \"object\", \"description\": \"{}\"}}", "x".repeat(1024 * 1024));
    write(&root.join("pipeline"), "big.schema.json", &big);
    check_schema(root, "big.schema.json", &[], "E0907");
}

#[test]
fn a_schema_file_that_is_not_json_shows_one_line_of_it() {
    let root = tempfile::tempdir().expect("temp dir");
    let root = root.path();
    std::fs::create_dir_all(root.join("pipeline")).expect("mkdir");
    let lines: Vec<String> =
        (0..40).map(|n| format!("user{n}:x:{n}:{n}:secret line {n}:/home/user{n}:/bin/sh")).collect();
    write(&root.join("pipeline"), "passwd", &lines.join("\n"));
    let report = check_schema(root, "passwd", &[], "E0001");
    assert!(report.contains("secret line 0"), "{report}");
    assert_eq!(report.matches("secret line").count(), 1, "only the offending line: {report}");
}

/// The payloads of issue #20 that once made diagnostics grow quadratically (14 KB of `{` took
/// 38 s and 786 MB), in the places a reader meets them: a whole file, one character per line
/// in either front end, and inside a JSON expression string.
fn flood_cases() -> Vec<(String, String)> {
    let payloads =
        [("quotes", "\"".repeat(8 * 1024)), ("equals", "=".repeat(40 * 1024)), ("braces", "{".repeat(14 * 1024))];
    let mut cases = Vec::new();
    for (name, payload) in payloads {
        let one_per_line: Vec<String> = payload.chars().map(String::from).collect();
        let one_per_line = one_per_line.join("\n");
        cases.push((format!("{name}.pulse"), payload.clone()));
        cases.push((format!("{name}-filter.pulse"), format!("pipeline p\nsrc: filter({payload})\n")));
        cases.push((format!("{name}-lines.pulse"), format!("pipeline p\nsrc: map {{\n{one_per_line}\n}}\n")));
        cases.push((format!("{name}-lines.json"), format!("{{\"name\": \"p\",\n{one_per_line}\n}}\n")));
        let escaped = serde_json::to_string(&payload).expect("a string");
        cases.push((
            format!("{name}-where.json"),
            format!("{{\"name\": \"p\", \"nodes\": [{{\"id\": \"f\", \"type\": \"filter\", \"config\": {{\"where\": {escaped}}}}}]}}"),
        ));
    }
    cases
}

#[test]
fn floods_of_one_character_give_bounded_diagnostics() {
    let dir = tempfile::tempdir().expect("temp dir");
    let dir = dir.path();
    for (name, text) in flood_cases() {
        let file = write(dir, &name, &text);
        let path = file.to_str().expect("utf-8 path");
        let human = pulsec_in(dir, &["check", path]);
        assert_eq!(human.status.code(), Some(1), "{name}");
        assert!(stderr(&human).contains("error["), "{name}");
        // At most 50 diagnostics, none drawing a line longer than 300 characters.
        assert!(human.stderr.len() < 32 * 1024, "{name}: {} bytes of diagnostics", human.stderr.len());
        // The JSON form lists every diagnostic, each of bounded size.
        let json = pulsec_in(dir, &["check", "--message-format", "json", path]);
        let longest = String::from_utf8_lossy(&json.stdout).lines().map(str::len).max().unwrap_or(0);
        assert!(longest < 2048, "{name}: a JSON diagnostic of {longest} bytes");
    }
}
