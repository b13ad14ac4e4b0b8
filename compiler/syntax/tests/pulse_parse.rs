//! `.pulse` parsing and lowering to the common `Document`: the seed journey, every node type and
//! sugar form, and the JSON keys they lower to.

use pulse_syntax::ast::{Document, ExprKind, Number, Value, ValueKind};
use pulse_syntax::expr_print::print_expr;
use pulse_syntax::{parse_pulse_document, FileId};

const SEED: &str = r#"// Welcome journey (the seed article's welcome-message-d0).
pipeline welcome-message-d0
description "Send welcome push to first-time users 5 min after home_seen"
version "1.0"

runtime {
  checkpointInterval: 2m
  stateBackend: "rocksdb"
  restartStrategy: "exponential"
  readSetting: "group-offsets"
}

source: kafka-source("events") {
  brokers: "broker1:9092,broker2:9092,broker3:9092"
  groupId: "welcome-d0-prod"
}

source
  -> login_filter: filter(event_name == "login_success" && userId != null)
  -> wait_5min: delay(5m) by userId
  -> send_push: api-sink("https://notify.service/send") {
    method: "POST"
    body: {
      userId: "{{ userId }}"
      title: "Welcome [[firstName]]!"
      message: "Start exploring these new shows [[top_show_1]], [[top_show_2]]"
    }
  }
"#;

fn parse_ok(text: &str) -> Document {
    let (document, diagnostics) = parse_pulse_document(FileId(0), text);
    assert!(diagnostics.is_empty(), "unexpected diagnostics: {diagnostics:#?}");
    document.expect("a document without errors")
}

fn config<'a>(document: &'a Document, id: &str) -> &'a [pulse_syntax::ast::Member] {
    let node = document.nodes.iter().find(|node| node.id.node == id).unwrap_or_else(|| panic!("no node {id}"));
    node.config.as_object().expect("config is an object")
}

fn get<'a>(members: &'a [pulse_syntax::ast::Member], key: &str) -> &'a Value {
    &members.iter().find(|member| member.key.node == key).unwrap_or_else(|| panic!("no key {key}")).value
}

fn keys(members: &[pulse_syntax::ast::Member]) -> Vec<&str> {
    members.iter().map(|member| member.key.node.as_str()).collect()
}

fn expr_text(value: &Value) -> String {
    match &value.kind {
        ValueKind::Expr(expr) => print_expr(expr),
        other => panic!("expected an expression, found {other:?}"),
    }
}

fn millis(value: &Value) -> u64 {
    match &value.kind {
        ValueKind::Duration(duration) => duration.millis,
        other => panic!("expected a duration, found {other:?}"),
    }
}

fn string(value: &Value) -> &str {
    value.as_str().unwrap_or_else(|| panic!("expected a string, found {value:?}"))
}

#[test]
fn seed_journey_lowers_to_four_nodes_and_three_edges() {
    let document = parse_ok(SEED);
    assert_eq!(document.nodes.len(), 4);
    assert_eq!(document.edges.len(), 3);
    let ids: Vec<_> = document.nodes.iter().map(|node| (node.id.node.as_str(), node.kind.node.as_str())).collect();
    assert_eq!(
        ids,
        [("source", "kafka-source"), ("login_filter", "filter"), ("wait_5min", "delay"), ("send_push", "api-sink")]
    );
    let edges: Vec<_> = document.edges.iter().map(|edge| (edge.from.node.as_str(), edge.to.node.as_str())).collect();
    assert_eq!(edges, [("source", "login_filter"), ("login_filter", "wait_5min"), ("wait_5min", "send_push")]);
    assert!(document.edges.iter().all(|edge| edge.from_port.is_none() && edge.to_port.is_none()));

    assert_eq!(document.setting("name").and_then(Value::as_str), Some("welcome-message-d0"));
    assert_eq!(document.setting("version").and_then(Value::as_str), Some("1.0"));
    let runtime = document.setting("runtime").and_then(Value::as_object).expect("runtime object");
    assert_eq!(keys(runtime), ["checkpointInterval", "stateBackend", "restartStrategy", "readSetting"]);
    assert_eq!(millis(get(runtime, "checkpointInterval")), 120_000);

    assert_eq!(keys(config(&document, "source")), ["topic", "brokers", "groupId"]);
    assert_eq!(string(get(config(&document, "source"), "topic")), "events");
    let filter = config(&document, "login_filter");
    assert_eq!(keys(filter), ["where"]);
    assert_eq!(expr_text(get(filter, "where")), r#"event_name == "login_success" && userId != null"#);
    let delay = config(&document, "wait_5min");
    assert_eq!(keys(delay), ["duration", "keyBy"]);
    assert_eq!(millis(get(delay, "duration")), 300_000);
    assert_eq!(expr_text(get(delay, "keyBy")), "userId");
    let sink = config(&document, "send_push");
    assert_eq!(keys(sink), ["url", "method", "body"]);
    let body = get(sink, "body").as_object().expect("body object");
    assert_eq!(keys(body), ["userId", "title", "message"]);
    assert_eq!(string(get(body, "userId")), "{{ userId }}");
}

#[test]
fn spans_point_into_the_pulse_file() {
    let document = parse_ok(SEED);
    let filter = document.nodes.iter().find(|node| node.id.node == "login_filter").expect("filter");
    assert_eq!(&SEED[filter.id.span.range()], "login_filter");
    assert_eq!(&SEED[filter.kind.span.range()], "filter");
    let condition = get(filter.config.as_object().expect("object"), "where");
    assert_eq!(&SEED[condition.span.range()], r#"event_name == "login_success" && userId != null"#);
    let edge = &document.edges[1];
    assert_eq!(&SEED[edge.from.span.range()], "login_filter");
    assert_eq!(&SEED[edge.to.span.range()], "wait_5min");
}

#[test]
fn event_block_lowers_to_the_inline_json_schema() {
    let text = "pipeline p\nevent {\n  userId: string?\n  ts: timestamp, n: \"int?\"\n  props: { show_id: string? }?\n  meta: { a: int }\n}\n";
    let document = parse_ok(text);
    let schema = document.setting("schema").and_then(Value::as_object).expect("schema object");
    assert_eq!(keys(schema), ["fields"]);
    let fields = get(schema, "fields").as_object().expect("fields");
    assert_eq!(keys(fields), ["userId", "ts", "n", "props", "meta"]);
    assert_eq!(string(get(fields, "userId")), "string?");
    assert_eq!(string(get(fields, "ts")), "timestamp");
    assert_eq!(string(get(fields, "n")), "int?");
    assert_eq!(&text[get(fields, "userId").span.range()], "userId: string?");
    let props = get(fields, "props").as_object().expect("nested");
    assert_eq!(keys(props), ["fields", "nullable"]);
    assert_eq!(get(props, "nullable").kind, ValueKind::Bool(true));
    assert_eq!(string(get(get(props, "fields").as_object().expect("fields"), "show_id")), "string?");
    let meta = get(fields, "meta").as_object().expect("nested");
    assert_eq!(get(meta, "nullable").kind, ValueKind::Bool(false));
}

#[test]
fn schema_reference_lowers_to_a_string() {
    let document = parse_ok("pipeline p\nschema \"events.schema.json\"\n");
    assert_eq!(document.setting("schema").and_then(Value::as_str), Some("events.schema.json"));
}

const ALL_NODES: &str = r#"
pipeline all-nodes
src: file-source("input.jsonl") { eventTime: ts, maxOutOfOrderness: 5s, idleTimeout: 1m }
k: kafka-source { topics: ["a", "b"], brokers: "b:9092", groupId: "g", readSetting: "earliest" }
sp: splitter {
  mode: "all"
  route high-intent: visits >= 10
  route low: visits < 10
}
m: map {
  set: { score: visits * 2, label: "vip", flag: true, n: 3, tags: ["a", "b"], obj: { x: 1 } }
  remove: [tmp, debug.trace]
  keep: [userId, score]
}
trig: user-event-trigger(30m) by userId {
  start: event_name == "add_to_cart"
  cancel: event_name == "checkout"
  allowedLateness: 10s
  time: "processing"
}
watched: has-done-event(event_name == "watch_start") by userId { since: 7d, ttl: 30d }
seg: segmentation(1h) by userId {
  counter logins over 7d where event_name == "login"
  counter all_events over 1d
  segment power: logins >= 10 && all_events > 100
  emit: "onChange"
}
cap: capping(5, 7d) by userId
cap2: rolling-window-capping { keyBy: userId, max: 1, window: 1d }
agg: window-aggregate by userId {
  window sliding 1h every 5m
  aggregate n: count()
  aggregate total: sum(amount)
  aggregate users: countDistinct("user-id")
  allowedLateness: 1m
}
agg2: window-aggregate by userId { window tumbling 5m }
agg3: window-aggregate by userId { window session gap 30m }
dd: dedupe(1h) by userId
ks: kafka-sink("out") { key: "{{ userId }}", compression: "lz4", deliveryGuarantee: "at-least-once" }
rs: redis-sink("LPUSH") { key: "u:{{ userId }}", value: "{{ score }}", trim: 100, ttl: 1d }
api: api-sink("https://x/{{ userId }}") {
  method: "POST"
  headers: { Authorization: "Bearer ${NOTIFY_TOKEN}", "Content-Type": "application/json" }
  timeout: 5s, retries: 3
  circuitBreaker: { failureThreshold: 5, resetAfter: 30s }
}
fs: file-sink("out.jsonl")
so: stdout-sink
f: filter where amount > -5 { time: "processing" }
d: delay { duration: 500ms, keyBy: "user-id", mode: "latest" }

src -> sp {
  high-intent -> m -> trig.in
  low -> watched.flow
  default -> so
}
k -> watched.events
trig.fired -> seg -> cap -> agg
watched {
  yes -> dd -> ks
  no -> api -> rs
}
cap.capped -> fs
api -> extra: stdout-sink
test "first run" { inputs: [{ userId: "a" }], expect: { so: [] } }
"#;

#[test]
fn every_node_type_and_sugar_lowers_to_json_keys() {
    let document = parse_ok(ALL_NODES);
    let kinds: Vec<_> = document.nodes.iter().map(|node| node.kind.node.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "file-source",
            "kafka-source",
            "splitter",
            "map",
            "user-event-trigger",
            "has-done-event",
            "segmentation",
            "capping",
            "rolling-window-capping",
            "window-aggregate",
            "window-aggregate",
            "window-aggregate",
            "dedupe",
            "kafka-sink",
            "redis-sink",
            "api-sink",
            "file-sink",
            "stdout-sink",
            "filter",
            "delay",
            "stdout-sink",
        ]
    );
    assert_eq!(keys(config(&document, "src")), ["path", "eventTime", "maxOutOfOrderness", "idleTimeout"]);
    assert_eq!(expr_text(get(config(&document, "src"), "eventTime")), "ts");

    let splitter = config(&document, "sp");
    assert_eq!(keys(splitter), ["mode", "routes"]);
    let ValueKind::Array(routes) = &get(splitter, "routes").kind else { panic!("routes is an array") };
    assert_eq!(routes.len(), 2);
    let route = routes[0].as_object().expect("route object");
    assert_eq!(keys(route), ["name", "where"]);
    assert_eq!(string(get(route, "name")), "high-intent");
    assert_eq!(expr_text(get(route, "where")), "visits >= 10");

    let map = config(&document, "m");
    assert_eq!(keys(map), ["set", "remove", "keep"]);
    let set = get(map, "set").as_object().expect("set");
    // Every `set` value is an expression, literals included; objects stay plain values.
    assert_eq!(expr_text(get(set, "score")), "visits * 2");
    assert!(matches!(&get(set, "label").kind, ValueKind::Expr(e) if e.kind == ExprKind::Str("vip".into())));
    assert!(matches!(&get(set, "flag").kind, ValueKind::Expr(e) if e.kind == ExprKind::Bool(true)));
    assert!(matches!(&get(set, "n").kind, ValueKind::Expr(e) if e.kind == ExprKind::Int(3)));
    assert_eq!(expr_text(get(set, "tags")), r#"["a", "b"]"#);
    assert!(matches!(get(set, "obj").kind, ValueKind::Object(_)));
    let ValueKind::Array(remove) = &get(map, "remove").kind else { panic!("remove is an array") };
    assert_eq!(remove.iter().map(expr_text).collect::<Vec<_>>(), ["tmp", "debug.trace"]);

    let trigger = config(&document, "trig");
    assert_eq!(keys(trigger), ["within", "keyBy", "start", "cancel", "allowedLateness", "time"]);
    assert_eq!(millis(get(trigger, "within")), 1_800_000);
    assert_eq!(expr_text(get(trigger, "cancel")), r#"event_name == "checkout""#);

    let watched = config(&document, "watched");
    assert_eq!(keys(watched), ["event", "keyBy", "since", "ttl"]);
    assert_eq!(millis(get(watched, "since")), 7 * 86_400_000);

    let segmentation = config(&document, "seg");
    assert_eq!(keys(segmentation), ["bucket", "keyBy", "counters", "segments", "emit"]);
    let ValueKind::Array(counters) = &get(segmentation, "counters").kind else { panic!("counters") };
    assert_eq!(keys(counters[0].as_object().expect("counter")), ["name", "where", "window"]);
    assert_eq!(keys(counters[1].as_object().expect("counter")), ["name", "window"]);
    assert_eq!(millis(get(counters[1].as_object().expect("counter"), "window")), 86_400_000);
    let ValueKind::Array(segments) = &get(segmentation, "segments").kind else { panic!("segments") };
    let segment = segments[0].as_object().expect("segment");
    assert_eq!(keys(segment), ["name", "rule"]);
    assert_eq!(expr_text(get(segment, "rule")), "logins >= 10 && all_events > 100");

    let capping = config(&document, "cap");
    assert_eq!(keys(capping), ["max", "window", "keyBy"]);
    assert_eq!(get(capping, "max").kind, ValueKind::Number(Number::Int(5)));

    let aggregate = config(&document, "agg");
    assert_eq!(keys(aggregate), ["keyBy", "window", "aggregates", "allowedLateness"]);
    let window = get(aggregate, "window").as_object().expect("window");
    let sliding = get(window, "sliding").as_object().expect("sliding");
    assert_eq!((millis(get(sliding, "size")), millis(get(sliding, "slide"))), (3_600_000, 300_000));
    let ValueKind::Array(aggregates) = &get(aggregate, "aggregates").kind else { panic!("aggregates") };
    assert_eq!(keys(aggregates[0].as_object().expect("aggregate")), ["name", "fn"]);
    let total = aggregates[1].as_object().expect("aggregate");
    assert_eq!(keys(total), ["name", "fn", "field"]);
    assert_eq!(string(get(total, "fn")), "sum");
    assert_eq!(expr_text(get(total, "field")), "amount");
    assert_eq!(string(get(aggregates[2].as_object().expect("aggregate"), "field")), "user-id");
    let tumbling = get(config(&document, "agg2"), "window").as_object().expect("window");
    assert_eq!(millis(get(tumbling, "tumbling")), 300_000);
    let session = get(config(&document, "agg3"), "window").as_object().expect("window");
    assert_eq!(millis(get(get(session, "session").as_object().expect("session"), "gap")), 1_800_000);

    assert_eq!(keys(config(&document, "dd")), ["within", "keyBy"]);
    assert_eq!(keys(config(&document, "rs")), ["command", "key", "value", "trim", "ttl"]);
    let api = config(&document, "api");
    assert_eq!(keys(api), ["url", "method", "headers", "timeout", "retries", "circuitBreaker"]);
    let headers = get(api, "headers").as_object().expect("headers");
    assert_eq!(keys(headers), ["Authorization", "Content-Type"]);
    assert_eq!(keys(config(&document, "fs")), ["path"]);
    assert!(config(&document, "so").is_empty());
    let filter = config(&document, "f");
    assert_eq!(keys(filter), ["where", "time"]);
    assert_eq!(expr_text(get(filter, "where")), "amount > -5");
    let delay = config(&document, "d");
    assert_eq!(string(get(delay, "keyBy")), "user-id");
    assert_eq!(millis(get(delay, "duration")), 500);

    assert_eq!(document.tests.len(), 1);
    assert_eq!(document.tests[0].name.node, "first run");
}

#[test]
fn chains_and_branch_blocks_lower_to_edges_in_order() {
    let document = parse_ok(ALL_NODES);
    let edges: Vec<String> = document
        .edges
        .iter()
        .map(|edge| {
            let port = |port: &Option<pulse_syntax::Spanned<String>>| {
                port.as_ref().map(|p| format!(".{}", p.node)).unwrap_or_default()
            };
            format!("{}{} -> {}{}", edge.from.node, port(&edge.from_port), edge.to.node, port(&edge.to_port))
        })
        .collect();
    assert_eq!(
        edges,
        [
            "src -> sp",
            "sp.high-intent -> m",
            "m -> trig.in",
            "sp.low -> watched.flow",
            "sp.default -> so",
            "k -> watched.events",
            "trig.fired -> seg",
            "seg -> cap",
            "cap -> agg",
            "watched.yes -> dd",
            "dd -> ks",
            "watched.no -> api",
            "api -> rs",
            "cap.capped -> fs",
            "api -> extra",
        ]
    );
    // The inline declaration in the last chain is a node, declared where it first appears.
    assert_eq!(document.nodes.last().map(|node| node.id.node.as_str()), Some("extra"));
}

#[test]
fn nested_branch_blocks_and_commas() {
    let text = "a: file-source\nb: splitter { route x: v > 1, route y: v < 1 }\nc: stdout-sink\na -> b { x -> c, y -> d: has-done-event(true) by k { since: 1h } }\nd { yes -> c\n no -> c }\n";
    let (document, diagnostics) = parse_pulse_document(FileId(3), text);
    let document = document.unwrap_or_else(|| panic!("{diagnostics:#?}"));
    let pairs: Vec<_> = document
        .edges
        .iter()
        .map(|edge| (edge.from.node.as_str(), edge.from_port.as_ref().map(|p| p.node.as_str()), edge.to.node.as_str()))
        .collect();
    assert_eq!(
        pairs,
        [
            ("a", None, "b"),
            ("b", Some("x"), "c"),
            ("b", Some("y"), "d"),
            ("d", Some("yes"), "c"),
            ("d", Some("no"), "c"),
        ]
    );
    assert_eq!(document.nodes.len(), 4);
    assert_eq!(document.edges[0].span.file, FileId(3));
}

#[test]
fn node_ids_and_types_may_contain_dashes_but_not_swallow_arrows() {
    let document = parse_ok("my-src: kafka-source { topic: \"t\" }\nmy-src->to-sink: file-sink(\"o\")\n");
    assert_eq!(document.edges[0].from.node, "my-src");
    assert_eq!(document.edges[0].to.node, "to-sink");
    assert_eq!(document.nodes[1].kind.node, "file-sink");
}

#[test]
fn keywords_can_still_be_node_ids() {
    let document = parse_ok("event: kafka-source { topic: \"t\" }\nevent -> version: stdout-sink\nversion \"2\"\n");
    assert_eq!(document.nodes[0].id.node, "event");
    assert_eq!(document.edges[0].to.node, "version");
    assert_eq!(document.setting("version").and_then(Value::as_str), Some("2"));
}

#[test]
fn literals_lower_to_plain_json_values_and_the_rest_to_expressions() {
    let text = "x: filter { a: \"s\", b: 1, c: 2.5, d: true, e: null, f: -3, g: [1, \"x\"], h: { k: 5m }, i: a.b, j: len(x) > 2 }\n";
    let document = parse_ok(text);
    let members = config(&document, "x");
    assert_eq!(get(members, "a").kind, ValueKind::String("s".into()));
    assert_eq!(get(members, "b").kind, ValueKind::Number(Number::Int(1)));
    assert_eq!(get(members, "c").kind, ValueKind::Number(Number::Float(2.5)));
    assert_eq!(get(members, "d").kind, ValueKind::Bool(true));
    assert_eq!(get(members, "e").kind, ValueKind::Null);
    assert_eq!(get(members, "f").kind, ValueKind::Number(Number::Int(-3)));
    assert!(matches!(&get(members, "g").kind, ValueKind::Array(items) if items.len() == 2));
    assert_eq!(millis(get(get(members, "h").as_object().expect("object"), "k")), 300_000);
    assert_eq!(expr_text(get(members, "i")), "a.b");
    assert_eq!(expr_text(get(members, "j")), "len(x) > 2");
}

#[test]
fn every_pulse_example_in_the_language_docs_parses_and_is_formatted() {
    let docs = include_str!("../../../docs/language.md");
    let blocks: Vec<&str> =
        docs.split("```pulse\n").skip(1).map(|rest| rest.split("```").next().expect("closed block")).collect();
    assert!(blocks.len() >= 4);
    for block in blocks {
        let (document, diagnostics) = parse_pulse_document(FileId(0), block);
        assert!(diagnostics.is_empty(), "{block}\n{diagnostics:#?}");
        assert!(document.is_some());
        let formatted = pulse_syntax::format_pulse(FileId(0), block).expect("formats");
        assert_eq!(pulse_syntax::format_pulse(FileId(0), &formatted).expect("formats"), formatted);
    }
}
