//! The driver loop: reads the sources round-robin (G31) on the logical arrival clock (G30),
//! hands each line to the pipeline, moves the watermark (G26) and fires timers (G27, G28, G35).
//! It is generic over the pipeline type, so every call into generated code is static.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use pulse_stdlib::json::write_str;
use pulse_stdlib::state::Store;
use rocksdb::WriteBatch;

use crate::api_sink::{idempotency_key, ApiClient, ApiSettings, Done, Job};
use crate::checkpoint::{
    open_resumed_output, parse_duration_ms, plan_restore, write_atomically, Progress, Snapshot, SourcePosition,
    TimerRecord,
};
use crate::cli::{self, Destination, EndOfInput, Input, Invocation, RunOptions, SavepointOptions};
use crate::io::{OutputWriter, SourceReader};
use crate::kafka::{
    self, ChangelogMode, KafkaEnv, KafkaReader, KafkaWriter, Offsets, Polled, ProducerSettings, Rebalance,
    SourceSettings,
};
use crate::log;
use crate::metrics::{self, Metrics, SinkHealth, Snapshot as MetricsSnapshot, PUBLISH_EVERY};
use crate::redis_sink::{redis_url, RedisWriter};
use crate::repartition::{self, RepartitionSettings, Repartitioner};
use crate::report::{self, Accounting};
use crate::resume;
use crate::state::{
    node_range, split_state_key, state_key, RocksStore, StateBackend, PROGRESS_KEY, SHARD_INDEX_PREFIX, STATE_PREFIX,
    TIMER_PREFIX,
};
use crate::tasks::{
    seed_key, seed_prefix, shard_record_key, Marker, ShardRecord, Tasks, CHANGELOG_KEY, SHARD_RECORD_PREFIX,
};
use crate::timers::{shard_of, watermark_during_timer, SourceWatermarks, TimerQueue};
use crate::{
    DeadEvent, KafkaPartitioning, KafkaStart, Pipeline, PipelineSpec, SinkKind, SourceKind, SourceSpec, TimeDomain,
    Timer,
};
use pulse_stdlib::progress::InputIdentity;
use rdkafka::TopicPartitionList;

/// The timers left pending by `--end-of-input keep`, inside `--output DIR`.
const PENDING_FILE: &str = "_pending.jsonl";
/// The memory backend's checkpoint file inside `--state-dir`.
const MEMORY_SNAPSHOT_FILE: &str = "memory.snapshot";
/// Checkpoint interval when neither the command line nor the pipeline sets one.
const DEFAULT_CHECKPOINT_INTERVAL_MS: u64 = 10_000;
/// The node name in the `pulse-id` of dead letters produced to Kafka.
const DEAD_LETTER_NODE: &str = "_dead_letter";
/// How long a Kafka source waits for a record when it is the only source with input left.
const KAFKA_IDLE_POLL: Duration = Duration::from_millis(100);
/// The prefix of a clock step line (`--clock-lines`, for `pulsec test`).
const CLOCK_LINE: &[u8] = b"#clock ";

/// The Kafka record a step's origin names: the record itself, or for a repartitioned record the
/// source record it copies.
fn origin_source(origin: &Origin) -> Option<(&String, &i32, &i64)> {
    match origin {
        Origin::Kafka { upstream: Some((topic, partition, offset)), .. }
        | Origin::Kafka { topic, partition, offset, upstream: None } => Some((topic, partition, offset)),
        _ => None,
    }
}

/// The text naming a step's origin in record ids (`pulse-id`).
fn origin_text(origin: &Origin) -> String {
    match (origin, origin_source(origin)) {
        (_, Some((topic, partition, offset))) => format!("{topic}/{partition}/{offset}"),
        (Origin::Line { source, line }, _) => format!("{source}/{line}"),
        (Origin::Timer { sequence }, _) => format!("timer/{sequence}"),
        (Origin::Kafka { .. }, None) => unreachable!("a Kafka origin has a source record"),
    }
}

/// Where the current step's records come from: names the `pulse-id` of Kafka output.
#[derive(Clone, Debug)]
enum Origin {
    Line {
        source: usize,
        line: u64,
    },
    /// `upstream`: the source record a repartitioned record copies.
    Kafka {
        topic: String,
        partition: i32,
        offset: i64,
        upstream: Option<(String, i32, i64)>,
    },
    Timer {
        sequence: u64,
    },
}

/// Set by SIGTERM/SIGINT: stop after the current step with a checkpoint.
static STOP: std::sync::OnceLock<std::sync::Arc<std::sync::atomic::AtomicBool>> = std::sync::OnceLock::new();

pub(crate) fn stop_requested() -> bool {
    STOP.get().is_some_and(|flag| flag.load(std::sync::atomic::Ordering::Relaxed))
}

/// One source's reader.
enum Reader {
    Lines(SourceReader),
    Kafka(Box<KafkaReader>),
}

/// What generated code sees of the runtime during one step: the clocks, the outputs and the
/// timer service.
pub struct Context {
    arrival: i64,
    watermark: i64,
    /// The largest event time the current record step reported, folded into its source's
    /// watermark after the step (G26).
    step_event_time: Option<i64>,
    /// The current source's `maxFutureSkew` (ms) and the event time above which its records
    /// are dead letters: the wall clock plus the skew (see `FutureGuard`).
    future_skew: i64,
    future_limit: i64,
    /// Per node: records dead-lettered at it as too far ahead of the wall clock.
    future_per_node: Vec<u64>,
    timers: TimerQueue,
    writers: Vec<OutputWriter>,
    /// Per writer, with `--emit-times`: the writer of its `.times` file (sink files only);
    /// empty otherwise.
    time_writers: Vec<Option<OutputWriter>>,
    writer_labels: Vec<String>,
    /// Per sink: its writer, or `usize::MAX` for a live network sink.
    sink_writer: Vec<usize>,
    /// Per sink: the writer of its message previews (`<node-id>.rendered.jsonl`, a network sink
    /// under `--output`), or `usize::MAX`.
    sink_preview: Vec<usize>,
    /// Per sink: its Redis client when it is a live redis-sink.
    sink_redis: Vec<Option<usize>>,
    redis: Vec<RedisWriter>,
    /// Per sink: its worker pool when it is a live api-sink.
    sink_api: Vec<Option<usize>>,
    /// (sink index, pool) of every live api-sink.
    api: Vec<(usize, ApiClient)>,
    pipeline_name: &'static str,
    /// The writer of the dead letters, or `usize::MAX` when they go to Kafka.
    dead_letter_writer: usize,
    /// (producer, topic) when dead letters go to a Kafka topic.
    dead_letter_kafka: Option<(usize, String)>,
    sink_counts: Vec<u64>,
    dead_letter_count: u64,
    dropped_count: u64,
    dropped_per_node: Vec<u64>,
    /// Per node: records that entered it, records it sent on, late records it dropped.
    records_in: Vec<u64>,
    records_out: Vec<u64>,
    late_per_node: Vec<u64>,
    /// Per node: out per port, dead letters, absorbed and created records, keys (`--report`).
    acct: Accounting,
    /// Time spent blocked on sinks (full queues, Redis down).
    backpressure: Duration,
    /// Reused buffer for dead-letter lines.
    dead_letter_text: String,
    /// The first write error; the driver stops after the step that hit it.
    io_error: Option<String>,
    state: StateBackend,
    /// Per writer: bytes in its file (committed length plus everything written since).
    written: Vec<u64>,
    /// Per writer: the file path for files (whose lengths checkpoints commit), else `None`.
    writer_files: Vec<Option<String>>,
    /// Node id of every sink.
    sink_nodes: Vec<&'static str>,
    /// Per sink: its kind (for previews).
    sink_kinds: Vec<SinkKind>,
    /// Per sink: (producer, topic) when it is a live kafka-sink.
    sink_kafka: Vec<Option<(usize, &'static str)>>,
    kafka: Vec<KafkaWriter>,
    origin: Origin,
    /// Kafka records produced in the current step so far (the output index of `pulse-id`).
    origin_outputs: u64,
    /// The step replays input whose transactional output was already committed.
    kafka_muted: bool,
    /// The shard of the current step (see `tasks`): 0, or a Kafka partition + 1.
    shard: u32,
    /// Per owned shard: its producers.
    task_writers: BTreeMap<u32, PartitionWriters>,
    /// `--trace`: whether the step is traced, and the trace's writer.
    pub(crate) trace: crate::trace::TraceState,
}

/// The producers of a task: one per sink producer (`None` where it is not transactional and
/// the instance's own serves it), then the changelog's when it needs its own.
type PartitionWriters = Vec<Option<KafkaWriter>>;

impl Context {
    /// The keyed state of every operator.
    pub fn state(&mut self) -> &mut StateBackend {
        &mut self.state
    }

    /// The logical arrival time of the current line (G30): line n of the whole input arrives at
    /// n ms. While a processing-time timer fires it is that timer's time (never going back).
    pub fn arrival(&self) -> i64 {
        self.arrival
    }

    /// The watermark operators compare against: during a record step the watermark from before
    /// the record (G26), during a timer firing the clamped value of G28. `i64::MIN` is −∞ and
    /// `i64::MAX` is +∞.
    pub fn watermark(&self) -> i64 {
        self.watermark
    }

    /// Event times above this are too far ahead of the wall clock for the current source.
    #[inline]
    pub fn future_limit(&self) -> i64 {
        self.future_limit
    }

    /// Dead-letters a source record of node `node` dated further ahead of the wall clock than
    /// its `maxFutureSkew`: it would move the watermark so far that every later event is late.
    pub fn dead_letter_future(&mut self, node: usize, event_time: i64, line: &str) {
        if let Some(count) = self.future_per_node.get_mut(node) {
            *count += 1;
        }
        let reason = format!(
            "future-event: event time {} is more than maxFutureSkew {} ahead of the wall clock ({})",
            pulse_stdlib::time::utc(event_time),
            crate::checkpoint::format_duration_ms(self.future_skew),
            pulse_stdlib::time::utc(self.future_limit.saturating_sub(self.future_skew)),
        );
        self.dead_letter_at(node, &reason, DeadEvent::Json(std::borrow::Cow::Borrowed(line)));
    }

    /// Reports the event time of the current source record; called once the time is known and
    /// the record was not dead-lettered at the source.
    pub fn observe_event_time(&mut self, event_time: i64) {
        self.step_event_time = Some(self.step_event_time.map_or(event_time, |seen| seen.max(event_time)));
        if self.trace.on {
            self.trace_read(event_time);
        }
    }

    /// Writes one event (its JSON text) to sink `sink`; `event_time` is the record's (G33),
    /// written beside it only with `--emit-times`.
    pub fn emit(&mut self, sink: usize, event_time: i64, event_json: &str) {
        if self.trace.on {
            self.trace_emit(self.sink_nodes[sink], Some(event_time), event_json);
        }
        let writer_idx = self.sink_writer[sink];
        self.sink_counts[sink] += 1;
        self.acct.sink_record(sink, Some(event_time));
        if writer_idx == usize::MAX {
            self.io_error.get_or_insert_with(|| format!("internal: emit to live network sink {sink}"));
            return;
        }
        self.written[writer_idx] += event_json.len() as u64 + 1;
        if let Err(error) = self.writers[writer_idx].write_line(event_json.as_bytes()) {
            self.record_write_error(writer_idx, &error);
        }
        if !self.time_writers.is_empty() {
            if let Some(times) = &mut self.time_writers[writer_idx] {
                if let Err(error) = times.write_line(event_time.to_string().as_bytes()) {
                    self.io_error.get_or_insert_with(|| format!("cannot write event times: {error}"));
                }
            }
        }
    }

    /// Produces one record to live kafka-sink `sink` in the run's transaction (or at least
    /// once), with a `pulse-id` header naming its origin, node and output index.
    pub fn kafka(&mut self, sink: usize, key: Option<&str>, value: &str) {
        let Some((producer, topic)) = self.sink_kafka[sink] else {
            self.io_error.get_or_insert_with(|| format!("internal: sink {sink} is not a live kafka-sink"));
            return;
        };
        self.sink_counts[sink] += 1;
        self.acct.sink_record(sink, None);
        if self.trace.on {
            self.trace_emit(self.sink_nodes[sink], None, value);
        }
        self.produce(producer, topic, key, value, self.sink_nodes[sink], None);
    }

    /// The `pulse-id` of the next output of the current step, as `produce` assigns it.
    fn next_record_id(&mut self, node: &str) -> String {
        let index = self.origin_outputs;
        self.origin_outputs += 1;
        kafka::record_id(&origin_text(&self.origin), node, index)
    }

    /// Produces one record of the current step through `producer` (the shard's own with
    /// tasks). Headers: `pulse-id` (origin, `node`, output index); for a dead letter (`reason`
    /// given) also `pulse-reason` and the source coordinates (`pulse-source-topic`,
    /// `-partition`, `-offset` for a Kafka record, `pulse-origin` always).
    fn produce(
        &mut self,
        producer: usize,
        topic: &str,
        key: Option<&str>,
        value: &str,
        node: &str,
        reason: Option<&str>,
    ) {
        let index = self.origin_outputs;
        self.origin_outputs += 1;
        if self.kafka_muted {
            return;
        }
        let source = origin_source(&self.origin);
        let origin = origin_text(&self.origin);
        let id = kafka::record_id(&origin, node, index);
        let mut headers: Vec<(&str, String)> = vec![("pulse-id", id)];
        if let Some(reason) = reason {
            headers.push(("pulse-reason", reason.to_string()));
            headers.push(("pulse-origin", origin));
            if let Some((topic, partition, offset)) = source {
                headers.push(("pulse-source-topic", topic.clone()));
                headers.push(("pulse-source-partition", partition.to_string()));
                headers.push(("pulse-source-offset", offset.to_string()));
            }
        }
        let writer = match self.task_writers.get_mut(&self.shard).and_then(|writers| writers.get_mut(producer)) {
            Some(Some(writer)) => writer,
            _ => &mut self.kafka[producer],
        };
        if let Err(error) = writer.send(topic, None, key, value.as_bytes(), &headers) {
            self.io_error.get_or_insert(error);
        }
    }

    /// Writes one message preview of network sink `sink` (under `--output`).
    fn write_preview(&mut self, sink: usize, event_time: i64, line: &str) {
        let writer_idx = self.sink_preview[sink];
        if writer_idx == usize::MAX {
            return;
        }
        self.written[writer_idx] += line.len() as u64 + 1;
        if let Err(error) = self.writers[writer_idx].write_line(line.as_bytes()) {
            self.record_write_error(writer_idx, &error);
        }
        if let Some(Some(times)) = self.time_writers.get_mut(writer_idx) {
            if let Err(error) = times.write_line(event_time.to_string().as_bytes()) {
                self.io_error.get_or_insert_with(|| format!("cannot write event times: {error}"));
            }
        }
    }

    /// Under `--output`: the request api-sink `sink` would send for this record (see `api`).
    pub fn preview_api(
        &mut self,
        sink: usize,
        event_time: i64,
        url: &str,
        headers: &[(&'static str, String)],
        body: Option<&str>,
        key_text: &str,
    ) {
        let SinkKind::Api { method, .. } = self.sink_kinds[sink] else { return };
        let time = event_time.to_string();
        let key = idempotency_key(&[
            self.pipeline_name.as_bytes(),
            self.sink_nodes[sink].as_bytes(),
            key_text.as_bytes(),
            time.as_bytes(),
        ]);
        let line = crate::preview::api(method, url, headers, body, &key);
        self.write_preview(sink, event_time, &line);
    }

    /// Under `--output`: the commands redis-sink `sink` would queue for this record (see `redis`).
    pub fn preview_redis(&mut self, sink: usize, event_time: i64, event_json: &str, key: &str, args: &[&str]) {
        let SinkKind::Redis { command, trim, ttl_ms, .. } = self.sink_kinds[sink] else { return };
        let line = crate::preview::redis(command, trim, ttl_ms, event_json, key, args);
        self.write_preview(sink, event_time, &line);
    }

    /// Under `--output`: the record kafka-sink `sink` would produce (see `kafka`).
    pub fn preview_kafka(&mut self, sink: usize, event_time: i64, key: Option<&str>, value: &str) {
        let SinkKind::Kafka { topic, .. } = self.sink_kinds[sink] else { return };
        let id = self.next_record_id(self.sink_nodes[sink]);
        let line = crate::preview::kafka(topic, key, value, &id);
        self.write_preview(sink, event_time, &line);
    }

    /// Whether sink `sink` writes to its real system (Redis, HTTP); false under `--output`, where
    /// generated code emits the event unrendered (G47).
    pub fn sink_live(&self, sink: usize) -> bool {
        self.sink_writer[sink] == usize::MAX
    }

    /// Queues the write of one event to live redis-sink `sink`: `key` and the command's
    /// arguments after it — SET, SADD, LPUSH, RPUSH `[value]`; HSET `[field, value]`, or `[]` for
    /// every top-level field of the event; ZADD `[score, member]`. Blocks while Redis is down.
    pub fn redis(&mut self, sink: usize, event_json: &str, key: &str, args: &[&str]) {
        let Some(redis_idx) = self.sink_redis[sink] else {
            self.io_error.get_or_insert_with(|| format!("internal: sink {sink} is not a live redis-sink"));
            return;
        };
        self.sink_counts[sink] += 1;
        self.acct.sink_record(sink, None);
        if self.trace.on {
            self.trace_emit(self.sink_nodes[sink], None, event_json);
        }
        if let Err(error) = self.redis[redis_idx].push(event_json, key, args) {
            self.io_error.get_or_insert(error);
        }
    }

    /// Queues the request of one event to live api-sink `sink` (blocks while its queue is full).
    /// `key_text` is hashed with the pipeline name, node id and event time into the
    /// `Idempotency-Key` header.
    #[allow(clippy::too_many_arguments)]
    pub fn api(
        &mut self,
        sink: usize,
        event_json: &str,
        event_time: i64,
        url: String,
        headers: Vec<(&'static str, String)>,
        body: Option<String>,
        key_text: &str,
    ) {
        let Some(api_idx) = self.sink_api[sink] else {
            self.io_error.get_or_insert_with(|| format!("internal: sink {sink} is not a live api-sink"));
            return;
        };
        // Counted as written when the API accepts it (`settle_api`), not when it is queued.
        self.acct.sink_record(sink, Some(event_time));
        if self.trace.on {
            self.trace_emit(self.sink_nodes[sink], Some(event_time), event_json);
        }
        let client = &self.api[api_idx].1;
        let time = event_time.to_string();
        let idempotency_key = idempotency_key(&[
            self.pipeline_name.as_bytes(),
            client.settings.node.as_bytes(),
            key_text.as_bytes(),
            time.as_bytes(),
        ]);
        match client.submit(Job { url, headers, body, idempotency_key, event: event_json.to_string(), event_time }) {
            Ok(blocked) => self.backpressure += blocked,
            Err(stopped) => {
                self.io_error.get_or_insert(stopped);
            }
        }
    }

    /// Sends everything buffered for network sinks and waits for the acknowledgements.
    fn flush_network(&mut self) -> Result<(), RunError> {
        for redis in &mut self.redis {
            redis.flush().map_err(RunError::Io)?;
        }
        Ok(())
    }

    /// Writes a dead letter `{"reason": ..., "event": ...}` (G48).
    pub fn dead_letter(&mut self, reason: &str, event: DeadEvent<'_>) {
        if self.trace.on {
            let mut json = String::new();
            match &event {
                DeadEvent::Raw(line) => write_str(&mut json, line),
                DeadEvent::Json(text) => json.push_str(text),
            }
            self.trace_dead_letter(reason, &json);
        }
        let text = &mut self.dead_letter_text;
        text.clear();
        text.push_str("{\"reason\":");
        write_str(text, reason);
        text.push_str(",\"event\":");
        match &event {
            DeadEvent::Raw(line) => write_str(text, line),
            DeadEvent::Json(json) => text.push_str(json),
        }
        text.push('}');
        self.dead_letter_count += 1;
        if let Some((producer, topic)) = &self.dead_letter_kafka {
            let (producer, topic) = (*producer, topic.clone());
            let text = std::mem::take(&mut self.dead_letter_text);
            self.produce(producer, &topic, None, &text, DEAD_LETTER_NODE, Some(reason));
            self.dead_letter_text = text;
            return;
        }
        let writer_idx = self.dead_letter_writer;
        self.written[writer_idx] += self.dead_letter_text.len() as u64 + 1;
        if let Err(error) = self.writers[writer_idx].write_line(self.dead_letter_text.as_bytes()) {
            self.record_write_error(writer_idx, &error);
        }
    }

    /// Writes a dead letter (as `dead_letter`) for a record that failed at node `node`.
    pub fn dead_letter_at(&mut self, node: usize, reason: &str, event: DeadEvent<'_>) {
        if let Some(count) = self.acct.dead_lettered.get_mut(node) {
            *count += 1;
        }
        self.dead_letter(reason, event);
    }

    /// Counts a record that node `node` folded into its state without passing it on (a
    /// window-aggregate input, a has-done-event `events` record).
    #[inline]
    pub fn absorb(&mut self, node: usize) {
        if let Some(count) = self.acct.absorbed.get_mut(node) {
            *count += 1;
        }
    }

    /// Counts a record that node `node` makes from its state rather than passing one on (a
    /// window result, a segmentation refresh, an extra copy of a splitter in `all` mode).
    #[inline]
    pub fn create(&mut self, node: usize) {
        if let Some(count) = self.acct.created.get_mut(node) {
            *count += 1;
        }
    }

    /// The key of a record at keyed node `node`: counted into the distinct keys of `--report`
    /// (nothing without it).
    #[inline]
    pub fn key_seen(&mut self, node: usize, key: &[u8]) {
        self.acct.key_seen(node, key);
    }

    /// Counts a record dropped by design at node `node` (filtered, unconnected output, ...).
    pub fn drop_record(&mut self, node: usize) {
        self.dropped_count += 1;
        if let Some(count) = self.dropped_per_node.get_mut(node) {
            *count += 1;
        }
    }

    /// Counts a late record dropped at node `node` (its `late` port is not connected).
    pub fn drop_late(&mut self, node: usize) {
        self.drop_record(node);
        if let Some(count) = self.late_per_node.get_mut(node) {
            *count += 1;
        }
    }

    /// Counts a record entering node `node`.
    #[inline]
    pub fn node_in(&mut self, node: usize) {
        if let Some(count) = self.records_in.get_mut(node) {
            *count += 1;
        }
    }

    /// Counts a record that node `node` sends on (once, whatever the number of its edges).
    #[inline]
    pub fn node_out(&mut self, node: usize) {
        if let Some(count) = self.records_out.get_mut(node) {
            *count += 1;
        }
    }

    /// Counts a record that node `node` sends on its output port `port` (an index into
    /// `Topology::ports`), once whatever the number of the port's edges.
    #[inline]
    pub fn node_out_port(&mut self, node: usize, port: usize) {
        self.node_out(node);
        if let Some(count) = self.acct.port_out.get_mut(node).and_then(|ports| ports.get_mut(port)) {
            *count += 1;
        }
    }

    /// Registers a timer; timers fire by (time, registration order) (G28).
    pub fn schedule(&mut self, timer: Timer) {
        self.timers.schedule_in(self.shard, timer);
    }

    /// The shard the following step's state writes, timers and Kafka output belong to.
    fn set_shard(&mut self, shard: u32) {
        self.shard = shard;
        if let StateBackend::Rocks(store) = &mut self.state {
            store.set_shard(shard);
        }
    }

    /// Records dropped so far at each node (index = node index).
    pub fn dropped_per_node(&self) -> &[u64] {
        &self.dropped_per_node
    }

    fn record_write_error(&mut self, writer_idx: usize, error: &std::io::Error) {
        if self.io_error.is_none() {
            self.io_error = Some(format!("cannot write to `{}`: {error}", self.writer_labels[writer_idx]));
        }
    }

    fn take_io_error(&mut self) -> Result<(), RunError> {
        match self.io_error.take().or_else(|| self.state.take_error()) {
            Some(message) => Err(RunError::Io(message)),
            None => Ok(()),
        }
    }
}

/// Counts printed at exit.
#[derive(Clone, Debug, PartialEq)]
pub struct RunSummary {
    pub pipeline: &'static str,
    pub records_read: u64,
    pub blank_lines: u64,
    /// (sink node id, records written) in sink order.
    pub written_per_sink: Vec<(&'static str, u64)>,
    pub dead_letters: u64,
    pub dropped: u64,
    pub elapsed: Duration,
}

impl fmt::Display for RunSummary {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let written: u64 = self.written_per_sink.iter().map(|(_, count)| count).sum();
        let per_sink: Vec<String> =
            self.written_per_sink.iter().map(|(node, count)| format!("{node}: {count}")).collect();
        write!(
            formatter,
            "{} records read, {} written ({}), {} dead letters, {} dropped, {} blank lines skipped, {:.3}s",
            self.records_read,
            written,
            per_sink.join(", "),
            self.dead_letters,
            self.dropped,
            self.blank_lines,
            self.elapsed.as_secs_f64()
        )
    }
}

enum RunError {
    /// Bad command line or configuration: exit code 2.
    Usage(String),
    /// Reading or writing failed: exit code 1.
    Io(String),
}

/// Runs the pipeline with the process's command line. Exit codes: 0 success, 1 I/O error,
/// 2 usage or configuration error.
pub fn run<P: Pipeline + 'static>() -> ExitCode {
    run_with_args::<P>(std::env::args())
}

/// Runs the pipeline with the given command line; the first item is the program name.
///
/// The only generic function of the driver: it describes `P` as a `Def` and hands over to the
/// driver, which calls the generated code through `Steps`, one dynamic call per record, timer
/// or response. So the driver is compiled and optimized once, in this crate, and a pipeline's
/// crate holds only its own code.
pub fn run_with_args<P: Pipeline + 'static>(args: impl IntoIterator<Item = String>) -> ExitCode {
    let def: &'static Def = Box::leak(Box::new(Def {
        spec: P::SPEC,
        edges: P::EDGES,
        trace_keys: P::TRACE_KEYS,
        new: || P::new().map(|pipeline| Box::new(pipeline) as Box<dyn Steps>),
    }));
    run_def(def, args.into_iter().collect())
}

/// What the driver calls of a generated pipeline.
trait Steps {
    fn on_record(&mut self, source: usize, line: &str, cx: &mut Context);
    fn on_timer(&mut self, timer: Timer, cx: &mut Context);
    fn on_response(&mut self, sink: usize, text: &str, event_time: i64, cx: &mut Context);
}

impl<P: Pipeline> Steps for P {
    fn on_record(&mut self, source: usize, line: &str, cx: &mut Context) {
        Pipeline::on_record(self, source, line, cx);
    }

    fn on_timer(&mut self, timer: Timer, cx: &mut Context) {
        Pipeline::on_timer(self, timer, cx);
    }

    fn on_response(&mut self, sink: usize, text: &str, event_time: i64, cx: &mut Context) {
        Pipeline::on_response(self, sink, text, event_time, cx);
    }
}

/// A pipeline as the driver knows it: its description and how to build its steps.
struct Def {
    spec: PipelineSpec,
    edges: &'static [(u32, &'static str, u32)],
    trace_keys: &'static [&'static [&'static str]],
    new: fn() -> Result<Box<dyn Steps>, String>,
}

fn run_def(def: &'static Def, args: Vec<String>) -> ExitCode {
    let invocation = cli::parse_command_line(def.spec.name, args);
    let log_format = match &invocation {
        Ok(Invocation::Run(options)) => options.log_format,
        _ => log::format_from_env(),
    };
    log::init(def.spec.name, log_format);
    let _run = tracing::info_span!("run", pipeline = def.spec.name).entered();
    let options = match invocation {
        Ok(Invocation::Run(options)) => options,
        Ok(Invocation::SavepointCreate(options)) => return exit_with(create_savepoint(&options)),
        Ok(Invocation::Bootstrap(options)) => return exit_with(bootstrap(def, &options)),
        Err(error) => {
            // Help goes to stdout with code 0; real usage errors to stderr with code 2.
            let _ = error.print();
            return ExitCode::from(u8::try_from(error.exit_code()).unwrap_or(2));
        }
    };
    let flag = STOP.get_or_init(Default::default);
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        if let Err(error) = signal_hook::flag::register(signal, std::sync::Arc::clone(flag)) {
            tracing::warn!("cannot handle signal {signal}: {error}");
        }
    }
    start_stop_watchdog(std::sync::Arc::clone(flag), stop_grace());
    let mut stats = CheckpointStats::default();
    let outcome = execute(def, &options, &mut stats);
    if !options.quiet && options.state_dir.is_some() && outcome.is_ok() {
        tracing::info!(
            checkpoints = stats.checkpoints,
            checkpoint_max_ms = stats.max.as_secs_f64() * 1e3,
            restore_ms = stats.restore.map(|restore| restore.as_secs_f64() * 1e3),
            "{stats}"
        );
    }
    exit_with(outcome.map(|summary| {
        if !options.quiet {
            tracing::info!(
                records_read = summary.records_read,
                dead_letters = summary.dead_letters,
                dropped = summary.dropped,
                seconds = summary.elapsed.as_secs_f64(),
                "{summary}"
            );
        }
    }))
}

/// How long a stop (SIGTERM/SIGINT) may take: the last checkpoint, the Kafka commit and closing
/// the clients. `PULSE_STOP_TIMEOUT` (e.g. `30s`) overrides the default.
const DEFAULT_STOP_GRACE: Duration = Duration::from_secs(60);

fn stop_grace() -> Duration {
    std::env::var("PULSE_STOP_TIMEOUT")
        .ok()
        .and_then(|text| parse_duration_ms(&text).ok())
        .map_or(DEFAULT_STOP_GRACE, Duration::from_millis)
}

/// Ends the process with exit code 1 when a requested stop has not finished within `grace` (a
/// broker or Redis that went away can block a commit or a client's close for good). The last
/// completed checkpoint stands; a restart resumes from it.
fn start_stop_watchdog(flag: std::sync::Arc<std::sync::atomic::AtomicBool>, grace: Duration) {
    let spawned = std::thread::Builder::new().name("pulse-stop-watchdog".to_string()).spawn(move || {
        while !flag.load(std::sync::atomic::Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(100));
        }
        std::thread::sleep(grace);
        tracing::error!(
            exit_code = 1,
            "did not stop within {} s of the stop signal; exiting, a restart resumes from the last completed checkpoint",
            grace.as_secs()
        );
        std::process::exit(1);
    });
    if let Err(error) = spawned {
        tracing::warn!("cannot start the stop watchdog: {error}");
    }
}

fn exit_with(outcome: Result<(), RunError>) -> ExitCode {
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(RunError::Usage(message)) => {
            tracing::error!(exit_code = 2, "{message}");
            ExitCode::from(2)
        }
        Err(RunError::Io(message)) => {
            tracing::error!(exit_code = 1, "{message}");
            ExitCode::from(1)
        }
    }
}

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
        if let Some(restore) = self.restore {
            write!(formatter, "; restored in {:.2} ms", restore.as_secs_f64() * 1e3)?;
        }
        Ok(())
    }
}

/// `savepoint create`: the last committed checkpoint of a state directory as a snapshot file.
fn create_savepoint(options: &SavepointOptions) -> Result<(), RunError> {
    let snapshot = read_checkpoint(&options.state_dir)?;
    write_atomically(&options.to, &snapshot.encode())
        .map_err(|error| RunError::Io(format!("cannot write `{}`: {error}", options.to.display())))?;
    if options.quiet {
        return Ok(());
    }
    report_savepoint(&options.to, &snapshot);
    Ok(())
}

/// The last committed checkpoint of a state directory, as one snapshot.
fn read_checkpoint(dir: &Path) -> Result<Snapshot, RunError> {
    let memory_file = dir.join(MEMORY_SNAPSHOT_FILE);
    let snapshot = if memory_file.is_file() {
        let bytes = std::fs::read(&memory_file)
            .map_err(|error| RunError::Io(format!("cannot read `{}`: {error}", memory_file.display())))?;
        Snapshot::decode(&bytes).map_err(|error| RunError::Io(format!("`{}`: {error}", memory_file.display())))?
    } else if dir.join("CURRENT").is_file() {
        let db = RocksStore::open_read_only(dir).map_err(RunError::Io)?;
        let progress = match db.get(PROGRESS_KEY).map_err(|error| RunError::Io(error.to_string()))? {
            Some(bytes) => Progress::from_bytes(&bytes)
                .map_err(|error| RunError::Io(format!("corrupt checkpoint in `{}`: {error}", dir.display())))?,
            None => return Err(RunError::Usage(format!("`{}` holds no checkpoint yet", dir.display()))),
        };
        let timers = read_rocks_timers(&db)?;
        // The shard index a bootstrap keeps: state key → shard, in the same key order.
        let mut index =
            RocksStore::scan_prefix(&db, &[SHARD_INDEX_PREFIX]).map_err(RunError::Io)?.into_iter().peekable();
        let (mut entries, mut shards) = (Vec::new(), Vec::new());
        for (key, value) in RocksStore::scan_prefix(&db, &[STATE_PREFIX]).map_err(RunError::Io)? {
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
        Snapshot { progress, timers, entries, shards }
    } else {
        return Err(RunError::Usage(format!("`{}` is not a Pulse state directory", dir.display())));
    };
    Ok(snapshot)
}

fn report_savepoint(to: &Path, snapshot: &Snapshot) {
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
fn bootstrap_progress(inputs: &[Input]) -> ProgressBar {
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
const BOOTSTRAP_CHECKPOINT_EVERY: u64 = 100_000;

/// `bootstrap`: runs the pipeline over history with every sink suppressed and no end-of-input
/// timer flush (the stream goes on), then writes the state as a savepoint. File sources start
/// again at the beginning of their live input; their event-time progress, the timers, the
/// clocks and Kafka positions carry over.
fn bootstrap(def: &'static Def, options: &cli::BootstrapOptions) -> Result<(), RunError> {
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

/// A live network sink's templates read these environment variables: each must be set.
fn check_env(node: &str, names: &[&str]) -> Result<(), RunError> {
    for name in names {
        if std::env::var_os(name).is_none() {
            return Err(RunError::Usage(format!(
                "environment variable `{name}` is not set; sink `{node}` reads it in a template"
            )));
        }
    }
    Ok(())
}

fn timer_key(sequence: u64) -> [u8; 9] {
    let mut key = [TIMER_PREFIX; 9];
    key[1..].copy_from_slice(&sequence.to_be_bytes());
    key
}

fn read_rocks_timers(db: &rocksdb::DB) -> Result<Vec<(u64, TimerRecord)>, RunError> {
    let mut timers = Vec::new();
    for (key, value) in RocksStore::scan_prefix(db, &[TIMER_PREFIX]).map_err(RunError::Io)? {
        let sequence = key.get(1..9).and_then(|bytes| bytes.try_into().ok()).map(u64::from_be_bytes);
        let record = TimerRecord::decode(&mut pulse_stdlib::state::Reader::new(&value));
        match (sequence, record) {
            (Some(sequence), Ok(record)) => timers.push((sequence, record)),
            _ => return Err(RunError::Io("corrupt timer in the checkpoint".to_string())),
        }
    }
    Ok(timers)
}

/// Sets up state following partitions when the pipeline's only source is a kafka-source and
/// state is in RocksDB: creates the changelog topic if needed, reads what local state reflects
/// per partition, and parks the timers of every partition until the group assigns it.
fn open_tasks(
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
    let io = |error: String| RunError::Io(format!("source `{}`: {error}", source.node));
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
    let changelog_mode = ChangelogMode::from_environment().map_err(RunError::Usage)?;
    let compacted = changelog_mode == ChangelogMode::Compacted;
    kafka::ensure_topic(env, brokers, &topic, reader.partition_count(), "changelog", compacted).map_err(io)?;
    reader.clear_replay();
    let mut local = BTreeMap::new();
    for (key, value) in RocksStore::scan_prefix(store.db(), SHARD_RECORD_PREFIX).map_err(RunError::Io)? {
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
    }))
}

/// The producers of the partitions the group assigned, per partition: one per transactional
/// sink producer, plus one for the changelog when none of those talks to the source's brokers.
fn open_task_writers(tasks: &Tasks, partitions: &[i32]) -> Result<Vec<(i32, PartitionWriters)>, String> {
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
                    transactional_id: Some(kafka::partition_transactional_id(&tasks.group, *partition, index)),
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
struct Restored {
    /// State entries and timers applied from the changelog.
    entries: u64,
    timers: u64,
    /// Batches of aborted transactions skipped.
    aborted: u64,
    /// Entries and timers of a savepoint handed to partitions with an empty changelog.
    seeded: u64,
    /// The changelog topic.
    topic: String,
}

/// How a bootstrap over a topic picks the shard of a record's step (see `Snapshot::shards`).
enum BootstrapShards {
    /// The topic is keyed as the state: the record's partition.
    SourcePartition,
    /// The live run re-keys the topic through the repartition topic (created with the source's
    /// partition count): the partition the repartition stage sends the record's key to.
    Rekeyed { by: &'static [&'static str], partitions: i32 },
}

impl BootstrapShards {
    fn shard(&self, partition: i32, record: &str) -> u32 {
        match self {
            BootstrapShards::SourcePartition => Tasks::shard(partition),
            BootstrapShards::Rekeyed { by, partitions } => repartition::partition_key(record.as_bytes(), by)
                .map_or(0, |key| Tasks::shard(repartition::partition_of(&key, *partitions))),
        }
    }
}

/// Where checkpoints go.
enum Durable {
    /// No state directory: a checkpoint only commits Kafka output and offsets.
    KafkaOnly,
    /// The RocksDB backend in `Context::state`.
    Rocks,
    /// A snapshot file of the memory backend, replaced atomically.
    MemoryFile(PathBuf),
}

struct Checkpointer {
    durable: Durable,
    interval: Duration,
    every: Option<u64>,
    last: Instant,
    records_at_last: u64,
    rounds_since_clock: u32,
    count: u64,
}

impl Checkpointer {
    /// Whether a checkpoint is due at this round boundary. `idle`: the round read nothing (a
    /// Kafka source waited), so the clock is read at once rather than every 64 rounds.
    fn due(&mut self, records_read: u64, idle: bool) -> bool {
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

/// The wall clock in ms since the epoch.
fn wall_clock_ms() -> i64 {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    i64::try_from(now.as_millis()).unwrap_or(i64::MAX)
}

/// Per source, the `maxFutureSkew` in ms (`i64::MAX`: off): `--max-future-skew` for every
/// source, else each source's own.
fn future_skews(sources: &[SourceSpec], flag: Option<&str>) -> Result<Vec<i64>, RunError> {
    let flag = match flag.map(str::trim) {
        None => None,
        Some("off") => Some(i64::MAX),
        Some(text) => Some(
            parse_duration_ms(text)
                .map(|millis| i64::try_from(millis).unwrap_or(i64::MAX))
                .map_err(|error| RunError::Usage(format!("--max-future-skew: {error}")))?,
        ),
    };
    Ok(sources.iter().map(|source| flag.unwrap_or(source.max_future_skew)).collect())
}

/// What a run resumes from.
struct Resume {
    progress: Progress,
    timers: Vec<(u64, TimerRecord)>,
    /// Entries to load into the backend (memory snapshots and savepoints; RocksDB keeps its own).
    entries: Vec<(String, Vec<u8>, Vec<u8>)>,
    /// (index in `entries`, shard) of the entries of a partition's shard (see `Snapshot`).
    shards: Vec<(usize, u32)>,
    from_savepoint: bool,
}

/// Opens the state directory (if any) and reads what the run resumes from.
fn open_state(
    def: &'static Def,
    options: &RunOptions,
) -> Result<(StateBackend, Option<Durable>, Option<Resume>), RunError> {
    let spec = &def.spec;
    let savepoint = match &options.from_savepoint {
        Some(path) => {
            let bytes = std::fs::read(path)
                .map_err(|error| RunError::Usage(format!("cannot read savepoint `{}`: {error}", path.display())))?;
            let mut snapshot = Snapshot::decode(&bytes)
                .map_err(|error| RunError::Usage(format!("savepoint `{}`: {error}", path.display())))?;
            // Every checkpoint of this run names the savepoint it descends from.
            snapshot.progress.origin = Some(pulse_stdlib::progress::fnv1a(&bytes));
            if snapshot.progress.pipeline != spec.name {
                tracing::warn!("the savepoint was taken from pipeline `{}`", snapshot.progress.pipeline);
            }
            Some(Resume {
                progress: snapshot.progress,
                timers: snapshot.timers,
                entries: snapshot.entries,
                shards: snapshot.shards,
                from_savepoint: true,
            })
        }
        None => None,
    };
    let Some(dir) = &options.state_dir else {
        return Ok((StateBackend::memory(), None, savepoint));
    };
    std::fs::create_dir_all(dir)
        .map_err(|error| RunError::Io(format!("cannot create state directory `{}`: {error}", dir.display())))?;
    let memory_file = dir.join(MEMORY_SNAPSHOT_FILE);
    let holds_rocks = dir.join("CURRENT").is_file();
    // A checkpoint and --from-savepoint: a restart of a run started from that savepoint (a pod
    // restarted with the arguments it was deployed with) continues from the checkpoint, as
    // Flink ignores the savepoint path once checkpoints exist; any other checkpoint is refused.
    let savepoint_origin = savepoint.as_ref().and_then(|resume| resume.progress.origin);
    let check_lineage = |origin: Option<u64>| -> Result<(), RunError> {
        let (Some(wanted), Some(path)) = (savepoint_origin, &options.from_savepoint) else {
            return Ok(());
        };
        if origin == Some(wanted) {
            tracing::info!(
                "state directory `{}` holds a checkpoint of the run started from savepoint `{}`: continuing from \
                 the checkpoint (--from-savepoint applies to the first start only)",
                dir.display(),
                path.display()
            );
            return Ok(());
        }
        Err(RunError::Usage(format!(
            "state directory `{}` already holds a checkpoint that does not descend from savepoint `{}`: restore the \
             savepoint into a new --state-dir, or drop --from-savepoint to continue from the checkpoint",
            dir.display(),
            path.display()
        )))
    };
    if spec.state_backend_memory {
        if holds_rocks {
            return Err(RunError::Usage(format!(
                "state directory `{}` holds RocksDB state, but this pipeline uses stateBackend \"memory\"",
                dir.display()
            )));
        }
        let resume = if memory_file.is_file() {
            let bytes = std::fs::read(&memory_file)
                .map_err(|error| RunError::Io(format!("cannot read `{}`: {error}", memory_file.display())))?;
            let snapshot = Snapshot::decode(&bytes)
                .map_err(|error| RunError::Io(format!("`{}`: {error}", memory_file.display())))?;
            resume::check_pipeline(&snapshot.progress.pipeline, spec.name, dir).map_err(RunError::Usage)?;
            check_lineage(snapshot.progress.origin)?;
            Some(Resume {
                progress: snapshot.progress,
                timers: snapshot.timers,
                entries: snapshot.entries,
                shards: snapshot.shards,
                from_savepoint: false,
            })
        } else {
            savepoint
        };
        return Ok((StateBackend::memory(), Some(Durable::MemoryFile(memory_file)), resume));
    }
    if memory_file.is_file() {
        return Err(RunError::Usage(format!(
            "state directory `{}` holds memory-backend state, but this pipeline uses RocksDB",
            dir.display()
        )));
    }
    let store = RocksStore::open(dir).map_err(RunError::Io)?;
    let committed = store.db().get(PROGRESS_KEY).map_err(|error| RunError::Io(error.to_string()))?;
    let resume = match committed {
        Some(bytes) => {
            let progress = Progress::from_bytes(&bytes)
                .map_err(|error| RunError::Io(format!("corrupt checkpoint in `{}`: {error}", dir.display())))?;
            resume::check_pipeline(&progress.pipeline, spec.name, dir).map_err(RunError::Usage)?;
            check_lineage(progress.origin)?;
            let timers = read_rocks_timers(store.db())?;
            Some(Resume { progress, timers, entries: Vec::new(), shards: Vec::new(), from_savepoint: false })
        }
        None => savepoint,
    };
    Ok((StateBackend::rocks(store), Some(Durable::Rocks), resume))
}

/// Refuses a resume whose inputs or outputs are not the checkpoint's (see `resume`). Outputs
/// are checked for a state directory's own checkpoint only: a savepoint starts new outputs.
fn check_resumed_run(
    resume: &Resume,
    options: &RunOptions,
    sources: &[SourceSpec],
    inputs: &[Input],
    sinks: &[Destination],
    dead_letters: &Destination,
) -> Result<(), String> {
    for (source, input) in sources.iter().zip(inputs) {
        let Input::Path(path) = input else { continue };
        let position = resume.progress.sources.iter().find(|position| position.node == source.node);
        if let (Some(position), false) = (position, path == "-") {
            if let Some(recorded) = &position.input {
                resume::check_input(source.node, path, position.offset, recorded)?;
            }
        }
    }
    if !resume.from_savepoint {
        let state_dir = options.state_dir.as_deref().unwrap_or(Path::new("."));
        let mut files: Vec<String> = sinks
            .iter()
            .chain([dead_letters])
            .filter_map(|destination| match destination {
                Destination::File(path) => Some(resume::output_identity(path)),
                _ => None,
            })
            .collect();
        if let Some(dir) = &options.output {
            files.push(resume::output_identity(&dir.join("_")));
        }
        resume::check_outputs(&resume.progress.outputs, &files, state_dir)?;
    }
    Ok(())
}

fn execute(def: &'static Def, options: &RunOptions, stats: &mut CheckpointStats) -> Result<RunSummary, RunError> {
    let started = Instant::now();
    let spec = &def.spec;
    // Served from the start, so liveness holds during a long restore; ready once it is done.
    let metrics = match &options.metrics_addr {
        Some(address) => {
            let metrics = Metrics::new(spec.name, spec.version, spec.nodes);
            if let Some(text) = &options.unready_after {
                let millis =
                    parse_duration_ms(text).map_err(|error| RunError::Usage(format!("--unready-after: {error}")))?;
                metrics.set_unready_after(Duration::from_millis(millis));
            }
            let bound = metrics::serve(address, Arc::clone(&metrics)).map_err(RunError::Usage)?;
            if !options.quiet {
                tracing::info!(address = %bound, "serving /metrics, /healthz and /readyz on http://{bound}");
            }
            Some(metrics)
        }
        None => None,
    };
    let outcome = execute_with(def, options, stats, started, metrics.clone());
    if let (Some(metrics), Err(RunError::Io(message) | RunError::Usage(message))) = (&metrics, &outcome) {
        metrics.set_failed(message);
    }
    outcome
}

fn execute_with(
    def: &'static Def,
    options: &RunOptions,
    stats: &mut CheckpointStats,
    started: Instant,
    metrics: Option<Arc<Metrics>>,
) -> Result<RunSummary, RunError> {
    let spec = &def.spec;
    let bootstrap_topics = options.bootstrap.as_deref();
    let input_paths = cli::resolve_inputs(spec.sources, &options.inputs, |path| Path::new(path).is_file())
        .map_err(RunError::Usage)?;
    let (mut sink_destinations, dead_letter_destination) =
        cli::resolve_outputs(spec.sinks, options.output.as_deref(), options.dead_letter.as_deref())
            .map_err(RunError::Usage)?;
    if bootstrap_topics.is_some() {
        sink_destinations.fill(Destination::Discard);
    }
    let interval_ms = match &options.checkpoint_interval {
        // Bootstrap checkpoints by record count only.
        _ if bootstrap_topics.is_some() => u64::MAX / 4,
        Some(text) => {
            parse_duration_ms(text).map_err(|error| RunError::Usage(format!("--checkpoint-interval: {error}")))?
        }
        None => spec.checkpoint_interval_ms.unwrap_or(DEFAULT_CHECKPOINT_INTERVAL_MS),
    };
    let mut pipeline =
        (def.new)().map_err(|message| RunError::Usage(format!("cannot set up the pipeline: {message}")))?;

    let (mut state, durable, resume) = open_state(def, options)?;
    // Check the checkpoint against this pipeline before touching any output.
    let mut dropped_nodes = Vec::new();
    if let Some(resume) = &resume {
        let mut nodes_with_state: Vec<String> = resume.entries.iter().map(|(node, _, _)| node.clone()).collect();
        nodes_with_state.dedup();
        let plan = plan_restore(&resume.progress, spec.nodes, spec.state_layouts, &nodes_with_state)
            .map_err(RunError::Usage)?;
        for node in &plan.removed_nodes {
            tracing::warn!(node = %node, "dropping the state and timers of node `{node}`, which this pipeline no longer has");
        }
        dropped_nodes = plan.removed_nodes;
        check_resumed_run(resume, options, spec.sources, &input_paths, &sink_destinations, &dead_letter_destination)
            .map_err(RunError::Usage)?;
    }

    if let Some(dir) = &options.output {
        std::fs::create_dir_all(dir)
            .map_err(|error| RunError::Io(format!("cannot create output directory `{}`: {error}", dir.display())))?;
    }
    // One writer per distinct destination; sinks sharing a file share its writer.
    let mut destinations: Vec<Destination> = Vec::new();
    let mut writer_for = |destination: &Destination| match destinations.iter().position(|known| known == destination) {
        Some(index) => index,
        None => {
            destinations.push(destination.clone());
            destinations.len() - 1
        }
    };
    let sink_writer: Vec<usize> = sink_destinations
        .iter()
        .map(|destination| if *destination == Destination::Network { usize::MAX } else { writer_for(destination) })
        .collect();
    // Previews are outputs like the sink files: resumed to their committed length after a crash.
    let sink_preview: Vec<usize> = spec
        .sinks
        .iter()
        .zip(&sink_destinations)
        .map(|(sink, destination)| match (sink.kind, destination, &options.output) {
            (
                SinkKind::Api { .. } | SinkKind::Redis { .. } | SinkKind::Kafka { .. },
                Destination::File(_),
                Some(dir),
            ) => writer_for(&Destination::File(dir.join(format!("{}.rendered.jsonl", sink.node)))),
            _ => usize::MAX,
        })
        .collect();
    let mut redis = Vec::new();
    let mut sink_redis = vec![None; spec.sinks.len()];
    let mut api = Vec::new();
    let mut sink_api = vec![None; spec.sinks.len()];
    for (sink_idx, (sink, destination)) in spec.sinks.iter().zip(&sink_destinations).enumerate() {
        if *destination != Destination::Network {
            continue;
        }
        if let SinkKind::Redis { command, trim, ttl_ms, env } = sink.kind {
            check_env(sink.node, env)?;
            let url = redis_url(options.redis_url.as_deref());
            let writer = RedisWriter::open(sink.node, &url, command, trim, ttl_ms).map_err(RunError::Usage)?;
            if let Some(metrics) = &metrics {
                metrics.watch_sink(sink_idx, writer.probe());
            }
            sink_redis[sink_idx] = Some(redis.len());
            redis.push(writer);
        }
        if let SinkKind::Api { method, timeout_ms, retries, breaker, env, .. } = sink.kind {
            check_env(sink.node, env)?;
            let settings = ApiSettings {
                node: sink.node,
                method,
                timeout: Duration::from_millis(timeout_ms),
                retries,
                breaker: breaker.map(|(threshold, reset_ms)| (threshold, Duration::from_millis(reset_ms))),
            };
            sink_api[sink_idx] = Some(api.len());
            let client = ApiClient::start(settings);
            if let Some(metrics) = &metrics {
                metrics.watch_sink(sink_idx, client.probe());
            }
            api.push((sink_idx, client));
        }
    }
    // State follows partitions (see `tasks`) when the only source reads Kafka and state is in
    // RocksDB; `open_tasks` sets it up once the reader is open.
    let tasks_possible = spec.sources.len() == 1
        && input_paths == [Input::Kafka]
        && matches!(durable, Some(Durable::Rocks))
        && bootstrap_topics.is_none();
    let dead_letter_topic = match &dead_letter_destination {
        Destination::Kafka(topic) => Some(topic.clone()),
        _ => None,
    };
    let kafka_live = input_paths.contains(&Input::Kafka)
        || dead_letter_topic.is_some()
        || sink_destinations.iter().zip(spec.sinks).any(|(destination, sink)| {
            *destination == Destination::Network && matches!(sink.kind, SinkKind::Kafka { .. })
        });
    let kafka_env =
        if kafka_live { KafkaEnv::from_environment().map_err(RunError::Usage)? } else { KafkaEnv::default() };
    // One producer per (brokers, compression); transactional when any of its sinks is exactly-once.
    let mut producer_keys: Vec<(Option<&'static str>, Option<&'static str>, bool)> = Vec::new();
    let mut sink_kafka = vec![None; spec.sinks.len()];
    for (sink_idx, (sink, destination)) in spec.sinks.iter().zip(&sink_destinations).enumerate() {
        if let (Destination::Network, SinkKind::Kafka { topic, brokers, compression, exactly_once, env }) =
            (destination, sink.kind)
        {
            check_env(sink.node, env)?;
            let index = match producer_keys.iter().position(|(b, c, _)| *b == brokers && *c == compression) {
                Some(index) => index,
                None => {
                    producer_keys.push((brokers, compression, false));
                    producer_keys.len() - 1
                }
            };
            producer_keys[index].2 |= exactly_once;
            sink_kafka[sink_idx] = Some((index, topic));
        }
    }
    // Dead letters go through a producer for the brokers of the first Kafka source (else sink),
    // in the transactions when there are any: those of an exactly-once sink or of the tasks.
    let dead_letter_kafka = dead_letter_topic.map(|topic| {
        let source_brokers =
            spec.sources.iter().zip(&input_paths).find_map(|(source, input)| match (input, source.kind) {
                (Input::Kafka, SourceKind::Kafka { brokers, .. }) => Some(brokers),
                _ => None,
            });
        let sink_brokers = spec.sinks.iter().zip(&sink_kafka).find_map(|(sink, live)| match (live, sink.kind) {
            (Some(_), SinkKind::Kafka { brokers, .. }) => Some(brokers),
            _ => None,
        });
        let brokers = source_brokers.or(sink_brokers).flatten();
        let transactional = tasks_possible || producer_keys.iter().any(|(_, _, transactional)| *transactional);
        let index = match producer_keys.iter().position(|(b, c, _)| *b == brokers && c.is_none()) {
            Some(index) => index,
            None => {
                producer_keys.push((brokers, None, false));
                producer_keys.len() - 1
            }
        };
        producer_keys[index].2 |= transactional;
        (index, topic)
    });
    let no_brokers = |node: &str| {
        RunError::Usage(format!(
            "`{node}` names no Kafka brokers: set `brokers` in the pipeline or PULSE_KAFKA_BROKERS in the environment"
        ))
    };
    for (sink, kafka) in spec.sinks.iter().zip(&sink_kafka) {
        if let (Some(_), SinkKind::Kafka { brokers: None, .. }, None) = (kafka, sink.kind, &kafka_env.brokers) {
            return Err(no_brokers(sink.node));
        }
    }
    for (source, input) in spec.sources.iter().zip(&input_paths) {
        if let (Input::Kafka, SourceKind::Kafka { brokers: None, .. }, None) = (input, source.kind, &kafka_env.brokers)
        {
            return Err(no_brokers(source.node));
        }
    }
    if let (Some((producer, _)), None) = (&dead_letter_kafka, &kafka_env.brokers) {
        if producer_keys[*producer].0.is_none() {
            return Err(RunError::Usage(
                "dead letters to Kafka need brokers: set PULSE_KAFKA_BROKERS or `brokers` on a Kafka node".to_string(),
            ));
        }
    }
    let instance = std::env::var("PULSE_INSTANCE_ID").unwrap_or_else(|_| "0".to_string());
    let mut kafka_writers = Vec::with_capacity(producer_keys.len());
    for (index, (brokers, compression, transactional)) in producer_keys.iter().enumerate() {
        let instance = if index == 0 { instance.clone() } else { format!("{instance}-{index}") };
        let settings = ProducerSettings {
            brokers: *brokers,
            compression: *compression,
            transactional_id: transactional.then(|| kafka::transactional_id(spec.name, &instance)),
            checkpoint_interval_ms: interval_ms,
        };
        kafka_writers.push(KafkaWriter::open(&kafka_env, &settings).map_err(RunError::Io)?);
    }
    let dead_letter_writer = match dead_letter_destination {
        Destination::Kafka(_) => usize::MAX,
        _ => writer_for(&dead_letter_destination),
    };
    let mut writers = Vec::with_capacity(destinations.len());
    let mut written = Vec::with_capacity(destinations.len());
    for destination in &destinations {
        let committed = match (destination, &resume) {
            (Destination::File(path), Some(resume)) => {
                let identity = resume::output_identity(path);
                resume.progress.output_length(&identity).map(|length| (path, length, !resume.from_savepoint))
            }
            _ => None,
        };
        let (writer, length) = match committed {
            // Resuming: cut the file back to its committed length, dropping uncommitted output.
            Some((path, length, strict)) => {
                let (file, kept) = open_resumed_output(path, length, strict).map_err(|error| {
                    RunError::Io(format!("cannot resume output `{}`: {error}", destination.label()))
                })?;
                (OutputWriter::append_to(file), kept)
            }
            None => {
                let writer = OutputWriter::open(destination)
                    .map_err(|error| RunError::Io(format!("cannot create `{}`: {error}", destination.label())))?;
                (writer, 0)
            }
        };
        writers.push(writer);
        written.push(length);
    }

    let mut time_writers = Vec::new();
    if options.emit_times {
        for (writer_idx, destination) in destinations.iter().enumerate() {
            let times = match destination {
                Destination::File(path) if writer_idx != dead_letter_writer => {
                    let mut times_path = path.clone().into_os_string();
                    times_path.push(".times");
                    let times = Destination::File(times_path.into());
                    Some(
                        OutputWriter::open(&times)
                            .map_err(|error| RunError::Io(format!("cannot create `{}`: {error}", times.label())))?,
                    )
                }
                _ => None,
            };
            time_writers.push(times);
        }
    }

    let stdin_readers = input_paths.iter().filter(|input| **input == Input::Path("-".to_string())).count();
    let shared_stdin = if stdin_readers > 1 {
        Some(SourceReader::read_all_stdin().map_err(|error| RunError::Io(format!("cannot read stdin: {error}")))?)
    } else {
        None
    };
    let mut readers = Vec::with_capacity(input_paths.len());
    let mut bootstrap_shards = None;
    for (source, input) in spec.sources.iter().zip(&input_paths) {
        let reader = match (input, source.kind) {
            (Input::Path(path), _) => {
                let mut reader = SourceReader::open(path, shared_stdin.as_ref()).map_err(|error| {
                    RunError::Io(format!("cannot open input `{path}` of source `{}`: {error}", source.node))
                })?;
                reader.set_max_line(options.max_line_bytes.unwrap_or(crate::io::DEFAULT_MAX_LINE_BYTES));
                Reader::Lines(reader)
            }
            (Input::Kafka, SourceKind::Kafka { topics, brokers, group_id, start, partitioning }) => {
                let resume_offsets: Offsets = resume
                    .iter()
                    .flat_map(|resume| &resume.progress.kafka)
                    .filter(|(node, ..)| node == source.node)
                    .map(|(_, topic, partition, next)| ((topic.clone(), *partition), *next))
                    .collect();
                let mut settings = SourceSettings {
                    pipeline: spec.name,
                    node: source.node,
                    topics,
                    brokers,
                    group_id,
                    start,
                    until_end: options.until_end,
                    statistics: metrics.is_some(),
                };
                // Bootstrap reads history from the earliest offset in a group of its own, so the
                // live group's offsets stay untouched.
                let bootstrap_group = format!("pulse-bootstrap-{}-{}", spec.name, source.node);
                let bootstrap_topics: Vec<&str> =
                    bootstrap_topics.unwrap_or_default().iter().map(String::as_str).collect();
                let mut env = kafka_env.clone();
                if options.bootstrap.is_some() {
                    if !bootstrap_topics.is_empty() {
                        settings.topics = &bootstrap_topics;
                    }
                    settings.start = KafkaStart::Earliest;
                    settings.group_id = Some(&bootstrap_group);
                    env.group_id = None;
                }
                // With state following partitions, records not keyed by the state's key are
                // re-keyed through the repartition topic first, and the pipeline reads that.
                let source_error = |error: String| RunError::Io(format!("source `{}`: {error}", source.node));
                let mut stage = None;
                let repartition_topic;
                let repartition_topics: [&str; 1];
                match partitioning {
                    KafkaPartitioning::Repartition { by } if tasks_possible => {
                        if options.until_end {
                            return Err(RunError::Usage(format!(
                                "--until-end: source `{}` reads through a repartition topic, whose end is not known \
                                 in advance; declare `keyBy` on the source if its topic is keyed by `{}`",
                                source.node,
                                by.join(".")
                            )));
                        }
                        let group = kafka::group_name(&env, &settings);
                        let (repartitioner, topic) = Repartitioner::start(&RepartitionSettings {
                            env: &env,
                            brokers,
                            topics: settings.topics,
                            group: &group,
                            by,
                            start,
                            checkpoint_interval_ms: interval_ms,
                        })
                        .map_err(source_error)?;
                        tracing::info!(
                            "kafka: source `{}` is re-keyed by `{}` through `{topic}` (see `pulsec describe`)",
                            source.node,
                            by.join(".")
                        );
                        repartition_topic = topic;
                        repartition_topics = [repartition_topic.as_str()];
                        settings.topics = &repartition_topics;
                        settings.start = KafkaStart::Earliest;
                        stage = Some(repartitioner);
                    }
                    KafkaPartitioning::Unpartitionable(reason) if tasks_possible => {
                        tracing::warn!(
                            "kafka: source `{}`: {reason}; with several instances, state of one key may be split between them",
                            source.node
                        );
                    }
                    _ => {}
                }
                let mut reader = KafkaReader::open(&env, &settings, resume_offsets).map_err(source_error)?;
                // A bootstrap of a pipeline whose state will follow partitions files each step
                // under the partition the live run will read its key from.
                if options.bootstrap.is_some() && spec.sources.len() == 1 && matches!(durable, Some(Durable::Rocks)) {
                    bootstrap_shards = match partitioning {
                        KafkaPartitioning::AsIs => Some(BootstrapShards::SourcePartition),
                        KafkaPartitioning::Repartition { by } => {
                            Some(BootstrapShards::Rekeyed { by, partitions: reader.partition_count() })
                        }
                        KafkaPartitioning::Unpartitionable(_) => None,
                    };
                }
                if let Some(stage) = stage {
                    reader.attach_repartitioner(stage);
                }
                Reader::Kafka(Box::new(reader))
            }
            (Input::Kafka, SourceKind::File { .. }) => {
                return Err(RunError::Io(format!("internal: file source `{}` resolved to Kafka", source.node)))
            }
        };
        readers.push(reader);
    }

    if let (Some(_), StateBackend::Rocks(store)) = (&bootstrap_shards, &mut state) {
        store.index_shards();
    }
    // Drop the state of removed nodes from RocksDB (memory entries are filtered when loaded).
    if let (StateBackend::Rocks(store), Some(resume)) = (&mut state, &resume) {
        if !dropped_nodes.is_empty() {
            let mut batch = WriteBatch::default();
            for node in &dropped_nodes {
                let (from, to) = node_range(node);
                batch.delete_range(from, to);
            }
            for (sequence, timer) in &resume.timers {
                if dropped_nodes.contains(&timer.node) {
                    batch.delete(timer_key(*sequence));
                }
            }
            store.commit(batch).map_err(RunError::Io)?;
        }
    }

    let mut cx = Context {
        arrival: 0,
        watermark: i64::MIN,
        step_event_time: None,
        timers: TimerQueue::new(),
        writer_files: destinations
            .iter()
            .map(|destination| match destination {
                Destination::File(path) => Some(resume::output_identity(path)),
                _ => None,
            })
            .collect(),
        writer_labels: destinations.iter().map(Destination::label).collect(),
        writers,
        time_writers,
        written,
        sink_writer,
        sink_preview,
        sink_redis,
        redis,
        sink_api,
        api,
        pipeline_name: spec.name,
        dead_letter_writer,
        dead_letter_kafka,
        sink_counts: vec![0; spec.sinks.len()],
        dead_letter_count: 0,
        dropped_count: 0,
        dropped_per_node: vec![0; spec.nodes.len()],
        records_in: vec![0; spec.nodes.len()],
        records_out: vec![0; spec.nodes.len()],
        late_per_node: vec![0; spec.nodes.len()],
        future_per_node: vec![0; spec.nodes.len()],
        future_skew: i64::MAX,
        future_limit: i64::MAX,
        acct: Accounting::new(spec, options.report.is_some()),
        backpressure: Duration::ZERO,
        dead_letter_text: String::new(),
        io_error: None,
        state,
        sink_nodes: spec.sinks.iter().map(|sink| sink.node).collect(),
        sink_kinds: spec.sinks.iter().map(|sink| sink.kind).collect(),
        sink_kafka,
        kafka: kafka_writers,
        origin: Origin::Line { source: 0, line: 0 },
        origin_outputs: 0,
        kafka_muted: false,
        shard: 0,
        task_writers: BTreeMap::new(),
        trace: crate::trace::TraceState::default(),
    };
    if let (false, Some(dir)) = (options.trace.is_empty(), &options.output) {
        let sinks: Vec<&str> = spec.sinks.iter().map(|sink| sink.node).collect();
        let tracer =
            crate::trace::Tracer::open(dir, &options.trace, spec.name, spec.nodes, &sinks, def.edges, def.trace_keys)
                .map_err(RunError::Io)?;
        cx.trace.tracer = Some(Box::new(tracer));
    }
    let mut watermarks = SourceWatermarks::new(spec.sources.iter().map(|source| source.max_out_of_orderness).collect());
    let mut positions = vec![(0u64, 0u64); spec.sources.len()];
    let mut finished = vec![false; spec.sources.len()];
    let (mut records_read, mut blank_lines, mut next_arrival) = (0, 0, 0);
    let origin = resume.as_ref().and_then(|resume| resume.progress.origin);
    let from_savepoint = resume.as_ref().is_some_and(|resume| resume.from_savepoint);
    let resumed = resume.is_some();
    if let Some(resume) = resume {
        let progress = &resume.progress;
        for (index, source) in spec.sources.iter().enumerate() {
            let Some(position) = progress.sources.iter().find(|position| position.node == source.node) else {
                continue;
            };
            if let Reader::Lines(reader) = &mut readers[index] {
                reader.skip(position.offset).map_err(|error| {
                    RunError::Io(format!(
                        "cannot resume input `{}` of source `{}`: {error}",
                        input_paths[index].label(),
                        source.node
                    ))
                })?;
            }
            positions[index] = (position.offset, position.lines);
            if position.max_event_time != i64::MIN {
                watermarks.observe(index, position.max_event_time);
            }
            // A file ends for good; a topic read `--until-end` only ended for that run, and a
            // restart reads what arrived since.
            if position.finished && input_paths[index] != Input::Kafka {
                watermarks.finish(index);
                finished[index] = true;
            }
        }
        records_read = progress.records_read;
        blank_lines = progress.blank_lines;
        next_arrival = progress.next_arrival;
        cx.arrival = progress.arrival;
        for (sink, count) in spec.sinks.iter().zip(&mut cx.sink_counts) {
            *count = progress.sink_counts.iter().find(|(node, _)| node == sink.node).map_or(0, |(_, count)| *count);
        }
        for (node, count) in spec.nodes.iter().zip(&mut cx.dropped_per_node) {
            *count = progress.dropped_per_node.iter().find(|(known, _)| known == node).map_or(0, |(_, count)| *count);
        }
        cx.dead_letter_count = progress.dead_letters;
        cx.dropped_count = progress.dropped;
        // With state following partitions, a savepoint's entries and timers of a partition's
        // shard wait as seeds until this instance owns the partition (`restore_partitions`):
        // its first changelog batch hands them to whichever instance owns it later.
        let seeding = from_savepoint && tasks_possible;
        let mut seeds = WriteBatch::default();
        let mut encoded = Vec::new();
        for (sequence, record) in resume.timers {
            if seeding && shard_of(sequence) != 0 {
                encoded.clear();
                record.encode(&mut encoded);
                seeds.put(timer_key(sequence), &encoded);
            }
            if let Some(timer) = record.into_timer(spec.nodes) {
                cx.timers.restore(sequence, timer, progress.next_timer_sequence);
            }
        }
        let shards: HashMap<usize, u32> = resume.shards.into_iter().collect();
        let mut key = Vec::new();
        for (index, (node, user_key, value)) in resume.entries.into_iter().enumerate() {
            if dropped_nodes.contains(&node) {
                continue;
            }
            match shards.get(&index) {
                Some(shard) if seeding && *shard != 0 => {
                    state_key(&mut key, &node, &user_key);
                    seeds.put(seed_key(*shard as i32 - 1, &key), value);
                }
                _ => cx.state.put(&node, &user_key, value),
            }
        }
        if let (false, StateBackend::Rocks(store)) = (seeds.is_empty(), &cx.state) {
            store.db().write(seeds).map_err(|error| RunError::Io(format!("writing the savepoint's seeds: {error}")))?;
        }
    }
    if matches!(durable, Some(Durable::Rocks)) {
        if from_savepoint {
            cx.timers.mark_all_new();
        } else {
            cx.timers.track_changes();
        }
    }
    let tasks = if tasks_possible {
        open_tasks(def, &mut readers, &mut cx, &kafka_env, &producer_keys, interval_ms, &instance)?
    } else {
        None
    };
    cx.watermark = watermarks.pipeline_watermark();
    if resumed {
        stats.restore = Some(started.elapsed());
    }
    // Kafka commits ride on checkpoints; without a state directory they still happen, with no
    // local state written.
    let durable = durable.or(kafka_live.then_some(Durable::KafkaOnly));
    let checkpointer = durable.map(|durable| Checkpointer {
        durable,
        interval: Duration::from_millis(interval_ms),
        every: options.checkpoint_every,
        last: Instant::now(),
        records_at_last: records_read,
        rounds_since_clock: 0,
        count: 0,
    });
    let source_nodes =
        spec.sources.iter().map(|source| spec.nodes.iter().position(|node| *node == source.node)).collect();
    let progress_bar =
        if bootstrap_topics.is_some() && !options.quiet { Some(bootstrap_progress(&input_paths)) } else { None };
    let mut driver = Driver {
        def,
        pipeline: &mut *pipeline,
        metrics,
        last_publish: Instant::now(),
        published_records: u64::MAX,
        rounds_since_publish: 0,
        source_nodes,
        bootstrap: bootstrap_topics.is_some(),
        keep: options.end_of_input == EndOfInput::Keep,
        progress_bar,
        checkpoint_failures: 0,
        state_size: (0, 0),
        cx: &mut cx,
        watermarks,
        readers,
        input_files: input_paths
            .iter()
            .map(|input| match input {
                Input::Path(path) if path != "-" => std::fs::File::open(path).ok(),
                _ => None,
            })
            .collect(),
        input_paths,
        records_read,
        blank_lines,
        next_arrival,
        positions,
        finished,
        checkpointer,
        stats,
        stop_after: options.stop_after,
        clock_lines: options.clock_lines,
        future_skews: future_skews(spec.sources, options.max_future_skew.as_deref())?,
        max_line_bytes: options.max_line_bytes.unwrap_or(crate::io::DEFAULT_MAX_LINE_BYTES),
        origin,
        wall_clock: wall_clock_ms(),
        tasks,
        bootstrap_shards,
    };
    // A savepoint loaded into a new state directory is committed at once, so a crash before
    // the first regular checkpoint resumes from it rather than from scratch.
    let outcome = if from_savepoint && driver.checkpointer.is_some() { driver.checkpoint() } else { Ok(()) };
    if let Some(metrics) = driver.metrics.clone() {
        driver.publish();
        metrics.set_ready(true);
    }
    let outcome = outcome.and_then(|()| driver.drive());
    driver.publish();
    if let Some(bar) = &driver.progress_bar {
        bar.finish_and_clear();
    }
    let outcome = outcome.and_then(|()| driver.settle_api(true));
    let (records_read, blank_lines) = (driver.records_read, driver.blank_lines);
    let final_watermark = driver.watermarks.pipeline_watermark();
    let outcome = outcome.and_then(|()| cx.flush_network());
    // Flush even after a failure, so everything written before it reaches its file.
    let mut flush_error = None;
    for (writer, label) in cx.writers.iter_mut().zip(&cx.writer_labels) {
        if let Err(error) = writer.flush() {
            flush_error.get_or_insert_with(|| format!("cannot write to `{label}`: {error}"));
        }
    }
    for times in cx.time_writers.iter_mut().flatten() {
        if let Err(error) = times.flush() {
            flush_error.get_or_insert_with(|| format!("cannot write event times: {error}"));
        }
    }
    if let Err(error) = cx.finish_trace() {
        flush_error.get_or_insert(error);
    }
    outcome?;
    if let Some(message) = flush_error {
        return Err(RunError::Io(message));
    }
    write_run_outputs(spec, options, &mut cx, records_read, blank_lines, final_watermark)?;
    Ok(RunSummary {
        pipeline: spec.name,
        records_read,
        blank_lines,
        written_per_sink: spec.sinks.iter().map(|sink| sink.node).zip(cx.sink_counts.iter().copied()).collect(),
        dead_letters: cx.dead_letter_count,
        dropped: cx.dropped_count,
        elapsed: started.elapsed(),
    })
}

/// With `--end-of-input keep`, `DIR/_pending.jsonl` (under `--output`); with `--report`, the
/// report. Both after the outputs are flushed.
fn write_run_outputs(
    spec: &PipelineSpec,
    options: &RunOptions,
    cx: &mut Context,
    records_read: u64,
    blank_lines: u64,
    watermark: i64,
) -> Result<(), RunError> {
    let keep = options.end_of_input == EndOfInput::Keep;
    if !keep && options.report.is_none() {
        return Ok(());
    }
    let pending = report::pending_timers(spec, cx.timers.iter(), &mut cx.state);
    if let (true, Some(dir)) = (keep, &options.output) {
        let path = dir.join(PENDING_FILE);
        report::write_pending(&path, spec, &pending)
            .map_err(|error| RunError::Io(format!("cannot write `{}`: {error}", path.display())))?;
    }
    let Some(path) = &options.report else { return Ok(()) };
    let figures = report::RunFigures {
        end_of_input: if keep { "keep" } else { "fire" },
        records_read,
        blank_lines,
        dead_letters: cx.dead_letter_count,
        watermark,
        records_in: &cx.records_in,
        records_out: &cx.records_out,
        dropped: &cx.dropped_per_node,
        late: &cx.late_per_node,
        sink_counts: &cx.sink_counts,
        accounting: &cx.acct,
        pending: &pending,
    };
    let mut text = serde_json::to_string_pretty(&report::report_json(spec, &figures))
        .map_err(|error| RunError::Io(format!("cannot encode the report: {error}")))?;
    text.push('\n');
    std::fs::write(path, text).map_err(|error| RunError::Io(format!("cannot write `{}`: {error}", path.display())))
}

struct Driver<'run> {
    def: &'static Def,
    pipeline: &'run mut dyn Steps,
    metrics: Option<Arc<Metrics>>,
    last_publish: Instant,
    /// `records_read` at the last publish.
    published_records: u64,
    rounds_since_publish: u32,
    /// Node index of every source.
    source_nodes: Vec<Option<usize>>,
    /// `bootstrap`: the end of input is not the end of the stream (no timer flush).
    bootstrap: bool,
    /// `--end-of-input keep`: likewise, pending timers stay pending.
    keep: bool,
    progress_bar: Option<ProgressBar>,
    checkpoint_failures: u64,
    /// (keys, bytes) of state as of the last checkpoint.
    state_size: (u64, u64),
    cx: &'run mut Context,
    watermarks: SourceWatermarks,
    readers: Vec<Reader>,
    input_paths: Vec<Input>,
    /// Per file input, a second handle that samples its committed bytes for checkpoints.
    input_files: Vec<Option<std::fs::File>>,
    records_read: u64,
    blank_lines: u64,
    /// The arrival the next line gets (G30).
    next_arrival: i64,
    /// Per source: (bytes consumed, lines consumed).
    positions: Vec<(u64, u64)>,
    /// Per source: its input ended.
    finished: Vec<bool>,
    checkpointer: Option<Checkpointer>,
    stats: &'run mut CheckpointStats,
    /// `--stop-after`: stop after this many records with a checkpoint, as if killed.
    stop_after: Option<u64>,
    /// `--clock-lines`: `#clock MS` input lines are clock steps.
    clock_lines: bool,
    /// `--max-line-bytes`.
    max_line_bytes: usize,
    /// The savepoint the state descends from (see `Progress::origin`).
    origin: Option<u64>,
    /// Per source: its `maxFutureSkew` in ms (`i64::MAX`: off).
    future_skews: Vec<i64>,
    /// The wall clock in ms, read at most once per round of 64 lines.
    wall_clock: i64,
    /// State following Kafka partitions (see `tasks`).
    tasks: Option<Tasks>,
    /// A bootstrap's shard of each record (see `BootstrapShards`).
    bootstrap_shards: Option<BootstrapShards>,
}

impl Driver<'_> {
    /// The duplicate filter of repartitioned records (see `repartition`): whether partition
    /// `partition` already processed a copy of the source record `upstream`; records it as
    /// processed otherwise, in the partition's shard (so the changelog carries it along).
    fn copied_before(&mut self, partition: i32, upstream: &(String, i32, i64)) -> bool {
        let (topic, origin_partition, offset) = upstream;
        self.cx.set_shard(Tasks::shard(partition));
        let key = repartition::seen_key(partition, topic, *origin_partition);
        let state = self.cx.state();
        let last =
            state.get(repartition::SEEN_NODE, &key).and_then(|bytes| bytes.try_into().ok()).map(i64::from_be_bytes);
        if last.is_some_and(|last| *offset <= last) {
            return true;
        }
        state.put(repartition::SEEN_NODE, &key, offset.to_be_bytes().to_vec());
        false
    }

    /// The identity of source `index`'s file input up to its committed position (see `resume`).
    fn input_identity(&self, index: usize) -> Option<InputIdentity> {
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
    fn progress(&self) -> Progress {
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
    fn commit_kafka(&mut self) -> Result<(), RunError> {
        if self.tasks.is_some() {
            self.commit_tasks()?;
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
            writer.commit(with).map_err(RunError::Io)?;
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

    /// Commits every owned partition's transactions (`kafka::commit_in_order`).
    fn commit_tasks(&mut self) -> Result<(), RunError> {
        let (Some(tasks), Some(Reader::Kafka(reader))) = (&mut self.tasks, self.readers.first()) else {
            return Ok(());
        };
        let group = reader.group_metadata();
        // (partition, its offsets when this producer carries them, producer)
        let mut jobs: Vec<(i32, Option<TopicPartitionList>, &mut KafkaWriter)> = Vec::new();
        for (shard, writers) in self.cx.task_writers.iter_mut() {
            let partition = *shard as i32 - 1;
            if !tasks.owned.contains(&partition) {
                continue;
            }
            for (index, writer) in writers.iter_mut().enumerate() {
                let Some(writer) = writer else { continue };
                let carries = index == tasks.changelog_writer;
                jobs.push((partition, carries.then(|| reader.offset_list(Some(partition))), writer));
            }
        }
        // A partition's changelog and offsets commit after its output: dying between the two
        // replays output (same ids) instead of losing it.
        jobs.sort_by_key(|(partition, list, _)| (*partition, list.is_some()));
        let mut commits: Vec<(&mut KafkaWriter, Option<&TopicPartitionList>)> =
            jobs.iter_mut().map(|(_, list, writer)| (&mut **writer, list.as_ref())).collect();
        kafka::commit_in_order(&mut commits, group.as_ref()).map_err(RunError::Io)?;
        for (partition, list, writer) in &jobs {
            if let Some(list) = list {
                reader.committed(list);
                let record = tasks.local.entry(*partition).or_default();
                if let Some(offset) = writer.changelog_offset(*partition) {
                    record.next = record.next.max(offset + 1);
                }
                record.timers = self.cx.timers.shard_counter(Tasks::shard(*partition));
            }
        }
        Ok(())
    }

    /// With tasks: appends each owned partition's changes since the last checkpoint (state
    /// entries, timers registered and fired) and its marker to the changelog, in the
    /// transactions `commit_kafka` commits next.
    fn write_changelog(&mut self) -> Result<(), RunError> {
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
        let positions = reader.positions().clone();
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
            };
            send(shard, kafka::MARKER_KEY, Some(&marker.to_bytes()));
        }
        outcome.map_err(RunError::Io)
    }

    /// Answers the rebalances of Kafka source `source`: a revocation after a checkpoint (so
    /// what was processed from the partitions is committed before another member gets them),
    /// an assignment after the new partitions' state was restored from the changelog.
    fn rebalance(&mut self, source: usize) -> Result<(), RunError> {
        let node = self.def.spec.sources[source].node;
        let io = |error: String| RunError::Io(format!("source `{node}`: {error}"));
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
                        }
                        tasks.owned.retain(|partition| !revoked.contains(&Tasks::shard(*partition)));
                    }
                    if let Reader::Kafka(reader) = &mut self.readers[source] {
                        reader.revoke_now().map_err(io)?;
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
                        reader.assign_now(&partitions).map_err(io)?;
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
    fn restore_partitions(
        &mut self,
        source: usize,
        partitions: &[(String, i32)],
    ) -> Result<Option<Restored>, RunError> {
        if self.tasks.is_none() {
            return Ok(None);
        }
        if matches!(&self.cx.state, StateBackend::Rocks(store) if store.overlay_len() > 0) {
            self.checkpoint()?;
        }
        let node = self.def.spec.sources[source].node;
        let io = |error: String| RunError::Io(format!("source `{node}`: {error}"));
        let (Some(tasks), Reader::Kafka(reader)) = (&mut self.tasks, &mut self.readers[source]) else {
            return Ok(None);
        };
        let mut new: Vec<i32> = partitions.iter().map(|(_, partition)| *partition).collect();
        new.sort_unstable();
        new.dedup();
        new.retain(|partition| !tasks.owned.contains(partition));
        let cx = &mut *self.cx;
        let mut seed_from = Vec::new();
        for (partition, writers) in open_task_writers(tasks, &new).map_err(io)? {
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
        let heads = reader.group_offsets(&tasks.topic, &new).map_err(io)?;
        let logs =
            kafka::read_changelog(&tasks.env, tasks.brokers, &tasks.topic, &starts, &heads, tasks.changelog_mode)
                .map_err(io)?;
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
                    _ => return Err(io(format!("unexpected record in the changelog `{}`", tasks.topic))),
                }
            }
            for (sequence, value) in timer_writes {
                match value {
                    Some(bytes) => {
                        let record = TimerRecord::decode(&mut pulse_stdlib::state::Reader::new(&bytes))
                            .map_err(|_| io(format!("corrupt timer in the changelog `{}`", tasks.topic)))?;
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
                let marker = Marker::from_bytes(bytes).map_err(io)?;
                for (topic, next) in &marker.positions {
                    reader.positions().insert((topic.clone(), log.partition), *next);
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
            store.write_restored(batch).map_err(io)?;
            for partition in seed_from {
                let shard = Tasks::shard(partition);
                let prefix = seed_prefix(partition);
                let seeds = RocksStore::scan_prefix(store.db(), &prefix).map_err(io)?;
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

    /// Commits a checkpoint at a round boundary: output files are flushed and fsynced, then the
    /// state overlay, the timer changes and the progress record (source positions, clocks,
    /// counters, committed output lengths) are written atomically.
    fn checkpoint(&mut self) -> Result<(), RunError> {
        let outcome = self.checkpoint_now();
        if outcome.is_err() {
            self.checkpoint_failures += 1;
        }
        if self.metrics.is_some() {
            self.state_size = self.cx.state.size();
            self.publish();
        }
        outcome
    }

    fn checkpoint_now(&mut self) -> Result<(), RunError> {
        if self.checkpointer.is_none() {
            return Ok(());
        }
        let started = Instant::now();
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
        // Seeds now in the changelog (committed above) leave local state with this checkpoint.
        let seeded = self.tasks.as_mut().map_or_else(Vec::new, |tasks| std::mem::take(&mut tasks.seeded));
        let shard_records: Vec<(Vec<u8>, Vec<u8>)> = self.tasks.as_ref().map_or_else(Vec::new, |tasks| {
            tasks
                .owned
                .iter()
                .filter_map(|partition| {
                    tasks.local.get(partition).map(|record| (shard_record_key(*partition), record.to_bytes()))
                })
                .collect()
        });
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
                for (key, value) in &shard_records {
                    batch.put(key, value);
                }
                for partition in &seeded {
                    batch.delete_range(seed_prefix(*partition), seed_prefix(*partition + 1));
                }
                let entries = store.overlay_len();
                store.commit(batch).map_err(RunError::Io)?;
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
                };
                write_atomically(path, &snapshot.encode()).map_err(|error| {
                    RunError::Io(format!("cannot write the checkpoint `{}`: {error}", path.display()))
                })?;
                snapshot.entries.len()
            }
            _ => return Err(RunError::Io("internal error: checkpoint target and state backend differ".to_string())),
        };
        let elapsed = started.elapsed();
        if let Some(checkpointer) = &mut self.checkpointer {
            checkpointer.count += 1;
            checkpointer.last = Instant::now();
            checkpointer.records_at_last = self.records_read;
            checkpointer.rounds_since_clock = 0;
        }
        let stats = &mut *self.stats;
        stats.checkpoints += 1;
        stats.total += elapsed;
        stats.max = stats.max.max(elapsed);
        stats.last = elapsed;
        stats.last_entries = entries_written;
        Ok(())
    }

    /// Handles finished api-sink requests: failures become dead letters, responses go to the
    /// `responses` port. With `wait`, first waits for every request in flight, until none is
    /// left (a response may lead to more requests).
    fn settle_api(&mut self, wait: bool) -> Result<(), RunError> {
        let mut done: Vec<Done> = Vec::new();
        let mut text = String::new();
        loop {
            let mut any = false;
            for api_idx in 0..self.cx.api.len() {
                let (sink, client) = &self.cx.api[api_idx];
                let sink = *sink;
                if wait {
                    client.wait_all(&mut done).map_err(RunError::Io)?;
                } else {
                    client.take_done(&mut done);
                }
                let responses = matches!(self.def.spec.sinks[sink].kind, SinkKind::Api { responses: true, .. });
                for finished in done.drain(..) {
                    any = true;
                    if finished.outcome.is_ok() {
                        self.cx.sink_counts[sink] += 1;
                    }
                    match finished.outcome {
                        Err(failure) => {
                            let event = DeadEvent::Json(std::borrow::Cow::Borrowed(&finished.event));
                            self.cx.dead_letter(&failure.reason, event);
                            if let Some(why) = failure.stops_run {
                                self.cx.take_io_error()?;
                                return Err(RunError::Io(format!(
                                    "api-sink `{}`: {why}. The request is in the dead letters; a restart with the \
                                     same --state-dir sends what the last checkpoint did not cover",
                                    self.def.spec.sinks[sink].node
                                )));
                            }
                        }
                        Ok((status, body)) if responses => {
                            text.clear();
                            text.push_str("{\"status\":");
                            text.push_str(&status.to_string());
                            text.push_str(",\"body\":");
                            write_str(&mut text, &body);
                            text.push_str(",\"request\":");
                            text.push_str(&finished.event);
                            text.push('}');
                            if let Some(node) =
                                self.def.spec.nodes.iter().position(|node| *node == self.def.spec.sinks[sink].node)
                            {
                                self.cx.create(node);
                            }
                            self.cx.trace_off();
                            self.pipeline.on_response(sink, &text, finished.event_time, self.cx);
                        }
                        Ok(_) => {}
                    }
                    self.cx.take_io_error()?;
                }
            }
            if !wait || !any {
                return Ok(());
            }
        }
    }

    fn drive(&mut self) -> Result<(), RunError> {
        let mut watermark = self.watermarks.pipeline_watermark();
        self.cx.watermark = watermark;
        let mut active_sources: Vec<usize> = (0..self.readers.len()).filter(|source| !self.finished[*source]).collect();
        // One buffer for every line of every source: the read path allocates only when a line
        // is longer than any before it.
        let mut line: Vec<u8> = Vec::with_capacity(4096);
        while !active_sources.is_empty() {
            if stop_requested() {
                // SIGTERM/SIGINT: a last checkpoint, no end-of-input flush (the input goes on).
                self.settle_api(true)?;
                return self.checkpoint();
            }
            let round_start = self.records_read;
            let mut slot = 0;
            while slot < active_sources.len() {
                let source = active_sources[slot];
                line.clear();
                if let Reader::Kafka(reader) = &self.readers[source] {
                    if reader.rebalance_pending() {
                        self.rebalance(source)?;
                    }
                }
                let (mut origin, mut muted) = (Origin::Timer { sequence: 0 }, false);
                if let Reader::Lines(reader) = &self.readers[source] {
                    // The read may block (a pipe): let `/metrics` see everything up to here first.
                    if reader.needs_refill() && self.published_records != self.records_read {
                        self.publish();
                    }
                }
                let length = match &mut self.readers[source] {
                    Reader::Lines(reader) => {
                        let length = reader.read_line(&mut line).map_err(|error| {
                            RunError::Io(format!(
                                "cannot read input `{}` of source `{}`: {error}",
                                self.input_paths[source].label(),
                                self.def.spec.sources[source].node
                            ))
                        })?;
                        origin = Origin::Line { source, line: self.positions[source].1 };
                        length
                    }
                    Reader::Kafka(reader) => {
                        let timeout = if active_sources.len() == 1 { KAFKA_IDLE_POLL } else { Duration::ZERO };
                        match reader.poll(&mut line, timeout).map_err(|error| {
                            RunError::Io(format!("source `{}`: {error}", self.def.spec.sources[source].node))
                        })? {
                            Polled::End => 0,
                            Polled::Idle => {
                                slot += 1;
                                continue;
                            }
                            Polled::Record { topic, partition, offset, upstream } => {
                                muted = reader.is_replay(&topic, partition, offset);
                                origin = Origin::Kafka { topic, partition, offset, upstream };
                                // Counts as a line; the byte offset is not used for Kafka.
                                line.len() + 1
                            }
                        }
                    }
                };
                if length == 0 {
                    active_sources.remove(slot);
                    self.finished[source] = true;
                    if self.bootstrap || self.keep {
                        // History ended, the stream did not: the watermark stays where it is.
                        continue;
                    }
                    self.watermarks.finish(source);
                    // When the last source ends, the end-of-input flush below fires everything.
                    if !active_sources.is_empty() {
                        let watermark_after = self.watermarks.pipeline_watermark();
                        self.fire_due_event_timers(watermark, watermark_after)?;
                        watermark = watermark_after;
                    }
                    continue;
                }
                slot += 1;
                if let (Some(_), Origin::Kafka { partition, upstream: Some(upstream), .. }) = (&self.tasks, &origin) {
                    if self.copied_before(*partition, upstream) {
                        // A duplicate: dropped by design, only counted (G48).
                        self.cx.dropped_count += 1;
                        continue;
                    }
                }
                self.positions[source].0 += length as u64;
                self.positions[source].1 += 1;
                if self.clock_lines && line.starts_with(CLOCK_LINE) {
                    // A clock step takes no arrival time (G30): the events around it keep theirs.
                    watermark = self.clock_step(source, &line, watermark)?;
                    continue;
                }
                let arrival = self.next_arrival;
                self.next_arrival += 1;
                self.fire_due_processing_timers(arrival)?;
                self.cx.arrival = arrival;
                self.cx.future_skew = self.future_skews[source];
                self.cx.future_limit = self.wall_clock.saturating_add(self.cx.future_skew);
                if line.last() == Some(&b'\n') {
                    line.pop();
                }
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                if line.iter().all(u8::is_ascii_whitespace) {
                    self.blank_lines += 1;
                    continue;
                }
                self.records_read += 1;
                if let Some(node) = self.source_nodes[source] {
                    self.cx.node_in(node);
                }
                if self.cx.trace.tracer.is_some() {
                    let label = self.input_paths[source].label();
                    self.cx.trace_record(&line, self.source_nodes[source], || match &origin {
                        Origin::Line { line, .. } => format!("{label}:{}", line + 1),
                        Origin::Kafka { topic, partition, offset, .. } => format!("{topic}/{partition}/{offset}"),
                        Origin::Timer { .. } => label.to_string(),
                    });
                }
                if let Reader::Lines(reader) = &mut self.readers[source] {
                    if let Some(size) = reader.take_oversized() {
                        self.dead_letter_oversized(source, size, &line);
                        self.cx.take_io_error()?;
                        continue;
                    }
                }
                match std::str::from_utf8(&line) {
                    Ok(text) => {
                        self.cx.step_event_time = None;
                        let task_partition = match (&origin, &self.tasks) {
                            (Origin::Kafka { partition, .. }, Some(_)) => Some(*partition),
                            _ => None,
                        };
                        let shard = match (task_partition, &self.bootstrap_shards, &origin) {
                            (Some(partition), ..) => Tasks::shard(partition),
                            (None, Some(shards), Origin::Kafka { partition, .. }) => shards.shard(*partition, text),
                            _ => 0,
                        };
                        self.cx.set_shard(shard);
                        // A task's records are late, and its timers due, by its own watermark.
                        let shard_before =
                            task_partition.map(|partition| self.shard_watermark(source, partition, false));
                        if let Some(before) = shard_before {
                            self.cx.watermark = before;
                        }
                        self.cx.origin = origin;
                        self.cx.origin_outputs = 0;
                        self.cx.kafka_muted = muted;
                        self.pipeline.on_record(source, text, self.cx);
                        if let Some(event_time) = self.cx.step_event_time.take() {
                            let frontier = match (&mut self.readers[source], &self.cx.origin) {
                                (Reader::Kafka(reader), Origin::Kafka { topic, partition, .. }) => {
                                    reader.observe(topic, *partition, event_time)
                                }
                                _ => Some(event_time),
                            };
                            if let Some(frontier) = frontier {
                                self.watermarks.observe(source, frontier);
                            }
                        }
                        self.cx.take_io_error()?;
                        let watermark_after = self.watermarks.pipeline_watermark();
                        match (task_partition, shard_before) {
                            (Some(partition), Some(before)) => {
                                let after = self.shard_watermark(source, partition, false);
                                self.fire_due_shard_timers(Tasks::shard(partition), before, after)?;
                            }
                            _ => self.fire_due_event_timers(watermark, watermark_after)?,
                        }
                        watermark = watermark_after;
                        if !self.cx.api.is_empty() {
                            self.settle_api(false)?;
                        }
                    }
                    Err(_) => {
                        let lossy = String::from_utf8_lossy(&line);
                        let reason = "invalid-json: invalid UTF-8";
                        match self.source_nodes[source] {
                            Some(node) => self.cx.dead_letter_at(node, reason, DeadEvent::Raw(&lossy)),
                            None => self.cx.dead_letter(reason, DeadEvent::Raw(&lossy)),
                        }
                        self.cx.take_io_error()?;
                    }
                }
            }
            // A round boundary: every source read one line and every due timer fired.
            if self.tasks.is_some()
                && (self.records_read == round_start || self.rounds_since_publish.is_multiple_of(64))
            {
                self.fire_idle_shard_timers()?;
            }
            self.rounds_since_publish += 1;
            if self.rounds_since_publish >= 64 || self.records_read == round_start {
                self.rounds_since_publish = 0;
                self.wall_clock = wall_clock_ms();
                if self.last_publish.elapsed() >= PUBLISH_EVERY {
                    self.publish();
                }
            }
            if let Some(checkpointer) = &mut self.checkpointer {
                if checkpointer.due(self.records_read, self.records_read == round_start) {
                    self.checkpoint()?;
                }
                if self.stop_after.is_some_and(|limit| self.records_read >= limit) {
                    return self.checkpoint();
                }
            }
        }
        if !self.bootstrap && !self.keep {
            self.flush_all_timers(watermark)?;
        }
        self.settle_api(true)?;
        // The final checkpoint: a restart after the end does nothing more.
        self.checkpoint()
    }

    /// A line longer than `--max-line-bytes`: a dead letter with its size and its first KiB.
    fn dead_letter_oversized(&mut self, source: usize, size: u64, line: &[u8]) {
        const PREFIX: usize = 1024;
        let reason = format!(
            "line-too-long: a line of {size} bytes is longer than --max-line-bytes {}; the event holds its first {PREFIX} bytes",
            self.max_line_bytes
        );
        let prefix = String::from_utf8_lossy(&line[..line.len().min(PREFIX)]);
        match self.source_nodes[source] {
            Some(node) => self.cx.dead_letter_at(node, &reason, DeadEvent::Raw(&prefix)),
            None => self.cx.dead_letter(&reason, DeadEvent::Raw(&prefix)),
        }
    }

    /// `#clock MS` (with `--clock-lines`): the source's watermark moves as if an event at MS
    /// had arrived (G26, so to MS − `maxOutOfOrderness`) and the timers now due fire (G27, G28).
    /// Returns the pipeline watermark after the step.
    fn clock_step(&mut self, source: usize, line: &[u8], watermark: i64) -> Result<i64, RunError> {
        let text = String::from_utf8_lossy(&line[CLOCK_LINE.len()..]);
        let time: i64 = text
            .trim()
            .parse()
            .map_err(|_| RunError::Usage(format!("bad clock line `#clock {}`: expected ms", text.trim())))?;
        self.watermarks.observe(source, time);
        let watermark_after = self.watermarks.pipeline_watermark();
        self.fire_due_event_timers(watermark, watermark_after)?;
        Ok(watermark_after)
    }

    /// Hands the current figures to `/metrics` and moves the bootstrap progress bar.
    fn publish(&mut self) {
        self.last_publish = Instant::now();
        self.published_records = self.records_read;
        if let Some(bar) = &self.progress_bar {
            let bytes: u64 = self.positions.iter().map(|(bytes, _)| bytes).sum();
            if bar.length().is_some() {
                bar.set_position(bytes);
            }
            bar.set_message(format!("{} records", self.records_read));
        }
        let Some(metrics) = &self.metrics else { return };
        let cx = &*self.cx;
        if self.checkpointer.is_none() {
            self.state_size = cx.state.size();
        }
        let mut consumer_lag = Vec::new();
        let mut source_pauses = Vec::new();
        for (source, reader) in self.def.spec.sources.iter().zip(&self.readers) {
            if let Reader::Kafka(reader) = reader {
                source_pauses.push((source.node, reader.pauses()));
                consumer_lag.extend(
                    reader.lag().into_iter().map(|(topic, partition, lag)| (source.node, topic, partition, lag)),
                );
            }
        }
        let mut backpressure = cx.backpressure;
        let sinks = self
            .def
            .spec
            .sinks
            .iter()
            .enumerate()
            .map(|(index, sink)| {
                let mut health =
                    SinkHealth { node: sink.node, written: cx.sink_counts[index], ..SinkHealth::default() };
                if let Some(redis) = cx.sink_redis[index].map(|redis| &cx.redis[redis]) {
                    health.retries = redis.reconnects;
                    backpressure += redis.blocked;
                }
                if let Some((_, client)) = cx.sink_api[index].map(|api| &cx.api[api]) {
                    (health.retries, health.breaker_state, health.breaker_opened) = client.health();
                }
                health
            })
            .collect();
        let stats = &*self.stats;
        metrics.publish(MetricsSnapshot {
            records_in: cx.records_in.clone(),
            records_out: cx.records_out.clone(),
            dropped: cx.dropped_per_node.clone(),
            late: cx.late_per_node.clone(),
            future: cx.future_per_node.clone(),
            records_read: self.records_read,
            dead_letters: cx.dead_letter_count,
            sinks,
            watermark: self.watermarks.pipeline_watermark(),
            consumer_lag,
            source_pauses,
            checkpoints: stats.checkpoints,
            checkpoint_failures: self.checkpoint_failures,
            checkpoint_last: stats.last,
            checkpoint_max: stats.max,
            checkpoint_total: stats.total,
            state_keys: self.state_size.0,
            state_bytes: self.state_size.1,
            timers_pending: cx.timers.len() as u64,
            backpressure,
        });
    }

    /// Fires event-time timers while the watermark is above them, one step each (G27, G28).
    /// Timers registered during a firing are honoured, also those already in the past (G34).
    fn fire_due_event_timers(&mut self, watermark_before: i64, watermark_after: i64) -> Result<(), RunError> {
        while let Some(timer) = self.cx.timers.pop_due_event(watermark_after) {
            self.cx.watermark = watermark_during_timer(watermark_before, watermark_after, timer.time);
            self.cx.origin = Origin::Timer { sequence: self.cx.timers.last_popped() };
            self.cx.set_shard(shard_of(self.cx.timers.last_popped()));
            self.cx.origin_outputs = 0;
            self.pipeline.on_timer(timer, self.cx);
            self.cx.take_io_error()?;
        }
        self.cx.watermark = watermark_after;
        Ok(())
    }

    /// With tasks: the watermark of a partition's shard, its own largest event time minus the
    /// source's maxOutOfOrderness. Outside its record steps (`idle_fallback`), once the partition
    /// has been idle for the idle timeout, the source's watermark when that is ahead, so a quiet
    /// partition's timers still fire.
    fn shard_watermark(&self, source: usize, partition: i32, idle_fallback: bool) -> i64 {
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
    fn fire_due_shard_timers(
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
    fn fire_idle_shard_timers(&mut self) -> Result<(), RunError> {
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

    /// Fires processing-time timers due before the line arriving at `arrival` (G35).
    fn fire_due_processing_timers(&mut self, arrival: i64) -> Result<(), RunError> {
        while let Some(timer) = self.cx.timers.pop_due_processing(arrival) {
            self.cx.arrival = self.cx.arrival.max(timer.time);
            self.cx.origin = Origin::Timer { sequence: self.cx.timers.last_popped() };
            self.cx.set_shard(shard_of(self.cx.timers.last_popped()));
            self.cx.origin_outputs = 0;
            self.pipeline.on_timer(timer, self.cx);
            self.cx.take_io_error()?;
            // A processing timer may register event timers already below the watermark.
            let shard = self.cx.shard;
            if self.tasks.is_some() && shard != 0 {
                let watermark = self.shard_watermark(0, shard as i32 - 1, true);
                self.fire_due_shard_timers(shard, watermark, watermark)?;
            } else {
                let watermark = self.cx.watermark;
                self.fire_due_event_timers(watermark, watermark)?;
            }
        }
        Ok(())
    }

    /// End of input: the watermark becomes +∞ and every pending timer of both domains fires in
    /// (time, registration) order, including timers registered meanwhile.
    fn flush_all_timers(&mut self, watermark_before: i64) -> Result<(), RunError> {
        while let Some(timer) = self.cx.timers.pop_next() {
            match timer.domain {
                TimeDomain::Event => {
                    let during = watermark_during_timer(watermark_before, i64::MAX, timer.time);
                    self.cx.watermark = self.cx.watermark.max(during);
                }
                TimeDomain::Processing => self.cx.arrival = self.cx.arrival.max(timer.time),
            }
            self.cx.origin = Origin::Timer { sequence: self.cx.timers.last_popped() };
            self.cx.set_shard(shard_of(self.cx.timers.last_popped()));
            self.cx.origin_outputs = 0;
            self.pipeline.on_timer(timer, self.cx);
            self.cx.take_io_error()?;
        }
        self.cx.watermark = i64::MAX;
        Ok(())
    }
}
