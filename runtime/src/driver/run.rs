//! The entry points generated `main` calls, the description of a pipeline the driver works
//! from (`Def`, `Steps`), signals and the stop watchdog, and the summary and exit code of a run.

use std::fmt;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::checkpoint::CheckpointStats;
use super::context::Context;
use super::error::RunError;
use super::savepoint::{bootstrap, create_savepoint};
use super::setup::execute_with;
use super::PENDING_FILE;
use crate::checkpoint::parse_duration_ms;
use crate::cli::{self, EndOfInput, Invocation, RunOptions};
use crate::log;
use crate::metrics::{self, Metrics};
use crate::report::{self};
use crate::{Pipeline, PipelineSpec, Timer};

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
pub(super) trait Steps {
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
pub(super) struct Def {
    pub(super) spec: PipelineSpec,
    pub(super) edges: &'static [(u32, &'static str, u32)],
    pub(super) trace_keys: &'static [&'static [&'static str]],
    pub(super) new: fn() -> Result<Box<dyn Steps>, crate::SetupError>,
}

pub(super) fn run_def(def: &'static Def, args: Vec<String>) -> ExitCode {
    let invocation = cli::parse_command_line(def.spec.name, args);
    let log_format = match &invocation {
        Ok(Invocation::Run(options)) => options.log_format,
        _ => log::format_from_env(),
    };
    log::init(def.spec.name, log_format);
    let _run = tracing::info_span!("run", pipeline = def.spec.name).entered();
    let options = match invocation {
        Ok(Invocation::Run(options)) => options,
        Ok(Invocation::SavepointCreate(options)) => return exit_with(create_savepoint(def, &options)),
        Ok(Invocation::Bootstrap(options)) => return exit_with(bootstrap(def, &options)),
        Err(error) => {
            // Help goes to stdout with code 0; real usage errors to stderr with code 2.
            let _ = error.print();
            return ExitCode::from(u8::try_from(error.exit_code()).unwrap_or(2));
        }
    };
    let flag = crate::stop::flag();
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
pub(super) const DEFAULT_STOP_GRACE: Duration = Duration::from_secs(60);

pub(super) fn stop_grace() -> Duration {
    std::env::var("PULSE_STOP_TIMEOUT")
        .ok()
        .and_then(|text| parse_duration_ms(&text).ok())
        .map_or(DEFAULT_STOP_GRACE, Duration::from_millis)
}

/// Ends the process with exit code 1 when a requested stop has not finished within `grace` (a
/// broker or Redis that went away can block a commit or a client's close for good). The last
/// completed checkpoint stands; a restart resumes from it.
pub(super) fn start_stop_watchdog(flag: std::sync::Arc<std::sync::atomic::AtomicBool>, grace: Duration) {
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

pub(super) fn exit_with(outcome: Result<(), RunError>) -> ExitCode {
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            let exit_code = error.exit_code();
            tracing::error!(exit_code, "{error}");
            ExitCode::from(exit_code)
        }
    }
}

pub(super) fn execute(
    def: &'static Def,
    options: &RunOptions,
    stats: &mut CheckpointStats,
) -> Result<RunSummary, RunError> {
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
            let bound =
                metrics::serve(address, Arc::clone(&metrics)).map_err(|error| RunError::Usage(error.to_string()))?;
            if !options.quiet {
                tracing::info!(address = %bound, "serving /metrics, /healthz and /readyz on http://{bound}");
            }
            Some(metrics)
        }
        None => None,
    };
    let outcome = execute_with(def, options, stats, started, metrics.clone());
    if let (Some(metrics), Err(error)) = (&metrics, &outcome) {
        metrics.set_failed(&error.to_string());
    }
    outcome
}

/// With `--end-of-input keep`, `DIR/_pending.jsonl` (under `--output`); with `--report`, the
/// report. Both after the outputs are flushed.
pub(super) fn write_run_outputs(
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
