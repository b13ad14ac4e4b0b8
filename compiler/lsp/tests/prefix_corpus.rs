//! Every prefix of every example, cut at each line, as a file being typed from the top: every
//! feature answers without panicking, and the diagnostics of the items before the one being
//! typed are those of the complete file (a half-typed item costs only itself).

use lsp_types::Url;
use pulse_lsp::analysis::{analyze, Analysis};
use pulse_lsp::line_index::LineIndex;
use pulse_lsp::{
    code_actions, completion, definition, diagnostics, hover, rename, semantic_tokens, signature_help, symbols,
};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

/// Diagnostics that depend on what comes later in the file, so a prefix may have them in items
/// the complete file has none in: a node whose edges or consumers are not written yet, a node
/// named by an edge but declared further down, a pipeline whose source is declared below.
const WHOLE_FILE_CODES: &[&str] = &["E0202", "E0402", "E0407", "W0002"];

fn examples() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&root)
        .expect("the examples directory")
        .filter_map(|entry| Some(entry.ok()?.path().join("pipeline.pulse")))
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    assert!(files.len() >= 10, "examples found: {files:?}");
    files
}

fn analyze_in(dir: &Path, name: &str, text: &str) -> Analysis {
    let read_schema = |relative: &str| std::fs::read_to_string(dir.join(relative));
    analyze(name, text.to_string(), &read_schema)
}

/// The byte offsets where top-level items start: lines that begin with a letter, digit, `_` or `-`.
fn item_starts(text: &str) -> Vec<usize> {
    let mut starts = Vec::new();
    let mut line_start = 0;
    for line in text.split_inclusive('\n') {
        if line.starts_with(|ch: char| ch.is_ascii_alphanumeric() || ch == '_' || ch == '-') {
            starts.push(line_start);
        }
        line_start += line.len();
    }
    starts
}

/// Runs every feature on `analysis` at `offsets`.
fn exercise(analysis: &Analysis, last_good: Option<&Analysis>, offsets: &[usize]) {
    let text = analysis.text();
    let uri = Url::parse("file:///examples/pipeline.pulse").expect("url");
    let index = LineIndex::new(text);
    diagnostics::to_lsp(analysis, &uri, &index, &|_| None, None);
    symbols::symbols(analysis);
    semantic_tokens::encode(&semantic_tokens::tokens(analysis), &index);
    for &offset in offsets {
        hover::hover(analysis, last_good, offset);
        definition::definition(analysis, offset);
        completion::complete(analysis, last_good, offset);
        signature_help::signature_help(analysis, offset);
        rename::declaration_first(analysis, offset);
        code_actions::quick_fixes(analysis, offset..offset);
    }
}

/// Checks every prefix of the example at `path`: the number of prefixes, and what went wrong.
fn check_example(path: &Path) -> (usize, Vec<String>) {
    let mut failures: Vec<String> = Vec::new();
    let mut n_prefixes = 0;
    let dir = path.parent().expect("an example directory");
    let name = path.display().to_string();
    let full_text = std::fs::read_to_string(path).expect("the example reads");
    let full = analyze_in(dir, &name, &full_text);
    let full_diagnostics: Vec<String> = full.diagnostics.iter().map(|d| format!("{d:?}")).collect();
    let mut cut = 0;
    let mut last_good: Option<Analysis> = None;
    for line in full_text.split_inclusive('\n') {
        cut += line.len();
        n_prefixes += 1;
        let prefix = &full_text[..cut];
        let line_number = prefix.matches('\n').count();
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            let analysis = analyze_in(dir, &name, prefix);
            // Where the cursor is (the end), and the start, middle and end of each line of the
            // item being typed.
            let starts = item_starts(prefix);
            let item_start = starts.last().copied().unwrap_or(0);
            let mut offsets = vec![cut];
            let mut line_start = item_start;
            for line in prefix[item_start..].split_inclusive('\n') {
                let middle = (line_start..line_start + line.len())
                    .find(|&at| at >= line_start + line.len() / 2 && prefix.is_char_boundary(at));
                offsets.extend([Some(line_start), middle, Some(line_start + line.trim_end().len())].iter().flatten());
                line_start += line.len();
            }
            exercise(&analysis, last_good.as_ref(), &offsets);
            (analysis, item_start)
        }));
        let Ok((analysis, item_start)) = outcome else {
            failures.push(format!("{name}: a feature panicked on the prefix of {line_number} lines"));
            continue;
        };
        for diagnostic in &analysis.diagnostics {
            let before = diagnostic
                .primary_span()
                .is_some_and(|span| (span.start as usize) < item_start && (span.end as usize) <= item_start);
            let whole_file = WHOLE_FILE_CODES.contains(&diagnostic.code.as_str());
            if before && !whole_file && !full_diagnostics.contains(&format!("{diagnostic:?}")) {
                failures.push(format!(
                    "{name}, prefix of {line_number} lines: {} `{}` before the item being typed, not in the complete file",
                    diagnostic.code.as_str(),
                    diagnostic.message
                ));
            }
        }
        if analysis.document.is_some() {
            last_good = Some(analysis);
        }
    }
    (n_prefixes, failures)
}

#[test]
fn every_prefix_of_every_example() {
    let started = Instant::now();
    let examples = examples();
    let next = AtomicUsize::new(0);
    let n_workers = std::thread::available_parallelism().map_or(1, usize::from).min(4);
    // The examples are shared out among a few threads: the analyses are independent.
    let results: Vec<(usize, Vec<String>)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..n_workers)
            .map(|_| {
                scope.spawn(|| {
                    let mut results = Vec::new();
                    while let Some(path) = examples.get(next.fetch_add(1, Ordering::Relaxed)) {
                        results.push(check_example(path));
                    }
                    results
                })
            })
            .collect();
        workers.into_iter().flat_map(|worker| worker.join().expect("a worker thread")).collect()
    });
    let n_prefixes: usize = results.iter().map(|(n, _)| n).sum();
    let failures: Vec<&String> = results.iter().flat_map(|(_, failures)| failures).collect();
    let elapsed = started.elapsed();
    eprintln!("{n_prefixes} prefixes of {} examples in {:.2} s", examples.len(), elapsed.as_secs_f64());
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.iter().map(|f| f.as_str()).collect::<Vec<_>>().join("\n")
    );
    // A debug build runs it in a few seconds; much more means a feature went quadratic.
    assert!(elapsed.as_secs() < 60, "{n_prefixes} prefixes took {elapsed:?}");
}
