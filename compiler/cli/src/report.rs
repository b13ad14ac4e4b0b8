//! `pulsec report`: the run report a pipeline binary writes with `--report` drawn as the
//! journey's funnel: the DAG of `pulsec graph --format svg` with the counts of the run on its
//! nodes (in, out, dropped, dead letters, pending, keys) and edges (records per edge, line width
//! growing with the count); as HTML with tables of the nodes and of each sink's records per day
//! of event time. The report file is treated as untrusted: every string from it is escaped,
//! edges naming unknown nodes are refused.

use serde_json::Value;

use crate::graph::{self, EdgeLine, Kind, NodeBox};

/// One node of a report.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NodeFigures {
    pub id: String,
    pub node_type: String,
    pub records_in: u64,
    /// (port, records) in the report's order.
    pub out: Vec<(String, u64)>,
    pub dropped: u64,
    pub late: u64,
    pub dead_lettered: u64,
    pub absorbed: u64,
    pub created: u64,
    pub pending: u64,
    pub pending_timers: u64,
    pub distinct_keys: Option<u64>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct EdgeFigures {
    pub from: usize,
    pub port: String,
    pub to: usize,
    pub to_port: String,
    pub records: u64,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct SinkFigures {
    pub node: String,
    pub written: u64,
    /// (day, records), by day.
    pub per_day: Vec<(String, u64)>,
}

/// A run report, as read from the JSON a pipeline binary wrote.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Report {
    pub pipeline: String,
    pub end_of_input: String,
    pub records_read: u64,
    pub dead_letters: u64,
    pub watermark: Option<String>,
    pub nodes: Vec<NodeFigures>,
    pub edges: Vec<EdgeFigures>,
    pub sinks: Vec<SinkFigures>,
}

fn count(value: &Value, field: &str) -> u64 {
    value.get(field).and_then(Value::as_u64).unwrap_or(0)
}

fn text(value: &Value, field: &str) -> String {
    value.get(field).and_then(Value::as_str).unwrap_or("").to_string()
}

/// Reads a report; an error names what is wrong with it.
pub fn parse(json: &str) -> Result<Report, String> {
    let value: Value = serde_json::from_str(json).map_err(|error| format!("not a JSON report: {error}"))?;
    let nodes_json = value.get("nodes").and_then(Value::as_array).ok_or("the report has no `nodes` list")?;
    let mut nodes = Vec::new();
    for node in nodes_json {
        let id = node.get("id").and_then(Value::as_str).ok_or("a node has no `id`")?.to_string();
        let out = node
            .get("out")
            .and_then(Value::as_object)
            .map(|ports| ports.iter().map(|(port, records)| (port.clone(), records.as_u64().unwrap_or(0))).collect())
            .unwrap_or_default();
        nodes.push(NodeFigures {
            id,
            node_type: text(node, "type"),
            records_in: count(node, "in"),
            out,
            dropped: count(node, "dropped"),
            late: count(node, "late"),
            dead_lettered: count(node, "dead_lettered"),
            absorbed: count(node, "absorbed"),
            created: count(node, "created"),
            pending: count(node, "pending"),
            pending_timers: count(node, "pending_timers"),
            distinct_keys: node.get("distinct_keys").and_then(Value::as_u64),
        });
    }
    let index_of = |id: &str| nodes.iter().position(|node| node.id == id);
    let mut edges = Vec::new();
    for edge in value.get("edges").and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[]) {
        let (from, to) = (text(edge, "from"), text(edge, "to"));
        let (Some(from_idx), Some(to_idx)) = (index_of(&from), index_of(&to)) else {
            return Err(format!("an edge joins unknown nodes `{}` and `{}`", from.escape_debug(), to.escape_debug()));
        };
        edges.push(EdgeFigures {
            from: from_idx,
            port: text(edge, "port"),
            to: to_idx,
            to_port: text(edge, "to_port"),
            records: count(edge, "records"),
        });
    }
    let sinks = value
        .get("sinks")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
        .iter()
        .map(|sink| SinkFigures {
            node: text(sink, "node"),
            written: count(sink, "written"),
            per_day: sink
                .get("per_day")
                .and_then(Value::as_object)
                .map(|days| days.iter().map(|(day, records)| (day.clone(), records.as_u64().unwrap_or(0))).collect())
                .unwrap_or_default(),
        })
        .collect();
    let watermark = match value.get("watermark") {
        Some(Value::Number(number)) => number.as_i64().map(|ms| format!("{} ({ms} ms)", utc(ms))),
        Some(Value::String(text)) => Some(text.clone()),
        _ => None,
    };
    Ok(Report {
        pipeline: text(&value, "pipeline"),
        end_of_input: text(&value, "end_of_input"),
        records_read: count(&value, "records_read"),
        dead_letters: count(&value, "dead_letters"),
        watermark,
        nodes,
        edges,
        sinks,
    })
}

/// `2024-05-01 10:00:00 UTC` for a time in ms.
fn utc(ms: i64) -> String {
    let days = ms.div_euclid(86_400_000);
    let in_day = ms.rem_euclid(86_400_000) / 1000;
    let (year, month, day) = pulse_stdlib::time::civil_from_days(days);
    format!("{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC", in_day / 3600, in_day / 60 % 60, in_day % 60)
}

fn kind_of(node_type: &str) -> Kind {
    match node_type {
        kind if kind.ends_with("-source") => Kind::Source,
        kind if kind.ends_with("-sink") => Kind::Sink,
        "delay" | "user-event-trigger" | "has-done-event" | "segmentation" | "capping" | "window-aggregate"
        | "dedupe" => Kind::Stateful,
        _ => Kind::Operator,
    }
}

/// A node's text: id, type, `in N, out M` (a sink's `written`), then the non-zero losses and
/// holds, then its keys.
fn node_label(node: &NodeFigures) -> String {
    let mut lines = vec![node.id.clone()];
    if !node.node_type.is_empty() {
        lines.push(node.node_type.clone());
    }
    let sent: u64 = node.out.iter().filter(|(port, _)| port != "written").map(|(_, records)| records).sum();
    let written = node.out.iter().find(|(port, _)| port == "written").map(|(_, records)| *records);
    lines.push(match written {
        Some(written) => format!("in {}, written {written}", node.records_in),
        None if kind_of(&node.node_type) == Kind::Source => format!("read {}, out {sent}", node.records_in),
        None => format!("in {}, out {sent}", node.records_in),
    });
    let mut held = Vec::new();
    for (name, value) in [
        ("dropped", node.dropped),
        ("dead letters", node.dead_lettered),
        ("absorbed", node.absorbed),
        ("created", node.created),
        ("pending", node.pending),
    ] {
        if value > 0 {
            held.push(format!("{name} {value}"));
        }
    }
    if node.pending_timers > node.pending {
        held.push(format!("timers {}", node.pending_timers));
    }
    for chunk in held.chunks(2) {
        lines.push(chunk.join(", "));
    }
    match node.distinct_keys {
        Some(1) => lines.push("1 key".to_string()),
        Some(keys) => lines.push(format!("{keys} keys")),
        None => {}
    }
    lines.join("\n")
}

/// An edge's text: its port when not `out`, the input when not `in`, and the records it carried.
fn edge_label(edge: &EdgeFigures) -> String {
    let mut parts = Vec::new();
    if edge.port != "out" && !edge.port.is_empty() {
        parts.push(format!("{}:", edge.port));
    }
    parts.push(edge.records.to_string());
    if edge.to_port != "in" && !edge.to_port.is_empty() {
        parts.push(format!("-> {}", edge.to_port));
    }
    parts.join(" ")
}

/// The report's DAG as SVG, with the counts on its nodes and edges.
pub fn svg(report: &Report) -> String {
    let boxes: Vec<NodeBox> = report
        .nodes
        .iter()
        .map(|node| NodeBox { id: node.id.clone(), label: node_label(node), kind: kind_of(&node.node_type) })
        .collect();
    let most = report.edges.iter().map(|edge| edge.records).max().unwrap_or(0).max(1);
    let lines: Vec<EdgeLine> = report
        .edges
        .iter()
        .map(|edge| EdgeLine {
            from: edge.from,
            to: edge.to,
            label: edge_label(edge),
            // 1 to 3 pixels: the funnel narrows where records leave the journey.
            width: 1 + (edge.records.saturating_mul(2) / most) as usize,
        })
        .collect();
    // Every text is drawn last, over a white halo, so an edge's count stays readable across
    // its line.
    let picture = texts_on_top(&fit(&graph::draw(&boxes, &lines)));
    picture.replacen(
        "</style>",
        "text { paint-order: stroke; stroke: #ffffff; stroke-width: 4px; stroke-linejoin: round; }\n</style>",
        1,
    )
}

/// Moves every `<text>` element to the end of the picture, above the boxes and lines.
fn texts_on_top(svg: &str) -> String {
    let (mut rest, mut shapes, mut texts) = (svg, String::new(), String::new());
    while let Some(start) = rest.find("<text") {
        let Some(length) = rest[start..].find("</text>") else { break };
        let end = start + length + "</text>".len();
        shapes.push_str(&rest[..start]);
        texts.push_str(&rest[start..end]);
        texts.push('\n');
        rest = &rest[end..];
    }
    match rest.rfind("</svg>") {
        Some(close) => format!("{shapes}{}{texts}{}", &rest[..close], &rest[close..]),
        None => format!("{shapes}{rest}{texts}"),
    }
}

/// The numbers of an attribute `name="..."` in `tag` (an element's text).
fn attribute_number(tag: &str, name: &str) -> Option<f64> {
    let start = tag.find(&format!(" {name}=\""))? + name.len() + 3;
    let end = start + tag[start..].find('"')?;
    tag[start..end].trim().parse().ok()
}

/// Shrinks the picture to what is drawn: the layout grows its canvas by the length of every
/// label, which leaves a tall empty band under a graph with long labels. The size becomes the
/// extent of the boxes and edge paths plus a margin for the edge labels.
fn fit(svg: &str) -> String {
    let (mut width, mut height) = (0.0f64, 0.0f64);
    for rect in svg.split("<rect").skip(1) {
        let tag = &rect[..rect.find("/>").unwrap_or(rect.len())];
        if let (Some(x), Some(y), Some(w), Some(h)) = (
            attribute_number(tag, "x"),
            attribute_number(tag, "y"),
            attribute_number(tag, "width"),
            attribute_number(tag, "height"),
        ) {
            width = width.max(x + w);
            height = height.max(y + h);
        }
    }
    for path in svg.split(" d=\"").skip(1) {
        let data = &path[..path.find('"').unwrap_or(path.len())];
        let numbers: Vec<f64> = data
            .split(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-'))
            .filter_map(|number| number.parse().ok())
            .collect();
        for pair in numbers.chunks(2) {
            if let [x, y] = pair {
                width = width.max(*x);
                height = height.max(*y);
            }
        }
    }
    let Some(start) = svg.find("<svg ") else { return svg.to_string() };
    let Some(end) = svg[start..].find('>').map(|end| start + end) else { return svg.to_string() };
    if width <= 0.0 || height <= 0.0 {
        return svg.to_string();
    }
    let (width, height) = ((width + 30.0).ceil(), (height + 30.0).ceil());
    format!(
        "{}<svg width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\" xmlns=\"http://www.w3.org/2000/svg\">{}",
        &svg[..start],
        &svg[end + 1..]
    )
}

/// Text for HTML.
fn html_text(text: &str) -> String {
    graph::attribute(text).replace('\'', "&#39;")
}

/// The report as one HTML page: a summary, the SVG, the nodes' figures and each sink's records
/// per day of event time.
pub fn html(report: &Report) -> String {
    let mut page = String::new();
    let title = format!("Pulse run report: {}", report.pipeline);
    page.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    page.push_str(&format!("<title>{}</title>\n", html_text(&title)));
    page.push_str(
        "<style>\nbody { font-family: Helvetica, Arial, sans-serif; margin: 24px; color: #222; }\n\
         table { border-collapse: collapse; margin: 12px 0 24px; }\n\
         th, td { border: 1px solid #bbb; padding: 4px 10px; text-align: right; }\n\
         th:first-child, td:first-child { text-align: left; }\n\
         th { background: #eee; }\n\
         .graph svg { max-width: 100%; height: auto; }\n</style>\n</head>\n<body>\n",
    );
    page.push_str(&format!("<h1>{}</h1>\n", html_text(&title)));
    let mut summary = format!(
        "{} records read, {} dead letters, end of input: {}",
        report.records_read,
        report.dead_letters,
        if report.end_of_input.is_empty() { "?" } else { &report.end_of_input }
    );
    if let Some(watermark) = &report.watermark {
        summary.push_str(&format!(", watermark at the end: {watermark}"));
    }
    page.push_str(&format!("<p id=\"summary\">{}</p>\n", html_text(&summary)));
    page.push_str("<div class=\"graph\">\n");
    // The SVG without its XML prolog, inline.
    let svg = svg(report);
    let inline = svg.find("<svg").map_or(svg.as_str(), |start| &svg[start..]);
    page.push_str(inline);
    page.push_str("</div>\n<h2>Nodes</h2>\n<table id=\"nodes\">\n<tr>");
    for header in
        ["node", "type", "in", "out", "dropped", "late", "dead letters", "absorbed", "created", "pending", "keys"]
    {
        page.push_str(&format!("<th>{header}</th>"));
    }
    page.push_str("</tr>\n");
    for node in &report.nodes {
        let out: Vec<String> = node.out.iter().map(|(port, records)| format!("{port} {records}")).collect();
        let cells = [
            node.id.clone(),
            node.node_type.clone(),
            node.records_in.to_string(),
            out.join(", "),
            node.dropped.to_string(),
            node.late.to_string(),
            node.dead_lettered.to_string(),
            node.absorbed.to_string(),
            node.created.to_string(),
            node.pending.to_string(),
            node.distinct_keys.map_or(String::new(), |keys| keys.to_string()),
        ];
        page.push_str("<tr>");
        for cell in cells {
            page.push_str(&format!("<td>{}</td>", html_text(&cell)));
        }
        page.push_str("</tr>\n");
    }
    page.push_str("</table>\n<h2>Records per day of event time</h2>\n<table id=\"days\">\n<tr><th>day (UTC)</th>");
    let mut days: Vec<&str> =
        report.sinks.iter().flat_map(|sink| sink.per_day.iter().map(|(day, _)| day.as_str())).collect();
    days.sort_unstable();
    days.dedup();
    for sink in &report.sinks {
        page.push_str(&format!("<th>{}</th>", html_text(&sink.node)));
    }
    page.push_str("</tr>\n");
    for day in &days {
        page.push_str(&format!("<tr><td>{}</td>", html_text(day)));
        for sink in &report.sinks {
            let records = sink.per_day.iter().find(|(known, _)| known == day).map_or(0, |(_, records)| *records);
            page.push_str(&format!("<td>{records}</td>"));
        }
        page.push_str("</tr>\n");
    }
    page.push_str("<tr><th>total</th>");
    for sink in &report.sinks {
        page.push_str(&format!("<th>{}</th>", sink.written));
    }
    page.push_str("</tr>\n</table>\n</body>\n</html>\n");
    page
}

#[cfg(test)]
mod tests {
    use super::*;

    const REPORT: &str = r#"{
        "pipeline": "p", "end_of_input": "keep", "records_read": 3, "dead_letters": 1, "watermark": 86400000,
        "nodes": [
            {"id": "src", "type": "file-source", "in": 3, "out": {"out": 2}, "dead_lettered": 1},
            {"id": "<b>&x", "type": "delay", "in": 2, "out": {"out": 1, "late": 0}, "pending": 1, "pending_timers": 1, "distinct_keys": 2},
            {"id": "sink", "type": "file-sink", "in": 1, "out": {"written": 1}}
        ],
        "edges": [
            {"from": "src", "port": "out", "to": "<b>&x", "to_port": "in", "records": 2},
            {"from": "<b>&x", "port": "out", "to": "sink", "to_port": "in", "records": 1}
        ],
        "sinks": [{"node": "sink", "written": 1, "per_day": {"1970-01-02": 1}}]
    }"#;

    #[test]
    fn strings_from_the_report_are_escaped() {
        let report = parse(REPORT).expect("valid report");
        let page = html(&report);
        assert!(!page.contains("<b>&x"), "{page}");
        assert!(page.contains("&lt;b&gt;&amp;x"));
        assert!(page.contains("1970-01-02 00:00:00 UTC"));
        let picture = svg(&report);
        assert!(!picture.contains("<b>"));
        assert!(picture.contains("pending 1"));
    }

    #[test]
    fn edges_to_unknown_nodes_are_refused() {
        let broken = REPORT.replace("\"to\": \"sink\"", "\"to\": \"nowhere\"");
        assert!(parse(&broken).expect_err("refused").contains("nowhere"));
        assert!(parse("[]").is_err());
    }

    #[test]
    fn labels_show_the_figures() {
        let report = parse(REPORT).expect("valid report");
        assert_eq!(node_label(&report.nodes[1]), "<b>&x\ndelay\nin 2, out 1\npending 1\n2 keys");
        let picture = svg(&report);
        let header = &picture[picture.find("<svg").expect("an svg")..];
        let height = attribute_number(&header[..header.find('>').expect("a tag")], "height").expect("a height");
        assert!(height < 200.0, "the canvas fits the drawing: {height}");
        assert_eq!(node_label(&report.nodes[2]), "sink\nfile-sink\nin 1, written 1");
        assert_eq!(edge_label(&report.edges[0]), "2");
    }
}
