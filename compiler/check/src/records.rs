//! Record types per node for editor support: what flows into and out of every node of a document,
//! computed even when the document has errors (the checker's IR exists only for error-free
//! documents). The LSP uses it for hover and field completion while a file is being edited.

use crate::graph::{self, UnparsedInput};
use crate::nodes::{check_node, merge, output_type};
use crate::settings;
use crate::{CheckOptions, Cx};
use pulse_ir::{Operator, RecordType};
use pulse_syntax::ast::Document;
use pulse_syntax::Diagnostics;

/// Best-effort record types of one document, indexed like `Document::nodes`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NodeRecords {
    /// The declared event schema, when it checked.
    pub schema: Option<RecordType>,
    /// The record type entering each node (for sources: the event schema); `None` when unknown.
    pub inputs: Vec<Option<RecordType>>,
    /// The record type on each output port of each node, when the node checked.
    pub outputs: Vec<Option<Vec<(String, RecordType)>>>,
    /// The output port names of each node (splitter routes included), known even when the node failed.
    pub ports: Vec<Vec<String>>,
    /// Each node's checked operator, when its configuration checked.
    pub operators: Vec<Option<Operator>>,
}

/// Runs the checker's passes on `doc`, discarding diagnostics, and keeps every node's record types.
pub fn node_records(doc: &Document, options: CheckOptions<'_>) -> NodeRecords {
    let mut cx = Cx { diags: Diagnostics::new() };
    let settings = settings::check_settings(&mut cx, doc, options);
    let graph = graph::check_graph(&mut cx, doc);
    let source_type = settings.schema.clone().unwrap_or_else(RecordType::open);
    let n_nodes = doc.nodes.len();
    let mut records = NodeRecords {
        schema: settings.schema,
        inputs: vec![None; n_nodes],
        outputs: vec![None; n_nodes],
        ports: graph.outputs.clone(),
        operators: vec![None; n_nodes],
    };
    for &idx in &graph.topo_order {
        let Some(node_type) = graph.types[idx] else { continue };
        let incoming = |events: bool| -> Vec<RecordType> {
            graph
                .edges
                .iter()
                .filter(|edge| edge.to == idx && (edge.to_port == "events") == events)
                .filter_map(|edge| {
                    let outputs = records.outputs[edge.from].as_ref()?;
                    outputs.iter().find(|(port, _)| *port == edge.from_port).map(|(_, record)| record.clone())
                })
                .collect()
        };
        let mut flow = incoming(false);
        if graph.unparsed_input[idx] == UnparsedInput::Events {
            flow.push(source_type.clone());
        }
        let events = incoming(true);
        let input = if node_type.is_source() {
            source_type.clone()
        } else if flow.is_empty() || graph.unparsed_input[idx] == UnparsedInput::Unknown {
            RecordType::open()
        } else {
            merge(&flow.iter().collect::<Vec<_>>())
        };
        let events_type =
            if events.is_empty() { source_type.clone() } else { merge(&events.iter().collect::<Vec<_>>()) };
        records.inputs[idx] = Some(input.clone());
        let Some(operator) = check_node(&mut cx, &doc.nodes[idx], node_type, &input, &events_type) else { continue };
        let output = output_type(&operator, &input);
        records.outputs[idx] = Some(graph.outputs[idx].iter().map(|port| (port.clone(), output.clone())).collect());
        records.operators[idx] = Some(operator);
    }
    records
}

#[cfg(test)]
mod tests {
    use super::*;
    use pulse_syntax::FileId;

    #[test]
    fn records_survive_errors_elsewhere() {
        let text = "pipeline p\nevent { userId: string, n: int }\nsrc: file-source(\"in.jsonl\")\n\
                    src -> f: filter(nope > 1) -> m: map { set: { twice: n * 2 } } -> out: stdout-sink\n";
        let (doc, diagnostics) = pulse_syntax::parse_pulse_document(FileId(0), text);
        assert!(diagnostics.is_empty(), "{diagnostics:?}");
        let doc = doc.expect("parses");
        let records = node_records(&doc, CheckOptions::default());
        let filter_input = records.inputs[1].as_ref().expect("filter input known");
        assert!(filter_input.fields.contains_key("userId"));
        let map_output = &records.outputs[2].as_ref().expect("map checked")[0].1;
        assert!(map_output.fields.contains_key("twice"));
    }
}
