//! The pipeline binary's command line, and the pure decisions it leads to: which file each
//! source reads and where each sink and the dead letters are written (G6, G31, G47).

use std::path::{Path, PathBuf};

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::{SinkKind, SinkSpec, SourceKind, SourceSpec};

/// The settings read from the environment only (the flags' variables are listed with them).
const ENVIRONMENT_HELP: &str = "\
Environment (besides the variables named with the options above):
  PULSE_KAFKA_BROKERS                    brokers of every Kafka node (default: the pipeline's `brokers`)
  PULSE_KAFKA_GROUP_ID                   consumer group of every kafka-source (default: its `groupId`,
                                         else pulse-<pipeline>-<node>)
  PULSE_INSTANCE_ID                      this instance's name in transactional ids (default: 0)
  PULSE_KAFKA_CONFIG                     file of librdkafka `name=value` properties (security, SASL, TLS)
  PULSE_KAFKA_PROP_<NAME>                one librdkafka property, `_` for `.` (e.g. PULSE_KAFKA_PROP_SASL_USERNAME)
  PULSE_KAFKA_CHANGELOG_COMPACT          true: compacted changelog topics (default: false)
  PULSE_KAFKA_IDLE_TIMEOUT               a partition without records this long stops holding the watermark (10s)
  PULSE_KAFKA_PAUSE_AFTER                pause the source partitions when the pipeline is held this long (2s)
  PULSE_KAFKA_REPARTITION_COMMIT_EVERY   commit interval of the repartition stage (100ms)
  PULSE_KAFKA_REPARTITION_PURGE_EVERY    purge interval of consumed repartition records (30s)
  PULSE_KAFKA_COMMIT_PAUSE               testing: hold each checkpoint's Kafka commit this long (unset)
  PULSE_REDIS_URL                        Redis of the redis-sinks without --redis-url (redis://127.0.0.1:6379)
  PULSE_STOP_TIMEOUT                     after SIGTERM/SIGINT, exit 1 if not stopped within this (60s)
  ${NAME}                                every variable the pipeline's templates read (checked at start)";

#[derive(Parser, Debug)]
#[command(args_conflicts_with_subcommands = true, disable_version_flag = true, after_long_help = ENVIRONMENT_HELP)]
struct CommandLine {
    #[command(subcommand)]
    command: Option<RunCommand>,
    #[command(flatten)]
    run: RunOptions,
}

#[derive(Subcommand, Debug)]
enum RunCommand {
    /// Run the pipeline over its inputs (the default when no subcommand is given).
    Run(Box<RunOptions>),
    /// Run the pipeline over historical events with every sink suppressed and write the state it
    /// builds as a savepoint (cold start: `run --from-savepoint` then continues live).
    Bootstrap(BootstrapOptions),
    /// Savepoints: portable snapshots of a state directory's last checkpoint.
    Savepoint {
        #[command(subcommand)]
        action: SavepointAction,
    },
}

#[derive(Subcommand, Debug)]
enum SavepointAction {
    /// Write the last checkpoint of `--state-dir`, or with `--group` the last committed state of
    /// every partition of the consumer group, as a portable savepoint file.
    Create(SavepointOptions),
}

/// Options of `savepoint create`.
#[derive(Args, Debug, Clone, Default, PartialEq, Eq)]
pub struct SavepointOptions {
    /// The state directory of a run (running or stopped).
    #[arg(long = "state-dir", value_name = "DIR", required_unless_present = "group", conflicts_with = "group")]
    pub state_dir: Option<PathBuf>,
    /// Read the state of every partition from the consumer group's changelog in Kafka (state
    /// following partitions), whichever instance holds it: one savepoint of the whole group,
    /// running or stopped. The group is the kafka-source's (PULSE_KAFKA_GROUP_ID overrides).
    #[arg(long = "group")]
    pub group: bool,
    /// Where to write the savepoint.
    #[arg(long = "to", value_name = "PATH", required = true)]
    pub to: PathBuf,
    /// Do not print what was written.
    #[arg(long = "quiet", short = 'q')]
    pub quiet: bool,
}

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invocation {
    Run(Box<RunOptions>),
    SavepointCreate(SavepointOptions),
    Bootstrap(BootstrapOptions),
}

/// Options of `run` (also accepted without the subcommand).
#[derive(Args, Debug, Clone, Default, PartialEq, Eq)]
pub struct RunOptions {
    /// Input JSON-lines file for every source (`PATH`) or for one source (`NODE=PATH`);
    /// repeatable; `-` is stdin.
    #[arg(long = "input", value_name = "[NODE=]PATH")]
    pub inputs: Vec<String>,
    /// Write every sink to `DIR/<node-id>.jsonl` and dead letters to `DIR/_dead_letter.jsonl`.
    #[arg(long = "output", value_name = "DIR")]
    pub output: Option<PathBuf>,
    /// Write dead letters to this file instead of stderr (or of `DIR/_dead_letter.jsonl`), or
    /// with `kafka:TOPIC` to that topic, with the reason and the source coordinates as headers.
    #[arg(long = "dead-letter", value_name = "PATH|kafka:TOPIC", env = "PULSE_DEAD_LETTER")]
    pub dead_letter: Option<PathBuf>,
    /// Do not print the summary line at exit.
    #[arg(long = "quiet", short = 'q')]
    pub quiet: bool,
    /// Keep state in DIR (RocksDB unless the pipeline says `stateBackend: "memory"`) and take
    /// checkpoints there; a later run with the same DIR resumes from the last checkpoint.
    #[arg(long = "state-dir", value_name = "DIR", env = "PULSE_STATE_DIR")]
    pub state_dir: Option<PathBuf>,
    /// Serve `/metrics` (Prometheus), `/healthz` and `/readyz` on this address, e.g.
    /// `0.0.0.0:9464` (`127.0.0.1:0` picks a free port and prints it).
    #[arg(long = "metrics-addr", value_name = "ADDR", env = "PULSE_METRICS_ADDR")]
    pub metrics_addr: Option<String>,
    /// `/readyz` fails once a network sink has been unavailable this long (Redis unreachable, an
    /// api-sink's breaker open), so traffic and alerts can follow; default 30s.
    #[arg(long = "unready-after", value_name = "DURATION", env = "PULSE_UNREADY_AFTER")]
    pub unready_after: Option<String>,
    /// Logs on stderr: `plain` lines or `json` objects (time, level, pipeline, message, fields).
    #[arg(long = "log-format", value_enum, value_name = "FORMAT", env = "PULSE_LOG_FORMAT", default_value = "plain")]
    pub log_format: crate::log::LogFormat,
    /// Time between checkpoints (`500ms`, `2s`, `1m`); default: the pipeline's
    /// `checkpointInterval`, else 10s. Needs --state-dir.
    #[arg(long = "checkpoint-interval", value_name = "DURATION", requires = "state_dir")]
    pub checkpoint_interval: Option<String>,
    /// Also checkpoint after every N records read (deterministic checkpoints for tests).
    #[arg(long = "checkpoint-every", value_name = "N", requires = "state_dir")]
    pub checkpoint_every: Option<u64>,
    /// For tests: after N records, take a checkpoint and stop as if killed right after it (no
    /// end-of-input flush, no final checkpoint).
    #[arg(long = "stop-after", value_name = "N", hide = true, requires = "state_dir")]
    pub stop_after: Option<u64>,
    /// Start from this savepoint (state, timers, source positions) instead of from scratch.
    #[arg(long = "from-savepoint", value_name = "PATH")]
    pub from_savepoint: Option<PathBuf>,
    /// Stop once every Kafka source partition reached the end it had at start, and treat that as
    /// the end of input (timers flush as for a file); without it a Kafka source runs until
    /// SIGTERM/SIGINT, which stops after a last checkpoint.
    #[arg(long = "until-end")]
    pub until_end: bool,
    /// How far ahead of the wall clock an event time may be (`1d`, `12h`, `off`): an event dated
    /// further ahead is a dead letter and does not move the watermark, which it would otherwise
    /// push so far that every later event is late. Overrides every source's `maxFutureSkew`
    /// (default 1d).
    #[arg(long = "max-future-skew", value_name = "DURATION|off", env = "PULSE_MAX_FUTURE_SKEW")]
    pub max_future_skew: Option<String>,
    /// The longest input line read whole, in bytes: a longer line is a dead letter with its size
    /// and its first KiB, and only this many of its bytes are ever held in memory (default
    /// 16777216, 16 MiB).
    #[arg(long = "max-line-bytes", value_name = "BYTES", env = "PULSE_MAX_LINE_BYTES")]
    pub max_line_bytes: Option<usize>,
    /// Redis server of the redis-sinks (`redis://[user:password@]host:port[/db]`, `rediss://`
    /// for TLS); default: `PULSE_REDIS_URL`, else `redis://127.0.0.1:6379`. Ignored with --output.
    #[arg(long = "redis-url", value_name = "URL")]
    pub redis_url: Option<String>,
    /// For `pulsec test`: beside every sink file `F`, write `F.times` with the event time (ms)
    /// of each record of `F`, one per line in the same order (G33).
    #[arg(long = "emit-times", hide = true)]
    pub emit_times: bool,
    /// For `pulsec test`: an input line `#clock MS` moves the watermark as if an event at MS
    /// had arrived (G26) and fires the timers due (G27), without an event. Without this flag
    /// such a line is invalid JSON like any other, so a production input cannot move time.
    #[arg(long = "clock-lines", hide = true)]
    pub clock_lines: bool,
    /// What the end of the input means: `fire` (the end of the stream: the watermark becomes +∞
    /// and every pending timer fires, G31) or `keep` (a cut through a stream that goes on, as for
    /// a dry run over history: the watermark stays at the last event, pending timers stay
    /// unfired and are written to `DIR/_pending.jsonl` with --output, and to --state-dir).
    #[arg(long = "end-of-input", value_enum, value_name = "WHAT", default_value = "fire")]
    pub end_of_input: EndOfInput,
    /// Write a JSON run report to FILE at the end: per node records in, out per port, dropped,
    /// dead-lettered, late, pending and distinct keys; per sink records per day of event time
    /// (`pulsec report FILE --format svg|html` draws it).
    #[arg(long = "report", value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// Record every decision each node makes for the events of this key (the value of the
    /// field the pipeline keys by) in `DIR/_trace.jsonl` of `--output DIR`, for `pulsec why`;
    /// repeatable.
    #[arg(long = "trace", value_name = "KEY", requires = "output")]
    pub trace: Vec<String>,
    /// Set by `bootstrap`: sinks are suppressed, the end of input does not fire timers, and
    /// these topics replace every Kafka source's (read from the earliest offset to the end).
    #[arg(skip)]
    pub bootstrap: Option<Vec<String>>,
}

/// `--end-of-input`: whether the end of a bounded input fires the pending timers.
#[derive(clap::ValueEnum, Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum EndOfInput {
    /// The end of the stream: every pending timer fires.
    #[default]
    Fire,
    /// The stream goes on: pending timers stay pending.
    Keep,
}

/// Options of `bootstrap`.
#[derive(Args, Debug, Clone, Default, PartialEq, Eq)]
pub struct BootstrapOptions {
    /// Historical events: a JSON-lines file for every source (`PATH`) or one source
    /// (`NODE=PATH`), or `kafka:TOPIC` to read a topic from its earliest offset to its end.
    #[arg(long = "from", value_name = "[NODE=]PATH|kafka:TOPIC", required = true)]
    pub from: Vec<String>,
    /// Where to write the savepoint that `run --from-savepoint` starts from.
    #[arg(long = "to", value_name = "PATH", required = true)]
    pub to: PathBuf,
    /// Keep the working state here (default: a directory beside `--to`, removed at the end).
    #[arg(long = "state-dir", value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Write records rejected while bootstrapping here instead of stderr.
    #[arg(long = "dead-letter", value_name = "PATH")]
    pub dead_letter: Option<PathBuf>,
    /// Do nothing when `--to` exists already (for a step that runs at every start, such as a
    /// Kubernetes init container: history is read once).
    #[arg(long = "skip-if-exists")]
    pub skip_if_exists: bool,
    /// No progress bar and no summary.
    #[arg(long = "quiet", short = 'q')]
    pub quiet: bool,
}

/// Parses the command line (the first item is the program name, as in `std::env::args`).
pub fn parse_command_line(
    pipeline_name: &'static str,
    args: impl IntoIterator<Item = String>,
) -> Result<Invocation, clap::Error> {
    let command = CommandLine::command()
        .name(pipeline_name)
        .about(format!("Runs the Pulse pipeline `{pipeline_name}` over JSON-lines input."));
    let matches = command.try_get_matches_from(args)?;
    let parsed = CommandLine::from_arg_matches(&matches)?;
    Ok(match parsed.command {
        Some(RunCommand::Run(options)) => Invocation::Run(options),
        Some(RunCommand::Bootstrap(options)) => Invocation::Bootstrap(options),
        Some(RunCommand::Savepoint { action: SavepointAction::Create(options) }) => {
            Invocation::SavepointCreate(options)
        }
        None => Invocation::Run(Box::new(parsed.run)),
    })
}

/// Where a sink or the dead-letter output writes.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Destination {
    Stdout,
    Stderr,
    File(PathBuf),
    /// A live network sink (redis-sink, api-sink): written by its client, not by a writer.
    Network,
    /// Suppressed (`bootstrap`): written nowhere.
    Discard,
    /// Dead letters produced to this Kafka topic (`--dead-letter kafka:TOPIC`).
    Kafka(String),
}

impl Destination {
    fn from_path(path: &Path) -> Destination {
        if path == Path::new("-") {
            Destination::Stdout
        } else {
            Destination::File(path.to_path_buf())
        }
    }

    /// How messages name it.
    pub fn label(&self) -> String {
        match self {
            Destination::Stdout => "stdout".to_string(),
            Destination::Stderr => "stderr".to_string(),
            Destination::File(path) => path.display().to_string(),
            Destination::Network => "network".to_string(),
            Destination::Discard => "discarded".to_string(),
            Destination::Kafka(topic) => format!("kafka:{topic}"),
        }
    }
}

/// True for a string that can be a node id (G3), so `id=path` is read as `NODE=PATH`.
fn looks_like_node_id(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|byte| byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'-')
}

/// What one source reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    /// A JSON-lines file, `-` for stdin.
    Path(String),
    /// Its Kafka topics.
    Kafka,
}

impl Input {
    pub fn label(&self) -> &str {
        match self {
            Input::Path(path) => path,
            Input::Kafka => "kafka",
        }
    }
}

/// An `--input` or `--dead-letter` value that names no place to read or write.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum PlaceError {
    #[error("source `{0}` is given more than one --input")]
    InputTwice(String),
    #[error("--input {value}: unknown source `{node}`; the sources are {}", sources.join(", "))]
    UnknownSource { value: String, node: String, sources: Vec<String> },
    #[error("only one plain --input PATH may be given; use --input NODE=PATH for each source")]
    PlainInputTwice,
    #[error("--dead-letter kafka:TOPIC needs a topic name")]
    DeadLetterTopic,
}

/// Decides the input of every source, in declaration order (`-` is stdin).
///
/// `NODE=PATH` feeds one source and one plain `PATH` feeds every other source (G31). A value
/// whose part before `=` looks like a node id but names no source is a usage error, unless the
/// whole value is an existing file. Sources without an input read their configured file or
/// their Kafka topics.
pub fn resolve_inputs(
    sources: &[SourceSpec],
    inputs: &[String],
    path_exists: impl Fn(&str) -> bool,
) -> Result<Vec<Input>, PlaceError> {
    let mut plain_path: Option<&str> = None;
    let mut named_paths: Vec<Option<&str>> = vec![None; sources.len()];
    for value in inputs {
        let named = value.split_once('=').and_then(|(node, path)| {
            sources.iter().position(|source| source.node == node).map(|source_idx| (source_idx, node, path))
        });
        match named {
            Some((source_idx, node, path)) => {
                if named_paths[source_idx].is_some() {
                    return Err(PlaceError::InputTwice(node.to_string()));
                }
                named_paths[source_idx] = Some(path);
            }
            None => {
                if let Some((node, _)) = value.split_once('=') {
                    if looks_like_node_id(node) && !path_exists(value) {
                        return Err(PlaceError::UnknownSource {
                            value: value.clone(),
                            node: node.to_string(),
                            sources: sources.iter().map(|source| format!("`{}`", source.node)).collect(),
                        });
                    }
                }
                if plain_path.is_some() {
                    return Err(PlaceError::PlainInputTwice);
                }
                plain_path = Some(value);
            }
        }
    }
    Ok(sources
        .iter()
        .zip(named_paths)
        .map(|(source, named_path)| match (named_path.or(plain_path), &source.kind) {
            (Some(path), _) => Input::Path(path.to_string()),
            (None, SourceKind::File { path }) => Input::Path((*path).to_string()),
            (None, SourceKind::Kafka { .. }) => Input::Kafka,
        })
        .collect())
}

/// Decides where every sink (in declaration order) and the dead letters are written (G47).
pub fn resolve_outputs(
    sinks: &[SinkSpec],
    output_dir: Option<&Path>,
    dead_letter_path: Option<&Path>,
) -> Result<(Vec<Destination>, Destination), PlaceError> {
    let sink_destinations = sinks
        .iter()
        .map(|sink| match (output_dir, &sink.kind) {
            (Some(dir), _) => Destination::File(dir.join(format!("{}.jsonl", sink.node))),
            (None, SinkKind::Stdout) => Destination::Stdout,
            (None, SinkKind::File { path }) => Destination::from_path(Path::new(path)),
            (None, SinkKind::Kafka { .. } | SinkKind::Redis { .. } | SinkKind::Api { .. }) => Destination::Network,
        })
        .collect();
    let dead_letter = match (dead_letter_path, output_dir) {
        (Some(path), _) => match path.to_str().and_then(|text| text.strip_prefix("kafka:")) {
            Some("") => return Err(PlaceError::DeadLetterTopic),
            Some(topic) => Destination::Kafka(topic.to_string()),
            None => Destination::from_path(path),
        },
        (None, Some(dir)) => Destination::File(dir.join("_dead_letter.jsonl")),
        (None, None) => Destination::Stderr,
    };
    Ok((sink_destinations, dead_letter))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_long_help_names_every_environment_variable_the_runtime_reads() {
        let help = CommandLine::command().render_long_help().to_string();
        let source_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut names = std::collections::BTreeSet::new();
        let mut files = Vec::new();
        let mut dirs = vec![source_dir];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).expect("runtime sources") {
                let path = entry.expect("entry").path();
                if path.is_dir() {
                    dirs.push(path);
                } else {
                    files.push(path);
                }
            }
        }
        assert!(files.len() > 20, "{files:?}");
        for path in files {
            let text = std::fs::read_to_string(path).expect("source");
            for piece in text.split("\"PULSE_").skip(1) {
                let name: String = piece.chars().take_while(|ch| ch.is_ascii_uppercase() || *ch == '_').collect();
                if !name.is_empty() && piece[name.len()..].starts_with('"') {
                    names.insert(format!("PULSE_{name}"));
                }
            }
        }
        assert!(names.len() > 10, "{names:?}");
        // Instances of PULSE_KAFKA_PROP_<NAME>, and names unit tests make up.
        let listed = |name: &&String| !name.starts_with("PULSE_KAFKA_PROP_") && !name.starts_with("PULSE_TEST_");
        for name in names.iter().filter(listed) {
            assert!(help.contains(name.as_str()), "`{name}` is read but not in --help");
        }
        assert!(help.contains("PULSE_KAFKA_PROP_<NAME>"));
    }

    const SOURCES: &[SourceSpec] = &[
        SourceSpec {
            node: "clicks",
            kind: SourceKind::File { path: "clicks.jsonl" },
            max_out_of_orderness: 0,
            max_future_skew: i64::MAX,
        },
        SourceSpec {
            node: "views",
            kind: SourceKind::Kafka {
                topics: &["views"],
                brokers: None,
                group_id: None,
                start: crate::KafkaStart::GroupOffsets,
                partitioning: crate::KafkaPartitioning::AsIs,
            },
            max_out_of_orderness: 0,
            max_future_skew: i64::MAX,
        },
    ];

    fn strings(values: &[&str]) -> Vec<String> {
        values.iter().map(|value| value.to_string()).collect()
    }

    fn paths(values: &[&str]) -> Vec<Input> {
        values.iter().map(|value| Input::Path(value.to_string())).collect()
    }

    #[test]
    fn parses_run_with_and_without_the_subcommand() {
        let expected = RunOptions {
            inputs: strings(&["a.jsonl", "views=b.jsonl"]),
            output: Some(PathBuf::from("out")),
            dead_letter: None,
            quiet: true,
            ..RunOptions::default()
        };
        let expected = Invocation::Run(Box::new(expected));
        let direct = parse_command_line(
            "p",
            strings(&["p", "--input", "a.jsonl", "--input", "views=b.jsonl", "--output", "out", "--quiet"]),
        );
        assert_eq!(direct.expect("valid"), expected);
        let with_run = parse_command_line(
            "p",
            strings(&["p", "run", "--input=a.jsonl", "--input", "views=b.jsonl", "--output", "out", "-q"]),
        );
        assert_eq!(with_run.expect("valid"), expected);
        assert_eq!(parse_command_line("p", strings(&["p"])).expect("valid"), Invocation::Run(Box::default()));
        assert!(parse_command_line("p", strings(&["p", "--bogus"])).is_err());
    }

    #[test]
    fn parses_checkpoint_options_and_savepoint_create() {
        let run = parse_command_line(
            "p",
            strings(&["p", "run", "--state-dir", "st", "--checkpoint-interval", "2s", "--checkpoint-every", "100"]),
        );
        let Ok(Invocation::Run(options)) = run else { panic!("a run: {run:?}") };
        assert_eq!(options.state_dir, Some(PathBuf::from("st")));
        assert_eq!(options.checkpoint_interval.as_deref(), Some("2s"));
        assert_eq!(options.checkpoint_every, Some(100));
        assert!(parse_command_line("p", strings(&["p", "--checkpoint-every", "5"])).is_err(), "needs --state-dir");
        let savepoint =
            parse_command_line("p", strings(&["p", "savepoint", "create", "--state-dir", "st", "--to", "sp"]));
        assert_eq!(
            savepoint.expect("valid"),
            Invocation::SavepointCreate(SavepointOptions {
                state_dir: Some(PathBuf::from("st")),
                group: false,
                to: PathBuf::from("sp"),
                quiet: false
            })
        );
        assert!(parse_command_line("p", strings(&["p", "savepoint", "create", "--to", "sp"])).is_err());
        let group = parse_command_line("p", strings(&["p", "savepoint", "create", "--group", "--to", "sp"]));
        assert!(matches!(
            group,
            Ok(Invocation::SavepointCreate(SavepointOptions { group: true, state_dir: None, .. }))
        ));
        let both = strings(&["p", "savepoint", "create", "--group", "--state-dir", "st", "--to", "sp"]);
        assert!(parse_command_line("p", both).is_err(), "one source of state");
    }

    #[test]
    fn g31_one_plain_input_feeds_every_source() {
        let resolved = resolve_inputs(SOURCES, &strings(&["all.jsonl"]), |_| false).expect("valid");
        assert_eq!(resolved, paths(&["all.jsonl", "all.jsonl"]));
    }

    #[test]
    fn g31_named_inputs_feed_one_source_each() {
        let resolved = resolve_inputs(SOURCES, &strings(&["views=v.jsonl", "clicks=-"]), |_| false).expect("valid");
        assert_eq!(resolved, paths(&["-", "v.jsonl"]));
        let mixed = resolve_inputs(SOURCES, &strings(&["views=v.jsonl", "rest.jsonl"]), |_| false).expect("valid");
        assert_eq!(mixed, paths(&["rest.jsonl", "v.jsonl"]));
    }

    #[test]
    fn unknown_source_is_a_usage_error_listing_the_sources() {
        let error = resolve_inputs(SOURCES, &strings(&["clciks=c.jsonl"]), |_| false).expect_err("unknown").to_string();
        assert!(error.contains("unknown source `clciks`"), "{error}");
        assert!(error.contains("`clicks`, `views`"), "{error}");
        // An existing file whose name has an `=` is still a plain path.
        let resolved =
            resolve_inputs(SOURCES, &strings(&["data=1.jsonl"]), |path| path == "data=1.jsonl").expect("file");
        assert_eq!(resolved, paths(&["data=1.jsonl", "data=1.jsonl"]));
        // A prefix that cannot be a node id is a plain path.
        let dotted = resolve_inputs(SOURCES, &strings(&["./a=b.jsonl"]), |_| false).expect("plain");
        assert_eq!(dotted[0], Input::Path("./a=b.jsonl".to_string()));
    }

    #[test]
    fn duplicate_inputs_are_usage_errors() {
        assert!(resolve_inputs(SOURCES, &strings(&["a.jsonl", "b.jsonl"]), |_| false).is_err());
        assert!(resolve_inputs(SOURCES, &strings(&["views=a", "views=b"]), |_| false).is_err());
    }

    #[test]
    fn kafka_source_without_input_reads_kafka_and_file_source_uses_its_path() {
        let resolved = resolve_inputs(SOURCES, &[], |_| false).expect("valid");
        assert_eq!(resolved, vec![Input::Path("clicks.jsonl".to_string()), Input::Kafka]);
        let resolved = resolve_inputs(SOURCES, &strings(&["views=v.jsonl"]), |_| false).expect("valid");
        assert_eq!(resolved, paths(&["clicks.jsonl", "v.jsonl"]));
    }

    #[test]
    fn g47_outputs() {
        let sinks = [
            SinkSpec { node: "out", kind: SinkKind::Stdout },
            SinkSpec { node: "file", kind: SinkKind::File { path: "f.jsonl" } },
            SinkSpec {
                node: "kafka",
                kind: SinkKind::Kafka { topic: "out", brokers: None, compression: None, exactly_once: true, env: &[] },
            },
        ];
        let (destinations, dead_letter) = resolve_outputs(&sinks, Some(Path::new("dir")), None).expect("valid");
        assert_eq!(
            destinations,
            vec![
                Destination::File(PathBuf::from("dir/out.jsonl")),
                Destination::File(PathBuf::from("dir/file.jsonl")),
                Destination::File(PathBuf::from("dir/kafka.jsonl")),
            ]
        );
        assert_eq!(dead_letter, Destination::File(PathBuf::from("dir/_dead_letter.jsonl")));
        let (live, _) = resolve_outputs(&sinks, None, None).expect("valid");
        assert_eq!(live[2], Destination::Network);
        let (destinations, dead_letter) =
            resolve_outputs(&sinks[..2], None, Some(Path::new("dead.jsonl"))).expect("valid");
        assert_eq!(destinations, vec![Destination::Stdout, Destination::File(PathBuf::from("f.jsonl"))]);
        assert_eq!(dead_letter, Destination::File(PathBuf::from("dead.jsonl")));
        assert_eq!(resolve_outputs(&[], None, None).expect("valid").1, Destination::Stderr);
    }

    #[test]
    fn dead_letters_go_to_a_kafka_topic_when_named_so() {
        let dir = Some(Path::new("dir"));
        let (_, dead_letter) = resolve_outputs(&[], dir, Some(Path::new("kafka:pulse-dead"))).expect("valid");
        assert_eq!(dead_letter, Destination::Kafka("pulse-dead".to_string()));
        assert_eq!(dead_letter.label(), "kafka:pulse-dead");
        let error = resolve_outputs(&[], None, Some(Path::new("kafka:"))).expect_err("no topic").to_string();
        assert!(error.contains("needs a topic name"), "{error}");
    }
}
