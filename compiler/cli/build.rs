//! Embeds the pages of `docs/errors/` so `pulsec explain CODE` works from any directory.

use std::fmt::Write as _;
use std::path::Path;

fn main() {
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let pages_dir = Path::new(&manifest_dir).join("../../docs/errors");
    println!("cargo:rerun-if-changed={}", pages_dir.display());
    let mut pages: Vec<(String, String)> = Vec::new();
    if let Ok(entries) = std::fs::read_dir(&pages_dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().and_then(|ext| ext.to_str()) == Some("md") {
                let code = path.file_stem().and_then(|stem| stem.to_str()).unwrap_or_default().to_string();
                let absolute = path.canonicalize().expect("page path exists");
                pages.push((code, absolute.display().to_string()));
            }
        }
    }
    pages.sort();
    let mut out =
        String::from("/// Error-code pages from `docs/errors/`, by code.\npub const PAGES: &[(&str, &str)] = &[\n");
    for (code, path) in &pages {
        writeln!(out, "    ({code:?}, include_str!({path:?})),").expect("writing to a String");
    }
    out.push_str("];\n");
    let out_dir = std::env::var("OUT_DIR").expect("cargo sets OUT_DIR");
    std::fs::write(Path::new(&out_dir).join("pages.rs"), out).expect("OUT_DIR is writable");
}
