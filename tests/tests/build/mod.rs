//! Checking and building a pipeline into its release binary, shared by the end-to-end tests.
#![allow(dead_code)]

use pulsec::load::load_text;
use pulsec::native::{self, Profile};
use std::path::{Path, PathBuf};

/// Checks `text` (schema files resolved against `base`, if given) and builds it; panics with the
/// rendered diagnostics when it does not check or build.
pub fn build_text(name: &str, text: &str, base: Option<&Path>) -> PathBuf {
    let base = base.map(Path::to_path_buf);
    let read_schema = move |relative: &str| match &base {
        Some(base) => std::fs::read_to_string(base.join(relative)),
        None => Err(std::io::Error::new(std::io::ErrorKind::NotFound, "no schema files")),
    };
    let loaded = load_text(name, text.to_string(), &read_schema);
    let rendered = pulsec::render::human(&loaded.sources, &loaded.diagnostics, false);
    let pipeline = loaded.pipeline.clone().unwrap_or_else(|| panic!("{name} does not check:\n{rendered}"));
    native::build(&pipeline, name, Profile::Release, true, &|_| None)
        .unwrap_or_else(|diagnostics| panic!("{name}: build failed: {diagnostics:?}"))
        .binary
}

/// Builds `dir/pipeline.pulse`.
pub fn build_example(dir: &Path) -> PathBuf {
    let path = dir.join("pipeline.pulse");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
    build_text("pipeline.pulse", &text, Some(dir))
}
