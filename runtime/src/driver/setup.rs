//! Setting up a run: the pipeline, its state and what it resumes from, the writers and live
//! clients of its sinks, its Kafka producers and its source readers; then the step loop runs
//! (`Driver::drive`) and the outputs are flushed.

use crate::keys::{node_range, timer_key};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rocksdb::WriteBatch;

use super::checkpoint::{CheckpointStats, Checkpointer, Durable};
use super::context::Context;
use super::context::{ApiPools, Route, Sink};
use super::error::RunError;
use super::restore::{check_resumed_run, open_state};
use super::restore::{Restart, Resume};
use super::run::{write_run_outputs, Def, RunSummary};
use super::savepoint::{bootstrap_progress, BootstrapShards};
use super::step::Driver;
use super::tasks::open_tasks;
use super::{Origin, Reader, DEFAULT_CHECKPOINT_INTERVAL_MS};
use crate::api_sink::{ApiClient, ApiSettings};
use crate::checkpoint::{open_resumed_output, parse_duration_ms, plan_restore};
use crate::cli::{self, Destination, EndOfInput, Input, RunOptions};
use crate::io::{OutputWriter, SourceReader};
use crate::kafka::repartition::{RepartitionSettings, Repartitioner};
use crate::kafka::{self, KafkaEnv, KafkaReader, KafkaWriter, Offsets, ProducerSettings, SourceSettings};
use crate::metrics::Metrics;
use crate::rate::RateLimit;
use crate::redis_sink::{redis_url, RedisWriter};
use crate::report::Accounting;
use crate::resume;
use crate::state::RocksStore;
use crate::state::StateBackend;
use crate::timers::TimerQueue;
use crate::PipelineSpec;
use crate::{KafkaPartitioning, KafkaStart, SinkKind, SourceKind, SourceSpec};

/// A live network sink's templates read these environment variables: each must be set.
pub(super) fn check_env(node: &str, names: &[&str]) -> Result<(), RunError> {
    for name in names {
        if std::env::var_os(name).is_none() {
            return Err(RunError::Usage(format!(
                "environment variable `{name}` is not set; sink `{node}` reads it in a template"
            )));
        }
    }
    Ok(())
}

/// The wall clock in ms since the epoch.
pub(super) fn wall_clock_ms() -> i64 {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    i64::try_from(now.as_millis()).unwrap_or(i64::MAX)
}

/// Per source, the `maxFutureSkew` in ms (`i64::MAX`: off): `--max-future-skew` for every
/// source, else each source's own.
pub(super) fn future_skews(sources: &[SourceSpec], flag: Option<&str>) -> Result<Vec<i64>, RunError> {
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

pub(super) fn execute_with(
    def: &'static Def,
    options: &RunOptions,
    stats: &mut CheckpointStats,
    started: Instant,
    metrics: Option<Arc<Metrics>>,
) -> Result<RunSummary, RunError> {
    let spec = &def.spec;
    let bootstrap_topics = options.bootstrap.as_deref();
    let input_paths = cli::resolve_inputs(spec.sources, &options.inputs, |path| Path::new(path).is_file())?;
    let (mut sink_destinations, dead_letter_destination) =
        cli::resolve_outputs(spec.sinks, options.output.as_deref(), options.dead_letter.as_deref())?;
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
        let plan = plan_restore(&resume.progress, spec.nodes, spec.state_layouts, &nodes_with_state)?;
        for node in &plan.removed_nodes {
            tracing::warn!(node = %node, "dropping the state and timers of node `{node}`, which this pipeline no longer has");
        }
        dropped_nodes = plan.removed_nodes;
        check_resumed_run(resume, options, spec.sources, &input_paths, &sink_destinations, &dead_letter_destination)?;
    }

    // State follows partitions (see `tasks`) when the only source reads Kafka and state is in
    // RocksDB; `open_tasks` sets it up once the reader is open.
    let tasks_possible = spec.sources.len() == 1
        && input_paths == [Input::Kafka]
        && matches!(durable, Some(Durable::Rocks))
        && bootstrap_topics.is_none();
    let mut routes = Routes::plan(spec, options, &sink_destinations)?;
    let (redis, api) = open_network_sinks(spec, options, &sink_destinations, metrics.as_ref(), &mut routes.sinks)?;
    let kafka_plan = KafkaPlan::new(spec, &input_paths, &dead_letter_destination, tasks_possible, &mut routes.sinks)?;
    let instance = std::env::var("PULSE_INSTANCE_ID").unwrap_or_else(|_| "0".to_string());
    let kafka_writers = kafka_plan.open_producers(spec.name, &instance, interval_ms)?;
    let dead_letter_writer = match dead_letter_destination {
        Destination::Kafka(_) => usize::MAX,
        _ => routes.writer_for(&dead_letter_destination),
    };
    let files = open_writers(&routes.destinations, resume.as_ref(), options.emit_times, dead_letter_writer)?;
    let setup = ReaderSetup {
        spec,
        options,
        resume: resume.as_ref(),
        kafka_env: &kafka_plan.env,
        tasks_possible,
        interval_ms,
        rocks: matches!(durable, Some(Durable::Rocks)),
        statistics: metrics.is_some(),
    };
    let (mut readers, bootstrap_shards) = setup.open(&input_paths)?;
    if let (Some(_), StateBackend::Rocks(store)) = (&bootstrap_shards, &mut state) {
        store.index_shards();
    }
    // Drop the state of removed nodes from RocksDB (memory entries are filtered when loaded).
    if let (StateBackend::Rocks(store), Some(resume)) = (&mut state, &resume) {
        drop_removed_nodes(store, resume, &dropped_nodes)?;
    }

    let Routes { destinations, sinks } = routes;
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
        writers: files.writers,
        time_writers: files.time_writers,
        written: files.written,
        sinks,
        redis,
        api,
        pipeline_name: spec.name,
        node_ids: spec.nodes,
        dead_letter_writer,
        dead_letter_kafka: kafka_plan.dead_letter,
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
        kafka: kafka_writers,
        origin: Origin::Line { source: 0, line: 0 },
        origin_outputs: 0,
        kafka_muted: false,
        shard: 0,
        task_writers: BTreeMap::new(),
        held: Default::default(),
        trace: crate::trace::TraceState::default(),
    };
    if let (false, Some(dir)) = (options.trace.is_empty(), &options.output) {
        let sinks: Vec<&str> = spec.sinks.iter().map(|sink| sink.node).collect();
        let tracer =
            crate::trace::Tracer::open(dir, &options.trace, spec.name, spec.nodes, &sinks, def.edges, def.trace_keys)
                .map_err(|error| RunError::Io(error.to_string()))?;
        cx.trace.tracer = Some(Box::new(tracer));
    }
    let origin = resume.as_ref().and_then(|resume| resume.progress.origin);
    let from_savepoint = resume.as_ref().is_some_and(|resume| resume.from_savepoint);
    let resumed = resume.is_some();
    let restored = Restart::begin(spec);
    let Restart { watermarks, positions, finished, records_read, blank_lines, next_arrival } = match resume {
        Some(resume) => restored.resume(
            spec,
            &input_paths,
            resume,
            &mut readers,
            &mut cx,
            &dropped_nodes,
            from_savepoint && tasks_possible,
        )?,
        None => restored,
    };
    if matches!(durable, Some(Durable::Rocks)) {
        if from_savepoint {
            cx.timers.mark_all_new();
        } else {
            cx.timers.track_changes();
        }
    }
    let tasks = if tasks_possible {
        open_tasks(def, &mut readers, &mut cx, &kafka_plan.env, &kafka_plan.producers, interval_ms, &instance)?
    } else {
        None
    };
    cx.watermark = watermarks.pipeline_watermark();
    if resumed {
        stats.restore = Some(started.elapsed());
    }
    // Kafka commits ride on checkpoints; without a state directory they still happen, with no
    // local state written.
    let durable = durable.or(kafka_plan.live.then_some(Durable::KafkaOnly));
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
        in_flight: None,
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
        flush_error.get_or_insert(error.to_string());
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

/// The writers of a run's outputs and where each sink goes. One writer per distinct
/// destination: sinks sharing a file share its writer.
struct Routes {
    destinations: Vec<Destination>,
    sinks: Vec<Sink>,
}

impl Routes {
    /// Creates the `--output` directory and gives every sink that writes lines (a file sink, or
    /// any sink under `--output`) its writer, and a network sink under `--output` the writer of
    /// its previews (outputs like the sink files: resumed to their committed length after a
    /// crash). Live network sinks get their route when their client is opened.
    fn plan(spec: &PipelineSpec, options: &RunOptions, sink_destinations: &[Destination]) -> Result<Routes, RunError> {
        if let Some(dir) = &options.output {
            std::fs::create_dir_all(dir).map_err(|error| {
                RunError::Io(format!("cannot create output directory `{}`: {error}", dir.display()))
            })?;
        }
        let mut routes = Routes { destinations: Vec::new(), sinks: Vec::with_capacity(spec.sinks.len()) };
        let writers: Vec<Option<usize>> = sink_destinations
            .iter()
            .map(|destination| (*destination != Destination::Network).then(|| routes.writer_for(destination)))
            .collect();
        for ((sink, destination), writer) in spec.sinks.iter().zip(sink_destinations).zip(writers) {
            let preview = match (sink.kind, destination, &options.output) {
                (
                    SinkKind::Api { .. } | SinkKind::Redis { .. } | SinkKind::Kafka { .. },
                    Destination::File(_),
                    Some(dir),
                ) => Some(routes.writer_for(&Destination::File(dir.join(format!("{}.rendered.jsonl", sink.node))))),
                _ => None,
            };
            // A live network sink's route is set when its client opens.
            let route = match writer {
                Some(writer) => Route::File { writer, preview },
                None => Route::Unopened,
            };
            routes.sinks.push(Sink { node: sink.node, kind: sink.kind, route });
        }
        Ok(routes)
    }

    /// The writer of `destination`, added when it is new.
    fn writer_for(&mut self, destination: &Destination) -> usize {
        match self.destinations.iter().position(|known| known == destination) {
            Some(index) => index,
            None => {
                self.destinations.push(destination.clone());
                self.destinations.len() - 1
            }
        }
    }
}

/// Opens the client of every live redis-sink and api-sink and routes the sink to it.
fn open_network_sinks(
    spec: &PipelineSpec,
    options: &RunOptions,
    sink_destinations: &[Destination],
    metrics: Option<&Arc<Metrics>>,
    sinks: &mut [Sink],
) -> Result<(Vec<RedisWriter>, ApiPools), RunError> {
    let mut redis = Vec::new();
    let mut api = Vec::new();
    for (sink_idx, (sink, destination)) in spec.sinks.iter().zip(sink_destinations).enumerate() {
        if *destination != Destination::Network {
            continue;
        }
        if let SinkKind::Redis { command, trim, ttl_ms, rate_limit, env } = sink.kind {
            check_env(sink.node, env)?;
            let url = redis_url(options.redis_url.as_deref());
            let mut writer = RedisWriter::open(sink.node, &url, command, trim, ttl_ms)
                .map_err(|error| RunError::Usage(error.to_string()))?;
            if let Some((count, per_ms)) = rate_limit {
                writer.limit_rate(RateLimit::new(count, per_ms));
            }
            if let Some(metrics) = metrics {
                metrics.watch_sink(sink_idx, writer.probe());
            }
            sinks[sink_idx].route = Route::Redis(redis.len());
            redis.push(writer);
        }
        if let SinkKind::Api { method, timeout_ms, retries, breaker, concurrency, rate_limit, env, .. } = sink.kind {
            check_env(sink.node, env)?;
            let settings = ApiSettings {
                node: sink.node,
                method,
                timeout: Duration::from_millis(timeout_ms),
                retries,
                breaker: breaker.map(|(threshold, reset_ms)| (threshold, Duration::from_millis(reset_ms))),
                concurrency: concurrency as usize,
                rate_limit: rate_limit.map(|(count, per_ms)| Arc::new(RateLimit::new(count, per_ms))),
            };
            sinks[sink_idx].route = Route::Api(api.len());
            let client = ApiClient::start(settings);
            if let Some(metrics) = metrics {
                metrics.watch_sink(sink_idx, client.probe());
            }
            api.push((sink_idx, client));
        }
    }
    Ok((redis, api))
}

/// A run's Kafka producers: one per (brokers, compression), transactional when any of its
/// sinks is exactly-once.
struct KafkaPlan {
    /// Whether the run talks to Kafka at all.
    live: bool,
    env: KafkaEnv,
    /// (brokers, compression, transactional) of each producer.
    producers: Vec<(Option<&'static str>, Option<&'static str>, bool)>,
    /// (producer, topic) when dead letters go to a Kafka topic.
    dead_letter: Option<(usize, String)>,
}

impl KafkaPlan {
    /// Plans the producers, routes every live kafka-sink to its producer, and checks that every
    /// Kafka node has brokers.
    fn new(
        spec: &PipelineSpec,
        input_paths: &[Input],
        dead_letter_destination: &Destination,
        tasks_possible: bool,
        sinks: &mut [Sink],
    ) -> Result<KafkaPlan, RunError> {
        let dead_letter_topic = match dead_letter_destination {
            Destination::Kafka(topic) => Some(topic.clone()),
            _ => None,
        };
        let live_sink =
            |sink: &Sink| matches!(sink.route, Route::Unopened) && matches!(sink.kind, SinkKind::Kafka { .. });
        let live = input_paths.contains(&Input::Kafka) || dead_letter_topic.is_some() || sinks.iter().any(live_sink);
        let env = if live { KafkaEnv::from_environment()? } else { KafkaEnv::default() };
        let mut producers: Vec<(Option<&'static str>, Option<&'static str>, bool)> = Vec::new();
        let mut producer_for = |brokers: Option<&'static str>, compression: Option<&'static str>| match producers
            .iter()
            .position(|(b, c, _)| *b == brokers && *c == compression)
        {
            Some(index) => index,
            None => {
                producers.push((brokers, compression, false));
                producers.len() - 1
            }
        };
        let mut transactional = Vec::new();
        for sink in sinks.iter_mut() {
            if let (Route::Unopened, SinkKind::Kafka { topic, brokers, compression, exactly_once, env }) =
                (sink.route, sink.kind)
            {
                check_env(sink.node, env)?;
                let producer = producer_for(brokers, compression);
                transactional.push((producer, exactly_once));
                sink.route = Route::Kafka { producer, topic };
            }
        }
        for (producer, exactly_once) in transactional {
            producers[producer].2 |= exactly_once;
        }
        // Dead letters go through a producer for the brokers of the first Kafka source (else
        // sink), in the transactions when there are any: those of an exactly-once sink or of
        // the tasks.
        let dead_letter = dead_letter_topic.map(|topic| {
            let source_brokers =
                spec.sources.iter().zip(input_paths).find_map(|(source, input)| match (input, source.kind) {
                    (Input::Kafka, SourceKind::Kafka { brokers, .. }) => Some(brokers),
                    _ => None,
                });
            let sink_brokers = sinks.iter().find_map(|sink| match (sink.route, sink.kind) {
                (Route::Kafka { .. }, SinkKind::Kafka { brokers, .. }) => Some(brokers),
                _ => None,
            });
            let brokers = source_brokers.or(sink_brokers).flatten();
            let transactional = tasks_possible || producers.iter().any(|(_, _, transactional)| *transactional);
            let index = match producers.iter().position(|(b, c, _)| *b == brokers && c.is_none()) {
                Some(index) => index,
                None => {
                    producers.push((brokers, None, false));
                    producers.len() - 1
                }
            };
            producers[index].2 |= transactional;
            (index, topic)
        });
        let no_brokers = |node: &str| {
            RunError::Usage(format!(
                "`{node}` names no Kafka brokers: set `brokers` in the pipeline or PULSE_KAFKA_BROKERS in the environment"
            ))
        };
        for sink in sinks.iter() {
            if let (Route::Kafka { .. }, SinkKind::Kafka { brokers: None, .. }, None) =
                (sink.route, sink.kind, &env.brokers)
            {
                return Err(no_brokers(sink.node));
            }
        }
        for (source, input) in spec.sources.iter().zip(input_paths) {
            if let (Input::Kafka, SourceKind::Kafka { brokers: None, .. }, None) = (input, source.kind, &env.brokers) {
                return Err(no_brokers(source.node));
            }
        }
        if let (Some((producer, _)), None) = (&dead_letter, &env.brokers) {
            if producers[*producer].0.is_none() {
                return Err(RunError::Usage(
                    "dead letters to Kafka need brokers: set PULSE_KAFKA_BROKERS or `brokers` on a Kafka node"
                        .to_string(),
                ));
            }
        }
        Ok(KafkaPlan { live, env, producers, dead_letter })
    }

    /// Opens the producers; the first one's transactional id is the instance's, the others'
    /// add their index.
    fn open_producers(&self, pipeline: &str, instance: &str, interval_ms: u64) -> Result<Vec<KafkaWriter>, RunError> {
        let mut writers = Vec::with_capacity(self.producers.len());
        for (index, (brokers, compression, transactional)) in self.producers.iter().enumerate() {
            let instance = if index == 0 { instance.to_string() } else { format!("{instance}-{index}") };
            let settings = ProducerSettings {
                brokers: *brokers,
                compression: *compression,
                transactional_id: transactional.then(|| kafka::transactional_id(pipeline, &instance)),
                checkpoint_interval_ms: interval_ms,
            };
            writers.push(KafkaWriter::open(&self.env, &settings)?);
        }
        Ok(writers)
    }
}

/// The opened output writers, with the bytes each file holds.
struct Files {
    writers: Vec<OutputWriter>,
    written: Vec<u64>,
    /// Per writer, with `--emit-times`: the writer of its `.times` file.
    time_writers: Vec<Option<OutputWriter>>,
}

/// Opens every output; a resumed file is cut back to its committed length, dropping
/// uncommitted output.
fn open_writers(
    destinations: &[Destination],
    resume: Option<&Resume>,
    emit_times: bool,
    dead_letter_writer: usize,
) -> Result<Files, RunError> {
    let mut writers = Vec::with_capacity(destinations.len());
    let mut written = Vec::with_capacity(destinations.len());
    for destination in destinations {
        let committed = match (destination, resume) {
            (Destination::File(path), Some(resume)) => {
                let identity = resume::output_identity(path);
                resume.progress.output_length(&identity).map(|length| (path, length, !resume.from_savepoint))
            }
            _ => None,
        };
        let (writer, length) = match committed {
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
    if emit_times {
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
    Ok(Files { writers, written, time_writers })
}

/// What opening the source readers needs to know.
struct ReaderSetup<'a> {
    spec: &'a PipelineSpec,
    options: &'a RunOptions,
    resume: Option<&'a Resume>,
    kafka_env: &'a KafkaEnv,
    tasks_possible: bool,
    interval_ms: u64,
    /// State is in RocksDB.
    rocks: bool,
    /// Kafka clients report statistics (for `/metrics`).
    statistics: bool,
}

impl ReaderSetup<'_> {
    /// Opens a reader per source: files and stdin as lines, topics as Kafka readers (through
    /// the repartition stage where state follows partitions and the topic is not keyed by the
    /// state's key); and for a bootstrap whose state will follow partitions, how each step is
    /// filed under a shard.
    fn open(&self, input_paths: &[Input]) -> Result<(Vec<Reader>, Option<BootstrapShards>), RunError> {
        let ReaderSetup { spec, options, resume, kafka_env, tasks_possible, interval_ms, rocks, statistics } = *self;
        let bootstrap_topics = options.bootstrap.as_deref();
        let stdin_readers = input_paths.iter().filter(|input| **input == Input::Path("-".to_string())).count();
        let shared_stdin = if stdin_readers > 1 {
            Some(SourceReader::read_all_stdin().map_err(|error| RunError::Io(format!("cannot read stdin: {error}")))?)
        } else {
            None
        };
        let mut readers = Vec::with_capacity(input_paths.len());
        let mut bootstrap_shards = None;
        for (source, input) in spec.sources.iter().zip(input_paths) {
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
                        statistics,
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
                    let source_error =
                        |error: crate::kafka::Error| RunError::Io(format!("source `{}`: {error}", source.node));
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
                            // Positions on the source topics: a savepoint a bootstrap wrote.
                            let seed: Offsets = resume_offsets
                                .iter()
                                .filter(|((topic, _), _)| settings.topics.contains(&topic.as_str()))
                                .map(|(key, next)| (key.clone(), *next))
                                .collect();
                            let (repartitioner, topic) = Repartitioner::start(&RepartitionSettings {
                                env: &env,
                                brokers,
                                topics: settings.topics,
                                group: &group,
                                by,
                                start,
                                checkpoint_interval_ms: interval_ms,
                                seed,
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
                    if options.bootstrap.is_some() && spec.sources.len() == 1 && rocks {
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
        Ok((readers, bootstrap_shards))
    }
}

/// Deletes the state and timers of nodes the pipeline no longer has from RocksDB.
fn drop_removed_nodes(store: &mut RocksStore, resume: &Resume, dropped_nodes: &[String]) -> Result<(), RunError> {
    if dropped_nodes.is_empty() {
        return Ok(());
    }
    let mut batch = WriteBatch::default();
    for node in dropped_nodes {
        let (from, to) = node_range(node);
        batch.delete_range(from, to);
    }
    for (sequence, timer) in &resume.timers {
        if dropped_nodes.contains(&timer.node) {
            batch.delete(timer_key(*sequence));
        }
    }
    Ok(store.commit(batch)?)
}
