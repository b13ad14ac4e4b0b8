//! Running cargo on a generated crate: its JSON messages on stdout (what was compiled, rustc's
//! errors), its progress and status lines on stderr, and the failures turned into diagnostics.

use super::progress::{self, Reporter};
use super::Profile;
use pulse_syntax::codes::{E0901, E0903};
use pulse_syntax::Diagnostic;
use std::io::{BufRead, BufReader, IsTerminal};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

/// Where Debian's `librocksdb-dev` puts the library the runtime links.
const DEBIAN_ROCKSDB_LIB_DIR: &str = "/usr/lib/x86_64-linux-gnu";

/// What one cargo build did.
pub struct Compiled {
    pub seconds: f64,
    /// Crates compiled (not fresh) by this build.
    pub n_units: usize,
}

/// Runs cargo on the generated crate in `crate_dir` (package `name`). A rustc error in that
/// crate is a bug in pulsec and becomes E0901 with rustc's rendered message and the generated
/// file; any other failure (a dependency that does not compile, no linker) is E0903.
pub fn compile_crate(
    crate_dir: &Path,
    name: &str,
    target_dir: &Path,
    profile: Profile,
    quiet: bool,
) -> Result<Compiled, Vec<Diagnostic>> {
    compile_package(crate_dir, name, name, target_dir, profile, quiet)
}

/// `compile_crate` of the package `package`, called `display_name` in what the user reads.
pub(crate) fn compile_package(
    crate_dir: &Path,
    package: &str,
    display_name: &str,
    target_dir: &Path,
    profile: Profile,
    quiet: bool,
) -> Result<Compiled, Vec<Diagnostic>> {
    let started = Instant::now();
    let manifest_path = crate_dir.join("Cargo.toml");
    let mut command = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string()));
    // Plain `json`: every rustc diagnostic arrives on stdout as a `compiler-message` with its
    // `rendered` text. (`json-render-diagnostics` prints them on stderr instead and never
    // emits that message, so a rustc error in generated code went unrecognised.)
    command
        .arg("build")
        .arg("--manifest-path")
        .arg(&manifest_path)
        .arg("--target-dir")
        .arg(target_dir)
        .arg("--message-format")
        .arg("json")
        // Cargo draws its progress line (units done of units in the build) only on a terminal;
        // forced, it writes it to the pipe, where `progress` reads it. Colour would only get in
        // the way of reading its lines.
        .env("CARGO_TERM_PROGRESS_WHEN", "always")
        .env("CARGO_TERM_PROGRESS_WIDTH", progress::CARGO_PROGRESS_WIDTH.to_string())
        .env("CARGO_TERM_COLOR", "never")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if profile == Profile::Release {
        command.arg("--release");
    }
    // Under `cargo run` or `cargo test`, pulsec inherits the variables cargo sets for the crate
    // it runs. Build scripts that track one of them (ring's tracks `CARGO_MANIFEST_DIR`) would
    // see a change between such a run and a plain one, and rebuild with every crate above them.
    for (name, _) in std::env::vars_os() {
        if name.to_str().is_some_and(is_crate_variable) {
            command.env_remove(&name);
        }
    }
    // The runtime links Debian's librocksdb; cargo reads `.cargo/config.toml` from the working
    // directory, not the manifest's, so pass the variable here or cargo would build the bundled
    // C++ library (25 minutes).
    if std::env::var_os("ROCKSDB_LIB_DIR").is_none() && Path::new(DEBIAN_ROCKSDB_LIB_DIR).is_dir() {
        command.env("ROCKSDB_LIB_DIR", DEBIAN_ROCKSDB_LIB_DIR);
    }
    let mut child = command.spawn().map_err(|error| {
        vec![Diagnostic::new(E0903, format!("cannot run cargo: {error}")).help("install Rust with rustup")]
    })?;

    let reporter = Reporter::start(display_name, quiet, std::io::stderr().is_terminal());
    let stderr = child.stderr.take().expect("stderr is piped");
    let on_progress = reporter.progress_sink();
    let stderr_reader = std::thread::spawn(move || progress::read_cargo_stderr(BufReader::new(stderr), on_progress));
    let mut n_units = 0usize;
    // Rendered rustc errors in the generated crate, and in any other crate.
    let mut generated_errors: Vec<String> = Vec::new();
    let mut other_errors: Vec<String> = Vec::new();
    let stdout = child.stdout.take().expect("stdout is piped");
    for line in BufReader::new(stdout).lines().map_while(Result::ok) {
        let Ok(message) = serde_json::from_str::<serde_json::Value>(&line) else { continue };
        match message["reason"].as_str() {
            Some("compiler-artifact") if message["fresh"] == false => n_units += 1,
            Some("compiler-message") if message["message"]["level"] == "error" => {
                let rendered = message["message"]["rendered"].as_str().unwrap_or_default().trim_end().to_string();
                let from_generated = message["manifest_path"].as_str().map(Path::new) == Some(manifest_path.as_path())
                    || message["target"]["name"].as_str() == Some(package);
                if from_generated {
                    generated_errors.push(rendered);
                } else {
                    other_errors.push(rendered);
                }
            }
            _ => {}
        }
    }
    let status =
        child.wait().map_err(|error| vec![Diagnostic::new(E0903, format!("cargo did not finish: {error}"))])?;
    let stderr_lines = stderr_reader.join().unwrap_or_default();
    reporter.finish();
    let seconds = started.elapsed().as_secs_f64();
    if status.success() {
        return Ok(Compiled { seconds, n_units });
    }
    if let Some(first) = generated_errors.first() {
        let main_rs = crate_dir.join("src").join("main.rs");
        let mut diagnostic = Diagnostic::new(
            E0901,
            format!("internal compiler error: the generated code of `{display_name}` does not compile"),
        )
        .note(format!("generated file: {}", main_rs.display()))
        .note(first.clone());
        if generated_errors.len() > 1 {
            diagnostic = diagnostic.note(format!("and {} more rustc error(s)", generated_errors.len() - 1));
        }
        return Err(vec![diagnostic.help("this is a bug in pulsec; please report it with the pipeline file")]);
    }
    let summary = if let Some(first) = other_errors.first() {
        first.clone()
    } else {
        let reason: Vec<&String> = stderr_lines
            .iter()
            .filter(|line| line.trim_start().starts_with("error") || line.contains("failed"))
            .take(8)
            .collect();
        if reason.is_empty() {
            stderr_lines.iter().rev().take(8).rev().cloned().collect::<Vec<_>>().join("\n")
        } else {
            reason.into_iter().cloned().collect::<Vec<_>>().join("\n")
        }
    };
    Err(vec![Diagnostic::new(E0903, format!("the native build of `{display_name}` failed")).note(summary)])
}

/// A variable cargo sets for the crate it builds, runs or tests, which a build of another crate
/// must not inherit.
fn is_crate_variable(name: &str) -> bool {
    const EXACT: &[&str] = &[
        "CARGO_MANIFEST_DIR",
        "CARGO_MANIFEST_PATH",
        "CARGO_MANIFEST_LINKS",
        "CARGO_CRATE_NAME",
        "CARGO_BIN_NAME",
        "CARGO_PRIMARY_PACKAGE",
        "CARGO_TARGET_TMPDIR",
        "CARGO_RUSTC_CURRENT_DIR",
        "OUT_DIR",
    ];
    EXACT.contains(&name) || name.starts_with("CARGO_PKG_") || name.starts_with("CARGO_BIN_EXE_")
}
