//! Native builds: write the generated crate, run cargo against the shared target directory, and
//! turn failures into diagnostics. The runtime and every dependency are compiled once into the
//! shared target directory; a warm build recompiles only the pipeline's small `main.rs`.

use indicatif::{ProgressBar, ProgressStyle};
use pulse_codegen::{CodegenError, GeneratedCrate, Options};
use pulse_ir::Pipeline;
use pulse_syntax::codes::{E0901, E0903, E0904};
use pulse_syntax::{Diagnostic, Span};
use std::io::{BufRead, BufReader, IsTerminal};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

/// The Pulse source tree that holds `runtime/` and `stdlib/`.
pub fn workspace_root() -> PathBuf {
    if let Some(root) = std::env::var_os("PULSE_WORKSPACE") {
        return PathBuf::from(root);
    }
    let compiled_in = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    compiled_in.canonicalize().unwrap_or(compiled_in)
}

/// Where generated crates and the shared target directory live.
pub fn pulse_home() -> PathBuf {
    if let Some(home) = std::env::var_os("PULSE_HOME") {
        return PathBuf::from(home);
    }
    // Beside the workspace's own build output, so a cached target directory caches pipelines too.
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(target) => PathBuf::from(target).join("pulse"),
        None => workspace_root().join("target").join("pulse"),
    }
}

/// Where Debian's `librocksdb-dev` puts the library the runtime links.
const DEBIAN_ROCKSDB_LIB_DIR: &str = "/usr/lib/x86_64-linux-gnu";

pub struct Built {
    pub binary: PathBuf,
    pub crate_dir: PathBuf,
    pub seconds: f64,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    Release,
    Debug,
}

pub fn generate(pipeline: &Pipeline, source_name: &str) -> Result<GeneratedCrate, Vec<Diagnostic>> {
    generate_with_spans(pipeline, source_name, &|_| None)
}

/// `generate`, pointing diagnostics about a node at its id in the source (the IR has no spans).
pub fn generate_with_spans(
    pipeline: &Pipeline,
    source_name: &str,
    node_span: &dyn Fn(&str) -> Option<Span>,
) -> Result<GeneratedCrate, Vec<Diagnostic>> {
    let root = workspace_root();
    let options =
        Options { runtime_path: root.join("runtime").display().to_string(), source_name: source_name.to_string() };
    pulse_codegen::generate(pipeline, &options).map_err(|errors| {
        errors.into_iter().map(|error| codegen_diagnostic(error, source_name, &pipeline.name, node_span)).collect()
    })
}

/// The diagnostic of a pipeline codegen cannot generate.
fn codegen_diagnostic(
    error: CodegenError,
    source_name: &str,
    pipeline_name: &str,
    node_span: &dyn Fn(&str) -> Option<Span>,
) -> Diagnostic {
    match error {
        CodegenError::Unsupported { ref node, operator } => {
            let diagnostic = Diagnostic::new(E0904, error.to_string())
                .note("`pulsec check` accepts this pipeline; building it needs a runtime with this operator");
            match node_span(node) {
                Some(span) => diagnostic.primary(span, format!("`{operator}` cannot run yet")),
                None => diagnostic,
            }
        }
        // A bug in codegen, not in the pipeline, so no span; codegen is deterministic, so the
        // pipeline file reproduces it.
        CodegenError::InvalidRust { .. } => Diagnostic::new(E0901, error.to_string())
            .note(format!("while generating `{}` (pipeline `{pipeline_name}`)", source_name.escape_debug()))
            .help("this is a bug in pulsec; please report it with the pipeline file"),
    }
}

/// Writes `content` only when it differs, so cargo's freshness check sees unchanged files.
fn write_if_changed(path: &Path, content: &str) -> std::io::Result<()> {
    if std::fs::read_to_string(path).ok().as_deref() == Some(content) {
        return Ok(());
    }
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(path, content)
}

pub fn build(
    pipeline: &Pipeline,
    source_name: &str,
    profile: Profile,
    quiet: bool,
    node_span: &dyn Fn(&str) -> Option<Span>,
) -> Result<Built, Vec<Diagnostic>> {
    let generated = generate_with_spans(pipeline, source_name, node_span)?;
    let home = pulse_home();
    let crate_dir = home.join("pipelines").join(&pipeline.name);
    let target_dir = home.join("target");
    let io_error = |error: std::io::Error| {
        vec![Diagnostic::new(E0903, format!("cannot write the generated crate in `{}`: {error}", crate_dir.display()))]
    };
    write_if_changed(&crate_dir.join("Cargo.toml"), &generated.cargo_toml).map_err(io_error)?;
    write_if_changed(&crate_dir.join("src").join("main.rs"), &generated.main_rs).map_err(io_error)?;
    // The workspace's lock file pins the runtime's dependencies, so the shared target directory
    // already holds every crate the pipeline needs.
    if let Ok(lock) = std::fs::read_to_string(workspace_root().join("Cargo.lock")) {
        if !crate_dir.join("Cargo.lock").exists() {
            write_if_changed(&crate_dir.join("Cargo.lock"), &lock).map_err(io_error)?;
        }
    }

    let compiled = compile_crate(&crate_dir, &pipeline.name, &target_dir, profile, quiet)?;
    let profile_dir = if profile == Profile::Release { "release" } else { "debug" };
    let binary = target_dir.join(profile_dir).join(&pipeline.name);
    if !quiet {
        eprintln!("built `{}` in {:.1} s ({} crates compiled)", pipeline.name, compiled.seconds, compiled.n_units);
    }
    Ok(Built { binary, crate_dir, seconds: compiled.seconds })
}

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
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if profile == Profile::Release {
        command.arg("--release");
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

    let progress = if quiet || !std::io::stderr().is_terminal() {
        if !quiet {
            eprintln!("building `{name}` ...");
        }
        ProgressBar::hidden()
    } else {
        let bar = ProgressBar::new_spinner();
        bar.set_style(
            ProgressStyle::with_template("{spinner} {elapsed:>3} building `{prefix}`: {msg}").expect("valid template"),
        );
        bar.set_prefix(name.to_string());
        bar.enable_steady_tick(std::time::Duration::from_millis(120));
        bar
    };

    let stderr = child.stderr.take().expect("stderr is piped");
    let stderr_reader = std::thread::spawn(move || {
        let mut lines = Vec::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            lines.push(line);
        }
        lines
    });
    let mut n_units = 0usize;
    // Rendered rustc errors in the generated crate, and in any other crate.
    let mut generated_errors: Vec<String> = Vec::new();
    let mut other_errors: Vec<String> = Vec::new();
    let stdout = child.stdout.take().expect("stdout is piped");
    for line in BufReader::new(stdout).lines().map_while(Result::ok) {
        let Ok(message) = serde_json::from_str::<serde_json::Value>(&line) else { continue };
        match message["reason"].as_str() {
            Some("compiler-artifact") if message["fresh"] == false => {
                n_units += 1;
                let target = message["target"]["name"].as_str().unwrap_or("?");
                progress.set_message(format!("compiled {n_units} crates, last `{target}`"));
            }
            Some("compiler-message") if message["message"]["level"] == "error" => {
                let rendered = message["message"]["rendered"].as_str().unwrap_or_default().trim_end().to_string();
                let from_generated = message["manifest_path"].as_str().map(Path::new) == Some(manifest_path.as_path())
                    || message["target"]["name"].as_str() == Some(name);
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
    progress.finish_and_clear();
    let seconds = started.elapsed().as_secs_f64();
    if status.success() {
        return Ok(Compiled { seconds, n_units });
    }
    if let Some(first) = generated_errors.first() {
        let main_rs = crate_dir.join("src").join("main.rs");
        let mut diagnostic =
            Diagnostic::new(E0901, format!("internal compiler error: the generated code of `{name}` does not compile"))
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
    Err(vec![Diagnostic::new(E0903, format!("the native build of `{name}` failed")).note(summary)])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_code_that_does_not_parse_is_internal_error_e0901() {
        let error = CodegenError::InvalidRust { error: "expected `;`".to_string(), tokens: "fn x ( ) ->".to_string() };
        let diagnostic = codegen_diagnostic(error, "journey.pulse", "journey", &|_| None);
        assert_eq!(diagnostic.code, E0901);
        assert_eq!(
            diagnostic.message,
            "internal compiler error: the generated code does not parse as Rust: expected `;`"
        );
        assert!(diagnostic.labels.is_empty(), "the pipeline is not at fault: no span");
    }
}
