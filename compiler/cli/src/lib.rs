//! `pulsec`: the command line of the Pulse compiler. This crate does the I/O the compiler stages
//! never do: reading files, running cargo, rendering diagnostics, and running pipelines.
//!
//! Exit codes: 0 success, 1 the pipeline has errors (or `fmt --check` found changes),
//! 2 usage error, 3 the native build failed, 4 `diff` found a node whose state is incompatible;
//! `run` exits with the pipeline binary's code.

pub mod describe;
pub mod diff;
pub mod graph;
pub mod image;
pub mod k8s;
pub mod load;
pub mod native;
pub mod render;
pub mod report;
pub mod testing;
pub mod why;

use clap::{Parser, Subcommand, ValueEnum};
use load::{Form, Loaded};
use pulse_syntax::Diagnostic;
use std::ffi::OsString;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

mod pages {
    include!(concat!(env!("OUT_DIR"), "/pages.rs"));
}

pub use pages::{OPERATOR_PAGES, PAGES};

pub const EXIT_ERRORS: u8 = 1;
pub const EXIT_USAGE: u8 = 2;
pub const EXIT_BUILD: u8 = 3;
/// `pulsec diff`: a node's saved state cannot be restored into the new pipeline.
pub const EXIT_INCOMPATIBLE: u8 = 4;

#[derive(Parser)]
#[command(name = "pulsec", version, about = "The Pulse compiler: streaming journeys as native binaries")]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Let `schema "PATH"` name a JSON Schema file outside the pipeline file's directory tree
    /// (by default it must be in that directory or below it). The file must still be a regular
    /// file of at most 1 MiB.
    #[arg(long, global = true)]
    allow_schema_outside: bool,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
enum MessageFormat {
    Human,
    Json,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
enum GraphFormat {
    Dot,
    Mermaid,
    Svg,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
enum ReportFormat {
    Svg,
    Html,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
enum ConvertTo {
    Json,
    Pulse,
}

#[derive(Subcommand)]
enum Command {
    /// Type-check pipelines and report every problem.
    Check {
        files: Vec<PathBuf>,
        #[arg(long, value_enum, default_value = "human")]
        message_format: MessageFormat,
        /// Also print the estimated state size per key of every stateful node.
        #[arg(long)]
        explain_state: bool,
    },
    /// Build a pipeline into a native binary.
    Build {
        file: PathBuf,
        /// Where to put the binary (default: `./<pipeline name>`).
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// Build without optimizations (faster to compile).
        #[arg(long)]
        debug: bool,
        /// Write the generated crate's `main.rs` here instead of building.
        #[arg(long)]
        emit_rust: Option<PathBuf>,
        #[arg(long, value_enum, default_value = "human")]
        message_format: MessageFormat,
    },
    /// Build a pipeline and run it; arguments after `--` go to the binary.
    Run {
        file: PathBuf,
        /// JSON-lines input replacing the sources (`PATH`, or `NODE=PATH` per source).
        #[arg(long)]
        input: Vec<String>,
        /// Replace every sink with `DIR/<node-id>.jsonl` and dead letters with `DIR/_dead_letter.jsonl`.
        #[arg(long)]
        output: Option<PathBuf>,
        #[arg(long)]
        debug: bool,
        #[arg(last = true)]
        args: Vec<String>,
    },
    /// Convert between `.pulse` and the JSON DAG.
    ///
    /// Both forms lower to the same IR, and durations keep their written form (`5m` in `.pulse`,
    /// `"5m"` in JSON; in test events `{"$duration": "5m"}`, since a string there is data).
    /// JSON has no comments: converting `.pulse` to JSON drops every `//` comment, blank lines
    /// and the arrangement of the flows (JSON -> `.pulse` prints the nodes, then one flow per
    /// chain). `.pulse` to `.pulse` is `pulsec fmt`, which keeps comments.
    Convert {
        file: PathBuf,
        /// Target form (default: the other one).
        #[arg(long, value_enum)]
        to: Option<ConvertTo>,
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Format `.pulse` (and JSON DAG) files.
    Fmt {
        files: Vec<PathBuf>,
        /// Exit with 1 if a file is not formatted, without changing it.
        #[arg(long)]
        check: bool,
    },
    /// Describe the topology the pipeline runs as: sources, their consumer groups and
    /// partitioning (repartition topics), internal topics, keyed state and sinks.
    Describe { file: PathBuf },
    /// Print the pipeline graph.
    Graph {
        file: PathBuf,
        #[arg(long, value_enum, default_value = "dot")]
        format: GraphFormat,
        /// Write the graph to this file instead of stdout.
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Draw a run report (`<binary> run --report FILE`): the pipeline graph with the records
    /// each node took in, sent on, dropped, dead-lettered and holds pending, and the records per
    /// edge; `html` adds tables of the nodes and of each sink's records per day of event time.
    Report {
        file: PathBuf,
        #[arg(long, value_enum, default_value = "svg")]
        format: ReportFormat,
        /// Write the picture or page to this file instead of stdout.
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Report per stateful node whether an upgrade keeps, drops or cannot restore its state.
    ///
    /// `pulsec diff OLD NEW` compares two pipeline files, `pulsec diff --against SAVEPOINT NEW`
    /// a savepoint with a pipeline. Exits 4 when a node's state is incompatible.
    Diff {
        /// `OLD NEW`, or only `NEW` with `--against`.
        #[arg(required = true, num_args = 1..=2, value_name = "FILE")]
        files: Vec<PathBuf>,
        /// Compare with the state recorded in this savepoint instead of an OLD pipeline file.
        #[arg(long, value_name = "SAVEPOINT")]
        against: Option<PathBuf>,
        #[arg(long, value_enum, default_value = "human")]
        message_format: MessageFormat,
    },
    /// Build a pipeline into a reproducible OCI image (`-o image.tar` or `--oci-dir DIR`).
    Image(image::ImageArgs),
    /// Write Kubernetes manifests: a StatefulSet, its headless Service and a ConfigMap.
    K8s(k8s::K8sArgs),
    /// Run the `test` blocks of a pipeline on virtual time.
    Test {
        file: PathBuf,
        /// Run only the tests whose name contains this text.
        #[arg(long)]
        filter: Option<String>,
    },
    /// Why a key got a message, or did not: its timeline from `DIR/_trace.jsonl` (a run with
    /// `--output DIR -- --trace KEY`) and a verdict per sink.
    Why {
        /// The `--output` directory of the traced run.
        dir: PathBuf,
        /// The traced key (the value of the field the pipeline keys by).
        #[arg(long)]
        key: String,
    },
    /// Explain a diagnostic code (`pulsec explain E0205`) or an operator: its options, ports,
    /// records, state and time (`pulsec explain delay`).
    Explain { code: String },
    /// Serve the Language Server Protocol over stdin/stdout, for editors.
    Lsp {
        /// Talk over stdin/stdout, the only transport. Accepted because LSP clients pass it
        /// (vscode-languageclient does for `TransportKind.stdio`).
        #[arg(long)]
        stdio: bool,
        /// The editor's process id, which some LSP clients pass; accepted and ignored.
        #[arg(long = "clientProcessId", value_name = "PID", hide = true)]
        client_process_id: Option<u32>,
    },
}

pub fn main_with_args(args: impl IntoIterator<Item = OsString>) -> ExitCode {
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(error) => {
            let _ = error.print();
            return if error.use_stderr() { ExitCode::from(EXIT_USAGE) } else { ExitCode::SUCCESS };
        }
    };
    load::allow_schema_outside(cli.allow_schema_outside);
    match cli.command {
        Command::Check { files, message_format, explain_state } => check(&files, message_format, explain_state),
        Command::Build { file, output, debug, emit_rust, message_format } => {
            build(&file, output, debug, emit_rust, message_format)
        }
        Command::Run { file, input, output, debug, args } => run(&file, &input, output, debug, &args),
        Command::Convert { file, to, output } => convert(&file, to, output),
        Command::Fmt { files, check } => fmt(&files, check),
        Command::Graph { file, format, output } => graph_command(&file, format, output.as_deref()),
        Command::Describe { file } => describe_command(&file),
        Command::Report { file, format, output } => report_command(&file, format, output.as_deref()),
        Command::Diff { files, against, message_format } => diff::diff(&files, against.as_deref(), message_format),
        Command::Image(args) => image::command(args),
        Command::K8s(args) => k8s::command(args),
        Command::Explain { code } => explain(&code),
        Command::Why { dir, key } => match why::why(&dir, &key) {
            Ok(report) => write_output(None, &report),
            Err(message) => {
                eprintln!("error: {message}");
                ExitCode::from(EXIT_USAGE)
            }
        },
        Command::Test { file, filter } => test(&file, filter.as_deref()),
        Command::Lsp { stdio: _, client_process_id: _ } => match pulse_lsp::run_stdio() {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("error: pulsec lsp: {error:#}");
                ExitCode::from(EXIT_ERRORS)
            }
        },
    }
}

fn report(loaded: &Loaded, format: MessageFormat) {
    report_diagnostics(&loaded.sources, &loaded.diagnostics, format);
}

fn report_diagnostics(sources: &pulse_syntax::SourceMap, diagnostics: &[Diagnostic], format: MessageFormat) {
    if diagnostics.is_empty() {
        return;
    }
    let text = match format {
        MessageFormat::Human => render::human(sources, diagnostics, std::io::stderr().is_terminal()),
        MessageFormat::Json => render::json(sources, diagnostics),
    };
    match format {
        MessageFormat::Human => eprint!("{text}"),
        MessageFormat::Json => print!("{text}"),
    }
}

/// Loads and checks a file, printing diagnostics; `None` when it has errors.
fn load_checked(path: &Path, format: MessageFormat) -> Option<Loaded> {
    let loaded = match load::load_file(path) {
        Ok(loaded) => loaded,
        Err(diagnostic) => {
            report_diagnostics(&pulse_syntax::SourceMap::new(), &[*diagnostic], format);
            return None;
        }
    };
    report(&loaded, format);
    if loaded.has_errors() {
        if format == MessageFormat::Human {
            let n_errors = loaded.diagnostics.iter().filter(|diagnostic| diagnostic.is_error()).count();
            eprintln!("error: `{}` has {n_errors} error(s)", path.display());
        }
        return None;
    }
    Some(loaded)
}

fn check(files: &[PathBuf], format: MessageFormat, explain_state: bool) -> ExitCode {
    if files.is_empty() {
        eprintln!("error: give at least one pipeline file");
        return ExitCode::from(EXIT_USAGE);
    }
    let mut failed = false;
    for file in files {
        match load_checked(file, format) {
            Some(loaded) => {
                if format == MessageFormat::Human {
                    let pipeline = loaded.pipeline.as_ref().expect("a checked file has a pipeline");
                    eprintln!(
                        "ok: `{}` ({} nodes, {} edges)",
                        pipeline.name,
                        pipeline.nodes.len(),
                        pipeline.edges.len()
                    );
                }
                if explain_state {
                    let pipeline = loaded.pipeline.as_ref().expect("a checked file has a pipeline");
                    for estimate in pulse_check::state_estimates(pipeline) {
                        let size = match estimate.bytes_per_key {
                            Some(bytes) => format!("~{bytes} bytes per key"),
                            None => "unbounded per key".to_string(),
                        };
                        println!("{}: {size} ({})", estimate.node, estimate.explanation);
                    }
                }
            }
            None => failed = true,
        }
    }
    if failed {
        ExitCode::from(EXIT_ERRORS)
    } else {
        ExitCode::SUCCESS
    }
}

fn file_name(path: &Path) -> String {
    path.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_default()
}

fn build_loaded(file: &Path, debug: bool, format: MessageFormat, quiet: bool) -> Result<native::Built, ExitCode> {
    let Some(loaded) = load_checked(file, format) else { return Err(ExitCode::from(EXIT_ERRORS)) };
    let pipeline = loaded.pipeline.as_ref().expect("a checked file has a pipeline");
    let profile = if debug { native::Profile::Debug } else { native::Profile::Release };
    native::build(pipeline, file, profile, quiet, &|id| loaded.node_span(id)).map_err(|diagnostics| {
        report_diagnostics(&loaded.sources, &diagnostics, format);
        build_exit_code(&diagnostics)
    })
}

/// A pipeline whose only problem is an operator without a runtime has errors (1); anything else
/// that stops a build (an internal error, cargo failing) is a failed build (3).
pub(crate) fn build_exit_code(diagnostics: &[pulse_syntax::Diagnostic]) -> ExitCode {
    let unsupported = diagnostics.iter().all(|diagnostic| diagnostic.code == pulse_syntax::codes::E0904);
    ExitCode::from(if unsupported { EXIT_ERRORS } else { EXIT_BUILD })
}

fn build(
    file: &Path,
    output: Option<PathBuf>,
    debug: bool,
    emit_rust: Option<PathBuf>,
    format: MessageFormat,
) -> ExitCode {
    if let Some(target) = emit_rust {
        let Some(loaded) = load_checked(file, format) else { return ExitCode::from(EXIT_ERRORS) };
        let pipeline = loaded.pipeline.as_ref().expect("a checked file has a pipeline");
        return match native::generate_with_spans(pipeline, &file_name(file), &|id| loaded.node_span(id)) {
            Ok(generated) => match std::fs::write(&target, generated.main_rs) {
                Ok(()) => ExitCode::SUCCESS,
                Err(error) => {
                    eprintln!("error: cannot write `{}`: {error}", target.display());
                    ExitCode::from(EXIT_BUILD)
                }
            },
            Err(diagnostics) => {
                report_diagnostics(&loaded.sources, &diagnostics, format);
                build_exit_code(&diagnostics)
            }
        };
    }
    let built = match build_loaded(file, debug, format, false) {
        Ok(built) => built,
        Err(code) => return code,
    };
    // The build folder's binary is named after the source too (`native::crate_name`); the
    // user's copy is named after the pipeline.
    let destination = output.unwrap_or_else(|| PathBuf::from(&built.name));
    if let Err(error) = std::fs::copy(&built.binary, &destination) {
        eprintln!("error: cannot copy the binary to `{}`: {error}", destination.display());
        return ExitCode::from(EXIT_BUILD);
    }
    eprintln!("wrote {}", destination.display());
    ExitCode::SUCCESS
}

fn run(file: &Path, input: &[String], output: Option<PathBuf>, debug: bool, args: &[String]) -> ExitCode {
    let built = match build_loaded(file, debug, MessageFormat::Human, false) {
        Ok(built) => built,
        Err(code) => return code,
    };
    let mut command = std::process::Command::new(&built.binary);
    command.arg("run");
    for item in input {
        command.arg("--input").arg(item);
    }
    if let Some(dir) = output {
        command.arg("--output").arg(dir);
    }
    command.args(args);
    match command.status() {
        Ok(status) => ExitCode::from(status.code().map(|code| code as u8).unwrap_or(EXIT_BUILD)),
        Err(error) => {
            eprintln!("error: cannot run `{}`: {error}", built.binary.display());
            ExitCode::from(EXIT_BUILD)
        }
    }
}

fn convert(file: &Path, to: Option<ConvertTo>, output: Option<PathBuf>) -> ExitCode {
    let Some(loaded) = load_checked(file, MessageFormat::Human) else { return ExitCode::from(EXIT_ERRORS) };
    let document = loaded.document.as_ref().expect("a checked file has a document");
    let target = to.unwrap_or(match loaded.form {
        Form::Json => ConvertTo::Pulse,
        Form::Pulse => ConvertTo::Json,
    });
    let text = match (target, loaded.form) {
        // Within `.pulse`, converting is formatting, which keeps comments and the flows as written.
        (ConvertTo::Pulse, Form::Pulse) => match pulse_syntax::pulse::format_pulse(loaded.file, loaded.text()) {
            Ok(text) => text,
            Err(diagnostics) => {
                report_diagnostics(&loaded.sources, &diagnostics, MessageFormat::Human);
                return ExitCode::from(EXIT_ERRORS);
            }
        },
        (ConvertTo::Json, _) => pulse_syntax::json::print_json_document(document),
        (ConvertTo::Pulse, Form::Json) => pulse_syntax::pulse::print_pulse_document(document),
    };
    write_output(output.as_deref(), &text)
}

fn write_output(output: Option<&Path>, text: &str) -> ExitCode {
    match output {
        Some(path) => match std::fs::write(path, text) {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("error: cannot write `{}`: {error}", path.display());
                ExitCode::from(EXIT_ERRORS)
            }
        },
        None => {
            let mut stdout = std::io::stdout().lock();
            let _ = stdout.write_all(text.as_bytes());
            ExitCode::SUCCESS
        }
    }
}

fn fmt(files: &[PathBuf], check_only: bool) -> ExitCode {
    let mut status = ExitCode::SUCCESS;
    for path in files {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(error) => {
                eprintln!("error: cannot read `{}`: {error}", path.display());
                status = ExitCode::from(EXIT_ERRORS);
                continue;
            }
        };
        let mut sources = pulse_syntax::SourceMap::new();
        let file = sources.add(path.display().to_string(), text.clone());
        let formatted = match Form::of(path) {
            Form::Pulse => pulse_syntax::pulse::format_pulse(file, &text),
            Form::Json => {
                let (document, diagnostics) = pulse_syntax::json::parse_json_document(file, &text);
                match document {
                    Some(document) if !diagnostics.iter().any(Diagnostic::is_error) => {
                        Ok(pulse_syntax::json::print_json_document(&document))
                    }
                    _ => Err(diagnostics),
                }
            }
        };
        match formatted {
            Ok(formatted) if formatted == text => {}
            Ok(formatted) if check_only => {
                eprintln!("not formatted: {}", path.display());
                let _ = formatted;
                status = ExitCode::from(EXIT_ERRORS);
            }
            Ok(formatted) => {
                if let Err(error) = std::fs::write(path, formatted) {
                    eprintln!("error: cannot write `{}`: {error}", path.display());
                    status = ExitCode::from(EXIT_ERRORS);
                }
            }
            Err(diagnostics) => {
                report_diagnostics(&sources, &diagnostics, MessageFormat::Human);
                status = ExitCode::from(EXIT_ERRORS);
            }
        }
    }
    status
}

fn describe_command(file: &Path) -> ExitCode {
    let Some(loaded) = load_checked(file, MessageFormat::Human) else { return ExitCode::from(EXIT_ERRORS) };
    let pipeline = loaded.pipeline.as_ref().expect("a checked file has a pipeline");
    write_output(None, &describe::describe(pipeline))
}

fn graph_command(file: &Path, format: GraphFormat, output: Option<&Path>) -> ExitCode {
    let Some(loaded) = load_checked(file, MessageFormat::Human) else { return ExitCode::from(EXIT_ERRORS) };
    let pipeline = loaded.pipeline.as_ref().expect("a checked file has a pipeline");
    let text = match format {
        GraphFormat::Dot => graph::dot(pipeline),
        GraphFormat::Mermaid => graph::mermaid(pipeline),
        GraphFormat::Svg => graph::svg(pipeline),
    };
    write_output(output, &text)
}

fn report_command(file: &Path, format: ReportFormat, output: Option<&Path>) -> ExitCode {
    let parsed = std::fs::read_to_string(file)
        .map_err(|error| format!("cannot read `{}`: {error}", file.display()))
        .and_then(|text| report::parse(&text).map_err(|error| format!("`{}`: {error}", file.display())));
    let report = match parsed {
        Ok(report) => report,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let text = match format {
        ReportFormat::Svg => report::svg(&report),
        ReportFormat::Html => report::html(&report),
    };
    write_output(output, &text)
}

fn test(file: &Path, filter: Option<&str>) -> ExitCode {
    let Some(loaded) = load_checked(file, MessageFormat::Human) else { return ExitCode::from(EXIT_ERRORS) };
    let cases = match testing::test_cases(&loaded) {
        Ok(cases) => cases,
        Err(diagnostics) => {
            report_diagnostics(&loaded.sources, &diagnostics, MessageFormat::Human);
            return ExitCode::from(EXIT_ERRORS);
        }
    };
    let cases: Vec<testing::TestCase> =
        cases.into_iter().filter(|case| filter.is_none_or(|filter| case.name.contains(filter))).collect();
    if cases.is_empty() {
        eprintln!("no tests in `{}`", file.display());
        return ExitCode::SUCCESS;
    }
    let outcomes = match testing::run(&loaded, file, &cases) {
        Ok(outcomes) => outcomes,
        Err(diagnostics) => {
            report_diagnostics(&loaded.sources, &diagnostics, MessageFormat::Human);
            return ExitCode::from(EXIT_BUILD);
        }
    };
    let mut failed = 0;
    for outcome in &outcomes {
        if outcome.failure.is_empty() {
            println!("test {} ... ok", outcome.name);
        } else {
            failed += 1;
            println!("test {} ... FAILED\n{}", outcome.name, outcome.failure);
        }
    }
    println!("{} passed, {} failed", outcomes.len() - failed, failed);
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_ERRORS)
    }
}

/// The page of a code, from `docs/errors/`.
pub fn explain_page(code: &str) -> Option<&'static str> {
    let code = pulse_syntax::codes::Code::lookup(code)?;
    PAGES.iter().find(|(page_code, _)| *page_code == code.as_str()).map(|(_, page)| *page)
}

/// The reference page of an operator type (or one of its aliases), from
/// `docs/reference/operators/`.
pub fn operator_page(name: &str) -> Option<&'static str> {
    let node_type = pulse_check::node_type(name)?;
    OPERATOR_PAGES.iter().find(|(page, _)| *page == node_type.name).map(|(_, page)| *page)
}

fn explain(code: &str) -> ExitCode {
    match explain_page(code).or_else(|| operator_page(code)) {
        Some(page) => {
            print!("{page}");
            ExitCode::SUCCESS
        }
        None => {
            eprintln!(
                "error: no diagnostic code or operator `{code}`; codes look like `E0205` or `W0001`, operators like `delay`"
            );
            ExitCode::from(EXIT_USAGE)
        }
    }
}
