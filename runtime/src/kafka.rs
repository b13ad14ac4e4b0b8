//! kafka-source and kafka-sink over librdkafka (the bundled build, synchronous API).
//!
//! Sources join the consumer group and consume with `read_committed`. Partitions are assigned at
//! the offsets of the last local checkpoint when it knows them, else where `readSetting` says:
//! the checkpoint, not the group's committed offsets, is the source of truth.
//!
//! Sinks share one producer per broker list. With `deliveryGuarantee: exactly-once` it is
//! transactional: everything produced between two checkpoints, plus the source offsets
//! (`send_offsets_to_transaction`), commits in one transaction, then the local checkpoint is
//! written. A crash between the two leaves the group offsets ahead of the local checkpoint; the
//! restarted run replays that stretch with transactional output muted (it was committed already).
//! Every record carries a `pulse-id` header derived from its origin (source partition and offset,
//! or timer), the node and the output index, so a consumer can drop replays of aborted
//! transactions on brokers that do not filter them.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, ConsumerGroupMetadata};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, Headers, OwnedHeaders, OwnedMessage, ToBytes};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{ClientContext, Message, Offset, TopicPartitionList};

use crate::KafkaStart;

/// Timeout of metadata, offset and transaction calls.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// Added to the checkpoint interval for `transaction.timeout.ms`: the longest a restart may take
/// before the broker aborts the open transaction on its own.
const RECOVERY_ALLOWANCE_MS: u64 = 60_000;

/// `--until-end`: after every partition reached its end offset, the source also waits this long
/// after its partitions were assigned and after the last record before it ends (some brokers
/// report end offsets late).
const END_QUIET: Duration = Duration::from_secs(4);

/// (topic, partition) -> next offset to read.
pub type Offsets = BTreeMap<(String, i32), i64>;

/// Client settings shared by every Kafka client of a run: brokers and group from the pipeline,
/// overridden by the environment (`PULSE_KAFKA_BROKERS`, `PULSE_KAFKA_GROUP_ID`), plus any
/// librdkafka property from the file `PULSE_KAFKA_CONFIG` (`name=value` lines: security,
/// SASL, TLS) and from `PULSE_KAFKA_PROP_<NAME>` variables (`_` stands for `.`).
#[derive(Clone, Debug, Default)]
pub struct KafkaEnv {
    pub brokers: Option<String>,
    pub group_id: Option<String>,
    pub properties: Vec<(String, String)>,
}

impl KafkaEnv {
    pub fn from_environment() -> Result<KafkaEnv, String> {
        let mut properties = Vec::new();
        if let Ok(path) = std::env::var("PULSE_KAFKA_CONFIG") {
            let text = std::fs::read_to_string(&path)
                .map_err(|error| format!("cannot read PULSE_KAFKA_CONFIG `{path}`: {error}"))?;
            properties
                .extend(parse_properties(&text).map_err(|error| format!("PULSE_KAFKA_CONFIG `{path}`: {error}"))?);
        }
        let mut from_vars: Vec<(String, String)> = std::env::vars()
            .filter_map(|(name, value)| {
                name.strip_prefix("PULSE_KAFKA_PROP_").map(|rest| (rest.to_ascii_lowercase().replace('_', "."), value))
            })
            .collect();
        from_vars.sort();
        properties.extend(from_vars);
        Ok(KafkaEnv {
            brokers: std::env::var("PULSE_KAFKA_BROKERS").ok().filter(|brokers| !brokers.is_empty()),
            group_id: std::env::var("PULSE_KAFKA_GROUP_ID").ok().filter(|group| !group.is_empty()),
            properties,
        })
    }

    /// A consumer's configuration with its group timing (the caller sets the group and the
    /// rest).
    pub(crate) fn consumer_config(&self, brokers: Option<&str>) -> Result<ClientConfig, String> {
        let mut config = self.config(brokers, Role::Consumer)?;
        let property = |wanted: &str| self.properties.iter().find(|(name, _)| name == wanted).map(|(_, value)| value);
        let session_ms = match property("session.timeout.ms") {
            Some(value) => value.parse::<u64>().unwrap_or(10_000),
            None => {
                config.set("session.timeout.ms", "10000");
                10_000
            }
        };
        // A heartbeat at most every third of the session (Kafka's advice): librdkafka's default
        // of 3 s would let a short session expire between two heartbeats, and the group would
        // rebalance for nothing.
        if property("heartbeat.interval.ms").is_none() {
            config.set("heartbeat.interval.ms", (session_ms / 3).clamp(100, 3000).to_string());
        }
        Ok(config)
    }

    fn config(&self, brokers: Option<&str>, role: Role) -> Result<ClientConfig, String> {
        let brokers = self.brokers.as_deref().or(brokers).ok_or(
            "no Kafka brokers: set `brokers` in the pipeline or PULSE_KAFKA_BROKERS in the environment".to_string(),
        )?;
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", brokers);
        // One set of properties serves every client of the run: each gets those of its kind
        // (librdkafka warns about a consumer property given to a producer and the reverse).
        for (name, value) in &self.properties {
            let only = if CONSUMER_PROPERTIES.contains(&name.as_str()) {
                Some(Role::Consumer)
            } else if PRODUCER_PROPERTIES.contains(&name.as_str()) {
                Some(Role::Producer)
            } else {
                None
            };
            if only.is_none_or(|only| only == role) {
                config.set(name, value);
            }
        }
        // rdkafka derives librdkafka's level from the `log` crate, which nothing here sets up.
        config.set_log_level(if debug_enabled() {
            rdkafka::config::RDKafkaLogLevel::Debug
        } else {
            rdkafka::config::RDKafkaLogLevel::Warning
        });
        Ok(config)
    }
}

/// The kind of client a configuration is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    Consumer,
    Producer,
    /// Metadata and topic creation: neither kind's own properties.
    Admin,
}

/// librdkafka properties that only consumers take.
const CONSUMER_PROPERTIES: &[&str] = &[
    "group.id",
    "group.instance.id",
    "partition.assignment.strategy",
    "session.timeout.ms",
    "heartbeat.interval.ms",
    "group.protocol",
    "group.protocol.type",
    "group.remote.assignor",
    "coordinator.query.interval.ms",
    "max.poll.interval.ms",
    "enable.auto.commit",
    "auto.commit.interval.ms",
    "enable.auto.offset.store",
    "queued.min.messages",
    "queued.max.messages.kbytes",
    "fetch.wait.max.ms",
    "fetch.queue.backoff.ms",
    "fetch.message.max.bytes",
    "max.partition.fetch.bytes",
    "fetch.max.bytes",
    "fetch.min.bytes",
    "fetch.error.backoff.ms",
    "isolation.level",
    "enable.partition.eof",
    "check.crcs",
    "auto.offset.reset",
];

/// librdkafka properties that only producers take.
const PRODUCER_PROPERTIES: &[&str] = &[
    "transactional.id",
    "transaction.timeout.ms",
    "enable.idempotence",
    "enable.gapless.guarantee",
    "queue.buffering.max.messages",
    "queue.buffering.max.kbytes",
    "queue.buffering.max.ms",
    "linger.ms",
    "message.send.max.retries",
    "retries",
    "queue.buffering.backpressure.threshold",
    "compression.codec",
    "compression.type",
    "compression.level",
    "batch.num.messages",
    "batch.size",
    "delivery.report.only.error",
    "sticky.partitioning.linger.ms",
    "request.required.acks",
    "acks",
    "request.timeout.ms",
    "message.timeout.ms",
    "delivery.timeout.ms",
    "partitioner",
];

/// `name=value` lines; blank lines and `#` comments skipped.
pub fn parse_properties(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((name, value)) = line.split_once('=') else {
            return Err(format!("line {}: expected `name=value`", number + 1));
        };
        out.push((name.trim().to_string(), value.trim().to_string()));
    }
    Ok(out)
}

/// Errors name the operation and the librdkafka error, never the configuration (it may hold
/// passwords).
fn describe(what: &str, error: &KafkaError) -> String {
    format!("kafka: {what}: {error}")
}

/// Records the group's rebalances for the driver, which answers them between two steps: a
/// revocation after a checkpoint (so nothing processed is handed over uncommitted), an
/// assignment after the partitions' state was restored, at the offsets this run has reached
/// (at start: the checkpoint's or the changelog's), else at the start `readSetting` asks for.
/// librdkafka waits for that answer (the application may call `assign` after the callback).
struct SourceContext {
    /// Rebalances the driver has not answered yet.
    rebalances: Mutex<Vec<Rebalance>>,
    pending: AtomicBool,
    /// The consumer is closing: answer rebalances at once.
    closing: AtomicBool,
    /// Next offset per partition: restored from the checkpoint, then advanced by every record.
    positions: Mutex<Offsets>,
    start: KafkaStart,
    /// Partitions currently assigned.
    assigned: Mutex<Vec<(String, i32)>>,
    /// When the group last assigned partitions to this consumer (`None`: not yet).
    assigned_at: Mutex<Option<std::time::Instant>>,
    /// Per partition: the last stable offset (the end a `read_committed` consumer can reach)
    /// from the client's statistics, for the consumer-lag metric.
    ends: Mutex<Offsets>,
}

/// librdkafka's own log lines, through `tracing`: errors and warnings always; notices, info and
/// debug output (the `debug` property) only when that property is set, so it can be switched on
/// for one run with `PULSE_KAFKA_PROP_DEBUG=cgrp,...`.
pub(crate) fn forward_log(level: rdkafka::config::RDKafkaLogLevel, facility: &str, message: &str) {
    use rdkafka::config::RDKafkaLogLevel as L;
    match level {
        L::Emerg | L::Alert | L::Critical | L::Error => tracing::error!("librdkafka {facility}: {message}"),
        L::Warning => tracing::warn!("librdkafka {facility}: {message}"),
        _ if debug_enabled() => tracing::info!("librdkafka {facility}: {message}"),
        _ => tracing::debug!("librdkafka {facility}: {message}"),
    }
}

fn debug_enabled() -> bool {
    static ENABLED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ENABLED.get_or_init(|| std::env::var_os("PULSE_KAFKA_PROP_DEBUG").is_some())
}

/// Records every partition's last stable offset from a consumer's statistics (the consumer-lag
/// metric's ends).
pub fn record_stable_ends(ends: &Mutex<Offsets>, statistics: rdkafka::Statistics) {
    let mut ends = ends.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    for (topic, found) in statistics.topics {
        for partition in found.partitions.values() {
            if partition.partition >= 0 && partition.ls_offset >= 0 {
                ends.insert((topic.clone(), partition.partition), partition.ls_offset);
            }
        }
    }
}

impl ClientContext for SourceContext {
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, facility: &str, message: &str) {
        forward_log(level, facility, message);
    }

    fn stats(&self, statistics: rdkafka::Statistics) {
        record_stable_ends(&self.ends, statistics);
    }
}

impl ConsumerContext for SourceContext {
    fn rebalance(&self, consumer: &BaseConsumer<Self>, err: RDKafkaRespErr, tpl: &mut TopicPartitionList) {
        let assign = err == RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS;
        if self.closing.load(Ordering::Relaxed) {
            let outcome = if assign { consumer.assign(tpl) } else { consumer.unassign() };
            if let Err(error) = outcome {
                tracing::warn!("{}", describe("answering a rebalance while closing", &error));
            }
            return;
        }
        let partitions: Vec<(String, i32)> =
            tpl.elements().iter().map(|element| (element.topic().to_string(), element.partition())).collect();
        let event = if assign { Rebalance::Assign(partitions) } else { Rebalance::Revoke(partitions) };
        self.rebalances.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).push(event);
        self.pending.store(true, Ordering::Release);
    }
}

/// A rebalance of a source's consumer group, answered by the driver.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rebalance {
    Assign(Vec<(String, i32)>),
    /// Also partitions lost without a revocation (the session expired).
    Revoke(Vec<(String, i32)>),
}

/// `topic [0, 2]` for log lines (partitions of several topics: `a [0], b [1]`).
pub fn describe_partitions(partitions: &[(String, i32)]) -> String {
    let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for (topic, partition) in partitions {
        by_topic.entry(topic).or_default().push(*partition);
    }
    if by_topic.is_empty() {
        return "nothing".to_string();
    }
    by_topic
        .into_iter()
        .map(|(topic, mut list)| {
            list.sort_unstable();
            let list: Vec<String> = list.iter().map(i32::to_string).collect();
            format!("{topic} [{}]", list.join(", "))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// What one poll of a source gave.
pub enum Polled {
    /// A record; its payload was appended to the line buffer. `upstream`: the source record a
    /// repartitioned record copies.
    Record { topic: String, partition: i32, offset: i64, upstream: Option<(String, i32, i64)> },
    /// Nothing within the poll timeout.
    Idle,
    /// `--until-end`: every partition reached the end it had when the run started.
    End,
}

/// With no poll for this long (a sink blocking the pipeline: Redis down, a full HTTP queue, a
/// slow commit or restore), the source pauses its partitions and a thread of its own keeps
/// polling: nothing more is fetched, and the group does not evict the member for exceeding
/// `max.poll.interval.ms`. The next poll of the driver resumes them.
const PAUSE_AFTER: Duration = Duration::from_secs(2);
/// The duration in environment variable `name` (e.g. `30s`), else `default`.
pub fn duration_from_env(name: &str, default: Duration) -> Result<Duration, String> {
    match std::env::var(name) {
        Ok(text) => crate::checkpoint::parse_duration_ms(&text)
            .map(Duration::from_millis)
            .map_err(|error| format!("{name}: {error}")),
        Err(_) => Ok(default),
    }
}

/// How often the keep-alive thread looks at the driver's last poll.
const KEEP_ALIVE_TICK: Duration = Duration::from_millis(200);
/// At most this many records are kept from the keep-alive thread's polls (only records fetched
/// before the pause can arrive; the bound holds whatever librdkafka does).
const STASH_LIMIT: usize = 10_000;

/// What the driver's polls and the keep-alive thread share; either polls the consumer only
/// while holding it, so records keep their order.
struct Gate {
    /// When the driver last polled.
    last_poll: Instant,
    /// Since when the partitions are paused, and how many.
    paused: Option<(Instant, usize)>,
    /// What the keep-alive thread's polls received, handed to the driver first.
    stash: VecDeque<Result<OwnedMessage, KafkaError>>,
    /// Times the source paused.
    pauses: u64,
}

fn lock_gate(gate: &Mutex<Gate>) -> MutexGuard<'_, Gate> {
    gate.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The keep-alive thread (see `PAUSE_AFTER`).
fn keep_alive(consumer: &BaseConsumer<SourceContext>, gate: &Mutex<Gate>, stop: &AtomicBool, pause_after: Duration) {
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(KEEP_ALIVE_TICK);
        let mut gate = lock_gate(gate);
        if gate.last_poll.elapsed() < pause_after {
            continue;
        }
        // Everything assigned, including partitions assigned while paused.
        if let Ok(assignment) = consumer.assignment() {
            let count = assignment.count();
            if count > 0 && gate.paused.is_none_or(|(_, paused)| paused != count) {
                if let Err(error) = consumer.pause(&assignment) {
                    tracing::warn!("{}", describe("pausing partitions", &error));
                }
                if gate.paused.is_none() {
                    gate.pauses += 1;
                    tracing::info!(
                        "kafka: no poll for {} ms (a sink or a checkpoint is holding the pipeline): paused {count} partitions",
                        gate.last_poll.elapsed().as_millis()
                    );
                }
                let since = gate.paused.map_or_else(Instant::now, |(since, _)| since);
                gate.paused = Some((since, count));
            }
        }
        // Serves the group protocol and `max.poll.interval.ms`; keeps whatever arrives.
        while gate.stash.len() < STASH_LIMIT {
            match consumer.poll(Duration::ZERO) {
                None => break,
                Some(polled) => gate.stash.push_back(polled.map(|message| message.detach())),
            }
        }
    }
}

/// One kafka-source's consumer.
pub struct KafkaReader {
    consumer: Arc<BaseConsumer<SourceContext>>,
    gate: Arc<Mutex<Gate>>,
    /// Stops and joins the keep-alive thread.
    keep_alive: Option<(Arc<AtomicBool>, JoinHandle<()>)>,
    /// The stage that fills the repartition topic this reader reads, when it reads one.
    repartitioner: Option<crate::repartition::Repartitioner>,
    /// `--until-end`: the high watermark of every partition at start.
    end: Option<Offsets>,
    /// Partitions whose records below the offset were committed by a transaction the local
    /// checkpoint does not include: replayed with transactional output muted.
    replay_until: Offsets,
    /// Largest event time seen per partition: the source's watermark is the minimum over its
    /// assigned partitions, so one partition running ahead does not make another's records late.
    partition_max: Offsets,
    /// When the last record (or the start) was seen.
    last_record: std::time::Instant,
    /// Records without a payload (tombstones); they reach the driver as empty lines.
    pub tombstones: u64,
    /// When a broker outage was last reported.
    last_outage_report: Option<std::time::Instant>,
    /// When each partition last gave a record.
    last_seen: BTreeMap<(String, i32), std::time::Instant>,
    /// Partitions the checkpoint has positions for.
    known: Vec<(String, i32)>,
    opened: std::time::Instant,
    /// A partition without records for this long stops holding the watermark back.
    idle_timeout: Duration,
    /// The consumer group.
    group: String,
    /// The most partitions of any subscribed topic.
    partition_count: i32,
    topics: Vec<String>,
}

impl Drop for KafkaReader {
    fn drop(&mut self) {
        // Closing the consumer revokes its partitions through the callback: answer at once.
        self.consumer.context().closing.store(true, Ordering::Relaxed);
        if let Some((stop, thread)) = self.keep_alive.take() {
            stop.store(true, Ordering::Relaxed);
            let _ = thread.join();
        }
    }
}

/// A partition without records this long stops holding the watermark back
/// (`PULSE_KAFKA_IDLE_TIMEOUT` changes it).
const IDLE_TIMEOUT: Duration = Duration::from_secs(10);

/// How often an ongoing broker outage is reported.
const OUTAGE_REPORT_EVERY: Duration = Duration::from_secs(10);

/// Consumer errors that only say brokers are unreachable for now.
pub(crate) fn transient(code: RDKafkaErrorCode) -> bool {
    matches!(
        code,
        RDKafkaErrorCode::AllBrokersDown
            | RDKafkaErrorCode::BrokerTransportFailure
            | RDKafkaErrorCode::NetworkException
            | RDKafkaErrorCode::RequestTimedOut
            | RDKafkaErrorCode::OperationTimedOut
            | RDKafkaErrorCode::Resolve
    )
}

pub struct SourceSettings<'a> {
    pub pipeline: &'a str,
    pub node: &'a str,
    pub topics: &'a [&'a str],
    pub brokers: Option<&'a str>,
    pub group_id: Option<&'a str>,
    pub start: KafkaStart,
    pub until_end: bool,
    /// Ask the client for statistics every second (the consumer-lag metric needs them).
    pub statistics: bool,
}

/// The consumer group of a source: `PULSE_KAFKA_GROUP_ID`, else its `groupId`, else
/// `pulse-<pipeline>-<node>`.
pub fn group_name(env: &KafkaEnv, settings: &SourceSettings<'_>) -> String {
    env.group_id
        .clone()
        .or(settings.group_id.map(str::to_string))
        .unwrap_or_else(|| format!("pulse-{}-{}", settings.pipeline, settings.node))
}

impl KafkaReader {
    pub fn open(env: &KafkaEnv, settings: &SourceSettings<'_>, resume: Offsets) -> Result<KafkaReader, String> {
        let group = group_name(env, settings);
        let mut config = env.consumer_config(settings.brokers)?;
        config
            .set("group.id", &group)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("isolation.level", "read_committed")
            .set("enable.partition.eof", "false");
        if settings.statistics {
            config.set("statistics.interval.ms", "1000");
        }
        let context = SourceContext {
            rebalances: Mutex::default(),
            pending: AtomicBool::new(false),
            closing: AtomicBool::new(false),
            positions: Mutex::new(resume.clone()),
            start: settings.start,
            assigned: Mutex::default(),
            assigned_at: Mutex::default(),
            ends: Mutex::default(),
        };
        let consumer: BaseConsumer<SourceContext> =
            config.create_with_context(context).map_err(|error| describe("creating the consumer", &error))?;
        consumer.subscribe(settings.topics).map_err(|error| describe("subscribing", &error))?;

        let mut end = None;
        let mut replay_until = Offsets::new();
        let partitions = topic_partitions(&consumer, settings.topics)?;
        if settings.until_end {
            let mut highs = Offsets::new();
            for (topic, partition) in &partitions {
                let (_, high) = consumer
                    .fetch_watermarks(topic, *partition, CALL_TIMEOUT)
                    .map_err(|error| describe(&format!("reading the end of `{topic}` [{partition}]"), &error))?;
                highs.insert((topic.clone(), *partition), high);
            }
            end = Some(highs);
        }
        if !resume.is_empty() {
            let mut list = TopicPartitionList::new();
            for (topic, partition) in resume.keys() {
                list.add_partition(topic, *partition);
            }
            let committed = consumer
                .committed_offsets(list, CALL_TIMEOUT)
                .map_err(|error| describe("reading the group's committed offsets", &error))?;
            for element in committed.elements() {
                let key = (element.topic().to_string(), element.partition());
                if let (Offset::Offset(committed), Some(local)) = (element.offset(), resume.get(&key)) {
                    if committed > *local {
                        replay_until.insert(key, committed);
                    }
                }
            }
        }
        let partition_count = partitions.iter().map(|(_, partition)| partition + 1).max().unwrap_or(0);
        let consumer = Arc::new(consumer);
        let gate =
            Arc::new(Mutex::new(Gate { last_poll: Instant::now(), paused: None, stash: VecDeque::new(), pauses: 0 }));
        let stop = Arc::new(AtomicBool::new(false));
        let pause_after = duration_from_env("PULSE_KAFKA_PAUSE_AFTER", PAUSE_AFTER)?;
        let thread = {
            let (consumer, gate, stop) = (Arc::clone(&consumer), Arc::clone(&gate), Arc::clone(&stop));
            std::thread::Builder::new()
                .name(format!("kafka-{}", settings.node))
                .spawn(move || keep_alive(&consumer, &gate, &stop, pause_after))
                .map_err(|error| format!("kafka: starting the keep-alive thread: {error}"))?
        };
        Ok(KafkaReader {
            repartitioner: None,
            gate,
            keep_alive: Some((stop, thread)),
            group,
            partition_count,
            topics: settings.topics.iter().map(|topic| topic.to_string()).collect(),
            consumer,
            end,
            replay_until,
            partition_max: Offsets::new(),
            last_seen: BTreeMap::new(),
            known: resume.keys().cloned().collect(),
            opened: std::time::Instant::now(),
            idle_timeout: duration_from_env("PULSE_KAFKA_IDLE_TIMEOUT", IDLE_TIMEOUT)?,
            last_record: std::time::Instant::now(),
            tombstones: 0,
            last_outage_report: None,
        })
    }

    /// Waits up to `timeout` for the next record and appends its payload to `line`.
    pub fn poll(&mut self, line: &mut Vec<u8>, timeout: Duration) -> Result<Polled, String> {
        if self.reached_end() {
            return Ok(Polled::End);
        }
        if let Some(failure) = self.repartitioner.as_ref().and_then(|stage| stage.failure()) {
            return Err(failure);
        }
        let gate = Arc::clone(&self.gate);
        let mut gate = lock_gate(&gate);
        gate.last_poll = Instant::now();
        if let Some((since, count)) = gate.paused.take() {
            if let Ok(assignment) = self.consumer.assignment() {
                if let Err(error) = self.consumer.resume(&assignment) {
                    tracing::warn!("{}", describe("resuming partitions", &error));
                }
            }
            tracing::info!("kafka: resumed {count} partitions after {} ms paused", since.elapsed().as_millis());
        }
        match gate.stash.pop_front() {
            Some(polled) => {
                drop(gate);
                self.take(Some(polled), line)
            }
            None => {
                // The record borrows the consumer: a handle of its own leaves `self` free.
                let consumer = Arc::clone(&self.consumer);
                let polled = consumer.poll(timeout);
                drop(gate);
                self.take(polled, line)
            }
        }
    }

    /// Reads the repartition topic `stage` fills; the stage stops with the reader.
    pub fn attach_repartitioner(&mut self, stage: crate::repartition::Repartitioner) {
        self.repartitioner = Some(stage);
    }

    /// A checkpoint committed `list` (positions of this reader): a repartition stage may delete
    /// the records below them.
    pub fn committed(&self, list: &TopicPartitionList) {
        if let Some(stage) = &self.repartitioner {
            for element in list.elements() {
                if let Offset::Offset(next) = element.offset() {
                    stage.committed(element.partition(), next);
                }
            }
        }
    }

    /// The group's committed offsets of `partitions` of `topic`; a partition without one is
    /// absent.
    pub fn group_offsets(&self, topic: &str, partitions: &[i32]) -> Result<BTreeMap<i32, i64>, String> {
        let mut list = TopicPartitionList::new();
        for partition in partitions {
            list.add_partition(topic, *partition);
        }
        let committed = self
            .consumer
            .committed_offsets(list, CALL_TIMEOUT)
            .map_err(|error| describe(&format!("reading the group's committed offsets of `{topic}`"), &error))?;
        Ok(committed
            .elements()
            .iter()
            .filter_map(|element| match element.offset() {
                Offset::Offset(offset) => Some((element.partition(), offset)),
                _ => None,
            })
            .collect())
    }

    /// Times the source paused its partitions while the pipeline was held up.
    pub fn pauses(&self) -> u64 {
        lock_gate(&self.gate).pauses
    }

    fn take<M: Message>(
        &mut self,
        polled: Option<Result<M, KafkaError>>,
        line: &mut Vec<u8>,
    ) -> Result<Polled, String> {
        match polled {
            None => Ok(if self.reached_end() { Polled::End } else { Polled::Idle }),
            // Broker connections come and go; librdkafka reconnects by itself, and the run waits
            // for it (as it waits for Redis) instead of failing.
            Some(Err(KafkaError::MessageConsumption(code))) if transient(code) => {
                if self.last_outage_report.is_none_or(|at| at.elapsed() >= OUTAGE_REPORT_EVERY) {
                    self.last_outage_report = Some(std::time::Instant::now());
                    tracing::warn!("kafka: consuming: {code}; waiting for the brokers");
                }
                Ok(Polled::Idle)
            }
            Some(Err(error)) => Err(describe("consuming", &error)),
            Some(Ok(message)) => {
                let (topic, partition, offset) = (message.topic().to_string(), message.partition(), message.offset());
                match message.payload() {
                    Some(payload) => line.extend_from_slice(payload),
                    None => self.tombstones += 1,
                }
                self.positions().insert((topic.clone(), partition), offset + 1);
                self.last_record = std::time::Instant::now();
                let upstream = match self.repartitioner {
                    Some(_) => message
                        .headers()
                        .and_then(|headers| {
                            headers.iter().find(|header| header.key == crate::repartition::ORIGIN_HEADER)
                        })
                        .and_then(|header| std::str::from_utf8(header.value?).ok())
                        .and_then(crate::repartition::parse_origin),
                    None => None,
                };
                Ok(Polled::Record { topic, partition, offset, upstream })
            }
        }
    }

    fn reached_end(&self) -> bool {
        let Some(end) = &self.end else { return false };
        // Not before the group assigned partitions, and not within END_QUIET of the assignment or
        // of the last record.
        let assigned_at = *self.consumer.context().assigned_at.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let Some(assigned_at) = assigned_at else { return false };
        assigned_at.max(self.last_record).elapsed() >= END_QUIET
            && end
                .iter()
                .all(|(partition, high)| *high <= 0 || self.positions().get(partition).is_some_and(|next| next >= high))
    }

    /// Records the event time of a record of `partition`; returns the source's event-time
    /// frontier: the minimum over assigned partitions of their largest event time, skipping
    /// partitions already read to their end (`--until-end`). `None` while an assigned partition
    /// has shown no record yet.
    pub fn observe(&mut self, topic: &str, partition: i32, event_time: i64) -> Option<i64> {
        let key = (topic.to_string(), partition);
        let now = std::time::Instant::now();
        self.last_seen.insert(key.clone(), now);
        let max = self.partition_max.entry(key.clone()).or_insert(i64::MIN);
        *max = (*max).max(event_time);
        let assigned = self.consumer.context().assigned.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let positions = self.positions();
        let mut frontier: Option<i64> = None;
        // Partitions this run owns, and those it owned at its checkpoint: a partition the group
        // has not handed back yet (its old owner's session has not expired) still holds the
        // watermark, or its records would arrive late once it comes back. (A partition in both
        // lists is visited twice; the minimum does not mind.)
        for partition in assigned.iter().chain(self.known.iter()) {
            let at_end = self.end.as_ref().is_some_and(|end| {
                end.get(partition).is_some_and(|high| positions.get(partition).copied().unwrap_or(0) >= *high)
            });
            // Idle: no record within the idle timeout (since the start for one never seen).
            let quiet_since = self.last_seen.get(partition).copied().unwrap_or(self.opened);
            if at_end || (*partition != key && now.duration_since(quiet_since) >= self.idle_timeout) {
                continue;
            }
            let seen = *self.partition_max.get(partition)?;
            frontier = Some(frontier.map_or(seen, |known| known.min(seen)));
        }
        frontier.or(Some(event_time))
    }

    /// Whether a record at this position was already committed downstream by a transaction the
    /// local checkpoint missed.
    pub fn is_replay(&self, topic: &str, partition: i32, offset: i64) -> bool {
        self.replay_until.get(&(topic.to_string(), partition)).is_some_and(|until| offset < *until)
    }

    /// The next offset per partition (the rebalance callback assigns at these).
    pub fn positions(&self) -> std::sync::MutexGuard<'_, Offsets> {
        self.consumer.context().positions.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// (topic, partition, records not read yet) of every assigned partition whose end the
    /// client's statistics reported, and of the source partitions a repartition stage copies
    /// (named by their own topic).
    pub fn lag(&self) -> Vec<(String, i32, i64)> {
        let mut lag = self.repartitioner.as_ref().map(|stage| stage.lag()).unwrap_or_default();
        let context = self.consumer.context();
        let assigned = context.assigned.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone();
        let ends = context.ends.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let positions = context.positions.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        lag.extend(assigned.into_iter().filter_map(|key| {
            let end = *ends.get(&key)?;
            let next = *positions.get(&key)?;
            Some((key.0, key.1, (end - next).max(0)))
        }));
        lag
    }

    pub fn group_metadata(&self) -> Option<ConsumerGroupMetadata> {
        self.consumer.group_metadata()
    }

    /// The positions of the assigned partitions (of partition number `only`, when given) as a
    /// list for `send_offsets_to_transaction` / `commit`. Partitions another member owns now
    /// are left out, so a stale position never overwrites its progress.
    pub fn offset_list(&self, only: Option<i32>) -> TopicPartitionList {
        let assigned = self.consumer.context().assigned.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let positions = self.positions();
        let mut list = TopicPartitionList::new();
        for (topic, partition) in assigned.iter() {
            if only.is_some_and(|only| only != *partition) {
                continue;
            }
            if let Some(next) = positions.get(&(topic.clone(), *partition)) {
                let _ = list.add_partition_offset(topic, *partition, Offset::Offset(*next));
            }
        }
        list
    }

    /// Whether the group has a rebalance waiting for the driver's answer.
    pub fn rebalance_pending(&self) -> bool {
        self.consumer.context().pending.load(Ordering::Acquire)
    }

    pub fn take_rebalances(&self) -> Vec<Rebalance> {
        let context = self.consumer.context();
        context.pending.store(false, Ordering::Release);
        std::mem::take(&mut *context.rebalances.lock().unwrap_or_else(|poisoned| poisoned.into_inner()))
    }

    /// Starts consuming `partitions`, each at its position (see `positions`) or where
    /// `readSetting` says.
    pub fn assign_now(&mut self, partitions: &[(String, i32)]) -> Result<(), String> {
        let context = self.consumer.context();
        let mut list = TopicPartitionList::new();
        {
            let positions = context.positions.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            for (topic, partition) in partitions {
                let offset = match positions.get(&(topic.clone(), *partition)) {
                    Some(next) => Offset::Offset(*next),
                    None => match context.start {
                        KafkaStart::GroupOffsets => Offset::Stored,
                        KafkaStart::Earliest => Offset::Beginning,
                        KafkaStart::Latest => Offset::End,
                    },
                };
                let _ = list.add_partition_offset(topic, *partition, offset);
            }
        }
        self.consumer.assign(&list).map_err(|error| describe("assigning partitions", &error))?;
        *context.assigned.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = partitions.to_vec();
        *context.assigned_at.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(std::time::Instant::now());
        Ok(())
    }

    /// Stops consuming every partition (the group revoked them).
    pub fn revoke_now(&mut self) -> Result<(), String> {
        let context = self.consumer.context();
        context.assigned.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clear();
        // Records the keep-alive thread took in before the revocation now belong to the next
        // owner, which reads them from the positions the checkpoint before this committed.
        let mut gate = lock_gate(&self.gate);
        let before = gate.stash.len();
        gate.stash.retain(|polled| polled.is_err());
        if gate.stash.len() < before {
            tracing::debug!("kafka: dropped {} records read ahead of the revocation", before - gate.stash.len());
        }
        drop(gate);
        self.consumer.unassign().map_err(|error| describe("revoking partitions", &error))
    }

    /// Partitions currently assigned.
    pub fn assigned(&self) -> Vec<(String, i32)> {
        self.consumer.context().assigned.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }

    pub fn group(&self) -> &str {
        &self.group
    }

    pub fn topics(&self) -> &[String] {
        &self.topics
    }

    /// The most partitions of any subscribed topic.
    pub fn partition_count(&self) -> i32 {
        self.partition_count
    }

    /// The largest event time a partition's previous owner saw (from the changelog).
    pub fn restore_partition_max(&mut self, topic: &str, partition: i32, event_time: i64) {
        let max = self.partition_max.entry((topic.to_string(), partition)).or_insert(i64::MIN);
        *max = (*max).max(event_time);
    }

    /// A partition was just handed to this instance: it is not idle before the idle timeout.
    pub fn touch(&mut self, topic: &str, partition: i32) {
        self.last_seen.insert((topic.to_string(), partition), std::time::Instant::now());
    }

    /// The largest event time seen on partition number `partition` of any subscribed topic.
    pub fn partition_frontier(&self, partition: i32) -> i64 {
        self.topics.iter().map(|topic| self.partition_max(topic, partition)).max().unwrap_or(i64::MIN)
    }

    /// Whether no subscribed topic's partition `partition` gave a record within the idle timeout.
    pub fn partition_idle(&self, partition: i32) -> bool {
        self.topics.iter().all(|topic| {
            let since = self.last_seen.get(&(topic.clone(), partition)).copied().unwrap_or(self.opened);
            since.elapsed() >= self.idle_timeout
        })
    }

    /// The largest event time seen on a partition (`i64::MIN`: none).
    pub fn partition_max(&self, topic: &str, partition: i32) -> i64 {
        self.partition_max.get(&(topic.to_string(), partition)).copied().unwrap_or(i64::MIN)
    }

    /// Positions come from the changelog: no stretch is replayed muted.
    pub fn clear_replay(&mut self) {
        self.replay_until.clear();
    }

    /// At-least-once runs: commits the positions to the group (telemetry and a fallback start).
    pub fn commit_positions(&self) -> Result<(), String> {
        let list = self.offset_list(None);
        if list.count() == 0 {
            return Ok(());
        }
        self.consumer
            .commit(&list, rdkafka::consumer::CommitMode::Sync)
            .map_err(|error| describe("committing offsets", &error))
    }
}

/// Keeps the first delivery failure; the driver fails the run on it at the next check. Also
/// the largest offset delivered per partition of changelog records (opaque 1).
#[derive(Clone, Default)]
struct SinkContext {
    failure: Arc<Mutex<Option<String>>>,
    changelog_offsets: Arc<Mutex<BTreeMap<i32, i64>>>,
}

impl ClientContext for SinkContext {
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, facility: &str, message: &str) {
        forward_log(level, facility, message);
    }
}

/// The delivery opaque of changelog records.
const CHANGELOG_RECORD: usize = 1;

impl ProducerContext for SinkContext {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, opaque: usize) {
        match result {
            Err((error, message)) => {
                let mut failure = self.failure.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                failure.get_or_insert_with(|| describe(&format!("delivering to `{}`", message.topic()), error));
            }
            Ok(message) if opaque == CHANGELOG_RECORD => {
                let mut offsets = self.changelog_offsets.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                let offset = offsets.entry(message.partition()).or_insert(-1);
                *offset = (*offset).max(message.offset());
            }
            Ok(_) => {}
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
    pub fn open(env: &KafkaEnv, settings: &ProducerSettings<'_>) -> Result<KafkaWriter, String> {
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
    pub fn open_all(env: &KafkaEnv, settings: &[ProducerSettings<'_>]) -> Result<Vec<KafkaWriter>, String> {
        match settings {
            [one] => Ok(vec![KafkaWriter::open(env, one)?]),
            settings => std::thread::scope(|scope| {
                let running: Vec<_> =
                    settings.iter().map(|settings| scope.spawn(|| KafkaWriter::open(env, settings))).collect();
                running
                    .into_iter()
                    .map(|thread| {
                        thread.join().unwrap_or_else(|_| Err("internal: opening a producer panicked".to_string()))
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
    ) -> Result<(), String> {
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
    ) -> Result<(), String> {
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
    ) -> Result<(), String> {
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

    fn failure(&self) -> Result<(), String> {
        match self.context.failure.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).take() {
            Some(message) => Err(message),
            None => Ok(()),
        }
    }

    /// Makes everything sent so far durable: a transaction commit (with the source offsets of
    /// `offsets`, when given) followed by a new transaction, or a flush.
    pub fn commit(&mut self, offsets: &[(&TopicPartitionList, &ConsumerGroupMetadata)]) -> Result<(), String> {
        self.prepare_commit(offsets)?;
        self.end_commit()
    }

    /// The first half of `commit`, which may run for several producers at once: waits for
    /// every record sent to be acknowledged and adds `offsets` to the transaction. A producer
    /// that writes a changelog adds to the first list, for each partition it wrote, the
    /// changelog offset after its last record (the batch's marker): the group's committed
    /// offset of a changelog partition thus names its last committed batch, which is how a
    /// restore tells committed batches from aborted ones on a broker that shows both.
    pub fn prepare_commit(&mut self, offsets: &[(&TopicPartitionList, &ConsumerGroupMetadata)]) -> Result<(), String> {
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
    pub fn end_commit(&mut self) -> Result<(), String> {
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
) -> Result<(), String> {
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
                thread.join().unwrap_or_else(|_| Err("internal: a commit thread panicked".to_string()))
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
pub fn partition_transactional_id(group: &str, partition: i32, producer: usize) -> String {
    match producer {
        0 => format!("{group}-p{partition}"),
        _ => format!("{group}-p{partition}-{producer}"),
    }
}

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
    pub fn from_environment() -> Result<ChangelogMode, String> {
        match std::env::var("PULSE_KAFKA_CHANGELOG_COMPACT").as_deref() {
            Err(_) | Ok("" | "false" | "0") => Ok(ChangelogMode::Batches),
            Ok("true" | "1") => Ok(ChangelogMode::Compacted),
            Ok(other) => Err(format!("PULSE_KAFKA_CHANGELOG_COMPACT: `{other}` is neither true nor false")),
        }
    }
}

/// One batch of a changelog partition, closed by its marker.
#[derive(Debug)]
struct Batch {
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
        let base = value.and_then(|bytes| crate::tasks::Marker::from_bytes(bytes).ok()).and_then(|marker| marker.base);
        self.batches.push(Batch { end: offset, base, writes, marker: value.map(<[u8]>::to_vec) });
    }

    /// What counts, given `head`: the group's committed offset of this changelog partition,
    /// i.e. the offset after the last committed batch's marker (`None`: nothing committed).
    ///
    /// In `Batches` mode the committed batches are the chain from that head through each
    /// marker's `base` back to the start offset: a batch of an aborted transaction is either
    /// past the head or skipped by the base of the batch the next owner wrote. Batches whose
    /// markers name no base (written before markers did) all count, as they used to.
    pub fn finish(mut self, head: Option<i64>) -> Result<Folded, String> {
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
    fn chain(&self, head: Option<i64>) -> Result<Option<Vec<usize>>, String> {
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
) -> Result<Vec<ChangelogPartition>, String> {
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
                    return Err(format!("changelog `{topic}` [{partition}]: its chain of batches is broken"))
                }
            }
        }
    }
    done.sort_by_key(|read| read.partition);
    Ok(done)
}

/// Reads changelog partitions from their start offsets to their end with `read_committed`.
fn read_folds(
    env: &KafkaEnv,
    brokers: Option<&str>,
    topic: &str,
    starts: &[(i32, i64)],
    mode: ChangelogMode,
) -> Result<Vec<ChangelogFold>, String> {
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
    while !pending.is_empty() {
        if last_report.elapsed() >= OUTAGE_REPORT_EVERY {
            last_report = std::time::Instant::now();
            let records: u64 = folds.values().map(|fold| fold.records).sum();
            tracing::info!("kafka: still restoring from `{topic}` ({records} records so far)");
        }
        let message = match consumer.poll(Duration::from_millis(200)) {
            None => continue,
            Some(Err(KafkaError::PartitionEOF(partition))) => {
                pending.remove(&partition);
                continue;
            }
            Some(Err(KafkaError::MessageConsumption(code))) if transient(code) => continue,
            Some(Err(error)) => return Err(describe(&format!("reading `{topic}`"), &error)),
            Some(Ok(message)) => message,
        };
        let partition = message.partition();
        let (true, Some(fold)) = (pending.contains(&partition), folds.get_mut(&partition)) else {
            continue;
        };
        let batch = message
            .headers()
            .and_then(|headers| headers.iter().find(|header| header.key == BATCH_HEADER))
            .and_then(|header| header.value)
            .map(|value| String::from_utf8_lossy(value).into_owned())
            .unwrap_or_default();
        fold.push(message.offset(), &batch, message.key().unwrap_or_default(), message.payload());
    }
    Ok(folds.into_values().collect())
}

/// The most partitions of any of `topics`.
pub fn partition_count(env: &KafkaEnv, brokers: Option<&str>, topics: &[&str]) -> Result<i32, String> {
    let config = env.config(brokers, Role::Admin)?;
    let consumer: BaseConsumer<SourceLog> =
        config.create_with_context(SourceLog).map_err(|error| describe("creating a metadata client", &error))?;
    let partitions = topic_partitions(&consumer, topics)?;
    Ok(partitions.iter().map(|(_, partition)| partition + 1).max().unwrap_or(0))
}

/// (topic, partition) of every partition of `topics`; an unknown topic is an error.
fn topic_partitions<C: ConsumerContext, T: AsRef<str>>(
    consumer: &BaseConsumer<C>,
    topics: &[T],
) -> Result<Vec<(String, i32)>, String> {
    let mut partitions = Vec::new();
    for topic in topics.iter().map(AsRef::as_ref) {
        let metadata = consumer
            .fetch_metadata(Some(topic), CALL_TIMEOUT)
            .map_err(|error| describe(&format!("reading the metadata of topic `{topic}`"), &error))?;
        for found in metadata.topics() {
            if let Some(error) = found.error() {
                return Err(format!("kafka: topic `{topic}`: {:?}", RDKafkaErrorCode::from(error)));
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
) -> Result<i32, String> {
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
            return Err(format!(
                "kafka: the {purpose} topic `{topic}` has {count} partitions; the source has {partitions}"
            ))
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
            Err((_, code)) => return Err(format!("kafka: creating topic `{topic}`: {code}")),
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
    pub fn new(env: &KafkaEnv, brokers: Option<&str>) -> Result<Purger, String> {
        let admin =
            env.config(brokers, Role::Admin)?.create().map_err(|error| describe("creating an admin client", &error))?;
        Ok(Purger { admin })
    }

    /// Deletes the records of `topic` below each (partition, offset).
    pub fn purge(&self, topic: &str, below: &BTreeMap<i32, i64>) -> Result<(), String> {
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
fn block_on<F: std::future::Future>(future: F) -> F::Output {
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
struct SourceLog;

impl ClientContext for SourceLog {
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, facility: &str, message: &str) {
        forward_log(level, facility, message);
    }
}

impl ConsumerContext for SourceLog {}

/// The `pulse-id` header: FNV-1a 128 of (origin, node id, output index), 32 hex digits. The
/// origin is `topic/partition/offset` for a Kafka record, `source/line` for a file line and
/// `timer/sequence` for a timer firing.
pub fn record_id(origin: &str, node: &str, index: u64) -> String {
    crate::api_sink::idempotency_key(&[origin.as_bytes(), node.as_bytes(), index.to_string().as_bytes()])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_from_the_environment_are_parsed_or_refused() {
        let name = "PULSE_TEST_KAFKA_DURATION";
        std::env::remove_var(name);
        assert_eq!(duration_from_env(name, PAUSE_AFTER), Ok(PAUSE_AFTER));
        std::env::set_var(name, "250ms");
        assert_eq!(duration_from_env(name, PAUSE_AFTER), Ok(Duration::from_millis(250)));
        std::env::set_var(name, "soon");
        let error = duration_from_env(name, PAUSE_AFTER).expect_err("not a duration");
        assert!(error.starts_with(name), "{error}");
        std::env::remove_var(name);
    }

    /// (key, value) pairs as text, for comparing restores.
    fn writes(read: &ChangelogPartition) -> Vec<(String, Option<String>)> {
        let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
        read.writes.iter().map(|(key, value)| (text(key), value.as_deref().map(text))).collect()
    }

    /// A marker building on the batch whose marker precedes `base`, with `timers` to tell
    /// markers apart.
    fn marker(base: Option<i64>, timers: u64) -> Vec<u8> {
        crate::tasks::Marker { positions: Vec::new(), max_event_time: i64::MIN, timers, base }.to_bytes()
    }

    fn finished(fold: ChangelogFold, head: Option<i64>) -> ChangelogPartition {
        match fold.finish(head) {
            Ok(Folded::Done(read)) => read,
            other => panic!("expected a restore, got {other:?}"),
        }
    }

    fn text(pairs: &[(&str, Option<&str>)]) -> Vec<(String, Option<String>)> {
        pairs.iter().map(|(key, value)| (key.to_string(), value.map(str::to_string))).collect()
    }

    #[test]
    fn markers_without_a_base_count_every_batch_they_close() {
        let mut fold = ChangelogFold::new(ChangelogMode::Batches, 0, 10);
        fold.push(10, "a/1", b"k1", Some(b"1"));
        fold.push(11, "a/1", MARKER_KEY, Some(b"marker 1"));
        // Instance a died in checkpoint 2 before its marker; b restored from marker 1.
        fold.push(12, "a/2", b"k2", Some(b"aborted"));
        fold.push(13, "b/1", b"k3", None);
        fold.push(14, "b/1", MARKER_KEY, Some(b"marker 2"));
        fold.push(15, "b/2", b"k4", Some(b"no marker yet"));
        let read = finished(fold, None);
        assert_eq!(writes(&read), text(&[("k1", Some("1")), ("k3", None)]));
        assert_eq!(read.marker.as_deref(), Some(&b"marker 2"[..]));
        assert_eq!((read.next, read.records, read.aborted), (15, 6, 0));
    }

    #[test]
    fn a_batch_closed_by_its_marker_but_never_committed_is_skipped() {
        // a committed batch 1, then died after batch 2's records and marker reached the broker
        // but before its transaction committed: the group's changelog offset still says 12.
        let (m1, m2) = (marker(Some(10), 1), marker(Some(12), 2));
        let mut fold = ChangelogFold::new(ChangelogMode::Batches, 0, 10);
        fold.push(10, "a/1", b"k1", Some(b"1"));
        fold.push(11, "a/1", MARKER_KEY, Some(&m1));
        fold.push(12, "a/2", b"k1", Some(b"2"));
        fold.push(13, "a/2", MARKER_KEY, Some(&m2));
        let read = finished(fold, Some(12));
        assert_eq!(writes(&read), text(&[("k1", Some("1"))]));
        assert_eq!(read.marker, Some(m1));
        assert_eq!((read.next, read.aborted), (12, 1));
    }

    #[test]
    fn the_next_owner_s_batches_skip_an_aborted_one_before_them() {
        // b restored from a's batch 1 (ending at 12), skipping a's aborted batch 2, and
        // committed two batches of its own: a later restore from the start follows b's bases.
        let mut fold = ChangelogFold::new(ChangelogMode::Batches, 0, 0);
        let records: [(i64, &str, &[u8], Vec<u8>); 8] = [
            (10, "a/1", b"k1", b"1".to_vec()),
            (11, "a/1", MARKER_KEY, marker(Some(0), 1)),
            (12, "a/2", b"k1", b"aborted".to_vec()),
            (13, "a/2", MARKER_KEY, marker(Some(12), 2)),
            (14, "b/1", b"k2", b"2".to_vec()),
            (15, "b/1", MARKER_KEY, marker(Some(12), 3)),
            (16, "b/2", b"k1", b"3".to_vec()),
            (17, "b/2", MARKER_KEY, marker(Some(16), 4)),
        ];
        for (offset, batch, key, value) in &records {
            fold.push(*offset, batch, key, Some(value));
        }
        let read = finished(fold, Some(18));
        assert_eq!(writes(&read), text(&[("k1", Some("1")), ("k2", Some("2")), ("k1", Some("3"))]));
        assert_eq!(read.marker, Some(marker(Some(16), 4)));
        assert_eq!((read.next, read.aborted), (18, 1));
    }

    #[test]
    fn nothing_committed_past_local_state_applies_nothing() {
        let mut fold = ChangelogFold::new(ChangelogMode::Batches, 0, 12);
        fold.push(12, "a/2", b"k1", Some(b"aborted"));
        fold.push(13, "a/2", MARKER_KEY, Some(&marker(Some(12), 2)));
        let read = finished(fold, Some(12));
        assert!(read.writes.is_empty() && read.marker.is_none());
        assert_eq!((read.next, read.aborted), (12, 1));
    }

    #[test]
    fn a_history_that_bypasses_local_state_is_read_again_and_a_broken_one_refused() {
        // Local state reflects the changelog up to offset 20, but the committed batch (marker
        // at 21) builds on the one whose marker is at 11: local state holds batches the
        // committed history does not.
        let mut fold = ChangelogFold::new(ChangelogMode::Batches, 0, 20);
        fold.push(20, "b/1", b"k1", Some(b"1"));
        fold.push(21, "b/1", MARKER_KEY, Some(&marker(Some(12), 1)));
        assert!(matches!(fold.finish(Some(22)), Ok(Folded::Rewind)));

        let mut fold = ChangelogFold::new(ChangelogMode::Batches, 0, 0);
        fold.push(20, "b/1", b"k1", Some(b"1"));
        fold.push(21, "b/1", MARKER_KEY, Some(&marker(Some(0), 1)));
        let error = fold.finish(Some(30)).expect_err("no batch ends at 30");
        assert!(error.contains("committed position 30"), "{error}");
    }

    #[test]
    fn a_compacted_changelog_keeps_the_records_whose_markers_compaction_removed() {
        // After compaction: k1 of batch 1 and k2 of batch 2 survive, their markers do not (each
        // marker replaced the one before); only batch 3's marker is left.
        let records =
            [(3, "a/1", "k1", "1"), (7, "a/2", "k2", "2"), (9, "a/3", "k3", "3"), (10, "a/3", "m", "marker 3")];
        let mut compacted = ChangelogFold::new(ChangelogMode::Compacted, 0, 0);
        let mut batches = ChangelogFold::new(ChangelogMode::Batches, 0, 0);
        for (offset, batch, key, value) in records {
            compacted.push(offset, batch, key.as_bytes(), Some(value.as_bytes()));
            batches.push(offset, batch, key.as_bytes(), Some(value.as_bytes()));
        }
        let compacted = finished(compacted, Some(11));
        assert_eq!(writes(&compacted).len(), 3, "every surviving record counts");
        assert_eq!(writes(&finished(batches, Some(11))).len(), 1, "read as batches, compaction would lose k1 and k2");
        assert_eq!(compacted.next, 11);
    }

    #[test]
    fn properties_parse_and_report_the_bad_line() {
        let parsed = parse_properties("# security\nsecurity.protocol = SASL_SSL\n\nsasl.mechanism=PLAIN\n");
        assert_eq!(
            parsed.expect("valid"),
            vec![
                ("security.protocol".to_string(), "SASL_SSL".to_string()),
                ("sasl.mechanism".to_string(), "PLAIN".to_string())
            ]
        );
        assert_eq!(parse_properties("a=1\noops\n").expect_err("invalid"), "line 2: expected `name=value`");
    }

    #[test]
    fn each_client_gets_the_properties_of_its_kind() {
        let env = KafkaEnv {
            brokers: None,
            group_id: None,
            properties: vec![
                ("session.timeout.ms".to_string(), "3000".to_string()),
                ("linger.ms".to_string(), "5".to_string()),
                ("security.protocol".to_string(), "SASL_SSL".to_string()),
            ],
        };
        let consumer = env.config(Some("b:9092"), Role::Consumer).expect("config");
        assert_eq!(consumer.get("session.timeout.ms"), Some("3000"));
        assert_eq!(consumer.get("linger.ms"), None);
        assert_eq!(consumer.get("security.protocol"), Some("SASL_SSL"));
        let producer = env.config(Some("b:9092"), Role::Producer).expect("config");
        assert_eq!(producer.get("session.timeout.ms"), None);
        assert_eq!(producer.get("linger.ms"), Some("5"));
        let admin = env.config(Some("b:9092"), Role::Admin).expect("config");
        assert_eq!((admin.get("session.timeout.ms"), admin.get("linger.ms")), (None, None));
        assert_eq!(admin.get("security.protocol"), Some("SASL_SSL"));
    }

    #[test]
    fn record_ids_depend_on_every_part() {
        let id = record_id("in/0/5", "out", 0);
        assert_eq!(id, record_id("in/0/5", "out", 0));
        assert_ne!(id, record_id("in/0/6", "out", 0));
        assert_ne!(id, record_id("in/0/5", "other", 0));
        assert_ne!(id, record_id("in/0/5", "out", 1));
    }
}
