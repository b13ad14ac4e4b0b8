//! Segments: maximal regions of the graph where records keep the same JSON text, so one parse
//! of the text serves every operator in the region. A segment starts at a source, at an
//! operator that makes new text (a map, a timer's output), and at a node whose inputs come from
//! different segments. Each segment gets one view type with the union of the fields its
//! operators use.

use proc_macro2::TokenStream;
use pulse_ir::{Expr, ExprKind, Operator, Path, Pipeline, RecordType};
use quote::{format_ident, quote};
use std::collections::{BTreeMap, BTreeSet};

pub struct Segments {
    /// The segment whose view a node receives.
    pub seg_in: Vec<usize>,
    /// The segment of the records a node emits.
    pub seg_out: Vec<usize>,
    /// Whether a node parses its input text itself (its inputs come from several segments).
    pub reparse: Vec<bool>,
    pub views: Vec<ViewTree>,
}

/// The fields of one view, keyed by JSON name.
#[derive(Clone, Debug, Default)]
pub struct ViewTree {
    pub fields: BTreeMap<String, Slot>,
}

#[derive(Clone, Debug)]
pub struct Slot {
    /// The Rust field name.
    pub ident: String,
    pub nested: Option<ViewTree>,
}

impl Segments {
    pub fn analyze(pipeline: &Pipeline) -> Segments {
        let n_nodes = pipeline.nodes.len();
        let mut seg_in = vec![usize::MAX; n_nodes];
        let mut seg_out = vec![usize::MAX; n_nodes];
        let mut reparse = vec![false; n_nodes];
        let mut paths: Vec<BTreeSet<Path>> = Vec::new();
        let new_segment = |paths: &mut Vec<BTreeSet<Path>>| {
            paths.push(BTreeSet::new());
            paths.len() - 1
        };
        for &idx in &pipeline.topo_order {
            let node = &pipeline.nodes[idx];
            if node.op.is_source() {
                let seg = new_segment(&mut paths);
                seg_in[idx] = seg;
                seg_out[idx] = seg;
                if let Some(schema) = &pipeline.schema {
                    schema_paths(schema, &mut Vec::new(), &mut paths[seg]);
                }
                if let Some(path) = node.op.source_time().and_then(|time| time.event_time.as_ref()) {
                    paths[seg].insert(path.clone());
                }
                continue;
            }
            // A `late` output carries the operator's input record unchanged.
            let upstream: BTreeSet<usize> = pipeline
                .edges_into(idx)
                .map(|edge| if edge.from_port == "late" { seg_in[edge.from] } else { seg_out[edge.from] })
                .collect();
            // has-done-event buffers flow records to the end of the step (G41), so it always
            // parses its input text itself.
            let own_view = matches!(node.op, Operator::HasDoneEvent { .. });
            seg_in[idx] = match upstream.len() {
                1 if !own_view => *upstream.iter().next().expect("one upstream segment"),
                _ => {
                    reparse[idx] = true;
                    new_segment(&mut paths)
                }
            };
            let mut used = Vec::new();
            node_paths(&node.op, &mut used);
            paths[seg_in[idx]].extend(used);
            // Operators that make new text, or emit from timers or buffers, start a segment.
            seg_out[idx] = match node.op {
                Operator::Map { .. }
                | Operator::Delay { .. }
                | Operator::Segmentation { .. }
                | Operator::WindowAggregate { .. }
                | Operator::UserEventTrigger { .. }
                | Operator::HasDoneEvent { .. }
                | Operator::ApiSink { .. } => new_segment(&mut paths),
                _ => seg_in[idx],
            };
        }
        let views = paths.iter().map(build_tree).collect();
        Segments { seg_in, seg_out, reparse, views }
    }
}

fn schema_paths(record: &RecordType, prefix: &mut Vec<String>, out: &mut BTreeSet<Path>) {
    for name in &record.order {
        prefix.push(name.clone());
        out.insert(Path(prefix.clone()));
        if let pulse_ir::Type::Object(Some(inner)) = &record.fields[name].ty {
            schema_paths(inner, prefix, out);
        }
        prefix.pop();
    }
}

/// Field paths an operator reads from its input view.
fn node_paths(operator: &Operator, out: &mut Vec<Path>) {
    if let Some(key) = operator.key_by() {
        out.push(key.clone());
    }
    match operator {
        Operator::Filter { condition } => collect_paths(condition, out),
        Operator::Splitter { routes, .. } => {
            for route in routes {
                collect_paths(&route.condition, out);
            }
        }
        Operator::Map { keep, remove, set } => {
            if map_fast_path(keep, remove, set) {
                out.extend(keep.iter().cloned());
            }
            for (_, value) in set {
                collect_paths(value, out);
            }
        }
        Operator::UserEventTrigger { start, cancel, .. } => {
            collect_paths(start, out);
            collect_paths(cancel, out);
        }
        Operator::HasDoneEvent { event, .. } => collect_paths(event, out),
        Operator::Segmentation { counters, .. } => {
            for counter in counters {
                if let Some(condition) = &counter.condition {
                    collect_paths(condition, out);
                }
            }
        }
        Operator::WindowAggregate { aggregates, .. } => {
            out.extend(aggregates.iter().filter_map(|aggregate| aggregate.field.clone()));
        }
        Operator::RedisSink { .. } | Operator::ApiSink { .. } | Operator::KafkaSink { .. } => {
            crate::templates::template_paths(operator, out)
        }
        _ => {}
    }
}

fn build_tree(paths: &BTreeSet<Path>) -> ViewTree {
    let mut tree = ViewTree::default();
    for path in paths {
        insert(&mut tree, &path.0);
    }
    name_slots(&mut tree);
    tree
}

fn insert(tree: &mut ViewTree, path: &[String]) {
    let Some((first, rest)) = path.split_first() else { return };
    let slot = tree.fields.entry(first.clone()).or_insert_with(|| Slot { ident: String::new(), nested: None });
    if !rest.is_empty() {
        insert(slot.nested.get_or_insert_with(ViewTree::default), rest);
    }
}

/// Rust field names: an index (unique) plus the JSON name made safe.
fn name_slots(tree: &mut ViewTree) {
    for (idx, (key, slot)) in tree.fields.iter_mut().enumerate() {
        let safe: String = key.chars().map(|ch| if ch.is_ascii_alphanumeric() { ch } else { '_' }).collect();
        slot.ident = format!("f{idx}_{safe}");
        if let Some(nested) = &mut slot.nested {
            name_slots(nested);
        }
    }
}

/// An expression of type `&Val` reading `path` from `view`.
pub fn access(view: TokenStream, tree: &ViewTree, path: &[String]) -> TokenStream {
    access_at(view, tree, path, 0)
}

fn access_at(view: TokenStream, tree: &ViewTree, path: &[String], depth: usize) -> TokenStream {
    let Some((first, rest)) = path.split_first() else { return quote! { &ABSENT } };
    let Some(slot) = tree.fields.get(first) else { return quote! { &ABSENT } };
    let field = format_ident!("{}", slot.ident);
    if rest.is_empty() {
        return quote! { &#view.#field };
    }
    let Some(nested) = &slot.nested else { return quote! { &ABSENT } };
    let nested_field = format_ident!("n_{}", slot.ident);
    let inner = format_ident!("inner_{}", depth);
    let inner_access = access_at(quote! { #inner }, nested, rest, depth + 1);
    quote! {
        match &#view.#nested_field {
            Some(#inner) => #inner_access,
            None => &ABSENT,
        }
    }
}

/// Every field path an expression reads.
pub fn collect_paths(expr: &Expr, out: &mut Vec<Path>) {
    match &expr.kind {
        ExprKind::Field(path) => out.push(path.clone()),
        ExprKind::Array(items) | ExprKind::Call(_, items) => {
            for item in items {
                collect_paths(item, out);
            }
        }
        ExprKind::Not(inner) | ExprKind::Neg(inner) | ExprKind::IsNull(inner) | ExprKind::IsNotNull(inner) => {
            collect_paths(inner, out)
        }
        ExprKind::Match(inner, _) => collect_paths(inner, out),
        ExprKind::Binary(_, lhs, rhs) => {
            collect_paths(lhs, out);
            collect_paths(rhs, out);
        }
        ExprKind::Null
        | ExprKind::Bool(_)
        | ExprKind::Int(_)
        | ExprKind::Float(_)
        | ExprKind::Str(_)
        | ExprKind::Counter(_) => {}
    }
}

/// A map whose output can be written straight from the view: `keep` of top-level fields,
/// top-level `set`s, and `remove`s of top-level fields.
pub fn map_fast_path(keep: &[Path], remove: &[Path], set: &[(Path, Expr)]) -> bool {
    !keep.is_empty()
        && keep.iter().all(|path| path.0.len() == 1)
        && remove.iter().all(|path| path.0.len() == 1)
        && set.iter().all(|(path, _)| path.0.len() == 1)
}
