//! The producer behind kafka-sinks, Kafka dead letters and the changelog: transactional or at
//! least once, with delivery failures surfaced at the next flush or commit.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::consumer::ConsumerGroupMetadata;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders, ToBytes};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::{ClientContext, Message, Offset, TopicPartitionList};

use super::changelog::BATCH_HEADER;
use super::config::{describe, forward_log, Error, KafkaEnv, Role, CALL_TIMEOUT};

/// Added to the checkpoint interval for `transaction.timeout.ms`: the longest a restart may take
/// before the broker aborts the open transaction on its own.
pub(super) const RECOVERY_ALLOWANCE_MS: u64 = 60_000;

/// Keeps the first delivery failure; the driver fails the run on it at the next check. Also
/// the largest offset delivered per partition of changelog records (opaque 1).
#[derive(Clone, Default)]
pub(super) struct SinkContext {
    failure: Arc<Mutex<Option<String>>>,
    changelog_offsets: Arc<Mutex<BTreeMap<i32, i64>>>,
    /// Whether the broker acknowledged a record without an offset (see `delivery`).
    unplaced: Arc<std::sync::atomic::AtomicBool>,
}

impl ClientContext for SinkContext {
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, facility: &str, message: &str) {
        forward_log(level, facility, message);
    }
}

/// The delivery opaque of changelog records.
pub(super) const CHANGELOG_RECORD: usize = 1;

impl ProducerContext for SinkContext {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, opaque: usize) {
        match result {
            Err((error, message)) => {
                let mut failure = self.failure.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                failure.get_or_insert_with(|| {
                    describe(&format!("delivering to `{}`", message.topic()), error).to_string()
                });
            }
            Ok(message) if opaque == CHANGELOG_RECORD => {
                let mut offsets = self.changelog_offsets.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                let offset = offsets.entry(message.partition()).or_insert(-1);
                *offset = (*offset).max(message.offset());
            }
            Ok(message) => {
                // An idempotent producer's batch the broker answers "duplicate sequence number"
                // counts as delivered, without an offset: the broker holds an earlier copy.
                // That is expected after a retry; a broker that says so of a batch it never
                // stored loses it. Said once per producer, so such a loss leaves a trace.
                if message.offset() < 0 && !self.unplaced.swap(true, std::sync::atomic::Ordering::Relaxed) {
                    tracing::info!(
                        "kafka: the broker acknowledged a record to `{}` [{}] without an offset (a duplicate of a batch it holds)",
                        message.topic(),
                        message.partition()
                    );
                }
            }
        }
    }
}

pub struct ProducerSettings<'a> {
    pub brokers: Option<&'a str>,
    pub compression: Option<&'a str>,
    /// Transactional with this id (see `transactional_id`), else idempotent.
    pub transactional_id: Option<String>,
    pub checkpoint_interval_ms: u64,
}

/// One producer, shared by the kafka-sinks of a run that name the same brokers.
pub struct KafkaWriter {
    producer: BaseProducer<SinkContext>,
    context: SinkContext,
    transactional: bool,
    pub transactional_id: Option<String>,
    /// The changelog topic this producer writes, once it has.
    changelog_topic: Option<String>,
}

impl KafkaWriter {
    pub fn open(env: &KafkaEnv, settings: &ProducerSettings<'_>) -> Result<KafkaWriter, Error> {
        let mut config = env.config(settings.brokers, Role::Producer)?;
        config.set("enable.idempotence", "true").set("acks", "all");
        if let Some(compression) = settings.compression {
            config.set("compression.type", compression);
        }
        let transactional_id = settings.transactional_id.clone();
        if let Some(id) = &transactional_id {
            config.set("transactional.id", id);
            if !env.properties.iter().any(|(name, _)| name == "transaction.timeout.ms") {
                let timeout = (settings.checkpoint_interval_ms + RECOVERY_ALLOWANCE_MS).min(900_000);
                config.set("transaction.timeout.ms", timeout.to_string());
            }
        }
        let context = SinkContext::default();
        let producer: BaseProducer<SinkContext> =
            config.create_with_context(context.clone()).map_err(|error| describe("creating the producer", &error))?;
        let transactional = transactional_id.is_some();
        if transactional {
            // Fences any earlier producer with the same id and aborts its open transaction.
            producer.init_transactions(CALL_TIMEOUT).map_err(|error| describe("initialising transactions", &error))?;
            producer.begin_transaction().map_err(|error| describe("beginning a transaction", &error))?;
        }
        Ok(KafkaWriter { producer, context, transactional, transactional_id, changelog_topic: None })
    }

    /// Opens a producer per entry of `settings`, all at once: opening a transactional one is a
    /// few round trips to the transaction coordinator (hundreds of milliseconds on tansu), and
    /// a takeover opens several.
    pub fn open_all(env: &KafkaEnv, settings: &[ProducerSettings<'_>]) -> Result<Vec<KafkaWriter>, Error> {
        match settings {
            [one] => Ok(vec![KafkaWriter::open(env, one)?]),
            settings => std::thread::scope(|scope| {
                let running: Vec<_> =
                    settings.iter().map(|settings| scope.spawn(|| KafkaWriter::open(env, settings))).collect();
                running
                    .into_iter()
                    .map(|thread| {
                        thread
                            .join()
                            .unwrap_or_else(|_| Err(Error::from("internal: opening a producer panicked".to_string())))
                    })
                    .collect()
            }),
        }
    }

    /// Queues one record with `headers`; waits while librdkafka's queue is full (backpressure).
    pub fn send(
        &mut self,
        topic: &str,
        partition: Option<i32>,
        key: Option<&str>,
        value: &[u8],
        headers: &[(&str, String)],
    ) -> Result<(), Error> {
        let headers = headers.iter().fold(OwnedHeaders::new_with_capacity(headers.len()), |all, (name, value)| {
            all.insert(Header { key: name, value: Some(value.as_str()) })
        });
        let mut record: BaseRecord<'_, str, [u8], usize> =
            BaseRecord::with_opaque_to(topic, 0).payload(value).headers(headers);
        if let Some(key) = key {
            record = record.key(key);
        }
        if let Some(partition) = partition {
            record = record.partition(partition);
        }
        self.enqueue(topic, record)?;
        self.failure()
    }

    /// Hands a record to librdkafka, waiting while its queue is full (backpressure).
    fn enqueue<K: ToBytes + ?Sized, P: ToBytes + ?Sized>(
        &self,
        topic: &str,
        mut record: BaseRecord<'_, K, P, usize>,
    ) -> Result<(), Error> {
        loop {
            match self.producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), returned)) => {
                    record = returned;
                    self.producer.poll(Duration::from_millis(10));
                }
                Err((error, _)) => return Err(describe(&format!("producing to `{topic}`"), &error)),
            }
        }
        self.producer.poll(Duration::ZERO);
        Ok(())
    }

    /// Queues one changelog record for `partition`, tagged with the checkpoint's batch id; a
    /// `None` value is a tombstone.
    pub fn send_changelog(
        &mut self,
        topic: &str,
        partition: i32,
        key: &[u8],
        value: Option<&[u8]>,
        batch: &str,
    ) -> Result<(), Error> {
        if self.changelog_topic.is_none() {
            self.changelog_topic = Some(topic.to_string());
        }
        let headers = OwnedHeaders::new().insert(Header { key: BATCH_HEADER, value: Some(batch) });
        let mut record: BaseRecord<'_, [u8], [u8], usize> =
            BaseRecord::with_opaque_to(topic, CHANGELOG_RECORD).partition(partition).key(key).headers(headers);
        if let Some(value) = value {
            record = record.payload(value);
        }
        self.enqueue(topic, record)
    }

    /// The largest offset of a delivered changelog record of `partition`.
    pub fn changelog_offset(&self, partition: i32) -> Option<i64> {
        self.context.changelog_offsets.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).get(&partition).copied()
    }

    fn failure(&self) -> Result<(), Error> {
        match self.context.failure.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).take() {
            Some(message) => Err(Error::Failed(message)),
            None => Ok(()),
        }
    }

    /// Waits until every record sent so far is acknowledged (so it holds its offset), without
    /// ending the transaction; a delivery failure is the error.
    pub fn flush(&mut self) -> Result<(), Error> {
        self.producer.flush(CALL_TIMEOUT).map_err(|error| describe("flushing", &error))?;
        self.failure()
    }

    /// Makes everything sent so far durable: a transaction commit (with the source offsets of
    /// `offsets`, when given) followed by a new transaction, or a flush.
    pub fn commit(&mut self, offsets: &[(&TopicPartitionList, &ConsumerGroupMetadata)]) -> Result<(), Error> {
        self.prepare_commit(offsets)?;
        self.end_commit()
    }

    /// The first half of `commit`, which may run for several producers at once: waits for
    /// every record sent to be acknowledged and adds `offsets` to the transaction. A producer
    /// that writes a changelog adds to the first list, for each partition it wrote, the
    /// changelog offset after its last record (the batch's marker): the group's committed
    /// offset of a changelog partition thus names its last committed batch, which is how a
    /// restore tells committed batches from aborted ones on a broker that shows both.
    pub fn prepare_commit(&mut self, offsets: &[(&TopicPartitionList, &ConsumerGroupMetadata)]) -> Result<(), Error> {
        self.producer.flush(CALL_TIMEOUT).map_err(|error| describe("flushing", &error))?;
        self.failure()?;
        if !self.transactional {
            return Ok(());
        }
        let mut with_changelog = None;
        if let (Some(topic), Some((list, _))) = (&self.changelog_topic, offsets.first()) {
            let mut list = (*list).clone();
            let written = self.context.changelog_offsets.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            for (partition, offset) in written.iter() {
                let _ = list.add_partition_offset(topic, *partition, Offset::Offset(offset + 1));
            }
            with_changelog = Some(list);
        }
        for (index, (list, group)) in offsets.iter().enumerate() {
            let list = match (&with_changelog, index) {
                (Some(extended), 0) => extended,
                _ => *list,
            };
            if list.count() == 0 {
                continue;
            }
            self.producer
                .send_offsets_to_transaction(list, group, CALL_TIMEOUT)
                .map_err(|error| describe("adding offsets to the transaction", &error))?;
        }
        Ok(())
    }

    /// The second half of `commit`: ends the transaction (`EndTxn`) and begins the next.
    pub fn end_commit(&mut self) -> Result<(), Error> {
        if !self.transactional {
            return Ok(());
        }
        self.producer
            .commit_transaction(CALL_TIMEOUT)
            .map_err(|error| describe("committing the transaction", &error))?;
        self.producer.begin_transaction().map_err(|error| describe("beginning a transaction", &error))
    }
}

/// Commits several producers' transactions, each with its own offsets (`None`: none): the slow
/// half (acknowledgements, adding the offsets) for all at once, then the `EndTxn`s one at a
/// time, in the given order. Concurrent `EndTxn`s of transactions that wrote to the same
/// partitions race in tansu 0.6 (a finished transaction can be left holding its partitions'
/// last stable offset for good), so one instance never sends two at once.
pub fn commit_in_order(
    jobs: &mut [(&mut KafkaWriter, Option<&TopicPartitionList>)],
    group: Option<&ConsumerGroupMetadata>,
) -> Result<(), Error> {
    let prepare = |writer: &mut KafkaWriter, list: Option<&TopicPartitionList>| match (group, list) {
        (Some(group), Some(list)) => writer.prepare_commit(&[(list, group)]),
        _ => writer.prepare_commit(&[]),
    };
    match &mut *jobs {
        [(writer, list)] => prepare(writer, *list)?,
        jobs => std::thread::scope(|scope| {
            let running: Vec<_> =
                jobs.iter_mut().map(|(writer, list)| scope.spawn(|| prepare(writer, *list))).collect();
            running.into_iter().try_for_each(|thread| {
                thread.join().unwrap_or_else(|_| Err(Error::from("internal: a commit thread panicked".to_string())))
            })
        })?,
    }
    jobs.iter_mut().try_for_each(|(writer, _)| writer.end_commit())
}

/// `pulse-<pipeline>-<instance>`: stable across restarts of one instance, so a restart fences
/// its predecessor.
pub fn transactional_id(pipeline: &str, instance: &str) -> String {
    format!("pulse-{pipeline}-{instance}")
}

/// `<group>-p<partition>` (`-<producer>` for a further producer): the id of the producer that
/// writes everything a source partition's steps produce. Whichever instance the group gives
/// the partition to opens it, which fences the previous owner and aborts its open transaction,
/// so nothing that owner did after its last commit can still land.
///
/// Generation 1 (`-g1` appended) is the partition's second set of producers: a checkpoint's
/// transactions commit in one generation while the next checkpoint's records go to the other.
pub fn partition_transactional_id(group: &str, partition: i32, producer: usize, generation: u8) -> String {
    let id = match producer {
        0 => format!("{group}-p{partition}"),
        _ => format!("{group}-p{partition}-{producer}"),
    };
    match generation {
        0 => id,
        generation => format!("{id}-g{generation}"),
    }
}
