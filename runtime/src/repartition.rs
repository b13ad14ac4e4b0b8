//! The repartition stage of a kafka-source whose topic is not keyed by the key of the state
//! after it (the compiler decides; see `KafkaPartitioning`).
//!
//! A thread of each instance consumes the source topics in the group `<group>-repartition` and
//! re-produces every record, unchanged, to `<group>-repartition` keyed by the state's key
//! (canonical key text, G12), so all records of a key land on one partition. Records and the
//! source offsets commit in one transaction (`send_offsets_to_transaction`) at least every
//! `COMMIT_EVERY`, and before partitions are given up. The pipeline itself reads the
//! repartition topic as its source, in the group `<group>`, with state following its partitions.
//!
//! Each record carries `pulse-origin: <topic>/<partition>/<offset>` of the record it copies: the
//! pipeline derives its output ids from it (so they are those of a run without the hop), and
//! drops a record whose origin offset is not above the last it processed from that origin
//! partition in that repartition partition. On a broker that shows aborted records (tansu), the
//! copies an aborted transaction left are thus processed once.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::KafkaError;
use rdkafka::{ClientContext, Message, Offset, TopicPartitionList};

use crate::kafka::{self, KafkaEnv, KafkaWriter, Offsets, ProducerSettings};
use crate::KafkaStart;

/// The longest a copied record waits for its transaction to commit (the pipeline reads the
/// repartition topic `read_committed`, so this adds to the end-to-end latency).
const COMMIT_EVERY: Duration = Duration::from_millis(100);
const POLL: Duration = Duration::from_millis(50);
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
    pub instance: &'a str,
    pub checkpoint_interval_ms: u64,
}

/// The running stage; dropping it commits what it copied and stops it.
pub struct Repartitioner {
    stop: Arc<AtomicBool>,
    failure: Arc<Mutex<Option<String>>>,
    thread: Option<JoinHandle<()>>,
}

/// The repartition topic of a pipeline's group.
pub fn topic(group: &str) -> String {
    format!("{group}-repartition")
}

/// What the consumer's callbacks share with the copying loop.
struct Stage {
    writer: Mutex<KafkaWriter>,
    /// Next offset per source partition, since the last commit included.
    positions: Mutex<Offsets>,
    failure: Arc<Mutex<Option<String>>>,
}

impl Stage {
    /// Commits the copies with the source positions in one transaction.
    fn commit(&self, consumer: &BaseConsumer<Stage>) -> Result<(), String> {
        let mut list = TopicPartitionList::new();
        for ((topic, partition), next) in self.positions.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).iter()
        {
            let _ = list.add_partition_offset(topic, *partition, Offset::Offset(*next));
        }
        let mut writer = self.writer.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        match consumer.group_metadata() {
            Some(group) if list.count() > 0 => writer.commit(&[(&list, &group)]),
            _ => writer.commit(&[]),
        }
    }

    fn fail(&self, message: String) {
        self.failure.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).get_or_insert(message);
    }
}

impl ClientContext for Stage {
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, facility: &str, message: &str) {
        kafka::forward_log(level, facility, message);
    }
}

impl ConsumerContext for Stage {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(revoked) = rebalance {
            // Hand over nothing uncommitted: the next owner starts at these offsets.
            if let Err(error) = self.commit(consumer) {
                self.fail(format!("repartition: committing before a rebalance: {error}"));
            }
            let mut positions = self.positions.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            for element in revoked.elements() {
                positions.remove(&(element.topic().to_string(), element.partition()));
            }
        }
    }
}

impl Repartitioner {
    /// Creates the repartition topic when missing (with the source topics' partition count) and
    /// starts copying. Returns the topic.
    pub fn start(settings: &RepartitionSettings<'_>) -> Result<(Repartitioner, String), String> {
        let output = topic(settings.group);
        let partitions = kafka::partition_count(settings.env, settings.brokers, settings.topics)?;
        kafka::ensure_topic(settings.env, settings.brokers, &output, partitions, "repartition", false)?;
        let failure = Arc::new(Mutex::new(None));
        let writer = KafkaWriter::open(
            settings.env,
            &ProducerSettings {
                brokers: settings.brokers,
                compression: None,
                transactional_id: Some(format!("{output}-{}", settings.instance)),
                checkpoint_interval_ms: settings.checkpoint_interval_ms,
            },
        )?;
        let stage = Stage { writer: Mutex::new(writer), positions: Mutex::default(), failure: Arc::clone(&failure) };
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
            .set("auto.offset.reset", reset);
        let consumer: BaseConsumer<Stage> = config
            .create_with_context(stage)
            .map_err(|error| format!("repartition: creating the consumer: {error}"))?;
        consumer.subscribe(settings.topics).map_err(|error| format!("repartition: subscribing: {error}"))?;
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let stop = Arc::clone(&stop);
            let by = settings.by;
            let output = output.clone();
            std::thread::Builder::new()
                .name("repartition".to_string())
                .spawn(move || copy(&consumer, &output, by, &stop))
                .map_err(|error| format!("repartition: starting its thread: {error}"))?
        };
        Ok((Repartitioner { stop, failure, thread: Some(thread) }, output))
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

/// The copying loop: until stopped or failed.
fn copy(consumer: &BaseConsumer<Stage>, output: &str, by: &[&str], stop: &AtomicBool) {
    let stage = consumer.context();
    let mut last_commit = Instant::now();
    let mut uncommitted = false;
    let mut headers = vec![(ORIGIN_HEADER, String::new())];
    while !stop.load(Ordering::Relaxed)
        && stage.failure.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).is_none()
    {
        match consumer.poll(POLL) {
            None => {}
            Some(Err(KafkaError::MessageConsumption(code))) if kafka::transient(code) => {}
            Some(Err(error)) => stage.fail(format!("repartition: consuming: {error}")),
            Some(Ok(message)) => {
                let (topic, partition, offset) = (message.topic(), message.partition(), message.offset());
                let payload = message.payload().unwrap_or_default();
                headers[0].1 = format!("{topic}/{partition}/{offset}");
                // A record without a usable key goes where its origin sends it (deterministic,
                // so a replay lands on the same partition); the pipeline dead-letters it.
                let key = partition_key(payload, by).unwrap_or_else(|| headers[0].1.clone());
                let sent = stage.writer.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).send(
                    output,
                    Some(&key),
                    payload,
                    &headers,
                );
                match sent {
                    Ok(()) => {
                        stage
                            .positions
                            .lock()
                            .unwrap_or_else(|poisoned| poisoned.into_inner())
                            .insert((topic.to_string(), partition), offset + 1);
                        uncommitted = true;
                    }
                    Err(error) => stage.fail(format!("repartition: {error}")),
                }
            }
        }
        if uncommitted && last_commit.elapsed() >= COMMIT_EVERY {
            if let Err(error) = stage.commit(consumer) {
                stage.fail(format!("repartition: {error}"));
            }
            last_commit = Instant::now();
            uncommitted = false;
        }
    }
    if uncommitted && stage.failure.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).is_none() {
        if let Err(error) = stage.commit(consumer) {
            stage.fail(format!("repartition: {error}"));
        }
    }
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

/// (topic, partition, offset) of a `pulse-origin` header value.
pub fn parse_origin(text: &str) -> Option<(String, i32, i64)> {
    let (rest, offset) = text.rsplit_once('/')?;
    let (topic, partition) = rest.rsplit_once('/')?;
    Some((topic.to_string(), partition.parse().ok()?, offset.parse().ok()?))
}

/// The last origin offset processed, per (repartition partition, origin partition): the
/// duplicate filter of the module docs, kept in the shard's state.
pub fn seen_key(partition: i32, origin_topic: &str, origin_partition: i32) -> Vec<u8> {
    format!("{partition}/{origin_topic}/{origin_partition}").into_bytes()
}

/// The state node of the duplicate filter (not a valid node id, so it never meets one).
pub const SEEN_NODE: &str = "@repartition";

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
    fn origins_parse_back() {
        assert_eq!(parse_origin("a/b-topic/3/42"), Some(("a/b-topic".to_string(), 3, 42)));
        assert_eq!(parse_origin("topic/x/1"), None);
    }
}
