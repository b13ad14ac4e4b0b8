//! How a kafka-source's partitions relate to the keys of the state after it.
//!
//! With state following partitions (Kafka Streams' tasks), every partition owns the state of the
//! keys whose records it carries, so all records of a key must arrive on one partition. That
//! holds when the topic is keyed by the field the keyed operators key by; the source says so
//! with `keyBy`. Otherwise the records are re-keyed through a repartition topic first, as Kafka
//! Streams does after `selectKey`. Re-keying at the source is only possible when the key field
//! reaches every keyed operator as the source read it (no map rewrites it, no window replaces
//! the record) and every keyed operator keys by the same field.

use std::fmt;

use crate::{NodeIdx, Operator, Path, Pipeline};

/// The partitioning a kafka-source's records need.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Partitioning {
    /// No keyed operator follows the source: any partitioning serves.
    Stateless,
    /// The source declares `keyBy` with the key of every keyed operator after it.
    KeyedBy(Path),
    /// The records go through a repartition topic keyed by this field first.
    Repartition { by: Path, declared: Option<Path> },
    /// No single re-keying at the source serves every keyed operator.
    Unpartitionable(String),
}

impl fmt::Display for Partitioning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Partitioning::Stateless => write!(f, "no keyed state follows the source; any partitioning serves"),
            Partitioning::KeyedBy(path) => {
                write!(f, "the topic is keyed by `{}`, the key of every keyed operator", path.dotted())
            }
            Partitioning::Repartition { by, declared: None } => write!(
                f,
                "re-keyed by `{by}` through a repartition topic (the source does not declare `keyBy`; \
                 declare `keyBy: {by}` when producers key the records by it)",
                by = by.dotted()
            ),
            Partitioning::Repartition { by, declared: Some(declared) } => write!(
                f,
                "re-keyed by `{}` through a repartition topic (the topic is keyed by `{}`)",
                by.dotted(),
                declared.dotted()
            ),
            Partitioning::Unpartitionable(reason) => write!(f, "{reason}"),
        }
    }
}

impl Pipeline {
    /// The partitioning the records of source `source` need (see the module docs).
    pub fn partitioning(&self, source: NodeIdx) -> Partitioning {
        let declared = match &self.nodes[source].op {
            Operator::KafkaSource { key_by, .. } => key_by.clone(),
            _ => None,
        };
        let downstream = self.reachable_from(source);
        let mut keys: Vec<(Path, Vec<&str>)> = Vec::new();
        for &node in &downstream {
            let Some(key) = self.nodes[node].op.key_by() else { continue };
            // Every node on a path from the source to this one passes the key field unchanged.
            let upstream = self.reaching(node);
            if let Some(&changer) = downstream
                .iter()
                .find(|&&other| other != node && upstream.contains(&other) && rewrites(&self.nodes[other].op, key))
            {
                return Partitioning::Unpartitionable(format!(
                    "`{}` keys by `{}`, which `{}` changes after the source, so the source cannot be re-keyed for it",
                    self.nodes[node].id,
                    key.dotted(),
                    self.nodes[changer].id
                ));
            }
            match keys.iter_mut().find(|(known, _)| known == key) {
                Some((_, nodes)) => nodes.push(&self.nodes[node].id),
                None => keys.push((key.clone(), vec![&self.nodes[node].id])),
            }
        }
        match keys.as_slice() {
            [] => Partitioning::Stateless,
            [(key, _)] if declared.as_ref() == Some(key) => Partitioning::KeyedBy(key.clone()),
            [(key, _)] => Partitioning::Repartition { by: key.clone(), declared },
            _ => {
                let listed: Vec<String> = keys
                    .iter()
                    .map(|(key, nodes)| {
                        let nodes: Vec<String> = nodes.iter().map(|node| format!("`{node}`")).collect();
                        format!("`{}` ({})", key.dotted(), nodes.join(", "))
                    })
                    .collect();
                Partitioning::Unpartitionable(format!(
                    "state is keyed by {}: one partitioning cannot serve them all",
                    listed.join(" and ")
                ))
            }
        }
    }

    /// Nodes reachable from `from` along edges, `from` excluded, in index order.
    fn reachable_from(&self, from: NodeIdx) -> Vec<NodeIdx> {
        self.closure(from, |edge| (edge.from, edge.to))
    }

    /// Nodes from which `to` is reachable, `to` excluded, in index order.
    fn reaching(&self, to: NodeIdx) -> Vec<NodeIdx> {
        self.closure(to, |edge| (edge.to, edge.from))
    }

    fn closure(&self, start: NodeIdx, step: impl Fn(&crate::Edge) -> (NodeIdx, NodeIdx)) -> Vec<NodeIdx> {
        let mut seen = vec![false; self.nodes.len()];
        let mut stack = vec![start];
        while let Some(node) = stack.pop() {
            for edge in &self.edges {
                let (here, next) = step(edge);
                if here == node && !seen[next] {
                    seen[next] = true;
                    stack.push(next);
                }
            }
        }
        seen[start] = false;
        (0..self.nodes.len()).filter(|&node| seen[node]).collect()
    }
}

/// Whether `op` can hand on a record whose value at `key` differs from the one it received.
fn rewrites(op: &Operator, key: &Path) -> bool {
    let overlaps = |path: &Path| path.0.starts_with(&key.0) || key.0.starts_with(&path.0);
    match op {
        Operator::Map { keep, remove, set } => {
            (!keep.is_empty() && !keep.iter().any(|kept| key.0.starts_with(&kept.0)))
                || remove.iter().any(overlaps)
                || set.iter().any(|(path, _)| overlaps(path))
        }
        Operator::Segmentation { .. } => matches!(key.0.first().map(String::as_str), Some("counters" | "segments")),
        // Window results and HTTP responses are new records.
        Operator::WindowAggregate { .. } | Operator::ApiSink { .. } => true,
        _ => false,
    }
}
