//! The checker: names, types, configuration and graph rules. Lowers a `Document` (from either
//! front end) to the IR, reporting every problem it finds in one pass. It does no I/O: a JSON
//! Schema file referenced by the pipeline is read by the caller and passed in.

mod effects;
mod estimate;
mod expr;
mod graph;
mod nodes;
pub mod records;
mod registry;
mod schema;
mod settings;
mod template;
pub mod test_blocks;
mod values;

use pulse_ir::Pipeline;
use pulse_syntax::ast::{Document, ValueKind};
use pulse_syntax::{Diagnostic, Diagnostics, FileId, Span};

pub use estimate::{state_estimates, StateEstimate};
pub use registry::{lookup as node_type, NodeType, NODE_TYPES};
pub use values::topic_problem;

/// Inputs the checker cannot get without I/O.
#[derive(Clone, Copy, Debug, Default)]
pub struct CheckOptions<'a> {
    /// The text of the JSON Schema file named by `schema: "path"`, already loaded by the caller.
    pub external_schema: Option<(FileId, &'a str)>,
    /// The referenced JSON Schema file could not be read; the caller has reported why.
    pub external_schema_unreadable: bool,
}

/// The JSON Schema file a document refers to, if its `schema` setting is a path.
pub fn schema_reference(doc: &Document) -> Option<(String, Span)> {
    let value = doc.setting("schema")?;
    match &value.kind {
        ValueKind::String(path) => Some((path.clone(), value.span)),
        _ => None,
    }
}

/// Checks a document and lowers it to the IR. The IR is `None` when any error was reported.
pub fn check(doc: &Document, options: CheckOptions<'_>) -> (Option<Pipeline>, Vec<Diagnostic>) {
    let mut cx = Cx { diags: Diagnostics::new() };
    let settings = settings::check_settings(&mut cx, doc, options);
    let graph = graph::check_graph(&mut cx, doc);
    // An `event` block that did not parse declares a schema too: fields are then unchecked.
    let schema_declared = doc.setting("schema").is_some() || doc.unparsed_setting("schema");
    let nodes = nodes::check_nodes(&mut cx, doc, &graph, settings.schema.as_ref(), schema_declared);
    for diagnostic in test_blocks::test_cases(doc).1 {
        cx.report(diagnostic);
    }
    // No IR from a document with items that did not parse, even when the rest checks.
    if cx.diags.has_errors() || doc.is_partial() {
        return (None, sorted(cx.diags.into_vec()));
    }
    let (Some(name), Some(nodes), Some(())) = (settings.name, nodes, graph.resolved) else {
        return (None, sorted(cx.diags.into_vec()));
    };
    let pipeline = Pipeline {
        name,
        description: settings.description,
        version: settings.version,
        schema: settings.schema,
        runtime: settings.runtime,
        nodes,
        edges: graph.edges,
        topo_order: graph.topo_order,
    };
    effects::check_effects(&mut cx, doc, &pipeline);
    (Some(pipeline), sorted(cx.diags.into_vec()))
}

/// Diagnostics in source order (file, then position), errors and warnings interleaved.
fn sorted(mut diagnostics: Vec<Diagnostic>) -> Vec<Diagnostic> {
    diagnostics.sort_by_key(|diagnostic| {
        diagnostic.primary_span().map(|span| (span.file, span.start, span.end)).unwrap_or_default()
    });
    diagnostics
}

/// Shared state of one check run.
pub(crate) struct Cx {
    pub diags: Diagnostics,
}

impl Cx {
    pub fn report(&mut self, diagnostic: Diagnostic) {
        self.diags.push(diagnostic);
    }
}
