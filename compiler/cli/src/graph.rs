//! `pulsec graph`: the pipeline as Graphviz DOT or a Mermaid flowchart.

use pulse_ir::Pipeline;

pub fn dot(pipeline: &Pipeline) -> String {
    let mut out =
        format!("digraph {:?} {{\n  rankdir=LR;\n  node [shape=box, fontname=\"Helvetica\"];\n", pipeline.name);
    for node in &pipeline.nodes {
        let shape = if node.op.is_source() {
            ", shape=invhouse"
        } else if node.op.is_sink() {
            ", shape=house"
        } else {
            ""
        };
        out.push_str(&format!("  {:?} [label=\"{}\\n{}\"{shape}];\n", node.id, node.id, node.op.type_name()));
    }
    for edge in &pipeline.edges {
        let (from, to) = (&pipeline.nodes[edge.from].id, &pipeline.nodes[edge.to].id);
        let mut labels = Vec::new();
        if edge.from_port != "out" {
            labels.push(edge.from_port.clone());
        }
        if edge.to_port != "in" {
            labels.push(format!("-> {}", edge.to_port));
        }
        let label = if labels.is_empty() { String::new() } else { format!(" [label={:?}]", labels.join(" ")) };
        out.push_str(&format!("  {from:?} -> {to:?}{label};\n"));
    }
    out.push_str("}\n");
    out
}

pub fn mermaid(pipeline: &Pipeline) -> String {
    let mut out = String::from("flowchart LR\n");
    for (idx, node) in pipeline.nodes.iter().enumerate() {
        let label = format!("{}<br/><i>{}</i>", node.id, node.op.type_name());
        let shaped = if node.op.is_source() {
            format!("[/\"{label}\"/]")
        } else if node.op.is_sink() {
            format!("[\\\"{label}\"\\]")
        } else {
            format!("[\"{label}\"]")
        };
        out.push_str(&format!("  n{idx}{shaped}\n"));
    }
    for edge in &pipeline.edges {
        let mut labels = Vec::new();
        if edge.from_port != "out" {
            labels.push(edge.from_port.clone());
        }
        if edge.to_port != "in" {
            labels.push(format!("to {}", edge.to_port));
        }
        if labels.is_empty() {
            out.push_str(&format!("  n{} --> n{}\n", edge.from, edge.to));
        } else {
            out.push_str(&format!("  n{} -->|{}| n{}\n", edge.from, labels.join(" "), edge.to));
        }
    }
    out
}
