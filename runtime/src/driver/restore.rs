//! Opening the state directory and reading what a run resumes from (its own checkpoint or a
//! savepoint), checking that the resume matches this pipeline, inputs and outputs, and loading
//! it into the context (`Restart`).

use crate::keys::{seed_key, state_key, timer_key, PROGRESS_KEY};
use std::path::Path;

use super::checkpoint::Durable;
use super::context::Context;
use super::error::RunError;
use super::run::Def;
use super::savepoint::read_rocks_timers;
use super::Reader;
use super::MEMORY_SNAPSHOT_FILE;
use crate::checkpoint::{Progress, Snapshot, TimerRecord};
use crate::cli::{Destination, Input, RunOptions};
use crate::resume;

use crate::state::{RocksStore, StateBackend};

use crate::timers::{shard_of, SourceWatermarks};
use crate::PipelineSpec;
use crate::SourceSpec;
use pulse_stdlib::state::Store;
use rocksdb::WriteBatch;
use std::collections::HashMap;

/// What a run resumes from.
pub(super) struct Resume {
    pub(super) progress: Progress,
    pub(super) timers: Vec<(u64, TimerRecord)>,
    /// Entries to load into the backend (memory snapshots and savepoints; RocksDB keeps its own).
    pub(super) entries: Vec<(String, Vec<u8>, Vec<u8>)>,
    /// (index in `entries`, shard) of the entries of a partition's shard (see `Snapshot`).
    pub(super) shards: Vec<(usize, u32)>,
    /// (shard, next timer counter) of partitions' shards (see `Snapshot::counters`).
    pub(super) counters: Vec<(u32, u64)>,
    pub(super) from_savepoint: bool,
}

/// Opens the state directory (if any) and reads what the run resumes from.
pub(super) fn open_state(
    def: &'static Def,
    options: &RunOptions,
) -> Result<(StateBackend, Option<Durable>, Option<Resume>), RunError> {
    let spec = &def.spec;
    let savepoint = match &options.from_savepoint {
        Some(path) => {
            let bytes = std::fs::read(path)
                .map_err(|error| RunError::Usage(format!("cannot read savepoint `{}`: {error}", path.display())))?;
            let mut snapshot = Snapshot::decode(&bytes)
                .map_err(|error| RunError::Usage(format!("savepoint `{}`: {error}", path.display())))?;
            // Every checkpoint of this run names the savepoint it descends from.
            snapshot.progress.origin = Some(pulse_stdlib::progress::fnv1a(&bytes));
            if snapshot.progress.pipeline != spec.name {
                tracing::warn!("the savepoint was taken from pipeline `{}`", snapshot.progress.pipeline);
            }
            Some(Resume {
                progress: snapshot.progress,
                timers: snapshot.timers,
                entries: snapshot.entries,
                shards: snapshot.shards,
                counters: snapshot.counters,
                from_savepoint: true,
            })
        }
        None => None,
    };
    let Some(dir) = &options.state_dir else {
        return Ok((StateBackend::memory(), None, savepoint));
    };
    std::fs::create_dir_all(dir)
        .map_err(|error| RunError::Io(format!("cannot create state directory `{}`: {error}", dir.display())))?;
    let memory_file = dir.join(MEMORY_SNAPSHOT_FILE);
    let holds_rocks = dir.join("CURRENT").is_file();
    // A checkpoint and --from-savepoint: a restart of a run started from that savepoint (a pod
    // restarted with the arguments it was deployed with) continues from the checkpoint, as
    // Flink ignores the savepoint path once checkpoints exist; any other checkpoint is refused.
    let savepoint_origin = savepoint.as_ref().and_then(|resume| resume.progress.origin);
    let check_lineage = |origin: Option<u64>| -> Result<(), RunError> {
        let (Some(wanted), Some(path)) = (savepoint_origin, &options.from_savepoint) else {
            return Ok(());
        };
        if origin == Some(wanted) {
            tracing::info!(
                "state directory `{}` holds a checkpoint of the run started from savepoint `{}`: continuing from \
                 the checkpoint (--from-savepoint applies to the first start only)",
                dir.display(),
                path.display()
            );
            return Ok(());
        }
        Err(RunError::Usage(format!(
            "state directory `{}` already holds a checkpoint that does not descend from savepoint `{}`: restore the \
             savepoint into a new --state-dir, or drop --from-savepoint to continue from the checkpoint",
            dir.display(),
            path.display()
        )))
    };
    if spec.state_backend_memory {
        if holds_rocks {
            return Err(RunError::Usage(format!(
                "state directory `{}` holds RocksDB state, but this pipeline uses stateBackend \"memory\"",
                dir.display()
            )));
        }
        let resume = if memory_file.is_file() {
            let bytes = std::fs::read(&memory_file)
                .map_err(|error| RunError::Io(format!("cannot read `{}`: {error}", memory_file.display())))?;
            let snapshot = Snapshot::decode(&bytes)
                .map_err(|error| RunError::Io(format!("`{}`: {error}", memory_file.display())))?;
            resume::check_pipeline(&snapshot.progress.pipeline, spec.name, dir)?;
            check_lineage(snapshot.progress.origin)?;
            Some(Resume {
                progress: snapshot.progress,
                timers: snapshot.timers,
                entries: snapshot.entries,
                shards: snapshot.shards,
                counters: snapshot.counters,
                from_savepoint: false,
            })
        } else {
            savepoint
        };
        return Ok((StateBackend::memory(), Some(Durable::MemoryFile(memory_file)), resume));
    }
    if memory_file.is_file() {
        return Err(RunError::Usage(format!(
            "state directory `{}` holds memory-backend state, but this pipeline uses RocksDB",
            dir.display()
        )));
    }
    let store = RocksStore::open(dir)?;
    let committed = store.db().get(PROGRESS_KEY).map_err(|error| RunError::Io(error.to_string()))?;
    let resume = match committed {
        Some(bytes) => {
            let progress = Progress::from_bytes(&bytes)
                .map_err(|error| RunError::Io(format!("corrupt checkpoint in `{}`: {error}", dir.display())))?;
            resume::check_pipeline(&progress.pipeline, spec.name, dir)?;
            check_lineage(progress.origin)?;
            let timers = read_rocks_timers(store.db())?;
            Some(Resume {
                progress,
                timers,
                entries: Vec::new(),
                shards: Vec::new(),
                counters: Vec::new(),
                from_savepoint: false,
            })
        }
        None => savepoint,
    };
    Ok((StateBackend::rocks(store), Some(Durable::Rocks), resume))
}

/// Refuses a resume whose inputs or outputs are not the checkpoint's (see `resume`). Outputs
/// are checked for a state directory's own checkpoint only: a savepoint starts new outputs.
pub(super) fn check_resumed_run(
    resume: &Resume,
    options: &RunOptions,
    sources: &[SourceSpec],
    inputs: &[Input],
    sinks: &[Destination],
    dead_letters: &Destination,
) -> Result<(), resume::ResumeError> {
    for (source, input) in sources.iter().zip(inputs) {
        let Input::Path(path) = input else { continue };
        let position = resume.progress.sources.iter().find(|position| position.node == source.node);
        if let (Some(position), false) = (position, path == "-") {
            if let Some(recorded) = &position.input {
                resume::check_input(source.node, path, position.offset, recorded)?;
            }
        }
    }
    if !resume.from_savepoint {
        let state_dir = options.state_dir.as_deref().unwrap_or(Path::new("."));
        let mut files: Vec<String> = sinks
            .iter()
            .chain([dead_letters])
            .filter_map(|destination| match destination {
                Destination::File(path) => Some(resume::output_identity(path)),
                _ => None,
            })
            .collect();
        if let Some(dir) = &options.output {
            files.push(resume::output_identity(&dir.join("_")));
        }
        resume::check_outputs(&resume.progress.outputs, &files, state_dir)?;
    }
    Ok(())
}

/// Where the step loop starts: the sources' positions and event-time progress, and the run's
/// counters. From the start of the input, or from what a checkpoint or savepoint recorded.
pub(super) struct Restart {
    pub(super) watermarks: SourceWatermarks,
    /// Per source: (bytes consumed, lines consumed).
    pub(super) positions: Vec<(u64, u64)>,
    /// Per source: its input ended.
    pub(super) finished: Vec<bool>,
    pub(super) records_read: u64,
    pub(super) blank_lines: u64,
    pub(super) next_arrival: i64,
}

impl Restart {
    /// The start of the input.
    pub(super) fn begin(spec: &PipelineSpec) -> Restart {
        Restart {
            watermarks: SourceWatermarks::new(spec.sources.iter().map(|source| source.max_out_of_orderness).collect()),
            positions: vec![(0, 0); spec.sources.len()],
            finished: vec![false; spec.sources.len()],
            records_read: 0,
            blank_lines: 0,
            next_arrival: 0,
        }
    }

    /// Resumes from `resume`: skips each file input to its committed position, restores the
    /// clocks, counters, timers and (for memory snapshots and savepoints) state entries, except
    /// those of `dropped_nodes`. With `seeding` (a savepoint loaded where state follows
    /// partitions), a savepoint's entries and timers of a partition's shard wait as seeds until
    /// this instance owns the partition (`restore_partitions`): its first changelog batch hands
    /// them to whichever instance owns it later.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn resume(
        mut self,
        spec: &PipelineSpec,
        input_paths: &[Input],
        resume: Resume,
        readers: &mut [Reader],
        cx: &mut Context,
        dropped_nodes: &[String],
        seeding: bool,
    ) -> Result<Restart, RunError> {
        let progress = &resume.progress;
        for (index, source) in spec.sources.iter().enumerate() {
            let Some(position) = progress.sources.iter().find(|position| position.node == source.node) else {
                continue;
            };
            if let Reader::Lines(reader) = &mut readers[index] {
                reader.skip(position.offset).map_err(|error| {
                    RunError::Io(format!(
                        "cannot resume input `{}` of source `{}`: {error}",
                        input_paths[index].label(),
                        source.node
                    ))
                })?;
            }
            self.positions[index] = (position.offset, position.lines);
            if position.max_event_time != i64::MIN {
                self.watermarks.observe(index, position.max_event_time);
            }
            // A file ends for good; a topic read `--until-end` only ended for that run, and a
            // restart reads what arrived since.
            if position.finished && input_paths[index] != Input::Kafka {
                self.watermarks.finish(index);
                self.finished[index] = true;
            }
        }
        self.records_read = progress.records_read;
        self.blank_lines = progress.blank_lines;
        self.next_arrival = progress.next_arrival;
        cx.arrival = progress.arrival;
        for (sink, count) in spec.sinks.iter().zip(&mut cx.sink_counts) {
            *count = progress.sink_counts.iter().find(|(node, _)| node == sink.node).map_or(0, |(_, count)| *count);
        }
        for (node, count) in spec.nodes.iter().zip(&mut cx.dropped_per_node) {
            *count = progress.dropped_per_node.iter().find(|(known, _)| known == node).map_or(0, |(_, count)| *count);
        }
        cx.dead_letter_count = progress.dead_letters;
        cx.dropped_count = progress.dropped;
        // With state following partitions, a savepoint's entries and timers of a partition's
        // shard wait as seeds until this instance owns the partition (`restore_partitions`):
        // its first changelog batch hands them to whichever instance owns it later.
        let mut seeds = WriteBatch::default();
        let mut encoded = Vec::new();
        for (sequence, record) in resume.timers {
            if seeding && shard_of(sequence) != 0 {
                encoded.clear();
                record.encode(&mut encoded);
                seeds.put(timer_key(sequence), &encoded);
            }
            if let Some(timer) = record.into_timer(spec.nodes) {
                cx.timers.restore(sequence, timer, progress.next_timer_sequence);
            }
        }
        for (shard, counter) in resume.counters {
            cx.timers.set_shard_counter(shard, counter);
        }
        let shards: HashMap<usize, u32> = resume.shards.into_iter().collect();
        let mut key = Vec::new();
        for (index, (node, user_key, value)) in resume.entries.into_iter().enumerate() {
            if dropped_nodes.contains(&node) {
                continue;
            }
            match shards.get(&index) {
                Some(shard) if seeding && *shard != 0 => {
                    state_key(&mut key, &node, &user_key);
                    seeds.put(seed_key(*shard as i32 - 1, &key), value);
                }
                _ => cx.state.put(&node, &user_key, value),
            }
        }
        if let (false, StateBackend::Rocks(store)) = (seeds.is_empty(), &cx.state) {
            store.db().write(seeds).map_err(|error| RunError::Io(format!("writing the savepoint's seeds: {error}")))?;
        }
        Ok(self)
    }
}
