//! Topic administration: partition counts, creating the changelog and repartition topics, and
//! purging repartition records every member has read.

use std::collections::BTreeMap;
use std::sync::Arc;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::{ClientContext, Offset, TopicPartitionList};

use super::config::{describe, forward_log, Error, KafkaEnv, Role, CALL_TIMEOUT};

/// The most partitions of any of `topics`.
pub fn partition_count(env: &KafkaEnv, brokers: Option<&str>, topics: &[&str]) -> Result<i32, Error> {
    let config = env.config(brokers, Role::Admin)?;
    let consumer: BaseConsumer<SourceLog> =
        config.create_with_context(SourceLog).map_err(|error| describe("creating a metadata client", &error))?;
    let partitions = topic_partitions(&consumer, topics)?;
    Ok(partitions.iter().map(|(_, partition)| partition + 1).max().unwrap_or(0))
}

/// (topic, partition) of every partition of `topics`; an unknown topic is an error.
pub(super) fn topic_partitions<C: ConsumerContext, T: AsRef<str>>(
    consumer: &BaseConsumer<C>,
    topics: &[T],
) -> Result<Vec<(String, i32)>, Error> {
    let mut partitions = Vec::new();
    for topic in topics.iter().map(AsRef::as_ref) {
        let metadata = consumer
            .fetch_metadata(Some(topic), CALL_TIMEOUT)
            .map_err(|error| describe(&format!("reading the metadata of topic `{topic}`"), &error))?;
        for found in metadata.topics() {
            if let Some(error) = found.error() {
                return Err(Error::from(format!("kafka: topic `{topic}`: {:?}", RDKafkaErrorCode::from(error))));
            }
            partitions.extend(found.partitions().iter().map(|partition| (topic.to_string(), partition.id())));
        }
    }
    Ok(partitions)
}

/// Creates `topic` with `partitions` partitions unless it exists with at least as many;
/// `purpose` (`changelog`, `repartition`) names it in messages. Returns its partition count.
pub fn ensure_topic(
    env: &KafkaEnv,
    brokers: Option<&str>,
    topic: &str,
    partitions: i32,
    purpose: &str,
    compacted: bool,
) -> Result<i32, Error> {
    let config = env.config(brokers, Role::Admin)?;
    let consumer: BaseConsumer<SourceLog> =
        config.create_with_context(SourceLog).map_err(|error| describe("creating a metadata client", &error))?;
    let metadata = consumer
        .fetch_metadata(Some(topic), CALL_TIMEOUT)
        .map_err(|error| describe(&format!("reading the metadata of topic `{topic}`"), &error))?;
    let existing = metadata
        .topics()
        .iter()
        .find(|found| found.name() == topic && found.error().is_none())
        .map(|found| found.partitions().len() as i32)
        .filter(|count| *count > 0);
    match existing {
        Some(count) if count >= partitions => return Ok(count),
        Some(count) => {
            return Err(Error::from(format!(
                "kafka: the {purpose} topic `{topic}` has {count} partitions; the source has {partitions}"
            )))
        }
        None => {}
    }
    let admin: AdminClient<DefaultClientContext> =
        config.create().map_err(|error| describe("creating an admin client", &error))?;
    let mut new_topic = NewTopic::new(topic, partitions, TopicReplication::Fixed(-1));
    if compacted {
        new_topic = new_topic.set("cleanup.policy", "compact");
    }
    let options = AdminOptions::new().operation_timeout(Some(CALL_TIMEOUT));
    let results = block_on(admin.create_topics([&new_topic], &options))
        .map_err(|error| describe(&format!("creating topic `{topic}`"), &error))?;
    for result in results {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((_, code)) => return Err(Error::from(format!("kafka: creating topic `{topic}`: {code}"))),
        }
    }
    tracing::info!("kafka: created the {purpose} topic `{topic}` with {partitions} partitions");
    Ok(partitions)
}

/// Deletes records of a topic below given offsets (`DeleteRecords`): how records nobody will
/// read again leave an internal topic.
pub struct Purger {
    admin: AdminClient<DefaultClientContext>,
}

impl Purger {
    pub fn new(env: &KafkaEnv, brokers: Option<&str>) -> Result<Purger, Error> {
        let admin =
            env.config(brokers, Role::Admin)?.create().map_err(|error| describe("creating an admin client", &error))?;
        Ok(Purger { admin })
    }

    /// Deletes the records of `topic` below each (partition, offset).
    pub fn purge(&self, topic: &str, below: &BTreeMap<i32, i64>) -> Result<(), Error> {
        let mut list = TopicPartitionList::new();
        for (partition, offset) in below {
            list.add_partition_offset(topic, *partition, Offset::Offset(*offset))
                .map_err(|error| describe("listing offsets", &error))?;
        }
        let options = AdminOptions::new().operation_timeout(Some(CALL_TIMEOUT));
        let results = block_on(self.admin.delete_records(&list, &options))
            .map_err(|error| describe(&format!("deleting records of `{topic}`"), &error))?;
        for element in results.elements() {
            if let Err(error) = element.error() {
                return Err(describe(&format!("deleting records of `{topic}` [{}]", element.partition()), &error));
            }
        }
        Ok(())
    }
}

/// Runs a future of the admin client (its own thread completes it) on this thread.
pub(super) fn block_on<F: std::future::Future>(future: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl std::task::Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = std::task::Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut context = std::task::Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        if let std::task::Poll::Ready(output) = future.as_mut().poll(&mut context) {
            return output;
        }
        std::thread::park();
    }
}

/// Forwards the log of helper clients (changelog reader, metadata).
pub(super) struct SourceLog;

impl ClientContext for SourceLog {
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, facility: &str, message: &str) {
        forward_log(level, facility, message);
    }
}

impl ConsumerContext for SourceLog {}
