//! The pure parts of checkpoints and savepoints: the progress record (source positions, clocks,
//! counters, committed output lengths, node layouts), the timer record, the portable snapshot
//! format, and the decisions taken on restore (layout check, dropped nodes, output truncation).
//! Everything is encoded with the compact binary helpers of `pulse_stdlib::state`. The progress
//! record, the savepoint frame (magic, version, checksum) and the state compatibility report
//! live in `pulse_stdlib::progress`, so `pulsec diff` reads savepoints without the runtime; they
//! are re-exported here.
//!
//! Snapshot (savepoint) format, version 2, all integers LEB128 (signed ones zig-zag) unless said:
//!
//! ```text
//! magic "PULSESP\n" (8 bytes) | format version u32 LE = 2
//! progress   (length-prefixed bytes, see `Progress::encode`)
//! timers     count, then per timer: sequence, node id, time, domain (0 event, 1 processing),
//!            event text, event time, entry time, key (0 | 1 + text)
//! entries    count, then per entry: node id, key bytes, value bytes
//! shards     count, then per entry of a partition's shard: its index in entries, the shard
//!            (`partition + 1`); absent in version 1, where every entry is in shard 0
//! checksum   FNV-1a 64 of everything before it, u64 LE
//! ```
//!
//! A timer's shard is in its sequence (see `timers::shard_of`).

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;

use pulse_stdlib::progress::{compare_state, savepoint_body, savepoint_header, seal_savepoint, StateReport};
pub use pulse_stdlib::progress::{
    read_savepoint_progress, KafkaPosition, Progress, SavepointError, SourcePosition, SNAPSHOT_MAGIC, SNAPSHOT_VERSION,
};
use pulse_stdlib::state::{put_bytes, put_varint, put_varint_signed, CodecError, Reader};

use crate::{TimeDomain, Timer, TimerKind};

fn put_str(out: &mut Vec<u8>, text: &str) {
    put_bytes(out, text.as_bytes());
}

/// A pending timer as checkpoints store it: by node id, not index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TimerRecord {
    pub node: String,
    pub time: i64,
    pub domain: TimeDomain,
    pub event: Box<str>,
    pub event_time: i64,
    pub entry_time: i64,
    pub key: Option<Box<str>>,
}

impl TimerRecord {
    pub fn from_timer(timer: &Timer, nodes: &[&str]) -> TimerRecord {
        TimerRecord {
            node: nodes.get(timer.node as usize).copied().unwrap_or("").to_string(),
            time: timer.time,
            domain: timer.domain,
            event: timer.kind.to_text().into(),
            event_time: timer.event_time,
            entry_time: timer.entry_time,
            key: timer.key.clone(),
        }
    }

    /// The runtime timer, for the pipeline whose node ids are `nodes`; `None` if the node is gone.
    pub fn into_timer(self, nodes: &[&str]) -> Option<Timer> {
        let index = nodes.iter().position(|node| *node == self.node)?;
        Some(Timer {
            node: u32::try_from(index).ok()?,
            time: self.time,
            domain: self.domain,
            kind: TimerKind::from_text(self.event),
            event_time: self.event_time,
            entry_time: self.entry_time,
            key: self.key,
        })
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        put_str(out, &self.node);
        put_varint_signed(out, self.time);
        out.push(match self.domain {
            TimeDomain::Event => 0,
            TimeDomain::Processing => 1,
        });
        put_str(out, &self.event);
        put_varint_signed(out, self.event_time);
        put_varint_signed(out, self.entry_time);
        match &self.key {
            None => out.push(0),
            Some(key) => {
                out.push(1);
                put_str(out, key);
            }
        }
    }

    pub fn decode(input: &mut Reader<'_>) -> Result<TimerRecord, CodecError> {
        let node = input.str()?.to_string();
        let time = input.varint_signed()?;
        let domain = match input.u8()? {
            0 => TimeDomain::Event,
            1 => TimeDomain::Processing,
            other => return Err(CodecError(format!("unknown timer domain {other}"))),
        };
        let event = input.str()?.into();
        let event_time = input.varint_signed()?;
        let entry_time = input.varint_signed()?;
        let key = match input.u8()? {
            0 => None,
            _ => Some(input.str()?.into()),
        };
        Ok(TimerRecord { node, time, domain, event, event_time, entry_time, key })
    }
}

/// A whole checkpoint in one portable value: the savepoint format, and the memory backend's
/// checkpoint file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub progress: Progress,
    /// (registration sequence, timer).
    pub timers: Vec<(u64, TimerRecord)>,
    /// (node id, key, value).
    pub entries: Vec<(String, Vec<u8>, Vec<u8>)>,
    /// (index in `entries`, shard) of the entries that belong to a Kafka partition's shard
    /// (`partition + 1`), in index order; the others are in shard 0. A bootstrap over a topic
    /// records them, so a run whose state follows partitions can hand each partition its part.
    pub shards: Vec<(usize, u32)>,
    /// (shard, counter its next timer gets) of partitions' shards, as their changelog markers
    /// recorded them (a group savepoint): a restored shard never numbers a timer as one that
    /// already fired, so timer outputs keep distinct ids.
    pub counters: Vec<(u32, u64)>,
}

impl Snapshot {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64 + self.entries.len() * 32);
        savepoint_header(&mut out);
        put_bytes(&mut out, &self.progress.to_bytes());
        put_varint(&mut out, self.timers.len() as u64);
        for (sequence, timer) in &self.timers {
            put_varint(&mut out, *sequence);
            timer.encode(&mut out);
        }
        put_varint(&mut out, self.entries.len() as u64);
        for (node, key, value) in &self.entries {
            put_str(&mut out, node);
            put_bytes(&mut out, key);
            put_bytes(&mut out, value);
        }
        put_varint(&mut out, self.shards.len() as u64);
        for (index, shard) in &self.shards {
            put_varint(&mut out, *index as u64);
            put_varint(&mut out, u64::from(*shard));
        }
        put_varint(&mut out, self.counters.len() as u64);
        for (shard, counter) in &self.counters {
            put_varint(&mut out, u64::from(*shard));
            put_varint(&mut out, *counter);
        }
        seal_savepoint(&mut out);
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<Snapshot, SavepointError> {
        let (version, body) = savepoint_body(bytes)?;
        let mut input = Reader::new(body);
        let decode = |input: &mut Reader<'_>| -> Result<Snapshot, CodecError> {
            let progress = Progress::from_bytes(input.bytes()?)?;
            let mut timers = Vec::new();
            for _ in 0..input.varint()? {
                timers.push((input.varint()?, TimerRecord::decode(input)?));
            }
            let mut entries = Vec::new();
            for _ in 0..input.varint()? {
                entries.push((input.str()?.to_string(), input.bytes()?.to_vec(), input.bytes()?.to_vec()));
            }
            let mut shards = Vec::new();
            if version >= 2 {
                for _ in 0..input.varint()? {
                    let index = input.varint()?;
                    let shard = input.varint()?;
                    match (usize::try_from(index), u32::try_from(shard)) {
                        (Ok(index), Ok(shard)) if index < entries.len() => shards.push((index, shard)),
                        _ => return Err(CodecError(format!("shard {shard} of entry {index} is out of range"))),
                    }
                }
            }
            let mut counters = Vec::new();
            if version >= 3 {
                for _ in 0..input.varint()? {
                    let shard = input.varint()?;
                    let shard =
                        u32::try_from(shard).map_err(|_| CodecError(format!("shard {shard} is out of range")))?;
                    counters.push((shard, input.varint()?));
                }
            }
            Ok(Snapshot { progress, timers, entries, shards, counters })
        };
        let snapshot = decode(&mut input).map_err(SavepointError::Corrupt)?;
        if !input.is_empty() {
            return Err(SavepointError::Corrupt(CodecError("trailing bytes".to_string())));
        }
        Ok(snapshot)
    }
}

/// Writes `bytes` to `path` atomically: a temporary file beside it, fsync, rename, fsync of
/// the directory. A reader sees the old file or the new one, never a mix.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path.parent().filter(|dir| !dir.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".tmp");
    let temporary = std::path::PathBuf::from(temporary);
    {
        let mut file = File::create(&temporary)?;
        file.write_all(bytes)?;
        file.sync_all()?;
    }
    std::fs::rename(&temporary, path)?;
    File::open(dir)?.sync_all()
}

/// What restoring a checkpoint into the current pipeline means for its state.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct RestorePlan {
    /// Nodes of the checkpoint that the pipeline no longer has: their state is dropped.
    pub removed_nodes: Vec<String>,
}

/// A checkpoint or savepoint whose state this pipeline cannot read, with the report `pulsec diff`
/// prints.
#[derive(Debug, thiserror::Error)]
#[error(
    "the savepoint/checkpoint is incompatible with this pipeline:\n{0}\n\
     help: an incompatible node's state cannot be restored: keep its layout, or give the changed node a new id \
     to start it empty; `pulsec diff --against SAVEPOINT PIPELINE` shows this report before a deploy"
)]
pub struct IncompatibleState(pub StateReport);

/// Checks a checkpoint's nodes and layouts against the pipeline's. A surviving node whose
/// layout changed is refused (never reset), with the report `pulsec diff` prints; nodes that
/// are gone are dropped.
pub fn plan_restore(
    saved: &Progress,
    nodes: &[&str],
    layouts: &[(&str, &str)],
    nodes_with_state: &[String],
) -> Result<RestorePlan, IncompatibleState> {
    let new_nodes: Vec<String> = nodes.iter().map(|node| node.to_string()).collect();
    let new_layouts: Vec<(String, String)> =
        layouts.iter().map(|(node, layout)| (node.to_string(), layout.to_string())).collect();
    let report = compare_state(&saved.layouts, &saved.nodes, &new_layouts, &new_nodes);
    if !report.is_compatible() {
        return Err(IncompatibleState(report));
    }
    let mut removed_nodes: Vec<String> = saved
        .nodes
        .iter()
        .chain(nodes_with_state)
        .chain(saved.layouts.iter().map(|(node, _)| node))
        .filter(|node| !nodes.contains(&node.as_str()))
        // `@...` is the runtime's own state (the repartition duplicate filter), not a node's.
        .filter(|node| !node.starts_with('@'))
        .cloned()
        .collect();
    removed_nodes.sort();
    removed_nodes.dedup();
    Ok(RestorePlan { removed_nodes })
}

/// Opens an output file for a run that resumes a checkpoint: an existing file is cut back to
/// its committed length (dropping what was written after the checkpoint) and appended to.
/// `strict` (a checkpoint of this state directory) makes a file shorter than its committed
/// length an error: committed output was lost.
pub fn open_resumed_output(path: &Path, committed: u64, strict: bool) -> io::Result<(File, u64)> {
    let mut file = OpenOptions::new().create(true).write(true).truncate(false).open(path)?;
    let length = file.metadata()?.len();
    if length < committed && strict {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("holds {length} bytes but the checkpoint committed {committed}"),
        ));
    }
    let keep = length.min(committed);
    file.set_len(keep)?;
    file.sync_data()?;
    io::Seek::seek(&mut file, io::SeekFrom::Start(keep))?;
    Ok((file, keep))
}

/// A command-line duration that does not parse.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid duration `{text}`: {problem} (expected e.g. 500ms, 2s, 5m, 1d)")]
pub struct InvalidDuration {
    pub text: String,
    pub problem: &'static str,
}

/// Parses a checkpoint interval: `500ms`, `2s`, `5m`, `1h` or plain milliseconds.
pub fn parse_duration_ms(text: &str) -> Result<u64, InvalidDuration> {
    let text = text.trim();
    // A bare number is milliseconds on the command line.
    if let Ok(millis) = text.parse::<u64>() {
        return Ok(millis);
    }
    pulse_stdlib::duration::parse(text).map_err(|problem| InvalidDuration { text: text.to_string(), problem })
}

/// The canonical spelling of a duration in ms; `off` for `i64::MAX` (no limit).
pub fn format_duration_ms(millis: i64) -> String {
    match u64::try_from(millis) {
        Ok(millis) if millis != i64::MAX as u64 => pulse_stdlib::duration::format(millis),
        _ => "off".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn progress() -> Progress {
        Progress {
            pipeline: "p".into(),
            nodes: vec!["src".into(), "settle".into(), "out".into()],
            layouts: vec![("settle".into(), "delay-latest/v1".into())],
            next_arrival: 42,
            arrival: 41,
            records_read: 40,
            blank_lines: 2,
            sources: vec![SourcePosition {
                node: "src".into(),
                offset: 1234,
                lines: 42,
                max_event_time: -5,
                finished: false,
                input: None,
            }],
            next_timer_sequence: 7,
            sink_counts: vec![("out".into(), 3)],
            dead_letters: 1,
            dropped: 2,
            dropped_per_node: vec![("settle".into(), 2)],
            outputs: vec![("dir/out.jsonl".into(), 99)],
            checkpoints: 3,
            kafka: vec![("events".into(), "clicks".into(), 3, 1_000_000)],
            origin: None,
        }
    }

    #[test]
    fn snapshot_round_trips_and_detects_corruption() {
        let snapshot = Snapshot {
            progress: progress(),
            timers: vec![(
                5,
                TimerRecord {
                    node: "settle".into(),
                    time: 2000,
                    domain: TimeDomain::Event,
                    event: "{\"a\":1}".into(),
                    event_time: 0,
                    entry_time: 0,
                    key: Some("\"u1\"".into()),
                },
            )],
            entries: vec![
                ("settle".into(), b"\"u1\"".to_vec(), vec![1, 2, 3]),
                ("settle".into(), b"\"u2\"".to_vec(), vec![4]),
            ],
            shards: vec![(1, 3)],
            counters: vec![(3, 17)],
        };
        let bytes = snapshot.encode();
        assert_eq!(&bytes[..8], SNAPSHOT_MAGIC);
        assert_eq!(Snapshot::decode(&bytes), Ok(snapshot));
        let mut corrupt = bytes.clone();
        corrupt[20] ^= 1;
        assert!(Snapshot::decode(&corrupt).expect_err("corrupt").to_string().contains("checksum"));
        let mut future = bytes;
        future[8] = 9;
        assert!(Snapshot::decode(&future).expect_err("version").to_string().contains("version 9"));
        assert!(Snapshot::decode(b"hello").is_err());
    }

    #[test]
    fn version_1_savepoints_read_with_every_entry_in_shard_0() {
        let snapshot = Snapshot {
            progress: progress(),
            timers: Vec::new(),
            entries: vec![("settle".into(), b"\"u1\"".to_vec(), vec![1])],
            shards: Vec::new(),
            counters: Vec::new(),
        };
        let current = snapshot.encode();
        // Version 1: the same body without the shard and counter sections (their zero counts).
        let body = &current[12..current.len() - 8 - 2];
        let mut old = SNAPSHOT_MAGIC.to_vec();
        old.extend_from_slice(&1u32.to_le_bytes());
        old.extend_from_slice(body);
        pulse_stdlib::progress::seal_savepoint(&mut old);
        assert_eq!(Snapshot::decode(&old), Ok(snapshot));
    }

    #[test]
    fn timers_are_stored_by_node_id() {
        let timer = Timer {
            node: 1,
            time: 10,
            domain: TimeDomain::Processing,
            kind: TimerKind::Carry("{}".into()),
            event_time: 1,
            entry_time: 2,
            key: None,
        };
        let record = TimerRecord::from_timer(&timer, &["a", "settle"]);
        assert_eq!(record.node, "settle");
        // The node moved to index 2 in an edited pipeline.
        assert_eq!(record.clone().into_timer(&["a", "new", "settle"]).map(|timer| timer.node), Some(2));
        assert_eq!(record.into_timer(&["a"]), None);
    }

    #[test]
    fn restore_keeps_surviving_nodes_drops_removed_ones_and_refuses_changed_layouts() {
        let saved = progress();
        let plan = plan_restore(&saved, &["out", "extra", "settle", "src"], &[("settle", "delay-latest/v1")], &[])
            .expect("same layout");
        assert_eq!(plan, RestorePlan::default());
        let plan = plan_restore(&saved, &["src", "out"], &[], &["gone".to_string()]).expect("settle removed");
        assert_eq!(plan.removed_nodes, vec!["gone".to_string(), "settle".to_string()]);
        let error = plan_restore(&saved, &["src", "settle", "out"], &[("settle", "delay-latest/v2")], &[])
            .expect_err("layout changed")
            .to_string();
        assert!(error.starts_with("the savepoint/checkpoint is incompatible with this pipeline:\n"), "{error}");
        assert!(error.contains("\n  incompatible  settle  delay-latest/v1 -> delay-latest/v2\n"), "{error}");
        let error =
            plan_restore(&saved, &["src", "settle", "out"], &[], &[]).expect_err("no longer stateful").to_string();
        assert!(error.contains("settle  delay-latest/v1 -> (no state)"), "{error}");
    }

    #[test]
    fn resumed_outputs_are_cut_back_to_the_committed_length() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("out.jsonl");
        std::fs::write(&path, "committed\nuncommitted\n").expect("write");
        let (mut file, length) = open_resumed_output(&path, 10, true).expect("opens");
        assert_eq!(length, 10);
        file.write_all(b"next\n").expect("append");
        drop(file);
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "committed\nnext\n");
        assert!(open_resumed_output(&path, 100, true).is_err(), "committed output was lost");
        let (_, length) = open_resumed_output(&path, 100, false).expect("savepoint restore appends");
        assert_eq!(length, 15);
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration_ms("500ms"), Ok(500));
        assert_eq!(parse_duration_ms("2s"), Ok(2000));
        assert_eq!(parse_duration_ms("5m"), Ok(300_000));
        assert_eq!(parse_duration_ms("250"), Ok(250));
        assert!(parse_duration_ms("2 weeks").is_err());
        assert!(parse_duration_ms("s").is_err());
    }
}
