//! `pulsec describe`: the topology a pipeline runs as, in the spirit of Kafka Streams'
//! `Topology::describe()`: sources with their groups and partitioning (keyed as the state needs,
//! or through a repartition topic), the internal topics and transactional ids of state that
//! follows partitions, the keyed operators with their keys and timers, and the sinks.

use pulse_ir::{Operator, Partitioning, Pipeline, TimeDomain};
use std::fmt::Write;

/// The consumer group a kafka-source joins unless `PULSE_KAFKA_GROUP_ID` says otherwise (the
/// runtime's rule).
pub fn default_group(pipeline: &Pipeline, node: &str, group_id: Option<&str>) -> String {
    group_id.map_or_else(|| format!("pulse-{}-{node}", pipeline.name), str::to_string)
}

pub fn describe(pipeline: &Pipeline) -> String {
    let mut out = String::new();
    let _ =
        writeln!(out, "pipeline `{}`: {} nodes, {} edges", pipeline.name, pipeline.nodes.len(), pipeline.edges.len());
    let sources: Vec<usize> = (0..pipeline.nodes.len()).filter(|&idx| pipeline.nodes[idx].op.is_source()).collect();
    let _ = writeln!(out, "\nsources");
    for &idx in &sources {
        let node = &pipeline.nodes[idx];
        let time = node.op.source_time().expect("sources have source time");
        match &node.op {
            Operator::FileSource { path, .. } => {
                let _ = writeln!(out, "  {}: file-source `{path}`", node.id);
            }
            Operator::KafkaSource { topics, brokers, group_id, .. } => {
                let group = default_group(pipeline, &node.id, group_id.as_deref());
                let topics: Vec<String> = topics.iter().map(|topic| format!("`{topic}`")).collect();
                let _ = writeln!(
                    out,
                    "  {}: kafka-source {}, group `{group}` (PULSE_KAFKA_GROUP_ID overrides), brokers {}",
                    node.id,
                    topics.join(", "),
                    brokers.as_deref().map_or("from PULSE_KAFKA_BROKERS".to_string(), |brokers| format!("`{brokers}`"))
                );
                let partitioning = pipeline.partitioning(idx);
                let _ = writeln!(out, "    partitioning: {partitioning}");
                let memory = pipeline.runtime.state_backend == Some(pulse_ir::StateBackend::Memory);
                if memory {
                    let _ = writeln!(out, "    state backend memory: state stays with each instance (no tasks)");
                } else if sources.len() == 1 {
                    let _ = writeln!(
                        out,
                        "    with --state-dir (RocksDB): one task per partition; changelog topic `{group}-changelog`, \
                         transactional ids `{group}-p<partition>`"
                    );
                    if let Partitioning::Repartition { .. } = partitioning {
                        let _ = writeln!(
                            out,
                            "    repartition topic `{group}-repartition` (same partition count), written by group \
                             `{group}-repartition` reading the source topics (transactional ids \
                             `{group}-repartition-<topic>-<partition>`), read by group `{group}`"
                        );
                    }
                } else {
                    let _ = writeln!(out, "    several sources: state stays with each instance (no tasks)");
                }
            }
            _ => {}
        }
        let event_time =
            time.event_time.as_ref().map_or("arrival time".to_string(), |path| format!("`{}`", path.dotted()));
        let _ = writeln!(
            out,
            "    event time {event_time}, max out-of-orderness {} ms{}",
            time.max_out_of_orderness_ms,
            time.idle_timeout_ms.map_or(String::new(), |ms| format!(", idle timeout {ms} ms"))
        );
    }
    let keyed: Vec<_> = pipeline.nodes.iter().filter(|node| node.op.key_by().is_some()).collect();
    if !keyed.is_empty() {
        let _ = writeln!(out, "\nkeyed state");
        for node in keyed {
            let key = node.op.key_by().expect("filtered").dotted();
            let timers = match node.op.timing().map(|timing| timing.domain) {
                Some(TimeDomain::Event) => ", event-time timers",
                Some(TimeDomain::Processing) => ", processing-time timers",
                None => "",
            };
            let _ = writeln!(out, "  {}: {} by `{key}`{timers}", node.id, node.op.type_name());
        }
    }
    let _ = writeln!(out, "\nsinks");
    for node in pipeline.nodes.iter().filter(|node| node.op.is_sink()) {
        let what = match &node.op {
            Operator::KafkaSink { topic, exactly_once, .. } => {
                format!("kafka-sink `{topic}`, {}", if *exactly_once { "exactly-once" } else { "at-least-once" })
            }
            Operator::FileSink { path } => format!("file-sink `{path}`"),
            other => other.type_name().to_string(),
        };
        let _ = writeln!(out, "  {}: {what}", node.id);
    }
    out
}
