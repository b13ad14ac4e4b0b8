//! `pulsec graph`: the pipeline as Graphviz DOT, a Mermaid flowchart, or an SVG picture laid
//! out in process by `layout-rs` (no Graphviz installation needed). Past `MAX_LAID_OUT_NODES`
//! boxes the SVG uses a plain layered layout instead (see `draw_layered`), because the
//! crossing reduction of `layout-rs` grows about cubically with the graph.

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
    if nodes.len() > MAX_LAID_OUT_NODES {
        return draw_layered(nodes, edges);
    }
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

/// The largest graph laid out by `layout-rs`. Its layout took 0.4 s for 250 nodes and 18 s for
/// 1,000 (debug build); real pipelines have tens of nodes.
pub const MAX_LAID_OUT_NODES: usize = 300;

const COLUMN_GAP: usize = 80;
const ROW_HEIGHT: usize = 60;
const CHAR_WIDTH: usize = 8;
const BOX_HEIGHT: usize = 40;

/// A layout in linear time for graphs too large for `layout-rs`: each node sits in the column
/// of its longest path from a source (Kahn's algorithm; nodes on a cycle, which a checked
/// pipeline has not, go to column 0), in input order within the column, and edges are straight
/// lines. There is no crossing reduction; the picture says so at its top.
pub fn draw_layered(nodes: &[NodeBox], edges: &[EdgeLine]) -> String {
    let n_nodes = nodes.len();
    let mut outgoing: Vec<Vec<usize>> = vec![Vec::new(); n_nodes];
    let mut n_incoming = vec![0usize; n_nodes];
    for edge in edges.iter().filter(|edge| edge.from < n_nodes && edge.to < n_nodes) {
        outgoing[edge.from].push(edge.to);
        n_incoming[edge.to] += 1;
    }
    let mut column = vec![0usize; n_nodes];
    let mut ready: Vec<usize> = (0..n_nodes).filter(|&idx| n_incoming[idx] == 0).collect();
    while let Some(idx) = ready.pop() {
        for &next in &outgoing[idx] {
            column[next] = column[next].max(column[idx] + 1);
            n_incoming[next] -= 1;
            if n_incoming[next] == 0 {
                ready.push(next);
            }
        }
    }
    let n_columns = column.iter().max().map_or(0, |max| max + 1);
    let box_width =
        |node: &NodeBox| node.label.lines().map(|line| line.chars().count()).max().unwrap_or(0) * CHAR_WIDTH + 20;
    let mut column_width = vec![0usize; n_columns];
    let mut row = vec![0usize; n_nodes];
    let mut n_rows = vec![0usize; n_columns];
    for (idx, node) in nodes.iter().enumerate() {
        column_width[column[idx]] = column_width[column[idx]].max(box_width(node));
        row[idx] = n_rows[column[idx]];
        n_rows[column[idx]] += 1;
    }
    let mut column_x = vec![COLUMN_GAP / 2; n_columns];
    for idx in 1..n_columns {
        column_x[idx] = column_x[idx - 1] + column_width[idx - 1] + COLUMN_GAP;
    }
    let top = 40;
    let position = |idx: usize| (column_x[column[idx]], top + row[idx] * ROW_HEIGHT);
    let width = column_x.last().zip(column_width.last()).map_or(400, |(x, w)| x + w + COLUMN_GAP / 2).max(400);
    let height = top + n_rows.iter().max().copied().unwrap_or(0) * ROW_HEIGHT + 20;

    let mut out = String::new();
    out.push_str(&format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" \
         height=\"{height}\" viewBox=\"0 0 {width} {height}\">\n"
    ));
    let note = format!(
        "simplified layout: {n_nodes} nodes is more than {MAX_LAID_OUT_NODES}, so columns follow the longest path and \
         crossings are not reduced"
    );
    out.push_str(&format!("<!-- {note} -->\n"));
    out.push_str(&format!(
        "<text class=\"layout-note\" x=\"10\" y=\"20\" font-family=\"sans-serif\" font-size=\"{FONT_SIZE}\">{note}</text>\n"
    ));
    for edge in edges.iter().filter(|edge| edge.from < n_nodes && edge.to < n_nodes) {
        let (from_x, from_y) = position(edge.from);
        let (to_x, to_y) = position(edge.to);
        let (x1, y1) = (from_x + box_width(&nodes[edge.from]), from_y + BOX_HEIGHT / 2);
        let (x2, y2) = (to_x, to_y + BOX_HEIGHT / 2);
        out.push_str(&format!(
            "<g class=\"edge\" data-from=\"{}\" data-to=\"{}\"><path d=\"M {x1} {y1} L {x2} {y2}\" stroke=\"#444444\" \
             stroke-width=\"{}\" fill=\"none\"/>",
            attribute(&nodes[edge.from].id),
            attribute(&nodes[edge.to].id),
            edge.width
        ));
        if !edge.label.is_empty() {
            out.push_str(&format!(
                "<text x=\"{}\" y=\"{}\" font-family=\"sans-serif\" font-size=\"{}\"><tspan>{}</tspan></text>",
                (x1 + x2) / 2,
                (y1 + y2) / 2 - 4,
                FONT_SIZE - 2,
                attribute(&edge.label)
            ));
        }
        out.push_str("</g>\n");
    }
    for (idx, node) in nodes.iter().enumerate() {
        let (x, y) = position(idx);
        let (kind, fill, rounded) = match node.kind {
            Kind::Source => ("source", "#d8f0d2", 12),
            Kind::Sink => ("sink", "#d6e4f7", 12),
            Kind::Stateful => ("stateful", "#fbefc4", 0),
            Kind::Operator => ("operator", "#ffffff", 0),
        };
        out.push_str(&format!(
            "<g class=\"node {kind}\" id=\"node-{}\"><rect x=\"{x}\" y=\"{y}\" width=\"{}\" height=\"{BOX_HEIGHT}\" \
             rx=\"{rounded}\" fill=\"{fill}\" stroke=\"black\"/><text x=\"{}\" y=\"{}\" font-family=\"sans-serif\" \
             font-size=\"{}\">",
            attribute(&node.id),
            box_width(node),
            x + 10,
            y + 16,
            FONT_SIZE - 2
        ));
        for (line_idx, line) in node.label.lines().enumerate() {
            let dy = if line_idx == 0 { 0 } else { 14 };
            out.push_str(&format!("<tspan x=\"{}\" dy=\"{dy}\">{}</tspan>", x + 10, attribute(line)));
        }
        out.push_str("</text></g>\n");
    }
    out.push_str("</svg>\n");
    out
}
