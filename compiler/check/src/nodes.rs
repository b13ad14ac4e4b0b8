//! Node configuration: decodes each node's config against its type's keys, resolving fields
//! against the record type flowing into it, and computes the record type on each of its outputs.
//! Nodes are checked in topological order so every input type is known first.

use crate::expr::{self, Scope};
use crate::graph::{Graph, UnparsedInput};
use crate::registry::NodeType;
use crate::settings::read_setting;
use crate::template;
use crate::values::{self, Fields, Zero};
use crate::Cx;
use pulse_ir::{
    Aggregate, AggregateFn, CircuitBreaker, Counter, EmitMode, FieldType, Node, Operator, Path, RecordType,
    RedisCommand, Refresh, Route, Segment, SourceTime, SplitMode, TimeDomain, Timing, Type, WindowSpec,
};
use pulse_syntax::ast::{Document, NodeDecl, Value, ValueKind};
use pulse_syntax::codes::{E0102, E0103, E0110, E0207, E0406, E0503, E0504, W0001, W0004, W0005, W0006};
use pulse_syntax::Diagnostic;
use std::collections::BTreeMap;

/// The most requests an api-sink keeps in flight (`concurrency`): each is a worker thread.
const MAX_CONCURRENCY: u64 = 1024;

pub fn check_nodes(
    cx: &mut Cx,
    doc: &Document,
    graph: &Graph,
    schema: Option<&RecordType>,
    schema_declared: bool,
) -> Option<Vec<Node>> {
    let source_type = match schema {
        Some(record) => record.clone(),
        // A declared schema that failed to check was reported; fields are then unchecked.
        None if schema_declared => RecordType::open(),
        None => {
            if let Some(first) = doc.nodes.first() {
                cx.report(
                    Diagnostic::new(W0001, "the pipeline declares no event schema")
                        .primary(first.id.span, "fields are typed from their use")
                        .note("without a schema, misspelt field names are not caught and values are compared as they come")
                        .help("declare the event fields: an `event { ... }` block, a `schema` section, or a JSON Schema file"),
                );
            }
            RecordType::open()
        }
    };
    let mut outputs: Vec<Option<Vec<(String, RecordType)>>> = vec![None; doc.nodes.len()];
    let mut operators: Vec<Option<Operator>> = vec![None; doc.nodes.len()];
    for &idx in &graph.topo_order {
        let Some(node_type) = graph.types[idx] else { continue };
        let decl = &doc.nodes[idx];
        // The record type entering the node: the merge of everything that flows into it.
        let mut incoming: Vec<&RecordType> = graph
            .edges
            .iter()
            .filter(|edge| edge.to == idx && edge.to_port != "events")
            .filter_map(|edge| {
                outputs[edge.from].as_ref()?.iter().find(|(port, _)| *port == edge.from_port).map(|(_, record)| record)
            })
            .collect();
        if graph.unparsed_input[idx] == UnparsedInput::Events {
            incoming.push(&source_type);
        }
        let input = if node_type.is_source() {
            source_type.clone()
        } else if graph.resolved.is_none() || incoming.is_empty() || graph.unparsed_input[idx] == UnparsedInput::Unknown
        {
            RecordType::open()
        } else {
            merge(&incoming)
        };
        let events_input: Vec<&RecordType> = graph
            .edges
            .iter()
            .filter(|edge| edge.to == idx && edge.to_port == "events")
            .filter_map(|edge| {
                outputs[edge.from].as_ref()?.iter().find(|(port, _)| *port == edge.from_port).map(|(_, record)| record)
            })
            .collect();
        let events_type = if events_input.is_empty() { source_type.clone() } else { merge(&events_input) };
        let Some(operator) = check_node(cx, decl, node_type, &input, &events_type) else { continue };
        time_lints(cx, decl, &operator);
        let ports = &graph.outputs[idx];
        let output_type = output_type(&operator, &input);
        outputs[idx] = Some(ports.iter().map(|port| (port.clone(), output_type.clone())).collect());
        operators[idx] = Some(operator);
    }
    let mut nodes = Vec::new();
    for (idx, decl) in doc.nodes.iter().enumerate() {
        nodes.push(Node { id: decl.id.node.clone(), op: operators[idx].take()?, outputs: outputs[idx].take()? });
    }
    Some(nodes)
}

/// Union of record types: a field on only some inputs becomes nullable; conflicting types become `any`.
pub(crate) fn merge(records: &[&RecordType]) -> RecordType {
    let mut merged = records[0].clone();
    for other in &records[1..] {
        merged.open |= other.open;
        for name in &other.order {
            let theirs = &other.fields[name];
            match merged.fields.get(name).cloned() {
                Some(ours) if ours.ty == theirs.ty => {
                    merged.insert(name.clone(), FieldType { ty: ours.ty, nullable: ours.nullable || theirs.nullable })
                }
                Some(_) => merged.insert(name.clone(), FieldType { ty: Type::Any, nullable: true }),
                None => merged.insert(name.clone(), FieldType { ty: theirs.ty.clone(), nullable: true }),
            }
        }
        for name in merged.order.clone() {
            if !other.fields.contains_key(&name) {
                if let Some(field) = merged.fields.get_mut(&name) {
                    field.nullable = true;
                }
            }
        }
    }
    merged
}

pub(crate) fn output_type(operator: &Operator, input: &RecordType) -> RecordType {
    let mut record = passed_type(operator, input);
    // A keyed operator dead-letters a record whose key is null (G36): after it, the key is not
    // null (where its output still has the field).
    if let Some(key_by) = operator.key_by() {
        narrow(&mut record, &key_by.0);
    }
    record
}

/// The record type an operator emits, before narrowing by its key.
fn passed_type(operator: &Operator, input: &RecordType) -> RecordType {
    match operator {
        Operator::Map { keep, remove, set } => {
            let mut record = if keep.is_empty() {
                input.clone()
            } else {
                let mut kept = RecordType { open: false, ..RecordType::default() };
                for path in keep {
                    // A kept field is as nullable as it was; one the input does not have is absent.
                    let field = input.lookup(&path.0).unwrap_or(FieldType { ty: Type::Any, nullable: true });
                    insert_path(&mut kept, &path.0, field);
                }
                kept
            };
            for path in remove {
                remove_path(&mut record, &path.0);
            }
            for (path, value) in set {
                insert_path(
                    &mut record,
                    &path.0,
                    FieldType { ty: value.ty.clone(), nullable: may_be_null(value, input) },
                );
            }
            record
        }
        Operator::Segmentation { counters, .. } => {
            let mut record = input.clone();
            let mut counter_record = RecordType { open: false, ..RecordType::default() };
            for counter in counters {
                counter_record.insert(counter.name.clone(), FieldType { ty: Type::Int, nullable: false });
            }
            record.insert(
                "counters".into(),
                FieldType { ty: Type::Object(Some(Box::new(counter_record))), nullable: false },
            );
            record.insert("segments".into(), FieldType { ty: Type::Array, nullable: false });
            record
        }
        Operator::WindowAggregate { key_by, aggregates, .. } => {
            let mut record = RecordType { open: false, ..RecordType::default() };
            let key_type = input.lookup(&key_by.0).map(|field| field.ty).unwrap_or(Type::Any);
            record.insert("key".into(), FieldType { ty: key_type, nullable: false });
            record.insert("window_start".into(), FieldType { ty: Type::Int, nullable: false });
            record.insert("window_end".into(), FieldType { ty: Type::Int, nullable: false });
            for aggregate in aggregates {
                let field_ty = aggregate
                    .field
                    .as_ref()
                    .and_then(|path| input.lookup(&path.0))
                    .map(|field| field.ty)
                    .unwrap_or(Type::Any);
                // Over a field that is never null, every aggregate of a window has a value.
                let field_nullable =
                    aggregate.field.as_ref().and_then(|path| input.lookup(&path.0)).is_none_or(|field| field.nullable);
                let (ty, nullable) = match aggregate.function {
                    AggregateFn::Count | AggregateFn::CountDistinct => (Type::Int, false),
                    AggregateFn::Sum if field_ty == Type::Int => (Type::Int, field_nullable),
                    AggregateFn::Sum | AggregateFn::Avg => (Type::Float, field_nullable),
                    AggregateFn::Min | AggregateFn::Max | AggregateFn::First | AggregateFn::Last => {
                        (field_ty, field_nullable)
                    }
                };
                record.insert(aggregate.name.clone(), FieldType { ty, nullable });
            }
            record
        }
        Operator::ApiSink { .. } => RecordType::open(),
        // A record passes a filter only when its condition holds: the fields it tests for
        // null are not null after it.
        Operator::Filter { condition } => {
            let mut record = input.clone();
            let mut proven = Vec::new();
            proven_non_null(condition, &mut proven);
            for path in proven {
                narrow(&mut record, &path.0);
            }
            record
        }
        _ => input.clone(),
    }
}

/// Whether `expr` may evaluate to null on a record of type `input`: literals, booleans, counters
/// and event times never do; a field as its type says; `coalesce` when every argument may;
/// `if` when either branch may; conversions, division and remainder always may; the other
/// functions and arithmetic when an operand may.
fn may_be_null(expr: &pulse_ir::Expr, input: &RecordType) -> bool {
    use pulse_ir::{BinaryOp, ExprKind, Function};
    match &expr.kind {
        ExprKind::Null => true,
        ExprKind::Bool(_) | ExprKind::Int(_) | ExprKind::Float(_) | ExprKind::Str(_) | ExprKind::Array(_) => false,
        ExprKind::Counter(_) => false,
        ExprKind::Field(path) => input.lookup(&path.0).is_none_or(|field| field.nullable),
        ExprKind::Not(_) | ExprKind::IsNull(_) | ExprKind::IsNotNull(_) | ExprKind::Match(..) => false,
        ExprKind::Neg(inner) => may_be_null(inner, input),
        ExprKind::Binary(op, lhs, rhs) => match op {
            BinaryOp::Or
            | BinaryOp::And
            | BinaryOp::Eq
            | BinaryOp::Ne
            | BinaryOp::Lt
            | BinaryOp::Le
            | BinaryOp::Gt
            | BinaryOp::Ge
            | BinaryOp::In => false,
            BinaryOp::Div | BinaryOp::Rem => true,
            BinaryOp::Add | BinaryOp::Sub | BinaryOp::Mul => may_be_null(lhs, input) || may_be_null(rhs, input),
        },
        ExprKind::Call(function, args) => match function {
            Function::Coalesce => args.iter().all(|arg| may_be_null(arg, input)),
            Function::If => args.iter().skip(1).any(|arg| may_be_null(arg, input)),
            Function::EventTime | Function::EntryTime => false,
            Function::ToInt | Function::ToFloat => true,
            _ => args.iter().any(|arg| may_be_null(arg, input)),
        },
    }
}

/// The field paths `condition` proves non-null when true: every `path != null` of its top-level
/// `&&` chain.
fn proven_non_null(condition: &pulse_ir::Expr, out: &mut Vec<Path>) {
    match &condition.kind {
        pulse_ir::ExprKind::Binary(pulse_ir::BinaryOp::And, lhs, rhs) => {
            proven_non_null(lhs, out);
            proven_non_null(rhs, out);
        }
        pulse_ir::ExprKind::IsNotNull(inner) => {
            if let pulse_ir::ExprKind::Field(path) = &inner.kind {
                out.push(path.clone());
            }
        }
        _ => {}
    }
}

/// Marks the field at `path` (and the objects on the way to it) not null, where the record has it.
fn narrow(record: &mut RecordType, path: &[String]) {
    let Some((name, rest)) = path.split_first() else { return };
    let Some(field) = record.fields.get_mut(name) else { return };
    field.nullable = false;
    if let (Type::Object(Some(inner)), false) = (&mut field.ty, rest.is_empty()) {
        narrow(inner, rest);
    }
}

fn insert_path(record: &mut RecordType, path: &[String], field: FieldType) {
    match path {
        [] => {}
        [name] => record.insert(name.clone(), field),
        [name, rest @ ..] => {
            let mut inner = match record.fields.get(name) {
                Some(FieldType { ty: Type::Object(Some(inner)), .. }) => (**inner).clone(),
                _ => RecordType { open: record.open, ..RecordType::default() },
            };
            insert_path(&mut inner, rest, field);
            record.insert(name.clone(), FieldType { ty: Type::Object(Some(Box::new(inner))), nullable: true });
        }
    }
}

fn remove_path(record: &mut RecordType, path: &[String]) {
    match path {
        [] => {}
        [name] => record.remove(name),
        [name, rest @ ..] => {
            if let Some(FieldType { ty: Type::Object(Some(inner)), .. }) = record.fields.get_mut(name) {
                remove_path(inner, rest);
            }
        }
    }
}

struct NodeCx<'a> {
    decl: &'a NodeDecl,
    node_type: &'static NodeType,
    owner: String,
}

impl NodeCx<'_> {
    fn require<'v>(&self, cx: &mut Cx, fields: &Fields<'v>, key: &str) -> Option<&'v Value> {
        fields.require(cx, key, &self.owner, self.decl.kind.span)
    }

    fn what(&self, key: &str) -> String {
        format!("`{key}` of `{}`", self.decl.id.node)
    }

    /// `keyBy` of a keyed operator (G49): missing is E0406.
    fn key_by(&self, cx: &mut Cx, fields: &Fields<'_>, input: &RecordType) -> Option<Path> {
        let Some(value) = fields.get("keyBy") else {
            cx.report(
                Diagnostic::new(E0406, format!("`{}` is a keyed operator without `keyBy`", self.decl.id.node))
                    .primary(self.decl.kind.span, format!("`{}` keeps state per key", self.node_type.name))
                    .help("add `keyBy` with the field that identifies the user, e.g. `\"keyBy\": \"userId\"`"),
            );
            return None;
        };
        self.key_path(cx, value, input)
    }

    fn key_path(&self, cx: &mut Cx, value: &Value, input: &RecordType) -> Option<Path> {
        let path = values::path(cx, value, &self.what("keyBy"))?;
        expr::field_type(cx, &path, value.span, Scope { record: input, counters: None })?;
        Some(path)
    }

    fn timing(&self, cx: &mut Cx, fields: &Fields<'_>) -> Option<Timing> {
        let domain = match fields.get("time") {
            Some(value) => match values::choice(cx, value, &["event", "processing"], "time domain")? {
                0 => TimeDomain::Event,
                _ => TimeDomain::Processing,
            },
            None => TimeDomain::Event,
        };
        let allowed_lateness_ms = match fields.get("allowedLateness") {
            Some(value) => values::duration(cx, value, Zero::Allowed, &self.what("allowedLateness"))?,
            None => 0,
        };
        Some(Timing { domain, allowed_lateness_ms })
    }

    fn ttl(&self, cx: &mut Cx, fields: &Fields<'_>) -> Option<Option<u64>> {
        match fields.get("ttl") {
            Some(value) => Some(Some(values::duration(cx, value, Zero::Allowed, &self.what("ttl"))?)),
            None => Some(None),
        }
    }

    fn duration(&self, cx: &mut Cx, fields: &Fields<'_>, key: &str, zero: Zero) -> Option<u64> {
        let value = self.require(cx, fields, key)?;
        values::duration(cx, value, zero, &self.what(key))
    }

    fn source_time(&self, cx: &mut Cx, fields: &Fields<'_>, input: &RecordType) -> Option<SourceTime> {
        let event_time = match fields.get("eventTime") {
            Some(value) => {
                let path = values::path(cx, value, &self.what("eventTime"))?;
                let field = expr::field_type(cx, &path, value.span, Scope { record: input, counters: None })?;
                if !matches!(field.ty, Type::Timestamp | Type::Int | Type::Float | Type::String | Type::Any) {
                    cx.report(
                        Diagnostic::new(
                            E0103,
                            format!("event-time field `{}` is a `{}`", path.dotted(), field.ty.name()),
                        )
                        .primary(value.span, "not a timestamp")
                        .note("event time is a number of milliseconds or an RFC 3339 string")
                        .help("declare the field as `timestamp`"),
                    );
                    return None;
                }
                Some(path)
            }
            None => None,
        };
        let max_out_of_orderness_ms = match fields.get("maxOutOfOrderness") {
            Some(value) => values::duration(cx, value, Zero::Allowed, &self.what("maxOutOfOrderness"))?,
            None => 0,
        };
        let idle_timeout_ms = match fields.get("idleTimeout") {
            Some(value) => Some(values::duration(cx, value, Zero::Allowed, &self.what("idleTimeout"))?),
            None => None,
        };
        let max_future_skew_ms = match fields.get("maxFutureSkew") {
            Some(value) if matches!(&value.kind, ValueKind::String(text) if text == "off") => None,
            Some(value) => Some(values::duration(cx, value, Zero::Allowed, &self.what("maxFutureSkew"))?),
            None => Some(pulse_ir::DEFAULT_MAX_FUTURE_SKEW_MS),
        };
        Some(SourceTime { event_time, max_out_of_orderness_ms, idle_timeout_ms, max_future_skew_ms })
    }
}

pub(crate) fn check_node(
    cx: &mut Cx,
    decl: &NodeDecl,
    node_type: &'static NodeType,
    input: &RecordType,
    events_type: &RecordType,
) -> Option<Operator> {
    let node = NodeCx { decl, node_type, owner: format!("`{}` ({})", decl.id.node, node_type.name) };
    let fields = Fields::new(cx, &decl.config, node_type.keys, &node.owner)?;
    let scope = Scope { record: input, counters: None };
    let operator = match node_type.name {
        "kafka-source" => {
            let topics = match (fields.get("topic"), fields.get("topics")) {
                (Some(topic), None) => vec![values::string(cx, topic, &node.what("topic"))?],
                (None, Some(topics)) => {
                    let items = values::array(cx, topics, &node.what("topics"))?;
                    let names: Option<Vec<String>> =
                        items.iter().map(|item| values::string(cx, item, &node.what("topics"))).collect();
                    names?
                }
                (Some(topic), Some(_)) => {
                    cx.report(
                        Diagnostic::new(E0103, "give either `topic` or `topics`, not both")
                            .primary(topic.span, "`topic` here")
                            .help("list every topic under `topics`"),
                    );
                    return None;
                }
                (None, None) => {
                    cx.report(
                        Diagnostic::new(E0102, format!("{} is missing `topic`", node.owner))
                            .primary(decl.kind.span, "`topic` or `topics` is required"),
                    );
                    return None;
                }
            };
            let topic_values: Vec<&pulse_syntax::ast::Value> = match (fields.get("topic"), fields.get("topics")) {
                (Some(topic), _) => vec![topic],
                (None, Some(topics)) => match &topics.kind {
                    pulse_syntax::ast::ValueKind::Array(items) => items.iter().collect(),
                    _ => Vec::new(),
                },
                (None, None) => Vec::new(),
            };
            for (topic, value) in topics.iter().zip(topic_values) {
                check_topic(cx, topic, value.span);
            }
            let brokers = fields.get("brokers").map(|value| values::string(cx, value, &node.what("brokers")));
            let group_id = fields.get("groupId").map(|value| {
                let group_id = values::string(cx, value, &node.what("groupId"))?;
                if group_id.is_empty() || values::has_line_breaking_chars(&group_id) || group_id.len() > 255 {
                    cx.report(
                        Diagnostic::new(pulse_syntax::codes::E0105, "invalid consumer group id")
                            .primary(value.span, "a group id is 1 to 255 characters, without control characters"),
                    );
                    return None;
                }
                Some(group_id)
            });
            let read = fields.get("readSetting").map(|value| read_setting(cx, value));
            let key_by = match fields.get("keyBy") {
                Some(value) => Some(node.key_path(cx, value, input)?),
                None => None,
            };
            Operator::KafkaSource {
                topics,
                brokers: brokers.flatten(),
                group_id: group_id.flatten(),
                read_setting: read.flatten(),
                time: node.source_time(cx, &fields, input)?,
                key_by,
            }
        }
        "file-source" => {
            let path =
                node.require(cx, &fields, "path").and_then(|value| values::string(cx, value, &node.what("path")));
            Operator::FileSource { path: path?, time: node.source_time(cx, &fields, input)? }
        }
        "filter" => {
            let value = node.require(cx, &fields, "where")?;
            Operator::Filter { condition: expr::condition(cx, value, scope, &node.what("where"))? }
        }
        "splitter" => {
            let mode = match fields.get("mode") {
                Some(value) => {
                    [SplitMode::First, SplitMode::All][values::choice(cx, value, &["first", "all"], "splitter mode")?]
                }
                None => SplitMode::First,
            };
            let routes_value = node.require(cx, &fields, "routes")?;
            let mut routes = Vec::new();
            let mut ok = true;
            for route in values::array(cx, routes_value, &node.what("routes"))? {
                let Some(route_fields) = Fields::new(cx, route, &["name", "where"], "a route") else {
                    ok = false;
                    continue;
                };
                let name = route_fields
                    .require(cx, "name", "a route", route.span)
                    .and_then(|value| values::string(cx, value, "a route `name`"));
                let condition = route_fields
                    .require(cx, "where", "a route", route.span)
                    .and_then(|value| expr::condition(cx, value, scope, "a route's `where`"));
                match (name, condition) {
                    (Some(name), Some(condition)) => routes.push(Route { name, condition }),
                    _ => ok = false,
                }
            }
            if !ok {
                return None;
            }
            Operator::Splitter { routes, mode }
        }
        "map" => {
            let paths = |cx: &mut Cx, key: &str| -> Option<Vec<Path>> {
                match fields.get(key) {
                    Some(value) => values::array(cx, value, &node.what(key))?
                        .iter()
                        .map(|item| values::path(cx, item, &node.what(key)))
                        .collect(),
                    None => Some(Vec::new()),
                }
            };
            let keep = paths(cx, "keep")?;
            let remove = paths(cx, "remove")?;
            let mut set: BTreeMap<String, (Path, pulse_ir::Expr)> = BTreeMap::new();
            if let Some(value) = fields.get("set") {
                let Some(members) = value.as_object() else {
                    cx.report(values::wrong_type(value, "an object of field expressions", &node.what("set")));
                    return None;
                };
                let mut ok = true;
                for member in members {
                    let path = Path(member.key.node.split('.').map(str::to_string).collect());
                    match expr::set_value(cx, &member.value, scope) {
                        Some(expr) => {
                            set.insert(member.key.node.clone(), (path, expr));
                        }
                        None => ok = false,
                    }
                }
                if !ok {
                    return None;
                }
            }
            if keep.is_empty() && remove.is_empty() && set.is_empty() {
                cx.report(
                    Diagnostic::new(E0102, format!("{} changes nothing", node.owner))
                        .primary(decl.kind.span, "a map needs `set`, `remove` or `keep`"),
                );
                return None;
            }
            Operator::Map { keep, remove, set: set.into_values().collect() }
        }
        "delay" => {
            let duration_ms = node.duration(cx, &fields, "duration", Zero::Allowed)?;
            let key_by = match fields.get("keyBy") {
                Some(value) => Some(node.key_path(cx, value, input)?),
                None => None,
            };
            let latest = match fields.get("mode") {
                Some(value) => {
                    values::choice(cx, value, &["latest"], "delay mode")?;
                    if key_by.is_none() {
                        cx.report(
                            Diagnostic::new(E0504, "`mode: latest` requires `keyBy`")
                                .primary(value.span, "keeps the latest pending event per key")
                                .help("add `keyBy`, e.g. `\"keyBy\": \"userId\"`"),
                        );
                        return None;
                    }
                    true
                }
                None => false,
            };
            Operator::Delay {
                duration_ms,
                key_by,
                latest,
                timing: node.timing(cx, &fields)?,
                ttl_ms: node.ttl(cx, &fields)?,
            }
        }
        "user-event-trigger" => {
            let key_by = node.key_by(cx, &fields, input);
            let start =
                node.require(cx, &fields, "start").and_then(|value| expr::condition(cx, value, scope, "`start`"));
            let cancel =
                node.require(cx, &fields, "cancel").and_then(|value| expr::condition(cx, value, scope, "`cancel`"));
            let within_ms = node.duration(cx, &fields, "within", Zero::Allowed);
            Operator::UserEventTrigger {
                key_by: key_by?,
                start: start?,
                cancel: cancel?,
                within_ms: within_ms?,
                timing: node.timing(cx, &fields)?,
                ttl_ms: node.ttl(cx, &fields)?,
            }
        }
        "has-done-event" => {
            let key_by = node.key_by(cx, &fields, input);
            let events_scope = Scope { record: events_type, counters: None };
            let event = node
                .require(cx, &fields, "event")
                .and_then(|value| expr::condition(cx, value, events_scope, "`event`"));
            let since_ms = match fields.get("since") {
                Some(value) if value.as_str() == Some("entry") => None,
                Some(value) => Some(values::duration(cx, value, Zero::Allowed, &node.what("since"))?),
                None => None,
            };
            Operator::HasDoneEvent { key_by: key_by?, event: event?, since_ms, ttl_ms: node.ttl(cx, &fields)? }
        }
        "segmentation" => segmentation(cx, &node, &fields, input)?,
        "capping" | "rolling-window-capping" => {
            let key_by = node.key_by(cx, &fields, input);
            let max = node.require(cx, &fields, "max").and_then(|value| values::unsigned(cx, value, &node.what("max")));
            let window_ms = node.duration(cx, &fields, "window", Zero::Allowed);
            Operator::Capping {
                key_by: key_by?,
                max: max?,
                window_ms: window_ms?,
                timing: node.timing(cx, &fields)?,
                ttl_ms: node.ttl(cx, &fields)?,
            }
        }
        "window-aggregate" => window_aggregate(cx, &node, &fields, input)?,
        "dedupe" => {
            let key_by = node.key_by(cx, &fields, input);
            let within_ms = node.duration(cx, &fields, "within", Zero::Allowed);
            Operator::Dedupe { key_by: key_by?, within_ms: within_ms?, ttl_ms: node.ttl(cx, &fields)? }
        }
        "kafka-sink" => {
            let topic = node.require(cx, &fields, "topic").and_then(|value| {
                let topic = values::string(cx, value, &node.what("topic"))?;
                check_topic(cx, &topic, value.span);
                Some(topic)
            });
            let brokers = fields.get("brokers").map(|value| values::string(cx, value, &node.what("brokers")));
            let key = fields.get("key").map(|value| template::template(cx, value, scope, &node.what("key")));
            let value_template =
                fields.get("value").map(|value| template::template(cx, value, scope, &node.what("value")));
            let compression = match fields.get("compression") {
                Some(value) => {
                    let choices = ["none", "gzip", "snappy", "lz4", "zstd"];
                    Some(choices[values::choice(cx, value, &choices, "compression codec")?].to_string())
                }
                None => None,
            };
            let exactly_once = match fields.get("deliveryGuarantee") {
                Some(value) => {
                    values::choice(cx, value, &["exactly-once", "at-least-once"], "delivery guarantee")? == 0
                }
                None => true,
            };
            Operator::KafkaSink {
                topic: topic?,
                brokers: brokers.flatten(),
                key: key.flatten(),
                value: value_template.flatten(),
                compression,
                exactly_once,
            }
        }
        "redis-sink" => {
            let commands = ["SET", "HSET", "SADD", "ZADD", "LPUSH", "RPUSH"];
            let command_value = node.require(cx, &fields, "command")?;
            let index = values::choice(cx, command_value, &commands, "Redis command")?;
            let command = [
                RedisCommand::Set,
                RedisCommand::HSet,
                RedisCommand::SAdd,
                RedisCommand::ZAdd,
                RedisCommand::LPush,
                RedisCommand::RPush,
            ][index];
            let command_name = commands[index];
            let applies = |setting: &str| match setting {
                "field" => command == RedisCommand::HSet,
                "score" => command == RedisCommand::ZAdd,
                "trim" => matches!(command, RedisCommand::LPush | RedisCommand::RPush),
                _ => true,
            };
            let mut settings_apply = true;
            for setting in ["field", "score", "trim"] {
                if let (Some(value), false) = (fields.get(setting), applies(setting)) {
                    let help = match setting {
                        "field" => "only HSET writes a hash field; remove `field` or use HSET",
                        "score" => "only ZADD has a score; remove `score` or use ZADD",
                        _ => "only LPUSH and RPUSH keep a list to trim; remove `trim` or use a list push",
                    };
                    cx.report(
                        Diagnostic::new(E0110, format!("`{setting}` does not apply to {command_name}"))
                            .primary(value.span, format!("{command_name} has no {setting}"))
                            .help(help),
                    );
                    settings_apply = false;
                }
            }
            if let (RedisCommand::HSet, None, Some(value)) = (command, fields.get("field"), fields.get("value")) {
                cx.report(
                    Diagnostic::new(E0110, "`value` without `field` does not apply to HSET")
                        .primary(value.span, "this value would never be written")
                        .help("add `field` to write one hash field, or remove `value` to write every top-level field of the event as a hash field"),
                );
                settings_apply = false;
            }
            let key = node
                .require(cx, &fields, "key")
                .and_then(|value| template::template(cx, value, scope, &node.what("key")));
            let optional = |cx: &mut Cx, key: &str| {
                fields.get(key).map(|value| template::template(cx, value, scope, &node.what(key)))
            };
            let field = optional(cx, "field");
            let value = optional(cx, "value");
            let score = optional(cx, "score");
            let trim = fields.get("trim").map(|value| values::unsigned(cx, value, &node.what("trim")));
            let rate_limit = fields.get("rateLimit").map(|value| values::rate(cx, value, &node.what("rateLimit")));
            if !settings_apply {
                return None;
            }
            Operator::RedisSink {
                command,
                key: key?,
                field: field.flatten(),
                value: value.flatten(),
                score: score.flatten(),
                trim: trim.flatten(),
                ttl_ms: node.ttl(cx, &fields)?,
                rate_limit: rate_limit.flatten(),
            }
        }
        "api-sink" => {
            let url = node
                .require(cx, &fields, "url")
                .and_then(|value| template::template(cx, value, scope, &node.what("url")));
            let method = match fields.get("method") {
                Some(value) => {
                    let methods = ["GET", "POST", "PUT", "PATCH", "DELETE"];
                    methods[values::choice(cx, value, &methods, "HTTP method")?].to_string()
                }
                None => "POST".to_string(),
            };
            let mut headers = Vec::new();
            if let Some(value) = fields.get("headers") {
                let Some(members) = value.as_object() else {
                    cx.report(values::wrong_type(value, "an object of header templates", &node.what("headers")));
                    return None;
                };
                for member in members {
                    headers.push((member.key.node.clone(), template::template(cx, &member.value, scope, "a header")?));
                }
            }
            let body = fields.get("body").map(|value| template::template_value(cx, value, scope));
            let timeout_ms =
                fields.get("timeout").map(|value| values::duration(cx, value, Zero::Allowed, &node.what("timeout")));
            let retries = fields.get("retries").map(|value| values::unsigned(cx, value, &node.what("retries")));
            let circuit_breaker = match fields.get("circuitBreaker") {
                Some(value) => {
                    let breaker = Fields::new(cx, value, &["failureThreshold", "resetAfter"], "`circuitBreaker`")?;
                    let threshold = breaker
                        .require(cx, "failureThreshold", "`circuitBreaker`", value.span)
                        .and_then(|value| values::unsigned(cx, value, "`failureThreshold`"));
                    let reset = breaker
                        .require(cx, "resetAfter", "`circuitBreaker`", value.span)
                        .and_then(|value| values::duration(cx, value, Zero::Allowed, "`resetAfter`"));
                    Some(CircuitBreaker { failure_threshold: threshold?, reset_after_ms: reset? })
                }
                None => None,
            };
            let concurrency = fields
                .get("concurrency")
                .map(|value| values::bounded(cx, value, 1..=MAX_CONCURRENCY, &node.what("concurrency")));
            let rate_limit = fields.get("rateLimit").map(|value| values::rate(cx, value, &node.what("rateLimit")));
            Operator::ApiSink {
                url: url?,
                method,
                headers,
                body: match body {
                    Some(body) => Some(body?),
                    None => None,
                },
                timeout_ms: timeout_ms.flatten(),
                retries: retries.flatten(),
                circuit_breaker,
                concurrency: concurrency.flatten(),
                rate_limit: rate_limit.flatten(),
            }
        }
        "file-sink" => {
            let path =
                node.require(cx, &fields, "path").and_then(|value| values::string(cx, value, &node.what("path")));
            Operator::FileSink { path: path? }
        }
        "stdout-sink" => Operator::StdoutSink,
        other => unreachable!("node type `{other}` is in the registry but has no checker"),
    };
    Some(operator)
}

fn segmentation(cx: &mut Cx, node: &NodeCx<'_>, fields: &Fields<'_>, input: &RecordType) -> Option<Operator> {
    let key_by = node.key_by(cx, fields, input);
    let bucket_ms = match fields.get("bucket") {
        Some(value) => values::duration(cx, value, Zero::Forbidden, &node.what("bucket")),
        None => Some(3_600_000),
    };
    let scope = Scope { record: input, counters: None };
    let mut counters = Vec::new();
    let mut ok = true;
    let mut seen: BTreeMap<String, pulse_syntax::Span> = BTreeMap::new();
    if let Some(value) = node.require(cx, fields, "counters") {
        for item in values::array(cx, value, &node.what("counters"))? {
            let Some(counter) = Fields::new(cx, item, &["name", "where", "window"], "a counter") else {
                ok = false;
                continue;
            };
            let name_value = counter.require(cx, "name", "a counter", item.span);
            let name = name_value.and_then(|value| values::string(cx, value, "a counter `name`"));
            let condition = match counter.get("where") {
                Some(value) => expr::condition(cx, value, scope, "a counter's `where`").map(Some),
                None => Some(None),
            };
            let window_value = counter.require(cx, "window", "a counter", item.span);
            let window =
                window_value.and_then(|value| values::duration(cx, value, Zero::Forbidden, "a counter `window`"));
            let (Some(name), Some(condition), Some(window_ms), Some(name_value)) =
                (name, condition, window, name_value)
            else {
                ok = false;
                continue;
            };
            if !values::is_expr_identifier(&name) {
                cx.report(
                    Diagnostic::new(pulse_syntax::codes::E0105, format!("invalid counter name `{name}`"))
                        .primary(name_value.span, "counter names are identifiers: letters, digits and `_`"),
                );
                ok = false;
            }
            if let Some(first) = seen.get(&name) {
                cx.report(
                    Diagnostic::new(E0207, format!("duplicate counter name `{name}`"))
                        .primary(name_value.span, "used again here")
                        .secondary(*first, "first used here"),
                );
                ok = false;
            }
            seen.insert(name.clone(), name_value.span);
            if let (Some(bucket), Some(window_value)) = (bucket_ms, window_value) {
                if window_ms % bucket != 0 {
                    cx.report(
                        Diagnostic::new(
                            E0503,
                            format!(
                                "counter window `{}` is not a multiple of the bucket",
                                values::format_duration(window_ms)
                            ),
                        )
                        .primary(window_value.span, format!("the bucket is `{}`", values::format_duration(bucket)))
                        .note("counters sum whole buckets, so the window must be a whole number of buckets")
                        .help(format!("use `{}`", values::format_duration(window_ms.div_ceil(bucket) * bucket))),
                    );
                    ok = false;
                }
            }
            counters.push(Counter { name, condition, window_ms });
        }
    }
    let counter_names: Vec<String> = counters.iter().map(|counter| counter.name.clone()).collect();
    let rule_scope = Scope { record: input, counters: Some(&counter_names) };
    let mut segments = Vec::new();
    let mut segment_names: BTreeMap<String, pulse_syntax::Span> = BTreeMap::new();
    if let Some(value) = fields.get("segments") {
        for item in values::array(cx, value, &node.what("segments"))? {
            let Some(segment) = Fields::new(cx, item, &["name", "rule"], "a segment") else {
                ok = false;
                continue;
            };
            let name_value = segment.require(cx, "name", "a segment", item.span);
            let name = name_value.and_then(|value| values::string(cx, value, "a segment `name`"));
            let rule = segment
                .require(cx, "rule", "a segment", item.span)
                .and_then(|value| expr::condition(cx, value, rule_scope, "a segment `rule`"));
            let (Some(name), Some(rule), Some(name_value)) = (name, rule, name_value) else {
                ok = false;
                continue;
            };
            if let Some(first) = segment_names.get(&name) {
                cx.report(
                    Diagnostic::new(E0207, format!("duplicate segment name `{name}`"))
                        .primary(name_value.span, "used again here")
                        .secondary(*first, "first used here"),
                );
                ok = false;
            }
            segment_names.insert(name.clone(), name_value.span);
            segments.push(Segment { name, rule });
        }
    }
    let emit = match fields.get("emit") {
        Some(value) => {
            [EmitMode::Always, EmitMode::OnChange][values::choice(cx, value, &["always", "onChange"], "emit mode")?]
        }
        None => EmitMode::Always,
    };
    let refresh = match fields.get("refresh") {
        Some(value) => {
            [Refresh::Never, Refresh::OnExpiry][values::choice(cx, value, &["never", "onExpiry"], "refresh mode")?]
        }
        None => Refresh::Never,
    };
    let timing = node.timing(cx, fields);
    let ttl_ms = node.ttl(cx, fields);
    if !ok {
        return None;
    }
    Some(Operator::Segmentation {
        key_by: key_by?,
        bucket_ms: bucket_ms?,
        counters,
        segments,
        emit,
        refresh,
        timing: timing?,
        ttl_ms: ttl_ms?,
    })
}

fn window_aggregate(cx: &mut Cx, node: &NodeCx<'_>, fields: &Fields<'_>, input: &RecordType) -> Option<Operator> {
    let key_by = node.key_by(cx, fields, input);
    let window = node.require(cx, fields, "window").and_then(|value| window_spec(cx, value));
    let mut aggregates = Vec::new();
    let mut ok = true;
    let mut names: BTreeMap<String, pulse_syntax::Span> = BTreeMap::new();
    let functions = AggregateFn::ALL.map(|(name, _)| name);
    if let Some(value) = node.require(cx, fields, "aggregates") {
        for item in values::array(cx, value, &node.what("aggregates"))? {
            let Some(aggregate) = Fields::new(cx, item, &["name", "fn", "field"], "an aggregate") else {
                ok = false;
                continue;
            };
            let name_value = aggregate.require(cx, "name", "an aggregate", item.span);
            let name = name_value.and_then(|value| values::string(cx, value, "an aggregate `name`"));
            let function = aggregate
                .require(cx, "fn", "an aggregate", item.span)
                .and_then(|value| values::choice(cx, value, &functions, "aggregate function"))
                .map(|idx| AggregateFn::ALL[idx].1);
            let field = match aggregate.get("field") {
                Some(value) => {
                    let path = values::path(cx, value, "an aggregate `field`");
                    match path {
                        Some(path) => {
                            expr::field_type(cx, &path, value.span, Scope { record: input, counters: None });
                            Some(path)
                        }
                        None => {
                            ok = false;
                            None
                        }
                    }
                }
                None => None,
            };
            let (Some(name), Some(function), Some(name_value)) = (name, function, name_value) else {
                ok = false;
                continue;
            };
            if function != AggregateFn::Count && field.is_none() {
                cx.report(
                    Diagnostic::new(E0102, format!("aggregate `{name}` needs a `field`"))
                        .primary(item.span, "only `count` works without a field"),
                );
                ok = false;
            }
            if ["key", "window_start", "window_end"].contains(&name.as_str()) {
                cx.report(
                    Diagnostic::new(E0207, format!("aggregate name `{name}` is reserved"))
                        .primary(name_value.span, "the output record already has this field")
                        .help("choose another name"),
                );
                ok = false;
            } else if let Some(first) = names.get(&name) {
                cx.report(
                    Diagnostic::new(E0207, format!("duplicate aggregate name `{name}`"))
                        .primary(name_value.span, "used again here")
                        .secondary(*first, "first used here"),
                );
                ok = false;
            }
            names.insert(name.clone(), name_value.span);
            aggregates.push(Aggregate { name, function, field });
        }
    }
    let timing = node.timing(cx, fields);
    let ttl_ms = node.ttl(cx, fields);
    if !ok {
        return None;
    }
    Some(Operator::WindowAggregate { key_by: key_by?, window: window?, aggregates, timing: timing?, ttl_ms: ttl_ms? })
}

fn window_spec(cx: &mut Cx, value: &Value) -> Option<WindowSpec> {
    let fields = Fields::new(cx, value, &["tumbling", "sliding", "session"], "`window`")?;
    let spec = match fields.members {
        [member] => member,
        _ => {
            cx.report(
                Diagnostic::new(E0103, "`window` must have exactly one of `tumbling`, `sliding` or `session`")
                    .primary(value.span, "expected one window kind")
                    .help("write e.g. `{\"tumbling\": \"5m\"}`"),
            );
            return None;
        }
    };
    match spec.key.node.as_str() {
        "tumbling" => Some(WindowSpec::Tumbling {
            size_ms: values::duration(cx, &spec.value, Zero::Forbidden, "the window size")?,
        }),
        "sliding" => {
            let sliding = Fields::new(cx, &spec.value, &["size", "slide"], "`sliding`")?;
            let size = sliding
                .require(cx, "size", "`sliding`", spec.value.span)
                .and_then(|value| values::duration(cx, value, Zero::Forbidden, "the window size"));
            let slide = sliding
                .require(cx, "slide", "`sliding`", spec.value.span)
                .and_then(|value| values::duration(cx, value, Zero::Forbidden, "the window slide"));
            Some(WindowSpec::Sliding { size_ms: size?, slide_ms: slide? })
        }
        _ => {
            let session = Fields::new(cx, &spec.value, &["gap"], "`session`")?;
            let gap = session
                .require(cx, "gap", "`session`", spec.value.span)
                .and_then(|value| values::duration(cx, value, Zero::Forbidden, "the session gap"));
            Some(WindowSpec::Session { gap_ms: gap? })
        }
    }
}

/// The span of a config key's value, or of the node type when the key is absent.
fn config_span(decl: &NodeDecl, key: &str) -> pulse_syntax::Span {
    decl.config
        .as_object()
        .and_then(|members| members.iter().rev().find(|member| member.key.node == key))
        .map_or(decl.kind.span, |member| member.value.span)
}

/// Time settings that are valid but almost certainly not what the author meant.
fn time_lints(cx: &mut Cx, decl: &NodeDecl, operator: &Operator) {
    let id = &decl.id.node;
    let format = values::format_duration;
    // The window an operator looks back over, which its state must outlive.
    let (window, window_key) = match operator {
        Operator::HasDoneEvent { since_ms: Some(since), .. } => (Some(*since), "since"),
        Operator::Segmentation { counters, .. } => (counters.iter().map(|counter| counter.window_ms).max(), "counters"),
        Operator::Capping { window_ms, .. } => (Some(*window_ms), "window"),
        Operator::Dedupe { within_ms, .. } => (Some(*within_ms), "within"),
        _ => (None, ""),
    };
    let ttl = match operator {
        Operator::HasDoneEvent { ttl_ms, .. }
        | Operator::Segmentation { ttl_ms, .. }
        | Operator::Capping { ttl_ms, .. }
        | Operator::Dedupe { ttl_ms, .. } => *ttl_ms,
        _ => None,
    };
    if let (Some(window), Some(ttl)) = (window, ttl) {
        if ttl < window {
            cx.report(
                Diagnostic::new(
                    W0004,
                    format!("the `ttl` of `{id}` ({}) is shorter than its window ({})", format(ttl), format(window)),
                )
                .primary(config_span(decl, "ttl"), "state expires before the window ends")
                .secondary(config_span(decl, window_key), "the window")
                .note("a key's state is cleared once a record comes `ttl` after its last write (G46)")
                .help(format!("raise `ttl` to at least `{}`", format(window))),
            );
        }
    }
    if let Operator::Capping { max: 0, .. } = operator {
        cx.report(
            Diagnostic::new(W0005, format!("`{id}` has `max: 0`, so every event goes to `capped`"))
                .primary(config_span(decl, "max"), "nothing can pass")
                .help("use a positive `max`, or remove the node"),
        );
    }
    if let Operator::WindowAggregate { window, timing, .. } = operator {
        let size = match window {
            pulse_ir::WindowSpec::Tumbling { size_ms } | pulse_ir::WindowSpec::Sliding { size_ms, .. } => *size_ms,
            pulse_ir::WindowSpec::Session { gap_ms } => *gap_ms,
        };
        if timing.allowed_lateness_ms > size {
            cx.report(
                Diagnostic::new(
                    W0006,
                    format!(
                        "`allowedLateness` of `{id}` ({}) is longer than its window ({})",
                        format(timing.allowed_lateness_ms),
                        format(size)
                    ),
                )
                .primary(config_span(decl, "allowedLateness"), "windows stay open this long after they fire")
                .note("every window's state is kept until the watermark passes its end plus `allowedLateness` (G44)")
                .help(format!("a lateness up to the window size (`{}`) keeps state bounded", format(size))),
            );
        }
    }
}

/// A Kafka topic name the broker accepts (E0105 otherwise).
fn check_topic(cx: &mut Cx, topic: &str, span: pulse_syntax::Span) {
    if let Some(problem) = values::topic_problem(topic) {
        let shown: String = topic.escape_debug().take(80).collect();
        cx.report(
            Diagnostic::new(pulse_syntax::codes::E0105, format!("invalid topic name `{shown}`")).primary(span, problem),
        );
    }
}
