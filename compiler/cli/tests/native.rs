//! Native builds: how a failing cargo build is reported. The generated crate is replaced by a
//! small crate without dependencies, compiled through the same function `pulsec build` uses.

use pulse_syntax::codes;
use pulsec::native::{compile_crate, Profile};
use std::path::Path;
use std::process::Command;

fn write_crate(dir: &Path, name: &str, main_rs: &str) {
    std::fs::create_dir_all(dir.join("src")).expect("create src");
    std::fs::write(
        dir.join("Cargo.toml"),
        format!("[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[workspace]\n"),
    )
    .expect("write Cargo.toml");
    std::fs::write(dir.join("src").join("main.rs"), main_rs).expect("write main.rs");
}

#[test]
fn a_rustc_error_in_the_generated_crate_is_internal_error_e0901_with_rustc_s_message() {
    let dir = tempfile::tempdir().expect("temp dir");
    let crate_dir = dir.path().join("broken-pipeline");
    write_crate(
        &crate_dir,
        "broken-pipeline",
        "fn main() {\n    let count: u32 = \"seven\";\n    println!(\"{count}\");\n}\n",
    );
    let result = compile_crate(&crate_dir, "broken-pipeline", &dir.path().join("target"), Profile::Debug, true);
    let diagnostics = result.err().expect("the build fails");
    assert_eq!(diagnostics.len(), 1, "{diagnostics:#?}");
    let diagnostic = &diagnostics[0];
    assert_eq!(diagnostic.code, codes::E0901, "{diagnostic:#?}");
    let notes = diagnostic.notes.join("\n");
    assert!(notes.contains("mismatched types"), "rustc's rendered message: {notes}");
    assert!(notes.contains("main.rs"), "the generated file: {notes}");
}

#[test]
fn a_crate_that_compiles_is_not_an_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    let crate_dir = dir.path().join("fine-pipeline");
    write_crate(&crate_dir, "fine-pipeline", "fn main() {}\n");
    let compiled = compile_crate(&crate_dir, "fine-pipeline", &dir.path().join("target"), Profile::Debug, true);
    assert!(compiled.is_ok());
}

/// A pipeline named `same-name-twins` that keeps the events named `kept`.
fn twin(kept: &str) -> String {
    format!(
        "pipeline same-name-twins\nevent {{ event_name: string }}\nsrc: file-source(\"in.jsonl\")\n\
         src -> keep: filter(event_name == \"{kept}\") -> out: stdout-sink\n"
    )
}

/// Runs `binary` on `input` and returns what its sink wrote.
fn run_binary(binary: &Path, input: &Path) -> String {
    let output = tempfile::tempdir().expect("temp dir");
    let status = std::process::Command::new(binary)
        .args(["run", "--quiet", "--input"])
        .arg(input)
        .arg("--output")
        .arg(output.path())
        .status()
        .expect("the binary runs");
    assert!(status.success(), "{}: {status}", binary.display());
    std::fs::read_to_string(output.path().join("out.jsonl")).expect("the sink's file")
}

#[test]
fn two_files_that_declare_the_same_pipeline_build_apart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (path_a, path_b) = (dir.path().join("a").join("twin.pulse"), dir.path().join("b").join("twin.pulse"));
    for (path, kept) in [(&path_a, "a"), (&path_b, "b")] {
        std::fs::create_dir_all(path.parent().expect("a directory")).expect("mkdir");
        std::fs::write(path, twin(kept)).expect("write the pipeline");
    }
    let input = dir.path().join("in.jsonl");
    std::fs::write(&input, "{\"event_name\":\"a\"}\n{\"event_name\":\"b\"}\n").expect("write the input");
    let build = |path: &Path| {
        let loaded = pulsec::load::load_file(path).expect("reads");
        let pipeline = loaded.pipeline.as_ref().unwrap_or_else(|| panic!("checks: {:?}", loaded.diagnostics));
        pulsec::native::build(pipeline, path, Profile::Release, true, &|_| None).expect("builds")
    };

    let first_a = build(&path_a);
    let built_b = build(&path_b);
    assert_ne!(first_a.crate_dir, built_b.crate_dir);
    assert_ne!(first_a.binary, built_b.binary);
    assert_eq!((first_a.name.as_str(), built_b.name.as_str()), ("same-name-twins", "same-name-twins"));
    // B's build left A's binary alone: each behaves as its own source.
    assert_eq!(run_binary(&first_a.binary, &input), "{\"event_name\":\"a\"}\n");
    assert_eq!(run_binary(&built_b.binary, &input), "{\"event_name\":\"b\"}\n");

    // Building A again finds its build where it left it.
    let again_a = build(&path_a);
    assert_eq!(again_a.crates_compiled, 0, "B's build evicted A's");
    assert_eq!(again_a.binary, first_a.binary);
    assert_eq!(run_binary(&again_a.binary, &input), "{\"event_name\":\"a\"}\n");
}

/// `cargo run -p pulsec` (the README's first command) and `cargo test` run pulsec with the
/// variables cargo sets for the crate it runs. A build script that tracks one of them (ring's
/// tracks `CARGO_MANIFEST_DIR`) was rebuilt, with every crate above it up to the runtime,
/// whenever pulsec next ran without them: a warm pipeline took 50 s again.
#[test]
fn the_environment_of_a_parent_cargo_does_not_rebuild_what_was_built() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("twin.pulse");
    std::fs::write(&path, twin("a")).expect("write the pipeline");
    let build = |manifest_dir: Option<&str>| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_pulsec"));
        command.arg("build").arg(&path).arg("-o").arg(dir.path().join("twin-bin"));
        command.env_remove("CARGO_MANIFEST_DIR").env_remove("CARGO_PKG_NAME");
        if let Some(manifest_dir) = manifest_dir {
            command.env("CARGO_MANIFEST_DIR", manifest_dir).env("CARGO_PKG_NAME", "pulsec");
        }
        let output = command.output().expect("pulsec runs");
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert!(output.status.success(), "{stderr}");
        stderr
    };
    build(Some(env!("CARGO_MANIFEST_DIR")));
    let again = build(None);
    assert!(again.contains("(0 crates compiled)"), "the second build compiled again:\n{again}");
}
