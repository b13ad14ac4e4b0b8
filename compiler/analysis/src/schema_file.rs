//! Reading the JSON Schema file a pipeline names with `schema "PATH"`. Both doors that read it,
//! `pulsec` and the language server (which opens whatever an edited pipeline names), use this
//! one reader, so a pipeline cannot make either read an arbitrary file: the path resolves
//! relative to the pipeline file and must stay inside its directory tree (unless the user
//! allows more), and it must name a regular file of at most `MAX_SCHEMA_BYTES`. A FIFO, a device
//! or a kernel pseudo-file is refused from its metadata, before it is opened.

use pulse_syntax::codes::{self, Code};
use pulse_syntax::{Diagnostic, Span};
use std::io::Read;
use std::path::Path;

/// The largest schema file read; real schemas are a few kilobytes.
pub const MAX_SCHEMA_BYTES: u64 = 1024 * 1024;

/// Directories of kernel pseudo-files, refused even where files outside the pipeline's
/// directory are allowed: their files claim to be regular and empty, and read without end or
/// leak the process's environment.
const PSEUDO_FILE_SYSTEMS: &[&str] = &["/proc", "/sys", "/dev"];

/// Why a schema file was not read although it may exist. Carried inside the `io::Error` that
/// the reader returns, so callers that read schemas some other way (tests, fixtures) keep
/// the plain `io::Result` interface.
#[derive(Debug)]
pub struct SchemaRefusal {
    pub code: Code,
    pub message: String,
    pub help: String,
}

impl std::fmt::Display for SchemaRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for SchemaRefusal {}

fn refuse(code: Code, message: String, help: &str) -> std::io::Error {
    std::io::Error::other(SchemaRefusal { code, message, help: help.to_string() })
}

/// Reads the schema file `relative`, named by a pipeline file in `pipeline_dir`.
/// `allow_outside` lifts the directory rule (`pulsec --allow-schema-outside`), not the others.
pub fn read_schema_file(pipeline_dir: &Path, relative: &str, allow_outside: bool) -> std::io::Result<String> {
    let pipeline_dir = if pipeline_dir.as_os_str().is_empty() { Path::new(".") } else { pipeline_dir };
    let base = pipeline_dir.canonicalize()?;
    // Resolves `..` and every symbolic link, so neither leads out unnoticed.
    let target = base.join(relative).canonicalize()?;
    if !allow_outside && !target.starts_with(&base) {
        return Err(refuse(
            codes::E0905,
            format!("schema file `{relative}` is outside the pipeline's directory"),
            "move the schema next to the pipeline (or below it), or run pulsec with `--allow-schema-outside`",
        ));
    }
    if PSEUDO_FILE_SYSTEMS.iter().any(|root| target.starts_with(root)) {
        return Err(not_regular(relative, "a kernel pseudo-file"));
    }
    let metadata = std::fs::metadata(&target)?;
    check_regular(relative, &metadata)?;
    check_size(relative, metadata.len())?;
    let file = std::fs::File::open(&target)?;
    // The file may have been replaced since the check; look at what was opened.
    let opened = file.metadata()?;
    check_regular(relative, &opened)?;
    let mut bytes = Vec::new();
    file.take(MAX_SCHEMA_BYTES + 1).read_to_end(&mut bytes)?;
    check_size(relative, bytes.len() as u64)?;
    String::from_utf8(bytes).map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidData, "not UTF-8 text"))
}

fn check_regular(relative: &str, metadata: &std::fs::Metadata) -> std::io::Result<()> {
    if metadata.is_file() {
        return Ok(());
    }
    let file_type = metadata.file_type();
    let kind = if file_type.is_dir() { "a directory" } else { special_kind(&file_type) };
    Err(not_regular(relative, kind))
}

#[cfg(unix)]
fn special_kind(file_type: &std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if file_type.is_fifo() {
        "a FIFO"
    } else if file_type.is_char_device() || file_type.is_block_device() {
        "a device"
    } else if file_type.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    }
}

#[cfg(not(unix))]
fn special_kind(_file_type: &std::fs::FileType) -> &'static str {
    "not a regular file"
}

fn not_regular(relative: &str, kind: &str) -> std::io::Error {
    refuse(
        codes::E0906,
        format!("schema file `{relative}` is {kind}"),
        "point `schema` at a JSON Schema document saved as a regular file",
    )
}

fn check_size(relative: &str, len: u64) -> std::io::Result<()> {
    if len <= MAX_SCHEMA_BYTES {
        return Ok(());
    }
    Err(refuse(
        codes::E0907,
        format!("schema file `{relative}` is larger than {} KiB", MAX_SCHEMA_BYTES / 1024),
        "a JSON Schema for one event type is a few kilobytes; check that `schema` names the right file",
    ))
}

/// The diagnostic for a schema file that was not read: the refusal's own code, or E0902 for an
/// I/O error. It names the path and the reason, never the file's content.
pub fn unread_schema_diagnostic(path: &str, error: &std::io::Error, span: Span) -> Diagnostic {
    match error.get_ref().and_then(|inner| inner.downcast_ref::<SchemaRefusal>()) {
        Some(refusal) => Diagnostic::new(refusal.code, refusal.message.clone())
            .primary(span, "referenced here")
            .help(refusal.help.clone()),
        None => {
            Diagnostic::new(codes::E0902, format!("cannot read `{path}`: {error}")).primary(span, "referenced here")
        }
    }
}

/// Keeps the diagnostics about the schema file (`schema_file`, with text `schema_text`) from
/// echoing more of it than the offending line: labels in it end at the end of their first
/// line, and when it is not JSON at all (a syntax error), only its first diagnostic stays, so a
/// file named by mistake is not printed line by line.
pub fn confine_schema_diagnostics(
    diagnostics: &mut Vec<Diagnostic>,
    schema_file: pulse_syntax::FileId,
    schema_text: &str,
) {
    let in_schema = |diagnostic: &Diagnostic| diagnostic.primary_span().is_some_and(|span| span.file == schema_file);
    let not_json = diagnostics.iter().any(|diagnostic| {
        in_schema(diagnostic) && matches!(diagnostic.code, codes::E0001 | codes::E0003) && diagnostic.is_error()
    });
    if not_json {
        let mut seen_one = false;
        diagnostics.retain(|diagnostic| {
            if !in_schema(diagnostic) {
                return true;
            }
            let keep = !seen_one;
            seen_one = true;
            keep
        });
    }
    for diagnostic in diagnostics.iter_mut() {
        for label in diagnostic.labels.iter_mut().filter(|label| label.span.file == schema_file) {
            let start = (label.span.start as usize).min(schema_text.len());
            let rest = schema_text.get(start..).unwrap_or_default();
            let line_end = rest.find('\n').map_or(start + rest.len(), |offset| start + offset);
            if (label.span.end as usize) > line_end {
                label.span = Span::new(schema_file, start, line_end.max(start));
            }
        }
    }
}
