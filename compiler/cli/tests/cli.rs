//! The `pulsec` command line as scripts use it: exit codes, output streams and formats.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn pulsec(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pulsec"))
        .args(args)
        .current_dir(workspace())
        .env("NO_COLOR", "1")
        .output()
        .expect("pulsec runs")
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn check_exits_zero_on_valid_pipelines_and_one_on_errors() {
    let ok = pulsec(&["check", "examples/event-router/pipeline.pulse", "examples/event-router/pipeline.json"]);
    assert_eq!(ok.status.code(), Some(0), "{}", stderr(&ok));
    assert!(stderr(&ok).contains("ok: `event-router`"));

    let dir = tempfile::tempdir().expect("temp dir");
    let bad = dir.path().join("bad.pulse");
    std::fs::write(
        &bad,
        "pipeline bad\nevent { userId: string? }\nsrc: file-source(\"x.jsonl\")\nsrc -> f: filter(usr_id != null) -> out: stdout-sink\n",
    )
    .expect("write");
    let failed = pulsec(&["check", bad.to_str().expect("utf-8 path")]);
    assert_eq!(failed.status.code(), Some(1));
    let text = stderr(&failed);
    assert!(text.contains("error[E0205]: unknown field `usr_id`"), "{text}");
    assert!(text.contains("did you mean `userId`?"), "{text}");
}

#[test]
fn usage_errors_exit_two() {
    assert_eq!(pulsec(&["frobnicate"]).status.code(), Some(2));
    assert_eq!(pulsec(&["explain", "E9999"]).status.code(), Some(2));
    assert_eq!(pulsec(&["check"]).status.code(), Some(2));
}

#[test]
fn json_diagnostics_go_to_stdout_one_object_per_line() {
    let dir = tempfile::tempdir().expect("temp dir");
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, "{\"name\": \"Bad Name\", \"nodes\": [], \"edges\": [\"a -> b\"]}").expect("write");
    let output = pulsec(&["check", "--message-format", "json", bad.to_str().expect("utf-8 path")]);
    assert_eq!(output.status.code(), Some(1));
    let lines: Vec<serde_json::Value> =
        stdout(&output).lines().map(|line| serde_json::from_str(line).expect("each line is JSON")).collect();
    let codes: Vec<&str> = lines.iter().filter_map(|line| line["code"].as_str()).collect();
    assert!(codes.contains(&"E0105"), "{codes:?}");
    assert!(codes.contains(&"E0202"), "{codes:?}");
    for line in &lines {
        for key in ["severity", "message", "file", "line", "column", "byte_start", "byte_end"] {
            assert!(!line[key].is_null(), "{key} missing in {line}");
        }
    }
}

#[test]
fn explain_prints_the_page_of_a_code() {
    let output = pulsec(&["explain", "e0205"]);
    assert_eq!(output.status.code(), Some(0));
    assert!(stdout(&output).starts_with("# E0205"));
}

#[test]
fn graph_prints_dot_and_mermaid() {
    let dot = pulsec(&["graph", "examples/event-router/pipeline.pulse"]);
    assert_eq!(dot.status.code(), Some(0), "{}", stderr(&dot));
    insta::assert_snapshot!("graph_dot", stdout(&dot));
    let mermaid = pulsec(&["graph", "--format", "mermaid", "examples/event-router/pipeline.pulse"]);
    assert_eq!(mermaid.status.code(), Some(0));
    insta::assert_snapshot!("graph_mermaid", stdout(&mermaid));
}

#[test]
fn graph_draws_an_svg_with_every_node_and_one_path_per_edge() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("cart.svg");
    let example = "examples/cart-abandonment/pipeline.pulse";
    let output = pulsec(&["graph", "--format", "svg", example, "-o", file.to_str().expect("utf-8 path")]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(output.stdout.is_empty(), "-o writes the file, not stdout");
    let svg = std::fs::read_to_string(&file).expect("svg written");
    assert!(svg.starts_with("<?xml") && svg.contains("<svg ") && svg.trim_end().ends_with("</svg>"), "{svg}");
    assert_eq!(svg.matches("<g ").count(), svg.matches("</g>").count(), "balanced groups");
    for (node, kind) in [
        ("events", "source"),
        ("intent", "stateful"),
        ("abandoned", "stateful"),
        ("cap", "stateful"),
        ("converted", "sink"),
        ("send_coupon", "sink"),
        ("over_cap", "sink"),
    ] {
        assert!(svg.contains(&format!("<g class=\"node {kind}\" id=\"node-{node}\">")), "{node} as a {kind}");
        assert!(svg.contains(&format!(">{node}</tspan>")), "label of {node}");
    }
    assert!(svg.contains(">user-event-trigger</tspan>"), "operator types are shown");
    assert_eq!(svg.matches("<path ").count(), 6, "one path per edge");
    for port in ["fired", "cancelled", "capped"] {
        assert!(svg.contains(&format!(">{port}</tspan>")), "edge label {port}");
    }
    // Deterministic: stdout gets the same bytes.
    assert_eq!(stdout(&pulsec(&["graph", "--format", "svg", example])), svg);

    // Every example lays out, with one path per edge of its DOT graph.
    for entry in std::fs::read_dir(workspace().join("examples")).expect("examples") {
        let pipeline = entry.expect("entry").path().join("pipeline.pulse");
        if !pipeline.is_file() {
            continue; // examples/ci holds a script, not a pipeline
        }
        let pipeline = pipeline.to_str().expect("utf-8 path");
        let output = pulsec(&["graph", "--format", "svg", pipeline]);
        assert_eq!(output.status.code(), Some(0), "{pipeline}: {}", stderr(&output));
        let n_edges = stdout(&pulsec(&["graph", pipeline])).matches("\" -> \"").count();
        assert_eq!(stdout(&output).matches("<path ").count(), n_edges, "{pipeline}");
    }
}

#[test]
fn convert_writes_the_other_form_which_checks_to_the_same_graph() {
    let dir = tempfile::tempdir().expect("temp dir");
    let converted = dir.path().join("router.json");
    let output = pulsec(&["convert", "examples/event-router/pipeline.pulse", "-o", converted.to_str().expect("path")]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let graph_of = |path: &str| stdout(&pulsec(&["graph", path]));
    assert_eq!(graph_of(converted.to_str().expect("path")), graph_of("examples/event-router/pipeline.pulse"));
}

#[test]
fn convert_to_pulse_of_a_pulse_file_formats_it_and_keeps_its_comments() {
    let output = pulsec(&["convert", "examples/debounce/pipeline.pulse", "--to", "pulse"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let original = std::fs::read_to_string(workspace().join("examples/debounce/pipeline.pulse")).expect("read");
    assert_eq!(stdout(&output), original, "the example is formatted, so converting it changes nothing");
    assert!(stdout(&output).starts_with("// Debounce:"));
}

#[test]
fn fmt_check_reports_unformatted_files_and_fmt_fixes_them() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("messy.pulse");
    std::fs::write(&file, "pipeline messy\n// keep this comment\nsrc:file-source(\"x.jsonl\")\nsrc->out:stdout-sink\n")
        .expect("write");
    let path = file.to_str().expect("utf-8 path");
    assert_eq!(pulsec(&["fmt", "--check", path]).status.code(), Some(1));
    assert_eq!(pulsec(&["fmt", path]).status.code(), Some(0));
    let formatted = std::fs::read_to_string(&file).expect("read");
    assert!(formatted.contains("// keep this comment"), "{formatted}");
    assert!(formatted.contains("src -> out"), "{formatted}");
    assert_eq!(pulsec(&["fmt", "--check", path]).status.code(), Some(0));
}

#[test]
fn emit_rust_writes_the_generated_main() {
    let dir = tempfile::tempdir().expect("temp dir");
    let main_rs = dir.path().join("main.rs");
    let output = pulsec(&["build", "examples/debounce/pipeline.pulse", "--emit-rust", main_rs.to_str().expect("path")]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = std::fs::read_to_string(&main_rs).expect("read");
    assert!(text.starts_with("// @generated by pulsec"));
    assert!(text.contains("fn main()"));
}

#[test]
fn a_reader_that_closes_the_pipe_early_ends_pulsec_quietly() {
    use std::io::{BufRead, BufReader};
    use std::os::unix::process::ExitStatusExt;
    // Diagnostics far larger than a pipe's buffer (many files, so a per-file cap keeps them
    // large), so pulsec is still writing when the reader goes, as in `pulsec check ... 2>&1 | head -1`.
    let dir = tempfile::tempdir().expect("temp dir");
    let mut text = String::from("pipeline bad\nevent { userId: string? }\nsrc: file-source(\"x.jsonl\")\n");
    for n in 0..20 {
        text.push_str(&format!("src -> f{n}: filter(usr_id != null) -> s{n}: stdout-sink\n"));
    }
    let files: Vec<PathBuf> = (0..100)
        .map(|n| {
            let file = dir.path().join(format!("bad{n}.pulse"));
            std::fs::write(&file, &text).expect("write");
            file
        })
        .collect();
    let mut child = Command::new(env!("CARGO_BIN_EXE_pulsec"))
        .arg("check")
        .args(&files)
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("pulsec runs");
    let mut first = String::new();
    BufReader::new(child.stderr.take().expect("stderr")).read_line(&mut first).expect("one line");
    // The reader is dropped here, as `| head -1` exits.
    let status = child.wait().expect("pulsec ends");
    assert!(first.starts_with("error[E0205]"), "{first}");
    // Ended by SIGPIPE like any filter: not the panic's exit 101 ("failed printing to stderr").
    assert_eq!(status.signal(), Some(13), "{status:?}");
}

#[test]
fn a_file_name_with_a_line_break_stays_inside_the_generated_header() {
    let text = "pipeline named\nevent { userId: string? }\nsrc: file-source(\"x.jsonl\")\nsrc -> out: stdout-sink\n";
    let loaded = pulsec::load::load_text("x.pulse", text.to_string(), &|_| Err(std::io::ErrorKind::NotFound.into()));
    let pipeline = loaded.pipeline.expect("checks");
    let generated = pulsec::native::generate(&pipeline, "evil\nfn injected() {}\r.pulse").expect("generates");
    let first = generated.main_rs.lines().next().expect("a header line");
    assert!(first.starts_with("// @generated by pulsec from `evil\\nfn injected() {}\\r.pulse`"), "{first}");
    assert!(!generated.main_rs.contains("\nfn injected"));
}

#[test]
fn a_flood_of_errors_prints_a_bounded_report() {
    // 8 KB of `"` on one line once printed 105 MB: every diagnostic redrew the whole line.
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("quotes.pulse");
    std::fs::write(&file, "\"".repeat(8 * 1024)).expect("write");
    let output = pulsec(&["check", file.to_str().expect("utf-8 path")]);
    assert_eq!(output.status.code(), Some(1));
    let text = stderr(&output);
    assert!(text.len() < 64 * 1024, "{} bytes of diagnostics", text.len());
    assert!(text.contains("error["), "{text}");
    // Many lines with an error each: at most 50 are drawn, the rest counted.
    let many = dir.path().join("many.pulse");
    let mut source = String::from("pipeline many\nevent { userId: string? }\nsrc: file-source(\"x.jsonl\")\n");
    for n in 0..200 {
        source.push_str(&format!("src -> f{n}: filter(usr_id{n} != null) -> s{n}: stdout-sink\n"));
    }
    std::fs::write(&many, source).expect("write");
    let output = pulsec(&["check", many.to_str().expect("utf-8 path")]);
    let text = stderr(&output);
    assert_eq!(text.matches("error[E0205]").count(), 50, "{text}");
    assert!(text.contains("150 more diagnostic(s)"), "{text}");
}

#[test]
fn a_graph_too_large_for_the_layout_engine_gets_a_layered_svg_that_says_so() {
    // 4,000 nodes took about 106 s in `layout-rs`, whose crossing reduction grows cubically.
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("big.pulse");
    let n_filters = 4000;
    let mut source = String::from("pipeline big\nevent { event_name: string }\nsrc: file-source(\"x.jsonl\")\n");
    for idx in 0..n_filters {
        let from = if idx % 10 == 0 { "src".to_string() } else { format!("f{}", idx - 1) };
        source.push_str(&format!("{from} -> f{idx}: filter(event_name == \"a\")\n"));
    }
    source.push_str(&format!("f{} -> out: stdout-sink\n", n_filters - 1));
    std::fs::write(&file, source).expect("write");
    let output = pulsec(&["graph", "--format", "svg", file.to_str().expect("utf-8 path")]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let svg = stdout(&output);
    assert!(svg.contains("simplified layout: 4002 nodes is more than 300"), "the picture says it is simplified");
    assert_eq!(svg.matches("<g class=\"node ").count(), n_filters + 2);
    assert_eq!(svg.matches("<path ").count(), n_filters + 1, "one path per edge");
    assert!(svg.contains("<g class=\"node source\" id=\"node-src\">"));
    assert_eq!(svg.matches("<g ").count(), svg.matches("</g>").count(), "balanced groups");
    // Small graphs keep the full layout.
    let small = pulsec(&["graph", "--format", "svg", "examples/event-router/pipeline.pulse"]);
    assert!(!stdout(&small).contains("simplified layout"));
}

#[test]
fn k8s_refuses_a_bootstrap_source_a_pod_could_not_read_before_writing_any_manifest() {
    for (source, says) in [
        ("kafka:", "a topic name has 1 to 249 characters"),
        ("kafka:bad topic", "topic names may use only letters"),
        ("clicks=history.jsonl", "`clicks` is not a source of `user-profile`"),
        ("", "expected `kafka:TOPIC` or a path on one line"),
    ] {
        let dir = tempfile::tempdir().expect("temp dir");
        let out = dir.path().to_str().expect("a UTF-8 path");
        let output = pulsec(&["k8s", "examples/user-profile/pipeline.pulse", "-o", out, "--bootstrap-from", source]);
        assert_eq!(output.status.code(), Some(2), "{source:?}: {}", stderr(&output));
        assert!(stderr(&output).contains(says), "{source:?}: {}", stderr(&output));
        assert!(std::fs::read_dir(dir.path()).expect("dir").next().is_none(), "{source:?}: a manifest was written");
    }
    // A path, a source's path and a topic are accepted.
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().to_str().expect("a UTF-8 path");
    let args = ["k8s", "examples/user-profile/pipeline.pulse", "-o", out, "--bootstrap-from"];
    let output = pulsec(&[&args[..], &["events=/data/history.jsonl", "--bootstrap-from", "kafka:history"]].concat());
    assert!(output.status.success(), "{}", stderr(&output));
}

#[test]
fn counters_whose_names_share_a_stored_id_are_refused_before_any_build() {
    let dir = tempfile::tempdir().expect("temp dir");
    let source = std::fs::read_to_string(workspace().join("examples/feature-counts/pipeline.pulse")).expect("example");
    // `costarring` and `liquid` have the same 32-bit FNV-1a hash, the id counts are stored by.
    let clashing =
        source.replace("counter videos_7d ", "counter costarring ").replace("counter videos_30d ", "counter liquid ");
    let path = dir.path().join("clash.pulse");
    std::fs::write(&path, clashing).expect("write");
    let main_rs = dir.path().join("main.rs");
    let output = pulsec(&["build", path.to_str().expect("path"), "--emit-rust", main_rs.to_str().expect("path")]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let text = stderr(&output);
    assert!(
        text.contains("error[E0904]: node `counts`: `costarring` and `liquid` have the same id in stored state"),
        "{text}"
    );
    assert!(text.contains("clash.pulse:"), "the diagnostic points at the node: {text}");
    assert!(!main_rs.exists(), "no code is generated");
}
