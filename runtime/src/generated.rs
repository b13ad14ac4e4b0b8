//! The facade between generated code and the runtime: everything a pipeline's generated crate
//! may name, and nothing else. `pulse-codegen` writes paths under `pulse_runtime::generated`
//! only (the generated crate does not even depend on `pulse-stdlib`), so the runtime can change
//! behind it freely. `runtime/tests/contract.rs` holds it to that: it compiles a checked-in
//! generated crate against this module (trybuild) and checks that code reaching past it, into
//! the runtime's internals, does not compile.

pub use crate::{
    run, Context, DeadEvent, EdgeSpec, KafkaPartitioning, KafkaStart, Pipeline, PipelineSpec, RedisCommand, SetupError,
    SinkKind, SinkSpec, SourceKind, SourceSpec, TimeDomain, Timer, TimerKind, Topology, TraceValue,
};
pub use pulse_stdlib::{decode, func, json, operators, ops, reshape, schema, state, text, time, view, Regex, Val};

/// Appends `text` to a URL being built, percent-encoded as one path segment or query value.
pub fn push_url_encoded(out: &mut String, text: &str) {
    crate::api_sink::push_url_encoded(out, text);
}

/// The first `.` or `..` path segment of a rendered URL (also percent-encoded), which would
/// send the request elsewhere than the template says; such a request is a dead letter.
pub fn dot_segment(url: &str) -> Option<&str> {
    crate::api_sink::dot_segment(url)
}
