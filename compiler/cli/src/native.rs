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
    let options = Options {
        runtime_path: root.join("runtime").display().to_string(),
        stdlib_path: root.join("stdlib").display().to_string(),
        source_name: source_name.to_string(),
    };
    pulse_codegen::generate(pipeline, &options).map_err(|errors| {
        errors
            .into_iter()
            .map(|error| match error {
                CodegenError::Unsupported { ref node, operator } => {
                    let diagnostic = Diagnostic::new(E0904, error.to_string())
                        .note("`pulsec check` accepts this pipeline; building it needs a runtime with this operator");
                    match node_span(node) {
                        Some(span) => diagnostic.primary(span, format!("`{operator}` cannot run yet")),
                        None => diagnostic,
                    }
                }
            })
            .collect()
    })
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

    let started = Instant::now();
    let mut command = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string()));
    command
        .arg("build")
        .arg("--manifest-path")
        .arg(crate_dir.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&target_dir)
        .arg("--message-format")
        .arg("json-render-diagnostics")
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
            eprintln!("building `{}` ...", pipeline.name);
        }
        ProgressBar::hidden()
    } else {
        let bar = ProgressBar::new_spinner();
        bar.set_style(
            ProgressStyle::with_template("{spinner} {elapsed:>3} building `{prefix}`: {msg}").expect("valid template"),
        );
        bar.set_prefix(pipeline.name.clone());
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
    let mut rustc_errors: Vec<String> = Vec::new();
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
                let package = message["package_id"].as_str().unwrap_or_default();
                if package.contains(&pipeline.name) || package.contains("pulse-") {
                    rustc_errors.push(message["message"]["rendered"].as_str().unwrap_or_default().to_string());
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
    if !status.success() {
        if let Some(first) = rustc_errors.first() {
            let main_rs = crate_dir.join("src").join("main.rs");
            return Err(vec![Diagnostic::new(
                E0901,
                format!("internal compiler error: the generated code of `{}` does not compile", pipeline.name),
            )
            .note(format!("generated file: {}", main_rs.display()))
            .note(first.trim_end().to_string())
            .help("this is a bug in pulsec; please report it with the pipeline file")]);
        }
        let reason: Vec<&String> = stderr_lines
            .iter()
            .filter(|line| line.trim_start().starts_with("error") || line.contains("failed"))
            .take(8)
            .collect();
        let summary = if reason.is_empty() {
            stderr_lines.iter().rev().take(8).rev().cloned().collect::<Vec<_>>().join("\n")
        } else {
            reason.into_iter().cloned().collect::<Vec<_>>().join("\n")
        };
        return Err(vec![
            Diagnostic::new(E0903, format!("the native build of `{}` failed", pipeline.name)).note(summary)
        ]);
    }
    let profile_dir = if profile == Profile::Release { "release" } else { "debug" };
    let binary = target_dir.join(profile_dir).join(&pipeline.name);
    if !quiet {
        eprintln!("built `{}` in {seconds:.1} s ({n_units} crates compiled)", pipeline.name);
    }
    Ok(Built { binary, crate_dir, seconds })
}
