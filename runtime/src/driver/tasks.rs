//! The driver's side of state that follows Kafka partitions (see `crate::kafka::tasks`): setting up
//! the changelog, opening a partition's producers, restoring partitions the group assigns, the
//! duplicate filter of repartitioned records and per-shard timers.

use crate::kafka::Marker;
use crate::keys::{
    seed_prefix, shard_record_key, timer_key, CHANGELOG_KEY, SHARD_RECORD_PREFIX, STATE_PREFIX, TIMER_PREFIX,
};
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::time::Instant;

use pulse_stdlib::state::Store;
use rocksdb::WriteBatch;

use super::context::{Context, PartitionWriters};
use super::error::RunError;
use super::run::Def;
use super::step::Driver;
use super::{Origin, Reader};
use crate::checkpoint::TimerRecord;
use crate::kafka::tasks::{ShardRecord, Tasks};
use crate::kafka::{self, ChangelogMode, KafkaEnv, KafkaWriter, ProducerSettings, Rebalance};
use crate::state::{RocksStore, StateBackend};
use crate::timers::{shard_of, watermark_during_timer};
use crate::{SourceKind, Timer};

/// Sets up state following partitions when the pipeline's only source is a kafka-source and
/// state is in RocksDB: creates the changelog topic if needed, reads what local state reflects
/// per partition, and parks the timers of every partition until the group assigns it.
pub(super) fn open_tasks(
    def: &'static Def,
    readers: &mut [Reader],
    cx: &mut Context,
    env: &KafkaEnv,
    producers: &[(Option<&'static str>, Option<&'static str>, bool)],
    interval_ms: u64,
    instance: &str,
) -> Result<Option<Tasks>, RunError> {
    let spec = &def.spec;
    let ([Reader::Kafka(reader)], [source]) = (readers, spec.sources) else { return Ok(None) };
    let SourceKind::Kafka { brokers, .. } = source.kind else { return Ok(None) };
    let StateBackend::Rocks(store) = &cx.state else { return Ok(None) };
    let io = |error: &dyn std::fmt::Display| RunError::Io(format!("source `{}`: {error}", source.node));
    let topic = format!("{}-changelog", reader.group());
    // Local state is a cache of one changelog: state kept for another group's changelog would
    // be counted again on top of what this group's changelog and readSetting give.
    let bound =
        store.db().get(CHANGELOG_KEY).map_err(|error| RunError::Io(format!("reading the checkpoint: {error}")))?;
    match bound.as_deref().map(String::from_utf8_lossy) {
        Some(bound) if bound != topic => {
            return Err(RunError::Usage(format!(
                "source `{}`: the state directory holds the state of changelog `{bound}`, but consumer group `{}` keeps its state in `{topic}`: use a new --state-dir with a new group, or the group that wrote it",
                source.node,
                reader.group()
            )))
        }
        Some(_) => {}
        None => store
            .db()
            .put(CHANGELOG_KEY, topic.as_bytes())
            .map_err(|error| RunError::Io(format!("writing the checkpoint: {error}")))?,
    }
    let changelog_mode = ChangelogMode::from_environment()?;
    let compacted = changelog_mode == ChangelogMode::Compacted;
    kafka::ensure_topic(env, brokers, &topic, reader.partition_count(), "changelog", compacted)
        .map_err(|error| io(&error))?;
    reader.clear_replay();
    let mut local = BTreeMap::new();
    for (key, value) in RocksStore::scan_prefix(store.db(), SHARD_RECORD_PREFIX)? {
        let partition = key[SHARD_RECORD_PREFIX.len()..].try_into().ok().map(i32::from_be_bytes);
        match (partition, ShardRecord::from_bytes(&value)) {
            (Some(partition), Some(record)) => {
                local.insert(partition, record);
            }
            _ => return Err(RunError::Io("corrupt shard record in the checkpoint".to_string())),
        }
    }
    for (partition, record) in &local {
        cx.timers.set_shard_counter(Tasks::shard(*partition), record.timers);
    }
    let mut parked: BTreeMap<u32, Vec<(u64, Timer)>> = BTreeMap::new();
    for (sequence, timer) in cx.timers.take_shards(|shard| shard == 0) {
        parked.entry(shard_of(sequence)).or_default().push((sequence, timer));
    }
    let changelog_writer = producers
        .iter()
        .position(|(producer_brokers, _, transactional)| *transactional && *producer_brokers == brokers)
        .unwrap_or(producers.len());
    let started =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |since| since.as_nanos());
    Ok(Some(Tasks {
        topic,
        changelog_mode,
        env: env.clone(),
        brokers,
        producers: producers.to_vec(),
        changelog_writer,
        group: reader.group().to_string(),
        checkpoint_interval_ms: interval_ms,
        local,
        parked,
        owned: Vec::new(),
        batch_prefix: format!("{instance}-{started:x}"),
        seeded: Vec::new(),
        spare: BTreeMap::new(),
        origins: BTreeMap::new(),
        commit_pause: match std::env::var("PULSE_KAFKA_COMMIT_PAUSE") {
            Ok(text) => Some(std::time::Duration::from_millis(
                crate::checkpoint::parse_duration_ms(&text)
                    .map_err(|error| RunError::Usage(format!("PULSE_KAFKA_COMMIT_PAUSE: {error}")))?,
            )),
            Err(_) => None,
        },
    }))
}

/// The producers of one generation of the partitions the group assigned, per partition: one per
/// transactional sink producer, plus one for the changelog when none of those talks to the
/// source's brokers.
pub(super) fn open_task_writers(
    tasks: &Tasks,
    partitions: &[i32],
    generation: u8,
) -> Result<Vec<(i32, PartitionWriters)>, kafka::Error> {
    // (brokers, compression) of each writer of a partition; `None` where a sink is not
    // transactional (it uses the instance's producer).
    let mut kinds: Vec<Option<(Option<&str>, Option<&str>)>> = tasks
        .producers
        .iter()
        .map(|(brokers, compression, transactional)| transactional.then_some((*brokers, *compression)))
        .collect();
    if tasks.changelog_writer == tasks.producers.len() {
        kinds.push(Some((tasks.brokers, None)));
    }
    let mut settings = Vec::new();
    for partition in partitions {
        for (index, kind) in kinds.iter().enumerate() {
            if let Some((brokers, compression)) = kind {
                settings.push(ProducerSettings {
                    brokers: *brokers,
                    compression: *compression,
                    transactional_id: Some(kafka::partition_transactional_id(
                        &tasks.group,
                        *partition,
                        index,
                        generation,
                    )),
                    checkpoint_interval_ms: tasks.checkpoint_interval_ms,
                });
            }
        }
    }
    let mut opened = KafkaWriter::open_all(&tasks.env, &settings)?.into_iter();
    Ok(partitions
        .iter()
        .map(|partition| (*partition, kinds.iter().map(|kind| kind.and_then(|_| opened.next())).collect()))
        .collect())
}

/// What `restore_partitions` did.
pub(super) struct Restored {
    /// State entries and timers applied from the changelog.
    pub(super) entries: u64,
    pub(super) timers: u64,
    /// Batches of aborted transactions skipped.
    pub(super) aborted: u64,
    /// Entries and timers of a savepoint handed to partitions with an empty changelog.
    pub(super) seeded: u64,
    /// The changelog topic.
    pub(super) topic: String,
}

impl Driver<'_> {
    /// The duplicate filter of repartitioned records (see `repartition`): whether partition
    /// `partition` already processed a copy of the source record `upstream`; records it as
    /// processed otherwise, in the partition's shard (so the changelog carries it along).
    pub(super) fn copied_before(&mut self, partition: i32, upstream: &(String, i32, i64)) -> bool {
        let (topic, origin_partition, offset) = upstream;
        self.cx.set_shard(Tasks::shard(partition));
        let key = crate::keys::seen_key(partition, topic, *origin_partition);
        let state = self.cx.state();
        let last =
            state.get(crate::keys::SEEN_NODE, &key).and_then(|bytes| bytes.try_into().ok()).map(i64::from_be_bytes);
        if last.is_some_and(|last| *offset <= last) {
            return true;
        }
        state.put(crate::keys::SEEN_NODE, &key, offset.to_be_bytes().to_vec());
        false
    }

    /// Answers the rebalances of Kafka source `source`: a revocation after a checkpoint (so
    /// what was processed from the partitions is committed before another member gets them),
    /// an assignment after the new partitions' state was restored from the changelog.
    pub(super) fn rebalance(&mut self, source: usize) -> Result<(), RunError> {
        let node = self.def.spec.sources[source].node;
        let io = |error: &dyn std::fmt::Display| RunError::Io(format!("source `{node}`: {error}"));
        let events = match &self.readers[source] {
            Reader::Kafka(reader) => reader.take_rebalances(),
            Reader::Lines(_) => return Ok(()),
        };
        for event in events {
            match event {
                Rebalance::Revoke(partitions) => {
                    self.checkpoint()?;
                    if let Some(tasks) = &mut self.tasks {
                        let revoked: BTreeSet<u32> =
                            partitions.iter().map(|(_, partition)| Tasks::shard(*partition)).collect();
                        for (sequence, timer) in self.cx.timers.take_shards(|shard| !revoked.contains(&shard)) {
                            tasks.parked.entry(shard_of(sequence)).or_default().push((sequence, timer));
                        }
                        for shard in &revoked {
                            self.cx.task_writers.remove(shard);
                            tasks.spare.remove(shard);
                        }
                        tasks.owned.retain(|partition| !revoked.contains(&Tasks::shard(*partition)));
                    }
                    if let Reader::Kafka(reader) = &mut self.readers[source] {
                        reader.revoke_now().map_err(|error| io(&error))?;
                    }
                    tracing::info!(
                        "kafka: source `{node}` revoked {} after a checkpoint",
                        kafka::describe_partitions(&partitions)
                    );
                }
                Rebalance::Assign(partitions) => {
                    let started = Instant::now();
                    let restored = self.restore_partitions(source, &partitions)?;
                    if let Reader::Kafka(reader) = &mut self.readers[source] {
                        reader.assign_now(&partitions).map_err(|error| io(&error))?;
                    }
                    let assigned = kafka::describe_partitions(&partitions);
                    match restored {
                        Some(Restored { entries, timers, aborted, seeded, topic }) => tracing::info!(
                            "kafka: source `{node}` assigned {assigned}: restored {entries} state entries and {timers} timers from `{topic}` in {} ms{}{}",
                            started.elapsed().as_millis(),
                            match aborted {
                                0 => String::new(),
                                aborted => format!(", skipping {aborted} batches of aborted transactions"),
                            },
                            match seeded {
                                0 => String::new(),
                                seeded => format!("; {seeded} state entries and timers of the savepoint go to the changelog"),
                            }
                        ),
                        None => tracing::info!("kafka: source `{node}` assigned {assigned}"),
                    }
                }
            }
        }
        Ok(())
    }

    /// With tasks: opens the producers of newly assigned partitions (fencing their previous
    /// owner), takes back their parked timers and replays their changelog from the offset
    /// local state reflects. Returns (state entries, timers, aborted batches skipped, changelog
    /// topic).
    pub(super) fn restore_partitions(
        &mut self,
        source: usize,
        partitions: &[(String, i32)],
    ) -> Result<Option<Restored>, RunError> {
        if self.tasks.is_none() {
            return Ok(None);
        }
        self.finish_checkpoint()?;
        if matches!(&self.cx.state, StateBackend::Rocks(store) if store.overlay_len() > 0) {
            self.checkpoint()?;
        }
        let node = self.def.spec.sources[source].node;
        let io = |error: &dyn std::fmt::Display| RunError::Io(format!("source `{node}`: {error}"));
        let (Some(tasks), Reader::Kafka(reader)) = (&mut self.tasks, &mut self.readers[source]) else {
            return Ok(None);
        };
        let mut new: Vec<i32> = partitions.iter().map(|(_, partition)| *partition).collect();
        new.sort_unstable();
        new.dedup();
        new.retain(|partition| !tasks.owned.contains(partition));
        let cx = &mut *self.cx;
        let mut seed_from = Vec::new();
        // Both generations at once: opening a transactional producer is several round trips.
        let (first, second) = std::thread::scope(|scope| {
            let second = scope.spawn(|| open_task_writers(tasks, &new, 1));
            let first = open_task_writers(tasks, &new, 0);
            (
                first,
                second
                    .join()
                    .unwrap_or_else(|_| Err(kafka::Error::from("internal: opening producers panicked".to_string()))),
            )
        });
        let (first, second) = (first.map_err(|error| io(&error))?, second.map_err(|error| io(&error))?);
        for (partition, writers) in second {
            tasks.spare.insert(Tasks::shard(partition), writers);
        }
        for (partition, writers) in first {
            cx.task_writers.insert(Tasks::shard(partition), writers);
            for (sequence, timer) in tasks.parked.remove(&Tasks::shard(partition)).unwrap_or_default() {
                cx.timers.restore(sequence, timer, 0);
            }
        }
        let starts: Vec<(i32, i64)> = new
            .iter()
            .map(|partition| (*partition, tasks.local.get(partition).map_or(0, |record| record.next)))
            .collect();
        // Read after the producers above fenced the previous owner: no transaction of it can
        // commit any more.
        let heads = reader.group_offsets(&tasks.topic, &new).map_err(|error| io(&error))?;
        let logs =
            kafka::read_changelog(&tasks.env, tasks.brokers, &tasks.topic, &starts, &heads, tasks.changelog_mode)
                .map_err(|error| io(&error))?;
        let mut batch = WriteBatch::default();
        let mut forget = HashSet::new();
        let (mut entries, mut timers, mut aborted) = (0u64, 0u64, 0u64);
        for log in logs {
            aborted += log.aborted;
            let shard = Tasks::shard(log.partition);
            // No batch committed yet: a savepoint's part of the partition, if this instance
            // holds one, becomes its first batch; otherwise the changelog already has it.
            if log.marker.is_none() && tasks.local.get(&log.partition).is_none_or(|record| record.next == 0) {
                seed_from.push(log.partition);
            } else {
                batch.delete_range(seed_prefix(log.partition), seed_prefix(log.partition + 1));
            }
            // The last write of each timer wins: registered, then perhaps fired.
            let mut timer_writes: BTreeMap<u64, Option<Vec<u8>>> = BTreeMap::new();
            for (key, value) in log.writes {
                match key.first() {
                    Some(&STATE_PREFIX) => {
                        entries += 1;
                        match &value {
                            Some(value) => batch.put(&key, value),
                            None => batch.delete(&key),
                        }
                    }
                    Some(&TIMER_PREFIX) if key.len() == 9 => {
                        let sequence = u64::from_be_bytes(key[1..9].try_into().unwrap_or_default());
                        timer_writes.insert(sequence, value);
                    }
                    _ => return Err(io(&format!("unexpected record in the changelog `{}`", tasks.topic))),
                }
            }
            for (sequence, value) in timer_writes {
                match value {
                    Some(bytes) => {
                        let record = TimerRecord::decode(&mut pulse_stdlib::state::Reader::new(&bytes))
                            .map_err(|_| io(&format!("corrupt timer in the changelog `{}`", tasks.topic)))?;
                        if let Some(timer) = record.into_timer(self.def.spec.nodes) {
                            cx.timers.restore(sequence, timer, 0);
                            timers += 1;
                        }
                        batch.put(timer_key(sequence), &bytes);
                    }
                    None => {
                        forget.insert(sequence);
                        batch.delete(timer_key(sequence));
                    }
                }
            }
            for topic in reader.topics().to_vec() {
                reader.touch(&topic, log.partition);
            }
            if let Some(bytes) = &log.marker {
                let marker = Marker::from_bytes(bytes).map_err(|error| io(&error))?;
                // A run started from a savepoint continues a partition only from state that
                // descends from that savepoint: another savepoint's, or a run's that started from
                // one, would silently take the savepoint's place.
                if let (Some(wanted), Some(found)) = (self.origin, marker.origin) {
                    if wanted != found {
                        return Err(RunError::Usage(format!(
                            "source `{node}`: consumer group `{}` keeps the state of partition {} in `{}` from a run that started from another savepoint than this run's: to start from this savepoint, use a new consumer group (`groupId` or PULSE_KAFKA_GROUP_ID); without --from-savepoint the run continues from the changelog",
                            tasks.group, log.partition, tasks.topic
                        )));
                    }
                }
                tasks.origins.insert(log.partition, marker.origin);
                for (topic, next) in &marker.positions {
                    reader.set_position(topic, log.partition, *next);
                    if marker.max_event_time != i64::MIN {
                        reader.restore_partition_max(topic, log.partition, marker.max_event_time);
                    }
                }
                cx.timers.set_shard_counter(shard, marker.timers);
            }
            let record = ShardRecord { next: log.next, timers: cx.timers.shard_counter(shard) };
            batch.put(shard_record_key(log.partition), record.to_bytes());
            tasks.local.insert(log.partition, record);
        }
        cx.timers.forget(&forget);
        let mut seeded = 0u64;
        if let StateBackend::Rocks(store) = &mut cx.state {
            store.write_restored(batch).map_err(|error| io(&error))?;
            for partition in seed_from {
                let shard = Tasks::shard(partition);
                let prefix = seed_prefix(partition);
                let seeds = RocksStore::scan_prefix(store.db(), &prefix).map_err(|error| io(&error))?;
                let seeded_timers = cx.timers.mark_shard_new(shard);
                if seeds.is_empty() && seeded_timers == 0 {
                    continue;
                }
                seeded += seeds.len() as u64 + seeded_timers as u64;
                for (key, value) in seeds {
                    store.seed(shard, &key[prefix.len()..], value.into_vec());
                }
                tasks.seeded.push(partition);
            }
        }
        tasks.owned.extend(new);
        Ok(Some(Restored { entries, timers, aborted, seeded, topic: tasks.topic.clone() }))
    }

    /// With tasks: the watermark of a partition's shard, its own largest event time minus the
    /// source's maxOutOfOrderness. Outside its record steps (`idle_fallback`), once the partition
    /// has been idle for the idle timeout, the source's watermark when that is ahead, so a quiet
    /// partition's timers still fire.
    pub(super) fn shard_watermark(&self, source: usize, partition: i32, idle_fallback: bool) -> i64 {
        let Reader::Kafka(reader) = &self.readers[source] else { return self.watermarks.pipeline_watermark() };
        let own = match reader.partition_frontier(partition) {
            i64::MIN => i64::MIN,
            seen => seen.saturating_sub(self.def.spec.sources[source].max_out_of_orderness),
        };
        if idle_fallback && reader.partition_idle(partition) {
            own.max(self.watermarks.pipeline_watermark())
        } else {
            own
        }
    }

    /// Fires the due event-time timers of one shard, by its watermark.
    pub(super) fn fire_due_shard_timers(
        &mut self,
        shard: u32,
        watermark_before: i64,
        watermark_after: i64,
    ) -> Result<(), RunError> {
        while let Some(timer) = self.cx.timers.pop_due_event_in(shard, watermark_after) {
            self.cx.watermark = watermark_during_timer(watermark_before, watermark_after, timer.time);
            self.cx.origin = Origin::Timer { sequence: self.cx.timers.last_popped() };
            self.cx.set_shard(shard);
            self.cx.origin_outputs = 0;
            self.pipeline.on_timer(timer, self.cx);
            self.cx.take_io_error()?;
        }
        self.cx.watermark = watermark_after;
        Ok(())
    }

    /// With tasks, at quiet round boundaries (and every 64 rounds): timers of shards whose
    /// watermark moved without a record of theirs (idle partitions, restored partitions).
    pub(super) fn fire_idle_shard_timers(&mut self) -> Result<(), RunError> {
        for shard in self.cx.timers.event_shards() {
            // Shard 0 holds timers from before the partitions were tasks (a savepoint): they
            // follow the source's watermark.
            let watermark = match shard {
                0 => self.watermarks.pipeline_watermark(),
                _ => self.shard_watermark(0, shard as i32 - 1, true),
            };
            self.fire_due_shard_timers(shard, watermark, watermark)?;
        }
        self.cx.watermark = self.watermarks.pipeline_watermark();
        Ok(())
    }
}
