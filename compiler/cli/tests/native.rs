//! Native builds: how a failing cargo build is reported. The generated crate is replaced by a
//! small crate without dependencies, compiled through the same function `pulsec build` uses.

use pulse_syntax::codes;
use pulsec::native::{compile_crate, Profile};
use std::path::Path;

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
