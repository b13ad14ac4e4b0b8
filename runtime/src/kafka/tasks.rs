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
//!
//! Each partition has two generations of producers (`<group>-p<partition>` and the same with
//! `-g1`): a checkpoint's transactions commit on a thread while the steps produce the next
//! checkpoint's records into the other generation's open transactions, so processing does not
//! stop for `EndTxn`s. The local checkpoint is committed once Kafka's is; a new owner opens both
//! generations, fencing both.

use std::collections::BTreeMap;

use super::changelog::ChangelogMode;
use super::config::KafkaEnv;
use super::producer::KafkaWriter;
use crate::Timer;

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
    /// Per owned partition's shard, the generation of producers the steps do not write to now
    /// (see `partition_transactional_id`); while a checkpoint commits, its commit thread holds
    /// it.
    pub spare: BTreeMap<u32, Vec<Option<KafkaWriter>>>,
    /// Per partition whose changelog a restore read a marker of: the savepoint its state
    /// descends from, carried into this instance's markers.
    pub origins: BTreeMap<i32, Option<u64>>,
    /// `PULSE_KAFKA_COMMIT_PAUSE`: a pause before each checkpoint's transactions commit, so
    /// tests can stop an instance while a commit is in flight.
    pub commit_pause: Option<std::time::Duration>,
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
    use crate::kafka::changelog::Marker;
    use crate::keys::{shard_record_key, SHARD_RECORD_PREFIX};

    #[test]
    fn markers_and_shard_records_round_trip() {
        let positions = vec![("in".to_string(), 42), ("other".to_string(), 0)];
        let marker = Marker { positions, max_event_time: 7, timers: 3, base: Some(17), origin: Some(u64::MAX - 5) };
        assert_eq!(Marker::from_bytes(&marker.to_bytes()).ok(), Some(marker));
        let empty = Marker { positions: Vec::new(), max_event_time: i64::MIN, timers: 0, base: None, origin: None };
        assert_eq!(Marker::from_bytes(&empty.to_bytes()).ok(), Some(empty));
        assert!(Marker::from_bytes(b"{}").is_err());
        let record = ShardRecord { next: 12, timers: 5 };
        assert_eq!(ShardRecord::from_bytes(&record.to_bytes()), Some(record));
        assert!(shard_record_key(1) < shard_record_key(2));
        assert!(shard_record_key(0).starts_with(SHARD_RECORD_PREFIX));
    }
}
