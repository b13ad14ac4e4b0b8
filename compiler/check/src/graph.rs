//! The graph: node ids and types, edges with resolved ports, and the rules of §1 and G1–G2
//! (unknown nodes and ports, duplicate edges, nodes without input, edges into sources, cycles).

use crate::registry::{self, NodeType};
use crate::values::{self, list};
use crate::Cx;
use pulse_ir::{Edge, NodeIdx};
use pulse_syntax::ast::{Document, EdgeDecl, NodeDecl, ValueKind};
use pulse_syntax::codes::{
    E0104, E0105, E0201, E0202, E0203, E0204, E0207, E0209, E0401, E0402, E0403, E0404, E0405, E0407, W0002,
};
use pulse_syntax::diagnostic::did_you_mean;
use pulse_syntax::{Diagnostic, Spanned};
use std::collections::{BTreeMap, BTreeSet};

pub struct Graph {
    /// Per node (declaration order): its type, when known.
    pub types: Vec<Option<&'static NodeType>>,
    /// Per node: its output port names (routes for splitters).
    pub outputs: Vec<Vec<String>>,
    /// Per node: what flows into it from nodes that did not parse (their edges are not in `edges`).
    pub unparsed_input: Vec<UnparsedInput>,
    pub edges: Vec<Edge>,
    /// Topological order with ties by declaration order; declaration order if there is a cycle.
    pub topo_order: Vec<NodeIdx>,
    /// `Some(())` when the graph has no structural error.
    pub resolved: Option<()>,
}

/// What flows into a node over edges from nodes declared in items that did not parse.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub enum UnparsedInput {
    #[default]
    Nothing,
    /// The events of a source: whatever its configuration, a source's output is the event schema.
    Events,
    /// Records of an unknown type: the node's input is `any`, so nothing downstream cascades.
    Unknown,
}

pub fn check_graph(cx: &mut Cx, doc: &Document) -> Graph {
    let errors_before = cx.diags.items.iter().filter(|diagnostic| diagnostic.is_error()).count();
    let mut ids: BTreeMap<&str, NodeIdx> = BTreeMap::new();
    for (idx, node) in doc.nodes.iter().enumerate() {
        if !values::is_node_identifier(&node.id.node) {
            cx.report(Diagnostic::new(E0105, format!("invalid node id `{}`", node.id.node)).primary(
                node.id.span,
                if node.id.node.starts_with('_') {
                    "ids starting with `_` are reserved for the runtime's own files (`_dead_letter.jsonl`)"
                } else {
                    "node ids may use only letters, digits, `_` and `-`"
                },
            ));
        }
        if let Some(&first) = ids.get(node.id.node.as_str()) {
            cx.report(
                Diagnostic::new(E0201, format!("duplicate node id `{}`", node.id.node))
                    .primary(node.id.span, "declared again here")
                    .secondary(doc.nodes[first].id.span, "first declared here")
                    .help("give each node a unique id; the id also names the node's state"),
            );
        } else {
            ids.insert(node.id.node.as_str(), idx);
        }
    }
    let types: Vec<Option<&'static NodeType>> = doc.nodes.iter().map(|node| node_type(cx, node)).collect();
    let outputs: Vec<Vec<String>> =
        doc.nodes.iter().zip(&types).map(|(node, node_type)| output_ports(cx, node, *node_type)).collect();

    let mut unparsed_input = vec![UnparsedInput::Nothing; doc.nodes.len()];
    for decl in &doc.edges {
        let (Some(from), Some(&to)) = (doc.unparsed_node(&decl.from.node), ids.get(decl.to.node.as_str())) else {
            continue;
        };
        if decl.to_port.as_ref().is_some_and(|port| port.node == "events") {
            continue;
        }
        let is_source = from.kind.as_deref().and_then(registry::lookup).is_some_and(NodeType::is_source);
        let input = if is_source && decl.from_port.is_none() { UnparsedInput::Events } else { UnparsedInput::Unknown };
        unparsed_input[to] = unparsed_input[to].max(input);
    }
    let mut edges = Vec::new();
    let mut seen: BTreeMap<(NodeIdx, String, NodeIdx, String), &EdgeDecl> = BTreeMap::new();
    for decl in &doc.edges {
        // A node that did not parse is declared, of unknown type: its edges are not checked.
        if doc.unparsed_node(&decl.from.node).is_some() || doc.unparsed_node(&decl.to.node).is_some() {
            continue;
        }
        let Some(edge) = resolve_edge(cx, doc, &ids, &types, &outputs, decl) else { continue };
        let identity = (edge.from, edge.from_port.clone(), edge.to, edge.to_port.clone());
        if let Some(first) = seen.get(&identity) {
            cx.report(
                Diagnostic::new(E0404, "duplicate edge")
                    .primary(decl.span, "this edge repeats an earlier one")
                    .secondary(first.span, "first written here")
                    .help("remove the repeated edge; every edge already carries each record once"),
            );
            continue;
        }
        seen.insert(identity, decl);
        edges.push(edge);
    }

    let mut has_source = false;
    for (idx, node) in doc.nodes.iter().enumerate() {
        let Some(node_type) = types[idx] else { continue };
        if node_type.is_source() {
            has_source = true;
            continue;
        }
        if !values::is_node_identifier(&node.id.node) {
            // Reported above; edges cannot name it, so its missing input is no news.
            continue;
        }
        if doc.unparsed_mentions(&node.id.node) {
            // Its edges may be in an item that did not parse.
            continue;
        }
        // An edge that names this node but failed to resolve was already reported.
        let declared_input = doc.edges.iter().any(|decl| decl.to.node == node.id.node);
        if !edges.iter().any(|edge| edge.to == idx) && !declared_input {
            let first_source = doc
                .nodes
                .iter()
                .zip(&types)
                .find(|(_, node_type)| node_type.is_some_and(NodeType::is_source))
                .map_or("source", |(source, _)| source.id.node.as_str());
            cx.report(
                Diagnostic::new(E0402, format!("node `{}` has no input", node.id.node))
                    .primary(node.id.span, "nothing flows into this node")
                    .help(format!("add an edge such as `{first_source} -> {}`", node.id.node)),
            );
        }
        let connected = doc.edges.iter().any(|decl| decl.from.node == node.id.node);
        if !connected && !node_type.outputs.is_empty() && !node_type.dynamic_outputs && node_type.name != "api-sink" {
            cx.report(
                Diagnostic::new(W0002, format!("the output of `{}` is not connected", node.id.node))
                    .primary(node.id.span, "its records are dropped and counted")
                    .help("connect it to a sink, or remove the node"),
            );
        }
    }
    if !has_source && !doc.nodes.is_empty() && !doc.is_partial() {
        cx.report(
            Diagnostic::new(E0407, "the pipeline has no source")
                .primary(doc.nodes[0].id.span, "no node reads events")
                .help("add a `kafka-source` or `file-source` node"),
        );
    }

    let topo_order = match topological_order(doc.nodes.len(), &edges) {
        Ok(order) => order,
        Err(cycle) => {
            report_cycle(cx, doc, &edges, &cycle);
            (0..doc.nodes.len()).collect()
        }
    };
    let errors_after = cx.diags.items.iter().filter(|diagnostic| diagnostic.is_error()).count();
    let resolved = (errors_after == errors_before).then_some(());
    Graph { types, outputs, unparsed_input, edges, topo_order, resolved }
}

fn node_type(cx: &mut Cx, node: &NodeDecl) -> Option<&'static NodeType> {
    let found = registry::lookup(&node.kind.node);
    if found.is_none() {
        let names: Vec<&str> = registry::NODE_TYPES.iter().map(|node_type| node_type.name).collect();
        let mut diagnostic = Diagnostic::new(E0104, format!("unknown node type `{}`", node.kind.node))
            .primary(node.kind.span, "no such node type");
        diagnostic = match did_you_mean(&node.kind.node, names.iter().copied()) {
            Some(suggestion) => diagnostic.did_you_mean(node.kind.span, suggestion),
            None => diagnostic.note(format!("node types: {}", list(&names))),
        };
        cx.report(diagnostic);
    }
    found
}

/// A splitter's outputs are its route names plus `default` (G37); others come from the registry.
fn output_ports(cx: &mut Cx, node: &NodeDecl, node_type: Option<&NodeType>) -> Vec<String> {
    let Some(node_type) = node_type else { return Vec::new() };
    if !node_type.dynamic_outputs {
        return node_type.outputs.iter().map(|port| port.to_string()).collect();
    }
    let mut ports: Vec<String> = Vec::new();
    let mut spans: BTreeMap<String, pulse_syntax::Span> = BTreeMap::new();
    let routes =
        node.config.as_object().and_then(|members| members.iter().rev().find(|member| member.key.node == "routes"));
    if let Some(ValueKind::Array(routes)) = routes.map(|member| &member.value.kind) {
        for route in routes {
            let name = route
                .as_object()
                .and_then(|members| members.iter().rev().find(|member| member.key.node == "name"))
                .map(|member| &member.value);
            let Some(name_value) = name else { continue };
            let Some(name) = name_value.as_str() else { continue };
            if name == "default" {
                cx.report(
                    Diagnostic::new(E0207, "a route may not be named `default`")
                        .primary(name_value.span, "reserved name")
                        .note("`default` is the output for events that match no route")
                        .help("choose another route name"),
                );
                continue;
            }
            if !values::is_node_identifier(name) {
                cx.report(
                    Diagnostic::new(E0105, format!("invalid route name `{name}`"))
                        .primary(name_value.span, "route names may use only letters, digits, `_` and `-`"),
                );
                continue;
            }
            if let Some(first) = spans.get(name) {
                cx.report(
                    Diagnostic::new(E0207, format!("duplicate route name `{name}`"))
                        .primary(name_value.span, "used again here")
                        .secondary(*first, "first used here"),
                );
                continue;
            }
            spans.insert(name.to_string(), name_value.span);
            ports.push(name.to_string());
        }
    }
    ports.push("default".to_string());
    ports
}

fn resolve_edge(
    cx: &mut Cx,
    doc: &Document,
    ids: &BTreeMap<&str, NodeIdx>,
    types: &[Option<&'static NodeType>],
    outputs: &[Vec<String>],
    decl: &EdgeDecl,
) -> Option<Edge> {
    let from = lookup_node(cx, ids, &decl.from);
    let to = lookup_node(cx, ids, &decl.to);
    let (from, to) = (from?, to?);
    let (from_type, to_type) = (types[from]?, types[to]?);
    let from_id = &doc.nodes[from].id.node;
    let to_id = &doc.nodes[to].id.node;

    let from_ports = &outputs[from];
    let from_port = match &decl.from_port {
        _ if from_ports.is_empty() => {
            cx.report(
                Diagnostic::new(E0405, format!("`{from_id}` is a `{}` and has no outputs", from_type.name))
                    .primary(decl.from.span, "edges cannot leave this node")
                    .help("sinks end a flow; connect the node that feeds this sink instead"),
            );
            return None;
        }
        Some(port) => {
            if !from_ports.contains(&port.node) {
                let mut diagnostic = Diagnostic::new(E0203, format!("`{from_id}` has no output `{}`", port.node))
                    .primary(port.span, "unknown output")
                    .note(format!("`{from_id}` ({}) has outputs {}", from_type.name, list_owned(from_ports)));
                if let Some(suggestion) = did_you_mean(&port.node, from_ports.iter().map(String::as_str)) {
                    diagnostic = diagnostic
                        .help(format!("did you mean `{from_id}.{suggestion}`?"))
                        .suggest(port.span, suggestion);
                }
                cx.report(diagnostic);
                return None;
            }
            port.node.clone()
        }
        None => match from_type.default_output() {
            Some(port) => port.to_string(),
            None => {
                let mut diagnostic =
                    Diagnostic::new(E0209, format!("the edge must name which output of `{from_id}` it leaves"))
                        .primary(decl.from.span, format!("`{}` has several outputs", from_type.name))
                        .note(format!("outputs: {}", list_owned(from_ports)))
                        .help(format!("write `{from_id}.{} -> {to_id}`", from_ports[0]));
                // In the middle of a chain a port would be ambiguous: the edit is to split it.
                if !doc.edges.iter().any(|other| other.to.span == decl.from.span) {
                    diagnostic = diagnostic.suggest(decl.from.span, format!("{from_id}.{}", from_ports[0]));
                }
                cx.report(diagnostic);
                return None;
            }
        },
    };

    if to_type.is_source() {
        cx.report(
            Diagnostic::new(E0403, format!("`{to_id}` is a source and takes no input"))
                .primary(decl.to.span, "edge into a source")
                .help("sources read from outside the pipeline; point the edge at another node"),
        );
        return None;
    }
    let to_port = match &decl.to_port {
        Some(port) => {
            if !to_type.inputs.contains(&port.node.as_str()) {
                let mut diagnostic = Diagnostic::new(E0204, format!("`{to_id}` has no input `{}`", port.node))
                    .primary(port.span, "unknown input")
                    .note(format!("`{to_id}` ({}) has inputs {}", to_type.name, list(to_type.inputs)));
                if let Some(suggestion) = did_you_mean(&port.node, to_type.inputs.iter().copied()) {
                    diagnostic =
                        diagnostic.help(format!("did you mean `{to_id}.{suggestion}`?")).suggest(port.span, suggestion);
                }
                cx.report(diagnostic);
                return None;
            }
            port.node.clone()
        }
        None => match to_type.default_input() {
            Some(port) => port.to_string(),
            None => {
                let mut diagnostic =
                    Diagnostic::new(E0209, format!("the edge must name which input of `{to_id}` it enters"))
                        .primary(decl.to.span, format!("`{}` has several inputs", to_type.name))
                        .note(format!("inputs: {}", list(to_type.inputs)))
                        .help(format!("write `{} -> {to_id}.{}`", decl.from.node, to_type.inputs[0]));
                if !doc.edges.iter().any(|other| other.from.span == decl.to.span) {
                    diagnostic = diagnostic.suggest(decl.to.span, format!("{to_id}.{}", to_type.inputs[0]));
                }
                cx.report(diagnostic);
                return None;
            }
        },
    };
    Some(Edge { from, from_port, to, to_port })
}

fn list_owned(items: &[String]) -> String {
    items.iter().map(|item| format!("`{item}`")).collect::<Vec<_>>().join(", ")
}

fn lookup_node(cx: &mut Cx, ids: &BTreeMap<&str, NodeIdx>, name: &Spanned<String>) -> Option<NodeIdx> {
    let found = ids.get(name.node.as_str()).copied();
    if found.is_none() {
        let mut diagnostic =
            Diagnostic::new(E0202, format!("unknown node `{}`", name.node)).primary(name.span, "no node has this id");
        if let Some(suggestion) = did_you_mean(&name.node, ids.keys().copied()) {
            diagnostic = diagnostic.did_you_mean(name.span, suggestion);
        }
        cx.report(diagnostic);
    }
    found
}

/// Kahn's algorithm, always taking the lowest declaration index among ready nodes (G28).
/// On a cycle, returns the nodes that could not be ordered.
pub fn topological_order(n_nodes: usize, edges: &[Edge]) -> Result<Vec<NodeIdx>, Vec<NodeIdx>> {
    let mut in_degree = vec![0usize; n_nodes];
    for edge in edges {
        in_degree[edge.to] += 1;
    }
    let mut ready: BTreeSet<NodeIdx> = (0..n_nodes).filter(|idx| in_degree[*idx] == 0).collect();
    let mut order = Vec::with_capacity(n_nodes);
    while let Some(idx) = ready.pop_first() {
        order.push(idx);
        for edge in edges.iter().filter(|edge| edge.from == idx) {
            in_degree[edge.to] -= 1;
            if in_degree[edge.to] == 0 {
                ready.insert(edge.to);
            }
        }
    }
    if order.len() == n_nodes {
        Ok(order)
    } else {
        Err((0..n_nodes).filter(|idx| in_degree[*idx] > 0).collect())
    }
}

fn report_cycle(cx: &mut Cx, doc: &Document, edges: &[Edge], stuck: &[NodeIdx]) {
    // Nodes downstream of a cycle are stuck too; prune those with no edge back into the stuck
    // set until only nodes on (or between) cycles remain. From any of them, following edges
    // inside the set must come back to a node already seen.
    let mut on_cycles: BTreeSet<NodeIdx> = stuck.iter().copied().collect();
    loop {
        let dead_ends: Vec<NodeIdx> = on_cycles
            .iter()
            .copied()
            .filter(|idx| !edges.iter().any(|edge| edge.from == *idx && on_cycles.contains(&edge.to)))
            .collect();
        if dead_ends.is_empty() {
            break;
        }
        for idx in dead_ends {
            on_cycles.remove(&idx);
        }
    }
    let stuck: Vec<NodeIdx> = on_cycles.into_iter().collect();
    let Some(&start) = stuck.first() else { return };
    let mut path = vec![start];
    let mut current = start;
    loop {
        let Some(next) = edges.iter().find(|edge| edge.from == current && stuck.contains(&edge.to)).map(|edge| edge.to)
        else {
            return;
        };
        if let Some(pos) = path.iter().position(|idx| *idx == next) {
            let cycle: Vec<NodeIdx> = path[pos..].to_vec();
            let names: Vec<&str> = cycle.iter().map(|idx| doc.nodes[*idx].id.node.as_str()).collect();
            let closing = doc
                .edges
                .iter()
                .find(|decl| decl.from.node == doc.nodes[current].id.node && decl.to.node == doc.nodes[next].id.node);
            let mut diagnostic = Diagnostic::new(E0401, "the pipeline graph has a cycle")
                .note(format!("cycle: {} -> {}", names.join(" -> "), names[0]))
                .help("pipelines are acyclic; remove one of these edges");
            diagnostic = match closing {
                Some(decl) => diagnostic.primary(decl.span, "this edge closes the cycle"),
                None => diagnostic.primary(doc.nodes[next].id.span, "this node is part of a cycle"),
            };
            for idx in &cycle {
                diagnostic = diagnostic.secondary(doc.nodes[*idx].id.span, "in the cycle");
            }
            cx.report(diagnostic);
            return;
        }
        path.push(next);
        current = next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edge(from: usize, to: usize) -> Edge {
        Edge { from, from_port: "out".into(), to, to_port: "in".into() }
    }

    #[test]
    fn topological_order_breaks_ties_by_declaration() {
        assert_eq!(topological_order(4, &[edge(2, 0), edge(1, 3)]), Ok(vec![1, 2, 0, 3]));
        assert_eq!(topological_order(3, &[edge(0, 1), edge(1, 2), edge(2, 1)]), Err(vec![1, 2]));
    }
}
