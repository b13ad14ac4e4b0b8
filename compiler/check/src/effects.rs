//! Effect checking: which sinks are exactly-once in effect. Pulse replays the records after the
//! last checkpoint when it recovers, so a sink is exactly-once only when a replayed write changes
//! nothing: Kafka transactions, file outputs, idempotent Redis commands, and HTTP requests that
//! carry an `Idempotency-Key`. A Redis list push is not: every path that ends in one is named.

use crate::Cx;
use pulse_ir::{NodeIdx, Operator, Pipeline, RedisCommand};
use pulse_syntax::ast::Document;
use pulse_syntax::codes::W0003;
use pulse_syntax::Diagnostic;

pub fn check_effects(cx: &mut Cx, doc: &Document, pipeline: &Pipeline) {
    let exactly_once_claim =
        pipeline.nodes.iter().find(|node| matches!(node.op, Operator::KafkaSink { exactly_once: true, .. }));
    for (idx, node) in pipeline.nodes.iter().enumerate() {
        let Operator::RedisSink { command: command @ (RedisCommand::LPush | RedisCommand::RPush), .. } = &node.op
        else {
            continue;
        };
        let Some(decl) = doc.nodes.iter().find(|decl| decl.id.node == node.id) else { continue };
        let span = decl
            .config
            .as_object()
            .and_then(|members| members.iter().rev().find(|member| member.key.node == "command"))
            .map_or(decl.kind.span, |member| member.value.span);
        let name = if *command == RedisCommand::LPush { "LPUSH" } else { "RPUSH" };
        let path: Vec<&str> =
            path_from_source(pipeline, idx).iter().map(|idx| pipeline.nodes[*idx].id.as_str()).collect();
        let mut diagnostic =
            Diagnostic::new(W0003, format!("`{}` pushes to a Redis list, which is at-least-once", node.id))
                .primary(span, format!("a replay after a crash can {name} an element twice"))
                .note(format!("path: {}", path.join(" -> ")))
                .note("SET, HSET, SADD and ZADD are idempotent, so their replays are exactly-once in effect");
        if let Some(claim) = exactly_once_claim {
            diagnostic = diagnostic.note(format!(
                "the pipeline claims exactly-once delivery at kafka-sink `{}`; this path does not have it",
                claim.id
            ));
        }
        diagnostic = diagnostic
            .help("use a sorted set (ZADD with the event time as score) or a hash, which replay idempotently");
        cx.report(diagnostic);
    }
}

/// One path from a source to `target`, following the first input edge backwards.
fn path_from_source(pipeline: &Pipeline, target: NodeIdx) -> Vec<NodeIdx> {
    let mut path = vec![target];
    let mut current = target;
    while let Some(edge) = pipeline.edges_into(current).next() {
        if path.contains(&edge.from) {
            break;
        }
        path.push(edge.from);
        current = edge.from;
    }
    path.reverse();
    path
}
