//! The operator registry: every node type's config keys and ports. The single place the checker,
//! `pulsec explain` and the editor support learn what a node type accepts.

/// What the checker knows about one node type.
#[derive(Clone, Copy, Debug)]
pub struct NodeType {
    pub name: &'static str,
    pub aliases: &'static [&'static str],
    pub keys: &'static [&'static str],
    pub inputs: &'static [&'static str],
    pub outputs: &'static [&'static str],
    /// Outputs are per route (splitter): listed outputs come from config.
    pub dynamic_outputs: bool,
    pub summary: &'static str,
}

impl NodeType {
    pub fn is_source(&self) -> bool {
        self.inputs.is_empty()
    }

    /// The output an unnamed edge leaves from (G1): `out`, else the only output other than `late`.
    pub fn default_output(&self) -> Option<&'static str> {
        if self.dynamic_outputs {
            return None;
        }
        if self.outputs.contains(&"out") {
            return Some("out");
        }
        let mut candidates = self.outputs.iter().filter(|port| **port != "late");
        match (candidates.next(), candidates.next()) {
            (Some(port), None) => Some(port),
            _ => None,
        }
    }

    /// The input an unnamed edge enters (G1): `in`, when the type has it.
    pub fn default_input(&self) -> Option<&'static str> {
        self.inputs.contains(&"in").then_some("in")
    }
}

const SOURCE_TIME: [&str; 4] = ["eventTime", "maxOutOfOrderness", "idleTimeout", "maxFutureSkew"];

pub const NODE_TYPES: &[NodeType] = &[
    NodeType {
        name: "kafka-source",
        aliases: &[],
        keys: &[
            "topic",
            "topics",
            "brokers",
            "groupId",
            "readSetting",
            "keyBy",
            SOURCE_TIME[0],
            SOURCE_TIME[1],
            SOURCE_TIME[2],
            SOURCE_TIME[3],
        ],
        inputs: &[],
        outputs: &["out"],
        dynamic_outputs: false,
        summary: "reads JSON events from Kafka topics",
    },
    NodeType {
        name: "file-source",
        aliases: &[],
        keys: &["path", SOURCE_TIME[0], SOURCE_TIME[1], SOURCE_TIME[2], SOURCE_TIME[3]],
        inputs: &[],
        outputs: &["out"],
        dynamic_outputs: false,
        summary: "reads a JSON-lines file (`-` is stdin)",
    },
    NodeType {
        name: "filter",
        aliases: &[],
        keys: &["where"],
        inputs: &["in"],
        outputs: &["out"],
        dynamic_outputs: false,
        summary: "passes events whose `where` condition is true",
    },
    NodeType {
        name: "splitter",
        aliases: &[],
        keys: &["routes", "mode"],
        inputs: &["in"],
        outputs: &["default"],
        dynamic_outputs: true,
        summary: "routes events to one output per route, plus `default`",
    },
    NodeType {
        name: "map",
        aliases: &[],
        keys: &["set", "remove", "keep"],
        inputs: &["in"],
        outputs: &["out"],
        dynamic_outputs: false,
        summary: "adds, removes or keeps fields",
    },
    NodeType {
        name: "delay",
        aliases: &[],
        keys: &["duration", "keyBy", "mode", "time", "allowedLateness", "ttl"],
        inputs: &["in"],
        outputs: &["out", "late"],
        dynamic_outputs: false,
        summary: "emits each event unchanged once time reaches its time + `duration`",
    },
    NodeType {
        name: "user-event-trigger",
        aliases: &[],
        keys: &["keyBy", "start", "cancel", "within", "time", "allowedLateness", "ttl"],
        inputs: &["in"],
        outputs: &["fired", "cancelled", "late"],
        dynamic_outputs: false,
        summary: "fires when a start event is not followed by a cancel event `within` a duration",
    },
    NodeType {
        name: "has-done-event",
        aliases: &[],
        keys: &["keyBy", "event", "since", "ttl"],
        inputs: &["flow", "events"],
        outputs: &["yes", "no"],
        dynamic_outputs: false,
        summary: "sends a flow event to `yes` if its key did a matching event since entry, else `no`",
    },
    NodeType {
        name: "segmentation",
        aliases: &[],
        keys: &["keyBy", "bucket", "counters", "segments", "emit", "refresh", "time", "allowedLateness", "ttl"],
        inputs: &["in"],
        outputs: &["out", "late"],
        dynamic_outputs: false,
        summary: "keeps bucketed rolling counters per key and evaluates segment rules",
    },
    NodeType {
        name: "capping",
        aliases: &["rolling-window-capping"],
        keys: &["keyBy", "max", "window", "time", "allowedLateness", "ttl"],
        inputs: &["in"],
        outputs: &["out", "capped", "late"],
        dynamic_outputs: false,
        summary: "passes at most `max` events per key within a rolling `window`",
    },
    NodeType {
        name: "window-aggregate",
        aliases: &[],
        keys: &["keyBy", "window", "aggregates", "time", "allowedLateness", "ttl"],
        inputs: &["in"],
        outputs: &["out", "late"],
        dynamic_outputs: false,
        summary: "aggregates events per key over tumbling, sliding or session windows",
    },
    NodeType {
        name: "dedupe",
        aliases: &[],
        keys: &["keyBy", "within", "ttl"],
        inputs: &["in"],
        outputs: &["out"],
        dynamic_outputs: false,
        summary: "drops an event whose key was seen within a duration",
    },
    NodeType {
        name: "kafka-sink",
        aliases: &[],
        keys: &["topic", "brokers", "key", "value", "compression", "deliveryGuarantee"],
        inputs: &["in"],
        outputs: &[],
        dynamic_outputs: false,
        summary: "writes events to a Kafka topic, exactly-once by default",
    },
    NodeType {
        name: "redis-sink",
        aliases: &[],
        keys: &["command", "key", "field", "value", "score", "trim", "ttl", "rateLimit"],
        inputs: &["in"],
        outputs: &[],
        dynamic_outputs: false,
        summary: "writes to Redis with SET, HSET, SADD, ZADD, LPUSH or RPUSH",
    },
    NodeType {
        name: "api-sink",
        aliases: &[],
        keys: &["url", "method", "headers", "body", "timeout", "retries", "circuitBreaker", "concurrency", "rateLimit"],
        inputs: &["in"],
        outputs: &["responses"],
        dynamic_outputs: false,
        summary: "sends each event as an HTTP request",
    },
    NodeType {
        name: "file-sink",
        aliases: &[],
        keys: &["path"],
        inputs: &["in"],
        outputs: &[],
        dynamic_outputs: false,
        summary: "writes events as JSON lines to a file",
    },
    NodeType {
        name: "stdout-sink",
        aliases: &[],
        keys: &[],
        inputs: &["in"],
        outputs: &[],
        dynamic_outputs: false,
        summary: "writes events as JSON lines to standard output",
    },
];

pub fn lookup(name: &str) -> Option<&'static NodeType> {
    NODE_TYPES.iter().find(|node_type| node_type.name == name || node_type.aliases.contains(&name))
}
