//! The progress record of checkpoints and savepoints, the frame of the portable savepoint file,
//! and the state compatibility report that restores and `pulsec diff` share. This is pure data
//! and bytes, so the compiler can read a savepoint without linking the runtime; the runtime
//! re-exports it from `pulse_runtime::checkpoint`, which owns the timers and entries of a
//! snapshot and the I/O.
//!
//! Savepoint frame, format version 2 (the body is described in `pulse_runtime::checkpoint`):
//!
//! ```text
//! magic "PULSESP\n" (8 bytes) | format version u32 LE = 2 (1 is still read)
//! body       progress (length-prefixed bytes, see `Progress::encode`), timers, entries,
//!            since version 2 the partition shards of entries
//! checksum   FNV-1a 64 of everything before it, u64 LE
//! ```

use std::fmt;

use crate::state::{put_bytes, put_varint, put_varint_signed, CodecError, Reader};

pub const SNAPSHOT_MAGIC: &[u8; 8] = b"PULSESP\n";
pub const SNAPSHOT_VERSION: u32 = 3;
/// The oldest savepoint format version this binary reads.
pub const SNAPSHOT_OLDEST_VERSION: u32 = 1;
/// Version of the progress record inside checkpoints and snapshots.
/// Version 2 added Kafka positions; version 1 records read as having none. Version 3 added the
/// identity of each file input; older records read as having none.
const PROGRESS_VERSION: u64 = 3;
/// Magic, version and checksum: the smallest possible savepoint file.
const FRAME_LEN: usize = 8 + 4 + 8;

/// Where one source stands.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SourcePosition {
    pub node: String,
    /// Bytes consumed from the input.
    pub offset: u64,
    /// Lines consumed (blank and rejected ones included).
    pub lines: u64,
    /// The largest event time observed (`i64::MIN` for none): the source's watermark state.
    pub max_event_time: i64,
    /// The input ended (watermark +∞).
    pub finished: bool,
    /// What the source read, when it was a file: a resume checks it reads the same one.
    pub input: Option<InputIdentity>,
}

/// Enough of a file input to recognise it on resume: its path and a hash of its first and last
/// committed bytes (up to [`InputIdentity::SAMPLE`] bytes each, ending at the committed offset).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InputIdentity {
    /// The canonical (absolute, symlink-free) path.
    pub path: String,
    /// FNV-1a 64 of the bytes `[0, min(offset, SAMPLE))`.
    pub head: u64,
    /// FNV-1a 64 of the bytes `[offset - min(offset, SAMPLE), offset)`.
    pub tail: u64,
}

impl InputIdentity {
    /// Bytes hashed at each end of the committed part of an input.
    pub const SAMPLE: u64 = 4096;
}

/// Where one Kafka partition stands: (source node id, topic, partition, next offset).
pub type KafkaPosition = (String, String, i32, i64);

/// Everything of a checkpoint that is not state entries or timers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Progress {
    pub pipeline: String,
    /// Node ids of the pipeline that wrote it.
    pub nodes: Vec<String>,
    /// (node id, layout string) of its stateful nodes.
    pub layouts: Vec<(String, String)>,
    /// The arrival the next line gets (G30).
    pub next_arrival: i64,
    /// The arrival clock as operators last saw it.
    pub arrival: i64,
    pub records_read: u64,
    pub blank_lines: u64,
    pub sources: Vec<SourcePosition>,
    /// The timer queue's registration counter.
    pub next_timer_sequence: u64,
    /// (sink node id, records written).
    pub sink_counts: Vec<(String, u64)>,
    pub dead_letters: u64,
    pub dropped: u64,
    /// (node id, records dropped).
    pub dropped_per_node: Vec<(String, u64)>,
    /// (output file path, committed length in bytes).
    pub outputs: Vec<(String, u64)>,
    /// Checkpoints committed so far.
    pub checkpoints: u64,
    /// Every Kafka partition read.
    pub kafka: Vec<KafkaPosition>,
    /// The savepoint this run's state descends from (FNV-1a 64 of its file), if any: a restart
    /// with the `--from-savepoint` it was started with continues from the checkpoint.
    pub origin: Option<u64>,
}

fn put_str(out: &mut Vec<u8>, text: &str) {
    put_bytes(out, text.as_bytes());
}

fn read_u64_le(input: &mut Reader<'_>) -> Result<u64, CodecError> {
    let bytes = input.take(8)?;
    Ok(u64::from_le_bytes(bytes.try_into().map_err(|_| CodecError("truncated u64".to_string()))?))
}

fn put_pairs(out: &mut Vec<u8>, pairs: &[(String, u64)]) {
    put_varint(out, pairs.len() as u64);
    for (name, count) in pairs {
        put_str(out, name);
        put_varint(out, *count);
    }
}

fn read_pairs(input: &mut Reader<'_>) -> Result<Vec<(String, u64)>, CodecError> {
    let count = input.varint()?;
    let mut pairs = Vec::new();
    for _ in 0..count {
        pairs.push((input.str()?.to_string(), input.varint()?));
    }
    Ok(pairs)
}

impl Progress {
    pub fn encode(&self, out: &mut Vec<u8>) {
        put_varint(out, PROGRESS_VERSION);
        put_str(out, &self.pipeline);
        put_varint(out, self.nodes.len() as u64);
        for node in &self.nodes {
            put_str(out, node);
        }
        put_varint(out, self.layouts.len() as u64);
        for (node, layout) in &self.layouts {
            put_str(out, node);
            put_str(out, layout);
        }
        put_varint_signed(out, self.next_arrival);
        put_varint_signed(out, self.arrival);
        put_varint(out, self.records_read);
        put_varint(out, self.blank_lines);
        put_varint(out, self.sources.len() as u64);
        for source in &self.sources {
            put_str(out, &source.node);
            put_varint(out, source.offset);
            put_varint(out, source.lines);
            put_varint_signed(out, source.max_event_time);
            out.push(u8::from(source.finished));
        }
        put_varint(out, self.next_timer_sequence);
        put_pairs(out, &self.sink_counts);
        put_varint(out, self.dead_letters);
        put_varint(out, self.dropped);
        put_pairs(out, &self.dropped_per_node);
        put_pairs(out, &self.outputs);
        put_varint(out, self.checkpoints);
        put_varint(out, self.kafka.len() as u64);
        for (node, topic, partition, next) in &self.kafka {
            put_str(out, node);
            put_str(out, topic);
            put_varint_signed(out, i64::from(*partition));
            put_varint_signed(out, *next);
        }
        match self.origin {
            None => out.push(0),
            Some(origin) => {
                out.push(1);
                out.extend_from_slice(&origin.to_le_bytes());
            }
        }
        for source in &self.sources {
            match &source.input {
                None => out.push(0),
                Some(input) => {
                    out.push(1);
                    put_str(out, &input.path);
                    out.extend_from_slice(&input.head.to_le_bytes());
                    out.extend_from_slice(&input.tail.to_le_bytes());
                }
            }
        }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out);
        out
    }

    pub fn decode(input: &mut Reader<'_>) -> Result<Progress, CodecError> {
        let version = input.varint()?;
        if !(1..=PROGRESS_VERSION).contains(&version) {
            return Err(CodecError(format!("unsupported checkpoint record version {version}")));
        }
        let pipeline = input.str()?.to_string();
        let mut nodes = Vec::new();
        for _ in 0..input.varint()? {
            nodes.push(input.str()?.to_string());
        }
        let mut layouts = Vec::new();
        for _ in 0..input.varint()? {
            layouts.push((input.str()?.to_string(), input.str()?.to_string()));
        }
        let next_arrival = input.varint_signed()?;
        let arrival = input.varint_signed()?;
        let records_read = input.varint()?;
        let blank_lines = input.varint()?;
        let mut sources = Vec::new();
        for _ in 0..input.varint()? {
            sources.push(SourcePosition {
                node: input.str()?.to_string(),
                offset: input.varint()?,
                lines: input.varint()?,
                max_event_time: input.varint_signed()?,
                finished: input.u8()? != 0,
                input: None,
            });
        }
        let mut progress = Progress {
            pipeline,
            nodes,
            layouts,
            next_arrival,
            arrival,
            records_read,
            blank_lines,
            sources,
            next_timer_sequence: input.varint()?,
            sink_counts: read_pairs(input)?,
            dead_letters: input.varint()?,
            dropped: input.varint()?,
            dropped_per_node: read_pairs(input)?,
            outputs: read_pairs(input)?,
            checkpoints: input.varint()?,
            kafka: Vec::new(),
            origin: None,
        };
        if version >= 2 {
            for _ in 0..input.varint()? {
                let node = input.str()?.to_string();
                let topic = input.str()?.to_string();
                let partition = i32::try_from(input.varint_signed()?)
                    .map_err(|_| CodecError("partition number out of range".to_string()))?;
                progress.kafka.push((node, topic, partition, input.varint_signed()?));
            }
        }
        if version >= 3 {
            if input.u8()? != 0 {
                progress.origin = Some(read_u64_le(input)?);
            }
            for source in &mut progress.sources {
                if input.u8()? != 0 {
                    source.input = Some(InputIdentity {
                        path: input.str()?.to_string(),
                        head: read_u64_le(input)?,
                        tail: read_u64_le(input)?,
                    });
                }
            }
        }
        Ok(progress)
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Progress, CodecError> {
        let mut reader = Reader::new(bytes);
        Progress::decode(&mut reader)
    }

    /// The committed length of output `path`, if this checkpoint knows it.
    pub fn output_length(&self, path: &str) -> Option<u64> {
        self.outputs.iter().find(|(known, _)| known == path).map(|(_, length)| *length)
    }
}

/// FNV-1a 64, the savepoint checksum.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in bytes {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

/// Starts a savepoint file in `out`: magic and format version. The body follows, then
/// `seal_savepoint`.
pub fn savepoint_header(out: &mut Vec<u8>) {
    out.extend_from_slice(SNAPSHOT_MAGIC);
    out.extend_from_slice(&SNAPSHOT_VERSION.to_le_bytes());
}

/// Ends a savepoint file: the checksum of everything written so far.
pub fn seal_savepoint(out: &mut Vec<u8>) {
    let checksum = fnv1a(out);
    out.extend_from_slice(&checksum.to_le_bytes());
}

/// Why a savepoint file cannot be read. Messages name no file: the caller does.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SavepointError {
    #[error("not a Pulse savepoint (bad magic)")]
    BadMagic,
    #[error(
        "savepoint format version {0} is not supported (this binary reads versions {SNAPSHOT_OLDEST_VERSION} to {SNAPSHOT_VERSION})"
    )]
    Version(u32),
    #[error("savepoint is corrupt (checksum mismatch)")]
    Checksum,
    /// The frame is sound but a record inside it does not decode.
    #[error("savepoint is corrupt: {0}")]
    Corrupt(CodecError),
}

/// Checks a savepoint file's magic, format version and checksum, and returns its format
/// version and body (the bytes between the header and the checksum).
pub fn savepoint_body(bytes: &[u8]) -> Result<(u32, &[u8]), SavepointError> {
    if bytes.len() < FRAME_LEN || &bytes[..8] != SNAPSHOT_MAGIC {
        return Err(SavepointError::BadMagic);
    }
    let version = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
    if !(SNAPSHOT_OLDEST_VERSION..=SNAPSHOT_VERSION).contains(&version) {
        return Err(SavepointError::Version(version));
    }
    let (body, checksum) = bytes.split_at(bytes.len() - 8);
    let mut checksum_bytes = [0; 8];
    checksum_bytes.copy_from_slice(checksum);
    if fnv1a(body) != u64::from_le_bytes(checksum_bytes) {
        return Err(SavepointError::Checksum);
    }
    Ok((version, &body[SNAPSHOT_MAGIC.len() + 4..]))
}

/// The progress record of a savepoint file (checked as `savepoint_body` does); the timers and
/// entries after it are not read.
pub fn read_savepoint_progress(bytes: &[u8]) -> Result<Progress, SavepointError> {
    let mut body = Reader::new(savepoint_body(bytes)?.1);
    body.bytes().and_then(Progress::from_bytes).map_err(SavepointError::Corrupt)
}

/// What happens to one node's state when a pipeline's saved state is restored into another.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StateChange {
    /// The node keeps its state: same id, same layout.
    Kept { layout: String },
    /// The node keeps its state under a layout that reads the old one (`layout_reads`): a
    /// segmentation node whose counters or segments changed keeps the others' counts.
    Adapted { old: String, new: String },
    /// The new pipeline has no node with this id (removed or renamed): its state is dropped.
    Dropped { layout: String },
    /// The node is still there but its layout changed (`new` is `None` when it no longer keeps
    /// state): its state cannot be restored.
    Incompatible { old: String, new: Option<String> },
    /// The node keeps state only in the new pipeline: it starts empty. `existed` when the old
    /// pipeline had a node with this id, without state.
    New { layout: String, existed: bool },
}

/// One node of a `StateReport`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeState {
    pub node: String,
    pub change: StateChange,
}

impl NodeState {
    /// `kept`, `dropped`, `incompatible` or `new`.
    pub fn status(&self) -> &'static str {
        match self.change {
            StateChange::Kept { .. } | StateChange::Adapted { .. } => "kept",
            StateChange::Dropped { .. } => "dropped",
            StateChange::Incompatible { .. } => "incompatible",
            StateChange::New { .. } => "new",
        }
    }

    /// The node's layout in the old pipeline (or savepoint), if it kept state there.
    pub fn old_layout(&self) -> Option<&str> {
        match &self.change {
            StateChange::Kept { layout } | StateChange::Dropped { layout } => Some(layout),
            StateChange::Incompatible { old, .. } | StateChange::Adapted { old, .. } => Some(old),
            StateChange::New { .. } => None,
        }
    }

    /// The node's layout in the new pipeline, if it keeps state there.
    pub fn new_layout(&self) -> Option<&str> {
        match &self.change {
            StateChange::Kept { layout }
            | StateChange::New { layout, .. }
            | StateChange::Adapted { new: layout, .. } => Some(layout),
            StateChange::Incompatible { new, .. } => new.as_deref(),
            StateChange::Dropped { .. } => None,
        }
    }
}

/// Per stateful node, what restoring the old pipeline's state into the new one does: the old
/// pipeline's stateful nodes in their order, then the new pipeline's new ones in theirs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StateReport {
    pub nodes: Vec<NodeState>,
}

impl StateReport {
    /// True when no node's state is incompatible; dropped and new nodes are fine.
    pub fn is_compatible(&self) -> bool {
        !self.nodes.iter().any(|node| matches!(node.change, StateChange::Incompatible { .. }))
    }

    /// How many nodes have this status (`kept`, `dropped`, `incompatible`, `new`).
    pub fn count(&self, status: &str) -> usize {
        self.nodes.iter().filter(|node| node.status() == status).count()
    }
}

/// How the report shows the layout of a node without state.
const NO_STATE: &str = "(no state)";

/// One line per node: status, node id, layout (`old -> new` when it changed), the columns
/// aligned, each line indented by two spaces, no newline after the last.
impl fmt::Display for StateReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let node_width = self.nodes.iter().map(|node| node.node.chars().count()).max().unwrap_or(0);
        for (idx, node) in self.nodes.iter().enumerate() {
            if idx > 0 {
                f.write_str("\n")?;
            }
            let layout = match &node.change {
                StateChange::Kept { layout } | StateChange::Dropped { layout } => layout.clone(),
                StateChange::New { layout, existed: false } => layout.clone(),
                StateChange::New { layout, existed: true } => format!("{NO_STATE} -> {layout}"),
                StateChange::Incompatible { old, new } => format!("{old} -> {}", new.as_deref().unwrap_or(NO_STATE)),
                StateChange::Adapted { old, new } => format!("{old} -> {new}"),
            };
            write!(f, "  {:<12}  {:<node_width$}  {layout}", node.status(), node.node)?;
        }
        Ok(())
    }
}

/// Compares the stateful nodes of an old pipeline (or savepoint) with a new pipeline's: `old`
/// and `new` are (node id, layout) of the stateful nodes, `old_nodes` and `new_nodes` all node
/// ids. State is matched by node id, so a renamed node is dropped under its old id and new under
/// its new one.
pub fn compare_state(
    old: &[(String, String)],
    old_nodes: &[String],
    new: &[(String, String)],
    new_nodes: &[String],
) -> StateReport {
    let layout_in = |layouts: &[(String, String)], node: &str| {
        layouts.iter().find(|(known, _)| known == node).map(|(_, layout)| layout.clone())
    };
    let mut nodes = Vec::new();
    for (node, old_layout) in old {
        let change = if !new_nodes.contains(node) {
            StateChange::Dropped { layout: old_layout.clone() }
        } else {
            match layout_in(new, node) {
                Some(new_layout) if new_layout == *old_layout => StateChange::Kept { layout: new_layout },
                Some(new_layout) if layout_reads(old_layout, &new_layout) => {
                    StateChange::Adapted { old: old_layout.clone(), new: new_layout }
                }
                new_layout => StateChange::Incompatible { old: old_layout.clone(), new: new_layout },
            }
        };
        nodes.push(NodeState { node: node.clone(), change });
    }
    for (node, new_layout) in new {
        if layout_in(old, node).is_none() {
            let change = StateChange::New { layout: new_layout.clone(), existed: old_nodes.contains(node) };
            nodes.push(NodeState { node: node.clone(), change });
        }
    }
    StateReport { nodes }
}

/// Whether state written under the layout `old` reads under `new`: the same layout, or two
/// segmentation layouts with the same bucket size, since a segmentation node stores its counts
/// and segments by their names' ids (`operators::SegmentNames`): counters and segments may be
/// added, removed or reordered, and the others keep their state.
pub fn layout_reads(old: &str, new: &str) -> bool {
    let bucket = |layout: &str| layout.strip_prefix("segmentation/v2 ")?.split(' ').next().map(str::to_string);
    old == new || bucket(old).is_some_and(|bucket_old| bucket(new) == Some(bucket_old))
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
                input: Some(InputIdentity { path: "/data/in.jsonl".into(), head: 1, tail: u64::MAX }),
            }],
            next_timer_sequence: 7,
            sink_counts: vec![("out".into(), 3)],
            dead_letters: 1,
            dropped: 2,
            dropped_per_node: vec![("settle".into(), 2)],
            outputs: vec![("dir/out.jsonl".into(), 99)],
            checkpoints: 3,
            kafka: vec![("events".into(), "clicks".into(), 3, 1_000_000)],
            origin: Some(0xfeed),
        }
    }

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|item| item.to_string()).collect()
    }

    fn layouts(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items.iter().map(|(node, layout)| (node.to_string(), layout.to_string())).collect()
    }

    #[test]
    fn progress_round_trips() {
        let progress = progress();
        assert_eq!(Progress::from_bytes(&progress.to_bytes()), Ok(progress.clone()));
        assert_eq!(progress.output_length("dir/out.jsonl"), Some(99));
        assert_eq!(progress.output_length("other"), None);
        // Version 2 (before origins and input identities) and version 1 (before Kafka
        // positions) read with none. Both end where version 3 appends a presence byte for the
        // origin and one per source.
        let mut without_inputs = progress.clone();
        without_inputs.sources[0].input = None;
        without_inputs.origin = None;
        let mut v2 = without_inputs.to_bytes();
        v2[0] = 2;
        v2.truncate(v2.len() - 2);
        assert_eq!(Progress::from_bytes(&v2), Ok(without_inputs.clone()));
        let mut old = v2;
        old[0] = 1;
        let tail = {
            let mut kafka_part = Vec::new();
            put_varint(&mut kafka_part, 1);
            put_str(&mut kafka_part, "events");
            put_str(&mut kafka_part, "clicks");
            put_varint_signed(&mut kafka_part, 3);
            put_varint_signed(&mut kafka_part, 1_000_000);
            kafka_part.len()
        };
        old.truncate(old.len() - tail);
        let read = Progress::from_bytes(&old).expect("version 1 reads");
        assert_eq!(read, Progress { kafka: Vec::new(), ..without_inputs });
    }

    #[test]
    fn the_progress_of_a_savepoint_reads_without_its_timers_and_entries() {
        let mut file = Vec::new();
        savepoint_header(&mut file);
        put_bytes(&mut file, &progress().to_bytes());
        // Timers and entries: read by the runtime only.
        file.extend_from_slice(&[1, 2, 3]);
        seal_savepoint(&mut file);
        assert_eq!(read_savepoint_progress(&file), Ok(progress()));

        let mut corrupt = file.clone();
        corrupt[20] ^= 1;
        assert!(read_savepoint_progress(&corrupt).expect_err("corrupt").to_string().contains("checksum"));
        let mut future = file.clone();
        future[8] = 9;
        assert!(read_savepoint_progress(&future).expect_err("version").to_string().contains("version 9"));
        assert!(read_savepoint_progress(b"hello").expect_err("short").to_string().contains("bad magic"));
        let mut empty_body = Vec::new();
        savepoint_header(&mut empty_body);
        seal_savepoint(&mut empty_body);
        assert!(read_savepoint_progress(&empty_body).expect_err("no progress").to_string().contains("corrupt"));
    }

    #[test]
    fn compare_state_reports_every_status() {
        let old = layouts(&[
            ("cap", "capping/v1"),
            ("old_name", "dedupe/v1"),
            ("counts", "segmentation/v1 bucket=60000 counters=a,b"),
            ("settle", "delay-latest/v1"),
            ("profile", "segmentation/v2 bucket=60000 counters=a,b segments=x"),
            ("hourly", "segmentation/v2 bucket=60000 counters=a segments="),
        ]);
        let old_nodes =
            strings(&["src", "cap", "old_name", "counts", "settle", "profile", "hourly", "was_stateless", "out"]);
        let new = layouts(&[
            ("cap", "capping/v1"),
            ("new_name", "dedupe/v1"),
            ("counts", "segmentation/v2 bucket=60000 counters=a,b segments="),
            ("profile", "segmentation/v2 bucket=60000 counters=b,c segments=x,y"),
            ("hourly", "segmentation/v2 bucket=3600000 counters=a segments="),
            ("was_stateless", "has-done-event/v1"),
        ]);
        // `settle` became a plain delay: still there, no longer stateful.
        let new_nodes =
            strings(&["src", "cap", "new_name", "counts", "settle", "profile", "hourly", "was_stateless", "out"]);
        let report = compare_state(&old, &old_nodes, &new, &new_nodes);
        let statuses: Vec<(&str, &str)> = report.nodes.iter().map(|node| (node.node.as_str(), node.status())).collect();
        assert_eq!(
            statuses,
            vec![
                ("cap", "kept"),
                ("old_name", "dropped"),
                ("counts", "incompatible"),
                ("settle", "incompatible"),
                ("profile", "kept"),
                ("hourly", "incompatible"),
                ("new_name", "new"),
                ("was_stateless", "new"),
            ]
        );
        assert!(!report.is_compatible());
        assert_eq!(report.count("new"), 2);
        assert_eq!(report.nodes[3].new_layout(), None);
        assert_eq!(report.nodes[3].old_layout(), Some("delay-latest/v1"));
        assert_eq!(report.nodes[4].new_layout(), Some("segmentation/v2 bucket=60000 counters=b,c segments=x,y"));
        assert_eq!(report.nodes[6].old_layout(), None);
        assert_eq!(report.count("kept"), 2);
        assert_eq!(
            report.to_string(),
            [
                "  kept          cap            capping/v1",
                "  dropped       old_name       dedupe/v1",
                "  incompatible  counts         segmentation/v1 bucket=60000 counters=a,b -> segmentation/v2 bucket=60000 counters=a,b segments=",
                "  incompatible  settle         delay-latest/v1 -> (no state)",
                "  kept          profile        segmentation/v2 bucket=60000 counters=a,b segments=x -> segmentation/v2 bucket=60000 counters=b,c segments=x,y",
                "  incompatible  hourly         segmentation/v2 bucket=60000 counters=a segments= -> segmentation/v2 bucket=3600000 counters=a segments=",
                "  new           new_name       dedupe/v1",
                "  new           was_stateless  (no state) -> has-done-event/v1",
            ]
            .join("\n")
        );
    }

    #[test]
    fn dropped_and_new_nodes_are_compatible() {
        let old = layouts(&[("cap", "capping/v1"), ("gone", "dedupe/v1")]);
        let new = layouts(&[("cap", "capping/v1"), ("fresh", "dedupe/v1")]);
        let report = compare_state(&old, &strings(&["cap", "gone"]), &new, &strings(&["cap", "fresh"]));
        assert!(report.is_compatible());
        assert_eq!((report.count("kept"), report.count("dropped"), report.count("new")), (1, 1, 1));
        let empty = compare_state(&[], &[], &[], &strings(&["src", "out"]));
        assert!(empty.is_compatible() && empty.nodes.is_empty());
        assert_eq!(empty.to_string(), "");
    }
}
