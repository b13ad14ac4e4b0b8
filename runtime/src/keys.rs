//! The persisted key layout of a RocksDB state directory: a format, read back by every later
//! version, so every key the runtime writes is built here.
//!
//! | key                                   | value                                   | written by             |
//! |---------------------------------------|-----------------------------------------|------------------------|
//! | `s` node-id `0` user-key              | the operator's state entry              | every checkpoint       |
//! | `t` sequence (u64 BE)                 | a pending timer (`TimerRecord`)         | every checkpoint       |
//! | `p` state-key                         | shard (u32 BE) of the step that wrote it | a bootstrap over Kafka |
//! | `m:progress`                          | the progress record (`Progress`)        | every checkpoint       |
//! | `m:changelog`                         | the changelog topic the shards mirror   | the first run with tasks |
//! | `m:shard:` partition (i32 BE)         | `ShardRecord`: changelog offset, timers | checkpoints with tasks |
//! | `m:seed:` partition (i32 BE) state-key | a savepoint's entry waiting for its partition | a savepoint loaded with tasks |
//!
//! Node ids, not node indexes, name state (`s`), since ids are the identities that survive edits
//! of other nodes. The repartition stage's duplicate filter is ordinary state under the node
//! [`SEEN_NODE`], which no pipeline node can be named. The timer sequence carries the shard in its
//! top bits (see `timers::shard_of`). Each kind of key has a
//! first byte of its own, so a prefix scan of one kind never meets another.

/// Key prefix of state entries.
pub const STATE_PREFIX: u8 = b's';
/// Key prefix of pending timers (followed by the big-endian registration sequence).
pub const TIMER_PREFIX: u8 = b't';
/// Key prefix of the shard index a bootstrap keeps: `p` and a state key, the shard (u32
/// big-endian) of the step that wrote it last, when that was a Kafka partition's shard. The
/// savepoint's `shards` come from it.
pub const SHARD_INDEX_PREFIX: u8 = b'p';
/// The key of the progress record of the last checkpoint.
pub const PROGRESS_KEY: &[u8] = b"m:progress";
/// The key naming the changelog topic the shard records refer to.
pub const CHANGELOG_KEY: &[u8] = b"m:changelog";
/// Key prefix of the per-shard records.
pub const SHARD_RECORD_PREFIX: &[u8] = b"m:shard:";
/// Key prefix of a savepoint's state entries kept for a partition until the partition's
/// changelog has them: `m:seed:`, the partition (i32 big-endian), the state key.
pub const SEED_PREFIX: &[u8] = b"m:seed:";
/// The state node of the repartition stage's duplicate filter (not a valid node id, so it never
/// meets one).
pub const SEEN_NODE: &str = "@repartition";

/// The key of (`node`, `key`): `s`, node id, 0, key.
pub fn state_key(out: &mut Vec<u8>, node: &str, key: &[u8]) {
    out.clear();
    out.reserve(node.len() + key.len() + 2);
    out.push(STATE_PREFIX);
    out.extend_from_slice(node.as_bytes());
    out.push(0);
    out.extend_from_slice(key);
}

/// Splits a state key back into (node id, user key).
pub fn split_state_key(full: &[u8]) -> Option<(&str, &[u8])> {
    let rest = full.strip_prefix(&[STATE_PREFIX])?;
    let zero = rest.iter().position(|byte| *byte == 0)?;
    let node = std::str::from_utf8(&rest[..zero]).ok()?;
    Some((node, &rest[zero + 1..]))
}

/// The first key of `node`'s state and the first key after it (for range deletes).
pub fn node_range(node: &str) -> (Vec<u8>, Vec<u8>) {
    let mut start = vec![STATE_PREFIX];
    start.extend_from_slice(node.as_bytes());
    let mut end = start.clone();
    start.push(0);
    end.push(1);
    (start, end)
}

/// The key of the pending timer with registration sequence `sequence`.
pub fn timer_key(sequence: u64) -> [u8; 9] {
    let mut key = [TIMER_PREFIX; 9];
    key[1..].copy_from_slice(&sequence.to_be_bytes());
    key
}

/// The key of a partition's shard record.
pub fn shard_record_key(partition: i32) -> Vec<u8> {
    let mut key = SHARD_RECORD_PREFIX.to_vec();
    key.extend_from_slice(&partition.to_be_bytes());
    key
}

/// The first key of a partition's seeds (`partition + 1` gives the end of the range).
pub fn seed_prefix(partition: i32) -> Vec<u8> {
    let mut key = SEED_PREFIX.to_vec();
    key.extend_from_slice(&partition.to_be_bytes());
    key
}

/// The key of a seed: `seed_prefix(partition)` and the state key.
pub fn seed_key(partition: i32, state_key: &[u8]) -> Vec<u8> {
    let mut key = seed_prefix(partition);
    key.extend_from_slice(state_key);
    key
}

/// The user key of the duplicate filter (under [`SEEN_NODE`]): the last origin offset processed,
/// per (repartition partition, origin topic and partition).
pub fn seen_key(partition: i32, origin_topic: &str, origin_partition: i32) -> Vec<u8> {
    format!("{partition}/{origin_topic}/{origin_partition}").into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_of_key_keeps_a_first_byte_of_its_own() {
        let mut state = Vec::new();
        state_key(&mut state, "counts", b"u1");
        assert_eq!(split_state_key(&state), Some(("counts", &b"u1"[..])));
        let (from, to) = node_range("counts");
        assert!(from <= state && state < to);
        let mut other = Vec::new();
        state_key(&mut other, "counts2", b"u1");
        assert!(other >= to, "another node's keys fall outside the range");
        let first_bytes = [STATE_PREFIX, TIMER_PREFIX, SHARD_INDEX_PREFIX, PROGRESS_KEY[0]];
        assert!(first_bytes.iter().enumerate().all(|(i, byte)| !first_bytes[..i].contains(byte)));
        for metadata in [PROGRESS_KEY.to_vec(), CHANGELOG_KEY.to_vec(), shard_record_key(3), seed_key(3, &state)] {
            assert!(metadata.starts_with(b"m:"), "{metadata:?}");
        }
        assert!(!shard_record_key(3).starts_with(SEED_PREFIX) && !seed_key(3, &state).starts_with(SHARD_RECORD_PREFIX));
        assert!(timer_key(1) < timer_key(2) && timer_key(2)[0] == TIMER_PREFIX);
        assert!(seed_key(1, &state).starts_with(&seed_prefix(1)) && seed_prefix(1) < seed_prefix(2));
    }
}
