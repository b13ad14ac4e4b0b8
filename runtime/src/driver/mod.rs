//! The driver: reads the sources round-robin (G31) on the logical arrival clock (G30), hands
//! each line to the pipeline, moves the watermark (G26) and fires timers (G27, G28, G35). Only
//! `run_with_args` is generic over the pipeline; the rest calls generated code through one
//! dynamic call per record, timer or response, so it is compiled once, in this crate.
//!
//! | module       | what it holds                                                              |
//! |--------------|----------------------------------------------------------------------------|
//! | `run`        | the entry points, signals and the stop watchdog, exit codes, the summary   |
//! | `error`      | `RunError`: how a run fails and the exit code it maps to                   |
//! | `context`    | `Context`, what generated code calls during a step; one `Route` per sink   |
//! | `setup`      | opening a run: sinks, producers, readers, then the step loop and the flush |
//! | `restore`    | the state directory, what a run resumes from, and checks of the resume     |
//! | `step`       | `Driver` and its loop: reading, stepping, timers, metrics                  |
//! | `checkpoint` | checkpoints: the progress record, Kafka commits, the changelog             |
//! | `savepoint`  | `savepoint create` and `bootstrap`                                         |
//! | `tasks`      | state that follows Kafka partitions: assignment, restore, shard timers     |

use std::time::Duration;

use crate::io::SourceReader;
use crate::kafka::KafkaReader;

mod checkpoint;
mod context;
mod error;
mod restore;
mod run;
mod savepoint;
mod setup;
mod step;
mod tasks;

pub use context::Context;
pub use run::{run, run_with_args, RunSummary};

/// The timers left pending by `--end-of-input keep`, inside `--output DIR`.
const PENDING_FILE: &str = "_pending.jsonl";

/// The memory backend's checkpoint file inside `--state-dir`.
const MEMORY_SNAPSHOT_FILE: &str = "memory.snapshot";

/// Checkpoint interval when neither the command line nor the pipeline sets one.
const DEFAULT_CHECKPOINT_INTERVAL_MS: u64 = 10_000;

/// The node name in the `pulse-id` of dead letters produced to Kafka.
const DEAD_LETTER_NODE: &str = "_dead_letter";

/// How long a Kafka source waits for a record when it is the only source with input left.
const KAFKA_IDLE_POLL: Duration = Duration::from_millis(100);

/// The prefix of a clock step line (`--clock-lines`, for `pulsec test`).
const CLOCK_LINE: &[u8] = b"#clock ";

/// The Kafka record a step's origin names: the record itself, or for a repartitioned record the
/// source record it copies.
fn origin_source(origin: &Origin) -> Option<(&str, &i32, &i64)> {
    match origin {
        Origin::Kafka { upstream: Some((topic, partition, offset)), .. } => Some((topic, partition, offset)),
        Origin::Kafka { topic, partition, offset, upstream: None } => Some((topic, partition, offset)),
        _ => None,
    }
}

/// The text naming a step's origin in record ids (`pulse-id`).
fn origin_text(origin: &Origin) -> String {
    match (origin, origin_source(origin)) {
        (_, Some((topic, partition, offset))) => format!("{topic}/{partition}/{offset}"),
        (Origin::Line { source, line }, _) => format!("{source}/{line}"),
        (Origin::Timer { sequence }, _) => format!("timer/{sequence}"),
        (Origin::Kafka { .. }, None) => unreachable!("a Kafka origin has a source record"),
    }
}

/// Where the current step's records come from: names the `pulse-id` of Kafka output.
#[derive(Clone, Debug)]
enum Origin {
    Line {
        source: usize,
        line: u64,
    },
    /// `upstream`: the source record a repartitioned record copies.
    Kafka {
        topic: std::sync::Arc<str>,
        partition: i32,
        offset: i64,
        upstream: Option<(String, i32, i64)>,
    },
    Timer {
        sequence: u64,
    },
}

/// One source's reader.
enum Reader {
    Lines(SourceReader),
    Kafka(Box<KafkaReader>),
}
