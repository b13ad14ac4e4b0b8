//! Client configuration shared by every Kafka client of a run (`KafkaEnv`: brokers, group, and
//! librdkafka properties from the environment), error wording, log forwarding and record ids.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};

/// Timeout of metadata, offset and transaction calls.
pub(super) const CALL_TIMEOUT: Duration = Duration::from_secs(30);

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
    pub fn from_environment() -> Result<KafkaEnv, Error> {
        let mut properties = Vec::new();
        if let Ok(path) = std::env::var("PULSE_KAFKA_CONFIG") {
            let text = std::fs::read_to_string(&path)
                .map_err(|error| Error::Setting(format!("cannot read PULSE_KAFKA_CONFIG `{path}`: {error}")))?;
            properties.extend(
                parse_properties(&text)
                    .map_err(|error| Error::Setting(format!("PULSE_KAFKA_CONFIG `{path}`: {error}")))?,
            );
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
    pub(crate) fn consumer_config(&self, brokers: Option<&str>) -> Result<ClientConfig, Error> {
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

    pub(super) fn config(&self, brokers: Option<&str>, role: Role) -> Result<ClientConfig, Error> {
        let brokers = self.brokers.as_deref().or(brokers).ok_or_else(|| {
            Error::Setting(
                "no Kafka brokers: set `brokers` in the pipeline or PULSE_KAFKA_BROKERS in the environment".to_string(),
            )
        })?;
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
pub(super) enum Role {
    Consumer,
    Producer,
    /// Metadata and topic creation: neither kind's own properties.
    Admin,
}

/// librdkafka properties that only consumers take.
pub(super) const CONSUMER_PROPERTIES: &[&str] = &[
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
pub(super) const PRODUCER_PROPERTIES: &[&str] = &[
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
pub fn parse_properties(text: &str) -> Result<Vec<(String, String)>, Error> {
    let mut out = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((name, value)) = line.split_once('=') else {
            return Err(Error::Setting(format!("line {}: expected `name=value`", number + 1)));
        };
        out.push((name.trim().to_string(), value.trim().to_string()));
    }
    Ok(out)
}

/// A failure on the Kafka path. Messages name the operation and librdkafka's error, never the
/// configuration (it may hold passwords).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A librdkafka call failed while the runtime was doing `what`.
    #[error("kafka: {what}: {source}")]
    Client { what: String, source: KafkaError },
    /// A setting in the environment or a properties file that cannot be used: a usage error.
    #[error("{0}")]
    Setting(String),
    /// Anything else: an answer of the broker, a record, a thread that could not start.
    #[error("{0}")]
    Failed(String),
}

impl Error {
    /// Whether the run was misconfigured (exit code 2) rather than failed (exit code 1).
    pub fn is_setting(&self) -> bool {
        matches!(self, Error::Setting(_))
    }
}

impl From<String> for Error {
    fn from(message: String) -> Error {
        Error::Failed(message)
    }
}

/// The error of librdkafka call that failed while the runtime was doing `what`.
pub(super) fn describe(what: &str, error: &KafkaError) -> Error {
    Error::Client { what: what.to_string(), source: error.clone() }
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

pub(super) fn debug_enabled() -> bool {
    static ENABLED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ENABLED.get_or_init(|| std::env::var_os("PULSE_KAFKA_PROP_DEBUG").is_some())
}

/// The duration in environment variable `name` (e.g. `30s`), else `default`.
pub fn duration_from_env(name: &str, default: Duration) -> Result<Duration, Error> {
    match std::env::var(name) {
        Ok(text) => crate::checkpoint::parse_duration_ms(&text)
            .map(Duration::from_millis)
            .map_err(|error| Error::Setting(format!("{name}: {error}"))),
        Err(_) => Ok(default),
    }
}

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

/// The `pulse-id` header: FNV-1a 128 of (origin, node id, output index), 32 hex digits. The
/// origin is `topic/partition/offset` for a Kafka record, `source/line` for a file line and
/// `timer/sequence` for a timer firing.
pub fn record_id(origin: &str, node: &str, index: u64) -> String {
    crate::api_sink::idempotency_key(&[origin.as_bytes(), node.as_bytes(), index.to_string().as_bytes()])
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

/// How often an ongoing broker outage is reported.
pub(super) const OUTAGE_REPORT_EVERY: Duration = Duration::from_secs(10);
