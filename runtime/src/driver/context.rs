//! `Context`: what generated code sees of the runtime during one step (the clocks, the state,
//! the timer service, the sinks, dead letters and the counters), and where each sink's records
//! go (`Route`).

use std::collections::BTreeMap;
use std::time::Duration;

use pulse_stdlib::json::write_str;

use super::error::RunError;
use super::{origin_source, origin_text, Origin, DEAD_LETTER_NODE};
use crate::api_sink::{idempotency_key, ApiClient, Job};
use crate::io::OutputWriter;
use crate::kafka::{self, KafkaWriter};
use crate::redis_sink::RedisWriter;
use crate::report::Accounting;
use crate::state::StateBackend;
use crate::timers::TimerQueue;
use crate::{DeadEvent, SinkKind, Timer};

/// What generated code sees of the runtime during one step: the clocks, the outputs and the
/// timer service.
pub struct Context {
    pub(super) arrival: i64,
    pub(super) watermark: i64,
    /// The largest event time the current record step reported, folded into its source's
    /// watermark after the step (G26).
    pub(super) step_event_time: Option<i64>,
    /// The current source's `maxFutureSkew` (ms) and the event time above which its records
    /// are dead letters: the wall clock plus the skew (see `FutureGuard`).
    pub(super) future_skew: i64,
    pub(super) future_limit: i64,
    /// Per node: records dead-lettered at it as too far ahead of the wall clock.
    pub(super) future_per_node: Vec<u64>,
    pub(super) timers: TimerQueue,
    pub(super) writers: Vec<OutputWriter>,
    /// Per writer, with `--emit-times`: the writer of its `.times` file (sink files only);
    /// empty otherwise.
    pub(super) time_writers: Vec<Option<OutputWriter>>,
    pub(super) writer_labels: Vec<String>,
    /// Per sink: its node id, kind and route.
    pub(super) sinks: Vec<Sink>,
    /// The clients of the live redis-sinks (see `Route::Redis`).
    pub(super) redis: Vec<RedisWriter>,
    /// (sink index, pool) of every live api-sink (see `Route::Api`).
    pub(super) api: ApiPools,
    pub(super) pipeline_name: &'static str,
    /// Node ids by node index.
    pub(super) node_ids: &'static [&'static str],
    /// The writer of the dead letters, or `usize::MAX` when they go to Kafka.
    pub(super) dead_letter_writer: usize,
    /// (producer, topic) when dead letters go to a Kafka topic.
    pub(super) dead_letter_kafka: Option<(usize, String)>,
    pub(super) sink_counts: Vec<u64>,
    pub(super) dead_letter_count: u64,
    pub(super) dropped_count: u64,
    pub(super) dropped_per_node: Vec<u64>,
    /// Per node: records that entered it, records it sent on, late records it dropped.
    pub(super) records_in: Vec<u64>,
    pub(super) records_out: Vec<u64>,
    pub(super) late_per_node: Vec<u64>,
    /// Per node: out per port, dead letters, absorbed and created records, keys (`--report`).
    pub(super) acct: Accounting,
    /// Time spent blocked on sinks (full queues, Redis down).
    pub(super) backpressure: Duration,
    /// Reused buffer for dead-letter lines.
    pub(super) dead_letter_text: String,
    /// The first write error; the driver stops after the step that hit it.
    pub(super) io_error: Option<String>,
    pub(super) state: StateBackend,
    /// Per writer: bytes in its file (committed length plus everything written since).
    pub(super) written: Vec<u64>,
    /// Per writer: the file path for files (whose lengths checkpoints commit), else `None`.
    pub(super) writer_files: Vec<Option<String>>,
    pub(super) kafka: Vec<KafkaWriter>,
    pub(super) origin: Origin,
    /// Kafka records produced in the current step so far (the output index of `pulse-id`).
    pub(super) origin_outputs: u64,
    /// The step replays input whose transactional output was already committed.
    pub(super) kafka_muted: bool,
    /// The shard of the current step (see `tasks`): 0, or a Kafka partition + 1.
    pub(super) shard: u32,
    /// Per owned shard: its producers.
    pub(super) task_writers: BTreeMap<u32, PartitionWriters>,
    /// Records of the current checkpoint held back until the previous checkpoint's records are
    /// all acknowledged (see `Held`).
    pub(super) held: Held,
    /// `--trace`: whether the step is traced, and the trace's writer.
    pub(crate) trace: crate::trace::TraceState,
}

/// While the previous checkpoint's records (the other generation of producers) are not all
/// acknowledged, the current checkpoint's are held here, in order: a record of a key never
/// lands in its partition before an earlier one of the same key.
#[derive(Default)]
pub(super) struct Held {
    /// Set by the commit thread once the previous generation is flushed; `None`: not waiting.
    pub(super) gate: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
    pub(super) records: Vec<HeldRecord>,
}

pub(super) struct HeldRecord {
    shard: u32,
    producer: usize,
    topic: String,
    key: Option<String>,
    value: String,
    headers: Vec<(&'static str, String)>,
}

/// The producers of a task: one per sink producer (`None` where it is not transactional and
/// the instance's own serves it), then the changelog's when it needs its own.
pub(super) type PartitionWriters = Vec<Option<KafkaWriter>>;

/// (sink index, pool) of every live api-sink.
pub(super) type ApiPools = Vec<(usize, ApiClient)>;

/// One sink as the context routes its records.
pub(super) struct Sink {
    pub(super) node: &'static str,
    pub(super) kind: SinkKind,
    pub(super) route: Route,
}

/// Where a sink's records go.
#[derive(Clone, Copy, Debug)]
pub(super) enum Route {
    /// Lines in a writer: a file sink, or any sink under `--output` (or discarded, in a
    /// bootstrap). A network sink under `--output` also writes its message previews to
    /// `preview` (`<node-id>.rendered.jsonl`).
    File { writer: usize, preview: Option<usize> },
    /// A live redis-sink: its client in `Context::redis`.
    Redis(usize),
    /// A live api-sink: its worker pool in `Context::api`.
    Api(usize),
    /// A live kafka-sink: its producer in `Context::kafka`, and its topic.
    Kafka { producer: usize, topic: &'static str },
    /// A live network sink while the run is set up, before its client is opened.
    Unopened,
}

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
            self.trace_emit(self.sinks[sink].node, Some(event_time), event_json);
        }
        self.sink_counts[sink] += 1;
        self.acct.sink_record(sink, Some(event_time));
        let Route::File { writer: writer_idx, .. } = self.sinks[sink].route else {
            self.io_error.get_or_insert_with(|| format!("internal: emit to live network sink {sink}"));
            return;
        };
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
        let Route::Kafka { producer, topic } = self.sinks[sink].route else {
            self.io_error.get_or_insert_with(|| format!("internal: sink {sink} is not a live kafka-sink"));
            return;
        };
        self.sink_counts[sink] += 1;
        self.acct.sink_record(sink, None);
        if self.trace.on {
            self.trace_emit(self.sinks[sink].node, None, value);
        }
        self.produce(producer, topic, key, value, self.sinks[sink].node, None);
    }

    /// The `pulse-id` of the next output of the current step, as `produce` assigns it.
    pub(super) fn next_record_id(&mut self, node: &str) -> String {
        let index = self.origin_outputs;
        self.origin_outputs += 1;
        kafka::record_id(&origin_text(&self.origin), node, index)
    }

    /// Produces one record of the current step through `producer` (the shard's own with
    /// tasks). Headers: `pulse-id` (origin, `node`, output index); for a dead letter (`reason`
    /// given) also `pulse-reason` and the source coordinates (`pulse-source-topic`,
    /// `-partition`, `-offset` for a Kafka record, `pulse-origin` always).
    pub(super) fn produce(
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
        let mut headers: Vec<(&'static str, String)> = vec![("pulse-id", id)];
        if let Some(reason) = reason {
            headers.push(("pulse-reason", reason.to_string()));
            headers.push(("pulse-origin", origin));
            if let Some((topic, partition, offset)) = source {
                headers.push(("pulse-source-topic", topic.to_string()));
                headers.push(("pulse-source-partition", partition.to_string()));
                headers.push(("pulse-source-offset", offset.to_string()));
            }
        }
        let held_back = self.held.gate.is_some()
            && matches!(self.task_writers.get(&self.shard), Some(writers) if writers.get(producer).is_some_and(Option::is_some))
            && !self.release_held();
        if held_back {
            self.held.records.push(HeldRecord {
                shard: self.shard,
                producer,
                topic: topic.to_string(),
                key: key.map(str::to_string),
                value: value.to_string(),
                headers,
            });
            return;
        }
        self.send(self.shard, producer, topic, key, value, &headers);
    }

    fn send(
        &mut self,
        shard: u32,
        producer: usize,
        topic: &str,
        key: Option<&str>,
        value: &str,
        headers: &[(&str, String)],
    ) {
        let writer = match self.task_writers.get_mut(&shard).and_then(|writers| writers.get_mut(producer)) {
            Some(Some(writer)) => writer,
            _ => &mut self.kafka[producer],
        };
        if let Err(error) = writer.send(topic, None, key, value.as_bytes(), headers) {
            self.io_error.get_or_insert_with(|| error.to_string());
        }
    }

    /// Sends the held records once the previous checkpoint's are all acknowledged; whether
    /// records go straight out now.
    pub(super) fn release_held(&mut self) -> bool {
        match &self.held.gate {
            None => return true,
            Some(gate) if !gate.load(std::sync::atomic::Ordering::Acquire) => return false,
            Some(_) => {}
        }
        self.held.gate = None;
        for record in std::mem::take(&mut self.held.records) {
            self.send(
                record.shard,
                record.producer,
                &record.topic,
                record.key.as_deref(),
                &record.value,
                &record.headers,
            );
        }
        true
    }

    /// Writes one message preview of network sink `sink` (under `--output`).
    pub(super) fn write_preview(&mut self, sink: usize, event_time: i64, line: &str) {
        let Route::File { preview: Some(writer_idx), .. } = self.sinks[sink].route else {
            return;
        };
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
        let SinkKind::Api { method, .. } = self.sinks[sink].kind else { return };
        let time = event_time.to_string();
        let key = idempotency_key(&[
            self.pipeline_name.as_bytes(),
            self.sinks[sink].node.as_bytes(),
            key_text.as_bytes(),
            time.as_bytes(),
        ]);
        let line = crate::preview::api(method, url, headers, body, &key);
        self.write_preview(sink, event_time, &line);
    }

    /// Under `--output`: the commands redis-sink `sink` would queue for this record (see `redis`).
    pub fn preview_redis(&mut self, sink: usize, event_time: i64, event_json: &str, key: &str, args: &[&str]) {
        let SinkKind::Redis { command, trim, ttl_ms, .. } = self.sinks[sink].kind else { return };
        let line = crate::preview::redis(command, trim, ttl_ms, event_json, key, args);
        self.write_preview(sink, event_time, &line);
    }

    /// Under `--output`: the record kafka-sink `sink` would produce (see `kafka`).
    pub fn preview_kafka(&mut self, sink: usize, event_time: i64, key: Option<&str>, value: &str) {
        let SinkKind::Kafka { topic, .. } = self.sinks[sink].kind else { return };
        let id = self.next_record_id(self.sinks[sink].node);
        let line = crate::preview::kafka(topic, key, value, &id);
        self.write_preview(sink, event_time, &line);
    }

    /// Whether sink `sink` writes to its real system (Redis, HTTP); false under `--output`, where
    /// generated code emits the event unrendered (G47).
    pub fn sink_live(&self, sink: usize) -> bool {
        !matches!(self.sinks[sink].route, Route::File { .. })
    }

    /// Queues the write of one event to live redis-sink `sink`: `key` and the command's
    /// arguments after it — SET, SADD, LPUSH, RPUSH `[value]`; HSET `[field, value]`, or `[]` for
    /// every top-level field of the event; ZADD `[score, member]`. Blocks while Redis is down.
    pub fn redis(&mut self, sink: usize, event_json: &str, key: &str, args: &[&str]) {
        let Route::Redis(redis_idx) = self.sinks[sink].route else {
            self.io_error.get_or_insert_with(|| format!("internal: sink {sink} is not a live redis-sink"));
            return;
        };
        self.sink_counts[sink] += 1;
        self.acct.sink_record(sink, None);
        if self.trace.on {
            self.trace_emit(self.sinks[sink].node, None, event_json);
        }
        if let Err(error) = self.redis[redis_idx].push(event_json, key, args) {
            self.io_error.get_or_insert_with(|| error.to_string());
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
        let Route::Api(api_idx) = self.sinks[sink].route else {
            self.io_error.get_or_insert_with(|| format!("internal: sink {sink} is not a live api-sink"));
            return;
        };
        // Counted as written when the API accepts it (`settle_api`), not when it is queued.
        self.acct.sink_record(sink, Some(event_time));
        if self.trace.on {
            self.trace_emit(self.sinks[sink].node, Some(event_time), event_json);
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
                self.io_error.get_or_insert_with(|| stopped.to_string());
            }
        }
    }

    /// Sends everything buffered for network sinks and waits for the acknowledgements.
    pub(super) fn flush_network(&mut self) -> Result<(), RunError> {
        for redis in &mut self.redis {
            redis.flush().map_err(|error| RunError::Io(error.to_string()))?;
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

    /// Writes a dead letter for a timer of node `node` that cannot fire, as `dead_letter_at` does
    /// for a record: the event is the timer, `{"timer":{"node":…,"time":…,"key":…}}` (the key as
    /// a string, or null).
    pub fn dead_letter_timer(&mut self, node: usize, reason: &str, timer: &Timer) {
        let mut event = String::from("{\"timer\":{\"node\":");
        write_str(&mut event, self.node_ids.get(node).copied().unwrap_or(""));
        event.push_str(",\"time\":");
        event.push_str(&timer.time.to_string());
        event.push_str(",\"key\":");
        match &timer.key {
            Some(key) => write_str(&mut event, key),
            None => event.push_str("null"),
        }
        event.push_str("}}");
        self.dead_letter_at(node, reason, DeadEvent::Json(std::borrow::Cow::Owned(event)));
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
    pub(super) fn set_shard(&mut self, shard: u32) {
        self.shard = shard;
        if let StateBackend::Rocks(store) = &mut self.state {
            store.set_shard(shard);
        }
    }

    /// Records dropped so far at each node (index = node index).
    pub fn dropped_per_node(&self) -> &[u64] {
        &self.dropped_per_node
    }

    pub(super) fn record_write_error(&mut self, writer_idx: usize, error: &std::io::Error) {
        if self.io_error.is_none() {
            self.io_error = Some(format!("cannot write to `{}`: {error}", self.writer_labels[writer_idx]));
        }
    }

    pub(super) fn take_io_error(&mut self) -> Result<(), RunError> {
        match self.io_error.take().or_else(|| self.state.take_error()) {
            Some(message) => Err(RunError::Io(message)),
            None => Ok(()),
        }
    }
}
