//! The driver loop: reads the sources round-robin (G31) on the logical arrival clock (G30),
//! hands each line to the pipeline, moves the watermark (G26) and fires timers (G27, G28, G35).
//! It is generic over the pipeline type, so every call into generated code is static.

use std::fmt;
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use pulse_stdlib::json::write_str;

use crate::cli::{self, Destination, RunOptions};
use crate::io::{OutputWriter, SourceReader};
use crate::timers::{watermark_during_timer, SourceWatermarks, TimerQueue};
use crate::{DeadEvent, Pipeline, TimeDomain, Timer};

/// What generated code sees of the runtime during one step: the clocks, the outputs and the
/// timer service.
pub struct Context {
    arrival: i64,
    watermark: i64,
    /// The largest event time the current record step reported, folded into its source's
    /// watermark after the step (G26).
    step_event_time: Option<i64>,
    timers: TimerQueue,
    writers: Vec<OutputWriter>,
    writer_labels: Vec<String>,
    sink_writer: Vec<usize>,
    dead_letter_writer: usize,
    sink_counts: Vec<u64>,
    dead_letter_count: u64,
    dropped_count: u64,
    dropped_per_node: Vec<u64>,
    /// Reused buffer for dead-letter lines.
    dead_letter_text: String,
    /// The first write error; the driver stops after the step that hit it.
    io_error: Option<String>,
    state: crate::state::StateBackend,
}

impl Context {
    /// The keyed state of every operator.
    pub fn state(&mut self) -> &mut crate::state::StateBackend {
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

    /// Reports the event time of the current source record; called once the time is known and
    /// the record was not dead-lettered at the source.
    pub fn observe_event_time(&mut self, event_time: i64) {
        self.step_event_time = Some(self.step_event_time.map_or(event_time, |seen| seen.max(event_time)));
    }

    /// Writes one event (its JSON text) to sink `sink`.
    pub fn emit(&mut self, sink: usize, event_json: &str) {
        let writer_idx = self.sink_writer[sink];
        self.sink_counts[sink] += 1;
        if let Err(error) = self.writers[writer_idx].write_line(event_json.as_bytes()) {
            self.record_write_error(writer_idx, &error);
        }
    }

    /// Writes a dead letter `{"reason": ..., "event": ...}` (G48).
    pub fn dead_letter(&mut self, reason: &str, event: DeadEvent<'_>) {
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
        let writer_idx = self.dead_letter_writer;
        if let Err(error) = self.writers[writer_idx].write_line(self.dead_letter_text.as_bytes()) {
            self.record_write_error(writer_idx, &error);
        }
    }

    /// Counts a record dropped by design at node `node` (filtered, unconnected output, ...).
    pub fn drop_record(&mut self, node: usize) {
        self.dropped_count += 1;
        if let Some(count) = self.dropped_per_node.get_mut(node) {
            *count += 1;
        }
    }

    /// Registers a timer; timers fire by (time, registration order) (G28).
    pub fn schedule(&mut self, timer: Timer) {
        self.timers.schedule(timer);
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
        match self.io_error.take() {
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
            "{}: {} records read, {} written ({}), {} dead letters, {} dropped, {} blank lines skipped, {:.3}s",
            self.pipeline,
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
pub fn run<P: Pipeline>() -> ExitCode {
    run_with_args::<P>(std::env::args())
}

/// Runs the pipeline with the given command line; the first item is the program name.
pub fn run_with_args<P: Pipeline>(args: impl IntoIterator<Item = String>) -> ExitCode {
    let options = match cli::parse_command_line(P::SPEC.name, args) {
        Ok(options) => options,
        Err(error) => {
            // Help goes to stdout with code 0; real usage errors to stderr with code 2.
            let _ = error.print();
            return ExitCode::from(u8::try_from(error.exit_code()).unwrap_or(2));
        }
    };
    match execute::<P>(&options) {
        Ok(summary) => {
            if !options.quiet {
                eprintln!("{summary}");
            }
            ExitCode::SUCCESS
        }
        Err(RunError::Usage(message)) => {
            eprintln!("{}: error: {message}", P::SPEC.name);
            ExitCode::from(2)
        }
        Err(RunError::Io(message)) => {
            eprintln!("{}: error: {message}", P::SPEC.name);
            ExitCode::from(1)
        }
    }
}

fn execute<P: Pipeline>(options: &RunOptions) -> Result<RunSummary, RunError> {
    let started = Instant::now();
    let spec = &P::SPEC;
    let input_paths = cli::resolve_inputs(spec.sources, &options.inputs, |path| Path::new(path).is_file())
        .map_err(RunError::Usage)?;
    let (sink_destinations, dead_letter_destination) =
        cli::resolve_outputs(spec.sinks, options.output.as_deref(), options.dead_letter.as_deref())
            .map_err(RunError::Usage)?;
    let mut pipeline = P::new().map_err(|message| RunError::Usage(format!("cannot set up the pipeline: {message}")))?;

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
    let sink_writer: Vec<usize> = sink_destinations.iter().map(&mut writer_for).collect();
    let dead_letter_writer = writer_for(&dead_letter_destination);
    let mut writers = Vec::with_capacity(destinations.len());
    for destination in &destinations {
        let writer = OutputWriter::open(destination)
            .map_err(|error| RunError::Io(format!("cannot create `{}`: {error}", destination.label())))?;
        writers.push(writer);
    }

    let stdin_readers = input_paths.iter().filter(|path| path.as_str() == "-").count();
    let shared_stdin = if stdin_readers > 1 {
        Some(SourceReader::read_all_stdin().map_err(|error| RunError::Io(format!("cannot read stdin: {error}")))?)
    } else {
        None
    };
    let mut readers = Vec::with_capacity(input_paths.len());
    for (source, path) in spec.sources.iter().zip(&input_paths) {
        let reader = SourceReader::open(path, shared_stdin.as_ref()).map_err(|error| {
            RunError::Io(format!("cannot open input `{path}` of source `{}`: {error}", source.node))
        })?;
        readers.push(reader);
    }

    let mut cx = Context {
        arrival: 0,
        watermark: i64::MIN,
        step_event_time: None,
        timers: TimerQueue::new(),
        writer_labels: destinations.iter().map(Destination::label).collect(),
        writers,
        sink_writer,
        dead_letter_writer,
        sink_counts: vec![0; spec.sinks.len()],
        dead_letter_count: 0,
        dropped_count: 0,
        dropped_per_node: vec![0; spec.nodes.len()],
        dead_letter_text: String::new(),
        io_error: None,
        state: crate::state::StateBackend::memory(),
    };
    let watermarks = SourceWatermarks::new(spec.sources.iter().map(|source| source.max_out_of_orderness).collect());
    let mut driver = Driver {
        pipeline: &mut pipeline,
        cx: &mut cx,
        watermarks,
        readers,
        input_paths,
        records_read: 0,
        blank_lines: 0,
    };
    let outcome = driver.drive();
    let (records_read, blank_lines) = (driver.records_read, driver.blank_lines);
    // Flush even after a failure, so everything written before it reaches its file.
    let mut flush_error = None;
    for (writer, label) in cx.writers.iter_mut().zip(&cx.writer_labels) {
        if let Err(error) = writer.flush() {
            flush_error.get_or_insert_with(|| format!("cannot write to `{label}`: {error}"));
        }
    }
    outcome?;
    if let Some(message) = flush_error {
        return Err(RunError::Io(message));
    }
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

struct Driver<'run, P> {
    pipeline: &'run mut P,
    cx: &'run mut Context,
    watermarks: SourceWatermarks,
    readers: Vec<SourceReader>,
    input_paths: Vec<String>,
    records_read: u64,
    blank_lines: u64,
}

impl<P: Pipeline> Driver<'_, P> {
    fn drive(&mut self) -> Result<(), RunError> {
        let mut watermark = self.watermarks.pipeline_watermark();
        self.cx.watermark = watermark;
        let mut active_sources: Vec<usize> = (0..self.readers.len()).collect();
        let mut next_arrival: i64 = 0;
        // One buffer for every line of every source: the read path allocates only when a line
        // is longer than any before it.
        let mut line: Vec<u8> = Vec::with_capacity(4096);
        while !active_sources.is_empty() {
            let mut slot = 0;
            while slot < active_sources.len() {
                let source = active_sources[slot];
                line.clear();
                let length = self.readers[source].read_line(&mut line).map_err(|error| {
                    RunError::Io(format!(
                        "cannot read input `{}` of source `{}`: {error}",
                        self.input_paths[source],
                        P::SPEC.sources[source].node
                    ))
                })?;
                if length == 0 {
                    active_sources.remove(slot);
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
                let arrival = next_arrival;
                next_arrival += 1;
                self.fire_due_processing_timers(arrival)?;
                self.cx.arrival = arrival;
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
                match std::str::from_utf8(&line) {
                    Ok(text) => {
                        self.cx.step_event_time = None;
                        self.pipeline.on_record(source, text, self.cx);
                        if let Some(event_time) = self.cx.step_event_time.take() {
                            self.watermarks.observe(source, event_time);
                        }
                        self.cx.take_io_error()?;
                        let watermark_after = self.watermarks.pipeline_watermark();
                        self.fire_due_event_timers(watermark, watermark_after)?;
                        watermark = watermark_after;
                    }
                    Err(_) => {
                        let lossy = String::from_utf8_lossy(&line);
                        self.cx.dead_letter("invalid-json: invalid UTF-8", DeadEvent::Raw(&lossy));
                        self.cx.take_io_error()?;
                    }
                }
            }
        }
        self.flush_all_timers(watermark)
    }

    /// Fires event-time timers while the watermark is above them, one step each (G27, G28).
    /// Timers registered during a firing are honoured, also those already in the past (G34).
    fn fire_due_event_timers(&mut self, watermark_before: i64, watermark_after: i64) -> Result<(), RunError> {
        while let Some(timer) = self.cx.timers.pop_due_event(watermark_after) {
            self.cx.watermark = watermark_during_timer(watermark_before, watermark_after, timer.time);
            self.pipeline.on_timer(timer, self.cx);
            self.cx.take_io_error()?;
        }
        self.cx.watermark = watermark_after;
        Ok(())
    }

    /// Fires processing-time timers due before the line arriving at `arrival` (G35).
    fn fire_due_processing_timers(&mut self, arrival: i64) -> Result<(), RunError> {
        while let Some(timer) = self.cx.timers.pop_due_processing(arrival) {
            self.cx.arrival = self.cx.arrival.max(timer.time);
            self.pipeline.on_timer(timer, self.cx);
            self.cx.take_io_error()?;
            // A processing timer may register event timers already below the watermark.
            let watermark = self.cx.watermark;
            self.fire_due_event_timers(watermark, watermark)?;
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
            self.pipeline.on_timer(timer, self.cx);
            self.cx.take_io_error()?;
        }
        self.cx.watermark = i64::MAX;
        Ok(())
    }
}
