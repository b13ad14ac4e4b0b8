//! Logs of a pipeline binary: `tracing` events on stderr.
//!
//! Plain by default, one line per event as the binary always printed them
//! (`<pipeline>: warning: <message>`); with `PULSE_LOG_FORMAT=json` (or `--log-format json`) one
//! JSON object per line with the time, level, pipeline, message and every structured field, for
//! log collectors. Messages never carry configuration values (Kafka properties, URLs with
//! passwords): only names.

use std::fmt;
use std::sync::OnceLock;

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    #[default]
    Plain,
    Json,
}

static INSTALLED: OnceLock<()> = OnceLock::new();

/// Installs the subscriber once per process; later calls (tests running several pipelines) keep
/// the first.
pub fn init(pipeline: &'static str, format: LogFormat) {
    INSTALLED.get_or_init(|| {
        let builder = tracing_subscriber::fmt().with_writer(std::io::stderr).with_max_level(Level::INFO);
        let installed = match format {
            LogFormat::Plain => builder.event_format(Plain { pipeline }).try_init(),
            LogFormat::Json => builder
                .json()
                .flatten_event(true)
                .with_current_span(true)
                .with_span_list(false)
                .with_target(false)
                .try_init(),
        };
        // Another subscriber already installed (an embedding program): use it.
        let _ = installed;
    });
}

/// `PULSE_LOG_FORMAT` (`plain` or `json`); anything else is plain.
pub fn format_from_env() -> LogFormat {
    match std::env::var("PULSE_LOG_FORMAT").as_deref() {
        Ok("json") => LogFormat::Json,
        _ => LogFormat::Plain,
    }
}

/// `<pipeline>: [error: |warning: ]<message>`; structured fields stay out of plain lines.
struct Plain {
    pipeline: &'static str,
}

struct MessageOnly<'a, 'w> {
    writer: &'a mut Writer<'w>,
    result: fmt::Result,
}

impl Visit for MessageOnly<'_, '_> {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            self.result = write!(self.writer, "{value:?}");
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.result = self.writer.write_str(value);
        }
    }
}

impl<S, N> FormatEvent<S, N> for Plain
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, _: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        let level = match *event.metadata().level() {
            Level::ERROR => "error: ",
            Level::WARN => "warning: ",
            _ => "",
        };
        write!(writer, "{}: {level}", self.pipeline)?;
        let mut visitor = MessageOnly { writer: &mut writer, result: Ok(()) };
        event.record(&mut visitor);
        visitor.result?;
        writeln!(writer)
    }
}
