//! `savepoint create` (the last checkpoint of a state directory as one file) and `bootstrap`
//! (state built from history with every sink suppressed, written as a savepoint).

use crate::keys::{split_state_key, PROGRESS_KEY, SHARD_INDEX_PREFIX, STATE_PREFIX, TIMER_PREFIX};
use std::collections::BTreeMap;
use std::path::Path;

use indicatif::{ProgressBar, ProgressStyle};

use super::checkpoint::CheckpointStats;
use super::error::RunError;
use super::run::{execute, Def};
use super::MEMORY_SNAPSHOT_FILE;
use crate::checkpoint::{write_atomically, Progress, Snapshot, TimerRecord};
use crate::cli::{self, Input, RunOptions, SavepointOptions};
use crate::kafka::repartition::{self};
use crate::kafka::tasks::Tasks;
use crate::kafka::{self, ChangelogMode, KafkaEnv, Marker};
use crate::state::RocksStore;
use crate::{KafkaPartitioning, SourceKind};
use pulse_stdlib::progress::SourcePosition;

/// `savepoint create`: the last committed checkpoint of a state directory, or of every
/// partition of the consumer group (`--group`), as a snapshot file.
pub(super) fn create_savepoint(def: &'static Def, options: &SavepointOptions) -> Result<(), RunError> {
    let snapshot = match &options.state_dir {
        Some(dir) => read_checkpoint(dir)?,
        None => read_group(def)?,
    };
    write_atomically(&options.to, &snapshot.encode())
        .map_err(|error| RunError::Io(format!("cannot write `{}`: {error}", options.to.display())))?;
    if options.quiet {
        return Ok(());
    }
    report_savepoint(&options.to, &snapshot);
    Ok(())
}

/// The state of a whole consumer group whose state follows partitions: every partition of the
/// group's changelog read to its last committed batch, as a restore reads it. Each partition is
/// a checkpoint of its own (its state, timers and timer counter with the source positions its
/// marker recorded), so the savepoint is consistent whether the instances run or stopped; after
/// every instance stopped with SIGTERM it is exactly where they stopped. A re-keyed source's
/// positions are taken on its source topics instead of the repartition topic (`source_positions`).
fn read_group(def: &'static Def) -> Result<Snapshot, RunError> {
    let spec = &def.spec;
    let not_kafka = || {
        RunError::Usage(
            "savepoint create --group reads the state a consumer group keeps in Kafka: the pipeline's only source must be a kafka-source"
                .to_string(),
        )
    };
    let [source] = spec.sources else { return Err(not_kafka()) };
    let SourceKind::Kafka { topics, brokers, group_id, partitioning, .. } = source.kind else {
        return Err(not_kafka());
    };
    let env = KafkaEnv::from_environment()?;
    let group = kafka::source_group(&env, spec.name, source.node, group_id);
    let topic = format!("{group}-changelog");
    let partitions = kafka::partition_count(&env, brokers, &[topic.as_str()]).map_err(|error| {
        RunError::Usage(format!(
            "consumer group `{group}` has no changelog `{topic}` to read ({error}): its instances keep state in Kafka only with --state-dir, after their first checkpoint"
        ))
    })?;
    let rekeyed = matches!(partitioning, KafkaPartitioning::Repartition { .. });
    if rekeyed {
        // A new group's repartition topic gets the source topics' partition count, and each
        // key's state must land on the partition its key is sent to there.
        let sources = kafka::partition_count(&env, brokers, topics).map_err(|error| RunError::Io(error.to_string()))?;
        if sources != partitions {
            return Err(RunError::Usage(format!(
                "source `{}`: the group's repartition topic has {partitions} partitions but its source topics now have {sources}: a savepoint would file keys under the wrong partitions; upgrade by starting the new version in the same consumer group, which continues from the group's changelog",
                source.node
            )));
        }
    }
    let heads = kafka::group_committed(&env, brokers, &group, &topic, partitions)?;
    let starts: Vec<(i32, i64)> = (0..partitions).map(|partition| (partition, 0)).collect();
    let logs = kafka::read_changelog(&env, brokers, &topic, &starts, &heads, ChangelogMode::from_environment()?)?;
    let corrupt = |what: &str| RunError::Io(format!("changelog `{topic}`: corrupt {what}"));
    let unmarked: Vec<i32> = logs.iter().filter(|log| log.marker.is_none()).map(|log| log.partition).collect();
    if !unmarked.is_empty() {
        // Their source positions are unknown: a run from the savepoint would start them at
        // `readSetting` and could skip records or read them twice.
        return Err(RunError::Usage(format!(
            "changelog `{topic}` holds no committed checkpoint of consumer group `{group}` for partitions {unmarked:?} yet: run the group until every partition has checkpointed, then take the savepoint"
        )));
    }
    let mut snapshot = Snapshot::default();
    let mut max_event_time = i64::MIN;
    // A re-keyed source's markers hold positions on the repartition topic, which a run in
    // another group does not read: the savepoint holds source positions instead.
    let mut repartition_starts = Vec::new();
    for log in logs {
        let shard = Tasks::shard(log.partition);
        // The last write of each key wins: state entries and timers (registered, then fired).
        let mut writes: BTreeMap<Vec<u8>, Option<Vec<u8>>> = BTreeMap::new();
        for (key, value) in log.writes {
            writes.insert(key, value);
        }
        for (key, value) in writes {
            let Some(value) = value else { continue };
            match key.first() {
                Some(&STATE_PREFIX) => {
                    let (node, user_key) = split_state_key(&key).ok_or_else(|| corrupt("state key"))?;
                    snapshot.shards.push((snapshot.entries.len(), shard));
                    snapshot.entries.push((node.to_string(), user_key.to_vec(), value));
                }
                Some(&TIMER_PREFIX) if key.len() == 9 => {
                    let sequence = u64::from_be_bytes(key[1..9].try_into().map_err(|_| corrupt("timer key"))?);
                    let record = TimerRecord::decode(&mut pulse_stdlib::state::Reader::new(&value))
                        .map_err(|_| corrupt("timer"))?;
                    snapshot.timers.push((sequence, record));
                }
                _ => return Err(corrupt("record")),
            }
        }
        let Some(bytes) = log.marker else { continue };
        let marker = Marker::from_bytes(&bytes).map_err(|_| corrupt("marker"))?;
        for (topic, next) in marker.positions {
            if rekeyed {
                repartition_starts.push((log.partition, next));
            } else {
                snapshot.progress.kafka.push((source.node.to_string(), topic, log.partition, next));
            }
        }
        max_event_time = max_event_time.max(marker.max_event_time);
        snapshot.counters.push((shard, marker.timers));
        snapshot.progress.checkpoints += 1;
    }
    if rekeyed {
        for ((topic, partition), next) in source_positions(&env, brokers, &group, topics, &repartition_starts)? {
            snapshot.progress.kafka.push((source.node.to_string(), topic, partition, next));
        }
    }
    let progress = &mut snapshot.progress;
    progress.pipeline = spec.name.to_string();
    progress.nodes = spec.nodes.iter().map(|node| node.to_string()).collect();
    progress.layouts = spec.state_layouts.iter().map(|(node, layout)| (node.to_string(), layout.to_string())).collect();
    progress.sources = vec![SourcePosition {
        node: source.node.to_string(),
        offset: 0,
        lines: 0,
        max_event_time,
        finished: false,
        input: None,
    }];
    progress.sink_counts = spec.sinks.iter().map(|sink| (sink.node.to_string(), 0)).collect();
    progress.dropped_per_node = spec.nodes.iter().map(|node| (node.to_string(), 0)).collect();
    tracing::debug!("group `{group}`: {} partitions of `{}` read", partitions, topics.join(", "));
    Ok(snapshot)
}

/// Where a run from a group savepoint of a re-keyed source starts copying each source partition:
/// the stage's committed offset, or earlier when records copied from it wait unprocessed in the
/// repartition topic at the markers' positions (`starts`). Every record below that start was
/// processed and is in the savepoint's state; a record from it on that was processed too is
/// dropped by the duplicate filter, which the state carries. A source partition the stage never
/// copied from is left to the run's `readSetting`.
fn source_positions(
    env: &KafkaEnv,
    brokers: Option<&str>,
    group: &str,
    topics: &[&str],
    starts: &[(i32, i64)],
) -> Result<kafka::Offsets, RunError> {
    let io = |error: kafka::Error| RunError::Io(error.to_string());
    // The stage commits in its own group, named as its topic.
    let stage = repartition::topic(group);
    let mut positions = kafka::Offsets::new();
    for topic in topics {
        let count = kafka::partition_count(env, brokers, &[topic]).map_err(io)?;
        for (partition, next) in kafka::group_committed(env, brokers, &stage, topic, count).map_err(io)? {
            positions.insert((topic.to_string(), partition), next);
        }
    }
    for (key, first) in repartition::pending_origins(env, brokers, &stage, starts).map_err(io)? {
        let next = positions.entry(key).or_insert(first);
        *next = (*next).min(first);
    }
    Ok(positions)
}

/// The last committed checkpoint of a state directory, as one snapshot.
pub(super) fn read_checkpoint(dir: &Path) -> Result<Snapshot, RunError> {
    let memory_file = dir.join(MEMORY_SNAPSHOT_FILE);
    let snapshot = if memory_file.is_file() {
        let bytes = std::fs::read(&memory_file)
            .map_err(|error| RunError::Io(format!("cannot read `{}`: {error}", memory_file.display())))?;
        Snapshot::decode(&bytes).map_err(|error| RunError::Io(format!("`{}`: {error}", memory_file.display())))?
    } else if dir.join("CURRENT").is_file() {
        let db = RocksStore::open_read_only(dir)?;
        let progress = match db.get(PROGRESS_KEY).map_err(|error| RunError::Io(error.to_string()))? {
            Some(bytes) => Progress::from_bytes(&bytes)
                .map_err(|error| RunError::Io(format!("corrupt checkpoint in `{}`: {error}", dir.display())))?,
            None => return Err(RunError::Usage(format!("`{}` holds no checkpoint yet", dir.display()))),
        };
        let timers = read_rocks_timers(&db)?;
        // The shard index a bootstrap keeps: state key → shard, in the same key order.
        let mut index = RocksStore::scan_prefix(&db, &[SHARD_INDEX_PREFIX])?.into_iter().peekable();
        let (mut entries, mut shards) = (Vec::new(), Vec::new());
        for (key, value) in RocksStore::scan_prefix(&db, &[STATE_PREFIX])? {
            let Some((node, user_key)) = split_state_key(&key) else { continue };
            while index.next_if(|(indexed, _)| indexed[1..] < key[..]).is_some() {}
            if let Some((_, shard)) = index.next_if(|(indexed, _)| indexed[1..] == key[..]) {
                let shard = shard[..]
                    .try_into()
                    .map(u32::from_be_bytes)
                    .map_err(|_| RunError::Io(format!("corrupt shard index in `{}`", dir.display())))?;
                shards.push((entries.len(), shard));
            }
            entries.push((node.to_string(), user_key.to_vec(), value.into_vec()));
        }
        Snapshot { progress, timers, entries, shards, counters: Vec::new() }
    } else {
        return Err(RunError::Usage(format!("`{}` is not a Pulse state directory", dir.display())));
    };
    Ok(snapshot)
}

pub(super) fn report_savepoint(to: &Path, snapshot: &Snapshot) {
    tracing::info!(
        "savepoint of `{}` written to {} ({} state entries, {} timers, checkpoint {})",
        snapshot.progress.pipeline,
        to.display(),
        snapshot.entries.len(),
        snapshot.timers.len(),
        snapshot.progress.checkpoints
    );
}

/// The bootstrap progress bar: bytes with rate and ETA when every input is a file, else a
/// spinner with the record count and rate.
pub(super) fn bootstrap_progress(inputs: &[Input]) -> ProgressBar {
    let sizes: Option<u64> = inputs
        .iter()
        .map(|input| match input {
            Input::Path(path) if path != "-" => std::fs::metadata(path).ok().map(|metadata| metadata.len()),
            _ => None,
        })
        .sum();
    let bar = match sizes {
        Some(total) => ProgressBar::new(total).with_style(
            ProgressStyle::with_template(
                "bootstrap {bar:30} {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta} {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        ),
        None => ProgressBar::new_spinner().with_style(
            ProgressStyle::with_template("bootstrap {spinner} {msg} {elapsed}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        ),
    };
    bar.set_draw_target(indicatif::ProgressDrawTarget::stderr_with_hz(4));
    bar
}

/// Records between checkpoints of a bootstrap: deterministic (never the wall clock), so the same
/// history gives the same savepoint, and bounded, so RocksDB's overlay stays small.
pub(super) const BOOTSTRAP_CHECKPOINT_EVERY: u64 = 100_000;

/// `bootstrap`: runs the pipeline over history with every sink suppressed and no end-of-input
/// timer flush (the stream goes on), then writes the state as a savepoint. File sources start
/// again at the beginning of their live input; their event-time progress, the timers, the
/// clocks and Kafka positions carry over.
pub(super) fn bootstrap(def: &'static Def, options: &cli::BootstrapOptions) -> Result<(), RunError> {
    if options.skip_if_exists && options.to.exists() {
        if !options.quiet {
            tracing::info!("`{}` exists: nothing to bootstrap (--skip-if-exists)", options.to.display());
        }
        return Ok(());
    }
    let (state_dir, temporary) = match &options.state_dir {
        Some(dir) => (dir.clone(), false),
        None => {
            let mut name = options.to.file_name().unwrap_or_default().to_os_string();
            name.push(".bootstrap-state");
            (options.to.with_file_name(name), true)
        }
    };
    if temporary && state_dir.exists() {
        // Left by an interrupted bootstrap: start over, so a re-run gives the same savepoint.
        std::fs::remove_dir_all(&state_dir)
            .map_err(|error| RunError::Io(format!("cannot remove `{}`: {error}", state_dir.display())))?;
    }
    let (topics, inputs): (Vec<String>, Vec<String>) =
        options.from.iter().cloned().partition(|from| from.starts_with("kafka:"));
    let topics: Vec<String> = topics.iter().map(|from| from["kafka:".len()..].to_string()).collect();
    if topics.iter().any(String::is_empty) {
        return Err(RunError::Usage("--from kafka:TOPIC needs a topic name".to_string()));
    }
    let run = RunOptions {
        inputs,
        dead_letter: options.dead_letter.clone(),
        quiet: options.quiet,
        state_dir: Some(state_dir.clone()),
        checkpoint_every: Some(BOOTSTRAP_CHECKPOINT_EVERY),
        until_end: true,
        bootstrap: Some(topics),
        ..RunOptions::default()
    };
    let mut stats = CheckpointStats::default();
    let summary = execute(def, &run, &mut stats)?;
    let mut snapshot = read_checkpoint(&state_dir)?;
    let progress = &mut snapshot.progress;
    // A file's live input is another file: read it from its start. The event-time progress
    // stays; Kafka positions are kept apart (per topic and partition) and carry over as they are.
    for position in &mut progress.sources {
        position.offset = 0;
        position.lines = 0;
        position.finished = false;
        position.input = None;
    }
    // Nothing was written: the live run's outputs and counts start empty.
    progress.outputs.clear();
    for (_, count) in &mut progress.sink_counts {
        *count = 0;
    }
    write_atomically(&options.to, &snapshot.encode())
        .map_err(|error| RunError::Io(format!("cannot write `{}`: {error}", options.to.display())))?;
    if temporary {
        let _ = std::fs::remove_dir_all(&state_dir);
    }
    if !options.quiet {
        tracing::info!(
            "bootstrap read {} records ({} dead letters) in {:.3}s",
            summary.records_read,
            summary.dead_letters,
            summary.elapsed.as_secs_f64()
        );
        report_savepoint(&options.to, &snapshot);
    }
    Ok(())
}

pub(super) fn read_rocks_timers(db: &rocksdb::DB) -> Result<Vec<(u64, TimerRecord)>, RunError> {
    let mut timers = Vec::new();
    for (key, value) in RocksStore::scan_prefix(db, &[TIMER_PREFIX])? {
        let sequence = key.get(1..9).and_then(|bytes| bytes.try_into().ok()).map(u64::from_be_bytes);
        let record = TimerRecord::decode(&mut pulse_stdlib::state::Reader::new(&value));
        match (sequence, record) {
            (Some(sequence), Ok(record)) => timers.push((sequence, record)),
            _ => return Err(RunError::Io("corrupt timer in the checkpoint".to_string())),
        }
    }
    Ok(timers)
}

/// How a bootstrap over a topic picks the shard of a record's step (see `Snapshot::shards`).
pub(super) enum BootstrapShards {
    /// The topic is keyed as the state: the record's partition.
    SourcePartition,
    /// The live run re-keys the topic through the repartition topic (created with the source's
    /// partition count): the partition the repartition stage sends the record's key to.
    Rekeyed { by: &'static [&'static str], partitions: i32 },
}

impl BootstrapShards {
    pub(super) fn shard(&self, partition: i32, record: &str) -> u32 {
        match self {
            BootstrapShards::SourcePartition => Tasks::shard(partition),
            BootstrapShards::Rekeyed { by, partitions } => repartition::partition_key(record.as_bytes(), by)
                .map_or(0, |key| Tasks::shard(repartition::partition_of(&key, *partitions))),
        }
    }
}
