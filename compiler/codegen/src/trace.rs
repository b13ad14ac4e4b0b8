//! `--trace`: the decision records generated code writes for traced keys. Each decision is one
//! `if cx.tracing() { cx.trace(node, "decision", time, "port", &[...]) }` with static strings
//! and values the operator already holds; the runtime builds the JSON. Without `--trace` the
//! branch is never taken.

use crate::segments::{access, ViewTree};
use crate::Generator;
use proc_macro2::TokenStream;
use pulse_ir::{Expr, NodeIdx, Operator, Path};
use quote::quote;

impl Generator<'_> {
    /// One traced decision of node `idx` at `time`; `out` is the port the record leaves on, or
    /// "" when it stops at the node. `fields` are `(name, TraceValue)` tuples.
    pub(crate) fn trace(
        &self,
        idx: NodeIdx,
        decision: &str,
        time: TokenStream,
        out: TokenStream,
        fields: &[TokenStream],
    ) -> TokenStream {
        let node = idx as u32;
        quote! {
            if cx.tracing() {
                cx.trace(#node, #decision, #time, #out, &[#(#fields),*]);
            }
        }
    }

    /// The fields a condition reads, as `("path", TraceValue::Val(..))` trace fields.
    pub(crate) fn trace_fields_of(&self, conditions: &[&Expr], tree: &ViewTree) -> Vec<TokenStream> {
        let mut paths: Vec<Path> = Vec::new();
        for condition in conditions {
            crate::segments::collect_paths(condition, &mut paths);
        }
        let mut seen: Vec<String> = Vec::new();
        let mut fields = Vec::new();
        for path in paths {
            let dotted = path.dotted();
            if seen.contains(&dotted) {
                continue;
            }
            let value = access(quote! { view }, tree, &path.0);
            fields.push(quote! { (#dotted, pulse_runtime::generated::TraceValue::Val(#value)) });
            seen.push(dotted);
        }
        fields
    }

    /// A segmentation decision: the counters (`values`), the segments now (`active`) and before
    /// (`before`), and whether it emits (`emit`).
    pub(crate) fn trace_segments(&self, idx: NodeIdx, decision: &str, time: TokenStream) -> TokenStream {
        let Operator::Segmentation { counters, segments, .. } = &self.pipeline.nodes[idx].op else { return quote! {} };
        let counters: Vec<&str> = counters.iter().map(|counter| counter.name.as_str()).collect();
        let segments: Vec<&str> = segments.iter().map(|segment| segment.name.as_str()).collect();
        self.trace(
            idx,
            decision,
            time,
            quote! { if emit { "out" } else { "" } },
            &[
                quote! { ("counters", pulse_runtime::generated::TraceValue::Counts(&[#(#counters),*], &values)) },
                quote! { ("segments", pulse_runtime::generated::TraceValue::Segments(&[#(#segments),*], &active, &before)) },
            ],
        )
    }

    /// `Pipeline::TRACE_KEYS` and `Pipeline::EDGES`.
    pub(crate) fn trace_consts(&self) -> TokenStream {
        let mut keys: Vec<&Path> = Vec::new();
        for node in &self.pipeline.nodes {
            if let Some(path) = node.op.key_by() {
                if !keys.contains(&path) {
                    keys.push(path);
                }
            }
        }
        let keys = keys.iter().map(|path| {
            let segments = &path.0;
            quote! { &[#(#segments),*] }
        });
        let edges = self.pipeline.edges.iter().map(|edge| {
            let (from, port, to) = (edge.from as u32, &edge.from_port, edge.to as u32);
            quote! { (#from, #port, #to) }
        });
        quote! {
            const TRACE_KEYS: &'static [&'static [&'static str]] = &[#(#keys),*];
            const EDGES: &'static [(u32, &'static str, u32)] = &[#(#edges),*];
        }
    }
}
