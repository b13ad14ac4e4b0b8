//! The changelog of state that follows partitions: the batch format (records, then a `Marker`),
//! how a restore reads a partition of it and folds committed batches, skipping aborted ones.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Headers;
use rdkafka::{Message, Offset, TopicPartitionList};

use super::admin::SourceLog;
use super::config::{describe, transient, Error, KafkaEnv, Role, CALL_TIMEOUT, OUTAGE_REPORT_EVERY};

/// The header naming the checkpoint a changelog record belongs to.
pub const BATCH_HEADER: &str = "pulse-batch";

/// The key of the record that closes a partition's batch in the changelog.
pub const MARKER_KEY: &[u8] = b"m";

/// What a partition's changelog holds from some offset on: the writes of its committed
/// batches, in order, and the marker that closed the last one.
#[derive(Debug, Default)]
pub struct ChangelogPartition {
    pub partition: i32,
    /// (key, value or `None` for a tombstone) of every committed batch.
    pub writes: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    /// The value of the last committed batch's marker.
    pub marker: Option<Vec<u8>>,
    /// The offset after that marker (the start offset when there was none).
    pub next: i64,
    /// Records read, committed or not.
    pub records: u64,
    /// Batches read that were closed by a marker but not committed (aborted transactions a
    /// broker that shows aborted records to `read_committed` still shows).
    pub aborted: u64,
}

/// How a restore decides which changelog records count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangelogMode {
    /// Uncompacted, on any broker: a batch counts only if its marker closes it and that marker
    /// is on the chain of committed batches (see `ChangelogFold::finish`), so the records of
    /// a checkpoint whose transaction aborted are skipped even on a broker that shows aborted
    /// records to `read_committed`, as tansu does.
    Batches,
    /// Compacted (`cleanup.policy=compact`), only on brokers that hide aborted records: every
    /// record before the last marker counts, since compaction leaves records of earlier batches
    /// whose markers it removed (each marker replaces the previous one).
    Compacted,
}

impl ChangelogMode {
    /// `PULSE_KAFKA_CHANGELOG_COMPACT=true` selects `Compacted`.
    pub fn from_environment() -> Result<ChangelogMode, Error> {
        match std::env::var("PULSE_KAFKA_CHANGELOG_COMPACT").as_deref() {
            Err(_) | Ok("" | "false" | "0") => Ok(ChangelogMode::Batches),
            Ok("true" | "1") => Ok(ChangelogMode::Compacted),
            Ok(other) => {
                Err(Error::Setting(format!("PULSE_KAFKA_CHANGELOG_COMPACT: `{other}` is neither true nor false")))
            }
        }
    }
}

/// One batch of a changelog partition, closed by its marker.
#[derive(Debug)]
pub(super) struct Batch {
    /// The marker's offset.
    end: i64,
    /// The offset after the marker of the batch this one builds on (`Marker::base`).
    base: Option<i64>,
    writes: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    marker: Option<Vec<u8>>,
}

/// What a fold decides once its partition is read.
#[derive(Debug)]
pub enum Folded {
    Done(ChangelogPartition),
    /// The committed history does not pass through the batch local state reflects (the start
    /// offset): the partition has to be read again from its beginning.
    Rewind,
}

/// Folds one partition's changelog records, in offset order, into what a restore applies.
#[derive(Debug)]
pub struct ChangelogFold {
    mode: ChangelogMode,
    partition: i32,
    start: i64,
    /// (batch, key, value) of the records not closed by a marker yet.
    pending: Vec<(String, Vec<u8>, Option<Vec<u8>>)>,
    batches: Vec<Batch>,
    records: u64,
}

impl ChangelogFold {
    pub fn new(mode: ChangelogMode, partition: i32, start: i64) -> ChangelogFold {
        ChangelogFold { mode, partition, start, pending: Vec::new(), batches: Vec::new(), records: 0 }
    }

    /// One record at `offset`, of checkpoint `batch` (its `pulse-batch` header). A marker
    /// closes the records of its own batch before it; records of other batches before it
    /// belong to checkpoints that never completed and are dropped.
    pub fn push(&mut self, offset: i64, batch: &str, key: &[u8], value: Option<&[u8]>) {
        self.records += 1;
        if key != MARKER_KEY {
            self.pending.push((batch.to_string(), key.to_vec(), value.map(<[u8]>::to_vec)));
            return;
        }
        let compacted = self.mode == ChangelogMode::Compacted;
        let writes = self
            .pending
            .drain(..)
            .filter(|(record_batch, ..)| compacted || record_batch == batch)
            .map(|(_, key, value)| (key, value))
            .collect();
        let base = value.and_then(|bytes| Marker::from_bytes(bytes).ok()).and_then(|marker| marker.base);
        self.batches.push(Batch { end: offset, base, writes, marker: value.map(<[u8]>::to_vec) });
    }

    /// What counts, given `head`: the group's committed offset of this changelog partition,
    /// i.e. the offset after the last committed batch's marker (`None`: nothing committed).
    ///
    /// In `Batches` mode the committed batches are the chain from that head through each
    /// marker's `base` back to the start offset: a batch of an aborted transaction is either
    /// past the head or skipped by the base of the batch the next owner wrote. Batches whose
    /// markers name no base (written before markers did) all count, as they used to.
    pub fn finish(mut self, head: Option<i64>) -> Result<Folded, Error> {
        let chain = match self.mode {
            ChangelogMode::Compacted => (0..self.batches.len()).collect(),
            ChangelogMode::Batches => match self.chain(head)? {
                Some(chain) => chain,
                None => return Ok(Folded::Rewind),
            },
        };
        let mut partition = ChangelogPartition {
            partition: self.partition,
            next: self.start,
            records: self.records,
            aborted: (self.batches.len() - chain.len()) as u64,
            ..ChangelogPartition::default()
        };
        for index in chain {
            let batch = &mut self.batches[index];
            partition.writes.append(&mut batch.writes);
            partition.marker = batch.marker.take();
            partition.next = batch.end + 1;
        }
        Ok(Folded::Done(partition))
    }

    /// Indexes of the committed batches in offset order; `None` when the chain leads behind
    /// the start offset.
    fn chain(&self, head: Option<i64>) -> Result<Option<Vec<usize>>, Error> {
        if let Some(head) = head.filter(|head| *head < self.start) {
            // Local state is committed only after Kafka's transaction: a state directory ahead
            // of the changelog holds writes Kafka never committed, and cannot be trusted.
            return Err(Error::Failed(format!(
                "changelog partition {}: local state reflects batches up to offset {}, but the group committed only up to {head}: the state directory holds a checkpoint Kafka never committed; start this instance with a new --state-dir (its state is restored from the changelog)",
                self.partition, self.start
            )));
        }
        if self.batches.iter().all(|batch| batch.base.is_none()) {
            return Ok(Some((0..self.batches.len()).collect()));
        }
        let Some(head) = head.filter(|head| *head > self.start) else {
            // Nothing committed after what local state reflects.
            return Ok(Some(Vec::new()));
        };
        let closing = |next: i64, before: usize| self.batches[..before].iter().rposition(|batch| batch.end + 1 == next);
        let broken = |next: i64| {
            format!(
                "changelog partition {}: no batch read from offset {} ends at the committed position {next}",
                self.partition, self.start
            )
        };
        let mut at = closing(head, self.batches.len()).ok_or_else(|| broken(head))?;
        let mut chain = vec![at];
        loop {
            match self.batches[at].base {
                None => {
                    chain.extend(0..at);
                    break;
                }
                Some(base) if base == self.start => break,
                Some(base) if base < self.start => return Ok(None),
                Some(base) => {
                    at = closing(base, at).ok_or_else(|| broken(base))?;
                    chain.push(at);
                }
            }
        }
        chain.sort_unstable();
        Ok(Some(chain))
    }
}

/// Reads changelog partitions from their start offsets to their end with `read_committed`,
/// counting records as `mode` says; `heads` holds the group's committed offset of each
/// changelog partition (see `ChangelogFold::finish`). A partition whose committed history does
/// not pass through its start offset is read again from offset 0.
pub fn read_changelog(
    env: &KafkaEnv,
    brokers: Option<&str>,
    topic: &str,
    starts: &[(i32, i64)],
    heads: &BTreeMap<i32, i64>,
    mode: ChangelogMode,
) -> Result<Vec<ChangelogPartition>, Error> {
    let mut done = Vec::new();
    let mut rewind = Vec::new();
    for fold in read_folds(env, brokers, topic, starts, mode)? {
        let partition = fold.partition;
        match fold.finish(heads.get(&partition).copied())? {
            Folded::Done(read) => done.push(read),
            Folded::Rewind => rewind.push((partition, 0)),
        }
    }
    if !rewind.is_empty() {
        tracing::warn!(
            "kafka: the committed history of changelog `{topic}` partitions {:?} does not include what local state holds; reading them from the start",
            rewind.iter().map(|(partition, _)| partition).collect::<Vec<_>>()
        );
        for fold in read_folds(env, brokers, topic, &rewind, mode)? {
            let partition = fold.partition;
            match fold.finish(heads.get(&partition).copied())? {
                Folded::Done(read) => done.push(read),
                Folded::Rewind => {
                    return Err(Error::from(format!(
                        "changelog `{topic}` [{partition}]: its chain of batches is broken"
                    )))
                }
            }
        }
    }
    done.sort_by_key(|read| read.partition);
    Ok(done)
}

/// The offsets `group` committed in partitions `0..partitions` of `topic`, read without joining
/// the group (an offset fetch), so its running members are not disturbed.
pub fn group_committed(
    env: &KafkaEnv,
    brokers: Option<&str>,
    group: &str,
    topic: &str,
    partitions: i32,
) -> Result<BTreeMap<i32, i64>, Error> {
    let mut config = env.consumer_config(brokers)?;
    config.set("group.id", group).set("enable.auto.commit", "false");
    let consumer: BaseConsumer<SourceLog> =
        config.create_with_context(SourceLog).map_err(|error| describe("creating a consumer", &error))?;
    let partitions: Vec<i32> = (0..partitions).collect();
    committed_offsets(
        &consumer,
        topic,
        &partitions,
        &format!("reading group `{group}`'s committed offsets of `{topic}`"),
    )
}

/// The offsets committed in `partitions` of `topic` by `consumer`'s group; a partition without
/// one is absent. `what` names the read in an error.
pub(super) fn committed_offsets<C: rdkafka::consumer::ConsumerContext>(
    consumer: &BaseConsumer<C>,
    topic: &str,
    partitions: &[i32],
    what: &str,
) -> Result<BTreeMap<i32, i64>, Error> {
    let mut list = TopicPartitionList::new();
    for partition in partitions {
        list.add_partition(topic, *partition);
    }
    let committed = consumer.committed_offsets(list, CALL_TIMEOUT).map_err(|error| describe(what, &error))?;
    Ok(committed
        .elements()
        .iter()
        .filter_map(|element| match element.offset() {
            Offset::Offset(offset) => Some((element.partition(), offset)),
            _ => None,
        })
        .collect())
}

/// Reads changelog partitions from their start offsets to their end with `read_committed`.
pub(super) fn read_folds(
    env: &KafkaEnv,
    brokers: Option<&str>,
    topic: &str,
    starts: &[(i32, i64)],
    mode: ChangelogMode,
) -> Result<Vec<ChangelogFold>, Error> {
    let mut config = env.config(brokers, Role::Consumer)?;
    config
        .set("group.id", "pulse-changelog-restore")
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .set("enable.partition.eof", "true");
    // A restore reads a known range as fast as it can: a broker that holds every fetch for the
    // whole wait (tansu does) would otherwise add half a second per fetch.
    if !env.properties.iter().any(|(name, _)| name == "fetch.wait.max.ms") {
        config.set("fetch.wait.max.ms", "10");
    }
    let consumer: BaseConsumer<SourceLog> =
        config.create_with_context(SourceLog).map_err(|error| describe("creating the changelog reader", &error))?;
    let mut list = TopicPartitionList::new();
    let mut folds: BTreeMap<i32, ChangelogFold> = BTreeMap::new();
    // Partitions still being read.
    let mut pending: BTreeSet<i32> = BTreeSet::new();
    for (partition, start) in starts {
        let (_, high) = consumer
            .fetch_watermarks(topic, *partition, CALL_TIMEOUT)
            .map_err(|error| describe(&format!("reading the end of `{topic}` [{partition}]"), &error))?;
        folds.insert(*partition, ChangelogFold::new(mode, *partition, *start));
        if *start < high {
            let _ = list.add_partition_offset(topic, *partition, Offset::Offset(*start));
            pending.insert(*partition);
        }
    }
    if list.count() > 0 {
        consumer.assign(&list).map_err(|error| describe("assigning the changelog", &error))?;
    }
    let mut last_report = std::time::Instant::now();
    let records = std::cell::Cell::new(0u64);
    let report = |_: &BTreeSet<i32>| {
        if last_report.elapsed() >= OUTAGE_REPORT_EVERY {
            last_report = std::time::Instant::now();
            tracing::info!("kafka: still restoring from `{topic}` ({} records so far)", records.get());
        }
        Ok(())
    };
    read_to_ends(&consumer, topic, pending, report, |message| {
        let Some(fold) = folds.get_mut(&message.partition()) else { return Ok(()) };
        let batch = message
            .headers()
            .and_then(|headers| headers.iter().find(|header| header.key == BATCH_HEADER))
            .and_then(|header| header.value)
            .map(|value| String::from_utf8_lossy(value).into_owned())
            .unwrap_or_default();
        fold.push(message.offset(), &batch, message.key().unwrap_or_default(), message.payload());
        records.set(records.get() + 1);
        Ok(())
    })?;
    Ok(folds.into_values().collect())
}

/// Polls `consumer` until every partition in `pending` reported its end (librdkafka's
/// end-of-partition event, which needs `enable.partition.eof`), handing each record of a
/// partition still pending to `each`; `tick` runs before every poll (progress, deadlines).
pub(super) fn read_to_ends<C: rdkafka::consumer::ConsumerContext>(
    consumer: &BaseConsumer<C>,
    topic: &str,
    mut pending: BTreeSet<i32>,
    mut tick: impl FnMut(&BTreeSet<i32>) -> Result<(), Error>,
    mut each: impl FnMut(&rdkafka::message::BorrowedMessage<'_>) -> Result<(), Error>,
) -> Result<(), Error> {
    while !pending.is_empty() {
        tick(&pending)?;
        match consumer.poll(Duration::from_millis(200)) {
            None => {}
            Some(Err(KafkaError::PartitionEOF(partition))) => {
                pending.remove(&partition);
            }
            Some(Err(KafkaError::MessageConsumption(code))) if transient(code) => {}
            Some(Err(error)) => return Err(describe(&format!("reading `{topic}`"), &error)),
            Some(Ok(message)) if pending.contains(&message.partition()) => each(&message)?,
            Some(Ok(_)) => {}
        }
    }
    Ok(())
}

/// The record that closes a partition's batch in the changelog.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Marker {
    /// (topic, next offset) of the partition in every subscribed topic.
    pub positions: Vec<(String, i64)>,
    /// The largest event time seen on the partition (`i64::MIN`: none).
    pub max_event_time: i64,
    /// The counter the shard's next timer gets.
    pub timers: u64,
    /// The changelog offset after the marker of the batch this one builds on (the partition's
    /// previous committed batch), so a restore can tell committed batches from aborted ones a
    /// broker still shows. `None` in markers written before markers named it.
    pub base: Option<i64>,
    /// The savepoint the partition's state descends from (`Progress::origin`), if any; `None`
    /// also in markers written before markers named it.
    pub origin: Option<u64>,
}

impl Marker {
    pub fn to_bytes(&self) -> Vec<u8> {
        let positions: Vec<serde_json::Value> =
            self.positions.iter().map(|(topic, next)| serde_json::json!([topic, next])).collect();
        let max_event_time = (self.max_event_time != i64::MIN).then_some(self.max_event_time);
        serde_json::json!({
            "positions": positions,
            "maxEventTime": max_event_time,
            "timers": self.timers,
            "base": self.base,
            "origin": self.origin.map(|origin| format!("{origin:016x}")),
        })
        .to_string()
        .into_bytes()
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Marker, Error> {
        let bad = || format!("corrupt changelog marker `{}`", String::from_utf8_lossy(bytes));
        let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|_| bad())?;
        let mut positions = Vec::new();
        for entry in value["positions"].as_array().ok_or_else(bad)? {
            let topic = entry[0].as_str().ok_or_else(bad)?;
            positions.push((topic.to_string(), entry[1].as_i64().ok_or_else(bad)?));
        }
        Ok(Marker {
            positions,
            max_event_time: value["maxEventTime"].as_i64().unwrap_or(i64::MIN),
            timers: value["timers"].as_u64().ok_or_else(bad)?,
            base: value["base"].as_i64(),
            origin: match &value["origin"] {
                serde_json::Value::Null => None,
                origin => Some(origin.as_str().and_then(|hex| u64::from_str_radix(hex, 16).ok()).ok_or_else(bad)?),
            },
        })
    }
}
