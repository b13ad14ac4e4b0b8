//! State that follows Kafka partitions across the instances of a consumer group.
//!
//! When a pipeline's only source is a kafka-source and its state lives in RocksDB, every source
//! partition is a *task* (Kafka Streams' word): the steps of its records write state and timers
//! in the partition's shard (`partition + 1`; 0 is the instance's own), produce through the
//! partition's transactional producer (`<group>-p<partition>`), and each checkpoint appends the
//! shard's changes to partition `partition` of the changelog topic `<group>-changelog`, closed by
//! a marker with the source positions, the partition's largest event time and its timer counter,
//! all in the checkpoint's transaction together with the partition's offsets. An instance the
//! group hands the partition to opens its producer first (fencing the previous owner and aborting
//! its open transaction), replays the changelog from the offset its own state reflects, and
//! starts reading at the marker's position. Local RocksDB stays a cache of the changelog: it
//! records per shard the changelog offset it reflects (`m:shard:<partition>`).

use std::collections::BTreeMap;

use crate::kafka::{ChangelogMode, KafkaEnv};
use crate::Timer;

/// The RocksDB key naming the changelog topic the shard records refer to.
pub const CHANGELOG_KEY: &[u8] = b"m:changelog";

/// Key prefix of the per-shard records in RocksDB.
pub const SHARD_RECORD_PREFIX: &[u8] = b"m:shard:";

/// The RocksDB key of a partition's shard record.
pub fn shard_record_key(partition: i32) -> Vec<u8> {
    let mut key = SHARD_RECORD_PREFIX.to_vec();
    key.extend_from_slice(&partition.to_be_bytes());
    key
}

/// Key prefix of a savepoint's state entries kept for a partition until the partition's
/// changelog has them: `m:seed:`, the partition (i32 big-endian), the state key.
pub const SEED_PREFIX: &[u8] = b"m:seed:";

/// The first key of a partition's seeds (`partition + 1` gives the end of the range).
pub fn seed_prefix(partition: i32) -> Vec<u8> {
    let mut key = SEED_PREFIX.to_vec();
    key.extend_from_slice(&partition.to_be_bytes());
    key
}

/// The RocksDB key of a seed: `seed_prefix(partition)` and the state key.
pub fn seed_key(partition: i32, state_key: &[u8]) -> Vec<u8> {
    let mut key = seed_prefix(partition);
    key.extend_from_slice(state_key);
    key
}

/// What local state knows about a partition's shard.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ShardRecord {
    /// The changelog offset local state reflects (the next to read).
    pub next: i64,
    /// The counter the shard's next timer gets.
    pub timers: u64,
}

impl ShardRecord {
    pub fn to_bytes(self) -> Vec<u8> {
        serde_json::json!({ "next": self.next, "timers": self.timers }).to_string().into_bytes()
    }

    pub fn from_bytes(bytes: &[u8]) -> Option<ShardRecord> {
        let value: serde_json::Value = serde_json::from_slice(bytes).ok()?;
        Some(ShardRecord { next: value["next"].as_i64()?, timers: value["timers"].as_u64()? })
    }
}

/// The record that closes a partition's batch in the changelog.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Marker {
    /// (topic, next offset) of the partition in every subscribed topic.
    pub positions: Vec<(String, i64)>,
    /// The largest event time seen on the partition (`i64::MIN`: none).
    pub max_event_time: i64,
    /// The counter the shard's next timer gets.
    pub timers: u64,
    /// The changelog offset after the marker of the batch this one builds on (the partition's
    /// previous committed batch), so a restore can tell committed batches from aborted ones a
    /// broker still shows. `None` in markers written before markers named it.
    pub base: Option<i64>,
}

impl Marker {
    pub fn to_bytes(&self) -> Vec<u8> {
        let positions: Vec<serde_json::Value> =
            self.positions.iter().map(|(topic, next)| serde_json::json!([topic, next])).collect();
        let max_event_time = (self.max_event_time != i64::MIN).then_some(self.max_event_time);
        serde_json::json!({
            "positions": positions,
            "maxEventTime": max_event_time,
            "timers": self.timers,
            "base": self.base,
        })
        .to_string()
        .into_bytes()
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Marker, String> {
        let bad = || format!("corrupt changelog marker `{}`", String::from_utf8_lossy(bytes));
        let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|_| bad())?;
        let mut positions = Vec::new();
        for entry in value["positions"].as_array().ok_or_else(bad)? {
            let topic = entry[0].as_str().ok_or_else(bad)?;
            positions.push((topic.to_string(), entry[1].as_i64().ok_or_else(bad)?));
        }
        Ok(Marker {
            positions,
            max_event_time: value["maxEventTime"].as_i64().unwrap_or(i64::MIN),
            timers: value["timers"].as_u64().ok_or_else(bad)?,
            base: value["base"].as_i64(),
        })
    }
}

/// The task set of a run (see the module docs).
pub struct Tasks {
    /// The changelog topic.
    pub topic: String,
    /// Whether it is compacted, and so how a restore reads it.
    pub changelog_mode: ChangelogMode,
    pub env: KafkaEnv,
    /// The source's brokers.
    pub brokers: Option<&'static str>,
    /// Per producer of the sinks: (brokers, compression, transactional). Each transactional one
    /// gets a producer per partition.
    pub producers: Vec<(Option<&'static str>, Option<&'static str>, bool)>,
    /// Index, in a shard's writers, of the one that carries the changelog and the offsets (one
    /// past the sinks' producers when none of them talks to the source's brokers).
    pub changelog_writer: usize,
    pub group: String,
    pub checkpoint_interval_ms: u64,
    /// Per partition: what local state reflects.
    pub local: BTreeMap<i32, ShardRecord>,
    /// Pending timers of partitions owned by another instance now, kept for when they return.
    pub parked: BTreeMap<u32, Vec<(u64, Timer)>>,
    /// Partitions this instance owns (restored and assigned).
    pub owned: Vec<i32>,
    /// Names this run's batches: instance and start time, then the checkpoint number.
    pub batch_prefix: String,
    /// Partitions whose savepoint seeds went into the overlay (their first changelog batch):
    /// the next checkpoint deletes their seed records.
    pub seeded: Vec<i32>,
}

impl Tasks {
    /// The shard of a partition.
    pub fn shard(partition: i32) -> u32 {
        partition as u32 + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_and_shard_records_round_trip() {
        let positions = vec![("in".to_string(), 42), ("other".to_string(), 0)];
        let marker = Marker { positions, max_event_time: 7, timers: 3, base: Some(17) };
        assert_eq!(Marker::from_bytes(&marker.to_bytes()), Ok(marker));
        let empty = Marker { positions: Vec::new(), max_event_time: i64::MIN, timers: 0, base: None };
        assert_eq!(Marker::from_bytes(&empty.to_bytes()), Ok(empty));
        assert!(Marker::from_bytes(b"{}").is_err());
        let record = ShardRecord { next: 12, timers: 5 };
        assert_eq!(ShardRecord::from_bytes(&record.to_bytes()), Some(record));
        assert!(shard_record_key(1) < shard_record_key(2));
        assert!(shard_record_key(0).starts_with(SHARD_RECORD_PREFIX));
    }
}
