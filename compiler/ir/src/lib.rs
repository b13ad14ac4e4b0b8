//! The Pulse IR: a checked pipeline as plain data. A graph of typed operator nodes whose ids come
//! from the user's names (they key persisted state), edges with resolved ports, typed expressions,
//! and the record type flowing out of every node. Both front ends lower to this; codegen reads
//! only this. It carries no spans and does no I/O, so two forms of one pipeline compare equal.

use std::collections::BTreeMap;

mod partitioning;

pub use partitioning::Partitioning;

/// Index of a node in `Pipeline::nodes` (declaration order).
pub type NodeIdx = usize;

#[derive(Clone, Debug, PartialEq)]
pub struct Pipeline {
    pub name: String,
    pub description: Option<String>,
    pub version: Option<String>,
    /// The declared event schema; `None` when fields are typed from their use.
    pub schema: Option<RecordType>,
    pub runtime: RuntimeSettings,
    pub nodes: Vec<Node>,
    pub edges: Vec<Edge>,
    /// Topological order, ties broken by declaration order (G28).
    pub topo_order: Vec<NodeIdx>,
}

impl Pipeline {
    pub fn node(&self, id: &str) -> Option<&Node> {
        self.nodes.iter().find(|node| node.id == id)
    }

    /// Edges leaving `node` through `port`, in declaration order.
    pub fn edges_from<'a>(&'a self, node: NodeIdx, port: &'a str) -> impl Iterator<Item = &'a Edge> + 'a {
        self.edges.iter().filter(move |edge| edge.from == node && edge.from_port == port)
    }

    /// Edges entering `node`, in declaration order.
    pub fn edges_into(&self, node: NodeIdx) -> impl Iterator<Item = &Edge> + '_ {
        self.edges.iter().filter(move |edge| edge.to == node)
    }
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct RuntimeSettings {
    pub checkpoint_interval_ms: Option<u64>,
    pub state_backend: Option<StateBackend>,
    pub restart_strategy: Option<String>,
    pub read_setting: Option<ReadSetting>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StateBackend {
    RocksDb,
    Memory,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadSetting {
    GroupOffsets,
    Earliest,
    Latest,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Edge {
    pub from: NodeIdx,
    pub from_port: String,
    pub to: NodeIdx,
    pub to_port: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    /// The user's id: stable identity of the node and of its state.
    pub id: String,
    pub op: Operator,
    /// The record type on each output port, in port order.
    pub outputs: Vec<(String, RecordType)>,
}

impl Node {
    pub fn output_type(&self, port: &str) -> Option<&RecordType> {
        self.outputs.iter().find(|(name, _)| name == port).map(|(_, record_type)| record_type)
    }
}

/// A field path such as `props.show_id`, one segment per name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Path(pub Vec<String>);

impl Path {
    pub fn dotted(&self) -> String {
        self.0.join(".")
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeDomain {
    Event,
    Processing,
}

/// Settings shared by timed operators (G29).
#[derive(Clone, Debug, PartialEq)]
pub struct Timing {
    pub domain: TimeDomain,
    pub allowed_lateness_ms: u64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct SourceTime {
    /// The event-time field; `None` means arrival time.
    pub event_time: Option<Path>,
    pub max_out_of_orderness_ms: u64,
    pub idle_timeout_ms: Option<u64>,
    /// Events further ahead of the wall clock than this are dead letters and do not move the
    /// watermark; `None` turns the guard off.
    pub max_future_skew_ms: Option<u64>,
}

/// The default `maxFutureSkew`: one day ahead of the wall clock.
pub const DEFAULT_MAX_FUTURE_SKEW_MS: u64 = 86_400_000;

#[derive(Clone, Debug, PartialEq)]
pub enum Operator {
    KafkaSource {
        topics: Vec<String>,
        brokers: Option<String>,
        group_id: Option<String>,
        read_setting: Option<ReadSetting>,
        time: SourceTime,
        /// The field the producers key (partition) the records by, when declared.
        key_by: Option<Path>,
    },
    FileSource {
        path: String,
        time: SourceTime,
    },
    Filter {
        condition: Expr,
    },
    Splitter {
        routes: Vec<Route>,
        mode: SplitMode,
    },
    Map {
        keep: Vec<Path>,
        remove: Vec<Path>,
        /// In key order (G38).
        set: Vec<(Path, Expr)>,
    },
    Delay {
        duration_ms: u64,
        key_by: Option<Path>,
        latest: bool,
        timing: Timing,
        ttl_ms: Option<u64>,
    },
    UserEventTrigger {
        key_by: Path,
        start: Expr,
        cancel: Expr,
        within_ms: u64,
        timing: Timing,
        ttl_ms: Option<u64>,
    },
    HasDoneEvent {
        key_by: Path,
        event: Expr,
        /// `None` is `since: "entry"`.
        since_ms: Option<u64>,
        ttl_ms: Option<u64>,
    },
    Segmentation {
        key_by: Path,
        bucket_ms: u64,
        counters: Vec<Counter>,
        segments: Vec<Segment>,
        emit: EmitMode,
        refresh: Refresh,
        timing: Timing,
        ttl_ms: Option<u64>,
    },
    Capping {
        key_by: Path,
        max: u64,
        window_ms: u64,
        timing: Timing,
        ttl_ms: Option<u64>,
    },
    WindowAggregate {
        key_by: Path,
        window: WindowSpec,
        aggregates: Vec<Aggregate>,
        timing: Timing,
        ttl_ms: Option<u64>,
    },
    Dedupe {
        key_by: Path,
        within_ms: u64,
        ttl_ms: Option<u64>,
    },
    KafkaSink {
        topic: String,
        brokers: Option<String>,
        key: Option<Template>,
        value: Option<Template>,
        compression: Option<String>,
        exactly_once: bool,
    },
    RedisSink {
        command: RedisCommand,
        key: Template,
        field: Option<Template>,
        value: Option<Template>,
        score: Option<Template>,
        trim: Option<u64>,
        ttl_ms: Option<u64>,
        rate_limit: Option<RateLimit>,
    },
    ApiSink {
        url: Template,
        method: String,
        headers: Vec<(String, Template)>,
        body: Option<TemplateValue>,
        timeout_ms: Option<u64>,
        retries: Option<u64>,
        circuit_breaker: Option<CircuitBreaker>,
        /// `concurrency`: requests in flight at once.
        concurrency: Option<u64>,
        rate_limit: Option<RateLimit>,
    },
    FileSink {
        path: String,
    },
    StdoutSink,
}

impl Operator {
    /// The operator's type name as written in the JSON DAG.
    pub fn type_name(&self) -> &'static str {
        match self {
            Operator::KafkaSource { .. } => "kafka-source",
            Operator::FileSource { .. } => "file-source",
            Operator::Filter { .. } => "filter",
            Operator::Splitter { .. } => "splitter",
            Operator::Map { .. } => "map",
            Operator::Delay { .. } => "delay",
            Operator::UserEventTrigger { .. } => "user-event-trigger",
            Operator::HasDoneEvent { .. } => "has-done-event",
            Operator::Segmentation { .. } => "segmentation",
            Operator::Capping { .. } => "capping",
            Operator::WindowAggregate { .. } => "window-aggregate",
            Operator::Dedupe { .. } => "dedupe",
            Operator::KafkaSink { .. } => "kafka-sink",
            Operator::RedisSink { .. } => "redis-sink",
            Operator::ApiSink { .. } => "api-sink",
            Operator::FileSink { .. } => "file-sink",
            Operator::StdoutSink => "stdout-sink",
        }
    }

    pub fn is_source(&self) -> bool {
        matches!(self, Operator::KafkaSource { .. } | Operator::FileSource { .. })
    }

    pub fn is_sink(&self) -> bool {
        matches!(
            self,
            Operator::KafkaSink { .. }
                | Operator::RedisSink { .. }
                | Operator::ApiSink { .. }
                | Operator::FileSink { .. }
                | Operator::StdoutSink
        )
    }

    pub fn source_time(&self) -> Option<&SourceTime> {
        match self {
            Operator::KafkaSource { time, .. } | Operator::FileSource { time, .. } => Some(time),
            _ => None,
        }
    }

    pub fn key_by(&self) -> Option<&Path> {
        match self {
            Operator::Delay { key_by, .. } => key_by.as_ref(),
            Operator::UserEventTrigger { key_by, .. }
            | Operator::HasDoneEvent { key_by, .. }
            | Operator::Segmentation { key_by, .. }
            | Operator::Capping { key_by, .. }
            | Operator::WindowAggregate { key_by, .. }
            | Operator::Dedupe { key_by, .. } => Some(key_by),
            _ => None,
        }
    }

    pub fn timing(&self) -> Option<&Timing> {
        match self {
            Operator::Delay { timing, .. }
            | Operator::UserEventTrigger { timing, .. }
            | Operator::Segmentation { timing, .. }
            | Operator::Capping { timing, .. }
            | Operator::WindowAggregate { timing, .. } => Some(timing),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Route {
    pub name: String,
    pub condition: Expr,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SplitMode {
    First,
    All,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Counter {
    pub name: String,
    /// `None` counts every event of the key (G5).
    pub condition: Option<Expr>,
    pub window_ms: u64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Segment {
    pub name: String,
    /// A boolean expression over counter names.
    pub rule: Expr,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EmitMode {
    Always,
    OnChange,
}

/// Whether a segmentation node also emits when time alone changes its output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refresh {
    /// Only events emit (G42).
    Never,
    /// Also at each bucket boundary where a bucket leaves a counter's window: `always` emits the
    /// lower counts, `onChange` emits when the segment list changes.
    OnExpiry,
}

#[derive(Clone, Debug, PartialEq)]
pub enum WindowSpec {
    Tumbling { size_ms: u64 },
    Sliding { size_ms: u64, slide_ms: u64 },
    Session { gap_ms: u64 },
}

#[derive(Clone, Debug, PartialEq)]
pub struct Aggregate {
    pub name: String,
    pub function: AggregateFn,
    pub field: Option<Path>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AggregateFn {
    Count,
    Sum,
    Min,
    Max,
    Avg,
    CountDistinct,
    First,
    Last,
}

impl AggregateFn {
    /// Every aggregate function by the name a pipeline writes (`fn`, or `NAME: FN(FIELD)`).
    pub const ALL: [(&'static str, AggregateFn); 8] = [
        ("count", AggregateFn::Count),
        ("sum", AggregateFn::Sum),
        ("min", AggregateFn::Min),
        ("max", AggregateFn::Max),
        ("avg", AggregateFn::Avg),
        ("countDistinct", AggregateFn::CountDistinct),
        ("first", AggregateFn::First),
        ("last", AggregateFn::Last),
    ];

    /// What the function gives for the events of a window, in one line (G50).
    pub fn summary(self) -> &'static str {
        match self {
            AggregateFn::Count => "the number of events; with a field, of those where it is not null",
            AggregateFn::Sum => "the sum of the field's numbers (an int when all are ints); null without numbers",
            AggregateFn::Min => "the smallest of the field's numbers; null without numbers",
            AggregateFn::Max => "the largest of the field's numbers; null without numbers",
            AggregateFn::Avg => "the mean of the field's numbers, a float; null without numbers",
            AggregateFn::CountDistinct => "the number of distinct non-null values of the field",
            AggregateFn::First => "the non-null value with the smallest event time",
            AggregateFn::Last => "the non-null value with the largest event time",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RedisCommand {
    Set,
    HSet,
    SAdd,
    ZAdd,
    LPush,
    RPush,
}

/// A sink's `rateLimit`: at most `count` requests (api-sink) or writes (redis-sink) per `per_ms`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    pub count: u64,
    pub per_ms: u64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct CircuitBreaker {
    pub failure_threshold: u64,
    pub reset_after_ms: u64,
}

/// A string with `{{ path }}` holes. `[[name]]` stays literal text for the notification service.
#[derive(Clone, Debug, PartialEq)]
pub struct Template {
    pub parts: Vec<TemplatePart>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum TemplatePart {
    Text(String),
    Field(Path),
    /// `${NAME}`: read from the environment at start-up, never from the file.
    Env(String),
}

/// A JSON body whose strings are templates.
#[derive(Clone, Debug, PartialEq)]
pub enum TemplateValue {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    String(Template),
    Array(Vec<TemplateValue>),
    Object(Vec<(String, TemplateValue)>),
}

/// The static type of a value. `Any` is unknown (no schema, or mixed).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Type {
    Any,
    Null,
    Bool,
    Int,
    Float,
    String,
    Timestamp,
    Object(Option<Box<RecordType>>),
    Array,
}

impl Type {
    pub fn name(&self) -> &'static str {
        match self {
            Type::Any => "any",
            Type::Null => "null",
            Type::Bool => "bool",
            Type::Int => "int",
            Type::Float => "float",
            Type::String => "string",
            Type::Timestamp => "timestamp",
            Type::Object(_) => "object",
            Type::Array => "array",
        }
    }

    pub fn is_numeric(&self) -> bool {
        matches!(self, Type::Int | Type::Float)
    }
}

/// A field of a record type.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct FieldType {
    pub ty: Type,
    /// May be null or absent.
    pub nullable: bool,
}

/// The fields known on a record. `open` records (no schema) allow any other field, typed `Any`.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct RecordType {
    pub fields: BTreeMap<String, FieldType>,
    /// Declaration order of `fields`, for schema checks that name the first failing field (G10).
    pub order: Vec<String>,
    pub open: bool,
}

impl RecordType {
    pub fn open() -> RecordType {
        RecordType { fields: BTreeMap::new(), order: Vec::new(), open: true }
    }

    pub fn insert(&mut self, name: String, field: FieldType) {
        if !self.fields.contains_key(&name) {
            self.order.push(name.clone());
        }
        self.fields.insert(name, field);
    }

    pub fn remove(&mut self, name: &str) {
        self.fields.remove(name);
        self.order.retain(|existing| existing != name);
    }

    /// The type of `path`, or `None` when a closed record has no such field.
    pub fn lookup(&self, path: &[String]) -> Option<FieldType> {
        let (first, rest) = path.split_first()?;
        match self.fields.get(first) {
            Some(field) if rest.is_empty() => Some(field.clone()),
            Some(FieldType { ty: Type::Object(Some(inner)), nullable }) => {
                inner.lookup(rest).map(|found| FieldType { ty: found.ty, nullable: found.nullable || *nullable })
            }
            Some(FieldType { ty: Type::Object(None) | Type::Any, .. }) => {
                Some(FieldType { ty: Type::Any, nullable: true })
            }
            Some(_) => None,
            None if self.open => Some(FieldType { ty: Type::Any, nullable: true }),
            None => None,
        }
    }
}

/// A typed expression.
#[derive(Clone, Debug, PartialEq)]
pub struct Expr {
    pub kind: ExprKind,
    pub ty: Type,
}

#[derive(Clone, Debug, PartialEq)]
pub enum ExprKind {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Array(Vec<Expr>),
    Field(Path),
    /// A counter value inside a segment rule.
    Counter(String),
    Call(Function, Vec<Expr>),
    Not(Box<Expr>),
    Neg(Box<Expr>),
    Binary(BinaryOp, Box<Expr>, Box<Expr>),
    IsNull(Box<Expr>),
    IsNotNull(Box<Expr>),
    /// Regex search (G19); the pattern was validated at compile time.
    Match(Box<Expr>, String),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinaryOp {
    Or,
    And,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    In,
    Add,
    Sub,
    Mul,
    Div,
    Rem,
}

impl BinaryOp {
    /// The operator as written in expressions.
    pub fn symbol(self) -> &'static str {
        match self {
            BinaryOp::Or => "||",
            BinaryOp::And => "&&",
            BinaryOp::Eq => "==",
            BinaryOp::Ne => "!=",
            BinaryOp::Lt => "<",
            BinaryOp::Le => "<=",
            BinaryOp::Gt => ">",
            BinaryOp::Ge => ">=",
            BinaryOp::In => "in",
            BinaryOp::Add => "+",
            BinaryOp::Sub => "-",
            BinaryOp::Mul => "*",
            BinaryOp::Div => "/",
            BinaryOp::Rem => "%",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Function {
    Lower,
    Upper,
    Len,
    Abs,
    Floor,
    Ceil,
    Round,
    Min,
    Max,
    Concat,
    ToString,
    Coalesce,
    ToInt,
    ToFloat,
    Contains,
    StartsWith,
    EndsWith,
    If,
    EventTime,
    EntryTime,
}

impl Function {
    pub const ALL: &'static [(&'static str, Function)] = &[
        ("lower", Function::Lower),
        ("upper", Function::Upper),
        ("len", Function::Len),
        ("abs", Function::Abs),
        ("floor", Function::Floor),
        ("ceil", Function::Ceil),
        ("round", Function::Round),
        ("min", Function::Min),
        ("max", Function::Max),
        ("concat", Function::Concat),
        ("to_string", Function::ToString),
        ("coalesce", Function::Coalesce),
        ("to_int", Function::ToInt),
        ("to_float", Function::ToFloat),
        ("contains", Function::Contains),
        ("starts_with", Function::StartsWith),
        ("ends_with", Function::EndsWith),
        ("if", Function::If),
        ("event_time", Function::EventTime),
        ("entry_time", Function::EntryTime),
    ];

    pub fn lookup(name: &str) -> Option<Function> {
        Function::ALL.iter().find(|(candidate, _)| *candidate == name).map(|(_, function)| *function)
    }

    pub fn name(self) -> &'static str {
        Function::ALL.iter().find(|(_, function)| *function == self).map(|(name, _)| *name).unwrap_or("?")
    }

    /// Parameter names, for signatures and editor snippets (a variadic function lists its first).
    pub fn parameters(self) -> &'static [&'static str] {
        match self {
            Function::Lower | Function::Upper | Function::Len | Function::ToString => &["text"],
            Function::Abs | Function::Floor | Function::Ceil | Function::Round => &["number"],
            Function::ToInt | Function::ToFloat => &["value"],
            Function::Min | Function::Max => &["values"],
            Function::Concat => &["texts"],
            Function::Coalesce => &["values"],
            Function::Contains => &["text", "part"],
            Function::StartsWith => &["text", "prefix"],
            Function::EndsWith => &["text", "suffix"],
            Function::If => &["condition", "then", "otherwise"],
            Function::EventTime | Function::EntryTime => &[],
        }
    }

    /// One sentence on what the function returns (the editor shows it; the full page is
    /// docs/reference/functions.md).
    pub fn summary(self) -> &'static str {
        match self {
            Function::Lower => "The text in lower case.",
            Function::Upper => "The text in upper case.",
            Function::Len => "The number of characters of a text (or items of an array).",
            Function::Abs => "The absolute value.",
            Function::Floor => "The largest whole number not above the number.",
            Function::Ceil => "The smallest whole number not below the number.",
            Function::Round => "The nearest whole number, halves away from zero.",
            Function::Min => "The smallest of the values.",
            Function::Max => "The largest of the values.",
            Function::Concat => "The texts joined.",
            Function::ToString => "The value as text.",
            Function::Coalesce => "The first value that is not null.",
            Function::ToInt => "The value as an integer, null when it is not one.",
            Function::ToFloat => "The value as a number, null when it is not one.",
            Function::Contains => "Whether the text contains the part.",
            Function::StartsWith => "Whether the text starts with the prefix.",
            Function::EndsWith => "Whether the text ends with the suffix.",
            Function::If => "`then` when the condition holds, else `otherwise`.",
            Function::EventTime => "The record's event time (ms since the epoch).",
            Function::EntryTime => "The time the record entered the current flow (ms since the epoch).",
        }
    }

    /// Accepted argument counts: (min, max), `None` max for variadic.
    pub fn arity(self) -> (usize, Option<usize>) {
        match self {
            Function::Lower
            | Function::Upper
            | Function::Len
            | Function::Abs
            | Function::Floor
            | Function::Ceil
            | Function::Round
            | Function::ToString
            | Function::ToInt
            | Function::ToFloat => (1, Some(1)),
            Function::Min | Function::Max | Function::Concat | Function::Coalesce => (1, None),
            Function::Contains | Function::StartsWith | Function::EndsWith => (2, Some(2)),
            Function::If => (3, Some(3)),
            Function::EventTime | Function::EntryTime => (0, Some(0)),
        }
    }
}
