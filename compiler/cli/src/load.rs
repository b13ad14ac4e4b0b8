//! Loading a pipeline from disk: read the file, and the JSON Schema file it names through the
//! guarded reader, and analyse it with `pulse_analysis`, the front door the language server
//! shares. The only place `pulsec` reads pipeline sources.

use pulse_syntax::codes::E0902;
use pulse_syntax::Diagnostic;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

pub use pulse_analysis::Form;

/// A loaded pipeline: the analysis `pulse_analysis::analyze` made of it.
pub type Loaded = pulse_analysis::Analysis;

/// Parses `text` as the form of `name` and checks it; `read_schema` loads a referenced file.
pub fn load_text(name: &str, text: String, read_schema: &dyn Fn(&str) -> std::io::Result<String>) -> Loaded {
    pulse_analysis::analyze(name, text, read_schema, pulse_analysis::Options::default())
}

/// Whether `schema "PATH"` may name a file outside the pipeline's directory tree
/// (`pulsec --allow-schema-outside`); set once from the command line.
static ALLOW_SCHEMA_OUTSIDE: AtomicBool = AtomicBool::new(false);

pub fn allow_schema_outside(allow: bool) {
    ALLOW_SCHEMA_OUTSIDE.store(allow, Ordering::Relaxed);
}

pub fn load_file(path: &Path) -> Result<Loaded, Box<Diagnostic>> {
    let text = std::fs::read_to_string(path)
        .map_err(|error| Box::new(Diagnostic::new(E0902, format!("cannot read `{}`: {error}", path.display()))))?;
    let base: PathBuf = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let read_schema = move |relative: &str| read_schema_file(&base, relative);
    Ok(load_text(&path.display().to_string(), text, &read_schema))
}

/// Reads the schema file `relative` named by a pipeline in `pipeline_dir`, with the checks of
/// `pulse_analysis::schema_file` (inside the directory unless allowed, regular, at most 1 MiB).
pub fn read_schema_file(pipeline_dir: &Path, relative: &str) -> std::io::Result<String> {
    let allow_outside = ALLOW_SCHEMA_OUTSIDE.load(Ordering::Relaxed);
    pulse_analysis::schema_file::read_schema_file(pipeline_dir, relative, allow_outside)
}
