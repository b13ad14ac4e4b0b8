//! The run report (`--report FILE`) and the timers left pending at the end of a run with
//! `--end-of-input keep` (`DIR/_pending.jsonl`).
//!
//! Per node, every record that enters is accounted for exactly once, so the numbers add up:
//!
//! ```text
//! in + created = sum(out per port) + dropped + dead_lettered + absorbed + pending
//! ```
//!
//! `out` counts each record a node sends on a port (a sink's `written` port counts the records
//! it wrote); `dropped` the records discarded by design (filtered, deduplicated, an unconnected
//! port, a `latest` delay's superseded event, a trigger's event that opens no window, ...), late
//! records dropped included; `dead_lettered` the dead letters written at the node; `absorbed`
//! records folded into state that do not go on themselves (window-aggregate inputs,
//! has-done-event `events`); `created` records a node makes from its state rather than passing
//! one on (window results, segmentation refreshes, api-sink responses, the extra copies of a
//! `splitter` in `all` mode); `pending` records held at the end of the run (a delay's events,
//! a trigger's open windows) with `--end-of-input keep`.

use std::collections::{BTreeMap, HashSet};
use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::Path;

use pulse_stdlib::operators::{PendingEvent, SegmentationState, TriggerState, WindowsState};
use pulse_stdlib::state::{decode, Codec, Store};
use serde_json::{json, Map, Value};

use crate::{PipelineSpec, TimeDomain, Timer, TimerKind};

/// Per-node figures the report needs beyond the counters `/metrics` serves.
#[derive(Debug, Default)]
pub struct Accounting {
    /// Per node, per output port: records sent on.
    pub port_out: Vec<Vec<u64>>,
    pub dead_lettered: Vec<u64>,
    pub absorbed: Vec<u64>,
    pub created: Vec<u64>,
    /// With `--report`: per node, the hashes of the keys seen (keyed nodes only).
    pub keys: Option<Vec<HashSet<u64>>>,
    /// With `--report`: per sink, records per day of event time (days since 1970-01-01).
    pub days: Option<Vec<BTreeMap<i64, u64>>>,
}

impl Accounting {
    pub fn new(spec: &PipelineSpec, reporting: bool) -> Accounting {
        let nodes = spec.nodes.len();
        let port_out =
            (0..nodes).map(|node| vec![0; spec.topology.ports.get(node).map_or(0, |ports| ports.len())]).collect();
        Accounting {
            port_out,
            dead_lettered: vec![0; nodes],
            absorbed: vec![0; nodes],
            created: vec![0; nodes],
            keys: reporting.then(|| vec![HashSet::new(); nodes]),
            days: reporting.then(|| vec![BTreeMap::new(); spec.sinks.len()]),
        }
    }

    #[inline]
    pub fn key_seen(&mut self, node: usize, key: &[u8]) {
        if let Some(keys) = &mut self.keys {
            if let Some(seen) = keys.get_mut(node) {
                // SipHash with fixed keys: deterministic, 64 bits (collisions are negligible below
                // billions of keys).
                let mut hasher = std::hash::DefaultHasher::new();
                key.hash(&mut hasher);
                seen.insert(hasher.finish());
            }
        }
    }

    #[inline]
    pub fn sink_record(&mut self, sink: usize, event_time: Option<i64>) {
        if let Some(days) = &mut self.days {
            if let Some(per_day) = days.get_mut(sink) {
                *per_day.entry(event_time.map_or(i64::MIN, |time| time.div_euclid(86_400_000))).or_insert(0) += 1;
            }
        }
    }
}

/// One timer left pending at the end of a run, as `_pending.jsonl` lists it.
#[derive(Clone, Debug, PartialEq)]
pub struct PendingTimer {
    pub node: usize,
    /// The key's text form, for keyed operators.
    pub key: Option<String>,
    /// When it would fire: event time (once the watermark passes it) or arrival time.
    pub due: i64,
    pub domain: TimeDomain,
    /// What it would do: `emit` (a held record goes on), `refresh` (a segmentation count drops),
    /// `fire` (a window's result) or `cleanup` (a fired window is discarded).
    pub action: &'static str,
    /// The JSON text of the record it holds or would emit, if any.
    pub record: Option<String>,
    /// Whether the record is an input record still held by the node (delay, trigger): counted
    /// as `pending` in the node's balance.
    pub holds_record: bool,
}

fn state_of<T: Codec>(state: &mut impl Store, node: &str, key: &[u8]) -> Option<T> {
    state.get(node, key).and_then(|bytes| decode(&bytes).ok())
}

/// The live timers among `timers` (sequence, timer): a timer is live when firing it now would
/// act, judged from the node's state the way its operator judges it (a `latest` delay or a
/// trigger whose key moved on ignores the old timer). One live timer per (node, key, due, kind)
/// for operators that hold at most one record per key.
pub fn pending_timers<'t>(
    spec: &PipelineSpec,
    timers: impl Iterator<Item = (u64, &'t Timer)>,
    state: &mut impl Store,
) -> Vec<PendingTimer> {
    let mut ordered: Vec<(u64, &Timer)> = timers.collect();
    ordered.sort_by_key(|(sequence, timer)| (timer.time, *sequence));
    let mut seen: HashSet<(u32, Option<&str>, i64, &str)> = HashSet::new();
    let mut pending = Vec::new();
    for (_, timer) in ordered {
        let node = timer.node as usize;
        let Some(&node_id) = spec.nodes.get(node) else { continue };
        let layout = spec.state_layouts.iter().find(|(id, _)| *id == node_id).map_or("", |(_, layout)| *layout);
        let key_text = timer.key.as_deref();
        let key = key_text.unwrap_or("").as_bytes();
        let entry = |action: &'static str, record: Option<String>, holds_record: bool| PendingTimer {
            node,
            key: key_text.map(str::to_string),
            due: timer.time,
            domain: timer.domain,
            action,
            record,
            holds_record,
        };
        let live = if layout.starts_with("delay-latest/") {
            match state_of::<PendingEvent>(state, node_id, key) {
                Some(held) if held.fire_at == timer.time => Some(entry("emit", Some(held.text.into()), true)),
                _ => None,
            }
        } else if layout.starts_with("user-event-trigger/") {
            match state_of::<TriggerState>(state, node_id, key) {
                Some(open) if open.deadline == timer.time => Some(entry("emit", Some(open.start_event.into()), true)),
                _ => None,
            }
        } else if layout.starts_with("segmentation/") {
            // The boundary `at` is planned in state; its timer fires at `at - 1`.
            match state_of::<SegmentationState>(state, node_id, key).and_then(|current| current.refresh) {
                Some((at, event)) if at == timer.time.saturating_add(1) => {
                    Some(entry("refresh", Some(event.into()), false))
                }
                _ => None,
            }
        } else if layout.starts_with("window-aggregate/") {
            let windows =
                state_of::<WindowsState>(state, node_id, key).map(|current| current.windows).unwrap_or_default();
            if timer.kind == TimerKind::WindowCleanup {
                windows
                    .iter()
                    .any(|window| window.fired && window.end.saturating_sub(1) <= timer.time)
                    .then(|| entry("cleanup", None, false))
            } else {
                windows
                    .iter()
                    .any(|window| window.end == timer.time.saturating_add(1) && !window.fired)
                    .then(|| entry("fire", None, false))
            }
        } else {
            match &timer.kind {
                // A delay without state: the timer carries its record.
                TimerKind::Carry(record) => Some(entry("emit", Some(record.to_string()), true)),
                TimerKind::State | TimerKind::WindowEnd | TimerKind::WindowCleanup => Some(entry("emit", None, false)),
            }
        };
        let Some(live) = live else { continue };
        let one_per_key = !layout.is_empty();
        if one_per_key && !seen.insert((timer.node, key_text, timer.time, live.action)) {
            continue;
        }
        pending.push(live);
    }
    pending
}

/// Writes `_pending.jsonl`: one `{"node", "key", "due", "time", "action", "record"}` per live
/// timer, by due time.
pub fn write_pending(path: &Path, spec: &PipelineSpec, pending: &[PendingTimer]) -> std::io::Result<()> {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    for timer in pending {
        let record = timer
            .record
            .as_deref()
            .map(|text| serde_json::from_str::<Value>(text).unwrap_or_else(|_| Value::String(text.to_string())))
            .unwrap_or(Value::Null);
        let mut line = Map::new();
        line.insert("node".into(), json!(spec.nodes[timer.node]));
        line.insert("key".into(), timer.key.as_deref().map_or(Value::Null, key_value));
        line.insert("due".into(), json!(timer.due));
        line.insert("due_utc".into(), json!(utc_text(timer.due)));
        line.insert(
            "time".into(),
            json!(match timer.domain {
                TimeDomain::Event => "event",
                TimeDomain::Processing => "processing",
            }),
        );
        line.insert("action".into(), json!(timer.action));
        line.insert("record".into(), record);
        serde_json::to_writer(&mut out, &Value::Object(line))?;
        out.write_all(b"\n")?;
    }
    out.flush()
}

/// A key's text form (G12) as JSON: the key's value (`"u1"`, `7`).
fn key_value(text: &str) -> Value {
    serde_json::from_str::<Value>(text).unwrap_or_else(|_| Value::String(text.to_string()))
}

/// The civil date (UTC) of a day number since 1970-01-01.
pub fn civil_date(days: i64) -> String {
    let (year, month, day) = pulse_stdlib::time::civil_from_days(days);
    format!("{year:04}-{month:02}-{day:02}")
}

/// `2024-05-01T10:00:00.000Z` for a time in ms (UTC).
pub fn utc_text(ms: i64) -> String {
    let days = ms.div_euclid(86_400_000);
    let in_day = ms.rem_euclid(86_400_000);
    let (hours, minutes, seconds, millis) =
        (in_day / 3_600_000, in_day / 60_000 % 60, in_day / 1000 % 60, in_day % 1000);
    format!("{}T{hours:02}:{minutes:02}:{seconds:02}.{millis:03}Z", civil_date(days))
}

/// Counters of one run, as the driver hands them over at the end.
pub struct RunFigures<'a> {
    pub end_of_input: &'static str,
    pub records_read: u64,
    pub blank_lines: u64,
    pub dead_letters: u64,
    pub watermark: i64,
    pub records_in: &'a [u64],
    pub records_out: &'a [u64],
    pub dropped: &'a [u64],
    pub late: &'a [u64],
    pub sink_counts: &'a [u64],
    pub accounting: &'a Accounting,
    pub pending: &'a [PendingTimer],
}

/// The report as JSON (see the module documentation for what each number means).
pub fn report_json(spec: &PipelineSpec, figures: &RunFigures<'_>) -> Value {
    let topology = &spec.topology;
    let acct = figures.accounting;
    let sink_of = |node: &str| spec.sinks.iter().position(|sink| sink.node == node);
    let mut nodes = Vec::new();
    let mut attributed = 0;
    for (index, id) in spec.nodes.iter().enumerate() {
        let mut out = Map::new();
        let ports = topology.ports.get(index).copied().unwrap_or(&[]);
        let mut ported = 0;
        for (port, name) in ports.iter().enumerate() {
            let count = acct.port_out[index].get(port).copied().unwrap_or(0);
            ported += count;
            out.insert((*name).to_string(), json!(count));
        }
        let unported = figures.records_out[index].saturating_sub(ported);
        if unported > 0 {
            out.insert("out".into(), json!(unported + out.get("out").and_then(Value::as_u64).unwrap_or(0)));
        }
        if let Some(sink) = sink_of(id) {
            out.insert("written".into(), json!(figures.sink_counts[sink]));
        }
        let pending_records = figures.pending.iter().filter(|timer| timer.node == index && timer.holds_record).count();
        let pending_timers = figures.pending.iter().filter(|timer| timer.node == index).count();
        attributed += acct.dead_lettered[index];
        let mut node = Map::new();
        node.insert("id".into(), json!(id));
        node.insert("type".into(), json!(topology.node_types.get(index).copied().unwrap_or("")));
        node.insert("in".into(), json!(figures.records_in[index]));
        node.insert("out".into(), Value::Object(out));
        node.insert("dropped".into(), json!(figures.dropped[index]));
        node.insert("late".into(), json!(figures.late[index]));
        node.insert("dead_lettered".into(), json!(acct.dead_lettered[index]));
        node.insert("absorbed".into(), json!(acct.absorbed[index]));
        node.insert("created".into(), json!(acct.created[index]));
        node.insert("pending".into(), json!(pending_records));
        node.insert("pending_timers".into(), json!(pending_timers));
        let keyed = topology.keyed.get(index).copied().unwrap_or(false);
        let distinct = match (&acct.keys, keyed) {
            (Some(keys), true) => json!(keys[index].len()),
            _ => Value::Null,
        };
        node.insert("distinct_keys".into(), distinct);
        nodes.push(Value::Object(node));
    }
    let edges: Vec<Value> = topology
        .edges
        .iter()
        .map(|edge| {
            let (from, port) = (edge.from as usize, edge.port as usize);
            let port_name = topology.ports.get(from).and_then(|ports| ports.get(port)).copied().unwrap_or("out");
            json!({
                "from": spec.nodes[from],
                "port": port_name,
                "to": spec.nodes[edge.to as usize],
                "to_port": edge.to_port,
                "records": acct.port_out[from].get(port).copied().unwrap_or(0),
            })
        })
        .collect();
    let sinks: Vec<Value> = spec
        .sinks
        .iter()
        .enumerate()
        .map(|(index, sink)| {
            let per_day: Map<String, Value> = acct
                .days
                .as_ref()
                .map(|days| {
                    days[index]
                        .iter()
                        .map(|(day, count)| {
                            let label = if *day == i64::MIN { "unknown".to_string() } else { civil_date(*day) };
                            (label, json!(count))
                        })
                        .collect()
                })
                .unwrap_or_default();
            json!({ "node": sink.node, "written": figures.sink_counts[index], "per_day": per_day })
        })
        .collect();
    let watermark = match figures.watermark {
        i64::MIN => Value::Null,
        i64::MAX => json!("+inf"),
        time => json!(time),
    };
    json!({
        "pipeline": spec.name,
        "end_of_input": figures.end_of_input,
        "records_read": figures.records_read,
        "blank_lines": figures.blank_lines,
        "dead_letters": figures.dead_letters,
        // Dead letters no node is named for: delivery failures of live api-sinks.
        "dead_letters_unattributed": figures.dead_letters.saturating_sub(attributed),
        "watermark": watermark,
        "nodes": nodes,
        "edges": edges,
        "sinks": sinks,
    })
}

/// The balance of one node in a report: `in + created - (out + dropped + dead_lettered +
/// absorbed + pending)`, zero when every record is accounted for.
pub fn imbalance(node: &Value) -> i64 {
    let number = |name: &str| node.get(name).and_then(Value::as_i64).unwrap_or(0);
    let out: i64 =
        node.get("out").and_then(Value::as_object).map_or(0, |ports| ports.values().filter_map(Value::as_i64).sum());
    number("in") + number("created")
        - out
        - number("dropped")
        - number("dead_lettered")
        - number("absorbed")
        - number("pending")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(civil_date(0), "1970-01-01");
        assert_eq!(civil_date(19_723), "2024-01-01");
        assert_eq!(civil_date(-1), "1969-12-31");
        assert_eq!(utc_text(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
    }

    #[test]
    fn imbalance_adds_every_term() {
        let node = json!({"in": 10, "created": 2, "out": {"a": 3, "b": 1}, "dropped": 2, "dead_lettered": 1,
                          "absorbed": 1, "pending": 4});
        assert_eq!(imbalance(&node), 0);
        let node = json!({"in": 10, "out": {"a": 3}, "dropped": 2});
        assert_eq!(imbalance(&node), 5);
    }
}
