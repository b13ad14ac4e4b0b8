//! `pulsec graph`: the pipeline as Graphviz DOT, a Mermaid flowchart, or an SVG picture laid
//! out in process by `layout-rs` (no Graphviz installation needed).

use layout::backends::svg::SVGWriter;
use layout::core::base::Orientation;
use layout::core::color::Color;
use layout::core::style::StyleAttr;
use layout::std_shapes::render::get_shape_size;
use layout::std_shapes::shapes::{Arrow, Element, ShapeKind};
use layout::topo::layout::VisualGraph;
use pulse_ir::{Edge, Pipeline};

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
        let label = edge_label(edge);
        let label = if label.is_empty() { String::new() } else { format!(" [label={label:?}]") };
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

/// The text on an edge: its non-default ports (`high_intent`, `-> events`), as in `dot`.
fn edge_label(edge: &Edge) -> String {
    let mut labels = Vec::new();
    if edge.from_port != "out" {
        labels.push(edge.from_port.clone());
    }
    if edge.to_port != "in" {
        labels.push(format!("-> {}", edge.to_port));
    }
    labels.join(" ")
}

/// Text for an SVG attribute value.
pub fn attribute(text: &str) -> String {
    text.replace('&', "&amp;").replace('"', "&quot;").replace('<', "&lt;").replace('>', "&gt;")
}

/// One font size everywhere: the SVG writer emits one CSS class per size from a hash map, so a
/// single size keeps the output byte-for-byte deterministic.
const FONT_SIZE: usize = 14;

/// The pipeline as an SVG picture, left to right like `dot`: sources green, sinks blue,
/// stateful operators yellow, other operators white, each box labelled with its node id and
/// operator type; edges carry their non-default port names. Every node is a `<g>` with
/// `class="node source|sink|stateful|operator"` and `id="node-<id>"`, every edge one `<path>`.
pub fn svg(pipeline: &Pipeline) -> String {
    let nodes: Vec<NodeBox> = pipeline
        .nodes
        .iter()
        .map(|node| {
            let kind = if node.op.is_source() {
                Kind::Source
            } else if node.op.is_sink() {
                Kind::Sink
            } else if pulse_codegen::state_layout(&node.op).is_some() {
                Kind::Stateful
            } else {
                Kind::Operator
            };
            NodeBox { id: node.id.clone(), label: format!("{}\n{}", node.id, node.op.type_name()), kind }
        })
        .collect();
    let edges: Vec<EdgeLine> = pipeline
        .edges
        .iter()
        .map(|edge| EdgeLine { from: edge.from, to: edge.to, label: edge_label(edge), width: 1 })
        .collect();
    draw(&nodes, &edges)
}

/// What a node box is: its colour and corners.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Source,
    Sink,
    Stateful,
    Operator,
}

/// A node box: `id` names it in the SVG (`id="node-<id>"`), `label` is its text (lines split
/// by `\n`).
pub struct NodeBox {
    pub id: String,
    pub label: String,
    pub kind: Kind,
}

/// An edge between two boxes (indexes into the boxes), with its text and line width.
pub struct EdgeLine {
    pub from: usize,
    pub to: usize,
    pub label: String,
    pub width: usize,
}

/// Lays out and draws boxes and lines left to right. Text is escaped by the SVG writer,
/// attribute values here.
pub fn draw(nodes: &[NodeBox], edges: &[EdgeLine]) -> String {
    let orientation = Orientation::LeftToRight;
    let mut graph = VisualGraph::new(orientation);
    let handles: Vec<_> = nodes
        .iter()
        .map(|node| {
            let (kind, fill, rounded) = match node.kind {
                Kind::Source => ("source", "#d8f0d2", 12),
                Kind::Sink => ("sink", "#d6e4f7", 12),
                Kind::Stateful => ("stateful", "#fbefc4", 0),
                Kind::Operator => ("operator", "#ffffff", 0),
            };
            let shape = ShapeKind::new_box(&node.label);
            let look = StyleAttr::new(Color::fast("black"), 1, Some(Color::fast(fill)), rounded, FONT_SIZE);
            let size = get_shape_size(orientation, &shape, FONT_SIZE, false);
            let properties = format!("class=\"node {kind}\" id=\"node-{}\"", attribute(&node.id));
            graph.add_node(Element::create_with_properties(shape, look, orientation, size, properties))
        })
        .collect();
    for edge in edges {
        let mut arrow = Arrow::simple(&edge.label);
        arrow.look = StyleAttr::new(Color::fast("#444444"), edge.width, None, 0, FONT_SIZE);
        arrow.properties = Some(format!(
            "class=\"edge\" data-from=\"{}\" data-to=\"{}\"",
            attribute(&nodes[edge.from].id),
            attribute(&nodes[edge.to].id)
        ));
        graph.add_edge(arrow, handles[edge.from], handles[edge.to]);
    }
    let mut writer = SVGWriter::new();
    graph.do_it(false, false, false, &mut writer);
    let mut text = writer.finalize();
    text.push('\n');
    text
}
