//! `pulsec why DIR --key K`: the timeline of one traced key, read from `DIR/_trace.jsonl` (written
//! by a pipeline binary run with `--trace K --output DIR`), and a one-line verdict per sink: the
//! records it got, or the decision that kept the key's events from it.

use serde_json::Value;
use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::Path;

/// Event times at or above this many ms are epoch times, printed as UTC date-times; smaller ones
/// (test inputs, `ts: 10m`) are printed as offsets.
const EPOCH_FROM_MS: i64 = 100_000_000_000;

/// The pipeline as the trace's `start` line describes it.
struct Graph {
    pipeline: String,
    nodes: Vec<String>,
    sinks: Vec<String>,
    /// (from, port, to) by node index.
    edges: Vec<(usize, String, usize)>,
    keys: Vec<String>,
}

/// One decision of the key.
struct Decision {
    step: u64,
    node: Option<String>,
    decision: String,
    time: Option<i64>,
    input: String,
    out: Option<String>,
    fields: serde_json::Map<String, Value>,
}

impl Decision {
    fn bool(&self, name: &str) -> bool {
        self.fields.get(name).and_then(Value::as_bool).unwrap_or(false)
    }

    fn int(&self, name: &str) -> Option<i64> {
        self.fields.get(name).and_then(Value::as_i64)
    }

    fn node(&self) -> &str {
        self.node.as_deref().unwrap_or("")
    }
}

/// Reads the trace of `dir` and renders the report for `key`.
pub fn why(dir: &Path, key: &str) -> Result<String, String> {
    let path = dir.join("_trace.jsonl");
    let text = std::fs::read_to_string(&path).map_err(|error| {
        format!("cannot read `{}`: {error} (run the pipeline with `--output DIR --trace KEY`)", path.display())
    })?;
    let mut graph = None;
    let mut decisions = Vec::new();
    for (number, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let value: Value =
            serde_json::from_str(line).map_err(|error| format!("`{}` line {}: {error}", path.display(), number + 1))?;
        let Value::Object(mut fields) = value else {
            return Err(format!("`{}` line {}: not a JSON object", path.display(), number + 1));
        };
        if fields.get("decision").and_then(Value::as_str) == Some("start") {
            graph = Some(read_graph(&fields));
            continue;
        }
        if fields.get("key").and_then(Value::as_str) != Some(key) {
            continue;
        }
        let mut take_str = |name: &str| match fields.remove(name) {
            Some(Value::String(text)) => Some(text),
            _ => None,
        };
        let node = take_str("node");
        let decision = take_str("decision").unwrap_or_default();
        let input = take_str("input").unwrap_or_default();
        let out = take_str("out");
        let step = fields.remove("step").and_then(|step| step.as_u64()).unwrap_or(0);
        let time = fields.remove("time").and_then(|time| time.as_i64());
        fields.remove("key");
        decisions.push(Decision { step, node, decision, time, input, out, fields });
    }
    let graph = graph.ok_or_else(|| format!("`{}` has no start line: not a Pulse trace", path.display()))?;
    if !graph.keys.iter().any(|traced| traced == key) {
        return Err(format!(
            "key `{key}` was not traced in `{}`; traced keys: {}",
            path.display(),
            graph.keys.iter().map(|key| format!("`{key}`")).collect::<Vec<_>>().join(", ")
        ));
    }
    Ok(Report::new(&graph, &decisions, key).render())
}

fn read_graph(fields: &serde_json::Map<String, Value>) -> Graph {
    let strings = |name: &str| -> Vec<String> {
        fields
            .get(name)
            .and_then(Value::as_array)
            .map(|items| items.iter().filter_map(|item| item.as_str().map(str::to_string)).collect())
            .unwrap_or_default()
    };
    let edges = fields
        .get("edges")
        .and_then(Value::as_array)
        .map(|edges| {
            edges
                .iter()
                .filter_map(|edge| {
                    let edge = edge.as_array()?;
                    Some((
                        edge.first()?.as_u64()? as usize,
                        edge.get(1)?.as_str()?.to_string(),
                        edge.get(2)?.as_u64()? as usize,
                    ))
                })
                .collect()
        })
        .unwrap_or_default();
    Graph {
        pipeline: fields.get("pipeline").and_then(Value::as_str).unwrap_or("").to_string(),
        nodes: strings("nodes"),
        sinks: strings("sinks"),
        edges,
        keys: strings("keys"),
    }
}

struct Report<'t> {
    graph: &'t Graph,
    decisions: &'t [Decision],
    key: &'t str,
    epoch: bool,
    /// The day of the last epoch time printed with its date: later times that day print
    /// without it.
    day: std::cell::Cell<Option<i64>>,
}

impl<'t> Report<'t> {
    fn new(graph: &'t Graph, decisions: &'t [Decision], key: &'t str) -> Report<'t> {
        let epoch = decisions.iter().filter_map(|decision| decision.time).any(|time| time >= EPOCH_FROM_MS);
        Report { graph, decisions, key, epoch, day: std::cell::Cell::new(None) }
    }

    fn time(&self, time: Option<i64>) -> String {
        match time {
            None => "?".to_string(),
            Some(time) if self.epoch => {
                let day = time.div_euclid(86_400_000);
                let text = utc(time);
                if self.day.replace(Some(day)) == Some(day) {
                    text.split_once(' ').map_or(text.clone(), |(_, clock)| clock.to_string())
                } else {
                    text
                }
            }
            Some(time) => offset(time),
        }
    }

    /// The decisions of one step.
    fn step(&self, step: u64) -> impl Iterator<Item = &'t Decision> + 't {
        self.decisions.iter().filter(move |decision| decision.step == step)
    }

    /// The event a step read, as a person names it, with its time: `checkout at 10:40`.
    fn step_event(&self, step: u64) -> Option<String> {
        let read = self.step(step).find(|decision| decision.decision == "read")?;
        Some(format!("{} at {}", event_label(read.fields.get("event")?), self.time(read.time)))
    }

    fn render(&self) -> String {
        let mut out = String::new();
        let steps: Vec<u64> = {
            let mut seen = BTreeSet::new();
            self.decisions.iter().map(|decision| decision.step).filter(|step| seen.insert(*step)).collect()
        };
        let _ = writeln!(out, "{}: {} step(s) of pipeline `{}`", self.key, steps.len(), self.graph.pipeline);
        // Runs of steps that take the same path print as their first and last line.
        let mut index = 0;
        while index < steps.len() {
            let shape = self.shape(steps[index]);
            let mut end = index + 1;
            while end < steps.len() && self.shape(steps[end]) == shape {
                end += 1;
            }
            let _ = writeln!(out, "  {}", self.step_line(steps[index]));
            if end - index > 2 {
                let _ = writeln!(out, "  ... {} more step(s) of the same kind", end - index - 2);
            }
            if end - index > 1 {
                let _ = writeln!(out, "  {}", self.step_line(steps[end - 1]));
            }
            index = end;
        }
        let _ = writeln!(out, "verdict:");
        for sink in &self.graph.sinks {
            self.day.set(None);
            let _ = writeln!(out, "  {}", self.verdict(sink));
        }
        out
    }

    /// What makes two steps alike: the event's name, and each node's decision and port.
    fn shape(&self, step: u64) -> Vec<String> {
        self.step(step)
            .map(|decision| match decision.decision.as_str() {
                "read" => decision.fields.get("event").map(event_label).unwrap_or_default(),
                _ => format!(
                    "{}:{}:{}:{}",
                    decision.node(),
                    decision.decision,
                    decision.out.as_deref().unwrap_or(""),
                    decision.fields.get("segments").map(|segments| segments["entered"].to_string()).unwrap_or_default()
                ),
            })
            .collect()
    }

    fn step_line(&self, step: u64) -> String {
        let decisions: Vec<&Decision> = self.step(step).collect();
        let Some(first) = decisions.first() else { return String::new() };
        let mut parts = Vec::new();
        let head = match decisions.iter().find(|decision| decision.decision == "read") {
            Some(read) => format!(
                "{}  {} ({})",
                self.time(read.time),
                read.fields.get("event").map(event_label).unwrap_or_default(),
                short_input(&read.input)
            ),
            None => match first.input.strip_prefix("timer ").and_then(|timer| timer.split_once('@')) {
                Some((node, _)) => format!("{}  timer of {node}", self.time(first.time)),
                None => format!("{}  {}", self.time(first.time), first.input),
            },
        };
        for decision in &decisions {
            if decision.decision != "read" {
                parts.push(self.phrase(decision));
            }
        }
        if parts.is_empty() {
            head
        } else {
            format!("{head} → {}", parts.join(" → "))
        }
    }

    /// One decision in the timeline.
    fn phrase(&self, decision: &Decision) -> String {
        let node = decision.node();
        let until = |name: &str| self.time(decision.int(name));
        match decision.decision.as_str() {
            "filter" if decision.out.is_some() => format!("{node} passed ({})", values(decision)),
            "filter" => format!("{node} filtered it out ({})", values(decision)),
            "route" => format!("{node} routed it to {}", decision.out.as_deref().unwrap_or("?")),
            "delay-scheduled" => match decision.int("replaced") {
                Some(_) => format!("{node} delays it until {} (replacing the pending event)", until("until")),
                None => format!("{node} delays it until {}", until("until")),
            },
            "delay-dropped-older" => format!("{node} dropped it: older than the pending event"),
            "delay-fired" => format!("{node} released it at {}", self.time(decision.time)),
            "delay-superseded" => format!("{node}: this delay was superseded by a newer event"),
            "late" => format!(
                "{node}: late (event time below watermark {} − {} ms allowed)",
                self.time(decision.int("watermark")),
                decision.int("allowed_lateness").unwrap_or(0)
            ),
            "dedupe" if decision.bool("duplicate") => {
                format!("{node}: duplicate (last seen at {})", self.time(decision.int("last_seen")))
            }
            "dedupe" => format!("{node}: not a duplicate"),
            "capping" => format!(
                "{node}: {} ({} earlier in {}, max {})",
                if decision.out.as_deref() == Some("out") { "passed" } else { "capped" },
                decision.int("count").unwrap_or(0),
                offset(decision.int("window").unwrap_or(0)),
                decision.int("max").unwrap_or(0)
            ),
            "segmentation" | "segmentation-refresh" => {
                let counters = decision
                    .fields
                    .get("counters")
                    .and_then(Value::as_object)
                    .map(|counters| {
                        counters.iter().map(|(name, value)| format!("{name}={value}")).collect::<Vec<_>>().join(", ")
                    })
                    .unwrap_or_default();
                let segments = &decision.fields.get("segments").cloned().unwrap_or(Value::Null);
                let mut text = match decision.decision.as_str() {
                    "segmentation" => format!("{node}: {counters}"),
                    _ => format!("{node} at {}: {counters}", self.time(decision.time)),
                };
                for (list, verb) in [("entered", "entered"), ("left", "left")] {
                    if let Some(names) = segments[list].as_array().filter(|names| !names.is_empty()) {
                        let names: Vec<&str> = names.iter().filter_map(Value::as_str).collect();
                        let _ = write!(text, ", {verb} {}", names.join(", "));
                    }
                }
                if decision.out.is_none() {
                    text.push_str(" (segments unchanged: nothing emitted)");
                }
                text
            }
            "trigger-opened" => format!("{node} opened a window until {}", until("until")),
            "trigger-cancelled" => format!(
                "{node}: cancelled the window opened by {}",
                self.start_event(decision).unwrap_or_else(|| "its start".to_string())
            ),
            "trigger-fired" => format!(
                "{node}: the window opened by {} fired at {}",
                self.start_event(decision).unwrap_or_else(|| "its start".to_string()),
                self.time(decision.time)
            ),
            "trigger-ignored" => {
                match (decision.bool("is_start"), decision.bool("is_cancel"), decision.int("open_until")) {
                    (true, _, Some(open)) => {
                        format!("{node}: a window is already open until {}", self.time(Some(open)))
                    }
                    (_, true, None) => format!("{node}: no open window to cancel"),
                    _ => format!("{node}: neither start nor cancel ({})", values(decision)),
                }
            }
            "has-done" if decision.out.as_deref() == Some("yes") => format!(
                "{node}: yes, {}",
                self.done_event(decision).unwrap_or_else(|| format!("done at {}", until("found")))
            ),
            "has-done" => format!("{node}: no matching event since {}", until("from")),
            "has-done-recorded" => format!("{node} remembered it as done"),
            "window-fired" => format!(
                "{node}: window result {}",
                decision.fields.get("result").map(Value::to_string).unwrap_or_default()
            ),
            "emit" => format!("{node} got the record"),
            "dead-letter" => {
                format!("dead letter: {}", decision.fields.get("reason").and_then(Value::as_str).unwrap_or("?"))
            }
            other => format!("{node}: {other}"),
        }
    }

    /// The start event of a trigger's window: `add_to_cart at 10:00`.
    fn start_event(&self, decision: &Decision) -> Option<String> {
        let start = decision.fields.get("start")?;
        Some(format!("{} at {}", event_label(start), self.time(decision.int("opened_at"))))
    }

    /// The event a has-done-event found: the recorded `events` record at that time.
    fn done_event(&self, decision: &Decision) -> Option<String> {
        let found = decision.int("found")?;
        let recorded = self.decisions.iter().find(|other| {
            other.decision == "has-done-recorded" && other.node == decision.node && other.time == Some(found)
        })?;
        self.step_event(recorded.step).map(|event| format!("{event} decided it"))
    }

    /// Nodes from which `sink` can be reached (the sink included).
    fn upstream(&self, sink: &str) -> BTreeSet<usize> {
        let mut reached = BTreeSet::new();
        let Some(target) = self.graph.nodes.iter().position(|node| node == sink) else { return reached };
        let mut stack = vec![target];
        reached.insert(target);
        while let Some(node) = stack.pop() {
            for (from, _, to) in &self.graph.edges {
                if *to == node && reached.insert(*from) {
                    stack.push(*from);
                }
            }
        }
        reached
    }

    /// The one-line verdict of a sink.
    fn verdict(&self, sink: &str) -> String {
        let emits: Vec<&Decision> =
            self.decisions.iter().filter(|decision| decision.decision == "emit" && decision.node() == sink).collect();
        if !emits.is_empty() {
            if let [emit] = emits[..] {
                return format!("sent to {sink} {}", self.emit_summary(emit));
            }
            let shown = emits.len().min(6);
            let times: Vec<String> = emits[..shown].iter().map(|emit| self.time(emit.time)).collect();
            let more = if emits.len() > shown { format!(" and {} more", emits.len() - shown) } else { String::new() };
            let last = emits[emits.len() - 1];
            self.day.set(None);
            return format!(
                "sent to {sink} {} times: at {}{more}; the last {}",
                emits.len(),
                times.join(", "),
                self.emit_summary(last)
            );
        }
        let upstream = self.upstream(sink);
        let index_of = |node: &str| self.graph.nodes.iter().position(|known| known == node);
        let leads_on = |decision: &Decision| -> bool {
            let (Some(node), Some(port)) = (index_of(decision.node()), decision.out.as_deref()) else { return false };
            self.graph
                .edges
                .iter()
                .any(|(from, edge_port, to)| *from == node && edge_port == port && upstream.contains(to))
        };
        let stops: Vec<&Decision> = self
            .decisions
            .iter()
            .filter(|decision| match decision.decision.as_str() {
                "read" | "emit" | "has-done-recorded" => false,
                "dead-letter" => true,
                _ => index_of(decision.node()).is_some_and(|node| upstream.contains(&node)) && !leads_on(decision),
            })
            .collect();
        let significant = stops.iter().rev().find(|decision| !incidental(decision));
        match significant.or(stops.last()) {
            Some(stop) => format!("nothing to {sink}: {}", self.reason(stop)),
            None => format!("nothing to {sink}: no event of {} reached it", self.key),
        }
    }

    /// How a sink's record came about: its time and what the step did.
    fn emit_summary(&self, emit: &Decision) -> String {
        let time = self.time(emit.time);
        match self.step_event(emit.step) {
            Some(event) => format!("at {time} ({event})"),
            None => {
                let cause = self.step(emit.step).find(|decision| decision.decision != "emit");
                match cause {
                    Some(cause) if cause.decision == "trigger-fired" => format!(
                        "at {time} (the window of {} ran out)",
                        self.start_event(cause).unwrap_or_else(|| "its start".to_string())
                    ),
                    Some(cause) => format!("at {time} ({})", self.phrase(cause)),
                    None => format!("at {time}"),
                }
            }
        }
    }

    /// Why a decision kept the key's events from a sink, naming the event that decided it.
    fn reason(&self, stop: &Decision) -> String {
        let node = stop.node();
        let event = self.step_event(stop.step).unwrap_or_else(|| format!("the timer at {}", self.time(stop.time)));
        if matches!(stop.decision.as_str(), "trigger-fired" | "delay-superseded") {
            // These do not print `event`: the first time they print carries the date.
            self.day.set(None);
        }
        match stop.decision.as_str() {
            "filter" => format!("{event} was filtered out by {node} ({})", values(stop)),
            "route" => format!("{node} routed {event} to {}", stop.out.as_deref().unwrap_or("?")),
            "trigger-cancelled" => format!(
                "cancelled by {event} (at {node}, in the window opened by {})",
                self.start_event(stop).unwrap_or_else(|| "its start".to_string())
            ),
            "trigger-fired" => format!(
                "nothing cancelled the window opened by {} (at {node}; it fired at {})",
                self.start_event(stop).unwrap_or_else(|| "its start".to_string()),
                self.time(stop.time)
            ),
            "trigger-opened" => format!("{node} still waits: window opened by {event}"),
            "trigger-ignored" if incidental(stop) => {
                format!("no event opened a window at {node} (last: {event}, {})", values(stop))
            }
            "trigger-ignored" => format!("{event}: {}", self.phrase(stop)),
            "capping" => format!(
                "{event} capped at {node} ({} earlier in {}, max {})",
                stop.int("count").unwrap_or(0),
                offset(stop.int("window").unwrap_or(0)),
                stop.int("max").unwrap_or(0)
            ),
            "dedupe" => {
                format!("{event} was a duplicate at {node} (last seen at {})", self.time(stop.int("last_seen")))
            }
            "late" => format!("{event} was late at {node}"),
            "dead-letter" => format!(
                "{event} was dead-lettered: {}",
                stop.fields.get("reason").and_then(Value::as_str).unwrap_or("?")
            ),
            "has-done" => format!("{event}: {}", self.phrase(stop)),
            "delay-dropped-older" => format!("{event} was older than the event pending at {node}"),
            "delay-superseded" => format!("a newer event restarted {node} (timer at {})", self.time(stop.time)),
            "delay-scheduled" => format!("{node} still delays {event}"),
            _ => format!("{event}: {}", self.phrase(stop)),
        }
    }
}

/// Stops that say little about the key: events a filter, a route or a trigger was not about.
fn incidental(decision: &Decision) -> bool {
    match decision.decision.as_str() {
        "filter" | "route" => true,
        "trigger-ignored" => !decision.bool("is_start") && !decision.bool("is_cancel"),
        _ => false,
    }
}

/// The values a condition read, `event_name="checkout", userId="u1"`.
fn values(decision: &Decision) -> String {
    const NOT_VALUES: &[&str] = &["is_start", "is_cancel", "open_until", "until", "opened_at", "start"];
    decision
        .fields
        .iter()
        .filter(|(name, _)| !NOT_VALUES.contains(&name.as_str()))
        .map(|(name, value)| format!("{name}={value}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// How a person names an event: its `event_name` (or `event`, `type`, `name`, `action`), else
/// its JSON, cut at 60 characters.
fn event_label(event: &Value) -> String {
    for field in ["event_name", "event", "eventName", "type", "name", "action"] {
        if let Some(name) = event.get(field).and_then(Value::as_str) {
            return name.to_string();
        }
    }
    let text = event.to_string();
    match text.char_indices().nth(60) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text,
    }
}

/// `examples/cart/input.jsonl:22` → `input.jsonl:22`.
fn short_input(input: &str) -> &str {
    input.rsplit('/').next().unwrap_or(input)
}

pub use pulse_stdlib::time::utc;

/// A small time (ms from 0) as an offset: `0s`, `10m`, `1d 40m`, `1h 30m 5s`, `250ms`.
pub fn offset(ms: i64) -> String {
    if ms == 0 {
        return "0s".to_string();
    }
    let sign = if ms < 0 { "-" } else { "" };
    let mut rest = ms.unsigned_abs();
    let mut parts = Vec::new();
    for (unit, size) in [("d", 86_400_000u64), ("h", 3_600_000), ("m", 60_000), ("s", 1000), ("ms", 1)] {
        if rest >= size {
            parts.push(format!("{}{unit}", rest / size));
            rest %= size;
        }
    }
    format!("{sign}{}", parts.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_as_dates_or_offsets() {
        assert_eq!(utc(1_700_000_000_000), "2023-11-14 22:13:20");
        assert_eq!(utc(0), "1970-01-01 00:00:00");
        assert_eq!(utc(951_782_400_123), "2000-02-29 00:00:00.123");
        assert_eq!(offset(0), "0s");
        assert_eq!(offset(600_000), "10m");
        assert_eq!(offset(86_400_000 + 2_400_000), "1d 40m");
        assert_eq!(offset(250), "250ms");
    }
}
