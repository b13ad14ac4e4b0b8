//! What a checkpoint was taken from, and the checks that a resume continues the same run.
//!
//! A checkpoint holds committed output lengths and source positions. Applied to another run
//! they are silently wrong: a resume that spells `--output` differently would start fresh files
//! and leave the committed ones behind, and a different input would be read from the middle. So
//! a checkpoint records the identity of its run, and a resume that does not match it is refused
//! with a usage error that says what differs and how to proceed:
//!
//! - the pipeline's name (a state directory holds one pipeline's checkpoints);
//! - every output file by its canonical path, so `out`, `./out` and `/abs/out` are one output;
//! - every file input by its canonical path and a hash of its first and last committed bytes
//!   ([`InputIdentity`]), so a different or shorter file is recognised without reading it all.
//!
//! A file input that moved but kept its bytes is accepted: the bytes are what the positions
//! describe. Standard input and Kafka carry no identity (Kafka positions are per partition).

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use pulse_stdlib::progress::{fnv1a, InputIdentity};

/// The name a checkpoint records for an output file: absolute, with the symbolic links, `.` and
/// `..` of its directory resolved.
pub fn output_identity(path: &Path) -> String {
    canonical(path).display().to_string()
}

/// `path` made absolute, with its directory resolved when it exists (the file itself may not).
fn canonical(path: &Path) -> PathBuf {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    if let Ok(resolved) = absolute.canonicalize() {
        return resolved;
    }
    match (absolute.parent(), absolute.file_name()) {
        (Some(dir), Some(name)) => dir.canonicalize().map_or(absolute.clone(), |dir| dir.join(name)),
        _ => absolute,
    }
}

/// The identity of the first `offset` bytes of the file input at `path`, open as `file`.
pub fn input_identity(file: &File, path: &str, offset: u64) -> io::Result<InputIdentity> {
    let sample = |start: u64| -> io::Result<u64> {
        let mut bytes = vec![0; (offset - start).min(InputIdentity::SAMPLE) as usize];
        file.read_exact_at(&mut bytes, start)?;
        Ok(fnv1a(&bytes))
    };
    Ok(InputIdentity {
        path: canonical(Path::new(path)).display().to_string(),
        head: sample(0)?,
        tail: sample(offset.saturating_sub(InputIdentity::SAMPLE))?,
    })
}

/// Why a checkpoint cannot be resumed with this run's inputs, outputs or pipeline.
#[derive(Debug, thiserror::Error)]
pub enum ResumeError {
    #[error("cannot open input `{path}` of source `{node}`: {error}")]
    Open { path: String, node: String, error: io::Error },
    #[error("cannot read input `{path}` of source `{node}`: {error}")]
    Read { path: String, node: String, error: io::Error },
    #[error(
        "input `{path}` of source `{node}` has {size} bytes, but the checkpoint already consumed {offset}{was}: \
         resume with the input the checkpoint read, or start over with a new --state-dir"
    )]
    Shorter { path: String, node: String, size: u64, offset: u64, was: ReadFrom },
    #[error(
        "input `{path}` of source `{node}` is not the input the checkpoint read{was}: its {part} committed bytes \
         differ; resume with that input (appending to it is fine), or start over with a new --state-dir"
    )]
    Changed { path: String, node: String, part: &'static str, was: ReadFrom },
    #[error(
        "the checkpoint in `{}` wrote committed output to `{missing}`, but {now}: resume with the same --output \
         (any spelling of the same directory works), or start over with a new --state-dir",
        state_dir.display()
    )]
    Outputs { state_dir: PathBuf, missing: String, now: String },
    #[error(
        "state directory `{}` holds a checkpoint of pipeline `{recorded}`, not `{pipeline}`: give this pipeline its \
         own --state-dir (to carry state over, take a savepoint of `{recorded}` and restore it with --from-savepoint)",
        state_dir.display()
    )]
    Pipeline { state_dir: PathBuf, recorded: String, pipeline: String },
}

/// The path the checkpoint read an input from, when it is not the path given now: shown as
/// ` (it read `PATH`)` after the input.
#[derive(Debug)]
pub struct ReadFrom(Option<String>);

impl std::fmt::Display for ReadFrom {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Some(path) => write!(f, " (it read `{path}`)"),
            None => Ok(()),
        }
    }
}

/// A file input of the resumed run: whether it is the one the checkpoint read up to `offset`.
pub fn check_input(source: &str, path: &str, offset: u64, recorded: &InputIdentity) -> Result<(), ResumeError> {
    let (owned_path, node) = (path.to_string(), source.to_string());
    let file =
        File::open(path).map_err(|error| ResumeError::Open { path: owned_path.clone(), node: node.clone(), error })?;
    let read = |error| ResumeError::Read { path: owned_path.clone(), node: node.clone(), error };
    let size = file.metadata().map_err(read)?.len();
    let moved = recorded.path != canonical(Path::new(path)).display().to_string();
    let was = || ReadFrom(moved.then(|| recorded.path.clone()));
    if size < offset {
        return Err(ResumeError::Shorter { path: owned_path, node, size, offset, was: was() });
    }
    let found = input_identity(&file, path, offset).map_err(read)?;
    if (found.head, found.tail) != (recorded.head, recorded.tail) {
        let part = if found.head != recorded.head { "first" } else { "last" };
        return Err(ResumeError::Changed { path: owned_path, node, part, was: was() });
    }
    if moved {
        tracing::info!(source, "input `{path}` holds the bytes the checkpoint read from `{}`", recorded.path);
    }
    Ok(())
}

/// The outputs of the resumed run: every directory the checkpoint wrote committed output to must
/// be one this run writes to, or that output would be left behind (and the new files would miss
/// it). Files of sinks that no longer exist may be missing; new files may appear.
pub fn check_outputs(recorded: &[(String, u64)], outputs: &[String], state_dir: &Path) -> Result<(), ResumeError> {
    let dir_of = |path: &str| Path::new(path).parent().map(Path::to_path_buf);
    let dirs: Vec<PathBuf> = outputs.iter().filter_map(|path| dir_of(path)).collect();
    let Some((missing, _)) = recorded
        .iter()
        .find(|(path, _)| !outputs.contains(path) && dir_of(path).is_none_or(|dir| !dirs.contains(&dir)))
    else {
        return Ok(());
    };
    let now = if outputs.is_empty() {
        "this run writes no output file".to_string()
    } else {
        let now: std::collections::BTreeSet<String> = dirs.iter().map(|dir| format!("`{}`", dir.display())).collect();
        format!("this run writes to {}", now.into_iter().collect::<Vec<_>>().join(", "))
    };
    Err(ResumeError::Outputs { state_dir: state_dir.to_path_buf(), missing: missing.clone(), now })
}

/// The pipeline of a state directory's checkpoint must be this one.
pub fn check_pipeline(recorded: &str, pipeline: &str, state_dir: &Path) -> Result<(), ResumeError> {
    if recorded == pipeline {
        return Ok(());
    }
    Err(ResumeError::Pipeline {
        state_dir: state_dir.to_path_buf(),
        recorded: recorded.to_string(),
        pipeline: pipeline.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("pulse-resume-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch directory");
        dir
    }

    #[test]
    fn one_output_under_every_spelling() {
        let dir = scratch("spelling");
        std::fs::create_dir_all(dir.join("out")).expect("out");
        let plain = output_identity(&dir.join("out/a.jsonl"));
        assert_eq!(output_identity(&dir.join("./out/a.jsonl")), plain);
        assert_eq!(output_identity(&dir.join("out/../out/a.jsonl")), plain);
        std::os::unix::fs::symlink(dir.join("out"), dir.join("link")).expect("symlink");
        assert_eq!(output_identity(&dir.join("link/a.jsonl")), plain);
        assert!(Path::new(&plain).is_absolute());
        assert_ne!(output_identity(&dir.join("other/a.jsonl")), plain);
    }

    #[test]
    fn outputs_in_another_directory_are_refused() {
        let recorded = vec![("/x/out/a.jsonl".to_string(), 10), ("/x/out/gone.jsonl".to_string(), 5)];
        let same = vec!["/x/out/a.jsonl".to_string(), "/x/out/new.jsonl".to_string()];
        assert!(check_outputs(&recorded, &same, Path::new("s")).is_ok());
        let moved = vec!["/y/out/a.jsonl".to_string()];
        let error = check_outputs(&recorded, &moved, Path::new("s")).expect_err("another directory").to_string();
        assert!(error.contains("`/x/out/a.jsonl`") && error.contains("`/y/out`"), "{error}");
        let error = check_outputs(&recorded, &[], Path::new("s")).expect_err("no output").to_string();
        assert!(error.contains("writes no output file"), "{error}");
        assert!(check_outputs(&[], &moved, Path::new("s")).is_ok());
    }

    #[test]
    fn an_input_is_recognised_by_its_committed_bytes() {
        let dir = scratch("inputs");
        let path = dir.join("in.jsonl");
        let text: String = (0..2000).map(|n| format!("{{\"n\":{n}}}\n")).collect();
        std::fs::write(&path, &text).expect("input");
        let path = path.to_str().expect("utf-8 path").to_string();
        let offset = (text.len() / 2) as u64;
        let file = File::open(&path).expect("open");
        let identity = input_identity(&file, &path, offset).expect("identity");

        // The same file, and the same file grown: accepted.
        assert!(check_input("src", &path, offset, &identity).is_ok());
        std::fs::write(&path, format!("{text}{{\"n\":-1}}\n")).expect("append");
        assert!(check_input("src", &path, offset, &identity).is_ok());
        // The same bytes elsewhere: accepted.
        let copy = dir.join("copy.jsonl");
        std::fs::copy(&path, &copy).expect("copy");
        assert!(check_input("src", copy.to_str().expect("utf-8"), offset, &identity).is_ok());
        // Shorter, changed at the start, changed just before the offset: refused.
        std::fs::write(&path, &text[..offset as usize - 1]).expect("truncate");
        let error = check_input("src", &path, offset, &identity).expect_err("shorter").to_string();
        assert!(error.contains("already consumed"), "{error}");
        std::fs::write(&path, text.replacen("{\"n\":0}", "{\"n\":9}", 1)).expect("edit head");
        assert!(check_input("src", &path, offset, &identity)
            .expect_err("head")
            .to_string()
            .contains("first committed bytes"));
        let mut edited = text.clone().into_bytes();
        edited[offset as usize - 3] ^= 1;
        std::fs::write(&path, &edited).expect("edit tail");
        assert!(check_input("src", &path, offset, &identity)
            .expect_err("tail")
            .to_string()
            .contains("last committed bytes"));
    }

    #[test]
    fn a_state_directory_belongs_to_one_pipeline() {
        assert!(check_pipeline("a", "a", Path::new("s")).is_ok());
        let error = check_pipeline("welcome", "cart", Path::new("s")).expect_err("another pipeline").to_string();
        assert!(error.contains("pipeline `welcome`, not `cart`"), "{error}");
    }
}
