//! The repartition stage of a kafka-source whose topic is not keyed by the key of the state
//! after it (the compiler decides; see `KafkaPartitioning`).
//!
//! A thread of each instance consumes the source topics in the group `<group>-repartition` and
//! re-produces every record, unchanged, to `<group>-repartition` keyed by the state's key
//! (canonical key text, G12), so all records of a key land on one partition. Each source
//! partition has its own transactional producer (`<group>-repartition-<topic>-<partition>`):
//! its copies and its offset commit in one transaction (`send_offsets_to_transaction`) at
//! least every `COMMIT_EVERY`, and before the partition is given up. Whichever instance the
//! group hands the partition to opens that producer at once, which fences the previous owner
//! and aborts its open transaction: a killed instance's copies never hold the repartition
//! topic's last stable offset until a transaction timeout. The pipeline itself reads the
//! repartition topic as its source, in the group `<group>`, with state following its partitions.
//!
//! Each record carries `pulse-origin: <topic>/<partition>/<offset>` of the record it copies: the
//! pipeline derives its output ids from it (so they are those of a run without the hop), and
//! drops a record whose origin offset is not above the last it processed from that origin
//! partition in that repartition partition. On a broker that shows aborted records (tansu), the
//! copies an aborted transaction left are thus processed once.
//!
//! A pipeline started from a savepoint that a `bootstrap` wrote over the source topics (its
//! positions are on those topics, not on the repartition topic) starts copying each source
//! partition the stage's group has no committed offset for at the savepoint's position, so the
//! history the savepoint holds is not copied, and counted, again.
//!
//! The repartition topic does not grow without bound: every `PURGE_EVERY` the stage deletes the
//! records of each repartition partition below the position this instance's last checkpoint
//! committed for it (`DeleteRecords`). A restore starts at the last committed position, never
//! below it, so nothing deleted is read again.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::KafkaError;
use rdkafka::message::Headers;
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{ClientContext, Message, Offset, TopicPartitionList};

use super::admin::{ensure_topic, partition_count, Purger, SourceLog};
use super::changelog::read_to_ends;
use super::config::{
    describe, duration_from_env, forward_log, record_stable_ends, transient, Error, KafkaEnv, Offsets, CALL_TIMEOUT,
};
use super::producer::{commit_in_order, KafkaWriter, ProducerSettings};
use crate::KafkaStart;

/// The longest a copied record waits for its transaction to commit (the pipeline reads the
/// repartition topic `read_committed`, so this adds to the end-to-end latency; each commit ends
/// a transaction per copied partition, one after another); `PULSE_KAFKA_REPARTITION_COMMIT_EVERY`.
const COMMIT_EVERY: Duration = Duration::from_millis(100);
const POLL: Duration = Duration::from_millis(50);
/// How often records the pipeline has committed past leave the repartition topic (Kafka
/// Streams' `repartition.purge.interval.ms` default); `PULSE_KAFKA_REPARTITION_PURGE_EVERY`.
const PURGE_EVERY: Duration = Duration::from_secs(30);
/// The longest `pending_origins` reads before it gives up.
const READ_PENDING_WITHIN: Duration = Duration::from_secs(120);
/// The header naming the source record a repartitioned record copies.
pub const ORIGIN_HEADER: &str = "pulse-origin";

pub struct RepartitionSettings<'a> {
    pub env: &'a KafkaEnv,
    pub brokers: Option<&'a str>,
    pub topics: &'a [&'a str],
    /// The pipeline's group; the stage's group and topic are `<group>-repartition`.
    pub group: &'a str,
    pub by: &'static [&'static str],
    pub start: KafkaStart,
    pub checkpoint_interval_ms: u64,
    /// Where to start copying source partitions the stage's group has no committed offset
    /// for: the source positions of the savepoint the run starts from.
    pub seed: Offsets,
}

/// The running stage; dropping it commits what it copied and stops it.
pub struct Repartitioner {
    stop: Arc<AtomicBool>,
    failure: Arc<Mutex<Option<String>>>,
    thread: Option<JoinHandle<()>>,
    /// Per repartition partition: the position the pipeline's last checkpoint committed.
    committed: Arc<Mutex<BTreeMap<i32, i64>>>,
    /// The stage's producers (how far each partition is copied) and partition ends: its lag.
    writers: Writers,
    ends: Ends,
}

/// Per assigned source partition: its producer.
type Writers = Arc<Mutex<BTreeMap<(String, i32), PartitionWriter>>>;
/// Per source partition: its last stable offset (librdkafka's statistics, every second).
type Ends = Arc<Mutex<BTreeMap<(String, i32), i64>>>;

/// The repartition topic of a pipeline's group.
pub fn topic(group: &str) -> String {
    format!("{group}-repartition")
}

/// The transactional id of the producer copying one source partition.
pub fn transactional_id(output: &str, topic: &str, partition: i32) -> String {
    format!("{output}-{topic}-{partition}")
}

/// One assigned source partition's producer, the next offset to commit when it copied
/// something since its last commit, and the next offset to copy once it copied anything.
struct PartitionWriter {
    writer: KafkaWriter,
    uncommitted: Option<i64>,
    copied: Option<i64>,
}

/// What the consumer's callbacks share with the copying loop.
struct Stage {
    env: KafkaEnv,
    brokers: Option<String>,
    output: String,
    checkpoint_interval_ms: u64,
    writers: Writers,
    failure: Arc<Mutex<Option<String>>>,
    ends: Ends,
    /// `RepartitionSettings::seed`.
    seed: Offsets,
}

impl Stage {
    /// Sets the start of each newly assigned partition that has a seed position and no offset
    /// committed in the stage's group to that position.
    fn seed_positions(&self, consumer: &BaseConsumer<Stage>, assigned: &mut TopicPartitionList) {
        let seeded: Vec<(String, i32, i64)> = assigned
            .elements()
            .iter()
            .filter_map(|element| {
                let key = (element.topic().to_string(), element.partition());
                self.seed.get(&key).map(|next| (key.0, key.1, *next))
            })
            .collect();
        if seeded.is_empty() {
            return;
        }
        let mut query = TopicPartitionList::new();
        for (topic, partition, _) in &seeded {
            query.add_partition(topic, *partition);
        }
        let committed = match consumer.committed_offsets(query, CALL_TIMEOUT) {
            Ok(committed) => committed,
            Err(error) => {
                self.fail(format!("repartition: {}", describe("reading the group's committed offsets", &error)));
                return;
            }
        };
        for (topic, partition, next) in seeded {
            let has_offset = committed
                .find_partition(&topic, partition)
                .is_some_and(|element| matches!(element.offset(), Offset::Offset(_)));
            if has_offset {
                continue;
            }
            if let Err(error) = assigned.set_partition_offset(&topic, partition, Offset::Offset(next)) {
                self.fail(format!("repartition: starting `{topic}` [{partition}] at {next}: {error}"));
                return;
            }
            tracing::info!("repartition: copying `{topic}` [{partition}] from {next}, the savepoint's position");
        }
    }

    /// Commits every partition's copies with its position (`commit_in_order`).
    fn commit(&self, consumer: &BaseConsumer<Stage>) -> Result<(), Error> {
        let mut writers = self.writers.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let group = consumer.group_metadata();
        let mut lists = Vec::new();
        let mut committing = Vec::new();
        for ((topic, partition), writer) in writers.iter_mut() {
            let Some(next) = writer.uncommitted.take() else { continue };
            let mut list = TopicPartitionList::new();
            list.add_partition_offset(topic, *partition, Offset::Offset(next))
                .map_err(|error| format!("listing offsets: {error}"))?;
            lists.push(list);
            committing.push(&mut writer.writer);
        }
        let mut jobs: Vec<(&mut KafkaWriter, Option<&TopicPartitionList>)> =
            committing.into_iter().zip(lists.iter().map(Some)).collect();
        commit_in_order(&mut jobs, group.as_ref())
    }

    /// Opens the producers of newly assigned partitions (fencing their previous owners).
    fn open(&self, assigned: &TopicPartitionList) -> Result<(), Error> {
        let mut writers = self.writers.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let new: Vec<(String, i32)> = assigned
            .elements()
            .iter()
            .map(|element| (element.topic().to_string(), element.partition()))
            .filter(|key| !writers.contains_key(key))
            .collect();
        let settings: Vec<ProducerSettings<'_>> = new
            .iter()
            .map(|(topic, partition)| ProducerSettings {
                brokers: self.brokers.as_deref(),
                compression: None,
                transactional_id: Some(transactional_id(&self.output, topic, *partition)),
                checkpoint_interval_ms: self.checkpoint_interval_ms,
            })
            .collect();
        for (key, writer) in new.into_iter().zip(KafkaWriter::open_all(&self.env, &settings)?) {
            writers.insert(key, PartitionWriter { writer, uncommitted: None, copied: None });
        }
        Ok(())
    }

    fn fail(&self, message: String) {
        self.failure.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).get_or_insert(message);
    }
}

impl ClientContext for Stage {
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, facility: &str, message: &str) {
        forward_log(level, facility, message);
    }

    fn stats(&self, statistics: rdkafka::Statistics) {
        record_stable_ends(&self.ends, statistics);
    }
}

impl ConsumerContext for Stage {
    /// As rdkafka's default (the stage uses the eager protocol, as the sources do), with the
    /// savepoint's positions set on newly assigned partitions first.
    fn rebalance(&self, consumer: &BaseConsumer<Self>, err: RDKafkaRespErr, tpl: &mut TopicPartitionList) {
        let assign = err == RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS;
        if assign {
            self.seed_positions(consumer, tpl);
        }
        let rebalance = match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => Rebalance::Assign(tpl),
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => Rebalance::Revoke(tpl),
            _ => Rebalance::Error(KafkaError::Rebalance(err.into())),
        };
        self.pre_rebalance(consumer, &rebalance);
        let outcome = if assign { consumer.assign(tpl) } else { consumer.unassign() };
        if let Err(error) = outcome {
            self.fail(format!("repartition: {}", describe("answering a rebalance", &error)));
        }
        self.post_rebalance(consumer, &rebalance);
    }

    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(revoked) = rebalance {
            // Hand over nothing uncommitted: the next owner starts at these offsets.
            if let Err(error) = self.commit(consumer) {
                self.fail(format!("repartition: committing before a rebalance: {error}"));
            }
            let mut writers = self.writers.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            for element in revoked.elements() {
                writers.remove(&(element.topic().to_string(), element.partition()));
            }
        }
    }

    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let listed = |list: &TopicPartitionList| {
            let partitions: Vec<(String, i32)> =
                list.elements().iter().map(|element| (element.topic().to_string(), element.partition())).collect();
            super::describe_partitions(&partitions)
        };
        match rebalance {
            Rebalance::Assign(assigned) => {
                if let Err(error) = self.open(assigned) {
                    self.fail(format!("repartition: {error}"));
                }
                tracing::info!("repartition: stage assigned {}", listed(assigned));
            }
            Rebalance::Revoke(revoked) => tracing::info!("repartition: stage revoked {}", listed(revoked)),
            Rebalance::Error(_) => {}
        }
    }
}

impl Repartitioner {
    /// Creates the repartition topic when missing (with the source topics' partition count) and
    /// starts copying. Returns the topic.
    pub fn start(settings: &RepartitionSettings<'_>) -> Result<(Repartitioner, String), Error> {
        let output = topic(settings.group);
        let partitions = partition_count(settings.env, settings.brokers, settings.topics)?;
        // An existing topic keeps its partition count.
        let partitions = ensure_topic(settings.env, settings.brokers, &output, partitions, "repartition", false)?;
        let failure = Arc::new(Mutex::new(None));
        let (writers, ends) = (Writers::default(), Ends::default());
        let stage = Stage {
            writers: Arc::clone(&writers),
            ends: Arc::clone(&ends),
            env: settings.env.clone(),
            brokers: settings.brokers.map(str::to_string),
            output: output.clone(),
            checkpoint_interval_ms: settings.checkpoint_interval_ms,
            failure: Arc::clone(&failure),
            seed: settings.seed.clone(),
        };
        let reset = match settings.start {
            KafkaStart::Earliest => "earliest",
            KafkaStart::Latest | KafkaStart::GroupOffsets => "latest",
        };
        let mut config = settings.env.consumer_config(settings.brokers)?;
        config
            .set("group.id", &output)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("isolation.level", "read_committed")
            .set("statistics.interval.ms", "1000")
            .set("auto.offset.reset", reset);
        let consumer: BaseConsumer<Stage> = config
            .create_with_context(stage)
            .map_err(|error| format!("repartition: creating the consumer: {error}"))?;
        consumer.subscribe(settings.topics).map_err(|error| format!("repartition: subscribing: {error}"))?;
        let purge_every = duration_from_env("PULSE_KAFKA_REPARTITION_PURGE_EVERY", PURGE_EVERY)?;
        let commit_every = duration_from_env("PULSE_KAFKA_REPARTITION_COMMIT_EVERY", COMMIT_EVERY)?;
        let purger = Purger::new(settings.env, settings.brokers)?;
        let stop = Arc::new(AtomicBool::new(false));
        let committed = Arc::new(Mutex::new(BTreeMap::new()));
        let thread = {
            let (stop, committed) = (Arc::clone(&stop), Arc::clone(&committed));
            let by = settings.by;
            let output = output.clone();
            std::thread::Builder::new()
                .name("repartition".to_string())
                .spawn(move || {
                    let purge = Purge { purger, committed, every: purge_every };
                    copy(&consumer, &output, partitions, by, &stop, commit_every, &purge)
                })
                .map_err(|error| format!("repartition: starting its thread: {error}"))?
        };
        Ok((Repartitioner { stop, failure, thread: Some(thread), committed, writers, ends }, output))
    }

    /// The pipeline committed its position `next` in repartition partition `partition`: the
    /// records below it may go.
    pub fn committed(&self, partition: i32, next: i64) {
        let mut committed = self.committed.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let entry = committed.entry(partition).or_insert(next);
        *entry = (*entry).max(next);
    }

    /// (source topic, partition, records not copied yet) of every partition the stage copies
    /// and has copied from.
    pub fn lag(&self) -> Vec<(String, i32, i64)> {
        let writers = self.writers.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let ends = self.ends.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        writers
            .iter()
            .filter_map(|(key, writer)| Some((key.0.clone(), key.1, (*ends.get(key)? - writer.copied?).max(0))))
            .collect()
    }

    /// The error that stopped the stage, if one did.
    pub fn failure(&self) -> Option<String> {
        self.failure.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }
}

impl Drop for Repartitioner {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The purging side of the stage: what the pipeline committed, and the admin client.
struct Purge {
    purger: Purger,
    committed: Arc<Mutex<BTreeMap<i32, i64>>>,
    every: Duration,
}

/// The partitions to purge and below which offset: those committed past their last purge.
fn purge_marks(committed: &BTreeMap<i32, i64>, purged: &BTreeMap<i32, i64>) -> BTreeMap<i32, i64> {
    committed
        .iter()
        .filter(|(partition, next)| purged.get(partition).is_none_or(|done| done < next))
        .map(|(partition, next)| (*partition, *next))
        .collect()
}

impl Purge {
    /// Deletes what was committed past since the last purge, updating `purged`; a failure is
    /// reported when it differs from the previous one (a broker without `DeleteRecords` fails
    /// every time) and retried next time: only space is at stake.
    fn run(&self, output: &str, purged: &mut BTreeMap<i32, i64>, last_error: &mut Option<String>) {
        let committed = self.committed.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone();
        let below = purge_marks(&committed, purged);
        if below.is_empty() {
            return;
        }
        match self.purger.purge(output, &below) {
            Ok(()) => {
                tracing::debug!("repartition: deleted the records of `{output}` below {below:?}");
                purged.extend(below);
                *last_error = None;
            }
            Err(error) => {
                let error = error.to_string();
                if last_error.as_ref() != Some(&error) {
                    tracing::warn!("repartition: {error} (the records stay until the topic's retention)");
                }
                *last_error = Some(error);
            }
        }
    }
}

/// The copying loop: until stopped or failed.
fn copy(
    consumer: &BaseConsumer<Stage>,
    output: &str,
    partitions: i32,
    by: &[&str],
    stop: &AtomicBool,
    commit_every: Duration,
    purge: &Purge,
) {
    let stage = consumer.context();
    let (mut last_purge, mut purged, mut purge_error) = (Instant::now(), BTreeMap::new(), None);
    let mut last_commit = Instant::now();
    let mut uncommitted = false;
    let mut headers = vec![(ORIGIN_HEADER, String::new())];
    let failed = || stage.failure.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).is_some();
    while !stop.load(Ordering::Relaxed) && !failed() {
        match consumer.poll(POLL) {
            None => {}
            Some(Err(KafkaError::MessageConsumption(code))) if transient(code) => {}
            Some(Err(error)) => stage.fail(format!("repartition: consuming: {error}")),
            Some(Ok(message)) => {
                let (topic, partition, offset) = (message.topic(), message.partition(), message.offset());
                let payload = message.payload().unwrap_or_default();
                headers[0].1 = format!("{topic}/{partition}/{offset}");
                // A record without a usable key goes where its origin sends it (deterministic,
                // so a replay lands on the same partition); the pipeline dead-letters it.
                let key = partition_key(payload, by).unwrap_or_else(|| headers[0].1.clone());
                let to = partition_of(&key, partitions);
                let mut writers = stage.writers.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                let sent = match writers.get_mut(&(topic.to_string(), partition)) {
                    Some(writer) => writer.writer.send(output, Some(to), Some(&key), payload, &headers).map(|()| {
                        writer.uncommitted = Some(offset + 1);
                        writer.copied = Some(offset + 1);
                    }),
                    None => {
                        Err(Error::from(format!("internal: a record of {topic}/{partition}, which has no producer")))
                    }
                };
                drop(writers);
                match sent {
                    Ok(()) => uncommitted = true,
                    Err(error) => stage.fail(format!("repartition: {error}")),
                }
            }
        }
        if uncommitted && last_commit.elapsed() >= commit_every {
            if let Err(error) = stage.commit(consumer) {
                stage.fail(format!("repartition: {error}"));
            }
            last_commit = Instant::now();
            uncommitted = false;
        }
        if last_purge.elapsed() >= purge.every {
            purge.run(output, &mut purged, &mut purge_error);
            last_purge = Instant::now();
        }
    }
    if uncommitted && !failed() {
        if let Err(error) = stage.commit(consumer) {
            stage.fail(format!("repartition: {error}"));
        }
    }
}

/// The first origin offset, per source partition, of the records in `topic` (a repartition
/// topic) from each partition's start in `starts` to its current end: what was copied but not
/// yet processed at those positions. Read `read_uncommitted`, so open and aborted transactions'
/// copies count too (they can only move a start back, and the duplicate filter drops what was
/// processed). A group savepoint starts copying each source partition at the smaller of this and
/// the stage's committed offset.
pub fn pending_origins(
    env: &KafkaEnv,
    brokers: Option<&str>,
    topic: &str,
    starts: &[(i32, i64)],
) -> Result<Offsets, Error> {
    let mut config = env.consumer_config(brokers)?;
    config
        .set("group.id", "pulse-savepoint-reader")
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_uncommitted")
        .set("enable.partition.eof", "true");
    let consumer: BaseConsumer<SourceLog> =
        config.create_with_context(SourceLog).map_err(|error| describe("creating a consumer", &error))?;
    // Each partition is read to the end-of-partition event, not to the end `fetch_watermarks`
    // lists: tansu 0.6 lists the base offset of a partition's last batch plus one.
    let mut list = TopicPartitionList::new();
    let mut pending = std::collections::BTreeSet::new();
    for (partition, start) in starts {
        list.add_partition_offset(topic, *partition, Offset::Offset(*start))
            .map_err(|error| format!("listing `{topic}` [{partition}]: {error}"))?;
        pending.insert(*partition);
    }
    let mut first = Offsets::new();
    if pending.is_empty() {
        return Ok(first);
    }
    consumer.assign(&list).map_err(|error| describe(&format!("reading `{topic}`"), &error))?;
    let deadline = Instant::now() + READ_PENDING_WITHIN;
    let within = |pending: &std::collections::BTreeSet<i32>| {
        if Instant::now() <= deadline {
            return Ok(());
        }
        Err(Error::from(format!(
            "reading `{topic}`: partitions {pending:?} did not reach their ends within {} s",
            READ_PENDING_WITHIN.as_secs()
        )))
    };
    read_to_ends(&consumer, topic, pending, within, |message| {
        let origin = message
            .headers()
            .and_then(|headers| headers.iter().find(|header| header.key == ORIGIN_HEADER))
            .and_then(|header| std::str::from_utf8(header.value?).ok())
            .and_then(parse_origin);
        let Some((origin_topic, origin_partition, offset)) = origin else {
            return Err(Error::from(format!(
                "`{topic}` [{}] at {}: a record without a `{ORIGIN_HEADER}` header",
                message.partition(),
                message.offset()
            )));
        };
        let entry = first.entry((origin_topic, origin_partition)).or_insert(offset);
        *entry = (*entry).min(offset);
        Ok(())
    })?;
    Ok(first)
}

/// The canonical text (G12) of the value at `by` in a JSON record; `None` when the record is
/// not a JSON object or the value is null or absent.
pub fn partition_key(payload: &[u8], by: &[&str]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(payload).ok()?;
    let mut at = &value;
    for segment in by {
        at = at.as_object()?.get(*segment)?;
    }
    let text = at.to_string();
    pulse_stdlib::text::key_form(&pulse_stdlib::Val::from_json_text(&text).ok()?)
}

/// The repartition partition of a key: CRC-32 of its text modulo the partition count, as
/// librdkafka's default partitioner (`consistent_random`) picks for a non-empty key. A bootstrap
/// over the source topic uses it to file each key's state under the partition the live run
/// will read the key from.
pub fn partition_of(key: &str, partitions: i32) -> i32 {
    let partitions = u32::try_from(partitions).unwrap_or(1).max(1);
    (crc32fast::hash(key.as_bytes()) % partitions) as i32
}

/// (topic, partition, offset) of a `pulse-origin` header value.
pub fn parse_origin(text: &str) -> Option<(String, i32, i64)> {
    let (rest, offset) = text.rsplit_once('/')?;
    let (topic, partition) = rest.rsplit_once('/')?;
    Some((topic.to_string(), partition.parse().ok()?, offset.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_the_canonical_text_of_the_field() {
        assert_eq!(partition_key(br#"{"userId":"u1","n":1}"#, &["userId"]).as_deref(), Some("\"u1\""));
        assert_eq!(
            partition_key(br#"{"user":{"id":7.0}}"#, &["user", "id"]),
            partition_key(br#"{"user":{"id":7}}"#, &["user", "id"])
        );
        assert_ne!(partition_key(br#"{"id":"7"}"#, &["id"]), partition_key(br#"{"id":7}"#, &["id"]));
        assert_eq!(partition_key(br#"{"userId":null}"#, &["userId"]), None);
        assert_eq!(partition_key(b"not json", &["userId"]), None);
        assert_eq!(partition_key(br#"[1]"#, &["userId"]), None);
    }

    #[test]
    fn purges_follow_the_committed_positions() {
        let committed = BTreeMap::from([(0, 10), (1, 5), (2, 7)]);
        let purged = BTreeMap::from([(0, 10), (1, 3)]);
        assert_eq!(purge_marks(&committed, &purged), BTreeMap::from([(1, 5), (2, 7)]));
        assert!(purge_marks(&committed, &committed).is_empty());
    }

    #[test]
    fn keys_go_where_librdkafkas_default_partitioner_sends_them() {
        // CRC-32 of "123456789" is 0xCBF43926 (3,421,780,262).
        assert_eq!(partition_of("123456789", 1000), 262);
        assert_eq!(partition_of("\"u1\"", 1), 0);
        assert!((0..4).contains(&partition_of("\"u1\"", 4)));
    }

    #[test]
    fn origins_parse_back() {
        assert_eq!(parse_origin("a/b-topic/3/42"), Some(("a/b-topic".to_string(), 3, 42)));
        assert_eq!(parse_origin("topic/x/1"), None);
    }
}
