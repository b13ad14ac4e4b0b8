//! `pulsec diff`: upgrade safety. Compares the keyed state of an old pipeline (`diff OLD NEW`)
//! or of a savepoint (`diff --against SAVEPOINT NEW`) with a new pipeline's and reports, per
//! stateful node, whether restoring keeps its state (`kept`), drops it (`dropped`: the node was
//! removed or renamed), cannot restore it (`incompatible`: its state layout changed, or it no
//! longer keeps state) or starts it empty (`new`). The report is `pulse_stdlib::progress`'s,
//! the same a pipeline binary prints when it refuses a savepoint or checkpoint.
//!
//! Exit codes: 0 compatible (dropped and new nodes included), 4 (`EXIT_INCOMPATIBLE`) when a
//! node's state is incompatible, so CI can gate a deploy on it; 1 when a pipeline file has
//! errors (reported as `check` does); 2 usage errors, including an unreadable or corrupt
//! savepoint.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use pulse_ir::Pipeline;
use pulse_stdlib::progress::{compare_state, read_savepoint_progress, StateChange, StateReport};

use super::load::Loaded;
use super::{load_checked, MessageFormat, EXIT_ERRORS, EXIT_INCOMPATIBLE, EXIT_USAGE};

/// The state side of one version: (node id, layout) of its stateful nodes and all node ids.
struct StateSide {
    pipeline: String,
    layouts: Vec<(String, String)>,
    nodes: Vec<String>,
}

impl StateSide {
    fn of_pipeline(pipeline: &Pipeline) -> StateSide {
        StateSide {
            pipeline: pipeline.name.clone(),
            layouts: pipeline
                .nodes
                .iter()
                .filter_map(|node| Some((node.id.clone(), pulse_codegen::state_layout(&node.op)?)))
                .collect(),
            nodes: pipeline.nodes.iter().map(|node| node.id.clone()).collect(),
        }
    }
}

/// `pulsec diff OLD NEW` or `pulsec diff --against SAVEPOINT NEW`.
pub(crate) fn diff(files: &[PathBuf], against: Option<&Path>, format: MessageFormat) -> ExitCode {
    let of_loaded =
        |loaded: Loaded| StateSide::of_pipeline(loaded.pipeline.as_ref().expect("a checked file has a pipeline"));
    let (old, new_file) = match (against, files) {
        (Some(savepoint), [new_file]) => match read_savepoint(savepoint) {
            Ok(side) => (Some(side), new_file),
            Err(message) => {
                eprintln!("error: {message}");
                return ExitCode::from(EXIT_USAGE);
            }
        },
        (None, [old_file, new_file]) => (load_checked(old_file, format).map(of_loaded), new_file),
        _ => {
            eprintln!("error: give the OLD and NEW pipeline files, or `--against SAVEPOINT` and the NEW file");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    // Both files are checked before giving up, so every error is reported in one run.
    let new = load_checked(new_file, format).map(of_loaded);
    let (Some(old), Some(new)) = (old, new) else { return ExitCode::from(EXIT_ERRORS) };

    let report = compare_state(&old.layouts, &old.nodes, &new.layouts, &new.nodes);
    match format {
        MessageFormat::Json => println!("{}", report_json(&report)),
        MessageFormat::Human => {
            if against.is_some() && old.pipeline != new.pipeline {
                eprintln!("note: the savepoint was taken from pipeline `{}`, not `{}`", old.pipeline, new.pipeline);
            }
            print_human(&report);
        }
    }
    if report.is_compatible() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_INCOMPATIBLE)
    }
}

/// The stateful nodes recorded in a savepoint (or a memory backend's `memory.snapshot`).
fn read_savepoint(path: &Path) -> Result<StateSide, String> {
    let bytes = std::fs::read(path).map_err(|error| format!("cannot read savepoint `{}`: {error}", path.display()))?;
    let progress =
        read_savepoint_progress(&bytes).map_err(|error| format!("savepoint `{}`: {error}", path.display()))?;
    Ok(StateSide { pipeline: progress.pipeline, layouts: progress.layouts, nodes: progress.nodes })
}

fn print_human(report: &StateReport) {
    if report.nodes.is_empty() {
        println!("no node keeps state in either version");
        return;
    }
    println!("{report}");
    let counts =
        format!("{} kept, {} dropped, {} new", report.count("kept"), report.count("dropped"), report.count("new"));
    if report.is_compatible() {
        println!("compatible: {counts}");
    } else {
        println!("incompatible: {} incompatible, {counts}", report.count("incompatible"));
    }
    // A rename shows as a dropped and a new node with the same layout; say what that costs.
    for dropped in &report.nodes {
        let StateChange::Dropped { layout } = &dropped.change else { continue };
        let renamed = report
            .nodes
            .iter()
            .find(|node| matches!(&node.change, StateChange::New { layout: new, .. } if new == layout));
        if let Some(renamed) = renamed {
            eprintln!(
                "note: if `{}` was renamed to `{}`, its state is dropped: state is keyed by node id; keep the old id to keep it",
                dropped.node, renamed.node
            );
        }
    }
    if !report.is_compatible() {
        eprintln!(
            "help: an incompatible node's state cannot be restored; keep its layout, or give the changed node a new id to start it empty"
        );
    }
}

/// `{"compatible": bool, "nodes": [{"node", "status", "old_layout", "new_layout"}]}`; a side
/// without state has a null layout.
fn report_json(report: &StateReport) -> serde_json::Value {
    let nodes: Vec<serde_json::Value> = report
        .nodes
        .iter()
        .map(|node| {
            serde_json::json!({
                "node": node.node,
                "status": node.status(),
                "old_layout": node.old_layout(),
                "new_layout": node.new_layout(),
            })
        })
        .collect();
    serde_json::json!({ "compatible": report.is_compatible(), "nodes": nodes })
}
