//! The runtime linked into every pipeline binary: command line, sources, sinks, dead letters,
//! the event-time and processing-time timer service, and the driver loop. Generated code
//! implements [`Pipeline`]; `main` hands it to [`run`], and the driver calls it through one
//! dynamic call per record, timer or response.
//!
//! Generated code names only [`generated`], the facade that re-exports what it may use (of this
//! crate and of `pulse-stdlib`); `tests/contract.rs` compiles a checked-in generated crate
//! against it and checks that code reaching past it does not compile.
//!
//! Time, as the driver implements it: an event-time timer for T fires after a step once the
//! pipeline watermark (the minimum over sources) is strictly above T; a processing-time timer for
//! T fires before the first line whose arrival is above T; at the end of all input every
//! remaining timer fires in (time, registration) order. `Context::arrival` during a processing
//! timer is max(last arrival, T).
//!
//! The `cli` decisions and the `timers` core are public for tests and tools; generated code
//! needs only [`generated`].

mod api_sink;
pub mod checkpoint;
pub mod cli;
mod driver;
pub mod generated;
mod http;
pub mod io;
pub mod kafka;
pub mod keys;
pub mod log;
pub mod metrics;
pub mod preview;
mod rate;
pub mod redis_sink;
pub mod report;
mod resume;
pub mod state;
mod stop;
pub mod timers;
pub mod trace;

pub use driver::{run, run_with_args, Context, RunSummary};
pub use pulse_stdlib::decode::DeadEvent;
pub use state::StateBackend;
pub use trace::TraceValue;

/// Why a generated pipeline cannot be set up.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// A condition's regular expression does not compile (the checker validates the syntax, so
    /// this is a size limit or a bug).
    #[error("regular expression: {0}")]
    Regex(#[from] pulse_stdlib::RegexError),
}

/// A generated pipeline. The driver owns one value of it and calls it for every source record
/// and every due timer, one propagation step (G28) per call.
pub trait Pipeline: Sized {
    /// The static description of the pipeline's sources and sinks.
    const SPEC: PipelineSpec;
    /// Builds the pipeline (compiles regexes, sets up state); an error is a configuration error.
    fn new() -> Result<Self, SetupError>;
    /// Handles one line of source `source` (index into `SPEC.sources`).
    fn on_record(&mut self, source: usize, line: &str, cx: &mut Context);
    /// Handles one due timer.
    fn on_timer(&mut self, timer: Timer, cx: &mut Context);
    /// For `--trace`: the field paths keyed operators key by. A source record whose value at one
    /// of them is a traced key is traced from the source on.
    const TRACE_KEYS: &'static [&'static [&'static str]] = &[];
    /// For `--trace` and `pulsec why`: the edges (from node, port, to node).
    const EDGES: &'static [(u32, &'static str, u32)] = &[];
    /// Handles the response record of live api-sink `sink` whose `responses` port is connected.
    fn on_response(&mut self, sink: usize, text: &str, event_time: i64, cx: &mut Context) {
        let _ = (sink, text, event_time, cx);
    }
}

/// What the runtime needs to know about a pipeline.
#[derive(Clone, Copy, Debug)]
pub struct PipelineSpec {
    pub name: &'static str,
    /// Node ids; the index is the node index used by `drop_record` and `Timer::node`.
    pub nodes: &'static [&'static str],
    /// Sources in declaration order (G31 reads them round-robin in this order).
    pub sources: &'static [SourceSpec],
    /// Sinks in declaration order; the index is the sink index used by `emit`.
    pub sinks: &'static [SinkSpec],
    /// `runtime.checkpointInterval` in ms; `--checkpoint-interval` overrides it; default 10 s.
    pub checkpoint_interval_ms: Option<u64>,
    /// `runtime.stateBackend: "memory"`: state stays in memory even with `--state-dir` (which
    /// then holds a snapshot file per checkpoint); otherwise `--state-dir` means RocksDB.
    pub state_backend_memory: bool,
    /// (node id, layout string) of every stateful node. A checkpoint or savepoint whose node
    /// has another layout is refused on restore rather than misread.
    pub state_layouts: &'static [(&'static str, &'static str)],
    /// The pipeline's `version` (empty when it has none): reported by `/metrics`.
    pub version: &'static str,
    /// The graph as `--report` describes it: operator types, output ports, keyed nodes, edges.
    pub topology: Topology,
}

/// The shape of the pipeline's graph, for the run report (`--report`): what `pulsec report`
/// draws. Indexes are node indexes; a port index is the position in the node's `ports`.
#[derive(Clone, Copy, Debug)]
pub struct Topology {
    /// Operator type of every node (`filter`, `delay`, ...).
    pub node_types: &'static [&'static str],
    /// Output ports of every node, in the operator's order; `node_out_port` indexes into them.
    pub ports: &'static [&'static [&'static str]],
    /// Whether each node has a key (`keyBy`): its distinct keys are counted.
    pub keyed: &'static [bool],
    pub edges: &'static [EdgeSpec],
}

impl Topology {
    /// No graph known (hand-written pipelines): the report lists counters without types or edges.
    pub const EMPTY: Topology = Topology { node_types: &[], ports: &[], keyed: &[], edges: &[] };
}

/// One edge: `from`'s output port `port` (an index into its ports) feeds `to`'s input `to_port`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EdgeSpec {
    pub from: u32,
    pub port: u32,
    pub to: u32,
    pub to_port: &'static str,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SourceSpec {
    pub node: &'static str,
    pub kind: SourceKind,
    /// Subtracted from the largest event time seen to give the source's watermark (G26), in ms.
    pub max_out_of_orderness: i64,
    /// How far ahead of the wall clock an event time may be, in ms (`maxFutureSkew`); further
    /// ahead it is a dead letter and does not move the watermark. `i64::MAX`: no limit.
    pub max_future_skew: i64,
}

/// How a kafka-source's partitions must be keyed for state to follow them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KafkaPartitioning {
    /// As the topic is (no keyed state, or the source declares the state's key).
    AsIs,
    /// Re-keyed by this field path through the repartition topic `<group>-repartition`.
    Repartition { by: &'static [&'static str] },
    /// No single partitioning serves the keyed state; the reason.
    Unpartitionable(&'static str),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SourceKind {
    File {
        path: &'static str,
    },
    Kafka {
        topics: &'static [&'static str],
        brokers: Option<&'static str>,
        group_id: Option<&'static str>,
        /// Where partitions the checkpoint does not know start (`readSetting`).
        start: KafkaStart,
        /// The partitioning the keyed state needs (see the compiler's `Partitioning`).
        partitioning: KafkaPartitioning,
    },
}

/// `readSetting`: where a kafka-source starts on partitions without a checkpointed offset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KafkaStart {
    GroupOffsets,
    Earliest,
    Latest,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SinkSpec {
    pub node: &'static str,
    pub kind: SinkKind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SinkKind {
    Stdout,
    File {
        path: &'static str,
    },
    /// A kafka-sink: generated code renders key and value and calls `Context::kafka`.
    Kafka {
        topic: &'static str,
        brokers: Option<&'static str>,
        compression: Option<&'static str>,
        /// `deliveryGuarantee: exactly-once` (the default): transactional.
        exactly_once: bool,
        env: &'static [&'static str],
    },
    /// A redis-sink: generated code renders the templates and calls `Context::redis`.
    Redis {
        command: RedisCommand,
        /// LTRIM to the newest `trim` elements after a list push.
        trim: Option<u64>,
        /// PEXPIRE after the write.
        ttl_ms: Option<u64>,
        /// `rateLimit`: at most `count` writes per `per_ms` (count, per_ms).
        rate_limit: Option<(u64, u64)>,
        /// Environment variables its templates read; a missing one is a start-up error.
        env: &'static [&'static str],
    },
    /// An api-sink: generated code renders the request and calls `Context::api`.
    Api {
        method: &'static str,
        timeout_ms: u64,
        retries: u32,
        /// `circuitBreaker`: (failureThreshold, resetAfter in ms).
        breaker: Option<(u32, u64)>,
        /// Requests in flight at once.
        concurrency: u32,
        /// `rateLimit`: at most `count` requests per `per_ms` (count, per_ms), retries included.
        rate_limit: Option<(u64, u64)>,
        /// Whether its `responses` port is connected (`Pipeline::on_response` is called).
        responses: bool,
        env: &'static [&'static str],
    },
}

/// The write a redis-sink performs per event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RedisCommand {
    Set,
    HSet,
    SAdd,
    ZAdd,
    LPush,
    RPush,
}

/// The clock a timer follows: the watermark (event time) or the arrival clock (G35).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TimeDomain {
    Event,
    Processing,
}

/// What a timer does when it fires.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TimerKind {
    /// The operator's state for the key says what to do: a trigger's deadline, a segmentation
    /// boundary, a delay that keeps its record in state.
    State,
    /// Emits the record it carries (its JSON text): a delay that keeps no state.
    Carry(Box<str>),
    /// The end of a window: emit its result.
    WindowEnd,
    /// The end of a window's allowed lateness: discard the window (G44).
    WindowCleanup,
}

impl TimerKind {
    /// The text checkpoints and savepoints store for it (the format predates the typed kind):
    /// empty, the carried record, `fire` or `cleanup`. A carried record is a JSON object, so
    /// it never reads as one of the others.
    pub fn to_text(&self) -> &str {
        match self {
            TimerKind::State => "",
            TimerKind::Carry(record) => record,
            TimerKind::WindowEnd => "fire",
            TimerKind::WindowCleanup => "cleanup",
        }
    }

    /// The kind stored as `text` (see `to_text`).
    pub fn from_text(text: Box<str>) -> TimerKind {
        match &*text {
            "" => TimerKind::State,
            "fire" => TimerKind::WindowEnd,
            "cleanup" => TimerKind::WindowCleanup,
            _ => TimerKind::Carry(text),
        }
    }

    /// The record a `Carry` timer carries; empty for the other kinds.
    pub fn carried(&self) -> &str {
        match self {
            TimerKind::Carry(record) => record,
            _ => "",
        }
    }
}

/// A pending timer with everything its operator needs when it fires, so operators keep no
/// per-timer state of their own.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Timer {
    /// The node that registered it.
    pub node: u32,
    /// When it fires: event time (fires once the watermark is above it) or arrival time.
    pub time: i64,
    pub domain: TimeDomain,
    /// What firing does, and the record the timer carries if any.
    pub kind: TimerKind,
    pub event_time: i64,
    pub entry_time: i64,
    /// The key's JSON text for keyed operators.
    pub key: Option<Box<str>>,
}
