//! Embeds the pages of `docs/errors/` and `docs/reference/operators/` so `pulsec explain CODE`
//! and `pulsec explain OPERATOR` work from any directory.

use std::fmt::Write as _;
use std::path::Path;

/// (file stem, absolute path) of every Markdown page of `dir`, sorted.
fn pages(dir: &Path) -> Vec<(String, String)> {
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut pages = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().and_then(|ext| ext.to_str()) == Some("md") {
                let stem = path.file_stem().and_then(|stem| stem.to_str()).unwrap_or_default().to_string();
                let absolute = path.canonicalize().expect("page path exists");
                pages.push((stem, absolute.display().to_string()));
            }
        }
    }
    pages.sort();
    pages
}

fn table(out: &mut String, doc: &str, name: &str, pages: &[(String, String)]) {
    writeln!(out, "/// {doc}\npub const {name}: &[(&str, &str)] = &[").expect("writing to a String");
    for (stem, path) in pages {
        writeln!(out, "    ({stem:?}, include_str!({path:?})),").expect("writing to a String");
    }
    out.push_str("];\n");
}

fn main() {
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let docs = Path::new(&manifest_dir).join("../../docs");
    let mut out = String::new();
    table(&mut out, "Error-code pages from `docs/errors/`, by code.", "PAGES", &pages(&docs.join("errors")));
    table(
        &mut out,
        "Operator pages from `docs/reference/operators/`, by operator type.",
        "OPERATOR_PAGES",
        &pages(&docs.join("reference/operators")),
    );
    let out_dir = std::env::var("OUT_DIR").expect("cargo sets OUT_DIR");
    std::fs::write(Path::new(&out_dir).join("pages.rs"), out).expect("OUT_DIR is writable");
}
