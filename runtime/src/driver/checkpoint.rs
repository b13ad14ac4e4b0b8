//! Checkpoints: the progress record of a round boundary, the Kafka commit that precedes the
//! local one (the tasks' changelog batches included), and how often they run.

use crate::kafka::Marker;
use crate::keys::{seed_prefix, shard_record_key, timer_key, PROGRESS_KEY};
use std::fmt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use rocksdb::WriteBatch;

use super::error::RunError;
use super::step::Driver;
use super::Reader;
use crate::checkpoint::{write_atomically, Progress, Snapshot, SourcePosition, TimerRecord};
use crate::cli::Input;
use crate::kafka::tasks::Tasks;
use crate::kafka::{self, KafkaWriter};
use crate::resume;
use crate::state::StateBackend;
use crate::timers::shard_of;
use pulse_stdlib::progress::InputIdentity;
use rdkafka::consumer::ConsumerGroupMetadata;
use rdkafka::TopicPartitionList;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::context::PartitionWriters;

/// Checkpoint figures printed at exit when `--state-dir` is given.
#[derive(Clone, Debug, Default)]
pub struct CheckpointStats {
    pub checkpoints: u64,
    pub total: Duration,
    pub max: Duration,
    pub last: Duration,
    /// Time from start to the end of restoring a checkpoint or savepoint, if one was restored.
    pub restore: Option<Duration>,
    /// State entries written by the last checkpoint (RocksDB: the overlay; memory: all).
    pub last_entries: usize,
    /// Commits on the commit thread (with tasks): how many, their total and longest time from
    /// the hand-over to the last `EndTxn` (the steps go on meanwhile).
    pub commits: u64,
    pub commit_total: Duration,
    pub commit_max: Duration,
}

impl fmt::Display for CheckpointStats {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let average =
            if self.checkpoints == 0 { 0.0 } else { self.total.as_secs_f64() * 1e3 / self.checkpoints as f64 };
        write!(
            formatter,
            "{} checkpoints, {:.2} ms average, {:.2} ms max, last {:.2} ms ({} state entries changed)",
            self.checkpoints,
            average,
            self.max.as_secs_f64() * 1e3,
            self.last.as_secs_f64() * 1e3,
            self.last_entries
        )?;
        if self.commits > 0 {
            write!(
                formatter,
                "; {} commits in flight, {:.2} ms average, {:.2} ms max",
                self.commits,
                self.commit_total.as_secs_f64() * 1e3 / self.commits as f64,
                self.commit_max.as_secs_f64() * 1e3
            )?;
        }
        if let Some(restore) = self.restore {
            write!(formatter, "; restored in {:.2} ms", restore.as_secs_f64() * 1e3)?;
        }
        Ok(())
    }
}

/// Where checkpoints go.
pub(super) enum Durable {
    /// No state directory: a checkpoint only commits Kafka output and offsets.
    KafkaOnly,
    /// The RocksDB backend in `Context::state`.
    Rocks,
    /// A snapshot file of the memory backend, replaced atomically.
    MemoryFile(PathBuf),
}

pub(super) struct Checkpointer {
    pub(super) durable: Durable,
    pub(super) interval: Duration,
    pub(super) every: Option<u64>,
    pub(super) last: Instant,
    pub(super) records_at_last: u64,
    pub(super) rounds_since_clock: u32,
    pub(super) count: u64,
}

impl Checkpointer {
    /// Whether a checkpoint is due at this round boundary. `idle`: the round read nothing (a
    /// Kafka source waited), so the clock is read at once rather than every 64 rounds.
    pub(super) fn due(&mut self, records_read: u64, idle: bool) -> bool {
        if let Some(every) = self.every {
            if records_read >= self.records_at_last + every {
                return true;
            }
        }
        // Reading the clock every 64 rounds keeps it off the per-record path.
        self.rounds_since_clock += 1;
        if self.rounds_since_clock < 64 && !idle {
            return false;
        }
        self.rounds_since_clock = 0;
        self.last.elapsed() >= self.interval
    }
}

impl Driver<'_> {
    /// The identity of source `index`'s file input up to its committed position (see `resume`).
    pub(super) fn input_identity(&self, index: usize) -> Option<InputIdentity> {
        let (Some(file), Input::Path(path)) = (&self.input_files[index], &self.input_paths[index]) else {
            return None;
        };
        match resume::input_identity(file, path, self.positions[index].0) {
            Ok(identity) => Some(identity),
            Err(error) => {
                tracing::warn!("cannot sample input `{path}` for the checkpoint; a resume will not check it: {error}");
                None
            }
        }
    }

    /// The progress record of the current round boundary.
    pub(super) fn progress(&self) -> Progress {
        let spec = &self.def.spec;
        let cx = &*self.cx;
        Progress {
            pipeline: spec.name.to_string(),
            nodes: spec.nodes.iter().map(|node| node.to_string()).collect(),
            layouts: spec.state_layouts.iter().map(|(node, layout)| (node.to_string(), layout.to_string())).collect(),
            next_arrival: self.next_arrival,
            arrival: cx.arrival,
            records_read: self.records_read,
            blank_lines: self.blank_lines,
            sources: spec
                .sources
                .iter()
                .enumerate()
                .map(|(index, source)| SourcePosition {
                    node: source.node.to_string(),
                    offset: self.positions[index].0,
                    lines: self.positions[index].1,
                    max_event_time: self.watermarks.max_event_time(index),
                    finished: self.finished[index],
                    input: self.input_identity(index),
                })
                .collect(),
            next_timer_sequence: cx.timers.next_sequence(),
            sink_counts: spec
                .sinks
                .iter()
                .map(|sink| sink.node.to_string())
                .zip(cx.sink_counts.iter().copied())
                .collect(),
            dead_letters: cx.dead_letter_count,
            dropped: cx.dropped_count,
            dropped_per_node: spec
                .nodes
                .iter()
                .map(|node| node.to_string())
                .zip(cx.dropped_per_node.iter().copied())
                .collect(),
            outputs: cx
                .writer_files
                .iter()
                .zip(&cx.written)
                .filter_map(|(path, length)| path.as_ref().map(|path| (path.clone(), *length)))
                .collect(),
            checkpoints: self.checkpointer.as_ref().map_or(0, |checkpointer| checkpointer.count) + 1,
            origin: self.origin,
            kafka: spec
                .sources
                .iter()
                .zip(&self.readers)
                .flat_map(|(source, reader)| match reader {
                    Reader::Kafka(reader) => reader
                        .positions()
                        .iter()
                        .map(|((topic, partition), next)| (source.node.to_string(), topic.clone(), *partition, *next))
                        .collect(),
                    Reader::Lines(_) => Vec::new(),
                })
                .collect(),
        }
    }

    /// Commits what the Kafka sinks produced since the last checkpoint: the first transactional
    /// producer's transaction also carries every Kafka source's offsets. Runs before the local
    /// checkpoint is written (see `kafka` module docs for the crash window this leaves). With
    /// tasks, each owned partition's producers commit first, its offsets and changelog in the
    /// transaction of the changelog's producer.
    pub(super) fn commit_kafka(&mut self) -> Result<(), RunError> {
        if self.tasks.is_some() {
            self.start_task_commit()?;
        }
        let mut offsets = Vec::new();
        if self.tasks.is_none() {
            for reader in &self.readers {
                if let Reader::Kafka(reader) = reader {
                    let list = reader.offset_list(None);
                    if let (false, Some(group)) = (list.count() == 0, reader.group_metadata()) {
                        offsets.push((list, group));
                    }
                }
            }
        }
        let offsets: Vec<_> = offsets.iter().map(|(list, group)| (list, group)).collect();
        let mut offsets_sent = self.tasks.is_some();
        for writer in &mut self.cx.kafka {
            let transactional = writer.transactional_id.is_some();
            let with = if transactional && !offsets_sent { offsets.as_slice() } else { &[] };
            writer.commit(with)?;
            offsets_sent |= transactional;
        }
        if !offsets_sent {
            // No transaction carried them: commit them to the group as telemetry.
            for reader in &self.readers {
                if let Reader::Kafka(reader) = reader {
                    if let Err(error) = reader.commit_positions() {
                        tracing::warn!("{error}");
                    }
                }
            }
        }
        Ok(())
    }

    /// With tasks, starts committing every owned partition's transactions on a thread: it
    /// waits until their records are acknowledged, then adds the offsets and ends the
    /// transactions (`kafka::commit_in_order`). The steps meanwhile produce into the other
    /// generation of producers (`Tasks::spare`), holding records back until the thread says the
    /// previous ones are acknowledged (`Held`). `finish_checkpoint` waits for the thread.
    pub(super) fn start_task_commit(&mut self) -> Result<(), RunError> {
        let (Some(tasks), Some(Reader::Kafka(reader))) = (&mut self.tasks, self.readers.first()) else {
            return Ok(());
        };
        let mut writers: BTreeMap<u32, PartitionWriters> = std::mem::take(&mut self.cx.task_writers);
        // (partition, offsets its changelog producer carries)
        let lists: Vec<(i32, TopicPartitionList)> = writers
            .keys()
            .map(|shard| *shard as i32 - 1)
            .filter(|partition| tasks.owned.contains(partition))
            .map(|partition| (partition, reader.offset_list(Some(partition))))
            .collect();
        self.cx.task_writers = std::mem::take(&mut tasks.spare);
        let flushed = Arc::new(AtomicBool::new(false));
        self.cx.held.gate = Some(Arc::clone(&flushed));
        let group = reader.group_metadata();
        let changelog_writer = tasks.changelog_writer;
        let committing = lists.clone();
        let pause = tasks.commit_pause;
        let thread = std::thread::Builder::new()
            .name("commit".to_string())
            .spawn(move || {
                let started = Instant::now();
                let outcome = flush_all(&mut writers, &committing).and_then(|()| {
                    flushed.store(true, Ordering::Release);
                    if let Some(pause) = pause {
                        std::thread::sleep(pause);
                    }
                    commit_partitions(&mut writers, &committing, changelog_writer, group.as_ref())
                });
                (writers, outcome, started.elapsed())
            })
            .map_err(|error| RunError::Io(format!("cannot start the commit thread: {error}")))?;
        self.in_flight = Some(InFlight { thread, lists });
        Ok(())
    }

    /// Waits for the checkpoint whose Kafka transactions are committing (if any), sends the
    /// records held back meanwhile, then commits its staged local part with each partition's
    /// changelog position: local state never gets ahead of what Kafka committed.
    pub(super) fn finish_checkpoint(&mut self) -> Result<(), RunError> {
        let Some(in_flight) = self.in_flight.take() else { return Ok(()) };
        let (writers, outcome, took) = in_flight.thread.join().unwrap_or_else(|_| {
            (
                BTreeMap::new(),
                Err(kafka::Error::from("internal: the commit thread panicked".to_string())),
                Duration::ZERO,
            )
        });
        outcome?;
        self.stats.commits += 1;
        self.stats.commit_total += took;
        self.stats.commit_max = self.stats.commit_max.max(took);
        self.cx.release_held();
        let mut shard_records = Vec::new();
        if let Some(tasks) = &mut self.tasks {
            for (partition, _) in &in_flight.lists {
                let shard = Tasks::shard(*partition);
                let record = tasks.local.entry(*partition).or_default();
                if let Some(Some(writer)) = writers.get(&shard).and_then(|writers| writers.get(tasks.changelog_writer))
                {
                    if let Some(offset) = writer.changelog_offset(*partition) {
                        record.next = record.next.max(offset + 1);
                    }
                }
                record.timers = record.timers.max(self.cx.timers.shard_counter(shard));
                shard_records.push((shard_record_key(*partition), record.to_bytes()));
            }
            tasks.spare = writers;
        }
        if let Some(Reader::Kafka(reader)) = self.readers.first() {
            for (_, list) in &in_flight.lists {
                reader.committed(list);
            }
        }
        if let StateBackend::Rocks(store) = &mut self.cx.state {
            store.commit_staged(&shard_records)?;
        }
        Ok(())
    }

    /// With tasks: appends each owned partition's changes since the last checkpoint (state
    /// entries, timers registered and fired) and its marker to the changelog, in the
    /// transactions `commit_kafka` commits next.
    pub(super) fn write_changelog(&mut self) -> Result<(), RunError> {
        let (Some(tasks), Some(Reader::Kafka(reader))) = (&self.tasks, self.readers.first()) else {
            return Ok(());
        };
        let count = self.checkpointer.as_ref().map_or(0, |checkpointer| checkpointer.count);
        let batch = format!("{}/{count}", tasks.batch_prefix);
        let cx = &mut *self.cx;
        let topic = tasks.topic.as_str();
        let writers = &mut cx.task_writers;
        let mut outcome = Ok(());
        let mut send = |shard: u32, key: &[u8], value: Option<&[u8]>| {
            let writer = writers.get_mut(&shard).and_then(|writers| writers.get_mut(tasks.changelog_writer));
            if let (Ok(()), Some(Some(writer))) = (&outcome, writer) {
                outcome = writer.send_changelog(topic, shard as i32 - 1, key, value, &batch);
            }
        };
        if let StateBackend::Rocks(store) = &cx.state {
            for (shard, key, value) in store.overlay().dirty_entries() {
                if shard != 0 {
                    send(shard, key, value);
                }
            }
        }
        let changes = cx.timers.changes();
        let mut encoded = Vec::new();
        for (sequence, timer) in &changes.added {
            if shard_of(*sequence) != 0 {
                encoded.clear();
                TimerRecord::from_timer(timer, self.def.spec.nodes).encode(&mut encoded);
                send(shard_of(*sequence), &timer_key(*sequence), Some(&encoded));
            }
        }
        for sequence in &changes.removed {
            if shard_of(*sequence) != 0 {
                send(shard_of(*sequence), &timer_key(*sequence), None);
            }
        }
        let positions = reader.positions();
        for partition in &tasks.owned {
            let shard = Tasks::shard(*partition);
            let marker = Marker {
                positions: reader
                    .topics()
                    .iter()
                    .filter_map(|topic| positions.get(&(topic.clone(), *partition)).map(|next| (topic.clone(), *next)))
                    .collect(),
                max_event_time: reader
                    .topics()
                    .iter()
                    .map(|topic| reader.partition_max(topic, *partition))
                    .max()
                    .unwrap_or(i64::MIN),
                timers: cx.timers.shard_counter(shard),
                base: Some(tasks.local.get(partition).map_or(0, |record| record.next)),
                origin: tasks.origins.get(partition).copied().unwrap_or(self.origin),
            };
            send(shard, kafka::MARKER_KEY, Some(&marker.to_bytes()));
        }
        outcome.map_err(RunError::from)
    }

    /// Commits a checkpoint at a round boundary: output files are flushed and fsynced, then the
    /// state overlay, the timer changes and the progress record (source positions, clocks,
    /// counters, committed output lengths) are written atomically.
    pub(super) fn checkpoint(&mut self) -> Result<(), RunError> {
        self.checkpoint_as(true)
    }

    /// A periodic checkpoint: with tasks, its Kafka transactions commit while the next records
    /// are processed (the previous checkpoint's commit is waited for first).
    pub(super) fn checkpoint_in_flight(&mut self) -> Result<(), RunError> {
        self.checkpoint_as(false)
    }

    fn checkpoint_as(&mut self, wait: bool) -> Result<(), RunError> {
        let started = Instant::now();
        let outcome = self.finish_checkpoint().and_then(|()| self.begin_checkpoint());
        let outcome = if wait { outcome.and_then(|()| self.finish_checkpoint()) } else { outcome };
        // The figures count the time the steps stood still: with a commit in flight, waiting
        // for the previous one and starting this one.
        if outcome.is_ok() && self.checkpointer.is_some() {
            let elapsed = started.elapsed();
            let stats = &mut *self.stats;
            stats.total += elapsed;
            stats.max = stats.max.max(elapsed);
            stats.last = elapsed;
        }
        if outcome.is_err() {
            self.checkpoint_failures += 1;
        }
        if self.metrics.is_some() {
            self.state_size = self.cx.state.size();
            self.publish();
        }
        outcome
    }

    fn begin_checkpoint(&mut self) -> Result<(), RunError> {
        if self.checkpointer.is_none() {
            return Ok(());
        }
        // Network sinks first: the checkpoint covers only requests that completed and writes
        // their servers acknowledged.
        self.settle_api(true)?;
        self.cx.flush_network()?;
        self.write_changelog()?;
        self.commit_kafka()?;
        let Some(checkpointer) = &self.checkpointer else { return Ok(()) };
        for (writer, label) in self.cx.writers.iter_mut().zip(&self.cx.writer_labels) {
            writer.sync().map_err(|error| RunError::Io(format!("cannot write to `{label}`: {error}")))?;
        }
        let progress = self.progress();
        let nodes = self.def.spec.nodes;
        // Seeds now in the changelog (committed with it) leave local state with this checkpoint;
        // each partition's shard record joins it once Kafka committed (`finish_checkpoint`).
        let seeded = self.tasks.as_mut().map_or_else(Vec::new, |tasks| std::mem::take(&mut tasks.seeded));
        let cx = &mut *self.cx;
        let entries_written = match (&checkpointer.durable, &mut cx.state) {
            (Durable::KafkaOnly, _) => 0,
            (Durable::Rocks, StateBackend::Rocks(store)) => {
                let mut batch = WriteBatch::default();
                let changes = cx.timers.changes();
                for sequence in &changes.removed {
                    batch.delete(timer_key(*sequence));
                }
                let mut encoded = Vec::new();
                for (sequence, timer) in &changes.added {
                    encoded.clear();
                    TimerRecord::from_timer(timer, nodes).encode(&mut encoded);
                    batch.put(timer_key(*sequence), &encoded);
                }
                batch.put(PROGRESS_KEY, progress.to_bytes());
                for partition in &seeded {
                    batch.delete_range(seed_prefix(*partition), seed_prefix(*partition + 1));
                }
                let entries = store.overlay_len();
                store.stage(batch)?;
                if self.in_flight.is_none() {
                    store.commit_staged(&[])?;
                }
                cx.timers.mark_committed();
                entries
            }
            (Durable::MemoryFile(path), StateBackend::Memory(store)) => {
                let snapshot = Snapshot {
                    progress,
                    timers: cx
                        .timers
                        .iter()
                        .map(|(sequence, timer)| (sequence, TimerRecord::from_timer(timer, nodes)))
                        .collect(),
                    entries: store
                        .entries()
                        .into_iter()
                        .map(|(node, key, value)| (node.to_string(), key.to_vec(), value.to_vec()))
                        .collect(),
                    shards: Vec::new(),
                    counters: Vec::new(),
                };
                write_atomically(path, &snapshot.encode()).map_err(|error| {
                    RunError::Io(format!("cannot write the checkpoint `{}`: {error}", path.display()))
                })?;
                snapshot.entries.len()
            }
            _ => return Err(RunError::Io("internal error: checkpoint target and state backend differ".to_string())),
        };
        if let Some(checkpointer) = &mut self.checkpointer {
            checkpointer.count += 1;
            checkpointer.last = Instant::now();
            checkpointer.records_at_last = self.records_read;
            checkpointer.rounds_since_clock = 0;
        }
        self.stats.checkpoints += 1;
        self.stats.last_entries = entries_written;
        Ok(())
    }
}

/// What the commit thread gives back: the producers, the outcome, and how long it took.
type Committed = (BTreeMap<u32, PartitionWriters>, Result<(), kafka::Error>, Duration);

/// A checkpoint whose Kafka transactions are committing on another thread (see
/// `start_task_commit`): the thread gives the producers back with the outcome.
pub(super) struct InFlight {
    thread: std::thread::JoinHandle<Committed>,
    /// (partition, the offsets its transaction carries).
    lists: Vec<(i32, TopicPartitionList)>,
}

/// Waits until every record the producers of the partitions in `lists` sent is acknowledged.
fn flush_all(
    writers: &mut BTreeMap<u32, PartitionWriters>,
    lists: &[(i32, TopicPartitionList)],
) -> Result<(), kafka::Error> {
    std::thread::scope(|scope| {
        let flushing: Vec<_> = writers
            .iter_mut()
            .filter(|(shard, _)| lists.iter().any(|(partition, _)| Tasks::shard(*partition) == **shard))
            .flat_map(|(_, writers)| writers.iter_mut().flatten())
            .map(|writer| scope.spawn(move || writer.flush()))
            .collect();
        flushing.into_iter().try_for_each(|thread| {
            thread.join().unwrap_or_else(|_| Err(kafka::Error::from("internal: a flush thread panicked".to_string())))
        })
    })
}

/// Commits the transactions of the partitions in `lists`, each partition's changelog producer
/// carrying its offsets, after the partition's other producers: dying between the two replays
/// output (same ids) instead of losing it.
fn commit_partitions(
    writers: &mut BTreeMap<u32, PartitionWriters>,
    lists: &[(i32, TopicPartitionList)],
    changelog_writer: usize,
    group: Option<&ConsumerGroupMetadata>,
) -> Result<(), kafka::Error> {
    let mut jobs: Vec<(i32, bool, &mut KafkaWriter, Option<&TopicPartitionList>)> = Vec::new();
    for (shard, partition_writers) in writers.iter_mut() {
        let partition = *shard as i32 - 1;
        let Some((_, list)) = lists.iter().find(|(owned, _)| *owned == partition) else { continue };
        for (index, writer) in partition_writers.iter_mut().enumerate() {
            let Some(writer) = writer else { continue };
            let carries = index == changelog_writer;
            jobs.push((partition, carries, writer, carries.then_some(list)));
        }
    }
    jobs.sort_by_key(|(partition, carries, ..)| (*partition, *carries));
    let mut commits: Vec<(&mut KafkaWriter, Option<&TopicPartitionList>)> =
        jobs.into_iter().map(|(_, _, writer, list)| (writer, list)).collect();
    kafka::commit_in_order(&mut commits, group)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_names_commits_in_flight_only_when_there_were_some() {
        let mut stats = CheckpointStats {
            checkpoints: 2,
            total: Duration::from_millis(30),
            max: Duration::from_millis(20),
            last: Duration::from_millis(10),
            ..CheckpointStats::default()
        };
        let line = stats.to_string();
        assert!(line.starts_with("2 checkpoints, 15.00 ms average, 20.00 ms max"), "{line}");
        assert!(!line.contains("in flight"), "{line}");
        stats.commits = 4;
        stats.commit_total = Duration::from_millis(400);
        stats.commit_max = Duration::from_millis(250);
        let line = stats.to_string();
        assert!(line.ends_with("; 4 commits in flight, 100.00 ms average, 250.00 ms max"), "{line}");
    }
}
