//! `--trace KEY`: the decisions every node makes for the events of a few keys, one JSON object
//! per decision in `DIR/_trace.jsonl`, for `pulsec why`.
//!
//! A step (a source record or a timer) is traced when its key is one of the traced keys: for a
//! source record, the value of any field a keyed operator keys by (`Pipeline::TRACE_KEYS`),
//! read from the line before the pipeline sees it, so filters in front of the first keyed node
//! are traced too; for a timer, its key. Generated code asks [`Context::tracing`], a plain
//! `bool` of the step, before it builds a decision, and the runtime writes the JSON; without
//! `--trace` the flag is never set and nothing else runs.
//!
//! Every line has `key`, `step` (the step's number), `node`, `decision`, `time` (the
//! operator's time, ms, or null) and `input` (`FILE:LINE`, `TOPIC/PARTITION/OFFSET` or
//! `timer NODE@TIME`), plus `out` (the port the record left on, or null when it stopped there)
//! and the decision's own fields. The first line (`"decision":"start"`) names the pipeline, its
//! nodes, sinks and edges, and the traced keys.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use pulse_stdlib::json::{write_str, write_val};
use pulse_stdlib::text::key_form;
use pulse_stdlib::Val;

use crate::{Context, Timer};

/// One value of a decision, written as JSON by the runtime.
#[derive(Clone, Copy, Debug)]
pub enum TraceValue<'a> {
    Int(i64),
    /// `null` when absent.
    OptInt(Option<i64>),
    Bool(bool),
    Str(&'a str),
    /// JSON text written as it is.
    Json(&'a str),
    /// A field value the decision read.
    Val(&'a Val<'a>),
    /// `{"name": value, ...}` of named values (counters).
    Counts(&'a [&'a str], &'a [i64]),
    /// Segment lists: (names, active now, active before), written as `{"now", "entered", "left"}`.
    Segments(&'a [&'a str], &'a [u64], &'a [u64]),
}

/// A trace file that cannot be created or written.
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    #[error("cannot create `{}`: {error}", path.display())]
    Create { path: std::path::PathBuf, error: std::io::Error },
    #[error("cannot write the trace: {0}")]
    Write(std::io::Error),
}

/// The writer of `_trace.jsonl` and the keys it follows.
pub struct Tracer {
    /// (key as given on the command line, the canonical key texts it matches).
    keys: Vec<(String, Vec<String>)>,
    key_paths: &'static [&'static [&'static str]],
    nodes: &'static [&'static str],
    out: BufWriter<File>,
    step: u64,
    /// The traced key of the current step.
    key: usize,
    /// Where the current step's input comes from.
    input: String,
    /// The source record of the current step, written as a `read` decision before the step's
    /// first other decision (`read_node`: the source's node index).
    pending_read: Option<(String, usize)>,
    line: String,
    error: Option<std::io::Error>,
}

/// Per-step tracing: `on` is what generated code tests.
#[derive(Default)]
pub struct TraceState {
    pub(crate) on: bool,
    pub(crate) tracer: Option<Box<Tracer>>,
}

impl Tracer {
    /// Opens `dir/_trace.jsonl` and writes its `start` line.
    #[allow(clippy::too_many_arguments)]
    pub fn open(
        dir: &Path,
        keys: &[String],
        pipeline: &str,
        nodes: &'static [&'static str],
        sinks: &[&str],
        edges: &[(u32, &str, u32)],
        key_paths: &'static [&'static [&'static str]],
    ) -> Result<Tracer, TraceError> {
        let path = dir.join("_trace.jsonl");
        let file = File::create(&path).map_err(|error| TraceError::Create { path: path.clone(), error })?;
        let mut tracer = Tracer {
            keys: keys.iter().map(|key| (key.clone(), key_texts(key))).collect(),
            key_paths,
            nodes,
            out: BufWriter::new(file),
            step: 0,
            key: 0,
            input: String::new(),
            pending_read: None,
            line: String::new(),
            error: None,
        };
        let line = &mut tracer.line;
        line.push_str("{\"decision\":\"start\",\"pipeline\":");
        write_str(line, pipeline);
        push_list(line, "nodes", nodes.iter().copied());
        push_list(line, "sinks", sinks.iter().copied());
        line.push_str(",\"edges\":[");
        for (index, (from, port, to)) in edges.iter().enumerate() {
            if index > 0 {
                line.push(',');
            }
            line.push_str(&format!("[{from},"));
            write_str(line, port);
            line.push_str(&format!(",{to}]"));
        }
        line.push(']');
        push_list(line, "keys", keys.iter().map(String::as_str));
        line.push('}');
        tracer.write_line();
        Ok(tracer)
    }

    /// The traced key a canonical key text is, if any.
    fn matching(&self, canonical: &str) -> Option<usize> {
        self.keys.iter().position(|(_, texts)| texts.iter().any(|text| text == canonical))
    }

    /// Whether a source line holds a traced key in one of the key fields.
    fn record_key(&self, line: &str) -> Option<usize> {
        let Ok(value @ Val::Obj(_)) = Val::from_json_text(line) else { return None };
        self.key_paths.iter().find_map(|path| key_form(&value.path(path)).and_then(|text| self.matching(&text)))
    }

    fn begin(&mut self, key: usize, input: String) {
        self.step += 1;
        self.key = key;
        self.input = input;
    }

    fn head(&mut self, node: Option<&str>, decision: &str, time: Option<i64>) {
        let line = &mut self.line;
        line.clear();
        line.push_str("{\"key\":");
        write_str(line, &self.keys[self.key].0);
        line.push_str(&format!(",\"step\":{},\"node\":", self.step));
        match node {
            Some(node) => write_str(line, node),
            None => line.push_str("null"),
        }
        line.push_str(",\"decision\":");
        write_str(line, decision);
        match time {
            Some(time) => line.push_str(&format!(",\"time\":{time}")),
            None => line.push_str(",\"time\":null"),
        }
        line.push_str(",\"input\":");
        write_str(line, &self.input);
    }

    fn write_line(&mut self) {
        if let Err(error) = self.out.write_all(self.line.as_bytes()).and_then(|()| self.out.write_all(b"\n")) {
            self.error.get_or_insert(error);
        }
    }

    /// Writes the step's `read` decision if it is still pending (`time`: the record's event time).
    fn flush_read(&mut self, time: Option<i64>) {
        let Some((event, node)) = self.pending_read.take() else { return };
        let id = self.nodes.get(node).copied();
        self.head(id, "read", time);
        self.line.push_str(",\"out\":\"out\",\"event\":");
        self.line.push_str(&event);
        self.line.push('}');
        self.write_line();
    }

    pub fn finish(&mut self) -> Result<(), TraceError> {
        if let Err(error) = self.out.flush() {
            self.error.get_or_insert(error);
        }
        self.error.take().map_or(Ok(()), |error| Err(TraceError::Write(error)))
    }
}

/// The canonical key texts (G12) a key given on the command line stands for: the string, and
/// the number, boolean or other JSON value it spells.
fn key_texts(key: &str) -> Vec<String> {
    let mut texts = Vec::new();
    if let Some(text) = key_form(&Val::Str(key.into())) {
        texts.push(text);
    }
    if let Some(text) = Val::from_json_text(key).ok().as_ref().and_then(key_form) {
        if !texts.contains(&text) {
            texts.push(text);
        }
    }
    texts
}

fn push_list<'a>(line: &mut String, name: &str, items: impl Iterator<Item = &'a str>) {
    if !line.ends_with('{') {
        line.push(',');
    }
    line.push('"');
    line.push_str(name);
    line.push_str("\":[");
    for (index, item) in items.enumerate() {
        if index > 0 {
            line.push(',');
        }
        write_str(line, item);
    }
    line.push(']');
}

fn write_value(line: &mut String, value: &TraceValue<'_>) {
    match value {
        TraceValue::Int(number) => line.push_str(&number.to_string()),
        TraceValue::OptInt(Some(number)) => line.push_str(&number.to_string()),
        TraceValue::OptInt(None) => line.push_str("null"),
        TraceValue::Bool(flag) => line.push_str(if *flag { "true" } else { "false" }),
        TraceValue::Str(text) => write_str(line, text),
        TraceValue::Json(text) => line.push_str(text),
        TraceValue::Val(Val::Absent) => line.push_str("null"),
        TraceValue::Val(value) => write_val(line, value),
        TraceValue::Counts(names, values) => {
            line.push('{');
            for (index, (name, value)) in names.iter().zip(values.iter()).enumerate() {
                if index > 0 {
                    line.push(',');
                }
                write_str(line, name);
                line.push(':');
                line.push_str(&value.to_string());
            }
            line.push('}');
        }
        TraceValue::Segments(names, now, before) => {
            let name = |index: &u64| names.get(*index as usize).copied().unwrap_or("?");
            line.push('{');
            push_list(line, "now", now.iter().map(name));
            push_list(line, "entered", now.iter().filter(|index| !before.contains(index)).map(name));
            push_list(line, "left", before.iter().filter(|index| !now.contains(index)).map(name));
            line.push('}');
        }
    }
}

impl Context {
    /// Whether the current step is traced (`--trace`): generated code builds a decision only then.
    #[inline(always)]
    pub fn tracing(&self) -> bool {
        self.trace.on
    }

    /// Records one decision of node `node` in the current traced step: `out` is the port the
    /// record left on ("" when it stopped at the node), `fields` the decision's own values.
    #[cold]
    pub fn trace(
        &mut self,
        node: u32,
        decision: &'static str,
        time: i64,
        out: &'static str,
        fields: &[(&'static str, TraceValue<'_>)],
    ) {
        let Some(tracer) = self.trace.tracer.as_deref_mut() else { return };
        tracer.flush_read(None);
        let id = tracer.nodes.get(node as usize).copied();
        tracer.head(id, decision, Some(time));
        let line = &mut tracer.line;
        line.push_str(",\"out\":");
        if out.is_empty() {
            line.push_str("null");
        } else {
            write_str(line, out);
        }
        for (name, value) in fields {
            line.push(',');
            write_str(line, name);
            line.push(':');
            write_value(line, value);
        }
        line.push('}');
        tracer.write_line();
    }

    /// Starts the step of a timer: traced when its key is.
    #[inline]
    pub fn trace_timer(&mut self, timer: &Timer) {
        if self.trace.tracer.is_some() {
            self.trace_timer_step(timer);
        }
    }

    #[cold]
    fn trace_timer_step(&mut self, timer: &Timer) {
        let Some(tracer) = self.trace.tracer.as_deref_mut() else { return };
        let key = timer.key.as_deref().and_then(|key| tracer.matching(key));
        self.trace.on = key.is_some();
        if let Some(key) = key {
            let node = tracer.nodes.get(timer.node as usize).copied().unwrap_or("?");
            tracer.begin(key, format!("timer {node}@{}", timer.time));
            tracer.pending_read = None;
        }
    }

    /// Starts the step of source record `line` of source node `node` read at `input` (built only
    /// when needed): traced when a key field holds a traced key.
    #[cold]
    pub(crate) fn trace_record(&mut self, line: &[u8], node: Option<usize>, input: impl FnOnce() -> String) {
        let Some(tracer) = self.trace.tracer.as_deref_mut() else { return };
        let key = std::str::from_utf8(line).ok().and_then(|text| Some((text, tracer.record_key(text)?)));
        self.trace.on = key.is_some();
        if let Some((text, key)) = key {
            tracer.begin(key, input());
            tracer.pending_read = Some((text.to_string(), node.unwrap_or(usize::MAX)));
        }
    }

    /// Ends tracing for a step that is not a record's or a timer's (an api-sink response).
    pub(crate) fn trace_off(&mut self) {
        self.trace.on = false;
    }

    /// The traced source record's event time is known: its `read` decision.
    #[cold]
    pub(crate) fn trace_read(&mut self, event_time: i64) {
        if let Some(tracer) = self.trace.tracer.as_deref_mut() {
            tracer.flush_read(Some(event_time));
        }
    }

    /// A record sink `sink` emitted in a traced step.
    #[cold]
    pub(crate) fn trace_emit(&mut self, node: &str, event_time: Option<i64>, event_json: &str) {
        let Some(tracer) = self.trace.tracer.as_deref_mut() else { return };
        tracer.flush_read(None);
        tracer.head(Some(node), "emit", event_time);
        tracer.line.push_str(",\"out\":null,\"record\":");
        tracer.line.push_str(event_json);
        tracer.line.push('}');
        tracer.write_line();
    }

    /// A dead letter of a traced step.
    #[cold]
    pub(crate) fn trace_dead_letter(&mut self, reason: &str, event: &str) {
        let Some(tracer) = self.trace.tracer.as_deref_mut() else { return };
        tracer.flush_read(None);
        tracer.head(None, "dead-letter", None);
        tracer.line.push_str(",\"out\":null,\"reason\":");
        write_str(&mut tracer.line, reason);
        tracer.line.push_str(",\"event\":");
        tracer.line.push_str(event);
        tracer.line.push('}');
        tracer.write_line();
    }

    /// Flushes the trace at the end of the run.
    pub(crate) fn finish_trace(&mut self) -> Result<(), TraceError> {
        match self.trace.tracer.as_deref_mut() {
            Some(tracer) => tracer.finish(),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_on_the_command_line_matches_its_string_and_the_value_it_spells() {
        assert_eq!(key_texts("u1"), vec!["\"u1\"".to_string()]);
        assert_eq!(key_texts("42"), vec!["\"42\"".to_string(), "42".to_string()]);
    }

    #[test]
    fn segments_are_written_as_now_entered_and_left() {
        let mut line = String::new();
        write_value(&mut line, &TraceValue::Segments(&["a", "b", "c"], &[0, 2], &[1, 2]));
        assert_eq!(line, r#"{"now":["a","c"],"entered":["a"],"left":["b"]}"#);
        line.clear();
        write_value(&mut line, &TraceValue::Counts(&["x", "y"], &[1, 2]));
        assert_eq!(line, r#"{"x":1,"y":2}"#);
    }
}
