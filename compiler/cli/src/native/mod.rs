//! Native builds: write the generated crate, run cargo against the shared target directory, and
//! turn failures into diagnostics. The runtime and every dependency are compiled once into the
//! shared target directory; a warm build recompiles only the pipeline's small `main.rs`.
//!
//! `cargo` runs cargo and reads what it says; `progress` shows how far a build is.

mod cargo;
pub mod progress;

pub use cargo::{compile_crate, Compiled};

use pulse_codegen::{CodegenError, GeneratedCrate, Options};
use pulse_ir::Pipeline;
use pulse_syntax::codes::{E0901, E0903, E0904};
use pulse_syntax::{Diagnostic, Span};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

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

pub struct Built {
    /// The pipeline's name, which the binary goes by where the user sees it (`pulsec build`'s
    /// default output, the image's entry point).
    pub name: String,
    /// The binary of this source, at `<PULSE_HOME>/target/<profile>/<crate name>`.
    pub binary: PathBuf,
    /// The generated crate, `<PULSE_HOME>/pipelines/<crate name>/`.
    pub crate_dir: PathBuf,
    pub seconds: f64,
    /// Crates this build compiled: 0 when nothing changed since the last build of this source.
    pub crates_compiled: usize,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    Release,
    Debug,
}

/// The name of the generated crate, its build folder and its binary for the pipeline `name`
/// read from `source`: `<name>-<8 hex digits>`, the digits from the SHA-256 of the source's
/// canonical path. Two files that declare the same pipeline get folders and binaries of their
/// own in the shared target directory, so building one neither evicts the other's build nor
/// replaces the binary a build of the other returned. A path that cannot be made canonical
/// (a name with no file behind it) counts as written.
pub fn crate_name(name: &str, source: &Path) -> String {
    let canonical =
        source.canonicalize().or_else(|_| std::path::absolute(source)).unwrap_or_else(|_| source.to_path_buf());
    let digest = Sha256::digest(canonical.as_os_str().as_encoded_bytes());
    let short: String = digest.iter().take(4).map(|byte| format!("{byte:02x}")).collect();
    format!("{name}-{short}")
}

pub fn generate(pipeline: &Pipeline, source_name: &str) -> Result<GeneratedCrate, Vec<Diagnostic>> {
    generate_with_spans(pipeline, source_name, &|_| None)
}

/// `generate`, pointing diagnostics about a node at its id in the source (the IR has no spans).
/// The crate is named after the pipeline; `build` names it after the source too.
pub fn generate_with_spans(
    pipeline: &Pipeline,
    source_name: &str,
    node_span: &dyn Fn(&str) -> Option<Span>,
) -> Result<GeneratedCrate, Vec<Diagnostic>> {
    generate_crate(pipeline, source_name, &pipeline.name, node_span)
}

fn generate_crate(
    pipeline: &Pipeline,
    source_name: &str,
    crate_name: &str,
    node_span: &dyn Fn(&str) -> Option<Span>,
) -> Result<GeneratedCrate, Vec<Diagnostic>> {
    let root = workspace_root();
    let options = Options {
        runtime_path: root.join("runtime").display().to_string(),
        source_name: source_name.to_string(),
        crate_name: crate_name.to_string(),
    };
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
        CodegenError::NameIdClash { ref node, ref first, ref second } => {
            let diagnostic = Diagnostic::new(E0904, error.to_string())
                .help(format!("rename `{first}` or `{second}`; state is stored by a 32-bit hash of each name"));
            match node_span(node) {
                Some(span) => diagnostic.primary(span, "two names with one stored id"),
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

/// Builds the pipeline read from the file `source` (its name goes into the `@generated`
/// header, its path keys the build folder: `crate_name`).
pub fn build(
    pipeline: &Pipeline,
    source: impl AsRef<Path>,
    profile: Profile,
    quiet: bool,
    node_span: &dyn Fn(&str) -> Option<Span>,
) -> Result<Built, Vec<Diagnostic>> {
    let source = source.as_ref();
    let source_name = source.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_default();
    let crate_name = crate_name(&pipeline.name, source);
    let generated = generate_crate(pipeline, &source_name, &crate_name, node_span)?;
    let home = pulse_home();
    let crate_dir = home.join("pipelines").join(&crate_name);
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

    let compiled = cargo::compile_package(&crate_dir, &crate_name, &pipeline.name, &target_dir, profile, quiet)?;
    let profile_dir = if profile == Profile::Release { "release" } else { "debug" };
    let binary = target_dir.join(profile_dir).join(&crate_name);
    if !quiet {
        eprintln!("built `{}` in {:.1} s ({} crates compiled)", pipeline.name, compiled.seconds, compiled.n_units);
    }
    Ok(Built {
        name: pipeline.name.clone(),
        binary,
        crate_dir,
        seconds: compiled.seconds,
        crates_compiled: compiled.n_units,
    })
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
