//! The runtime linked into every pipeline binary: command line, sources, sinks, dead letters,
//! the event-time and processing-time timer service, and the driver loop. Generated code
//! implements [`Pipeline`]; `main` hands it to [`run`]. No dynamic dispatch per event: the driver
//! is generic over the pipeline type.
//!
//! CONTRACT (used by generated code):
//!
//! ```text
//! pub trait Pipeline: Sized {
//!     const SPEC: PipelineSpec;
//!     fn new() -> Result<Self, String>;                       // compile regexes etc.
//!     fn on_record(&mut self, source: usize, line: &str, cx: &mut Context);
//!     fn on_timer(&mut self, timer: Timer, cx: &mut Context);
//! }
//! pub struct PipelineSpec {
//!     pub name: &'static str,
//!     pub nodes: &'static [&'static str],                    // node ids, index = node index
//!     pub sources: &'static [SourceSpec],                    // declaration order
//!     pub sinks: &'static [SinkSpec],                        // declaration order, index = sink index
//! }
//! pub struct SourceSpec { pub node: &'static str, pub kind: SourceKind, pub max_out_of_orderness: i64 }
//! pub enum SourceKind { File { path: &'static str }, Kafka { topics: &'static [&'static str] } }
//! pub struct SinkSpec { pub node: &'static str, pub kind: SinkKind }
//! pub enum SinkKind { Stdout, File { path: &'static str }, Kafka, Redis, Api }
//! pub enum TimeDomain { Event, Processing }
//! pub struct Timer { pub node: u32, pub time: i64, pub domain: TimeDomain,
//!                    pub event: Box<str>,            // the event's JSON text
//!                    pub event_time: i64, pub entry_time: i64, pub key: Option<Box<str>> }
//! impl Context {
//!     pub fn arrival(&self) -> i64;                       // logical arrival clock (G30)
//!     pub fn watermark(&self) -> i64;                     // i64::MIN = -inf, i64::MAX = +inf
//!     pub fn observe_event_time(&mut self, t: i64);       // after a source record's time is known
//!     pub fn emit(&mut self, sink: usize, event_json: &str);
//!     pub fn dead_letter(&mut self, reason: &str, event: DeadEvent<'_>);
//!     pub fn drop_record(&mut self, node: usize);         // counted drop (filtered, unconnected)
//!     pub fn schedule(&mut self, timer: Timer);           // ordered by (time, registration order)
//! }
//! pub use pulse_stdlib::decode::DeadEvent;                // Raw(line) is written as a JSON string, Json(text) as is
//! pub fn run<P: Pipeline>() -> std::process::ExitCode;    // parses the command line and runs
//! ```
