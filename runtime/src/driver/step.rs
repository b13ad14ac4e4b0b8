//! The step loop: `Driver` reads the sources round-robin, steps the pipeline, moves the
//! watermark, fires timers, settles api-sink answers, checkpoints and publishes metrics.

use super::context::Route;
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::ProgressBar;
use pulse_stdlib::json::write_str;

use super::checkpoint::{CheckpointStats, Checkpointer};
use super::context::Context;
use super::error::RunError;
use super::run::{Def, Steps};
use super::savepoint::BootstrapShards;
use super::setup::wall_clock_ms;
use super::{Origin, Reader, CLOCK_LINE, KAFKA_IDLE_POLL};
use crate::api_sink::Done;
use crate::cli::Input;
use crate::kafka::tasks::Tasks;
use crate::kafka::Polled;
use crate::metrics::{Metrics, SinkHealth, Snapshot as MetricsSnapshot, PUBLISH_EVERY};
use crate::timers::{shard_of, watermark_during_timer, SourceWatermarks};
use crate::{DeadEvent, SinkKind, TimeDomain};

pub(super) struct Driver<'run> {
    pub(super) def: &'static Def,
    pub(super) pipeline: &'run mut dyn Steps,
    pub(super) metrics: Option<Arc<Metrics>>,
    pub(super) last_publish: Instant,
    /// `records_read` at the last publish.
    pub(super) published_records: u64,
    pub(super) rounds_since_publish: u32,
    /// Node index of every source.
    pub(super) source_nodes: Vec<Option<usize>>,
    /// `bootstrap`: the end of input is not the end of the stream (no timer flush).
    pub(super) bootstrap: bool,
    /// `--end-of-input keep`: likewise, pending timers stay pending.
    pub(super) keep: bool,
    pub(super) progress_bar: Option<ProgressBar>,
    pub(super) checkpoint_failures: u64,
    /// (keys, bytes) of state as of the last checkpoint.
    pub(super) state_size: (u64, u64),
    pub(super) cx: &'run mut Context,
    pub(super) watermarks: SourceWatermarks,
    pub(super) readers: Vec<Reader>,
    pub(super) input_paths: Vec<Input>,
    /// Per file input, a second handle that samples its committed bytes for checkpoints.
    pub(super) input_files: Vec<Option<std::fs::File>>,
    pub(super) records_read: u64,
    pub(super) blank_lines: u64,
    /// The arrival the next line gets (G30).
    pub(super) next_arrival: i64,
    /// Per source: (bytes consumed, lines consumed).
    pub(super) positions: Vec<(u64, u64)>,
    /// Per source: its input ended.
    pub(super) finished: Vec<bool>,
    pub(super) checkpointer: Option<Checkpointer>,
    pub(super) stats: &'run mut CheckpointStats,
    /// `--stop-after`: stop after this many records with a checkpoint, as if killed.
    pub(super) stop_after: Option<u64>,
    /// `--clock-lines`: `#clock MS` input lines are clock steps.
    pub(super) clock_lines: bool,
    /// `--max-line-bytes`.
    pub(super) max_line_bytes: usize,
    /// The savepoint the state descends from (see `Progress::origin`).
    pub(super) origin: Option<u64>,
    /// Per source: its `maxFutureSkew` in ms (`i64::MAX`: off).
    pub(super) future_skews: Vec<i64>,
    /// The wall clock in ms, read at most once per round of 64 lines.
    pub(super) wall_clock: i64,
    /// State following Kafka partitions (see `tasks`).
    pub(super) tasks: Option<Tasks>,
    /// The checkpoint whose Kafka transactions are committing (tasks only).
    pub(super) in_flight: Option<super::checkpoint::InFlight>,
    /// A bootstrap's shard of each record (see `BootstrapShards`).
    pub(super) bootstrap_shards: Option<BootstrapShards>,
}

impl Driver<'_> {
    /// Handles finished api-sink requests: failures become dead letters, responses go to the
    /// `responses` port. With `wait`, first waits for every request in flight, until none is
    /// left (a response may lead to more requests).
    pub(super) fn settle_api(&mut self, wait: bool) -> Result<(), RunError> {
        let mut done: Vec<Done> = Vec::new();
        let mut text = String::new();
        loop {
            let mut any = false;
            for api_idx in 0..self.cx.api.len() {
                let (sink, client) = &self.cx.api[api_idx];
                let sink = *sink;
                if wait {
                    client.wait_all(&mut done).map_err(|stopped| RunError::Io(stopped.to_string()))?;
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

    pub(super) fn drive(&mut self) -> Result<(), RunError> {
        let mut watermark = self.watermarks.pipeline_watermark();
        self.cx.watermark = watermark;
        let mut active_sources: Vec<usize> = (0..self.readers.len()).filter(|source| !self.finished[*source]).collect();
        // One buffer for every line of every source: the read path allocates only when a line
        // is longer than any before it.
        let mut line: Vec<u8> = Vec::with_capacity(4096);
        while !active_sources.is_empty() {
            if crate::stop::requested() {
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
                    self.checkpoint_in_flight()?;
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
    pub(super) fn dead_letter_oversized(&mut self, source: usize, size: u64, line: &[u8]) {
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
    pub(super) fn clock_step(&mut self, source: usize, line: &[u8], watermark: i64) -> Result<i64, RunError> {
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
    pub(super) fn publish(&mut self) {
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
                match cx.sinks[index].route {
                    Route::Redis(redis) => {
                        health.retries = cx.redis[redis].reconnects;
                        backpressure += cx.redis[redis].blocked;
                    }
                    Route::Api(api) => {
                        (health.retries, health.breaker_state, health.breaker_opened) = cx.api[api].1.health();
                    }
                    Route::File { .. } | Route::Kafka { .. } | Route::Unopened => {}
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
    pub(super) fn fire_due_event_timers(
        &mut self,
        watermark_before: i64,
        watermark_after: i64,
    ) -> Result<(), RunError> {
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

    /// Fires processing-time timers due before the line arriving at `arrival` (G35).
    pub(super) fn fire_due_processing_timers(&mut self, arrival: i64) -> Result<(), RunError> {
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
    pub(super) fn flush_all_timers(&mut self, watermark_before: i64) -> Result<(), RunError> {
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
